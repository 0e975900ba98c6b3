/*
 * policy_clock: Clock (second chance) victim selection. The hand sweeps the
 * page-state table; a page refaulted since the hand last passed (PS_REF)
 * gets a second chance, otherwise a cold candidate is a victim.
 */
#include "mm/policy.h"

static void clock_refault(struct mm_policy *p, uint64_t idx)
{
	ps_flag_set(p->ps, idx, PS_REF);
}

static void clock_evicted(struct mm_policy *p, uint64_t idx)
{
	ps_flag_clear(p->ps, idx, PS_REF);
}

static size_t clock_select(struct mm_policy *p, unsigned cold_ticks, bool force, uint64_t *out, size_t max)
{
	struct mm_pagestate *ps = p->ps;
	size_t n = 0;

	/* At most two turns (the first may only clear reference bits); one when
	 * forced, as reference bits are ignored then. Pages may repeat across
	 * the turns: callers deduplicate. */
	uint64_t steps = force ? ps->nr_pages : 2 * ps->nr_pages;
	for (uint64_t step = 0; step < steps && n < max; step++) {
		uint64_t idx = p->hand;
		uint64_t e = ps_get(ps, idx);

		if (++p->hand >= ps->nr_pages)
			p->hand = 0;
		if (!mm_policy_candidate(e, cold_ticks, force))
			continue;
		if ((e & PS_REF) && !force) {
			ps_flag_clear(ps, idx, PS_REF);
			continue;
		}
		out[n++] = idx;
	}
	return n;
}

const struct mm_policy_ops mm_policy_clock = {
	.name = "clock",
	.refault = clock_refault,
	.evicted = clock_evicted,
	.select = clock_select,
};
