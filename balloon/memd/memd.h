/*
 * minivmm-memd, the daemon around the policy core (policy.h): its options
 * and config file (config.c), the host's signals (host.c: meminfo, PSI and
 * its trigger, memory cgroups, process RSS), the VMs it manages through a
 * backend (struct memd_backend): minivmm VMs over QMP (vm.c: discovery in
 * the run directory, sampling, applying decisions) and libvirt domains
 * (backend_libvirt.c: connections, domain events, sampling, applying;
 * lv_event.c: libvirt's event loop run on the daemon's), the tick that
 * joins them (daemon.c), its control socket (control.c) and its timeline
 * and metrics (timeline.c). main.c is the program.
 *
 * Threads: one. Everything runs on the main thread's event loop
 * (vmm/lib/loop.h): the tick timer, the PSI trigger, the control socket's
 * clients, the signals, and libvirt's sockets and timers (lv_event.c
 * registers the loop as libvirt's event implementation, so libvirt's
 * domain events and keepalives are dispatched there too). QMP calls to VMs
 * are synchronous with a short timeout; a VM that does not answer is
 * disconnected and retried later, so one VM can delay a tick by at most one
 * timeout. libvirt calls are synchronous too (libvirt's keepalive closes a
 * connection whose daemon stops answering).
 *
 * Library functions return 0 or a negative errno with a message in err.
 */
#ifndef MEMD_MEMD_H
#define MEMD_MEMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "balloon/memd/policy.h"

#define MEMD_DEFAULT_RUN_DIR     "/run/minivmm"
#define MEMD_DEFAULT_RESERVE     (512ULL << 20)
#define MEMD_DEFAULT_INTERVAL_MS 1000
#define MEMD_METRICS_PERIOD_MS   2000
#define MEMD_QMP_TIMEOUT_MS      1000    /* per command to a VM */
#define MEMD_RETRY_MS            2000    /* reconnecting to a VM that failed, doubled ... */
#define MEMD_RETRY_MAX_MS        30000   /* ... up to this while it keeps failing */
#define MEMD_MAX_SPECS           MEMD_MAX_VMS
#define MEMD_NAME_MAX            64

/* ---- options (config.c) ---- */

/* Floor and weight for one VM name; name "*" applies to every VM without its own. */
struct memd_vm_opt {
	char name[MEMD_NAME_MAX];
	uint64_t floor;             /* 0 = not set */
	uint32_t weight;            /* 0 = not set */
};

enum memd_source { MEMD_SRC_HOST, MEMD_SRC_BUDGET, MEMD_SRC_CGROUP };

struct memd_opts {
	enum memd_source source;
	uint64_t budget;            /* with MEMD_SRC_BUDGET */
	char *cgroup;               /* with MEMD_SRC_CGROUP */
	uint64_t reserve;           /* host mode: MemAvailable to keep */
	uint64_t headroom;          /* minivmm policy: room kept with idle pages; 0 automatic */
	bool ksm;                   /* --ksm on: apply the policy's KSM decisions to ksmd */
	char *vm[MEMD_MAX_SPECS];   /* --vm socket paths */
	int nvm;
	char *libvirt[MEMD_MAX_SPECS];  /* --libvirt connection URIs */
	int nlibvirt;
	char *run_dir;
	struct memd_vm_opt vmopt[MEMD_MAX_SPECS];
	int nvmopt;
	char *policy;
	char *control;              /* control socket path or NULL */
	char *log;                  /* timeline path or NULL */
	char *metrics;              /* metrics file path or NULL */
	uint64_t interval_ms;
	int verbose;
};

void memd_opts_init(struct memd_opts *o);
void memd_opts_free(struct memd_opts *o);
/*
 * Sets one option by its long name ("budget", "vm-floor", ...), as given on
 * the command line or in a config file; val is the text. -EINVAL with err
 * saying what is accepted; -ENOENT for a name that is no option.
 * "config" loads a file (memd_opts_load).
 */
