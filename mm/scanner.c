/*
 * scanner: cold tracking and the reclaim pipeline, on one background thread
 * whose CPU time is accounted (CLOCK_THREAD_CPUTIME_ID).
 *
 * Each pass reads KVM's dirty log (write recency per page), ages the pages
 * that were not written, feeds the refault rate to the adaptive cold-age
 * controller, asks the policy for victims and evicts them:
 *   register the chunk with userfaultfd (MISSING + WP) if it is not yet;
 *   write-protect the victims so no write can slip in between the copy and
 *   the discard; zero pages are only discarded; others go to the store
 *   (dedup, then zstd); discard the backing; release the write protection
 *   (blocked writers then fault the page back in through uffd.c).
 * Hugetlb backing is evicted per huge page, only when all its pieces are
 * cold (or given up); pieces that do not compress are then stored raw.
 * Chunks left with nothing evicted are unregistered, so never-touched memory
 * costs no userfaultfd round trips.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "mm/manager_priv.h"
#include "vmm/lib/sandbox.h"

#define MM_VICTIM_BATCH  512
#define MM_LOCK_BATCH    64          /* pages per chunk-lock hold: bounds fault latency */
#define MM_PASS_LIMIT    (64u << 20 >> MM_PAGE_SHIFT)   /* regular pass: at most 64 MiB */
#define MM_TARGET_PASS_LIMIT (256u << 20 >> MM_PAGE_SHIFT) /* toward a resident target: 256 MiB a pass */

bool mm_page_is_zero(const void *page)
{
	const uint64_t *q = page;

	for (unsigned i = 0; i < MM_PAGE_SIZE / 8; i += 8) {
		if (q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7])
			return false;
	}
	return true;
}

#ifdef __SANITIZE_THREAD__
/* TSan's runtime exports these; gcc 12's sanitizer/tsan_interface.h does not declare them. */
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);

const void *mm_wp_page_view(const void *p, void *buf)
{
	__tsan_ignore_thread_begin();
	memcpy(buf, p, MM_PAGE_SIZE);
	__tsan_ignore_thread_end();
	return buf;
}
#else
const void *mm_wp_page_view(const void *p, void *buf)
{
	(void)buf;
	return p;
}
#endif

/* ---- dirty logging ---- */

static int scan_dirty_init(struct mm_manager *m)
{
	int ret;

	if (!m->ops.dirty_log || !m->ops.dirty_fetch)
		return 0;   /* no VM (benchmarks): every resident page just ages */
	for (int i = 0; i < m->gm->nr_regions; i++) {
		uint64_t pages = m->gm->regions[i].size >> MM_PAGE_SHIFT;
		m->dirty[i] = calloc((pages + 63) / 64, sizeof(uint64_t));
		if (!m->dirty[i])
			return -ENOMEM;
	}
	ret = m->ops.dirty_log(m->ops_opaque, true);
	if (ret) {
		log_err("mm", "cannot turn on KVM dirty logging (%s): pages will look cold as soon "
			"as they age, writes are not seen", strerror(-ret));
		return 0;
	}
	m->dirty_log = true;
	return 0;
}

/* Takes the dirty bitmaps (KVM clears and re-protects them). */
static void scan_fetch_dirty(struct mm_manager *m)
{
	for (int i = 0; m->dirty_log && i < m->gm->nr_regions; i++) {
		int ret = m->ops.dirty_fetch(m->ops_opaque, i, m->dirty[i]);
		if (ret) {
			/* Unknown writes: count every page as written rather than evict hot ones. */
			log_err("mm", "reading KVM's dirty log of region %d: %s", i, strerror(-ret));
			memset(m->dirty[i], 0xff, ((m->gm->regions[i].size >> MM_PAGE_SHIFT) + 63) / 64 * 8);
		}
	}
}

static bool scan_dirty_bit(struct mm_manager *m, uint64_t idx)
{
	uint64_t off = idx << MM_PAGE_SHIFT;

	if (!m->dirty_log)
		return false;
	for (int i = 0; i < m->gm->nr_regions; i++) {
		const struct mm_region *r = &m->gm->regions[i];
		if (off >= r->offset && off - r->offset < r->size) {
			uint64_t b = (off - r->offset) >> MM_PAGE_SHIFT;
			return (m->dirty[i][b / 64] >> (b % 64)) & 1;
		}
	}
	return false;
}

