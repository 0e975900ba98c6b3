/*
 * manager: the memory manager's front: --mm options, creation and teardown,
 * the balloon's give-up/take-back transitions on the page-state table.
 * The figures behind query-memory-manager are in query.c; fault service
 * (uffd.c), cold tracking and reclaim (scanner.c) and KSM mode (ksm.c) hang
 * off it.
 *
 * Defaults: without --mm nothing is reclaimed (the table only tracks the
 * balloon). Any --mm turns zero, compress and dedup on unless the string
 * sets them, except that ksm=on alone leaves them off (KSM as the baseline).
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <zstd.h>

#include "mm/manager_priv.h"
#include "mm/translate.h"
#include "vmm/lib/macros.h"
#include "vmm/lib/opts.h"
#include "vmm/lib/size.h"

/* ---- small helpers shared by the manager's files ---- */

uint64_t mm_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t mm_idx_gpa(struct mm_manager *m, uint64_t idx)
{
	uint64_t off = idx << MM_PAGE_SHIFT;

	for (int i = 0; i < m->gm->nr_regions; i++) {
		const struct mm_region *r = &m->gm->regions[i];
		if (off >= r->offset && off - r->offset < r->size)
			return r->gpa + (off - r->offset);
	}
	return UINT64_MAX;
}

bool mm_chunk_present(struct mm_manager *m, uint64_t chunk)
{
	unsigned char v = 0;

	if (mincore(mm_idx_hva(m, chunk * m->ps.chunk_pages), MM_PAGE_SIZE, &v) < 0)
		return false;
	return v & 1;
}

void mm_fatal(struct mm_manager *m, uint64_t idx, enum stop_reason reason, const char *why)
{
	atomic_fetch_add(reason == STOP_CHECKSUM ? &m->checksum_failures : &m->unresolvable_faults, 1);
	/* Only the first loss is worth a line: the VM is stopping by then. */
	if (atomic_exchange(&m->failed, true))
		return;
	log_err("mm", "guest page at GPA 0x%llx cannot be restored: %s; stopping the VM (%s) "
		"rather than hand the guest wrong data", (unsigned long long)mm_idx_gpa(m, idx), why,
		stop_reason_name(reason));
	if (m->ops.stop)
		m->ops.stop(m->ops_opaque, reason);
}

void mm_hist_add(struct mm_hist *h, uint64_t ns)
{
	unsigned b;

	if (ns < 16) {
		b = (unsigned)ns;
	} else {
		unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
		b = 16 + (msb - 4) * 8 + (unsigned)((ns >> (msb - 3)) & 7);
	}
	if (b >= MM_HIST_BUCKETS)
		b = MM_HIST_BUCKETS - 1;
	atomic_fetch_add(&h->b[b], 1);
	atomic_fetch_add(&h->n, 1);
	atomic_fetch_add(&h->sum_ns, ns);
	uint64_t mx = atomic_load(&h->max_ns);
	while (ns > mx && !atomic_compare_exchange_weak(&h->max_ns, &mx, ns))
		;
}

/* Middle of bucket b, in ns. */
static uint64_t mm_hist_value(unsigned b)
{
	if (b < 16)
		return b;
	unsigned msb = (b - 16) / 8 + 4, sub = (b - 16) % 8;
	uint64_t lo = (1ull << msb) | ((uint64_t)sub << (msb - 3));
	return lo + (1ull << (msb - 3)) / 2;
}

uint64_t mm_hist_pct(struct mm_hist *h, double pct)
{
	uint64_t n = atomic_load(&h->n), acc = 0, want;

	if (!n)
		return 0;
	want = (uint64_t)((double)n * pct / 100.0);
	if (want >= n)
		want = n - 1;
	for (unsigned b = 0; b < MM_HIST_BUCKETS; b++) {
		acc += atomic_load(&h->b[b]);
		if (acc > want)
			return mm_hist_value(b);
	}
	return atomic_load(&h->max_ns);
}

/* ---- options ---- */

#define MM_KEYS "zero, compress, dedup, zstd-level, cold-age, policy, max-refault-rate, ksm, scan-period, threshold, " \
	"store-max, uffd-chunks"