int memd_opts_set(struct memd_opts *o, const char *key, const char *val, char *err, size_t errlen);
/* Reads a config file: JSON (an object of option names) when it starts with
 * '{' or '[', else "key = value" lines with # comments. origin names it in errors. */
int memd_opts_parse(struct memd_opts *o, const char *text, const char *origin, char *err, size_t errlen);
int memd_opts_load(struct memd_opts *o, const char *path, char *err, size_t errlen);
/* The floor and weight configured for name, else for "*" (0 = the policy's default). */
uint64_t memd_opts_floor(const struct memd_opts *o, const char *name);
uint32_t memd_opts_weight(const struct memd_opts *o, const char *name);
/* The same for name itself only, "*" not consulted (0 = none): a domain's own
 * metadata ranks between the two. */
uint64_t memd_opts_floor_own(const struct memd_opts *o, const char *name);
uint32_t memd_opts_weight_own(const struct memd_opts *o, const char *name);
/* Sum of the floors configured by name (not "*"); for the budget check at start. */
uint64_t memd_opts_floor_sum(const struct memd_opts *o);
/* "1.50 GiB" (size_format SIZE_EXACT) into a buffer of 32. */
const char *memd_size(uint64_t bytes, char buf[32]);

/* ---- host signals (host.c) ---- */

struct memd_meminfo {
	uint64_t total, free, available, buffers, cached, swap_total;  /* bytes; MEMD_NONE missing */
};

struct memd_psi {
	double some_avg10, full_avg10;
	uint64_t some_total, full_total;   /* microseconds stalled */
};

struct memd_cgroup {
	int version;                /* 1 or 2 */
	char *dir;
	char *usage_file, *limit_file, *pressure_file;  /* pressure_file: v2 only, else NULL */
	char *events_file;          /* v1 memory.oom_control, v2 memory.events: the oom_kill count */
	char *soft_file;            /* v1 memory.soft_limit_in_bytes, v2 memory.high: a lower budget */
};

/* Parsers of the kernel's text, for the readers below and the unit tests. */
int memd_parse_meminfo(const char *text, struct memd_meminfo *m);
int memd_parse_psi(const char *text, struct memd_psi *p);
/* A cgroup value file: a number, or "max" (v2) / a page-rounded 2^63 (v1) = MEMD_NONE. */
int memd_parse_cgroup_value(const char *text, uint64_t *v);
/* /proc/PID/smaps_rollup: Rss + Shared_Hugetlb + Private_Hugetlb in bytes. */
int memd_parse_rollup(const char *text, uint64_t *bytes);

/* Reads a small file (up to cap bytes) into a NUL-terminated malloc'd buffer. */
int memd_read_text(const char *path, size_t cap, char **out);
int memd_read_meminfo(struct memd_meminfo *m);
int memd_read_psi(const char *path, struct memd_psi *p);
int memd_read_rss(pid_t pid, uint64_t *bytes);
/*
 * Opens a memory cgroup directory: v1 (memory.usage_in_bytes and
 * memory.limit_in_bytes) or v2 (memory.current and memory.max). A path
 * without them is refused saying what it is (which cgroup version, which
 * controllers). A relative path is looked up under the memory hierarchy.
 */
int memd_cgroup_open(const char *path, struct memd_cgroup *cg, char *err, size_t errlen);
int memd_cgroup_read(const struct memd_cgroup *cg, uint64_t *usage, uint64_t *limit);
void memd_cgroup_close(struct memd_cgroup *cg);
/* Processes the kernel's OOM killer ended in the cgroup so far (oom_kill); -errno when unknown. */
int memd_cgroup_oom_kills(const struct memd_cgroup *cg, uint64_t *n);
/* The soft limit (v1) or memory.high (v2); MEMD_NONE when unset ("max") or unreadable. */
uint64_t memd_cgroup_soft(const struct memd_cgroup *cg);
/* The "oom_kill N" line of memory.oom_control or memory.events. */
int memd_parse_oom_kill(const char *text, uint64_t *n);
/* A PSI trigger ("some STALL_US WINDOW_US") on a pressure file: the fd to poll for POLLPRI. */
int memd_psi_trigger(const char *path, uint64_t stall_us, uint64_t window_us, char *err, size_t errlen);