/* Sets a page's state under its chunk lock (observations race with faults). */
static void scan_locked_set(struct mm_manager *m, uint64_t idx, enum mm_page_state from,
			    enum mm_page_state to)
{
	struct mm_chunk *ch = ps_chunk(&m->ps, idx);

	pthread_mutex_lock(&ch->lock);
	if (ps_state(&m->ps, idx) == from)
		ps_set_state(&m->ps, idx, to, 0);
	pthread_mutex_unlock(&ch->lock);
}

static void scan_touched(struct mm_manager *m, uint64_t idx)
{
	if (!(ps_update(&m->ps, idx, PS_TOUCHED, PS_TOUCHED) & PS_TOUCHED))
		atomic_fetch_add(&m->balloon_touched, 1);
}

/* One observation of every page: writes (dirty log) and residency (mincore). */
static void scan_observe(struct mm_manager *m, bool force)
{
	uint8_t *vec = m->mincore_vec;
	bool have_vec = vec && mincore(m->gm->base, m->gm->ram_size, vec) == 0;

	uint64_t host = 0, idle[MM_IDLE_BUCKETS] = { 0 };
	unsigned idle_ticks[MM_IDLE_BUCKETS];

	for (int k = 0; k < MM_IDLE_BUCKETS; k++) {
		uint64_t t = ((uint64_t)MM_IDLE_SECONDS[k] * 1000 + m->o.scan_period_ms - 1) / m->o.scan_period_ms;
		idle_ticks[k] = t > PS_AGE_MAX ? PS_AGE_MAX : (unsigned)t;
	}
	scan_fetch_dirty(m);
	for (uint64_t idx = 0; idx < m->ps.nr_pages; idx++) {
		if (idx % 64 == 0)
			host = mm_take_host_written(m->gm, idx / 64);
		/* Pages the VMM writes (used rings) are as hot as guest-written ones. */
		bool written = scan_dirty_bit(m, idx) || (host >> (idx % 64) & 1);
		bool present = have_vec && (vec[idx] & 1);
		enum mm_page_state st = ps_state(&m->ps, idx);

		switch (st) {
		case MM_PAGE_UNTOUCHED:
			if (written || present)
				scan_locked_set(m, idx, MM_PAGE_UNTOUCHED, MM_PAGE_RESIDENT);
			break;
		case MM_PAGE_REPORTED:
			if (written)
				scan_locked_set(m, idx, MM_PAGE_REPORTED, MM_PAGE_RESIDENT);
			break;
		case MM_PAGE_BALLOONED:
			/* Hugetlb pieces stay mapped (zeroed) until the whole page goes. */
			if (written || (present && !m->hugetlb))
				scan_touched(m, idx);
			break;
		default:
			break;
		}
		if (written) {
			ps_age(&m->ps, idx, true);
		} else if (!force) {
			unsigned age = ps_age(&m->ps, idx, false);

			uint64_t e = ps_get(&m->ps, idx);

			/* pages found incompressible are skipped by reclaim: not what a target can take */
			if (ps_state_of(e) == MM_PAGE_RESIDENT && !(e & PS_SKIP))
				for (int k = 0; k < MM_IDLE_BUCKETS && age >= idle_ticks[k]; k++)
					idle[k]++;
		}
	}
	/* A forced pass does not age pages, so its counts would say nothing. */
	if (!force)
		for (int k = 0; k < MM_IDLE_BUCKETS; k++)
			atomic_store(&m->idle_pages[k], idle[k]);
}

/* ---- eviction ---- */

struct scan_victim {
	uint64_t idx;
	enum mm_page_state st;
	uint32_t handle;
};

