/*
 * balloon: the virtio-balloon device model (virtio 1.2, 5.5). Owns the
 * device's config space, its queues (inflate, deflate, stats, free page
 * reporting, numbered as Linux does), the per-page ballooned bitmap the
 * device keeps to check the driver's `actual`, and the batching that turns
 * a buffer of PFNs into few, large give-up / take-back calls.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>

#include "balloon.h"
#include "../mm/manager.h"
#include "../mm/mm.h"
#include "../vmm/vmm.h"

const char *const balloon_stat_names[BALLOON_NR_STATS] = {
	"stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults",
	"stat-free-memory", "stat-total-memory", "stat-available-memory", "stat-disk-caches",
	"stat-htlb-pgalloc", "stat-htlb-pgfail", "stat-oom-kills", "stat-alloc-stalls",
	"stat-async-scans", "stat-direct-scans", "stat-async-reclaims", "stat-direct-reclaims",
};

/* Largest number of PFNs handled in one sorted batch; a driver sends 256. */
#define BALLOON_BATCH_MAX 4096
/* Stats buffers larger than this are read only up to it (64 entries). */
#define BALLOON_STATS_MAX 640

enum balloon_queue {
	BQ_INFLATE, BQ_DEFLATE, BQ_STATS, BQ_REPORT, BQ_NONE,
};

/* ---- options ---- */

static int opt_bool(const char *key, const char *val, bool *out, char *err, size_t errlen)
{
	if (!strcasecmp(val, "on") || !strcasecmp(val, "yes") || !strcasecmp(val, "true")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(val, "off") || !strcasecmp(val, "no") || !strcasecmp(val, "false")) {
		*out = false;
		return 0;
	}
	snprintf(err, errlen, "balloon: option %s takes on or off, not '%s'", key, val);
	return -EINVAL;
}

int balloon_parse_opts(const char *s, struct balloon_opts *o, char *err, size_t errlen)
{
	*o = (struct balloon_opts){ .deflate_on_oom = true, .free_page_reporting = true };
	if (!s || !*s)
		return 0;

	char *copy = strdup(s), *save = NULL;
	int ret = 0;
	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok && !ret; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq) {
			snprintf(err, errlen, "balloon: option '%s' needs a value (%s=...)", tok, tok);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		const char *key = tok, *val = eq + 1;
		if (!strcmp(key, "deflate-on-oom")) {
			ret = opt_bool(key, val, &o->deflate_on_oom, err, errlen);
		} else if (!strcmp(key, "free-page-reporting")) {
			ret = opt_bool(key, val, &o->free_page_reporting, err, errlen);
		} else if (!strcmp(key, "must-tell-host")) {
			ret = opt_bool(key, val, &o->must_tell_host, err, errlen);
		} else if (!strcmp(key, "stats-period")) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(val, &end, 10);
			if (!*val || *end || errno || val[0] == '-' || v > UINT32_MAX) {
				snprintf(err, errlen,
					 "balloon: option stats-period takes seconds (0 = off, at most %u), not '%s'",
					 UINT32_MAX, val);
				ret = -EINVAL;
			} else {
				o->stats_period = (uint32_t)v;
			}
		} else {
			snprintf(err, errlen,
				 "balloon: unknown option '%s' (accepted: deflate-on-oom, free-page-reporting, "
				 "must-tell-host, stats-period)", key);
			ret = -EINVAL;
		}
	}
	free(copy);
	return ret;
}

/* ---- page bookkeeping ---- */

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

static int balloon_scratch(struct balloon *b, size_t n)
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

int balloon_parse_stats(struct balloon *b, const uint8_t *buf, size_t len)
{
	size_t n = len / BALLOON_STAT_ENTRY_SIZE;

	for (size_t i = 0; i < n; i++) {
		uint16_t tag;
		uint64_t val;
		memcpy(&tag, buf + i * BALLOON_STAT_ENTRY_SIZE, 2);
		memcpy(&val, buf + i * BALLOON_STAT_ENTRY_SIZE + 2, 8);
		tag = le16toh(tag);
		val = le64toh(val);
		if (tag >= BALLOON_NR_STATS) {
			b->stats_unknown_tags++;   /* newer drivers add tags: not an error */
			continue;
		}
		b->stats[tag] = val > INT64_MAX ? INT64_MAX : (int64_t)val;
	}
	if (len % BALLOON_STAT_ENTRY_SIZE)
		log_debug("balloon", "stats buffer of %zu bytes: trailing %zu bytes ignored", len,
			  len % BALLOON_STAT_ENTRY_SIZE);
	b->stats_last_update = (int64_t)time(NULL);
	b->stats_updates++;
	return (int)n;
}