/* The plain numeric --mm keys: range, and the error line saying what is accepted. */
enum mm_num_field { MM_F_COLD, MM_F_REFAULT, MM_F_PERIOD, MM_F_THRESHOLD, MM_F_UFFD };
static const struct {
	const char *key;
	double lo, hi;
	bool whole;              /* a count: a fraction is refused, not truncated */
	enum mm_num_field field;
	const char *accepted;    /* with "%s" for the value */
} mm_num_keys[] = {
	{ "cold-age", 0, 86400, false, MM_F_COLD, "--mm cold-age=%s: use seconds from 0 to 86400 (default 30)" },
	{ "max-refault-rate", 0, 1e9, false, MM_F_REFAULT, "--mm max-refault-rate=%s: use refaults per second "
	  ">= 0 (0 turns the adaptive controller off; default 100)" },
	{ "scan-period", 10, 60000, true, MM_F_PERIOD, "--mm scan-period=%s: use whole milliseconds from 10 to "
	  "60000 (default 1000)" },
	{ "threshold", 256, MM_STORE_PAGE, true, MM_F_THRESHOLD, "--mm threshold=%s: use the largest "
	  "compressed size kept, 256 to 4096 bytes (default 3072)" },
	{ "uffd-chunks", 1, 1 << 20, true, MM_F_UFFD, "--mm uffd-chunks=%s: use a number of 2 MiB chunks from "
	  "1 to 1048576 (default 16384; each may take two of vm.max_map_count's mappings, so raise that with it)" },
};

static void mm_num_store(struct mm_opts *o, enum mm_num_field f, double d)
{
	switch (f) {
	case MM_F_COLD: o->cold_age = d; break;
	case MM_F_REFAULT: o->max_refault_rate = d; break;
	case MM_F_PERIOD: o->scan_period_ms = (unsigned)d; break;
	case MM_F_THRESHOLD: o->max_csize = (uint32_t)d; break;
	case MM_F_UFFD: o->uffd_chunks = (uint32_t)d; break;
	}
}

/* One key=value. The on/off stages go to set[] (-1: not given) so that their
 * defaults can depend on ksm, whatever the order. */
static int mm_parse_one(struct mm_opts *o, const char *key, const char *val, int set[3], char *err,
			size_t errlen)
{
	static const char *const stages[] = { "zero", "compress", "dedup" };
	double d;
	bool b;

	for (unsigned i = 0; i < ARRAY_SIZE(stages); i++) {
		if (strcmp(key, stages[i]))
			continue;
		if (opts_bool(val, &b))
			goto bad_bool;
		set[i] = b;
		return 0;
	}
	if (!strcmp(key, "ksm")) {
		if (opts_bool(val, &o->ksm))
			goto bad_bool;
		return 0;
	}
	if (!strcmp(key, "policy")) {
		o->policy = mm_policy_find(val);
		if (o->policy)
			return 0;
		snprintf(err, errlen, "--mm policy=%s: unknown policy, use one of: " MM_POLICY_NAMES, val);
		return -EINVAL;
	}
	if (!strcmp(key, "store-max")) {
		if (size_parse(val, &o->store_max) < 0) {
			snprintf(err, errlen, "--mm store-max=%s: use a size such as 256M (0 = bounded only by guest RAM)",
				 val);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "zstd-level")) {
		if (opts_double(val, ZSTD_minCLevel(), ZSTD_maxCLevel(), &d) || d != (int)d) {
			snprintf(err, errlen, "--mm zstd-level=%s: use an integer from %d to %d (default 1)",
				 val, ZSTD_minCLevel(), ZSTD_maxCLevel());
			return -EINVAL;
		}
		o->zstd_level = (int)d;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(mm_num_keys); i++) {
		if (strcmp(key, mm_num_keys[i].key))
			continue;
		if (opts_double(val, mm_num_keys[i].lo, mm_num_keys[i].hi, &d) ||
		    (mm_num_keys[i].whole && d != (uint32_t)d)) {
			snprintf(err, errlen, mm_num_keys[i].accepted, val);
			return -EINVAL;
		}
		mm_num_store(o, mm_num_keys[i].field, d);
		return 0;
	}
	snprintf(err, errlen, "--mm: unknown option '%s' (keys: " MM_KEYS ")", key);
	return -EINVAL;
bad_bool:
	snprintf(err, errlen, "--mm %s=%s: use on or off", key, val);
	return -EINVAL;
}