/* Frees the backing of n pages from idx; 0 or -errno (the pages are intact then). */
static int scan_discard(struct mm_manager *m, uint64_t idx, uint64_t n)
{
	int ret = mm_discard(m->gm, mm_idx_gpa(m, idx), n << MM_PAGE_SHIFT);

	if (ret) {
		atomic_fetch_add(&m->discard_errors, 1);
		log_err("mm", "reclaim: discard at GPA 0x%llx failed: %s; the pages stay resident",
			(unsigned long long)mm_idx_gpa(m, idx), strerror(-ret));
		return ret;
	}
	atomic_fetch_add(&m->reclaim_discarded_bytes, n << MM_PAGE_SHIFT);
	return 0;
}

/* Drops the store references of victims that stay resident. */
static void scan_unstore(struct mm_manager *m, const struct scan_victim *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].st != MM_PAGE_ZERO)
			mm_store_release(m->store, v[i].handle);
}

/* Runs body for each run [lo, lo+n) of consecutive indices in a sorted list. */
#define FOR_EACH_RUN(list, cnt, field, lo, n, body)                             \
	for (size_t _i = 0; _i < (cnt);) {                                      \
		uint64_t lo = (list)[_i] field, n = 1;                           \
		while (_i + n < (cnt) && (list)[_i + n] field == lo + n)         \
			n++;                                                     \
		_i += n;                                                         \
		body;                                                            \
	}

/* Releases the write protection of each run of a sorted index list. */
static void scan_release_runs(struct mm_manager *m, const uint64_t *list, size_t cnt)
{
	FOR_EACH_RUN(list, cnt, , lo, n, mm_uffd_wp(m, lo, n, false));
}

/* Stores one page's contents; fills v. 0, or -E2BIG (leave resident). */
static int scan_store_page(struct mm_manager *m, uint64_t idx, bool allow_raw, struct scan_victim *v,
			   struct mm_reclaim_result *r)
{
	uint8_t copy[MM_PAGE_SIZE];
	const uint8_t *p = mm_wp_page_view(mm_idx_hva(m, idx), copy);
	bool dedup = false;
	int ret;

	v->idx = idx;
	v->handle = 0;
	if (m->o.zero && mm_page_is_zero(p)) {
		v->st = MM_PAGE_ZERO;
		return 0;
	}
	if (!m->o.compress && !m->o.dedup)
		return -E2BIG;
	ret = mm_store_put(m->store, p, idx + 1, allow_raw, &v->handle, &dedup);
	if (ret)
		return ret;
	v->st = dedup ? MM_PAGE_SHARED : MM_PAGE_COMPRESSED;
	if (!dedup)
		r->stored_bytes += mm_store_csize(m->store, v->handle);
	return 0;
}

static void scan_account(struct mm_manager *m, const struct scan_victim *v, struct mm_reclaim_result *r)
{
	switch (v->st) {
	case MM_PAGE_ZERO:
		r->zero++;
		atomic_fetch_add(&m->evicted_zero, 1);
		break;
	case MM_PAGE_SHARED:
		r->shared++;
		atomic_fetch_add(&m->evicted_shared, 1);
		break;
	default:
		r->compressed++;
		atomic_fetch_add(&m->evicted_compressed, 1);
		break;
	}
	m->pol.ops->evicted(&m->pol, v->idx);
}

static void scan_mark_skip(struct mm_manager *m, uint64_t idx, int why)
{
	ps_update(&m->ps, idx, PS_SKIP | PS_SKIPCNT_MASK,
		  PS_SKIP | ((uint64_t)MM_SKIP_PASSES << PS_SKIPCNT_SHIFT));
	if (why == -E2BIG)
		atomic_fetch_add(&m->skipped_incompressible, 1);
}

/* Evicts up to MM_LOCK_BATCH sorted victims of one chunk (4 KiB backings). */
static void scan_evict_batch(struct mm_manager *m, uint64_t chunk, const uint64_t *idxs, size_t cnt,
			     struct mm_reclaim_result *r)
{
	struct mm_chunk *ch = &m->ps.chunks[chunk];
	uint64_t live[MM_LOCK_BATCH];
	struct scan_victim ev[MM_LOCK_BATCH];
	size_t nlive = 0, nev = 0;
	unsigned char *vec;

