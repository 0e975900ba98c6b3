/*
 * policy_2q: a scan-resistant 2Q (Johnson and Shasha, VLDB 1994) adapted
 * to cold-page reclaim. Pages start in the probation queue (A1in); evicting
 * one leaves a ghost (A1out, a bounded FIFO of page indices); a page that
 * refaults while its ghost lives proved it is reused and joins the hot queue
 * (Am, flag PS_HOT). Victims come from probation first; hot pages go only
 * when they are twice as cold and probation has nothing left, and lose hot
 * status after a long cold spell. A one-off sweep over memory therefore
 * cannot push the reused set out.
 */
#include <errno.h>
#include <stdlib.h>

#include "mm/policy.h"

struct q2 {
	uint32_t *ghost;       /* FIFO ring of evicted page indices */
	uint64_t cap, head, len;
};

static int q2_init(struct mm_policy *p)
{
	struct q2 *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	/* Ghosts for a quarter of memory, as 2Q's Kout suggestion (50% of the buffer count) scaled down. */
	q->cap = p->ps->nr_pages / 4;
	if (q->cap < 1024)
		q->cap = 1024;
	q->ghost = calloc(q->cap, sizeof(*q->ghost));
	if (!q->ghost) {
		free(q);
		return -ENOMEM;
	}
	p->priv = q;
	p->meta_bytes = sizeof(*q) + q->cap * sizeof(*q->ghost);
	return 0;
}

static void q2_fini(struct mm_policy *p)
{
	struct q2 *q = p->priv;

	if (q)
		free(q->ghost);
	free(q);
	p->priv = NULL;
}

static void q2_refault(struct mm_policy *p, uint64_t idx)
{
	uint64_t old = ps_update(p->ps, idx, PS_GHOST | PS_REF, PS_REF);

	if (old & PS_GHOST)
		ps_flag_set(p->ps, idx, PS_HOT);
}

static void q2_evicted(struct mm_policy *p, uint64_t idx)
{
	struct q2 *q = p->priv;

	if (q->len == q->cap) {
		/* The oldest ghost expires unless its page was evicted again since. */
		uint64_t old = q->ghost[q->head];
		if (old < p->ps->nr_pages && !ps_is_evicted(ps_state(p->ps, old)))
			ps_flag_clear(p->ps, old, PS_GHOST);
		q->len--;
		q->head = (q->head + 1) % q->cap;
	}
	q->ghost[(q->head + q->len) % q->cap] = (uint32_t)idx;
	q->len++;
	ps_update(p->ps, idx, PS_GHOST | PS_REF, PS_GHOST);
}

static size_t q2_sweep(struct mm_policy *p, unsigned cold_ticks, bool force, bool hot,
		       uint64_t *out, size_t n, size_t max)
{
	struct mm_pagestate *ps = p->ps;
	unsigned hot_ticks = cold_ticks * 2 + 1;

	for (uint64_t step = 0; step < ps->nr_pages && n < max; step++) {
		uint64_t idx = p->hand;
		uint64_t e = ps_get(ps, idx);

		if (++p->hand >= ps->nr_pages)
			p->hand = 0;
		if (!mm_policy_candidate(e, cold_ticks, force))
			continue;
		if (!!(e & PS_HOT) != hot) {
			/* A long cold spell ends hot status. */
			if ((e & PS_HOT) && ps_age_of(e) >= 8 * (cold_ticks + 1))
				ps_flag_clear(ps, idx, PS_HOT);
			continue;
		}
		if ((e & PS_REF) && !force) {
			ps_flag_clear(ps, idx, PS_REF);
			continue;
		}
		if (hot && !force && ps_age_of(e) < hot_ticks)
			continue;
		out[n++] = idx;
	}
	return n;
}

static size_t q2_select(struct mm_policy *p, unsigned cold_ticks, bool force, uint64_t *out, size_t max)
{
	size_t n = q2_sweep(p, cold_ticks, force, false, out, 0, max);

	if (n < max)
		n = q2_sweep(p, cold_ticks, force, true, out, n, max);
	return n;
}

const struct mm_policy_ops mm_policy_2q = {
	.name = "2q",
	.init = q2_init,
	.fini = q2_fini,
	.refault = q2_refault,
	.evicted = q2_evicted,
	.select = q2_select,
};
