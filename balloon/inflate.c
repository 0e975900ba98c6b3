/*
 * inflate: the pages a guest gives up and takes back through the balloon.
 * Owns the per-page ballooned bitmap the device keeps to check the driver's
 * `actual`, the batching that turns a buffer of PFNs (from the inflate and
 * deflate queues, or a test) into few, large give-up / take-back calls,
 * free page reporting of ranges, and handing everything back on reset.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "balloon/balloon.h"
#include "mm/manager.h"
#include "mm/mm.h"
#include "vmm/lib/log.h"

/* Largest number of PFNs handled in one sorted batch; a driver sends 256. */
#define BALLOON_BATCH_MAX 4096

/* Dense index of the RAM page at gpa over all regions; false outside RAM. */
static bool balloon_page_index(const struct balloon *b, uint64_t gpa, uint64_t *idx)
{
	uint64_t base = 0;
	for (int i = 0; i < b->gm->nr_regions; i++) {
		const struct mm_region *r = &b->gm->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size) {
			*idx = base + (gpa - r->gpa) / BALLOON_PAGE_SIZE;
			return true;
		}
		base += r->size / BALLOON_PAGE_SIZE;
	}
	return false;
}

static bool bit_test(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

static void bits_assign(uint64_t *map, uint64_t i, uint64_t n, bool on)
{
	while (n) {
		unsigned sh = (unsigned)(i % 64);
		uint64_t k = 64 - sh < n ? 64 - sh : n;
		uint64_t mask = (k == 64 ? ~0ull : ((1ull << k) - 1)) << sh;
		if (on)
			map[i / 64] |= mask;
		else
			map[i / 64] &= ~mask;
		i += k;
		n -= k;
	}
}

bool balloon_page_ballooned(struct balloon *b, uint64_t gpa)
{
	uint64_t idx;
	return balloon_page_index(b, gpa & ~(uint64_t)(BALLOON_PAGE_SIZE - 1), &idx) &&
	       bit_test(b->ballooned, idx);
}

/* Frees the host backing of a range without a manager. hugetlb backing can
 * only be freed per huge page, which needs the manager's partial tracking. */
static int balloon_discard(struct balloon *b, uint64_t gpa, uint64_t len)
{
	if (b->gm->backing == MM_BACKING_HUGETLB)
		return 0;
	return mm_discard(b->gm, gpa, len);
}

/* Ballooned pages of the range that are resident again: the guest touched
 * them while they were in the balloon (they read as zero then). */
static uint64_t balloon_count_touched(struct balloon *b, uint64_t gpa, uint64_t len)
{
	static const size_t chunk = 4096;   /* pages per mincore call */
	unsigned char vec[4096];
	uint64_t touched = 0;

	if (b->gm->backing == MM_BACKING_HUGETLB)
		return 0;
	uint8_t *hva = mm_gpa_to_hva(b->gm, gpa, len);
	if (!hva)
		return 0;
	for (uint64_t off = 0; off < len; off += chunk * BALLOON_PAGE_SIZE) {
		uint64_t n = (len - off) / BALLOON_PAGE_SIZE;
		if (n > chunk)
			n = chunk;
		if (mincore(hva + off, n * BALLOON_PAGE_SIZE, vec))
			return touched;
		for (uint64_t i = 0; i < n; i++)
			touched += vec[i] & 1;
	}
	return touched;
}

static void balloon_flush_run(struct balloon *b, bool inflate, uint64_t pfn, uint64_t idx,
			      uint64_t n, struct balloon_batch *res)
{
	uint64_t gpa = pfn * BALLOON_PAGE_SIZE, len = n * BALLOON_PAGE_SIZE;
	int ret;

	if (!n)
		return;
	if (inflate) {
		ret = b->mgr ? mmgr_give_up(b->mgr, gpa, len, MM_PAGE_BALLOONED)
			     : balloon_discard(b, gpa, len);
	} else {
		b->touched_pages += balloon_count_touched(b, gpa, len);
		ret = b->mgr ? mmgr_take_back(b->mgr, gpa, len) : 0;
	}
	res->ranges++;
	if (ret) {
		res->failed += n;
		b->discard_errors++;
		log_limited(&b->log_rl, log_err, "balloon", "%s [0x%" PRIx64 ", +0x%" PRIx64 ") failed: %s",
			    inflate ? "giving up" : "taking back", gpa, len, strerror(-ret));
		return;
	}
	bits_assign(b->ballooned, idx, n, inflate);
	if (inflate)
		b->nr_ballooned += n;
	else
		b->nr_ballooned -= n;
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
 * contiguous run over in one call. */
static void balloon_batch_inplace(struct balloon *b, uint32_t *pfns, size_t n, bool inflate,
				  struct balloon_batch *res)
{
	uint64_t run_pfn = 0, run_idx = 0, run_len = 0;

	n = balloon_sort_unique(pfns, n, &res->dup);
	for (size_t i = 0; i < n; i++) {
		uint64_t pfn = pfns[i], idx;
		/* the region table is the one mm_is_ram() consults */
		if (!balloon_page_index(b, pfn * BALLOON_PAGE_SIZE, &idx)) {
			res->bad++;
			continue;
		}
		if (bit_test(b->ballooned, idx) == inflate) {
			res->skipped++;
			log_debug("balloon", "%s: pfn 0x%" PRIx64 " %s", inflate ? "inflate" : "deflate",
				  pfn, inflate ? "already ballooned" : "not ballooned");
			continue;
		}
		if (run_len && pfn == run_pfn + run_len && idx == run_idx + run_len) {
			run_len++;
			continue;
		}
		balloon_flush_run(b, inflate, run_pfn, run_idx, run_len, res);
		run_pfn = pfn;
		run_idx = idx;
		run_len = 1;
	}
	balloon_flush_run(b, inflate, run_pfn, run_idx, run_len, res);
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
	if (inflate)
		b->inflated_pages += r->done;
	else
		b->deflated_pages += r->done;
	b->bad_pfns += r->bad;
	b->skipped_pfns += r->skipped;
}

static void balloon_pfns(struct balloon *b, const uint32_t *pfns, size_t n, bool inflate,
			 struct balloon_batch *res)
{
	memset(res, 0, sizeof(*res));
	while (n) {
		size_t k = n > BALLOON_BATCH_MAX ? BALLOON_BATCH_MAX : n;
		struct balloon_batch r = { 0 };
		if (balloon_scratch(b, k)) {
			res->failed += n;
			return;
		}
		memcpy(b->pfns, pfns, k * sizeof(*pfns));
		balloon_batch_inplace(b, b->pfns, k, inflate, &r);
		balloon_account(b, inflate, &r);
		res->done += r.done;
		res->ranges += r.ranges;
		res->bad += r.bad;
		res->dup += r.dup;
		res->skipped += r.skipped;
		res->failed += r.failed;
		pfns += k;
		n -= k;
	}
}

void balloon_inflate_pfns(struct balloon *b, const uint32_t *pfns, size_t n,
			  struct balloon_batch *res)
{
	balloon_pfns(b, pfns, n, true, res);
}

void balloon_deflate_pfns(struct balloon *b, const uint32_t *pfns, size_t n,
			  struct balloon_batch *res)
{
	balloon_pfns(b, pfns, n, false, res);
}

void balloon_release_all(struct balloon *b)
{
	uint64_t base = 0;

	for (int r = 0; r < b->gm->nr_regions && b->nr_ballooned; r++) {
		const struct mm_region *reg = &b->gm->regions[r];
		uint64_t pages = reg->size / BALLOON_PAGE_SIZE;
		struct balloon_batch res = { 0 };
		uint64_t start = 0, len = 0;
		for (uint64_t i = 0; i <= pages; i++) {
			if (i < pages && bit_test(b->ballooned, base + i)) {
				if (!len)
					start = i;
				len++;
				continue;
			}
			balloon_flush_run(b, false, reg->gpa / BALLOON_PAGE_SIZE + start, base + start,
					  len, &res);
			len = 0;
		}
		b->deflated_pages += res.done;
		base += pages;
	}
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
		uint64_t idx;
		bool ok = p < end && balloon_page_index(b, p, &idx) && !bit_test(b->ballooned, idx);
		if (ok) {
			if (!run)
				run_gpa = p;
			run += BALLOON_PAGE_SIZE;
			continue;
		}
		if (run) {
			int ret;
			if (b->mgr)
				ret = mmgr_give_up(b->mgr, run_gpa, run, MM_PAGE_REPORTED);
			else if (b->gm->backing == MM_BACKING_HUGETLB)
				ret = -EOPNOTSUPP;   /* needs the manager's huge page tracking */
			else
				ret = mm_discard(b->gm, run_gpa, run);
			if (!ret)
				given += run;
			else if (ret != -EOPNOTSUPP && ret != -EEXIST)
				b->discard_errors++;
			run = 0;
		}
		if (p == end)
			break;
	}
	b->reported_bytes += given;
	return given;
}

/* ---- the inflate and deflate queues ---- */

void balloon_serve_pfns(struct balloon *b, struct virtq *vq, bool inflate)
{
	struct vq_chain *c = &b->chain;
	int r;

	while ((r = vq_pop(vq, c, VQ_DIR_READ)) == 1) {
		struct balloon_batch total = { 0 };
		for (unsigned i = 0; i < c->nr; i++) {
			const uint8_t *src = c->buf[i].hva;
			size_t n = c->buf[i].len / 4;
			while (n) {
				size_t k = n > BALLOON_BATCH_MAX ? BALLOON_BATCH_MAX : n;
				struct balloon_batch res = { 0 };
				if (balloon_scratch(b, k))
					break;
				memcpy(b->pfns, src, k * 4);
				for (size_t j = 0; j < k; j++)
					b->pfns[j] = le32toh(b->pfns[j]);
				balloon_batch_inplace(b, b->pfns, k, inflate, &res);
				balloon_account(b, inflate, &res);
				total.done += res.done;
				total.bad += res.bad;
				total.skipped += res.skipped;
				total.failed += res.failed;
				src += k * 4;
				n -= k;
			}
		}
		if (total.bad)
			log_limited(&b->log_rl, log_info, "balloon", "%s: %" PRIu64 " PFNs outside guest RAM ignored",
				    inflate ? "inflate" : "deflate", total.bad);
		log_debug("balloon", "%s %" PRIu64 " pages (%" PRIu64 " skipped), %" PRIu64 " in balloon",
			  inflate ? "inflated" : "deflated", total.done, total.skipped, b->nr_ballooned);
		vq_push(vq, c->head, 0);
		virtio_mmio_notify_used(b->vio, vq);
	}
}