	pthread_mutex_lock(&ch->lock);
	if (mm_uffd_register(m, chunk)) {
		pthread_mutex_unlock(&ch->lock);
		return;
	}
	for (size_t i = 0; i < cnt; i++) {
		uint64_t e = ps_get(&m->ps, idxs[i]);
		if (ps_state_of(e) != MM_PAGE_RESIDENT || (e & PS_SKIP))
			continue;
		live[nlive++] = idxs[i];
	}
	/* Only present pages are read: reading an absent one in a registered
	 * chunk would fault into the fault service, which waits for this lock. */
	vec = nlive ? m->mincore_vec + live[0] : NULL;   /* scanner-thread scratch, one byte per page */
	if (nlive && mincore(mm_idx_hva(m, live[0]), (live[nlive - 1] - live[0] + 1) << MM_PAGE_SHIFT,
			     vec) == 0) {
		size_t k = 0;
		for (size_t i = 0; i < nlive; i++) {
			if (vec[live[i] - live[0]] & 1)
				live[k++] = live[i];
			else
				ps_set_state(&m->ps, live[i], MM_PAGE_UNTOUCHED, 0);
		}
		nlive = k;
	} else {
		nlive = 0;
	}
	FOR_EACH_RUN(live, nlive, , lo, n, {
		int wret = mm_uffd_wp(m, lo, n, true);
		if (wret) {
			/* Release what was protected; nothing was copied yet. */
			log_err("mm", "reclaim: write-protect failed: %s", strerror(-wret));
			scan_release_runs(m, live, nlive);
			pthread_mutex_unlock(&ch->lock);
			return;
		}
	});
	for (size_t i = 0; i < nlive; i++) {
		r->scanned++;
		int ret = scan_store_page(m, live[i], false, &ev[nev], r);
		if (ret == 0) {
			nev++;
		} else if (ret == -E2BIG || ret == -ENOSPC) {
			/* incompressible, or the store is at --mm store-max: stays resident, retried later */
			scan_mark_skip(m, live[i], ret);
			r->skipped++;
		} else {
			break;
		}
	}
	/* A run whose discard fails keeps its backing: it stays RESIDENT, not
	 * stored, so the table never claims memory that was not freed. */
	size_t first = 0;
	FOR_EACH_RUN(ev, nev, .idx, lo, n, {
		size_t at = first;
		first += n;
		if (scan_discard(m, lo, n)) {
			scan_unstore(m, &ev[at], n);
			for (size_t k = at; k < at + n; k++)
				ev[k].st = MM_PAGE_RESIDENT;
		}
	});
	for (size_t i = 0; i < nev; i++) {
		if (ev[i].st == MM_PAGE_RESIDENT)
			continue;
		ps_set_state(&m->ps, ev[i].idx, ev[i].st, ev[i].handle);
		scan_account(m, &ev[i], r);
		r->freed_bytes += MM_PAGE_SIZE;
	}
	scan_release_runs(m, live, nlive);
	pthread_mutex_unlock(&ch->lock);
}

/*
 * Evicts a whole huge page (hugetlb) when every piece is cold or given up.
 * Given pieces are not stored: with the huge page frozen they must all read
 * zero (huge.c), and a discarded piece reads zero again; one that holds data
 * was reused, and the huge page stays this pass.
 */
static void scan_evict_huge(struct mm_manager *m, uint64_t chunk, unsigned cold_ticks, bool force,
			    struct mm_reclaim_result *r)
{
	struct mm_chunk *ch = &m->ps.chunks[chunk];
	uint64_t first = chunk * m->ps.chunk_pages, n = mm_chunk_npages(m, chunk), resident = 0;
	struct scan_victim *ev = NULL;
	size_t nev = 0;
	bool ok = true;