static int mm_parse_opts(const char *opts, struct mm_opts *o, char *err, size_t errlen)
{
	int set[3] = { -1, -1, -1 };   /* zero, compress, dedup */
	struct opts_iter it;
	char *key, *val;
	int ret = 0;

	memset(o, 0, sizeof(*o));
	o->zstd_level = 1;
	o->cold_age = 30;
	o->max_refault_rate = 100;
	o->scan_period_ms = 1000;
	o->max_csize = MM_STORE_PAGE * 3 / 4;
	o->uffd_chunks = MM_UFFD_MAX_CHUNKS;
	o->policy = &mm_policy_clock;
	if (!opts)
		return 0;
	if (opts_begin(&it, opts))
		return -ENOMEM;
	while (!ret && opts_next(&it, &key, &val)) {
		if (!val) {
			snprintf(err, errlen, "--mm: '%s' is not KEY=VALUE (keys: " MM_KEYS ")", key);
			ret = -EINVAL;
		} else {
			ret = mm_parse_one(o, key, val, set, err, errlen);
		}
	}
	opts_end(&it);
	if (ret)
		return ret;
	/* KSM alone is the kernel baseline: minivmm's own reclaim stays off unless asked for. */
	bool dflt = !o->ksm;
	o->zero = set[0] < 0 ? dflt : set[0];
	o->compress = set[1] < 0 ? dflt : set[1];
	o->dedup = set[2] < 0 ? dflt : set[2];
	o->reclaim = o->zero || o->compress || o->dedup;
	return 0;
}

/* ---- lifecycle ---- */

/* The store and userfaultfd that reclaim needs (and hugetlb, see huge.c). */
static int mm_setup_reclaim(struct mm_manager *m, char *err, size_t errlen)
{
	if (m->o.reclaim) {
		struct mm_store_config sc = {
			.compress = m->o.compress, .dedup = m->o.dedup,
			.level = m->o.zstd_level, .max_csize = m->o.max_csize, .max_bytes = m->o.store_max,
		};
		m->store = mm_store_new(&sc);
		if (!m->store) {
			snprintf(err, errlen, "memory manager: cannot create the page store (zstd)");
			return -ENOMEM;
		}
		return mm_uffd_open(m, err, errlen);
	}
	if (m->hugetlb) {
		/*
		 * Huge pages whose pieces the guest gives up one by one are freed
		 * only after a check under write protection (huge.c), which needs
		 * userfaultfd even without reclaim. Without it such pages stay.
		 */
		char uerr[256];
		if (mm_uffd_open(m, uerr, sizeof(uerr)))
			log_info("mm", "hugetlb: %s; huge pages the guest gives up piecemeal stay "
				 "resident", uerr);
	}
	return 0;
}

int mmgr_create(struct guest_mem *gm, const struct mm_vm_ops *ops, void *opaque, const char *opts,
		struct mm_manager **out, char *err, size_t errlen)
{
	struct mm_manager *m;
	uint64_t chunk_bytes;
	int ret;

