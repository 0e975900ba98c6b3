/*
 * store: content-addressed page store (see store.h). Entries live in
 * fixed-size blocks that never move, so a reader holding a reference can
 * decompress without the store lock; the lock guards the hash index, the
 * reference counts and the free list.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

#include "mm/store.h"

#define ENT_BLOCK_SHIFT 12
#define ENT_BLOCK       (1u << ENT_BLOCK_SHIFT)
#define ENT_MAX_BLOCKS  65536u        /* 2^28 entries: 1 TiB of distinct pages */
#define HINT_SLOTS      65536u        /* 512 KiB of incompressible-page hints */

struct store_ent {
	uint64_t hash;                /* content hash = checksum of the original page */
	uint8_t *data;
	uint32_t next;                /* hash chain, or free list; 0 ends */
	uint32_t refs;                /* 0: free */
	uint16_t csize;               /* bytes at data (4096 when raw) */
	uint8_t raw;
};

/* A page refused a raw copy: its hash and who it was (the caller's owner
 * tag), so only a second page with that hash counts as a likely duplicate,
 * never the same page offered again after its skip period. */
struct store_hint {
	uint64_t hash;
	uint64_t owner;
};

struct mm_store {
	struct mm_store_config cfg;
	mm_store_hash_fn hash;
	pthread_mutex_t lock;
	struct store_ent **blocks;    /* ENT_MAX_BLOCKS pointers, allocated lazily */
	uint32_t nr_blocks;
	uint32_t next_id;             /* first never-used id (0 is never a handle) */
	uint32_t free_head;
	uint32_t *buckets;
	uint32_t nr_buckets;          /* power of two */
	pthread_mutex_t cctx_lock;
	ZSTD_CCtx *cctx;
	bool paused;                  /* compression switched off for now (mm_store_set_compress) */
	struct store_hint *hints;     /* pages refused a raw copy (direct-mapped by hash) */
	struct mm_store_stats st;
};

static pthread_key_t store_dctx_key;
static pthread_once_t store_dctx_once = PTHREAD_ONCE_INIT;

static void store_dctx_free(void *p) { ZSTD_freeDCtx(p); }
static void store_dctx_init(void) { pthread_key_create(&store_dctx_key, store_dctx_free); }

/*
 * One decompression context per thread (the fault service, the scanner's
 * dedup proofs), created on first use and freed when the thread exits; the
 * __thread copy spares the fault path a pthread_getspecific per page.
 * Frames keep the standard magic: magicless frames (ZSTD_f_zstd1_magicless)
 * measured no faster per 4 KiB page, and their first byte is the frame
 * header descriptor, whose unused bit a corruption can flip harmlessly.
 */
static __thread ZSTD_DCtx *store_dctx_cached;

static ZSTD_DCtx *store_dctx(void)
{
	ZSTD_DCtx *d = store_dctx_cached;

	if (d)
		return d;
	pthread_once(&store_dctx_once, store_dctx_init);
	d = ZSTD_createDCtx();
	if (!d)
		return NULL;
	pthread_setspecific(store_dctx_key, d);
	store_dctx_cached = d;
	return d;
}

static uint64_t store_xxh3(const void *page)
{
	return XXH3_64bits(page, MM_STORE_PAGE);
}

static uint64_t store_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct store_ent *store_ent(struct mm_store *s, uint32_t id)
{
	uint32_t b = id >> ENT_BLOCK_SHIFT;

	if (id == 0 || b >= ENT_MAX_BLOCKS)
		return NULL;
	struct store_ent *blk = __atomic_load_n(&s->blocks[b], __ATOMIC_ACQUIRE);
	return blk ? &blk[id & (ENT_BLOCK - 1)] : NULL;
}

