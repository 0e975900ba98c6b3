/*
 * manager_priv: the memory manager's internal state, shared by the files
 * that make it up (manager.c options/balloon/query, uffd.c fault service,
 * scanner.c cold tracking and reclaim, ksm.c). Not for other
 * subsystems: they use manager.h.
 */
#ifndef MINIVMM_MM_MANAGER_PRIV_H
#define MINIVMM_MM_MANAGER_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mm/manager.h"
#include "mm/mm.h"
#include "mm/pagestate.h"
#include "mm/policy.h"
#include "mm/store.h"
#include "vmm/lib/clock.h"
#include "vmm/lib/log.h"
#include "vmm/lib/stop.h"

/* Registered chunks at most by default (--mm uffd-chunks): each may split
 * a VMA in two, and vm.max_map_count is 65530 for the whole process. */
#define MM_UFFD_MAX_CHUNKS 16384
/* Passes an incompressible page is left alone. */
#define MM_SKIP_PASSES 32

struct mm_opts {
	bool zero, compress, dedup, ksm;
	bool reclaim;                    /* zero || compress || dedup */
	int zstd_level;
	double cold_age;                 /* seconds: the controller's floor */
	double max_refault_rate;         /* refaults/s, 0: controller off */
	unsigned scan_period_ms;
	uint32_t max_csize;
	uint64_t store_max;     /* --mm store-max: compressed bytes held at most, 0 unbounded */
	uint32_t uffd_chunks;   /* --mm uffd-chunks: chunks registered with userfaultfd at most */
	const struct mm_policy_ops *policy;
};

/* Log-linear latency histogram (about 12% resolution). */
#define MM_HIST_BUCKETS 320

/* Idle thresholds (seconds) of the idle-bytes figures, shortest first. */
#define MM_IDLE_BUCKETS 4
static const unsigned MM_IDLE_SECONDS[MM_IDLE_BUCKETS] = { 2, 5, 10, 30 };
struct mm_hist {
	_Atomic uint64_t b[MM_HIST_BUCKETS];
	_Atomic uint64_t n, sum_ns, max_ns;
};
void mm_hist_add(struct mm_hist *h, uint64_t ns);
/* Value (ns) at percentile pct (0..100); 0 when empty. */
uint64_t mm_hist_pct(struct mm_hist *h, double pct);

struct mm_reclaim_result {
	uint64_t scanned, zero, compressed, shared, skipped, huge_pages;
	uint64_t freed_bytes, stored_bytes;
	double seconds, cpu_seconds;
	int error;
};

#define MM_KSM_SYS_FILES 10

struct mm_manager {
	struct mm_vm_ops ops;            /* all NULL without a VM */
	void *ops_opaque;
	struct guest_mem *gm;
	struct mm_opts o;
	struct mm_pagestate ps;
	struct mm_store *store;
	struct mm_policy pol;
	struct mm_ctrl ctrl;
	bool hugetlb;                    /* eviction per huge page */
	bool started;
	uint64_t pages_2m_start;         /* KVM pages_2m when reclaim started */
	_Atomic bool have_pages_2m_start;   /* set after pages_2m_start: QMP reads both */

	/* KSM figures (ksm.c): /proc/self/ksm_stat (or ksm_merging_pages) and
	 * /sys/kernel/mm/ksm/ files, opened by mm_ksm_enable() before any
	 * thread is confined; -1 where the kernel has none */
	int ksm_self_fd;
	bool ksm_self_is_stat;
	int ksm_sys_fd[MM_KSM_SYS_FILES];

	/* userfaultfd (uffd.c) */
	int uffd;
	int uffd_stop;                   /* eventfd that ends the fault thread */
	uint64_t uffd_features;
	pthread_t fault_thread;
	bool fault_running;
	uint8_t *restore_buf;            /* one host page (huge page for hugetlb) */
	bool restore_buf_used;           /* written since last released (fault thread only) */
	_Atomic uint64_t nr_registered;

	/* scanner (scanner.c) */
	pthread_t scan_thread;
	bool scan_running;
	pthread_mutex_t req_lock;
	pthread_cond_t req_cond;
	bool req_pending, req_done;
	atomic_bool stop;                /* also read by a pass without req_lock, to end early */
	bool kick;                       /* run a regular pass now (a new resident target) */
	uint64_t req_bytes;
	struct mm_reclaim_result req_res;
	bool dirty_log, dirty_tried;
	uint64_t *dirty[MM_MAX_REGIONS];
	uint64_t *victims;
	size_t victims_cap;
	uint8_t *mincore_vec;
	_Atomic uint64_t passes;         /* scanner writes, QMP reads */
	uint64_t last_ctrl_ns, last_ctrl_refaults;
	_Atomic uint64_t cold_age_ms;    /* current threshold, for the query */
	_Atomic uint64_t resident_target;   /* bytes of guest RAM resident wanted; 0: none */
	_Atomic uint64_t target_passes;     /* passes that worked toward it */
	/* Resident pages not written for at least MM_IDLE_SECONDS[k] as of the
	 * last regular pass: how much a resident target can take without
	 * touching the working set (host policies read it; the scanner writes). */
	_Atomic uint64_t idle_pages[MM_IDLE_BUCKETS];