/* ---- life cycle of the core ---- */

int balloon_init(struct balloon *b, struct guest_mem *gm, struct mm_manager *mgr,
		 const struct balloon_opts *o)
{
	memset(b, 0, sizeof(*b));
	b->gm = gm;
	b->mgr = mgr;
	b->opts = *o;
	b->stats_timer_fd = -1;
	for (int i = 0; i < gm->nr_regions; i++)
		b->ram_pages += gm->regions[i].size / BALLOON_PAGE_SIZE;
	b->ballooned = calloc((b->ram_pages + 63) / 64 + 1, sizeof(uint64_t));
	if (!b->ballooned)
		return -ENOMEM;
	for (int i = 0; i < BALLOON_NR_STATS; i++)
		b->stats[i] = -1;
	return balloon_scratch(b, 256);
}

void balloon_fini(struct balloon *b)
{
	free(b->ballooned);
	free(b->pfns);
	b->ballooned = NULL;
	b->pfns = NULL;
	b->pfns_cap = 0;
}

/* ---- the virtio device ---- */

static enum balloon_queue balloon_queue_role(uint64_t features, unsigned idx)
{
	unsigned next = 2;

	if (idx == 0)
		return BQ_INFLATE;
	if (idx == 1)
		return BQ_DEFLATE;
	if (features & (1ull << BALLOON_F_STATS_VQ)) {
		if (idx == next)
			return BQ_STATS;
		next++;
	}
	if ((features & (1ull << BALLOON_F_REPORTING)) && idx == next)
		return BQ_REPORT;
	return BQ_NONE;
}

static uint64_t balloon_features(void *dev)
{
	struct balloon *b = dev;
	uint64_t f = 1ull << BALLOON_F_STATS_VQ;

	if (b->opts.deflate_on_oom)
		f |= 1ull << BALLOON_F_DEFLATE_ON_OOM;
	if (b->opts.free_page_reporting)
		f |= 1ull << BALLOON_F_REPORTING;
	if (b->opts.must_tell_host)
		f |= 1ull << BALLOON_F_MUST_TELL_HOST;
	return f;
}

static unsigned balloon_nr_queues(void *dev, uint64_t f)
{
	return 2 + !!(f & (1ull << BALLOON_F_STATS_VQ)) + !!(f & (1ull << BALLOON_F_REPORTING));
}

static void balloon_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct balloon *b = dev;
	uint32_t cfg[4] = { htole32(b->num_pages), htole32(b->actual), 0, 0 };
	const uint8_t *bytes = (const uint8_t *)cfg;

	for (uint32_t i = 0; i < len; i++)
		data[i] = (uint64_t)off + i < sizeof(cfg) ? bytes[off + i] : 0;
}

static void balloon_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct balloon *b = dev;

	/* only `actual` (offset 4) is the driver's to write */
	if (off < 4 || (uint64_t)off + len > 8) {
		log_debug("balloon", "config write at %u (+%u) ignored", off, len);
		return;
	}
	uint32_t v = htole32(b->actual);
	memcpy((uint8_t *)&v + (off - 4), data, len);
	v = le32toh(v);
	if (v == b->actual)
		return;
	b->actual = v;
	if (v != b->nr_ballooned)
		log_debug("balloon", "driver says %u pages in the balloon, device counts %" PRIu64,
			  v, b->nr_ballooned);
	balloon_emit_change(b);
}

static int balloon_set_features(void *dev, uint64_t f)
{
	struct balloon *b = dev;
	b->features = f;
	return 0;
}

static void balloon_activate(void *dev)
{
	struct balloon *b = dev;
	log_debug("balloon", "driver ready (features 0x%" PRIx64 ")", b->features);
}

/* Inflate/deflate buffers: arrays of le32 PFNs, copied out of the guest
 * before anything looks at them. */
static void balloon_serve_pfns(struct balloon *b, struct virtq *vq, bool inflate)
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