	*out = NULL;
	if (!gm->base || !gm->ram_size) {
		snprintf(err, errlen, "memory manager: guest RAM does not exist yet");
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "memory manager: out of memory");
		return -ENOMEM;
	}
	if (ops)
		m->ops = *ops;
	m->ops_opaque = opaque;
	m->gm = gm;
	m->uffd = m->uffd_stop = -1;
	m->pagemap_fd = m->kpageflags_fd = -1;
	mm_translate_open(m);
	pthread_mutex_init(&m->req_lock, NULL);
	pthread_cond_init(&m->req_cond, NULL);

	ret = mm_parse_opts(opts, &m->o, err, errlen);
	if (ret)
		goto fail;
	m->hugetlb = m->gm->backing == MM_BACKING_HUGETLB;
	chunk_bytes = m->gm->page_size > MM_CHUNK_MIN ? m->gm->page_size : MM_CHUNK_MIN;
	ret = ps_init(&m->ps, m->gm->ram_size >> MM_PAGE_SHIFT, chunk_bytes);
	if (ret) {
		snprintf(err, errlen, "memory manager: cannot allocate the page-state table: %s", strerror(-ret));
		goto fail;
	}
	ret = mm_policy_init(&m->pol, m->o.policy, &m->ps);
	if (ret) {
		snprintf(err, errlen, "memory manager: cannot set up policy %s: %s", m->o.policy->name,
			 strerror(-ret));
		goto fail;
	}
	mm_ctrl_init(&m->ctrl, m->o.cold_age, m->o.max_refault_rate);
	atomic_store(&m->cold_age_ms, (uint64_t)(m->o.cold_age * 1000));

	if (m->o.ksm) {
		ret = mm_ksm_enable(m, err, errlen);
		if (ret)
			goto fail;
	}
	ret = mm_setup_reclaim(m, err, errlen);
	if (ret)
		goto fail;
	log_info("mm", "manager: reclaim %s (zero=%s compress=%s dedup=%s zstd-level=%d cold-age=%gs "
		 "policy=%s max-refault-rate=%g scan-period=%ums), ksm %s, table %llu KiB",
		 m->o.reclaim ? "on" : "off", m->o.zero ? "on" : "off", m->o.compress ? "on" : "off",
		 m->o.dedup ? "on" : "off", m->o.zstd_level, m->o.cold_age, m->o.policy->name,
		 m->o.max_refault_rate, m->o.scan_period_ms, m->o.ksm ? "on" : "off",
		 (unsigned long long)(ps_metadata_bytes(&m->ps) >> 10));
	*out = m;
	return 0;
fail:
	mmgr_destroy(m);
	return ret;
}