	if (n != m->ps.chunk_pages)
		return;
	pthread_mutex_lock(&ch->lock);
	for (uint64_t i = 0; i < n && ok; i++) {
		uint64_t e = ps_get(&m->ps, first + i);
		enum mm_page_state st = ps_state_of(e);
		if (st == MM_PAGE_RESIDENT) {
			ok = mm_policy_candidate(e, cold_ticks, force);
			resident++;
		} else if (ps_is_evicted(st)) {
			ok = false;
		}
	}
	if (!ok || !resident || !mm_chunk_present(m, chunk) || mm_huge_freeze(m, chunk))
		goto out;
	if (mm_huge_settle_given(m, chunk))
		goto thaw;
	ev = malloc(n * sizeof(*ev));
	for (uint64_t i = 0; ev && i < n; i++) {
		if (ps_is_given(ps_state(&m->ps, first + i)))
			continue;
		r->scanned++;
		if (scan_store_page(m, first + i, true, &ev[nev], r)) {
			ok = false;
			break;
		}
		nev++;
	}
	if (!ev || !ok) {
		if (ev)
			scan_unstore(m, ev, nev);
		goto thaw;
	}
	if (scan_discard(m, first, n)) {
		scan_unstore(m, ev, nev);
		goto thaw;
	}
	for (size_t i = 0; i < nev; i++) {
		ps_set_state(&m->ps, ev[i].idx, ev[i].st, ev[i].handle);
		scan_account(m, &ev[i], r);
	}
	r->huge_pages++;
	r->freed_bytes += n << MM_PAGE_SHIFT;
	atomic_fetch_add(&m->evicted_huge, 1);
thaw:
	mm_huge_thaw(m, chunk);
out:
	pthread_mutex_unlock(&ch->lock);
	free(ev);
}

static int scan_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void scan_unregister_empty(struct mm_manager *m)
{
	for (uint64_t c = 0; c < m->ps.nr_chunks; c++) {
		struct mm_chunk *ch = &m->ps.chunks[c];
		/* both fields change under the chunk lock (faults, give-ups): an
		 * unlocked look first would be a data race */
		pthread_mutex_lock(&ch->lock);
		if (ch->registered && !ch->n_evicted)
			mm_uffd_unregister(m, c);
		pthread_mutex_unlock(&ch->lock);
	}
}

/*
 * Evicts what the policy selects at cold_ticks (everything resident when
 * force) until limit pages were selected or, with bytes, about that much
 * host memory was freed in this pass.
 */
static void scan_evict_selected(struct mm_manager *m, unsigned cold_ticks, bool force, uint64_t limit,
				uint64_t bytes, struct mm_reclaim_result *r)
{
	uint64_t selected = 0;

	while (selected < limit && !m->stop) {
		size_t n = m->pol.ops->select(&m->pol, cold_ticks, force, m->victims, MM_VICTIM_BATCH);
		if (!n)
			break;
		selected += n;
		qsort(m->victims, n, sizeof(uint64_t), scan_cmp_u64);
		/* A sweep that wrapped may name a page twice: evicting it twice would
		 * store it twice and leak a reference. */
		size_t u = 0;
		for (size_t i = 0; i < n; i++)
			if (!u || m->victims[u - 1] != m->victims[i])
				m->victims[u++] = m->victims[i];
		n = u;
		for (size_t i = 0; i < n;) {
			uint64_t chunk = m->victims[i] / m->ps.chunk_pages;
			size_t j = i;
			while (j < n && m->victims[j] / m->ps.chunk_pages == chunk && j - i < MM_LOCK_BATCH)
				j++;
			if (m->hugetlb) {
				while (j < n && m->victims[j] / m->ps.chunk_pages == chunk)
					j++;
				scan_evict_huge(m, chunk, cold_ticks, force, r);
			} else {
				scan_evict_batch(m, chunk, &m->victims[i], j - i, r);
			}
			i = j;
		}
		if (bytes && r->freed_bytes >= bytes)
			break;
	}
}

/*
 * The resident target (mmgr_set_resident_target): when guest RAM resident
 * on the host is above it, evict cold pages first, then pages written ever
 * more recently (halving the age threshold), but never pages written in the
 * last scan period: a target is a wish, a working set is not evicted for it.
 */