static void balloon_serve_stats(struct balloon *b, struct virtq *vq)
{
	struct vq_chain *c = &b->chain;
	uint8_t buf[BALLOON_STATS_MAX];

	while (vq_pop(vq, c, VQ_DIR_READ) == 1) {
		size_t len = 0;
		for (unsigned i = 0; i < c->nr && len < sizeof(buf); i++) {
			size_t k = c->buf[i].len;
			if (k > sizeof(buf) - len)
				k = sizeof(buf) - len;
			memcpy(buf + len, c->buf[i].hva, k);
			len += k;
		}
		balloon_parse_stats(b, buf, len);
		/* the driver keeps one buffer out; a second one replaces the first */
		if (b->stats_held && b->stats_gen == vq->gen) {
			vq_push(vq, b->stats_head, 0);
			virtio_mmio_notify_used(b->vio, vq);
		}
		b->stats_held = true;
		b->stats_head = c->head;
		b->stats_gen = vq->gen;
	}
}

static void balloon_serve_reports(struct balloon *b, struct virtq *vq)
{
	struct vq_chain *c = &b->chain;

	while (vq_pop(vq, c, VQ_DIR_WRITE) == 1) {
		uint64_t given = 0;
		for (unsigned i = 0; i < c->nr; i++)
			given += balloon_report_range(b, c->buf[i].gpa, c->buf[i].len);
		b->reports++;
		log_debug("balloon", "free page report: %" PRIu64 " bytes given up", given);
		vq_push(vq, c->head, 0);
		virtio_mmio_notify_used(b->vio, vq);
	}
}

static void balloon_queue_notify(void *dev, struct virtq *vq)
{
	struct balloon *b = dev;

	switch (balloon_queue_role(b->features, vq->index)) {
	case BQ_INFLATE: balloon_serve_pfns(b, vq, true); break;
	case BQ_DEFLATE: balloon_serve_pfns(b, vq, false); break;
	case BQ_STATS:   balloon_serve_stats(b, vq); break;
	case BQ_REPORT:  balloon_serve_reports(b, vq); break;
	case BQ_NONE:    break;
	}
}

static void balloon_reset(void *dev)
{
	struct balloon *b = dev;

	/* a new driver knows nothing of the old one's balloon: hand it all back */
	if (b->nr_ballooned) {
		log_limited(&b->log_rl, log_info, "balloon",
			    "device reset with %" PRIu64 " pages in the balloon; releasing them", b->nr_ballooned);
		balloon_release_all(b);
	}
	b->features = 0;
	b->stats_held = false;
	if (b->actual) {
		b->actual = 0;
		balloon_emit_change(b);
	}
}

static const struct virtio_dev_ops balloon_ops = {
	.name = "balloon",
	.device_id = BALLOON_DEVICE_ID,
	.features = balloon_features,
	.nr_queues = balloon_nr_queues,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.set_features = balloon_set_features,
	.activate = balloon_activate,
	.queue_notify = balloon_queue_notify,
	.reset = balloon_reset,
};

/* Main thread, every stats period: give the driver its buffer back so it
 * refills it with fresh figures (spec 5.5.6.3). */
static void balloon_stats_tick(void *opaque, uint32_t events)
{
	struct balloon *b = opaque;

	virtio_mmio_lock(b->vio);
	if (b->stats_held && virtio_mmio_live(b->vio) &&
	    (b->features & (1ull << BALLOON_F_STATS_VQ))) {
		struct virtq *vq = virtio_mmio_queue(b->vio, 2);
		b->stats_held = false;
		/* a buffer from before the driver set the queue up again is gone */
		if (b->stats_gen == vq->gen) {
			vq_push(vq, b->stats_head, 0);
			virtio_mmio_notify_used(b->vio, vq);
		}
	}
	virtio_mmio_unlock(b->vio);
}

int balloon_set_stats_period(struct balloon *b, uint32_t seconds)
{
	uint64_t ns = (uint64_t)seconds * 1000000000ull;
	int ret = 0;

	b->opts.stats_period = seconds;
	if (!b->vm || !b->vm->loop || !b->vio)
		return 0;
	if (b->stats_timer_fd >= 0) {
		ret = loop_timer_set(b->stats_timer_fd, ns);
	} else if (seconds) {
		int fd = loop_add_timer(b->vm->loop, ns, balloon_stats_tick, b);
		if (fd < 0)
			ret = fd;
		else
			b->stats_timer_fd = fd;
	}
	if (ret)
		log_err("balloon", "cannot set the stats timer: %s", strerror(-ret));
	return ret;
}

/* ---- creation and control ---- */