int mmgr_start(struct mm_manager *m)
{
	int ret;

	if (!m || m->started)
		return 0;
	m->started = true;
	if (m->uffd >= 0) {
		ret = mm_uffd_start(m);
		if (ret) {
			log_err("mm", "cannot start the userfaultfd fault service: %s", strerror(-ret));
			return ret;
		}
	}
	if (!m->o.reclaim)
		return 0;
	ret = mm_scanner_start(m);
	if (ret) {
		log_err("mm", "cannot start the reclaim scanner: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

/*
 * What any thread that gives pages up or takes them back (the balloon's
 * worker, the monitor) may call into: discarding the backing (madvise,
 * fallocate PUNCH_HOLE), residency (mincore), and userfaultfd registration
 * and write protection of the chunks concerned (strace of the balloon tests).
 */
static const struct sb_rule mm_guest_ram_rules[] = {
	SB_SYS(fallocate), SB_SYS(mincore),
	SB_IOCTL(UFFDIO_REGISTER), SB_IOCTL(UFFDIO_UNREGISTER), SB_IOCTL(UFFDIO_WRITEPROTECT),
	SB_IOCTL(UFFDIO_WAKE), SB_IOCTL(UFFDIO_ZEROPAGE), SB_IOCTL(UFFDIO_COPY),
};
const struct sb_list mm_sandbox_guest_ram = SB_LIST("mm-guest-ram", mm_guest_ram_rules);

void mmgr_destroy(struct mm_manager *m)
{
	if (!m)
		return;
	mm_scanner_stop(m);
	mm_uffd_stop(m);
	mm_ksm_close(m);
	mm_policy_fini(&m->pol);
	mm_store_free(m->store);
	ps_fini(&m->ps);
	mm_translate_close(m);
	pthread_mutex_destroy(&m->req_lock);
	pthread_cond_destroy(&m->req_cond);
	free(m);
}

/* ---- balloon transitions ---- */

/* Checked range -> first page index and count. */
static int mm_range(struct mm_manager *m, uint64_t gpa, uint64_t len, uint64_t *idx, uint64_t *n)
{
	uint8_t *hva;

	if (!len || (gpa | len) & (MM_PAGE_SIZE - 1))
		return -EINVAL;
	hva = mm_gpa_to_hva(m->gm, gpa, len);
	if (!hva)
		return -EINVAL;
	*idx = (uint64_t)(hva - m->gm->base) >> MM_PAGE_SHIFT;
	*n = len >> MM_PAGE_SHIFT;
	return 0;
}

/* Discards [idx, idx+n) pages of a 4 KiB backing; the range lies in one region. */
static int mm_discard_pages(struct mm_manager *m, uint64_t idx, uint64_t n)
{
	int ret = mm_discard(m->gm, mm_idx_gpa(m, idx), n << MM_PAGE_SHIFT);

	if (ret) {
		atomic_fetch_add(&m->discard_errors, 1);
		log_err("mm", "discard of %llu pages at GPA 0x%llx failed: %s", (unsigned long long)n,
			(unsigned long long)mm_idx_gpa(m, idx), strerror(-ret));
	} else {
		atomic_fetch_add(&m->discarded_bytes, n << MM_PAGE_SHIFT);
	}
	return ret;
}

/* Gives up [lo, hi) of 4 KiB-backed chunk pages: one discard per run. Chunk lock held. */
static void mm_give_up_small(struct mm_manager *m, uint64_t lo, uint64_t hi, enum mm_page_state why)
{
	uint64_t run = 0, run_n = 0;

	for (uint64_t i = lo; i < hi; i++) {
		uint64_t e = ps_get(&m->ps, i);
		enum mm_page_state st = ps_state_of(e);

		if (st == MM_PAGE_COMPRESSED || st == MM_PAGE_SHARED)
			mm_store_release(m->store, ps_handle_of(e));
		ps_set_state(&m->ps, i, why, 0);
		if (ps_is_evicted(st))
			continue;   /* no backing left to free */
		if (run_n && run + run_n == i) {
			run_n++;
			continue;
		}
		if (run_n)
			mm_discard_pages(m, run, run_n);
		run = i;
		run_n = 1;
	}
	if (run_n)
		mm_discard_pages(m, run, run_n);
}

/*
 * Gives up [lo, hi) of hugetlb chunk c. The huge page stays until all its
 * pieces are given up; each piece is zeroed meanwhile, both so it reads as
 * a discarded page would and because zero is what later proves it unused
 * (pagestate.h). A request that covers the whole huge page discards it at
 * once: the guest guarantees all of it free now. Chunk lock held.
 */
static void mm_give_up_huge(struct mm_manager *m, uint64_t c, uint64_t lo, uint64_t hi,
			    enum mm_page_state why)
{
	uint64_t first = c * m->ps.chunk_pages, n = mm_chunk_npages(m, c);
	bool whole = lo == first && hi == first + n && n == m->ps.chunk_pages;
	bool present = mm_chunk_present(m, c);

	for (uint64_t i = lo; i < hi; i++) {
		uint64_t e = ps_get(&m->ps, i);
		enum mm_page_state st = ps_state_of(e);

		if (st == MM_PAGE_COMPRESSED || st == MM_PAGE_SHARED)
			mm_store_release(m->store, ps_handle_of(e));
		ps_set_state(&m->ps, i, why, 0);
		if (present && !whole)
			memset(mm_idx_hva(m, i), 0, MM_PAGE_SIZE);
	}
	if (present && n == m->ps.chunk_pages && m->ps.chunks[c].n_given == n)
		mm_huge_discard_given(m, c, whole);
}

/* Runs fn on each chunk's slice [lo, hi) of [idx, end), under that chunk's lock. */
static void mm_each_chunk(struct mm_manager *m, uint64_t idx, uint64_t end,
			  void (*fn)(struct mm_manager *m, uint64_t c, uint64_t lo, uint64_t hi, void *arg), void *arg)
{
	for (uint64_t c = idx / m->ps.chunk_pages; c * m->ps.chunk_pages < end; c++) {
		struct mm_chunk *ch = &m->ps.chunks[c];
		uint64_t lo = c * m->ps.chunk_pages, hi = lo + mm_chunk_npages(m, c);

		if (lo < idx)
			lo = idx;
		if (hi > end)
			hi = end;
		pthread_mutex_lock(&ch->lock);
		fn(m, c, lo, hi, arg);
		pthread_mutex_unlock(&ch->lock);
	}
}

static void mm_give_up_slice(struct mm_manager *m, uint64_t c, uint64_t lo, uint64_t hi, void *arg)
{
	enum mm_page_state why = *(enum mm_page_state *)arg;

	if (m->hugetlb)
		mm_give_up_huge(m, c, lo, hi, why);
	else
		mm_give_up_small(m, lo, hi, why);
}

static void mm_take_back_slice(struct mm_manager *m, uint64_t c, uint64_t lo, uint64_t hi, void *arg)
{
	(void)c;
	(void)arg;
	for (uint64_t i = lo; i < hi; i++)
		if (ps_is_given(ps_state(&m->ps, i)))
			ps_set_state(&m->ps, i, MM_PAGE_UNTOUCHED, 0);
}

int mmgr_give_up(struct mm_manager *m, uint64_t gpa, uint64_t len, enum mm_page_state why)
{
	uint64_t idx, n, end;
	int ret;

	if (!m || (why != MM_PAGE_BALLOONED && why != MM_PAGE_REPORTED))
		return -EINVAL;
	ret = mm_range(m, gpa, len, &idx, &n);
	if (ret)
		return ret;
	end = idx + n;
	/* Only one thread gives pages up or takes them back, so this check holds. */
	if (why == MM_PAGE_BALLOONED)
		for (uint64_t i = idx; i < end; i++)
			if (ps_state(&m->ps, i) == MM_PAGE_BALLOONED)
				return -EEXIST;

	mm_each_chunk(m, idx, end, mm_give_up_slice, &why);
	return 0;
}

int mmgr_take_back(struct mm_manager *m, uint64_t gpa, uint64_t len)
{
	uint64_t idx, n;
	int ret;

	if (!m)
		return -EINVAL;
	ret = mm_range(m, gpa, len, &idx, &n);
	if (ret)
		return ret;
	mm_each_chunk(m, idx, idx + n, mm_take_back_slice, NULL);
	return 0;
}

int mmgr_page_state(struct mm_manager *m, uint64_t gpa)
{
	uint8_t *hva;

	if (!m)
		return -EINVAL;
	hva = mm_gpa_to_hva(m->gm, gpa & ~(MM_PAGE_SIZE - 1), MM_PAGE_SIZE);
	if (!hva)
		return -EINVAL;
	return (int)ps_state(&m->ps, (uint64_t)(hva - m->gm->base) >> MM_PAGE_SHIFT);
}

int mmgr_set_compression(struct mm_manager *m, bool on, char *err, size_t errlen)
{
	if (!m || !m->o.reclaim || !m->store) {
		snprintf(err, errlen, "reclaim is off: start minivmm with --mm to switch compression");
		return -ENOTSUP;
	}
	if (mm_store_set_compress(m->store, on)) {
		snprintf(err, errlen, "this VM was started with --mm compress=off: compression cannot be "
			 "switched on");
		return -ENOTSUP;
	}
	log_info("mm", "compression %s", on ? "on" : "off for new pages");
	return 0;
}

int mmgr_set_resident_target(struct mm_manager *m, uint64_t bytes, char *err, size_t errlen)
{
	if (!m || !m->o.reclaim) {
		snprintf(err, errlen, "reclaim is off: start minivmm with --mm to give it a resident target");
		return -EOPNOTSUPP;
	}
	if (bytes > m->gm->ram_size) {
		snprintf(err, errlen, "a resident target of %llu bytes is more than guest RAM (%llu): "
			 "use 0 to clear it", (unsigned long long)bytes, (unsigned long long)m->gm->ram_size);
		return -EINVAL;
	}
	atomic_store(&m->resident_target, bytes);
	if (bytes)
		mm_scanner_kick(m);
	return 0;
}

json_t *mmgr_reclaim(struct mm_manager *m, uint64_t bytes, char *err, size_t errlen)
{
	struct mm_reclaim_result r;
	int ret;

	if (!m || !m->o.reclaim) {
		snprintf(err, errlen, "reclaim is off: start minivmm with --mm (for example "
			 "--mm zero=on,compress=on,dedup=on)");
		return NULL;
	}
	ret = mm_scanner_reclaim(m, bytes, &r);
	if (ret) {
		snprintf(err, errlen, "reclaim failed: %s", strerror(-ret));
		return NULL;
	}
	json_t *o = json_object();
	mm_set_u64(o, "scanned-pages", r.scanned);
	mm_set_u64(o, "zero-pages", r.zero);
	mm_set_u64(o, "compressed-pages", r.compressed);
	mm_set_u64(o, "shared-pages", r.shared);
	mm_set_u64(o, "huge-pages", r.huge_pages);
	mm_set_u64(o, "skipped-pages", r.skipped);
	mm_set_u64(o, "freed-bytes", r.freed_bytes);
	mm_set_u64(o, "stored-bytes", r.stored_bytes);
	mm_set_real(o, "seconds", r.seconds);
	mm_set_real(o, "cpu-seconds", r.cpu_seconds);
	return o;
}

/* ==== Balloon queries (branch threads) ====
 * What the balloon asks the page-state table instead of keeping its own
 * bitmap and counts. Kept together at the end of the file so it merges as
 * one block with the rework of the manager's internals. */

uint64_t mmgr_count(struct mm_manager *m, enum mm_page_state st)
{
	if (!m || (unsigned)st > MM_PAGE_REPORTED)
		return 0;
	return atomic_load(&m->ps.count[st]);
}

int mmgr_next_range(struct mm_manager *m, enum mm_page_state st, uint64_t *gpa, uint64_t *len)
{
	if (!m)
		return 0;
	for (int i = 0; i < m->gm->nr_regions; i++) {
		const struct mm_region *r = &m->gm->regions[i];
		uint64_t base = r->offset >> MM_PAGE_SHIFT, n = r->size >> MM_PAGE_SHIFT, p = 0;

		if (*gpa >= r->gpa + r->size)
			continue;
		if (*gpa > r->gpa)
			p = (*gpa - r->gpa) >> MM_PAGE_SHIFT;
		for (; p < n; p++) {
			if (ps_state(&m->ps, base + p) != st)
				continue;
			uint64_t q = p + 1;
			while (q < n && ps_state(&m->ps, base + q) == st)
				q++;
			*gpa = r->gpa + (p << MM_PAGE_SHIFT);
			*len = (q - p) << MM_PAGE_SHIFT;
			return 1;
		}
	}
	return 0;
}

uint64_t mmgr_mark_touched(struct mm_manager *m, uint64_t gpa, uint64_t len)
{
	static const uint64_t chunk = 4096;   /* pages per mincore call */
	unsigned char vec[4096];
	uint64_t idx, n, marked = 0;

	/* hugetlb pieces stay mapped (zeroed) until the whole page goes: huge.c
	 * tells a touched one by its contents instead */
	if (!m || m->hugetlb || mm_range(m, gpa, len, &idx, &n))
		return 0;
	for (uint64_t off = 0; off < n; off += chunk) {
		uint64_t k = n - off < chunk ? n - off : chunk;

		if (mincore(mm_idx_hva(m, idx + off), k << MM_PAGE_SHIFT, vec))
			break;
		for (uint64_t i = 0; i < k; i++) {
			uint64_t p = idx + off + i;

			if (!(vec[i] & 1) || ps_state(&m->ps, p) != MM_PAGE_BALLOONED)
				continue;
			if (!(ps_update(&m->ps, p, PS_TOUCHED, PS_TOUCHED) & PS_TOUCHED)) {
				atomic_fetch_add(&m->balloon_touched, 1);
				marked++;
			}
		}
	}
	return marked;
}

uint64_t mmgr_balloon_touched(struct mm_manager *m)
{
	return m ? atomic_load(&m->balloon_touched) : 0;
}
