/*
 * mm manager: the page-state table and everything that changes a guest
 * page's state: cold tracking, zero-page elimination, zstd compression,
 * dedup, userfaultfd fault-in, KSM mode, and the discards the balloon asks
 * for. One manager per VM, always created (reclaim features may be off), so
 * that the balloon and the reclaim pipeline agree on every page's state.
 *
 * This header is the contract between the manager (mm/) and the balloon
 * (balloon/) and main.c. Functions return 0 or a negative errno.
 *
 * Threads: create, start and destroy on the main thread; give-up and
 * take-back from one thread at a time (the balloon's worker, which holds
 * its queue lock; the vCPU thread without ioeventfd); the page-state
 * queries from any thread; query and reclaim from the main thread (QMP).
 * The manager's own threads are the scanner and the fault service.
 */
#ifndef MINIVMM_MM_MANAGER_H
#define MINIVMM_MM_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "vmm/lib/sandbox.h"
#include "vmm/lib/stop.h"

struct mm_manager;
struct guest_mem;
struct qmp_registry;
struct mm_cpu_paging;

/* Per-4 KiB page states (see ARCHITECTURE.md). */
enum mm_page_state {
	MM_PAGE_UNTOUCHED = 0,   /* never written by the guest since boot or deflate */
	MM_PAGE_RESIDENT,
	MM_PAGE_ZERO,            /* backing discarded, reads as zero */
	MM_PAGE_COMPRESSED,      /* in the zstd store */
	MM_PAGE_SHARED,          /* in the store, content shared with other pages */
	MM_PAGE_BALLOONED,       /* given to the host through balloon inflation */
	MM_PAGE_REPORTED,        /* reported free by the guest (free page reporting) */
};

/*
 * What the manager needs from the VM it serves. mm never sees the VM: the
 * machine hands it these. Any member may be NULL, and ops itself may be NULL
 * (no VM: unit tests and benchmarks; then writes are not tracked and pages
 * just age). dirty_log and dirty_fetch are called on the scanner thread,
 * stat on the scanner and monitor threads, stop from any thread,
 * cpu_count and cpu_paging on the main thread (the translation inspector).
 */
struct mm_vm_ops {
	/* Turns KVM's dirty logging of guest RAM on or off. */
	int (*dirty_log)(void *opaque, bool on);
	/* Takes and clears the dirty bitmap of RAM region r (gm->regions[r]; one
	 * bit per 4 KiB page of that region). */
	int (*dirty_fetch)(void *opaque, int r, uint64_t *bitmap);
	/* Reads a VM-wide KVM statistic (pages_4k, pages_2m, pages_1g). */
	int (*stat)(void *opaque, const char *name, uint64_t *val);
	/* Stops the VM for this reason; the first caller wins. */
	void (*stop)(void *opaque, enum stop_reason why);
	/* Number of vCPUs. */
	int (*cpu_count)(void *opaque);
	/* Reads vCPU cpu's CR0, CR3, CR4 and EFER (mm/translate.h), safely with
	 * respect to its thread (the VM is paused for the read if it runs).
	 * -ENOENT for no such vCPU, -ESHUTDOWN when the VM is stopping. */
	int (*cpu_paging)(void *opaque, int cpu, struct mm_cpu_paging *out);
	/* What these calls do (sandbox.h), NULL-terminated: the scanner's and
	 * the fault service's filters allow it. NULL: nothing. */
	const struct sb_list *const *sandbox;
};

/* What a thread calling mmgr_give_up()/mmgr_take_back() (or reading the
 * manager's figures) may need: a device worker's filter includes it. */
extern const struct sb_list mm_sandbox_guest_ram;

/*
 * Creates the manager for guest RAM gm (which must outlive it), serving a VM
 * through ops/opaque. opts is the --mm option string ("zero=on,compress=on,
 * dedup=on,zstd-level=1,cold-age=30,policy=clock,max-refault-rate=R,ksm=off")
 * or NULL for defaults. On a bad option, err gets a one-line message naming
 * the option and the accepted values.
 */
int mmgr_create(struct guest_mem *gm, const struct mm_vm_ops *ops, void *opaque, const char *opts,
		struct mm_manager **out, char *err, size_t errlen);