struct mm_store *mm_store_new(const struct mm_store_config *cfg)
{
	struct mm_store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cfg = *cfg;
	if (s->cfg.max_csize == 0 || s->cfg.max_csize > MM_STORE_PAGE)
		s->cfg.max_csize = MM_STORE_PAGE * 3 / 4;
	s->hash = store_xxh3;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->cctx_lock, NULL);
	s->blocks = calloc(ENT_MAX_BLOCKS, sizeof(*s->blocks));
	s->nr_buckets = 1024;
	s->buckets = calloc(s->nr_buckets, sizeof(*s->buckets));
	s->next_id = 1;
	if (s->cfg.dedup)
		s->hints = calloc(HINT_SLOTS, sizeof(*s->hints));
	if (s->cfg.compress) {
		s->cctx = ZSTD_createCCtx();
		if (s->cctx) {
			ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, s->cfg.level);
			ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 0);
			ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_dictIDFlag, 0);
		}
	}
	if (!s->blocks || !s->buckets || (s->cfg.compress && !s->cctx) ||
	    (s->cfg.dedup && !s->hints)) {
		mm_store_free(s);
		return NULL;
	}
	return s;
}

void mm_store_free(struct mm_store *s)
{
	if (!s)
		return;
	if (s->blocks) {
		for (uint32_t b = 0; b < s->nr_blocks; b++) {
			if (!s->blocks[b])
				continue;
			for (uint32_t i = 0; i < ENT_BLOCK; i++)
				free(s->blocks[b][i].data);
			free(s->blocks[b]);
		}
	}
	free(s->blocks);
	free(s->buckets);
	free(s->hints);
	ZSTD_freeCCtx(s->cctx);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->cctx_lock);
	free(s);
}

void mm_store_set_hash(struct mm_store *s, mm_store_hash_fn fn)
{
	s->hash = fn ? fn : store_xxh3;
}

/* Decompresses entry e into out; 0 or -EBADMSG. */
static int store_decode(struct store_ent *e, void *out)
{
	if (e->raw) {
		memcpy(out, e->data, MM_STORE_PAGE);
		return 0;
	}
	ZSTD_DCtx *d = store_dctx();
	if (!d)
		return -ENOMEM;
	size_t n = ZSTD_decompressDCtx(d, out, MM_STORE_PAGE, e->data, e->csize);
	if (ZSTD_isError(n) || n != MM_STORE_PAGE)
		return -EBADMSG;
	return 0;
}

