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

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct vm;
struct mm_manager;

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
 * Creates the manager for vm (vm->mem must exist). opts is the --mm option
 * string ("zero=on,compress=on,dedup=on,zstd-level=1,cold-age=30,policy=clock,
 * max-refault-rate=R,ksm=off") or NULL for defaults. On a bad option, err
 * gets a one-line message naming the option and the accepted values.
 */
int mmgr_create(struct vm *vm, const char *opts, char *err, size_t errlen);
/* Starts background threads (scanner, fault service); call after vm_load. */
int mmgr_start(struct vm *vm);
void mmgr_destroy(struct vm *vm);

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