/* Starts background threads (scanner, fault service); call once the guest
 * image is loaded (its pages are then resident, not untouched). */
int mmgr_start(struct mm_manager *m);
/* Stops the threads and frees everything; NULL is fine. */
void mmgr_destroy(struct mm_manager *m);

/*
 * The guest gives up [gpa, gpa+len) (4 KiB aligned) through the balloon
 * (why = MM_PAGE_BALLOONED) or free page reporting (MM_PAGE_REPORTED).
 * The manager marks the pages and frees their host backing with the
 * primitive that really frees it; for hugetlb it frees a huge page only once
 * all its 4 KiB pieces are given up. Returns -EINVAL if the range is not RAM,
 * -EEXIST if a page in it is already ballooned (nothing changed then).
 */
int mmgr_give_up(struct mm_manager *m, uint64_t gpa, uint64_t len, enum mm_page_state why);

/* The guest takes [gpa, gpa+len) back (balloon deflate, or a reported page
 * reused): the pages become ordinary guest memory again. */
int mmgr_take_back(struct mm_manager *m, uint64_t gpa, uint64_t len);

/* Current state of the page containing gpa; -EINVAL outside RAM. */
int mmgr_page_state(struct mm_manager *m, uint64_t gpa);

/* Adds the manager's figures to a query-memory-manager reply object. */
void mmgr_query(struct mm_manager *m, json_t *obj);

/*
 * Forces an immediate reclaim pass in which every resident page counts as
 * cold, stopping once about bytes of host memory were freed (0: all it can).
 * It runs on the scanner thread (its CPU time is accounted there) and the
 * caller waits for it. Returns what the pass did as a new JSON object, or
 * NULL with err filled (reclaim off, or not started).
 */
json_t *mmgr_reclaim(struct mm_manager *m, uint64_t bytes, char *err, size_t errlen);

/*
 * Sets how much guest RAM may stay resident on the host (bytes; 0 clears):
 * each scanner pass then evicts toward it, cold pages first, never pages
 * written within the last scan period. minivmm-memd's cheapest lever before
 * the balloon. -EOPNOTSUPP without reclaim (--mm), -EINVAL above guest RAM;
 * err says which. Any thread; a new target starts a pass at once.
 */
int mmgr_set_resident_target(struct mm_manager *m, uint64_t bytes, char *err, size_t errlen);
/* Compression of newly evicted pages off or on (QMP mm-set-compression); -ENOTSUP with err. Any thread. */
int mmgr_set_compression(struct mm_manager *m, bool on, char *err, size_t errlen);

/* Registers query-memory-manager, mm-set-resident-target and mm-reclaim
 * (the last runs off the main thread) in reg with m as their context
 * (qmp_mm.c), and the translation inspector's query-translation and
 * query-translation-summary (qmp_translate.c). 0 or -errno. Main thread. */
int mmgr_qmp_register(struct qmp_registry *reg, struct mm_manager *m);

/* ---- queries for the balloon (any thread; the table is read atomically) ---- */

/* Pages now in state st (0 without a manager). */
uint64_t mmgr_count(struct mm_manager *m, enum mm_page_state st);
/* Finds the first run of pages in state st at or after *gpa (4 KiB aligned),
 * never crossing a RAM region: 1 with *gpa, *len set to the run, 0 when
 * there is none. For walks such as handing every ballooned page back. */
int mmgr_next_range(struct mm_manager *m, enum mm_page_state st, uint64_t *gpa, uint64_t *len);
/* Ballooned pages of [gpa, gpa+len) that are resident again were touched by
 * the guest while in the balloon (they read as zero then): marks each once
 * (balloon-touched-pages) and returns how many were newly marked. Call
 * before mmgr_take_back, which clears the mark. Not for hugetlb, whose
 * pieces stay mapped: those are judged by their contents (huge.c). */
uint64_t mmgr_mark_touched(struct mm_manager *m, uint64_t gpa, uint64_t len);
/* Ballooned pages found touched so far (balloon-touched-pages). */
uint64_t mmgr_balloon_touched(struct mm_manager *m);

#endif