/* ---- managed VMs: backends (vm.c: minivmm over QMP; backend_libvirt.c: libvirt domains) ---- */

struct qmp_client;
struct memd;
struct memd_vm;

/*
 * How the daemon reaches one kind of VM. All run on the main thread.
 * connect prepares a VM for sampling (connects, switches guest stats on;
 * logs what it had to change, once); sample fills vm->in, vm->rss and
 * vm->sampled and returns -ESRCH when the VM no longer exists (the daemon
 * drops it rather than retrying); apply carries out one decision, *did
 * saying what was sent ("" when nothing). Other errors are negative errnos
 * with err set: the daemon disconnects the VM and retries with back-off.
 */
struct memd_backend {
	enum memd_vm_kind kind;
	const char *name;           /* "minivmm", "libvirt": query-vms' "kind" */
	int (*connect)(struct memd *d, struct memd_vm *vm, char *err, size_t errlen);
	void (*disconnect)(struct memd_vm *vm);
	bool (*connected)(const struct memd_vm *vm);
	int (*sample)(struct memd *d, struct memd_vm *vm, uint64_t now_ms, char *err, size_t errlen);
	int (*apply)(struct memd *d, struct memd_vm *vm, const struct memd_vm_decision *dec, char *did,
		     size_t didlen, char *err, size_t errlen);
	/* Adds the backend's own fields to the VM's query-vms object. */
	void (*describe)(const struct memd_vm *vm, json_t *o);
	/* Frees vm->priv when the VM leaves the daemon (after disconnect); may be NULL. */
	void (*release)(struct memd_vm *vm);
};

extern const struct memd_backend memd_backend_minivmm;
extern const struct memd_backend memd_backend_libvirt;

struct memd_vm {
	uint64_t id;
	char name[MEMD_NAME_MAX];
	const struct memd_backend *be;  /* NULL = minivmm (memd_vm_be) */
	void *priv;                 /* the backend's own state (libvirt: the domain) */
	char *path;                 /* minivmm: its QMP socket; libvirt: the connection URI */
	bool discovered;            /* found in the run directory (dropped when its socket goes) */
	struct qmp_client *qc;      /* NULL while not connected */
	pid_t pid;
	char error[256];            /* the last failure, "" when fine */
	bool error_told;
	uint64_t retry_ms;          /* next connection attempt */
	unsigned failures;          /* in a row, for the back-off */
	bool sampled;               /* in the current input */
	/* figures from the last sample */
	struct memd_vm_in in;
	uint64_t rss;               /* process RSS + hugetlb; MEMD_NONE unknown */
	uint64_t compressed;        /* the store's bytes */
	bool has_balloon;
	bool told_no_resident, told_polling;
	/* the last decision */
	char why[MEMD_WHY_MAX];
	uint64_t actions;
};

static inline const struct memd_backend *memd_vm_be(const struct memd_vm *vm)
{
	return vm->be ? vm->be : &memd_backend_minivmm;
}

static inline bool memd_vm_connected(const struct memd_vm *vm)
{
	return memd_vm_be(vm)->connected(vm);
}

/* Adds the VMs in the run directory that are not known yet, drops the ones whose socket is gone. */
void memd_vm_discover(struct memd *d);

/* ---- libvirt connections (backend_libvirt.c) ---- */

#define MEMD_LV_STATS_PERIOD_S 1     /* set on a domain whose balloon has no stats period */
#define MEMD_LV_KEEPALIVE_S    5     /* libvirt keepalive interval ... */
#define MEMD_LV_KEEPALIVE_N    3     /* ... and unanswered probes before the connection counts as lost */
#define MEMD_LV_NS             "urn:minivmm:domain:1"   /* minivmm's <metadata> namespace */

