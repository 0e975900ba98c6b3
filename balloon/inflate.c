/*
 * inflate: the pages a guest gives up and takes back through the balloon.
 * Owns the one batching path that turns a buffer of PFNs (from the inflate
 * and deflate queues, or a test) into few, large give-up / take-back calls
 * to the memory manager, free page reporting of ranges, and handing
 * everything back on reset. Which pages are ballooned is the manager's
 * page-state table's to say; this file asks it. Runs with the queue lock.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/balloon.h"
#include "mm/manager.h"
#include "mm/mm.h"
#include "vmm/lib/log.h"

/* Largest number of PFNs handled in one sorted batch; a driver sends 256. */
#define BALLOON_BATCH_MAX 4096

/* The page's state in the manager's table, or -EINVAL outside RAM. */
static int balloon_state(const struct balloon *b, uint64_t gpa)
{
	return mmgr_page_state(b->mgr, gpa);
}

bool balloon_page_ballooned(struct balloon *b, uint64_t gpa)
{
	return balloon_state(b, gpa) == MM_PAGE_BALLOONED;
}

uint64_t balloon_nr_ballooned(struct balloon *b)
{
	return mmgr_count(b->mgr, MM_PAGE_BALLOONED);
}

static void balloon_flush_run(struct balloon *b, bool inflate, uint64_t pfn, uint64_t n,
			      struct balloon_batch *res)
{
	uint64_t gpa = pfn * BALLOON_PAGE_SIZE, len = n * BALLOON_PAGE_SIZE;
	int ret;

	if (!n)
		return;
	if (inflate) {
		ret = mmgr_give_up(b->mgr, gpa, len, MM_PAGE_BALLOONED);
	} else {
		/* pages the guest used while they were in the balloon: counted by the manager */
		mmgr_mark_touched(b->mgr, gpa, len);
		ret = mmgr_take_back(b->mgr, gpa, len);
	}
	res->ranges++;
	if (ret) {
		res->failed += n;
		atomic_fetch_add(&b->discard_errors, 1);
		log_limited(&b->log_rl, log_err, "balloon", "%s [0x%" PRIx64 ", +0x%" PRIx64 ") failed: %s",
			    inflate ? "giving up" : "taking back", gpa, len, strerror(-ret));
		return;
	}
	res->done += n;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/*
 * Sorts pfns and drops repeats; returns how many distinct PFNs remain and
 * adds the repeats to *dup. A driver's buffer is usually dense (pages from
 * a few buddy blocks), so a bitmap over [min, max] sorts it in linear time;
 * a scattered buffer falls back to qsort.
 */
static size_t balloon_sort_unique(uint32_t *pfns, size_t n, uint64_t *dup)
{
	uint64_t map[BALLOON_BATCH_MAX / 64 * 4];
	uint32_t lo = UINT32_MAX, hi = 0;
	size_t out = 0;

	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		lo = pfns[i] < lo ? pfns[i] : lo;
		hi = pfns[i] > hi ? pfns[i] : hi;
	}
	uint64_t span = (uint64_t)hi - lo + 1;
	if (span <= sizeof(map) * 8) {
		size_t words = (size_t)((span + 63) / 64);
		memset(map, 0, words * sizeof(map[0]));
		for (size_t i = 0; i < n; i++) {
			uint32_t k = pfns[i] - lo;
			uint64_t bit = 1ull << (k % 64);
			if (map[k / 64] & bit)
				(*dup)++;
			map[k / 64] |= bit;
		}
		for (size_t w = 0; w < words; w++)
			for (uint64_t m = map[w]; m; m &= m - 1)
				pfns[out++] = lo + (uint32_t)(w * 64 + (unsigned)__builtin_ctzll(m));
		return out;
	}
	qsort(pfns, n, sizeof(*pfns), cmp_u32);
	for (size_t i = 0; i < n; i++) {
		if (out && pfns[i] == pfns[out - 1]) {
			(*dup)++;
			continue;
		}
		pfns[out++] = pfns[i];
	}
	return out;
}

/* Sorts pfns in place, drops what must not be touched, and hands each
 * contiguous run over in one call. Contiguous RAM PFNs never straddle the
 * MMIO hole (it lies between them), so a run stays in one RAM region. */
static void balloon_batch_inplace(struct balloon *b, uint32_t *pfns, size_t n, bool inflate,
				  struct balloon_batch *res)
{
	uint64_t run_pfn = 0, run_len = 0;

	n = balloon_sort_unique(pfns, n, &res->dup);
	for (size_t i = 0; i < n; i++) {
		uint64_t pfn = pfns[i];
		int st = balloon_state(b, pfn * BALLOON_PAGE_SIZE);

		if (st < 0) {
			res->bad++;
			continue;
		}
		if ((st == MM_PAGE_BALLOONED) == inflate) {
			res->skipped++;
			log_debug("balloon", "%s: pfn 0x%" PRIx64 " %s", inflate ? "inflate" : "deflate",
				  pfn, inflate ? "already ballooned" : "not ballooned");
			continue;
		}
		if (run_len && pfn == run_pfn + run_len) {
			run_len++;
			continue;
		}
		balloon_flush_run(b, inflate, run_pfn, run_len, res);
		run_pfn = pfn;
		run_len = 1;
	}
	balloon_flush_run(b, inflate, run_pfn, run_len, res);
}

