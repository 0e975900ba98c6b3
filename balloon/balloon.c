/*
 * balloon: the virtio-balloon device model (virtio 1.2, 5.5). Owns the
 * device's options, config space, feature negotiation, its queues' roles
 * (inflate, deflate, stats, free page reporting, numbered as Linux does),
 * the guest's memory statistics and their polling timer, and the device's
 * creation and control (target, query). Inflate and deflate themselves
 * are in inflate.c.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "balloon/balloon.h"
#include "mm/manager.h"
#include "mm/mm.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"
#include "vmm/lib/loop.h"
#include "vmm/lib/opts.h"
#include "vmm/lib/size.h"

const char *const balloon_stat_names[BALLOON_NR_STATS] = {
	[VIRTIO_BALLOON_S_SWAP_IN] = "stat-swap-in",
	[VIRTIO_BALLOON_S_SWAP_OUT] = "stat-swap-out",
	[VIRTIO_BALLOON_S_MAJFLT] = "stat-major-faults",
	[VIRTIO_BALLOON_S_MINFLT] = "stat-minor-faults",
	[VIRTIO_BALLOON_S_MEMFREE] = "stat-free-memory",
	[VIRTIO_BALLOON_S_MEMTOT] = "stat-total-memory",
	[VIRTIO_BALLOON_S_AVAIL] = "stat-available-memory",
	[VIRTIO_BALLOON_S_CACHES] = "stat-disk-caches",
	[VIRTIO_BALLOON_S_HTLB_PGALLOC] = "stat-htlb-pgalloc",
	[VIRTIO_BALLOON_S_HTLB_PGFAIL] = "stat-htlb-pgfail",
	[VIRTIO_BALLOON_S_OOM_KILL] = "stat-oom-kills",
	[VIRTIO_BALLOON_S_ALLOC_STALL] = "stat-alloc-stalls",
	[VIRTIO_BALLOON_S_ASYNC_SCAN] = "stat-async-scans",
	[VIRTIO_BALLOON_S_DIRECT_SCAN] = "stat-direct-scans",
	[VIRTIO_BALLOON_S_ASYNC_RECLAIM] = "stat-async-reclaims",
	[VIRTIO_BALLOON_S_DIRECT_RECLAIM] = "stat-direct-reclaims",
};

/* Stats buffers larger than this are read only up to it (64 entries). */
#define BALLOON_STATS_MAX 640

enum balloon_queue {
	BQ_INFLATE, BQ_DEFLATE, BQ_STATS, BQ_REPORT, BQ_NONE,
};

/* ---- options ---- */

static int balloon_opt_bool(const char *key, const char *val, bool *out, char *err, size_t errlen)
{
	if (opts_bool(val, out) == 0)
		return 0;
	snprintf(err, errlen, "balloon: option %s takes on or off, not '%s'", key, val);
	return -EINVAL;
}