struct memd_lv;

/* Opens every --libvirt connection (a failure is reported and retried, never fatal). */
int memd_lv_start(struct memd *d, char *err, size_t errlen);
/* Each tick: reconnects lost connections whose back-off has passed, handles queued domain events. */
void memd_lv_tick(struct memd *d);
/* Closes every connection; the daemon has removed the VMs first. */
void memd_lv_stop(struct memd *d);
/* The connection a libvirt URI names (NULL none); for the tests. */
struct memd_lv *memd_lv_find(struct memd *d, const char *uri);
bool memd_lv_is_open(const struct memd_lv *lv);
/* Treats a connection as lost, as libvirt's close callback does; for the tests. */
void memd_lv_lost(struct memd_lv *lv, const char *why);
/*
 * Parses minivmm's metadata element as virDomainGetMetadata returns it:
 * <config xmlns="urn:minivmm:domain:1"><memd floor='512' unit='MiB' weight='2'/></config>.
 * floor in bytes (unit as libvirt's, KiB when none), 0/0 when absent;
 * -EINVAL with err naming what is wrong.
 */
int memd_lv_parse_metadata(const char *xml, uint64_t *floor, uint32_t *weight, char *err, size_t errlen);
/* From a domain's XML: has a virtio memballoon, and its stats period (0 none). */
int memd_lv_parse_balloon(const char *xml, bool *has_balloon, int *period);

/* ---- libvirt's event loop on the daemon's (lv_event.c) ---- */

struct event_loop;

/*
 * Registers the daemon's loop as libvirt's event implementation
 * (virEventRegisterImpl: once per process, as libvirt requires, and the
 * one piece of process-wide state here, because libvirt's callbacks carry
 * no context) and attaches it to lp. Handles and timeouts libvirt adds
 * become loop handlers and timerfds; their free callbacks run later from
 * the loop, never inside a libvirt call. detach moves them off the loop
 * (they are re-added on the next attach) and runs pending frees.
 */
int memd_lv_events_attach(struct event_loop *lp, char *err, size_t errlen);
void memd_lv_events_detach(void);

/* ---- ksmd, for the MOM policy's KSM rule with --ksm on (ksm.c) ---- */

#define MEMD_KSM_NFILES 3           /* run, pages_to_scan, sleep_millisecs */

struct memd_ksm {
	bool open;
	char dir[256];
	int fd[MEMD_KSM_NFILES];           /* open from memd_ksm_open to memd_ksm_close */
	uint64_t saved[MEMD_KSM_NFILES];   /* found at start, put back at stop */
	uint64_t cur[MEMD_KSM_NFILES];     /* as we last wrote them */
};

/* Reads and keeps the current settings; -errno with err when KSM is absent. */
int memd_ksm_open(struct memd_ksm *k, const char *dir, char *err, size_t errlen);
/* Current pages_to_scan (MOM's rule adds to it), MEMD_NONE when unknown. */
uint64_t memd_ksm_pages_to_scan(const struct memd_ksm *k);
/* Writes what differs from the last write; *changed says whether anything was. */
int memd_ksm_apply(struct memd_ksm *k, const struct memd_ksm_decision *dec, bool *changed, char *err,
		   size_t errlen);
/* Puts the settings found at open back, and closes. */
void memd_ksm_restore(struct memd_ksm *k);
void memd_ksm_close(struct memd_ksm *k);

/* ---- the daemon (daemon.c) ---- */

struct memd_host_now {
	struct memd_meminfo mi;
	struct memd_psi psi;
	uint64_t budget, usage;     /* MEMD_NONE when the source has none */
	uint64_t cg_usage, cg_limit;
	uint64_t cg_soft;           /* soft limit (v1) or memory.high (v2); MEMD_NONE none */
	uint64_t oom_kills;         /* in the cgroup since the daemon started; MEMD_NONE unknown */
};

