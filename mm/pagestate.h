/*
 * pagestate: the page-state table, one 64-bit entry per 4 KiB guest page
 * (0.2% of guest RAM), indexed by the page's offset in the guest RAM
 * backing, plus one small record per chunk (2 MiB, or the huge page size
 * when that is larger) holding the chunk's lock and counters.
 *
 * Entries are updated with atomic compare-and-swap, so the scanner may age
 * pages without the chunk lock while state changes (which also move store
 * references and backing) are made under the chunk lock.
 *
 * The invariant that keeps guest data safe with given pages: a page in a
 * given state (BALLOONED, REPORTED) whose backing is still mapped (a 4 KiB
 * piece of a hugetlb huge page not yet discarded whole) was zeroed when it
 * was given up. The guest may reuse a reported page without telling the
 * host, and a bad guest may write a ballooned one; so a given piece that is
 * not all zero holds live guest data, and a whole huge page is discarded
 * only after every given piece in it was found zero while the huge page was
 * write-protected under its chunk lock (mm/huge.c). A piece found holding
 * data becomes RESIDENT (reported) or stays BALLOONED marked touched, and
 * its huge page stays.
 */
#ifndef MINIVMM_MM_PAGESTATE_H
#define MINIVMM_MM_PAGESTATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mm/manager.h"

#define MM_PAGE_SHIFT 12
#define MM_PAGE_SIZE  4096ULL
#define MM_CHUNK_MIN  (2ULL << 20)

/* Entry layout: low byte state + flags, then age, skip countdown, store handle. */
#define PS_STATE_MASK  0x7ULL
#define PS_REF         (1ULL << 3)   /* referenced: refaulted since the clock hand passed */
#define PS_SKIP        (1ULL << 4)   /* incompressible: not retried until the countdown ends */
#define PS_HOT         (1ULL << 5)   /* 2Q: in the hot (Am) queue */
#define PS_GHOST       (1ULL << 6)   /* 2Q: recently evicted (A1out ghost) */
#define PS_TOUCHED     (1ULL << 7)   /* ballooned page touched by the guest (counted once) */
#define PS_AGE_SHIFT   8
#define PS_AGE_MASK    (0xffffULL << PS_AGE_SHIFT)
#define PS_AGE_MAX     0xffffU
#define PS_SKIPCNT_SHIFT 24
#define PS_SKIPCNT_MASK (0xffULL << PS_SKIPCNT_SHIFT)
#define PS_HANDLE_SHIFT 32

struct mm_chunk {
	pthread_mutex_t lock;
	uint32_t n_evicted;      /* pages in ZERO, COMPRESSED or SHARED state */
	uint32_t n_given;        /* pages in BALLOONED or REPORTED state */
	bool registered;         /* userfaultfd-registered (only the scanner changes it) */
};

struct mm_pagestate {
	uint64_t nr_pages;
	uint64_t chunk_pages;    /* pages per chunk, a power of two */
	uint64_t nr_chunks;
	_Atomic uint64_t *ent;
	struct mm_chunk *chunks;
	_Atomic uint64_t count[MM_PAGE_REPORTED + 1];   /* pages per state */
};

/* nr_pages entries, chunk_bytes per chunk (power of two >= 2 MiB). */
int ps_init(struct mm_pagestate *ps, uint64_t nr_pages, uint64_t chunk_bytes);
void ps_fini(struct mm_pagestate *ps);
/* Bytes of metadata the table holds. */
uint64_t ps_metadata_bytes(const struct mm_pagestate *ps);

static inline uint64_t ps_get(const struct mm_pagestate *ps, uint64_t idx)
{
	return atomic_load_explicit(&ps->ent[idx], memory_order_relaxed);
}
static inline enum mm_page_state ps_state_of(uint64_t e) { return (enum mm_page_state)(e & PS_STATE_MASK); }
static inline enum mm_page_state ps_state(const struct mm_pagestate *ps, uint64_t idx)
{
	return ps_state_of(ps_get(ps, idx));
}
static inline unsigned ps_age_of(uint64_t e) { return (unsigned)((e & PS_AGE_MASK) >> PS_AGE_SHIFT); }
static inline uint32_t ps_handle_of(uint64_t e) { return (uint32_t)(e >> PS_HANDLE_SHIFT); }
static inline unsigned ps_skipcnt_of(uint64_t e) { return (unsigned)((e & PS_SKIPCNT_MASK) >> PS_SKIPCNT_SHIFT); }

static inline struct mm_chunk *ps_chunk(struct mm_pagestate *ps, uint64_t idx)
{
	return &ps->chunks[idx / ps->chunk_pages];
}

/* Atomically sets the bits in mask to val (val within mask); returns the old entry. */
uint64_t ps_update(struct mm_pagestate *ps, uint64_t idx, uint64_t mask, uint64_t val);
/* Changes the state (and handle) of a page, keeping per-state counts and the
 * chunk counters right. Caller holds the chunk lock. Clears the age. */
void ps_set_state(struct mm_pagestate *ps, uint64_t idx, enum mm_page_state st, uint32_t handle);
/* Sets the flag bits in f / clears them. */
static inline void ps_flag_set(struct mm_pagestate *ps, uint64_t idx, uint64_t f) { ps_update(ps, idx, f, f); }
static inline void ps_flag_clear(struct mm_pagestate *ps, uint64_t idx, uint64_t f) { ps_update(ps, idx, f, 0); }

/* One scanner observation: written since last pass (age 0, clears SKIP) or
 * not (age + 1, saturating; the skip countdown runs down). Returns the new age. */
unsigned ps_age(struct mm_pagestate *ps, uint64_t idx, bool written);

static inline bool ps_is_evicted(enum mm_page_state s)
{
	return s == MM_PAGE_ZERO || s == MM_PAGE_COMPRESSED || s == MM_PAGE_SHARED;
}
static inline bool ps_is_given(enum mm_page_state s)
{
	return s == MM_PAGE_BALLOONED || s == MM_PAGE_REPORTED;
}
const char *ps_state_name(enum mm_page_state s);

#endif