int balloon_parse_opts(const char *s, struct balloon_opts *o, char *err, size_t errlen)
{
	*o = (struct balloon_opts){ .deflate_on_oom = true, .free_page_reporting = true };
	if (!s || !*s)
		return 0;

	struct opts_iter it;
	char *key, *val;
	int ret = opts_begin(&it, s);
	while (!ret && opts_next(&it, &key, &val)) {
		if (!val) {
			snprintf(err, errlen, "balloon: option '%s' needs a value (%s=...)", key, key);
			ret = -EINVAL;
		} else if (!strcmp(key, "deflate-on-oom")) {
			ret = balloon_opt_bool(key, val, &o->deflate_on_oom, err, errlen);
		} else if (!strcmp(key, "free-page-reporting")) {
			ret = balloon_opt_bool(key, val, &o->free_page_reporting, err, errlen);
		} else if (!strcmp(key, "must-tell-host")) {
			ret = balloon_opt_bool(key, val, &o->must_tell_host, err, errlen);
		} else if (!strcmp(key, "stats-period")) {
			uint64_t v;
			if (opts_u64(val, 0, UINT32_MAX, &v)) {
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
	opts_end(&it);
	return ret;
}

int balloon_parse_stats(struct balloon *b, const uint8_t *buf, size_t len)
{
	const size_t esz = sizeof(struct virtio_balloon_stat);   /* 10: packed le16 tag, le64 val */
	size_t n = len / esz;

	for (size_t i = 0; i < n; i++) {
		struct virtio_balloon_stat e;
		memcpy(&e, buf + i * esz, esz);
		uint16_t tag = le16toh(e.tag);
		uint64_t val = le64toh(e.val);
		if (tag >= BALLOON_NR_STATS) {
			b->stats_unknown_tags++;   /* newer drivers add tags: not an error */
			continue;
		}
		b->stats[tag] = val > INT64_MAX ? INT64_MAX : (int64_t)val;
	}
	if (len % esz)
		log_debug("balloon", "stats buffer of %zu bytes: trailing %zu bytes ignored", len,
			  len % esz);
	b->stats_last_update = (int64_t)time(NULL);
	b->stats_updates++;
	return (int)n;
}

/* ---- life cycle of the core ---- */

int balloon_init(struct balloon *b, struct guest_mem *gm, struct mm_manager *mgr,
		 const struct balloon_opts *o)
{
	memset(b, 0, sizeof(*b));
	if (!mgr)
		return -EINVAL;   /* the manager's table says which pages are given */
	b->gm = gm;
	b->mgr = mgr;
	b->opts = *o;
	b->stats_timer_fd = -1;
	for (int i = 0; i < BALLOON_NR_STATS; i++)
		b->stats[i] = -1;
	return balloon_scratch(b, 256);
}

void balloon_fini(struct balloon *b)
{
	free(b->pfns);
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
	if (features & (1ull << VIRTIO_BALLOON_F_STATS_VQ)) {
		if (idx == next)
			return BQ_STATS;
		next++;
	}
	if ((features & (1ull << VIRTIO_BALLOON_F_REPORTING)) && idx == next)
		return BQ_REPORT;
	return BQ_NONE;
}

static uint64_t balloon_features(void *dev)
{
	struct balloon *b = dev;
	uint64_t f = 1ull << VIRTIO_BALLOON_F_STATS_VQ;

	if (b->opts.deflate_on_oom)
		f |= 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (b->opts.free_page_reporting)
		f |= 1ull << VIRTIO_BALLOON_F_REPORTING;
	if (b->opts.must_tell_host)
		f |= 1ull << VIRTIO_BALLOON_F_MUST_TELL_HOST;
	return f;
}

static unsigned balloon_nr_queues(void *dev, uint64_t f)
{
	return 2 + !!(f & (1ull << VIRTIO_BALLOON_F_STATS_VQ)) + !!(f & (1ull << VIRTIO_BALLOON_F_REPORTING));
}

static void balloon_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct balloon *b = dev;
	struct virtio_balloon_config cfg = {
		.num_pages = htole32(b->num_pages), .actual = htole32(b->actual),
	};
	const uint8_t *bytes = (const uint8_t *)&cfg;

	for (uint32_t i = 0; i < len; i++)
		data[i] = (uint64_t)off + i < sizeof(cfg) ? bytes[off + i] : 0;
}

static void balloon_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct balloon *b = dev;

	const uint32_t at = offsetof(struct virtio_balloon_config, actual);

	/* only `actual` is the driver's to write */
	if (off < at || (uint64_t)off + len > at + sizeof(b->actual)) {
		log_debug("balloon", "config write at %u (+%u) ignored", off, len);
		return;
	}
	uint32_t v = htole32(b->actual);
	memcpy((uint8_t *)&v + (off - at), data, len);
	v = le32toh(v);
	if (v == b->actual)
		return;
	b->actual = v;
	if (v != balloon_nr_ballooned(b))
		log_debug("balloon", "driver says %u pages in the balloon, the manager counts %" PRIu64,
			  v, balloon_nr_ballooned(b));
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

/* Stats buffers: copied out of the guest, then parsed under the register
 * lock, which is what QMP reads the figures under. Queue lock held. */
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
		virtio_mmio_lock(b->vio);
		balloon_parse_stats(b, buf, len);
		virtio_mmio_unlock(b->vio);
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
		atomic_fetch_add(&b->reports, 1);
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
	uint64_t in = balloon_nr_ballooned(b);
	if (in) {
		log_limited(&b->log_rl, log_info, "balloon",
			    "device reset with %" PRIu64 " pages in the balloon; releasing them", in);
		balloon_release_all(b);
	}
	b->features = 0;
	b->stats_held = false;
	if (b->actual) {
		b->actual = 0;
		balloon_emit_change(b);
	}
}

/* The queue work: inflate, deflate and reports hand pages to the memory
 * manager (mm_sandbox_guest_ram); BALLOON_CHANGE events and interrupts are
 * eventfd writes the transport's list already allows. */
static const struct sb_list *const balloon_sandbox[] = { &mm_sandbox_guest_ram, NULL };

static const struct virtio_dev_ops balloon_ops = {
	.name = "balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.features = balloon_features,
	.nr_queues = balloon_nr_queues,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.set_features = balloon_set_features,
	.activate = balloon_activate,
	.queue_notify = balloon_queue_notify,
	.reset = balloon_reset,
	.sandbox = balloon_sandbox,
};

/* Main thread, every stats period: give the driver its buffer back so it
 * refills it with fresh figures (spec 5.5.6.3). The held buffer belongs to
 * the queue side: this waits at most for the notification the worker is
 * serving. */
static void balloon_stats_tick(void *opaque, uint32_t events)
{
	struct balloon *b = opaque;

	virtio_mmio_queues_lock(b->vio);
	if (b->stats_held && virtio_mmio_live(b->vio) &&
	    (b->features & (1ull << VIRTIO_BALLOON_F_STATS_VQ))) {
		struct virtq *vq = virtio_mmio_queue(b->vio, 2);
		b->stats_held = false;
		/* a buffer from before the driver set the queue up again is gone */
		if (b->stats_gen == vq->gen) {
			vq_push(vq, b->stats_head, 0);
			virtio_mmio_notify_used(b->vio, vq);
		}
	}
	virtio_mmio_queues_unlock(b->vio);
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

int balloon_set_target(struct balloon *b, uint64_t target, char *err, size_t errlen)
{
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
		virtio_mmio_unlock(b->vio);
		virtio_mmio_config_changed(b->vio);
	}
	log_info("balloon", "target guest memory %s (%s in the balloon)",
		 size_format(target, SIZE_FIXED2, s1, sizeof(s1)), size_format(pages * BALLOON_PAGE_SIZE, SIZE_FIXED2, s2, sizeof(s2)));
	return 0;
}

uint64_t balloon_actual_bytes(struct balloon *b)
{
	uint64_t ram = b->gm->ram_size, in = (uint64_t)b->actual * BALLOON_PAGE_SIZE;
	return in > ram ? 0 : ram - in;
}

void balloon_query(struct balloon *b, json_t *obj)
{
	if (b->vio)
		virtio_mmio_lock(b->vio);
	uint64_t target = b->gm->ram_size - (uint64_t)b->num_pages * BALLOON_PAGE_SIZE;
	uint64_t updates = b->stats_updates, unknown = b->stats_unknown_tags;
	if (b->vio)
		virtio_mmio_unlock(b->vio);
	json_object_set_new(obj, "target", json_integer((json_int_t)target));
	json_object_set_new(obj, "stats-updates", json_integer((json_int_t)updates));
	json_object_set_new(obj, "stats-unknown-tags", json_integer((json_int_t)unknown));
#define BQ_COUNTER(name, field) \
	json_object_set_new(obj, name, json_integer((json_int_t)atomic_load(&b->field)))
	BQ_COUNTER("inflated-pages", inflated_pages);
	BQ_COUNTER("deflated-pages", deflated_pages);
	BQ_COUNTER("bad-pfns", bad_pfns);
	BQ_COUNTER("skipped-pfns", skipped_pfns);
	BQ_COUNTER("reported-bytes", reported_bytes);
	BQ_COUNTER("reports", reports);
	BQ_COUNTER("discard-errors", discard_errors);
#undef BQ_COUNTER
}