static void scan_toward_target(struct mm_manager *m, unsigned cold_ticks, struct mm_reclaim_result *r)
{
	uint64_t target = atomic_load(&m->resident_target), res, excess;

	if (!target)
		return;
	res = mm_resident_bytes(m->gm);
	if (res <= target + r->freed_bytes)
		return;
	excess = res - target - r->freed_bytes;
	uint64_t limit = excess >> MM_PAGE_SHIFT;
	if (limit > MM_TARGET_PASS_LIMIT)
		limit = MM_TARGET_PASS_LIMIT;
	uint64_t goal = r->freed_bytes + excess;
	atomic_fetch_add(&m->target_passes, 1);
	for (unsigned t = cold_ticks; r->freed_bytes < goal && !m->stop; t /= 2) {
		scan_evict_selected(m, t ? t : 1, false, limit, goal, r);
		if (t <= 1)
			break;
	}
}

/* Starts dirty logging on the first pass, once the guest ran. */
static void scan_first_pass(struct mm_manager *m)
{
	uint64_t v;

	/* Dirty logging makes KVM map the slots with 4 KiB pages: the 2 MiB
	 * mappings it had until then are kept for the figures. */
	if (m->ops.stat && !m->ops.stat(m->ops_opaque, "pages_2m", &v)) {
		m->pages_2m_start = v;
		atomic_store(&m->have_pages_2m_start, true);
	}
	m->dirty_tried = true;
	if (scan_dirty_init(m))
		log_err("mm", "no memory for dirty bitmaps: writes are not tracked");
}

/* Feeds the refault rate since the last regular pass to the cold-age controller. */
static void scan_control(struct mm_manager *m)
{
	uint64_t now = now_ns(), rf = atomic_load(&m->refaults);

	if (m->last_ctrl_ns) {
		double age = mm_ctrl_update(&m->ctrl, rf - m->last_ctrl_refaults,
					    (double)(now - m->last_ctrl_ns) / 1e9);
		atomic_store(&m->cold_age_ms, (uint64_t)(age * 1000));
	}
	m->last_ctrl_ns = now;
	m->last_ctrl_refaults = rf;
}

static void scan_pass(struct mm_manager *m, bool force, uint64_t bytes, struct mm_reclaim_result *r)
{
	uint64_t t0 = now_ns(), c0 = mm_thread_cpu_ns();
	unsigned cold_ticks;

	memset(r, 0, sizeof(*r));
	if (!m->dirty_tried)
		scan_first_pass(m);
	scan_observe(m, force);
	scan_unregister_empty(m);
	if (!force)
		scan_control(m);
	double ticks = m->ctrl.cur_age * 1000.0 / m->o.scan_period_ms;
	cold_ticks = ticks >= PS_AGE_MAX ? PS_AGE_MAX : (unsigned)(ticks + 0.999);

	scan_evict_selected(m, cold_ticks, force, force ? m->ps.nr_pages : MM_PASS_LIMIT, force ? bytes : 0, r);
	if (!force)
		scan_toward_target(m, cold_ticks, r);
	atomic_fetch_add(&m->passes, 1);
	r->seconds = (double)(now_ns() - t0) / 1e9;
	r->cpu_seconds = (double)(mm_thread_cpu_ns() - c0) / 1e9;
	atomic_store(&m->scanner_cpu_ns, mm_thread_cpu_ns());
}

/*
 * The scanner's calls (strace of the mm and resident-target tests, and the
 * reclaim path read from the code): residency (mincore), discarding what
 * it evicted (madvise, fallocate PUNCH_HOLE), userfaultfd registration and
 * write protection of the chunks it evicts from, the resident figure from
 * the early /proc/self/smaps descriptor (pread), timed waits (futex, base).
 * Dirty logging, KVM statistics and stopping the VM are the ops' (their
 * list, from the machine).
 */
static const struct sb_rule scan_thread_rules[] = {
	SB_SYS(mincore), SB_SYS(fallocate), SB_SYS(pread64),
	SB_IOCTL(UFFDIO_REGISTER), SB_IOCTL(UFFDIO_UNREGISTER), SB_IOCTL(UFFDIO_WRITEPROTECT),
	SB_IOCTL(UFFDIO_WAKE), SB_IOCTL(UFFDIO_ZEROPAGE), SB_IOCTL(UFFDIO_COPY),
};
static const struct sb_list scan_thread_sandbox = SB_LIST("mm-scan", scan_thread_rules);