int balloon_create(struct vm *vm, const char *opts, char *err, size_t errlen)
{
	struct balloon_opts o;
	struct balloon *b;
	int ret;

	ret = balloon_parse_opts(opts, &o, err, errlen);
	if (ret)
		return ret;
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "balloon: out of memory");
		return -ENOMEM;
	}
	ret = balloon_init(b, &vm->mem, vm->mgr, &o);
	if (!ret) {
		b->vm = vm;
		ret = virtio_mmio_create(vm, &balloon_ops, b, &b->vio);
	}
	if (ret) {
		snprintf(err, errlen, "balloon: cannot create the device: %s", strerror(-ret));
		balloon_fini(b);
		free(b);
		return ret;
	}
	if (o.stats_period)
		balloon_set_stats_period(b, o.stats_period);
	vm->balloon = b;
	log_debug("balloon", "virtio-balloon at 0x%" PRIx64 " irq %u (deflate-on-oom=%s, "
		 "free-page-reporting=%s, must-tell-host=%s, stats-period=%u)",
		 virtio_mmio_base(b->vio), virtio_mmio_gsi(b->vio), o.deflate_on_oom ? "on" : "off",
		 o.free_page_reporting ? "on" : "off", o.must_tell_host ? "on" : "off",
		 o.stats_period);
	return 0;
}

void balloon_destroy(struct vm *vm)
{
	struct balloon *b = vm->balloon;

	if (!b)
		return;
	if (b->stats_timer_fd >= 0 && vm->loop)
		loop_del(vm->loop, b->stats_timer_fd);   /* the loop closes its timer fds */
	virtio_mmio_destroy(b->vio);
	balloon_fini(b);
	free(b);
	vm->balloon = NULL;
}

int balloon_set_target(struct vm *vm, uint64_t target, char *err, size_t errlen)
{
	struct balloon *b = vm->balloon;
	char s1[32], s2[32];

	if (!b) {
		snprintf(err, errlen, "No balloon device has been activated");
		return -ENODEV;
	}
	uint64_t ram = b->gm->ram_size;
	if (target == 0 || target > ram) {
		snprintf(err, errlen, "Parameter 'value' must be between 1 and the guest RAM size %" PRIu64,
			 ram);
		return -EINVAL;
	}
	uint64_t pages = (ram - target) / BALLOON_PAGE_SIZE;
	if (pages > UINT32_MAX)
		pages = UINT32_MAX;
	if (b->vio)
		virtio_mmio_lock(b->vio);
	b->num_pages = (uint32_t)pages;
	if (b->vio) {
		virtio_mmio_config_changed(b->vio);
		virtio_mmio_unlock(b->vio);
	}
	log_info("balloon", "target guest memory %s (%s in the balloon)",
		 fmt_size(target, s1, sizeof(s1)), fmt_size(pages * BALLOON_PAGE_SIZE, s2, sizeof(s2)));
	return 0;
}

uint64_t balloon_actual_bytes(struct balloon *b)
{
	uint64_t ram = b->gm->ram_size, in = (uint64_t)b->actual * BALLOON_PAGE_SIZE;
	return in > ram ? 0 : ram - in;
}

void balloon_query(struct vm *vm, json_t *obj)
{
	struct balloon *b = vm->balloon;

	if (!b) {
		json_object_set_new(obj, "balloon", json_null());
		return;
	}
	if (b->vio)
		virtio_mmio_lock(b->vio);
	json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			      "target-bytes", (json_int_t)(b->gm->ram_size - (uint64_t)b->num_pages * BALLOON_PAGE_SIZE),
			      "actual-bytes", (json_int_t)balloon_actual_bytes(b),
			      "ballooned-bytes", (json_int_t)(b->nr_ballooned * BALLOON_PAGE_SIZE),
			      "inflated-pages", (json_int_t)b->inflated_pages,
			      "deflated-pages", (json_int_t)b->deflated_pages,
			      "touched-pages", (json_int_t)b->touched_pages,
			      "bad-pfns", (json_int_t)b->bad_pfns,
			      "skipped-pfns", (json_int_t)b->skipped_pfns,
			      "reported-bytes", (json_int_t)b->reported_bytes,
			      "reports", (json_int_t)b->reports,
			      "discard-errors", (json_int_t)b->discard_errors);
	if (b->vio)
		virtio_mmio_unlock(b->vio);
	json_object_set_new(obj, "balloon", o);
}