struct event_loop;
struct memd_control;

struct memd {
	struct memd_opts o;
	struct memd_config cfg;
	struct memd_policy *policy;
	struct event_loop *loop;
	struct memd_cgroup cg;
	bool have_cg;
	uint64_t oom_base, oom_seen;   /* the cgroup's oom_kill count at start, at the last tick */
	struct memd_ksm ksm;        /* open with --ksm on */
	bool ksm_told;              /* a failed write was said */
	int psi_fd;                 /* PSI trigger, -1 none */
	char psi_file[64];
	bool psi_fired;
	uint64_t psi_triggers;
	int timer_fd;
	int sig_fd;                 /* the program's signalfd, -1 none */
	uint64_t start_ms, last_tick_ms, next_metrics_ms, ticks;
	uint64_t next_id;
	struct memd_vm *vm[MEMD_MAX_VMS];
	int nvm;
	struct memd_host_now host;
	struct memd_input in;
	struct memd_vm_in vin[MEMD_MAX_VMS];
	struct memd_output out;
	bool have_out;
	enum memd_state state;
	uint64_t decisions;
	struct memd_control *ctl;
	FILE *log;
	struct memd_lv *lv[MEMD_MAX_SPECS];  /* libvirt connections, one per --libvirt */
	int nlv;
	bool ticking;               /* inside memd_tick: VMs are not added or dropped meanwhile */
};

int memd_start(struct memd *d, char *err, size_t errlen);
void memd_stop(struct memd *d);
/* One round: discover, sample, decide, act, record. psi: a trigger fired. */
void memd_tick(struct memd *d, bool psi);
/* Adds a VM by socket path (discovered: from the run directory). */
int memd_add_vm(struct memd *d, const char *path, const char *name, bool discovered);
/* Adds a VM of any backend (priv its state, released with it also on failure); *out the VM. */
int memd_add_vm_be(struct memd *d, const struct memd_backend *be, void *priv, const char *where,
		   const char *name, bool discovered, struct memd_vm **out);
void memd_remove_vm(struct memd *d, int i, const char *why);
/* Milliseconds on the monotonic clock. */
uint64_t memd_now_ms(void);
/* Sum of the floors in force for the known VMs. */
uint64_t memd_floor_sum(const struct memd *d);
/* Switches to budget mode with bytes; -EINVAL with err when below the floors. */
int memd_set_budget(struct memd *d, uint64_t bytes, char *err, size_t errlen);
int memd_set_policy(struct memd *d, const char *name, char *err, size_t errlen);
const char *memd_source_name(enum memd_source s);
/* What query-host and query-vms answer (new references). */
json_t *memd_host_json(struct memd *d);
json_t *memd_vms_json(struct memd *d);
void memd_log_msg(struct memd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- control socket (control.c) ---- */

#define MEMD_CTL_MAX_LINE    65536
#define MEMD_CTL_MAX_OUT     (1u << 20)
#define MEMD_CTL_MAX_CLIENTS 16

int memd_control_open(struct memd *d, const char *path, char *err, size_t errlen);
void memd_control_close(struct memd *d);
/* Sends an event (data stolen) to every negotiated client. */
void memd_event(struct memd *d, const char *name, json_t *data);
/* Runs one command line as a client would send it; the reply (new ref) or
 * NULL when the line holds nothing to answer. For the unit tests. */
json_t *memd_control_handle(struct memd *d, const char *line, size_t len, bool *negotiated);

/* ---- timeline and metrics (timeline.c) ---- */

/* One JSON line (record stolen) with "time" added. */
void memd_timeline(struct memd *d, const char *type, json_t *record);
/* The host's and every VM's figures of this tick. */
void memd_timeline_sample(struct memd *d);
int memd_metrics_write(struct memd *d, const char *path, char *err, size_t errlen);
/* The Prometheus text (malloc'd) that memd_metrics_write puts in the file. */
char *memd_metrics_text(struct memd *d);

#endif