static void *scan_thread(void *arg)
{
	static const struct sb_list *const own[] = { &scan_thread_sandbox, NULL };
	struct mm_manager *m = arg;
	uint64_t next = now_ns() + (uint64_t)m->o.scan_period_ms * 1000000ull;
	struct mm_reclaim_result r;

	if (sandbox_enter2("mm-scan", own, m->ops.sandbox) < 0) {
		if (m->ops.stop)
			m->ops.stop(m->ops_opaque, STOP_INTERNAL);
		return NULL;
	}
	pthread_mutex_lock(&m->req_lock);
	while (!m->stop) {
		if (m->req_pending && !m->req_done) {
			uint64_t bytes = m->req_bytes;
			pthread_mutex_unlock(&m->req_lock);
			scan_pass(m, true, bytes, &r);
			pthread_mutex_lock(&m->req_lock);
			m->req_res = r;
			m->req_done = true;
			pthread_cond_broadcast(&m->req_cond);
			continue;
		}
		if (now_ns() >= next || m->kick) {
			m->kick = false;
			pthread_mutex_unlock(&m->req_lock);
			scan_pass(m, false, 0, &r);
			pthread_mutex_lock(&m->req_lock);
			next = now_ns() + (uint64_t)m->o.scan_period_ms * 1000000ull;
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t wait = next - now_ns();
		if (wait > next)   /* wrapped: due */
			wait = 0;
		ts.tv_sec += (time_t)(wait / 1000000000ull);
		ts.tv_nsec += (long)(wait % 1000000000ull);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&m->req_cond, &m->req_lock, &ts);
	}
	pthread_mutex_unlock(&m->req_lock);
	return NULL;
}

int mm_scanner_start(struct mm_manager *m)
{
	int ret;

	m->victims_cap = MM_VICTIM_BATCH;
	m->victims = calloc(m->victims_cap, sizeof(*m->victims));
	m->mincore_vec = malloc(m->ps.nr_pages);
	if (!m->victims || !m->mincore_vec)
		return -ENOMEM;
	ret = pthread_create(&m->scan_thread, NULL, scan_thread, m);
	if (ret)
		return -ret;
	pthread_setname_np(m->scan_thread, "mm-scan");
	m->scan_running = true;
	return 0;
}

void mm_scanner_stop(struct mm_manager *m)
{
	if (m->scan_running) {
		pthread_mutex_lock(&m->req_lock);
		m->stop = true;
		pthread_cond_broadcast(&m->req_cond);
		pthread_mutex_unlock(&m->req_lock);
		pthread_join(m->scan_thread, NULL);
		m->scan_running = false;
	}
	for (int i = 0; i < MM_MAX_REGIONS; i++) {
		free(m->dirty[i]);
		m->dirty[i] = NULL;
	}
	free(m->victims);
	m->victims = NULL;
	free(m->mincore_vec);
	m->mincore_vec = NULL;
}

int mm_scanner_reclaim(struct mm_manager *m, uint64_t bytes, struct mm_reclaim_result *res)
{
	int ret = 0;

	pthread_mutex_lock(&m->req_lock);
	if (!m->scan_running) {
		pthread_mutex_unlock(&m->req_lock);
		return -ENOTCONN;
	}
	while (m->req_pending && !m->stop)
		pthread_cond_wait(&m->req_cond, &m->req_lock);
	m->req_pending = true;
	m->req_done = false;
	m->req_bytes = bytes;
	pthread_cond_broadcast(&m->req_cond);
	while (!m->req_done && !m->stop)
		pthread_cond_wait(&m->req_cond, &m->req_lock);
	if (m->req_done)
		*res = m->req_res;
	else
		ret = -ECANCELED;
	m->req_pending = false;
	m->req_done = false;
	pthread_cond_broadcast(&m->req_cond);
	pthread_mutex_unlock(&m->req_lock);
	return ret;
}

void mm_scanner_kick(struct mm_manager *m)
{
	pthread_mutex_lock(&m->req_lock);
	m->kick = true;
	pthread_cond_broadcast(&m->req_cond);
	pthread_mutex_unlock(&m->req_lock);
}
