/*
 * pagestate: the page-state table (see pagestate.h). Owns the entry array,
 * the per-chunk locks and counters, and the per-state page counts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mm/pagestate.h"

int ps_init(struct mm_pagestate *ps, uint64_t nr_pages, uint64_t chunk_bytes)
{
	memset(ps, 0, sizeof(*ps));
	if (!nr_pages || chunk_bytes < MM_CHUNK_MIN || (chunk_bytes & (chunk_bytes - 1)))
		return -EINVAL;
	ps->nr_pages = nr_pages;
	ps->chunk_pages = chunk_bytes >> MM_PAGE_SHIFT;
	ps->nr_chunks = (nr_pages + ps->chunk_pages - 1) / ps->chunk_pages;
	/* calloc'd zero is MM_PAGE_UNTOUCHED with no flags; the kernel hands
	 * out untouched zero pages lazily, so a large table costs nothing until used. */
	ps->ent = calloc(nr_pages, sizeof(*ps->ent));
	ps->chunks = calloc(ps->nr_chunks, sizeof(*ps->chunks));
	if (!ps->ent || !ps->chunks) {
		ps_fini(ps);
		return -ENOMEM;
	}
	for (uint64_t c = 0; c < ps->nr_chunks; c++)
		pthread_mutex_init(&ps->chunks[c].lock, NULL);
	atomic_store(&ps->count[MM_PAGE_UNTOUCHED], nr_pages);
	return 0;
}

void ps_fini(struct mm_pagestate *ps)
{
	if (ps->chunks)
		for (uint64_t c = 0; c < ps->nr_chunks; c++)
			pthread_mutex_destroy(&ps->chunks[c].lock);
	free(ps->chunks);
	free((void *)ps->ent);
	ps->chunks = NULL;
	ps->ent = NULL;
}

uint64_t ps_metadata_bytes(const struct mm_pagestate *ps)
{
	return ps->nr_pages * sizeof(*ps->ent) + ps->nr_chunks * sizeof(*ps->chunks) + sizeof(*ps);
}

uint64_t ps_update(struct mm_pagestate *ps, uint64_t idx, uint64_t mask, uint64_t val)
{
	uint64_t old = atomic_load_explicit(&ps->ent[idx], memory_order_relaxed), nw;

	do {
		nw = (old & ~mask) | (val & mask);
	} while (!atomic_compare_exchange_weak_explicit(&ps->ent[idx], &old, nw,
							memory_order_acq_rel, memory_order_relaxed));
	return old;
}

void ps_set_state(struct mm_pagestate *ps, uint64_t idx, enum mm_page_state st, uint32_t handle)
{
	uint64_t mask = PS_STATE_MASK | PS_AGE_MASK | (0xffffffffULL << PS_HANDLE_SHIFT);
	uint64_t val = (uint64_t)st | ((uint64_t)handle << PS_HANDLE_SHIFT);
	uint64_t old = ps_update(ps, idx, mask, val);
	enum mm_page_state os = ps_state_of(old);
	struct mm_chunk *c = ps_chunk(ps, idx);

	if (os == st)
		return;
	atomic_fetch_sub(&ps->count[os], 1);
	atomic_fetch_add(&ps->count[st], 1);
	if (ps_is_evicted(os))
		c->n_evicted--;
	if (ps_is_given(os))
		c->n_given--;
	if (ps_is_evicted(st))
		c->n_evicted++;
	if (ps_is_given(st))
		c->n_given++;
	if (!ps_is_given(st))
		ps_flag_clear(ps, idx, PS_TOUCHED);
}

unsigned ps_age(struct mm_pagestate *ps, uint64_t idx, bool written)
{
	uint64_t old = atomic_load_explicit(&ps->ent[idx], memory_order_relaxed), nw;

	do {
		nw = old;
		if (written) {
			nw &= ~(PS_AGE_MASK | PS_SKIP | PS_SKIPCNT_MASK);
		} else {
			unsigned age = ps_age_of(old), sk = ps_skipcnt_of(old);
			if (age < PS_AGE_MAX)
				nw = (nw & ~PS_AGE_MASK) | ((uint64_t)(age + 1) << PS_AGE_SHIFT);
			if (old & PS_SKIP) {
				if (sk)
					nw = (nw & ~PS_SKIPCNT_MASK) | ((uint64_t)(sk - 1) << PS_SKIPCNT_SHIFT);
				else
					nw &= ~PS_SKIP;
			}
		}
	} while (!atomic_compare_exchange_weak_explicit(&ps->ent[idx], &old, nw,
							memory_order_acq_rel, memory_order_relaxed));
	return ps_age_of(nw);
}

const char *ps_state_name(enum mm_page_state s)
{
	static const char *const names[] = {
		[MM_PAGE_UNTOUCHED] = "untouched", [MM_PAGE_RESIDENT] = "resident",
		[MM_PAGE_ZERO] = "zero", [MM_PAGE_COMPRESSED] = "compressed",
		[MM_PAGE_SHARED] = "shared", [MM_PAGE_BALLOONED] = "ballooned",
		[MM_PAGE_REPORTED] = "reported",
	};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "invalid";
}
