/*
 * Internals shared by the memd policies (not for the daemon): the ops
 * table each policy provides, the per-VM slot table that follows VMs by id
 * across ticks, the host-state classifier with hysteresis used by the
 * minivmm and none policies, and formatting for the why strings.
 */
#ifndef MEMD_POLICY_PRIV_H
#define MEMD_POLICY_PRIV_H

#include "balloon/memd/policy.h"

#define MiB (1ULL << 20)

struct memd_policy_ops {
	const char *name;
	size_t state_size;
	void (*init)(void *st, const struct memd_config *cfg);
	/* the input has been validated; fills out (out->vm[i].id and floor are preset) */
	void (*tick)(void *st, const struct memd_config *cfg, const struct memd_input *in,
		     struct memd_output *out);
};

extern const struct memd_policy_ops memd_policy_minivmm_ops;
extern const struct memd_policy_ops memd_policy_mom_ops;
extern const struct memd_policy_ops memd_policy_none_ops;

/* Per-VM state follows the VM's id; a VM that leaves frees its slot. */
struct memd_slots {
	uint64_t id[MEMD_MAX_VMS];
	bool used[MEMD_MAX_VMS];
};

/*
 * Maps input VM i to slot[i]; fresh[i] is true when the slot is new (the
 * policy resets its per-VM state). Slots of VMs no longer in the input are
 * freed first, so MEMD_MAX_VMS VMs always fit.
 */
void memd_slots_match(struct memd_slots *s, const struct memd_input *in, int slot[], bool fresh[]);

/* Host-state classification with hysteresis (minivmm and none). */
struct memd_hyst {
	enum memd_state state;
	bool calming;               /* the calmer-state conditions hold since calm_since */
	uint64_t calm_since;
};

struct memd_room {
	int64_t room;               /* bytes under the budget or above the reserve */
	uint64_t scale;             /* what percentages are of: the budget, or MemTotal */
	bool budget;                /* budget (or cgroup) mode */
};

void memd_room_of(const struct memd_host_in *h, struct memd_room *r);
/* Worse states are entered at once; a calmer one, one level at a time, after calm_ms with margins. */
void memd_classify(struct memd_hyst *hy, const struct memd_config *cfg, const struct memd_host_in *h,
		   const struct memd_room *r, char *why, size_t len);
/* Critical on the figures of now alone (over the budget, or PSI full at its
 * critical level): no lookahead, no hysteresis. */
bool memd_critical_now(const struct memd_config *cfg, const struct memd_host_in *h,
		       const struct memd_room *r);

/* Appends to a why string, truncating (never overflowing). */
void memd_why(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "512.0M", "1.50G", "-3.0M" for why strings; buf of MEMD_SZ bytes. */
#define MEMD_SZ 24
const char *memd_sz(char *buf, int64_t bytes);
const char *memd_vm_label(const struct memd_vm_in *vm, char *buf, size_t len);

static inline uint64_t memd_min(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t memd_max(uint64_t a, uint64_t b) { return a > b ? a : b; }

#endif