	/* figures */
	_Atomic uint64_t refaults;               /* faults that restored evicted pages */
	_Atomic uint64_t refaulted_pages;
	_Atomic uint64_t zero_fills;             /* never-touched memory in registered chunks */
	_Atomic uint64_t balloon_touched;
	_Atomic uint64_t discarded_bytes;        /* by give_up */
	_Atomic uint64_t evicted_zero, evicted_compressed, evicted_shared, evicted_huge;
	_Atomic uint64_t skipped_incompressible;
	_Atomic uint64_t reclaim_discarded_bytes;
	_Atomic uint64_t scanner_cpu_ns, fault_cpu_ns;
	_Atomic uint64_t checksum_failures;      /* stored pages whose bytes failed their checksum */
	_Atomic uint64_t unresolvable_faults;    /* faults the kernel would not let us resolve */
	_Atomic bool failed;                     /* a page was lost: the VM is stopping */
	_Atomic uint64_t discard_errors;         /* discards the kernel refused (pages kept) */
	_Atomic uint64_t huge_live_pieces;       /* given pieces found holding data (hugetlb) */
	_Atomic uint64_t huge_kept_unverified;   /* huge pages kept: liveness could not be checked */
	_Atomic uint64_t restore_buf_releases;   /* times the huge restore buffer was given back */
	_Atomic uint64_t registrations, unregistrations, reg_cap_hits;
	_Atomic uint64_t wp_faults;
	_Atomic uint64_t throttle_ms;            /* fault service waits over a resident target */
	struct mm_hist fault_hist;

	/* translation inspector (translate_query.c), main thread; -1: not open */
	int pagemap_fd, kpageflags_fd;
};

/* ---- manager.c helpers ---- */
static inline uint8_t *mm_idx_hva(struct mm_manager *m, uint64_t idx)
{
	return m->gm->base + (idx << MM_PAGE_SHIFT);
}
/* Guest-physical address of page idx (backing offsets map to one region). */
uint64_t mm_idx_gpa(struct mm_manager *m, uint64_t idx);
/* Whether a chunk's first page (the huge page for hugetlb) is present. */
bool mm_chunk_present(struct mm_manager *m, uint64_t chunk);
/*
 * A page's contents cannot be restored: stops the VM with reason
 * (STOP_CHECKSUM or STOP_UNRESOLVABLE) and puts the manager in its failed
 * mode, in which every further fault is resolved with zeros so no thread
 * (a vCPU, or a VMM thread reading guest memory) stays blocked while the VM
 * stops; the vCPUs are kicked first, so no guest code runs on those zeros.
 */
void mm_fatal(struct mm_manager *m, uint64_t idx, enum stop_reason reason, const char *why);
uint64_t mm_thread_cpu_ns(void);
/* Pages in chunk c (the last chunk may be short). */
static inline uint64_t mm_chunk_npages(struct mm_manager *m, uint64_t c)
{
	uint64_t first = c * m->ps.chunk_pages;
	uint64_t n = m->ps.nr_pages - first;
	return n < m->ps.chunk_pages ? n : m->ps.chunk_pages;
}

/* ---- uffd.c ---- */
int mm_uffd_open(struct mm_manager *m, char *err, size_t errlen);
int mm_uffd_start(struct mm_manager *m);
void mm_uffd_stop(struct mm_manager *m);
/* Registration changes only under the chunk's lock (scanner, balloon give-up). */
int mm_uffd_register(struct mm_manager *m, uint64_t chunk);
int mm_uffd_unregister(struct mm_manager *m, uint64_t chunk);
/* Write-protects (wp) or releases [idx, idx+n) pages; release wakes writers. */
int mm_uffd_wp(struct mm_manager *m, uint64_t idx, uint64_t n, bool wp);

/* ---- scanner.c ---- */
int mm_scanner_start(struct mm_manager *m);
void mm_scanner_stop(struct mm_manager *m);
/* Runs a forced pass on the scanner thread and waits for it. */
int mm_scanner_reclaim(struct mm_manager *m, uint64_t bytes, struct mm_reclaim_result *res);
/* Runs a regular pass at once instead of at the next period. */
void mm_scanner_kick(struct mm_manager *m);
/* Figures into a JSON object (query.c), for the queries and mm-reclaim's answer. */
void mm_set_u64(json_t *obj, const char *k, uint64_t v);
void mm_set_real(json_t *obj, const char *k, double v);
bool mm_page_is_zero(const void *page);
/*
 * What to read of a guest page that is write-protected (userfaultfd) under
 * its chunk lock: a VMM thread writing it meanwhile (a device's used ring)
 * waits in a fault until the reader is done, an ordering the kernel makes
 * and ThreadSanitizer cannot see. p itself, or in the TSan build a copy in
 * buf (one page) read with the thread's accesses ignored.
 */
const void *mm_wp_page_view(const void *p, void *buf);

/* ---- huge.c: whole-huge-page discards (hugetlb), chunk lock held ---- */
/* Registers the chunk and write-protects its huge page: 0, or -errno when
 * that is impossible (no userfaultfd, registration cap). */
int mm_huge_freeze(struct mm_manager *m, uint64_t chunk);
void mm_huge_thaw(struct mm_manager *m, uint64_t chunk);
/* With the huge page frozen: counts the given pieces that hold data and
 * makes them live (REPORTED -> RESIDENT; BALLOONED marked touched). */
uint64_t mm_huge_settle_given(struct mm_manager *m, uint64_t chunk);
/* Every piece of the present huge page is given up: discards it unless a
 * piece holds data. vouched: all pieces were given in the caller's own
 * request (the guest guarantees them free now), so no check is needed. */
void mm_huge_discard_given(struct mm_manager *m, uint64_t chunk, bool vouched);

/* ---- qmp_translate.c ---- */
int mm_translate_qmp_register(struct qmp_registry *reg, struct mm_manager *m);

/* ---- ksm.c ---- */
int mm_ksm_enable(struct mm_manager *m, char *err, size_t errlen);
void mm_ksm_query(struct mm_manager *m, json_t *obj);
/* Closes what mm_ksm_enable() opened. */
void mm_ksm_close(struct mm_manager *m);

#endif
