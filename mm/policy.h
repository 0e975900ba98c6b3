/*
 * policy: victim selection for reclaim (pluggable, one ops table per policy:
 * policy_clock.c, policy_2q.c) and the adaptive cold-age controller.
 *
 * A policy looks at the page-state table only: a candidate is a RESIDENT
 * page not marked incompressible whose age (scan passes since its last
 * write) reached the cold threshold. Refaults (reads or writes of evicted
 * pages) reach the policy through refault(); evictions through evicted().
 */
#ifndef MINIVMM_MM_POLICY_H
#define MINIVMM_MM_POLICY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mm/pagestate.h"

struct mm_policy;

struct mm_policy_ops {
	const char *name;
	int (*init)(struct mm_policy *p);
	void (*fini)(struct mm_policy *p);
	/* An evicted page was faulted back in. */
	void (*refault)(struct mm_policy *p, uint64_t idx);
	/* A page was evicted. */
	void (*evicted)(struct mm_policy *p, uint64_t idx);
	/* Up to max victims into out: pages whose age >= cold_ticks (any
	 * resident page when force). Returns how many. */
	size_t (*select)(struct mm_policy *p, unsigned cold_ticks, bool force, uint64_t *out, size_t max);
};

struct mm_policy {
	const struct mm_policy_ops *ops;
	struct mm_pagestate *ps;
	uint64_t hand;                  /* clock hand (page index) */
	void *priv;
	uint64_t meta_bytes;            /* policy's own metadata */
};

extern const struct mm_policy_ops mm_policy_clock;
extern const struct mm_policy_ops mm_policy_2q;

/* Names accepted by policy=..., for error messages. */
#define MM_POLICY_NAMES "clock, 2q"

/* Finds a policy by name; NULL if unknown. */
const struct mm_policy_ops *mm_policy_find(const char *name);
int mm_policy_init(struct mm_policy *p, const struct mm_policy_ops *ops, struct mm_pagestate *ps);
void mm_policy_fini(struct mm_policy *p);

/* Shared candidate test: resident, not skipped, old enough (any age when force). */
static inline bool mm_policy_candidate(uint64_t e, unsigned cold_ticks, bool force)
{
	if (ps_state_of(e) != MM_PAGE_RESIDENT)
		return false;
	if (e & PS_SKIP)
		return false;
	return force || ps_age_of(e) >= cold_ticks;
}

/*
 * Adaptive cold-age controller: keeps the refault (promotion) rate under
 * target by raising the cold-age threshold when refaults run too high and
 * lowering it back towards the configured minimum when they are well under,
 * as in "Software-defined far memory in warehouse-scale computers"
 * (Lagar-Cavilla et al., ASPLOS 2019). target <= 0 disables it.
 */
struct mm_ctrl {
	double min_age, max_age;        /* seconds */
	double cur_age;
	double target;                  /* refaults per second */
	_Atomic double last_rate;       /* written by the scanner, read by QMP */
};

void mm_ctrl_init(struct mm_ctrl *c, double min_age, double target);
/* Feeds refaults seen over window seconds; returns the new cold age. */
double mm_ctrl_update(struct mm_ctrl *c, uint64_t refaults, double window);

#endif