/* Caller holds the lock. Doubles the index when it gets crowded. */
static void store_grow_index(struct mm_store *s)
{
	uint32_t n = s->nr_buckets * 2, *nb;

	if (s->st.entries < s->nr_buckets || n == 0)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;     /* longer chains, still correct */
	for (uint32_t b = 0; b < s->nr_buckets; b++) {
		uint32_t id = s->buckets[b];
		while (id) {
			struct store_ent *e = store_ent(s, id);
			uint32_t next = e->next, nbk = (uint32_t)(e->hash & (n - 1));
			e->next = nb[nbk];
			nb[nbk] = id;
			id = next;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->nr_buckets = n;
}

/* Caller holds the lock. A free entry id, 0 when out of memory. */
static uint32_t store_alloc_id(struct mm_store *s)
{
	uint32_t id = s->free_head;

	if (id) {
		s->free_head = store_ent(s, id)->next;
		return id;
	}
	id = s->next_id;
	uint32_t b = id >> ENT_BLOCK_SHIFT;
	if (b >= ENT_MAX_BLOCKS)
		return 0;
	if (!s->blocks[b]) {
		struct store_ent *blk = calloc(ENT_BLOCK, sizeof(*blk));
		if (!blk)
			return 0;
		__atomic_store_n(&s->blocks[b], blk, __ATOMIC_RELEASE);
		s->nr_blocks = b + 1;
	}
	s->next_id++;
	return id;
}

/* Counts the put; the id of an entry holding exactly these bytes (a new
 * reference) when dedup is on, or 0. */
static uint32_t store_find_dup(struct mm_store *s, const void *page, uint64_t h)
{
	uint8_t tmp[MM_STORE_PAGE];

	pthread_mutex_lock(&s->lock);
	s->st.puts++;
	for (uint32_t id = s->cfg.dedup ? s->buckets[h & (s->nr_buckets - 1)] : 0; id;
	     id = store_ent(s, id)->next) {
		struct store_ent *e = store_ent(s, id);
		if (e->hash != h)
			continue;
		/* Same hash: prove it on the bytes before sharing. */
		if (store_decode(e, tmp) == 0 && memcmp(tmp, page, MM_STORE_PAGE) == 0) {
			/* atomic: mm_store_get reads refs without the store lock */
			__atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
			s->st.refs++;
			s->st.dedup_hits++;
			pthread_mutex_unlock(&s->lock);
			return id;
		}
		s->st.hash_collisions++;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Compresses page into buf; *csize is MM_STORE_PAGE when it stays raw. */
static int store_compress(struct mm_store *s, const void *page, uint8_t *buf, size_t cap, size_t *csize)
{
	uint64_t t0 = store_now();

	*csize = MM_STORE_PAGE;
	if (!s->cfg.compress || __atomic_load_n(&s->paused, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&s->cctx_lock);
	size_t n = ZSTD_compress2(s->cctx, buf, cap, page, MM_STORE_PAGE);
	pthread_mutex_unlock(&s->cctx_lock);
	if (ZSTD_isError(n))
		return -EIO;
	__atomic_add_fetch(&s->st.compress_ns, store_now() - t0, __ATOMIC_RELAXED);
	if (n <= s->cfg.max_csize)
		*csize = n;
	else
		__atomic_add_fetch(&s->st.incompressible, 1, __ATOMIC_RELAXED);
	return 0;
}

/*
 * A raw copy (incompressible content, or compression off) saves nothing by
 * itself: keep one only when another page offered the same hash before (a
 * likely duplicate: later copies then share it for free). The same page
 * offered again after its skip period is no duplicate of itself.
 */
static bool store_raw_pays(struct mm_store *s, uint64_t h, uint64_t owner)
{
	bool pays;

	if (!s->hints)
		return false;
	pthread_mutex_lock(&s->lock);
	struct store_hint *slot = &s->hints[h & (HINT_SLOTS - 1)];
	pays = slot->owner && slot->hash == h && slot->owner != owner;
	slot->hash = h;
	slot->owner = owner;
	pthread_mutex_unlock(&s->lock);
	return pays;
}

/* Adds a new entry owning data; its id, 0 when out of ids or (*full) over max_bytes. */
static uint32_t store_insert(struct mm_store *s, uint64_t h, uint8_t *data, size_t csize, bool raw, bool *full)
{
	pthread_mutex_lock(&s->lock);
	*full = s->cfg.max_bytes && s->st.stored_bytes + csize > s->cfg.max_bytes;
	uint32_t id = *full ? 0 : store_alloc_id(s);
	if (id) {
		struct store_ent *e = store_ent(s, id);
		uint32_t b = (uint32_t)(h & (s->nr_buckets - 1));
		e->hash = h;
		e->data = data;
		e->csize = (uint16_t)csize;
		e->raw = raw;
		__atomic_store_n(&e->refs, 1, __ATOMIC_RELEASE);
		e->next = s->buckets[b];
		s->buckets[b] = id;
		s->st.entries++;
		s->st.refs++;
		s->st.stored_bytes += csize;
		store_grow_index(s);
	}
	pthread_mutex_unlock(&s->lock);
	return id;
}

int mm_store_put(struct mm_store *s, const void *page, uint64_t owner, bool allow_raw, uint32_t *handle,
		 bool *dedup)
{
	uint64_t h = s->hash(page);
	uint8_t buf[ZSTD_COMPRESSBOUND(MM_STORE_PAGE)];
	size_t csize;
	int ret;

	*dedup = false;
	if ((*handle = store_find_dup(s, page, h))) {
		*dedup = true;
		return 0;
	}
	ret = store_compress(s, page, buf, sizeof(buf), &csize);
	if (ret)
		return ret;
	bool raw = csize == MM_STORE_PAGE;
	if (raw && !allow_raw && !store_raw_pays(s, h, owner))
		return -E2BIG;
	uint8_t *data = malloc(csize);
	if (!data)
		return -ENOMEM;
	memcpy(data, raw ? page : buf, csize);
	bool full;
	*handle = store_insert(s, h, data, csize, raw, &full);
	if (!*handle) {
		free(data);
		if (full)
			__atomic_add_fetch(&s->st.full, 1, __ATOMIC_RELAXED);
		return full ? -ENOSPC : -ENOMEM;
	}
	return 0;
}

int mm_store_set_compress(struct mm_store *s, bool on)
{
	if (on && !s->cctx)
		return -ENOTSUP;
	__atomic_store_n(&s->paused, !on, __ATOMIC_RELAXED);
	return 0;
}

bool mm_store_compressing(struct mm_store *s)
{
	return s->cctx && !__atomic_load_n(&s->paused, __ATOMIC_RELAXED);
}

int mm_store_get(struct mm_store *s, uint32_t handle, void *out)
{
	struct store_ent *e = store_ent(s, handle);
	uint64_t t0 = store_now();
	int ret;

	if (!e || !__atomic_load_n(&e->refs, __ATOMIC_ACQUIRE) || !e->data)
		return -EINVAL;
	ret = store_decode(e, out);
	if (ret == 0 && s->hash(out) != e->hash)
		ret = -EBADMSG;
	__atomic_add_fetch(&s->st.gets, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->st.decompress_ns, store_now() - t0, __ATOMIC_RELAXED);
	if (ret == -EBADMSG)
		__atomic_add_fetch(&s->st.checksum_failures, 1, __ATOMIC_RELAXED);
	return ret;
}

void mm_store_release(struct mm_store *s, uint32_t handle)
{
	struct store_ent *e;

	pthread_mutex_lock(&s->lock);
	e = store_ent(s, handle);
	if (!e || !e->refs) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->st.refs--;
	if (__atomic_sub_fetch(&e->refs, 1, __ATOMIC_RELAXED)) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	uint32_t *pp = &s->buckets[e->hash & (s->nr_buckets - 1)];
	while (*pp && *pp != handle)
		pp = &store_ent(s, *pp)->next;
	if (*pp)
		*pp = e->next;
	s->st.entries--;
	s->st.stored_bytes -= e->csize;
	free(e->data);
	e->data = NULL;
	e->csize = 0;
	e->next = s->free_head;
	s->free_head = handle;
	pthread_mutex_unlock(&s->lock);
}

uint32_t mm_store_refcount(struct mm_store *s, uint32_t handle)
{
	struct store_ent *e;
	uint32_t r = 0;

	pthread_mutex_lock(&s->lock);
	e = store_ent(s, handle);
	if (e)
		r = e->refs;
	pthread_mutex_unlock(&s->lock);
	return r;
}

uint32_t mm_store_csize(struct mm_store *s, uint32_t handle)
{
	struct store_ent *e;
	uint32_t r = 0;

	pthread_mutex_lock(&s->lock);
	e = store_ent(s, handle);
	if (e && e->refs)
		r = e->csize;
	pthread_mutex_unlock(&s->lock);
	return r;
}

void mm_store_get_stats(struct mm_store *s, struct mm_store_stats *st)
{
	pthread_mutex_lock(&s->lock);
	/* field by field: the counters below are updated without the lock */
	*st = (struct mm_store_stats){
		.entries = s->st.entries, .refs = s->st.refs, .stored_bytes = s->st.stored_bytes,
		.puts = s->st.puts, .dedup_hits = s->st.dedup_hits,
		.hash_collisions = s->st.hash_collisions,
	};
	st->index_bytes = (uint64_t)s->nr_blocks * ENT_BLOCK * sizeof(struct store_ent) +
			  (uint64_t)s->nr_buckets * sizeof(uint32_t) + ENT_MAX_BLOCKS * sizeof(void *) +
			  (s->hints ? HINT_SLOTS * sizeof(*s->hints) : 0);
	pthread_mutex_unlock(&s->lock);
	st->incompressible = __atomic_load_n(&s->st.incompressible, __ATOMIC_RELAXED);
	st->full = __atomic_load_n(&s->st.full, __ATOMIC_RELAXED);
	st->compress_ns = __atomic_load_n(&s->st.compress_ns, __ATOMIC_RELAXED);
	st->decompress_ns = __atomic_load_n(&s->st.decompress_ns, __ATOMIC_RELAXED);
	st->gets = __atomic_load_n(&s->st.gets, __ATOMIC_RELAXED);
	st->checksum_failures = __atomic_load_n(&s->st.checksum_failures, __ATOMIC_RELAXED);
}

int mm_store_corrupt(struct mm_store *s, uint32_t handle, uint32_t byte)
{
	struct store_ent *e;
	int ret = -EINVAL;

	pthread_mutex_lock(&s->lock);
	e = store_ent(s, handle);
	if (e && e->refs && e->csize) {
		e->data[byte % e->csize] ^= 0x10;
		ret = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}
