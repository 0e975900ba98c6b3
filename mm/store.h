/*
 * store: the content-addressed store of evicted 4 KiB pages. Each entry
 * holds one page's bytes zstd-compressed (or raw when compression is off),
 * the page's checksum, and a reference count: identical pages are kept once.
 * A hash only finds candidates; equality is proven by comparing the bytes.
 *
 * Thread-safe: puts come from the scanner, gets and releases from the fault
 * service and the balloon. A handle stays valid while the caller holds a
 * reference to it.
 */
#ifndef MINIVMM_MM_STORE_H
#define MINIVMM_MM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MM_STORE_PAGE 4096u

struct mm_store;

struct mm_store_config {
	bool compress;          /* zstd; off: pages are stored raw (dedup only) */
	bool dedup;             /* look identical content up before storing */
	int level;              /* zstd level, default 1 */
	uint32_t max_csize;     /* compressed size above which a page is refused */
	uint64_t max_bytes;     /* compressed data held at most (0: no bound but guest RAM) */
};

struct mm_store_stats {
	uint64_t entries;       /* distinct contents held */
	uint64_t refs;          /* pages referencing them */
	uint64_t stored_bytes;  /* bytes of compressed data held */
	uint64_t index_bytes;   /* entry table + hash index */
	uint64_t puts, dedup_hits, hash_collisions, incompressible;
	uint64_t full;          /* pages refused because max_bytes was reached */
	uint64_t gets, checksum_failures;
	uint64_t compress_ns, decompress_ns;
};

/* The content hash, also the checksum verified on every get. */
typedef uint64_t (*mm_store_hash_fn)(const void *page);

struct mm_store *mm_store_new(const struct mm_store_config *cfg);
void mm_store_free(struct mm_store *s);

/* Replaces the content hash (tests force collisions with a constant one). */
void mm_store_set_hash(struct mm_store *s, mm_store_hash_fn fn);

/*
 * Stores one page. owner names the page (any non-zero tag, such as its
 * index + 1). 0 with *handle (a new reference) and *dedup true when
 * identical bytes were already held; -E2BIG when it would be kept raw
 * (it compresses worse than max_csize, or compression is off) and a raw
 * copy saves nothing: nothing is stored unless allow_raw (a huge page is
 * evicted whole) or another owner offered the same hash before (a likely
 * duplicate, which later copies then share; the same page offered again is
 * not a duplicate of itself); -ENOSPC when the new entry would take the
 * store over max_bytes (a duplicate of held bytes is still shared); -ENOMEM.
 */
int mm_store_put(struct mm_store *s, const void *page, uint64_t owner, bool allow_raw, uint32_t *handle,
		 bool *dedup);

/*
 * Switches compression off (new pages are kept raw only where that pays, as
 * with compress=off; stored pages still decompress) and on again: 0, or
 * -ENOTSUP to switch it on in a store made without compression. Any thread.
 */
int mm_store_set_compress(struct mm_store *s, bool on);
bool mm_store_compressing(struct mm_store *s);

/* Restores the page into out (4 KiB) and verifies its checksum: 0, -EBADMSG
 * on a checksum mismatch or corrupt data (out must not be used), -EINVAL on a
 * bad handle. The reference is kept. */
int mm_store_get(struct mm_store *s, uint32_t handle, void *out);

/* Drops one reference; the entry is freed with its last one. */
void mm_store_release(struct mm_store *s, uint32_t handle);

/* References held on handle, 0 for a free or bad handle. */
uint32_t mm_store_refcount(struct mm_store *s, uint32_t handle);
/* Stored (compressed) size of an entry, 0 for a bad handle. */
uint32_t mm_store_csize(struct mm_store *s, uint32_t handle);

void mm_store_get_stats(struct mm_store *s, struct mm_store_stats *st);

/* Tests: flips one bit of an entry's stored bytes (byte modulo its size). */
int mm_store_corrupt(struct mm_store *s, uint32_t handle, uint32_t byte);

#endif
