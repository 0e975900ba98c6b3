/*
 * balloon: the virtio-balloon device model (virtio 1.2, 5.5) over virtio-mmio
 * (balloon.c, inflate.c) and its QMP control (balloon/qmp.c). Inflate and
 * free page reporting give guest pages up through the memory manager
 * (mmgr_give_up), which frees the host backing with the primitive that
 * really frees it; deflate takes them back. Which pages are in the balloon
 * is the manager's page-state table's to say (mmgr_page_state): the device
 * keeps no copy of it.
 *
 * Queue numbering is the Linux driver's: inflate 0, deflate 1, stats 2 when
 * STATS_VQ is negotiated, then reporting (3, or 2 without STATS_VQ).
 *
 * Threads and locks (see vmm/virtio/virtio.h for the transport's two locks):
 * - the device worker ("balloon-wk"; the vCPU thread when KVM refuses
 *   ioeventfd) serves the queues with the queue lock held: inflate, deflate,
 *   reporting and stats buffers, the manager calls and their memsets;
 * - vCPU threads reach config space and feature negotiation with the
 *   register lock held, and reset with both;
 * - the main thread (QMP, the stats timer) sets the target and reads figures
 *   under the register lock, and returns the held stats buffer under the
 *   queue lock. Counters are atomics, readable from any thread.
 *
 * Public entry points return 0 or a negative errno.
 */
#ifndef MINIVMM_BALLOON_H
#define MINIVMM_BALLOON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "vmm/virtio/virtio.h"

struct vm;
struct guest_mem;
struct mm_manager;
struct qmp_registry;

/*
 * The device's ABI comes from the kernel's UAPI headers (Debian 12's
 * linux-libc-dev): VIRTIO_ID_BALLOON, VIRTIO_BALLOON_F_* feature bits,
 * VIRTIO_BALLOON_PFN_SHIFT, struct virtio_balloon_config (config space) and
 * struct virtio_balloon_stat (one packed stats entry), VIRTIO_BALLOON_S_* tags.
 */
#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>

#define BALLOON_PAGE_SIZE (1u << VIRTIO_BALLOON_PFN_SHIFT)

/*
 * Not in Debian 12's headers (Linux 6.1, which stops at
 * VIRTIO_BALLOON_S_HTLB_PGFAIL = 9): the stat tags Linux 6.12 added, with
 * the values of its include/uapi/linux/virtio_balloon.h. Defined only here.
 */
#ifndef VIRTIO_BALLOON_S_OOM_KILL
#define VIRTIO_BALLOON_S_OOM_KILL       10  /* OOM killer invocations */
#define VIRTIO_BALLOON_S_ALLOC_STALL    11  /* allocation stalls */
#define VIRTIO_BALLOON_S_ASYNC_SCAN     12  /* bytes scanned by kswapd */
#define VIRTIO_BALLOON_S_DIRECT_SCAN    13  /* bytes scanned by direct reclaim */
#define VIRTIO_BALLOON_S_ASYNC_RECLAIM  14  /* bytes reclaimed by kswapd */
#define VIRTIO_BALLOON_S_DIRECT_RECLAIM 15  /* bytes reclaimed directly */
#endif

/* The 16 memory statistics tags Linux 6.12 reports (its VIRTIO_BALLOON_S_NR;
 * Debian 12's header says 10). */
#define BALLOON_NR_STATS (VIRTIO_BALLOON_S_DIRECT_RECLAIM + 1)
/* QEMU's QOM names for them, indexed by tag ("stat-swap-in", ...). */
extern const char *const balloon_stat_names[BALLOON_NR_STATS];

struct balloon_opts {
	bool deflate_on_oom;         /* default on */
	bool free_page_reporting;    /* default on */
	bool must_tell_host;         /* default off */
	uint32_t stats_period;       /* seconds between stats requests, 0 = off (default) */
};

/* What one batch of PFNs did. */
struct balloon_batch {
	uint64_t done;               /* pages inflated or deflated */
	uint64_t ranges;             /* contiguous ranges handed to the manager */
	uint64_t bad;                /* PFNs outside guest RAM */
	uint64_t dup;                /* repeated within the batch */
	uint64_t skipped;            /* inflate: already ballooned; deflate: not ballooned */
	uint64_t failed;             /* pages the manager refused */
};

/* Device state. The comments say which lock guards what (virtio.h); a
 * device driven stand-alone (tests, the benchmark: vio NULL) needs none. */
struct balloon {
	struct vm *vm;
	struct guest_mem *gm;
	struct mm_manager *mgr;      /* the one truth about which pages are given */
	struct virtio_mmio *vio;     /* NULL when stand-alone */
	struct qmp_registry *qmp;    /* where BALLOON_CHANGE goes; NULL: nowhere */
	struct balloon_opts opts;
	uint64_t features;           /* negotiated; written under both locks */

	/* config space: register lock */
	uint32_t num_pages;          /* target balloon size, 4 KiB pages */
	uint32_t actual;             /* driver's balloon size, 4 KiB pages */

	/* counters since creation, written by the queue side, read by QMP */
	_Atomic uint64_t inflated_pages, deflated_pages;
	_Atomic uint64_t bad_pfns, skipped_pfns;
	_Atomic uint64_t reported_bytes, reports;
	_Atomic uint64_t discard_errors;     /* ranges the manager could not give up or take back */

