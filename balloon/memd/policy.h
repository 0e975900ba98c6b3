/*
 * minivmm-memd policy core: given what the daemon sampled (host figures and
 * every managed VM's figures), decide each VM's balloon target and resident
 * target, the host's state and, for the MOM baseline, KSM settings. Pure and
 * deterministic: no I/O, no clock (time comes in the input), no globals; the
 * daemon owns sampling, acting and logging.
 *
 * Policies (memd_policy_new's name):
 *   "minivmm"  ours: budget-driven, reacts in the tick a PSI trigger arrives,
 *              cheapest action first, paced by what each guest achieves,
 *              hysteresis between host states, floors and weights per VM.
 *   "mom"      oVirt MOM's default balloon.rules and ksm.rules, exactly:
 *              samples every 5 s, StatAvg over 10 samples, decides every 10 s.
 *   "none"     observes: classifies the host like "minivmm", never acts.
 *
 * Threads: a policy object is used by one thread at a time (the daemon's
 * main loop); distinct objects are independent.
 */
#ifndef MEMD_POLICY_H
#define MEMD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMD_MAX_VMS 64
/* A missing figure. QEMU and minivmm report an absent guest stat as all ones, so a raw value passes. */
#define MEMD_NONE    UINT64_MAX
#define MEMD_WHY_MAX 512

enum memd_vm_kind { MEMD_VM_MINIVMM, MEMD_VM_LIBVIRT };

/* The idle thresholds minivmm's query-memory-manager reports ("idle-bytes"), shortest first. */
#define MEMD_IDLE_N 4
#define MEMD_IDLE_SECONDS_INIT { 2, 5, 10, 30 }

/* Host states, calmest first; "tight" exists only for the minivmm and none policies. */
enum memd_state { MEMD_OK, MEMD_TIGHT, MEMD_PRESSURE, MEMD_CRITICAL };

enum memd_action {
	MEMD_KEEP = 0,  /* leave as it is */
	MEMD_SET,       /* set the new value */
	MEMD_CLEAR,     /* resident target only: remove it (the VM may keep all it has) */
};

struct memd_host_in {
	uint64_t now_ms;            /* monotonic time of this sample; never goes back */
	uint64_t budget;            /* bytes the managed VMs may keep resident together, or
	                             * a cgroup's limit; MEMD_NONE = the host itself is the budget */
	uint64_t usage;             /* bytes counted against budget (cgroup usage, or the VMs' resident
	                             * + store + overhead); needed with a budget */
	uint64_t reserve;           /* host mode: MemAvailable to keep free */
	uint64_t mem_total, mem_free, buffers, cached, mem_available;  /* /proc/meminfo, bytes */
	double psi_some_avg10, psi_full_avg10;  /* percent, as /proc/pressure/memory shows them */
	bool psi_trigger;           /* a PSI trigger fired since the previous tick */
	uint64_t ksm_pages_to_scan; /* MOM's KSM rule: current /sys/kernel/mm/ksm/pages_to_scan */
	uint64_t vmm_rss;           /* MOM's KSM rule: summed RSS of the VM processes ("ksm_shareable") */
};

/* The guest's virtio-balloon statistics; a field of MEMD_NONE is missing. */
struct memd_guest_stats {
	uint64_t updated_ms;        /* when the guest last refreshed them, on now_ms's clock;
	                             * MEMD_NONE or 0 = never */
	uint64_t free;              /* stat-free-memory (MemFree), bytes */
	uint64_t available;         /* stat-available-memory (MemAvailable), bytes */
	uint64_t caches;            /* stat-disk-caches, bytes */
	uint64_t major_faults;      /* cumulative counters from here on */
	uint64_t swap_in;           /* bytes */
	uint64_t oom_kills;
	uint64_t alloc_stalls;
};

struct memd_vm_in {
	uint64_t id;                /* stable for the VM's life, unique among the VMs of an input */
	const char *name;           /* for the why strings; may be NULL */
	enum memd_vm_kind kind;
	uint64_t ram;               /* guest RAM (the balloon's maximum), bytes */
	uint64_t balloon_target;    /* memory the guest was last asked to keep (QMP "balloon" value) */
	uint64_t balloon_actual;    /* memory the guest has now (query-balloon "actual") */
	uint64_t resident;          /* host bytes this VM's guest RAM + store take; MEMD_NONE unknown */
	uint64_t resident_target;   /* current resident target, MEMD_NONE = none */
	bool resident_target_ok;    /* the VM supports a resident target (minivmm with --mm) */
	uint64_t saved_reported, saved_zero, saved_shared, saved_compressed;  /* bytes, MEMD_NONE unknown */
	uint64_t refault_rate;      /* refaults per second of evicted pages; MEMD_NONE unknown */
	/* resident guest RAM not written for at least MEMD_IDLE_SECONDS[k] (minivmm --mm's
	 * idle-bytes); MEMD_NONE unknown. What a resident target takes without the working set. */
	uint64_t idle[MEMD_IDLE_N];
	uint64_t floor;             /* never balloon or shrink below this; 0 = the default floor */
	uint32_t weight;            /* share of memory under pressure, 0 = default (100); more keeps more */
	struct memd_guest_stats stats;
};