int balloon_scratch(struct balloon *b, size_t n)
{
	if (n <= b->pfns_cap)
		return 0;
	uint32_t *p = realloc(b->pfns, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	b->pfns = p;
	b->pfns_cap = n;
	return 0;
}

static void balloon_account(struct balloon *b, bool inflate, const struct balloon_batch *r)
{
	atomic_fetch_add(inflate ? &b->inflated_pages : &b->deflated_pages, r->done);
	atomic_fetch_add(&b->bad_pfns, r->bad);
	atomic_fetch_add(&b->skipped_pfns, r->skipped);
}

/*
 * The one batching path: n PFNs from src (little endian as a driver's buffer
 * holds them when le, else host order), copied into the scratch buffer
 * before anything looks at them (a guest may change its buffer meanwhile),
 * in batches of at most BALLOON_BATCH_MAX. res accumulates.
 */
static void balloon_pfns(struct balloon *b, const uint8_t *src, size_t n, bool le, bool inflate,
			 struct balloon_batch *res)
{
	while (n) {
		size_t k = n > BALLOON_BATCH_MAX ? BALLOON_BATCH_MAX : n;
		struct balloon_batch r = { 0 };

		if (balloon_scratch(b, k)) {
			res->failed += n;
			return;
		}
		memcpy(b->pfns, src, k * sizeof(*b->pfns));
		if (le)
			for (size_t j = 0; j < k; j++)
				b->pfns[j] = le32toh(b->pfns[j]);
		balloon_batch_inplace(b, b->pfns, k, inflate, &r);
		balloon_account(b, inflate, &r);
		res->done += r.done;
		res->ranges += r.ranges;
		res->bad += r.bad;
		res->dup += r.dup;
		res->skipped += r.skipped;
		res->failed += r.failed;
		src += k * sizeof(*b->pfns);
		n -= k;
	}
}

void balloon_inflate_pfns(struct balloon *b, const uint32_t *pfns, size_t n,
			  struct balloon_batch *res)
{
	memset(res, 0, sizeof(*res));
	balloon_pfns(b, (const uint8_t *)pfns, n, false, true, res);
}

void balloon_deflate_pfns(struct balloon *b, const uint32_t *pfns, size_t n,
			  struct balloon_batch *res)
{
	memset(res, 0, sizeof(*res));
	balloon_pfns(b, (const uint8_t *)pfns, n, false, false, res);
}

void balloon_release_all(struct balloon *b)
{
	struct balloon_batch res = { 0 };
	uint64_t gpa = 0, len;

	while (mmgr_next_range(b->mgr, MM_PAGE_BALLOONED, &gpa, &len)) {
		balloon_flush_run(b, false, gpa / BALLOON_PAGE_SIZE, len / BALLOON_PAGE_SIZE, &res);
		gpa += len;
		if (res.failed)
			break;   /* the manager refused: do not spin on the same range */
	}
	atomic_fetch_add(&b->deflated_pages, res.done);
}

uint64_t balloon_report_range(struct balloon *b, uint64_t gpa, uint64_t len)
{
	uint64_t start = (gpa + BALLOON_PAGE_SIZE - 1) & ~(uint64_t)(BALLOON_PAGE_SIZE - 1);
	uint64_t end = gpa + len;
	uint64_t given = 0, run = 0, run_gpa = 0;

	if (end < gpa || start < gpa)
		return 0;   /* wraps: the walker already refused it, be safe anyway */
	end &= ~(uint64_t)(BALLOON_PAGE_SIZE - 1);
	for (uint64_t p = start; p <= end; p += BALLOON_PAGE_SIZE) {
		int st = p < end ? balloon_state(b, p) : -EINVAL;
		bool ok = st >= 0 && st != MM_PAGE_BALLOONED;
		if (ok) {
			if (!run)
				run_gpa = p;
			run += BALLOON_PAGE_SIZE;
			continue;
		}
		if (run) {
			int ret = mmgr_give_up(b->mgr, run_gpa, run, MM_PAGE_REPORTED);
			if (!ret)
				given += run;
			else
				atomic_fetch_add(&b->discard_errors, 1);
			run = 0;
		}
		if (p == end)
			break;
	}
	atomic_fetch_add(&b->reported_bytes, given);
	return given;
}

/* ---- the inflate and deflate queues ---- */

void balloon_serve_pfns(struct balloon *b, struct virtq *vq, bool inflate)
{
	struct vq_chain *c = &b->chain;

	while (vq_pop(vq, c, VQ_DIR_READ) == 1) {
		struct balloon_batch total = { 0 };

		for (unsigned i = 0; i < c->nr; i++)
			balloon_pfns(b, c->buf[i].hva, c->buf[i].len / 4, true, inflate, &total);
		if (total.bad)
			log_limited(&b->log_rl, log_info, "balloon", "%s: %" PRIu64 " PFNs outside guest RAM ignored",
				    inflate ? "inflate" : "deflate", total.bad);
		log_debug("balloon", "%s %" PRIu64 " pages (%" PRIu64 " skipped), %" PRIu64 " in balloon",
			  inflate ? "inflated" : "deflated", total.done, total.skipped, balloon_nr_ballooned(b));
		vq_push(vq, c->head, 0);
		virtio_mmio_notify_used(b->vio, vq);
	}
}