	/* statistics: register lock (parsed by the worker, read by QMP) */
	int64_t stats[BALLOON_NR_STATS];   /* -1: never reported */
	int64_t stats_last_update;         /* unix seconds, 0: never */
	uint64_t stats_updates, stats_unknown_tags;
	/* queue lock: the held stats buffer and the queue side's scratch */
	bool stats_held;                   /* a driver buffer waits on the stats queue */
	uint16_t stats_head;
	uint32_t stats_gen;        /* stats queue generation stats_head belongs to */
	int stats_timer_fd;                /* -1 until a period is set; main thread */

	struct ratelimit log_rl;           /* lines the guest's buffers cause */
	uint32_t *pfns;                    /* scratch for sorting a batch */
	size_t pfns_cap;
	struct vq_chain chain;             /* scratch for the walker */
};

/* ---- used by main.c ---- */

/* Creates the balloon for vm (after vm_create, before vm_load) from the
 * --balloon option string (NULL = defaults) and stores it in vm->balloon.
 * On a bad option err names it. */
int balloon_create(struct vm *vm, const char *opts, char *err, size_t errlen);
/* Stops the stats timer and frees the device; after vCPU threads stopped. */
void balloon_destroy(struct vm *vm);

/* ---- control (QMP, policy) ---- */

/* Sets the guest memory target in bytes (QMP `balloon`): num_pages =
 * (ram - target) / 4 KiB and a config interrupt. -EINVAL with err when the
 * target is <= 0 or above guest RAM, -ENODEV without a balloon (b NULL). */
int balloon_set_target(struct balloon *b, uint64_t target_bytes, char *err, size_t errlen);
/* Guest memory as QEMU reports it: RAM minus the driver's `actual`. */
uint64_t balloon_actual_bytes(struct balloon *b);
/* Sets the stats polling interval (seconds, 0 = off); arms or disarms the timer. */
int balloon_set_stats_period(struct balloon *b, uint32_t seconds);
/* Adds the device's own figures (target, counters) to a query-balloon reply
 * object; which pages are in the balloon is the manager's figure
 * (query-memory-manager). Takes the register lock. */
void balloon_query(struct balloon *b, json_t *obj);

/* ---- device core, also driven directly by unit tests and the benchmark ---- */

/* Parses "deflate-on-oom=on,free-page-reporting=on,stats-period=N,
 * must-tell-host=off" (NULL or "" = defaults). -EINVAL with err naming the
 * option and what it accepts. */
int balloon_parse_opts(const char *s, struct balloon_opts *o, char *err, size_t errlen);
/* Sets up the device state over gm and its memory manager (required: it
 * keeps the page states) without a transport. */
int balloon_init(struct balloon *b, struct guest_mem *gm, struct mm_manager *mgr,
		 const struct balloon_opts *o);
/* Frees what balloon_init allocated. */
void balloon_fini(struct balloon *b);
/* Inflates (gives up) or deflates (takes back) n guest PFNs in any order,
 * host byte order: validated, sorted, coalesced, one manager call per range. */
void balloon_inflate_pfns(struct balloon *b, const uint32_t *pfns, size_t n,
			  struct balloon_batch *res);
void balloon_deflate_pfns(struct balloon *b, const uint32_t *pfns, size_t n,
			  struct balloon_batch *res);
/* Free page reporting of [gpa, gpa+len): the whole 4 KiB pages inside it
 * that are RAM and not ballooned are given up as reported. Bytes given up. */
uint64_t balloon_report_range(struct balloon *b, uint64_t gpa, uint64_t len);
/* Parses a stats buffer (10-byte entries; unknown tags and a trailing
 * partial entry are ignored) and records the update time. Entries parsed. */
int balloon_parse_stats(struct balloon *b, const uint8_t *buf, size_t len);
/* True if the 4 KiB page at gpa is in the balloon (asks the manager). */
bool balloon_page_ballooned(struct balloon *b, uint64_t gpa);
/* Pages in the balloon now (asks the manager). */
uint64_t balloon_nr_ballooned(struct balloon *b);
/* Hands every ballooned page back (device reset): the manager takes them back. */
void balloon_release_all(struct balloon *b);

/* ---- QMP (balloon/qmp.c) ---- */

/* Registers balloon, query-balloon and the QOM object
 * /machine/peripheral/balloon0 in reg with b as their context, and sends
 * b's events there. b NULL (no balloon device): the commands answer
 * DeviceNotActive, as QEMU's do. 0 or -errno. Main thread. */
int balloon_qmp_register(struct qmp_registry *reg, struct balloon *b);
/* BALLOON_CHANGE event with the current `actual`; any thread. */
void balloon_emit_change(struct balloon *b);

/* ---- internal to balloon/ (inflate.c, called by balloon.c) ---- */

/* Grows the PFN scratch buffer to n entries. 0 or -ENOMEM. */
int balloon_scratch(struct balloon *b, size_t n);
/* Serves every available buffer of the inflate or deflate queue (queue lock). */
void balloon_serve_pfns(struct balloon *b, struct virtq *vq, bool inflate);

#endif