struct memd_input {
	struct memd_host_in host;
	const struct memd_vm_in *vm;
	size_t nvm;                 /* <= MEMD_MAX_VMS */
};

struct memd_vm_decision {
	uint64_t id;
	enum memd_action balloon;   /* MEMD_KEEP or MEMD_SET */
	uint64_t balloon_target;    /* with MEMD_SET: bytes the guest should keep */
	enum memd_action resident;
	uint64_t resident_target;   /* with MEMD_SET: bytes of host memory the VM should work toward */
	uint64_t floor;             /* the floor in force for this VM */
	bool pressured;             /* the guest shows memory pressure */
	char why[MEMD_WHY_MAX];     /* one line for the timeline: the rule and its figures */
};

struct memd_ksm_decision {
	enum memd_action action;    /* MEMD_SET = write run (and, when run is 1, the two others) */
	int run;                    /* /sys/kernel/mm/ksm/run */
	uint64_t pages_to_scan;
	uint64_t sleep_ms;
	char why[MEMD_WHY_MAX];
};

struct memd_output {
	enum memd_state state;
	int64_t room;               /* bytes left under the budget (or above the reserve); < 0 over */
	uint64_t headroom;          /* minivmm: room it keeps ahead of bursts (0 other policies) */
	bool decided;               /* the policy evaluated its rules this tick (MOM: every 10 s) */
	char why[MEMD_WHY_MAX];     /* the host-level reasoning */
	size_t nvm;                 /* = input nvm; vm[i] answers input vm[i] */
	struct memd_vm_decision vm[MEMD_MAX_VMS];
	struct memd_ksm_decision ksm;
};

/* Tunables of the minivmm policy (the MOM policy has its constants fixed, as MOM does). */
struct memd_config {
	uint64_t stale_ms;          /* guest stats older than this are missing (5000) */
	uint64_t floor_min;         /* default floor: max(floor_min, floor_pct of RAM) (256 MiB) */
	uint32_t floor_pct;         /* (25) */
	uint32_t tight_pct;         /* room below this % of the budget is tight (10) */
	uint32_t pressure_pct;      /* ... pressure (3); critical is over budget */
	uint32_t goal_pct;          /* under pressure, reclaim until this much room (6) */
	uint32_t margin_pct;        /* a calmer state needs its threshold + this (2) */
	double psi_some_pressure;   /* PSI some avg10 (%) that means pressure (10) */
	double psi_full_critical;   /* PSI full avg10 (%) that means critical (5) */
	uint64_t calm_ms;           /* stay calm this long before a calmer state (5000) */
	uint64_t stall_ms;          /* a target with no progress this long is stepped back (5000) */
	uint64_t bound_ms;          /* a target not reached in this long is stepped back (30000) */
	uint64_t cooldown_ms;       /* no new squeeze of a VM stepped back or given memory (30000) */
	uint32_t step_pct;          /* first step per tick, % of guest RAM (5); paced after that */
	uint32_t max_step_pct;      /* largest step per tick, % of guest RAM (10; twice when critical) */
	uint64_t min_change;        /* smaller changes are not worth a command (4 MiB) */
	uint64_t major_fault_rate;  /* guest major faults per second that mean pressure (100) */
	uint64_t refault_rate;      /* host refaults per second that mean pressure (200) */
	uint64_t headroom;          /* room kept ahead of bursts by trimming idle pages; 0 = the
	                             * largest VM's RAM, at most headroom_pct of the budget */
	uint32_t headroom_pct;      /* (40) */
	uint32_t trim_idle_s;       /* headroom trims take pages idle this long (10; one of MEMD_IDLE_SECONDS) */
	uint32_t squeeze_idle_s;    /* under pressure, pages idle this long are taken unpaced (5) */
	uint64_t lookahead_ms;      /* usage growing: need what it grows in this long (2000) */
};

struct memd_policy;

void memd_config_default(struct memd_config *cfg);
/* name is "minivmm", "mom" or "none"; cfg NULL = defaults. -EINVAL unknown name, -ENOMEM. */
int memd_policy_new(const char *name, const struct memd_config *cfg, struct memd_policy **out);
void memd_policy_free(struct memd_policy *p);
const char *memd_policy_name(const struct memd_policy *p);
/*
 * One decision round: call every tick (about 1 s) and at once when a PSI
 * trigger fires. Fills out completely (every VM gets a why). Returns 0, or
 * -EINVAL on input it cannot use (too many VMs, a repeated id, time going
 * back, a budget without usage, no MemTotal/MemAvailable in host mode);
 * then out says why and the policy's state is unchanged.
 */
int memd_policy_tick(struct memd_policy *p, const struct memd_input *in, struct memd_output *out);

const char *memd_state_name(enum memd_state s);
/* The floor in force: the VM's own, else max(floor_min, floor_pct of RAM), never above RAM. */
uint64_t memd_vm_floor(const struct memd_config *cfg, const struct memd_vm_in *vm);
/* Bytes of the VM idle at least seconds (the nearest reported threshold at or above it); 0 unknown. */
uint64_t memd_vm_idle(const struct memd_vm_in *vm, uint32_t seconds);
/* Are the guest's stats usable now: refreshed within stale_ms and not all missing? */
bool memd_stats_fresh(const struct memd_config *cfg, const struct memd_vm_in *vm, uint64_t now_ms);

#endif
