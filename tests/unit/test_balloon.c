/*
 * Unit tests of the balloon device (balloon/balloon.c, balloon/qmp.c) over
 * real guest RAM: option parsing errors, PFN validation and coalescing
 * (out-of-RAM and hole PFNs, duplicates, already ballooned pages) with the
 * host backing really released, free page reporting ranges, stats parsing
 * with odd input, and the whole device driven through its virtio-mmio
 * registers as the Linux driver drives it (inline, and on its worker thread
 * as with ioeventfd), plus its QMP commands. Every fixture has a real memory
 * manager (no --mm options: reclaim off), whose page-state table is where
 * the device records which pages are in the balloon.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <sys/mman.h>
#include <time.h>

#include "mm/manager.h"
#include "mm/mm.h"
#include "vmm/qmp/qmp.h"
#include "vmm/virtio/virtio.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"
#include "balloon/balloon.h"

#define MiB (1ULL << 20)
#define PAGE 4096ULL

struct fx {
	struct vm vm;             /* guest RAM and its memory manager */
	struct guest_mem *gm;     /* &vm.mem */
	struct balloon b;
};

static int fx_create(void **state, uint64_t ram)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct mm_config cfg = { .ram_size = ram, .backing = MM_BACKING_ANON };
	struct balloon_opts o;
	char err[256];

	if (!f || mm_create(&f->vm.mem, &cfg, err, sizeof(err))) {
		print_error("mm_create failed\n");
		free(f);
		return -1;
	}
	if (mmgr_create(&f->vm.mem, NULL, NULL, NULL, &f->vm.mgr, err, sizeof(err))) {
		print_error("mmgr_create: %s\n", err);
		return -1;
	}
	f->gm = &f->vm.mem;
	if (balloon_parse_opts(NULL, &o, err, sizeof(err)) ||
	    balloon_init(&f->b, &f->vm.mem, f->vm.mgr, &o))
		return -1;
	*state = f;
	return 0;
}

static int setup(void **state) { return fx_create(state, 16 * MiB); }
static int setup_hole(void **state) { return fx_create(state, MINIVMM_LOWMEM_MAX + 16 * MiB); }

static int teardown(void **state)
{
	struct fx *f = *state;
	balloon_fini(&f->b);
	mmgr_destroy(f->vm.mgr);
	mm_destroy(&f->vm.mem);
	free(f);
	return 0;
}

static bool resident(struct guest_mem *gm, uint64_t gpa)
{
	unsigned char v = 0;
	void *p = mm_gpa_to_hva(gm, gpa, PAGE);
	assert_non_null(p);
	assert_int_equal(mincore(p, PAGE, &v), 0);
	return v & 1;
}

static void dirty(struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint8_t *p = mm_gpa_to_hva(gm, gpa, len);
	assert_non_null(p);
	memset(p, 0x5a, len);
}

/* ---- options ---- */

static void expect_opt_error(const char *s, const char *needle)
{
	struct balloon_opts o;
	char err[256] = "";
	assert_int_equal(balloon_parse_opts(s, &o, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error for '%s' is '%s', expected it to name '%s'", s, err, needle);
	assert_non_null(strstr(err, "balloon"));
}

static void test_opts(void **state)
{
	struct balloon_opts o;
	char err[256];

	assert_int_equal(balloon_parse_opts(NULL, &o, err, sizeof(err)), 0);
	assert_true(o.deflate_on_oom && o.free_page_reporting);
	assert_false(o.must_tell_host);
	assert_int_equal(o.stats_period, 0);
	assert_int_equal(balloon_parse_opts("", &o, err, sizeof(err)), 0);
	assert_int_equal(balloon_parse_opts("deflate-on-oom=off,free-page-reporting=off,"
					    "stats-period=5,must-tell-host=on", &o, err, sizeof(err)), 0);
	assert_false(o.deflate_on_oom || o.free_page_reporting);
	assert_true(o.must_tell_host);
	assert_int_equal(o.stats_period, 5);

	expect_opt_error("deflate-on-oom=maybe", "deflate-on-oom");
	expect_opt_error("free-page-reporting", "free-page-reporting");
	expect_opt_error("stats-period=-1", "stats-period");
	expect_opt_error("stats-period=1x", "stats-period");
	expect_opt_error("stats-period=", "stats-period");
	expect_opt_error("stats-period=99999999999", "stats-period");
	expect_opt_error("stats-period=1,colour=blue", "colour");
	expect_opt_error("must-tell-host=2", "must-tell-host");
}

/* ---- inflate / deflate ---- */

static void test_inflate_validate_coalesce(void **state)
{
	struct fx *f = *state;
	struct balloon *b = &f->b;
	struct balloon_batch r;
	uint64_t pages = f->gm->ram_size / PAGE;

	dirty(f->gm, 0, f->gm->ram_size);
	uint32_t pfns[] = { 13, 10, 12, 11, 10, (uint32_t)pages, 0xffffffffu, 20, 12 };
	balloon_inflate_pfns(b, pfns, sizeof(pfns) / sizeof(pfns[0]), &r);
	assert_int_equal(r.done, 5);
	assert_int_equal(r.ranges, 2);        /* 10-13 and 20: two discard calls */
	assert_int_equal(r.dup, 2);
	assert_int_equal(r.bad, 2);
	assert_int_equal(r.skipped, 0);
	assert_int_equal(balloon_nr_ballooned(b), 5);
	for (uint64_t p = 10; p <= 13; p++) {
		assert_true(balloon_page_ballooned(b, p * PAGE));
		assert_false(resident(f->gm, p * PAGE));
	}
	assert_false(resident(f->gm, 20 * PAGE));
	assert_true(resident(f->gm, 14 * PAGE));
	assert_true(resident(f->gm, 9 * PAGE));
	assert_false(balloon_page_ballooned(b, 14 * PAGE));
	/* a ballooned page reads as zero */
	assert_int_equal(*(uint8_t *)mm_gpa_to_hva(f->gm, 11 * PAGE + 5, 1), 0);

	/* already ballooned pages are skipped, not given up twice */
	uint32_t again[] = { 11, 30, 13 };
	balloon_inflate_pfns(b, again, 3, &r);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.skipped, 2);
	assert_int_equal(balloon_nr_ballooned(b), 6);

	/* deflate: only ballooned pages come back */
	uint32_t back[] = { 12, 11, 50 };
	balloon_deflate_pfns(b, back, 3, &r);
	assert_int_equal(r.done, 2);
	assert_int_equal(r.ranges, 1);
	assert_int_equal(r.skipped, 1);
	assert_int_equal(balloon_nr_ballooned(b), 4);
	assert_false(balloon_page_ballooned(b, 11 * PAGE));
	assert_true(balloon_page_ballooned(b, 10 * PAGE));
	/* page 11 was read while ballooned (above): that counts as touched */
	assert_int_equal(mmgr_balloon_touched(b->mgr), 1);

	/* a guest touching a ballooned page anyway is counted at deflate */
	dirty(f->gm, 13 * PAGE, PAGE);
	uint32_t t13[] = { 13, 30 };
	balloon_deflate_pfns(b, t13, 2, &r);
	assert_int_equal(r.done, 2);
	assert_int_equal(mmgr_balloon_touched(b->mgr), 2);
	assert_int_equal(b->inflated_pages, 6);
	assert_int_equal(b->deflated_pages, 4);
	assert_int_equal(b->bad_pfns, 2);
}

static void test_large_shuffled_batch(void **state)
{
	struct fx *f = *state;
	struct balloon *b = &f->b;
	struct balloon_batch r;
	uint64_t pages = f->gm->ram_size / PAGE;
	uint32_t *pfns = malloc(pages * sizeof(*pfns));

	assert_non_null(pfns);
	dirty(f->gm, 0, f->gm->ram_size);
	for (uint64_t i = 0; i < pages; i++)
		pfns[i] = (uint32_t)i;
	srand(7);
	for (uint64_t i = pages - 1; i > 0; i--) {
		uint64_t j = (uint64_t)rand() % (i + 1);
		uint32_t t = pfns[i];
		pfns[i] = pfns[j];
		pfns[j] = t;
	}
	/* the whole RAM in one call: split into sorted batches, all of it given up */
	balloon_inflate_pfns(b, pfns, pages, &r);
	assert_int_equal(r.done, pages);
	assert_int_equal(balloon_nr_ballooned(b), pages);
	assert_true(r.ranges < pages / 16);
	assert_true(mm_resident_bytes(f->gm) < 256 * 1024);
	balloon_release_all(b);
	assert_int_equal(balloon_nr_ballooned(b), 0);
	assert_false(balloon_page_ballooned(b, 100 * PAGE));
	free(pfns);
}

static void test_pfns_around_hole(void **state)
{
	struct fx *f = *state;
	struct balloon *b = &f->b;
	struct balloon_batch r;
	uint32_t last_low = (uint32_t)(MINIVMM_LOWMEM_MAX / PAGE - 1);
	uint32_t first_high = (uint32_t)(MINIVMM_HIGHMEM_BASE / PAGE);
	uint32_t hole = (uint32_t)(MINIVMM_MMIO_BASE / PAGE);
	uint32_t past = first_high + (uint32_t)(16 * MiB / PAGE);

	dirty(f->gm, MINIVMM_LOWMEM_MAX - PAGE, PAGE);
	dirty(f->gm, MINIVMM_HIGHMEM_BASE, 2 * PAGE);
	uint32_t pfns[] = { first_high + 1, hole, last_low, first_high, past, last_low + 1 };
	balloon_inflate_pfns(b, pfns, 6, &r);
	assert_int_equal(r.done, 3);
	assert_int_equal(r.bad, 3);
	assert_int_equal(r.ranges, 2);        /* never coalesced across the hole */
	assert_false(resident(f->gm, MINIVMM_LOWMEM_MAX - PAGE));
	assert_false(resident(f->gm, MINIVMM_HIGHMEM_BASE + PAGE));
	assert_true(balloon_page_ballooned(b, MINIVMM_HIGHMEM_BASE));
}

/* ---- free page reporting ---- */

static void test_report_range(void **state)
{
	struct fx *f = *state;
	struct balloon *b = &f->b;
	struct balloon_batch r;

	dirty(f->gm, 0, 4 * MiB);
	uint32_t pfn = 0x105;
	balloon_inflate_pfns(b, &pfn, 1, &r);
	/* unaligned edges are rounded inwards; the ballooned page is left alone */
	uint64_t given = balloon_report_range(b, 0x100000 + 100, 2 * MiB);
	assert_int_equal(given, 2 * MiB - PAGE - PAGE);   /* lose the two partial pages and 0x105 */
	assert_true(resident(f->gm, 0x100000));
	assert_false(resident(f->gm, 0x101000));
	assert_false(resident(f->gm, 0x2ff000));
	assert_true(resident(f->gm, 0x300000));
	assert_true(balloon_page_ballooned(b, 0x105000));
	assert_false(balloon_page_ballooned(b, 0x106000));   /* reported is not ballooned */
	assert_int_equal(b->reported_bytes, given);
	/* partly outside RAM: only the RAM part */
	assert_int_equal(balloon_report_range(b, f->gm->ram_size - 2 * PAGE, 4 * PAGE), 2 * PAGE);
	assert_int_equal(balloon_report_range(b, f->gm->ram_size + PAGE, 4 * PAGE), 0);
	assert_int_equal(balloon_report_range(b, 0xfffffffffffff000ull, 0x2000), 0);
	assert_int_equal(balloon_report_range(b, 0x10000, 100), 0);
}

/* ---- stats ---- */

static size_t put_stat(uint8_t *buf, size_t off, uint16_t tag, uint64_t val)
{
	tag = htole16(tag);
	val = htole64(val);
	memcpy(buf + off, &tag, 2);
	memcpy(buf + off + 2, &val, 8);
	return off + sizeof(struct virtio_balloon_stat);
}

static void test_stats_parse(void **state)
{
	struct fx *f = *state;
	struct balloon *b = &f->b;
	uint8_t buf[400];
	size_t n = 0;

	for (int i = 0; i < BALLOON_NR_STATS; i++)
		assert_int_equal(b->stats[i], -1);
	assert_int_equal(b->stats_last_update, 0);
	for (uint16_t t = 0; t < BALLOON_NR_STATS; t++)
		n = put_stat(buf, n, t, 1000 + t);
	n = put_stat(buf, n, 99, 5);                     /* a tag from a newer driver */
	n = put_stat(buf, n, 4, 4444);                   /* repeated: the last one wins */
	n = put_stat(buf, n, 7, 0xffffffffffffffffull);  /* does not fit a JSON integer */
	memset(buf + n, 0xee, 5);                        /* a trailing half entry */
	assert_int_equal(balloon_parse_stats(b, buf, n + 5), BALLOON_NR_STATS + 3);
	assert_int_equal(b->stats[0], 1000);
	assert_int_equal(b->stats[15], 1015);
	assert_int_equal(b->stats[4], 4444);
	assert_int_equal(b->stats[7], INT64_MAX);
	assert_int_equal(b->stats_unknown_tags, 1);
	assert_true(llabs(b->stats_last_update - (int64_t)time(NULL)) <= 2);

	/* shorter than one entry, or empty: nothing parsed, still an update */
	assert_int_equal(balloon_parse_stats(b, buf, 9), 0);
	assert_int_equal(balloon_parse_stats(b, buf, 0), 0);
	assert_int_equal(b->stats_updates, 3);
	assert_int_equal(b->stats[0], 1000);
	assert_string_equal(balloon_stat_names[4], "stat-free-memory");
	assert_string_equal(balloon_stat_names[15], "stat-direct-reclaims");
}

/* ---- the whole device through its registers ---- */

#define QS 16
/* queue rings and buffers, all inside the first MiB of guest RAM */
#define RING(q)   (0x10000ULL + (q) * 0x3000ULL)
#define BUF(q)    (0x40000ULL + (q) * 0x1000ULL)

struct dev {
	struct vm *vm;
	struct virtio_mmio *t;
	uint16_t avail_idx[4];
};

static uint32_t rd(struct virtio_mmio *t, uint64_t off)
{
	uint32_t v;
	virtio_mmio_access(t, off, (uint8_t *)&v, 4, false);
	return le32toh(v);
}

static void wr(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	v = htole32(v);
	virtio_mmio_access(t, off, (uint8_t *)&v, 4, true);
}

static void dev_queue(struct dev *d, unsigned q)
{
	struct virtio_mmio *t = d->t;
	memset(mm_gpa_to_hva(&d->vm->mem, RING(q), 0x3000), 0, 0x3000);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, q);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), VQ_MAX_SIZE);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, QS);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)RING(q));
	wr(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(RING(q) + 0x1000));
	wr(t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(RING(q) + 0x2000));
	wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 1);
	d->avail_idx[q] = 0;
}

/* Brings the device up as Linux does; returns the negotiated features. */
static uint64_t dev_probe(struct dev *d, uint64_t want)
{
	struct virtio_mmio *t = d->t;
	wr(t, VIRTIO_MMIO_STATUS, 0);
	wr(t, VIRTIO_MMIO_STATUS, 1);
	wr(t, VIRTIO_MMIO_STATUS, 3);
	wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t offered = rd(t, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)rd(t, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	uint64_t f = offered & want;
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	wr(t, VIRTIO_MMIO_STATUS, 0xb);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	return f;
}

/* One buffer (one descriptor) on queue q; notify. */
static void dev_send(struct dev *d, unsigned q, uint64_t gpa, uint32_t len, bool writable)
{
	struct guest_mem *gm = &d->vm->mem;
	uint16_t slot = d->avail_idx[q] % QS;
	struct vring_desc *desc = mm_gpa_to_hva(gm, RING(q) + 16ull * slot, 16);
	desc->addr = htole64(gpa);
	desc->len = htole32(len);
	desc->flags = htole16(writable ? VRING_DESC_F_WRITE : 0);
	desc->next = 0;
	uint16_t *avail = mm_gpa_to_hva(gm, RING(q) + 0x1000, 4 + 2 * QS);
	avail[2 + slot] = htole16(slot);
	d->avail_idx[q]++;
	__atomic_store_n(&avail[1], htole16(d->avail_idx[q]), __ATOMIC_RELEASE);
	wr(d->t, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static uint16_t used_idx(struct dev *d, unsigned q)
{
	uint16_t *u = mm_gpa_to_hva(&d->vm->mem, RING(q) + 0x2000, 4);
	/* acquire, as a driver reads it: the worker may be writing the ring */
	return le16toh(__atomic_load_n(&u[1], __ATOMIC_ACQUIRE));
}

/* Waits until the device used `want` buffers of queue q (the worker serves
 * them asynchronously). */
static void wait_used(struct dev *d, unsigned q, uint16_t want)
{
	for (int i = 0; i < 10000 && used_idx(d, q) != want; i++)
		usleep(1000);
	assert_int_equal(used_idx(d, q), want);
}

static int dev_setup(void **state)
{
	struct dev *d = calloc(1, sizeof(*d));
	struct mm_config cfg = { .ram_size = 64 * MiB, .backing = MM_BACKING_ANON };
	char err[256];

	d->vm = calloc(1, sizeof(*d->vm));
	d->vm->vm_fd = -1;   /* no KVM: interrupts fail quietly, everything else is real */
	if (mm_create(&d->vm->mem, &cfg, err, sizeof(err)) ||
	    mmgr_create(&d->vm->mem, NULL, NULL, NULL, &d->vm->mgr, err, sizeof(err)))
		return -1;
	if (balloon_create(d->vm, "stats-period=0", err, sizeof(err))) {
		print_error("balloon_create: %s\n", err);
		return -1;
	}
	d->t = d->vm->balloon->vio;
	*state = d;
	return 0;
}

static int dev_teardown(void **state)
{
	struct dev *d = *state;
	balloon_destroy(d->vm);
	mmgr_destroy(d->vm->mgr);
	io_bus_free(&d->vm->mmio);
	mm_destroy(&d->vm->mem);
	free(d->vm);
	free(d);
	return 0;
}

static void test_device_end_to_end(void **state)
{
	struct dev *d = *state;
	struct guest_mem *gm = &d->vm->mem;
	struct balloon *b = d->vm->balloon;
	struct virtio_mmio *t = d->t;
	char err[256];

	assert_int_equal(rd(t, VIRTIO_MMIO_DEVICE_ID), 5);
	assert_int_equal(d->vm->devs[0].device_id, 5);
	uint64_t all = (1ull << VIRTIO_BALLOON_F_STATS_VQ) | (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
		       (1ull << VIRTIO_BALLOON_F_REPORTING) | (1ull << VIRTIO_BALLOON_F_MUST_TELL_HOST) |
		       (1ull << VIRTIO_BALLOON_F_FREE_PAGE_HINT) | (1ull << VIRTIO_F_VERSION_1) |
		       (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_RING_F_EVENT_IDX);
	uint64_t f = dev_probe(d, all);
	/* offered: exactly these (no MUST_TELL_HOST unless asked, no hints, no indirect) */
	assert_int_equal(f, (1ull << VIRTIO_BALLOON_F_STATS_VQ) | (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
			    (1ull << VIRTIO_BALLOON_F_REPORTING) | (1ull << VIRTIO_F_VERSION_1));
	for (unsigned q = 0; q < 4; q++)
		dev_queue(d, q);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 4);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);

	/* stats buffer queued during probe, before DRIVER_OK (as Linux does) */
	uint8_t *sb = mm_gpa_to_hva(gm, BUF(2), 160);
	size_t n = 0;
	for (uint16_t tag = 0; tag < BALLOON_NR_STATS; tag++)
		n = put_stat(sb, n, tag, tag == 5 ? gm->ram_size : 7);
	dev_send(d, 2, BUF(2), (uint32_t)n, false);
	assert_int_equal(b->stats_updates, 0);
	wr(t, VIRTIO_MMIO_STATUS, 0xf);
	assert_int_equal(b->stats_updates, 1);
	assert_int_equal(b->stats[5], (int64_t)gm->ram_size);
	assert_int_equal(used_idx(d, 2), 0);    /* held until the next poll */
	assert_true(b->stats_held);

	/* the target arrives through config space */
	uint32_t gen = rd(t, VIRTIO_MMIO_CONFIG_GENERATION);
	assert_int_equal(balloon_set_target(d->vm->balloon, gm->ram_size - 1 * MiB, err, sizeof(err)), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_CONFIG), 256);
	assert_true(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(balloon_set_target(d->vm->balloon, 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(balloon_set_target(d->vm->balloon, gm->ram_size + 1, err, sizeof(err)), -EINVAL);

	/* inflate 256 pages of the 8th MiB in one buffer, in a shuffled order */
	dirty(gm, 8 * MiB, 2 * MiB);
	uint32_t *pfns = mm_gpa_to_hva(gm, BUF(0), 1024);
	for (uint32_t i = 0; i < 256; i++)
		pfns[i] = htole32((uint32_t)(8 * MiB / PAGE) + (i * 97) % 256);
	dev_send(d, 0, BUF(0), 1024, false);
	assert_int_equal(used_idx(d, 0), 1);
	assert_int_equal(balloon_nr_ballooned(b), 256);
	assert_false(resident(gm, 8 * MiB));
	assert_false(resident(gm, 9 * MiB - PAGE));
	assert_true(resident(gm, 9 * MiB));

	/* the driver's `actual` goes through config space */
	uint32_t actual = htole32(256);
	virtio_mmio_access(t, VIRTIO_MMIO_CONFIG + 4, (uint8_t *)&actual, 4, true);
	assert_int_equal(b->actual, 256);
	assert_int_equal(balloon_actual_bytes(b), gm->ram_size - 1 * MiB);
	/* num_pages is not the driver's to write */
	uint32_t np = htole32(5);
	virtio_mmio_access(t, VIRTIO_MMIO_CONFIG, (uint8_t *)&np, 4, true);
	assert_int_equal(rd(t, VIRTIO_MMIO_CONFIG), 256);

	/* deflate half of it */
	dev_send(d, 1, BUF(0), 512, false);
	assert_int_equal(used_idx(d, 1), 1);
	assert_int_equal(balloon_nr_ballooned(b), 128);

	/* free page reporting: one device-writable 2 MiB block */
	dirty(gm, 16 * MiB, 2 * MiB);
	dev_send(d, 3, 16 * MiB, 2 * MiB, true);
	assert_int_equal(used_idx(d, 3), 1);
	assert_false(resident(gm, 16 * MiB));
	assert_false(resident(gm, 18 * MiB - PAGE));
	assert_int_equal(b->reported_bytes, 2 * MiB);

	/* a second stats buffer: the held one goes back, the new one is held */
	dev_send(d, 2, BUF(2), (uint32_t)n, false);
	assert_int_equal(used_idx(d, 2), 1);
	assert_int_equal(b->stats_updates, 2);

	/* a device-writable inflate buffer is a violation: NEEDS_RESET, no crash */
	dev_send(d, 0, BUF(0), 1024, true);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(used_idx(d, 0), 1);
	assert_int_equal(balloon_nr_ballooned(b), 128);

	/* reset hands the balloon back */
	wr(t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(balloon_nr_ballooned(b), 0);
	assert_int_equal(b->actual, 0);
}

static void test_queue_numbering_without_stats(void **state)
{
	struct dev *d = *state;
	struct balloon *b = d->vm->balloon;
	struct guest_mem *gm = &d->vm->mem;

	/* no STATS_VQ: reporting moves down to queue 2 */
	uint64_t f = dev_probe(d, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BALLOON_F_REPORTING));
	assert_int_equal(f, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BALLOON_F_REPORTING));
	for (unsigned q = 0; q < 3; q++)
		dev_queue(d, q);
	wr(d->t, VIRTIO_MMIO_QUEUE_SEL, 3);
	assert_int_equal(rd(d->t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	wr(d->t, VIRTIO_MMIO_STATUS, 0xf);
	dirty(gm, 20 * MiB, 2 * MiB);
	dev_send(d, 2, 20 * MiB, 2 * MiB, true);
	assert_int_equal(used_idx(d, 2), 1);
	assert_int_equal(b->reported_bytes, 2 * MiB);
	assert_int_equal(b->stats_updates, 0);
	assert_false(rd(d->t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* A guest that floods the inflate queue with bad PFNs gets a bounded number
 * of log lines, and every bad PFN is still counted; the used ring the
 * device writes is marked as written for the memory manager. */
static void test_guest_log_lines_limited(void **state)
{
	struct dev *d = *state;
	struct balloon *b = d->vm->balloon;
	struct guest_mem *gm = &d->vm->mem;
	char path[] = "/tmp/minivmm-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), level = vmm_log_level;

	assert_true(fd >= 0 && saved >= 0);
	dev_probe(d, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BALLOON_F_STATS_VQ));
	for (unsigned q = 0; q < 3; q++)
		dev_queue(d, q);
	wr(d->t, VIRTIO_MMIO_STATUS, 0xf);
	mm_take_host_written(gm, RING(0) / PAGE / 64);   /* start from a clean bitmap */

	uint32_t *pfns = mm_gpa_to_hva(gm, BUF(0), 64);
	for (unsigned i = 0; i < 16; i++)
		pfns[i] = htole32(0xfffff000u + i);   /* far outside 64 MiB of RAM */
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	vmm_log_level = 1;
	for (unsigned i = 0; i < 200; i++)
		dev_send(d, 0, BUF(0), 64, false);
	vmm_log_level = level;
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	char buf[65536];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	buf[n] = '\0';
	unsigned lines = 0;
	for (char *p = buf; (p = strstr(p, "PFNs outside guest RAM")); p++)
		lines++;
	assert_int_equal(b->bad_pfns, 200 * 16);
	assert_true(lines >= 1 && lines <= RATELIMIT_BURST);
	assert_int_equal(used_idx(d, 0), 200);
	/* the device wrote the used ring: the manager must see it as hot */
	uint64_t used_page = (RING(0) + 0x2000) / PAGE;
	assert_true(mm_take_host_written(gm, used_page / 64) >> (used_page % 64) & 1);
}

static void test_qmp_commands(void **state)
{
	struct dev *d = *state;
	struct vm *vm = d->vm;
	struct qmp_registry *reg;
	char err[256];
	json_t *args, *r;

	assert_int_equal(qmp_registry_new(&reg), 0);
	assert_int_equal(balloon_qmp_register(reg, vm->balloon), 0);

	args = json_pack("{s:I}", "value", (json_int_t)(vm->mem.ram_size / 2));
	r = qmp_execute(reg, "balloon", args, err, sizeof(err));
	assert_non_null(r);
	json_decref(r);
	json_decref(args);
	assert_int_equal(vm->balloon->num_pages, vm->mem.ram_size / 2 / PAGE);

	args = json_pack("{s:I}", "value", (json_int_t)(vm->mem.ram_size + 1));
	assert_null(qmp_execute(reg, "balloon", args, err, sizeof(err)));
	json_decref(args);
	args = json_pack("{s:I}", "value", (json_int_t)-5);
	assert_null(qmp_execute(reg, "balloon", args, err, sizeof(err)));
	json_decref(args);
	args = json_pack("{s:s}", "value", "big");
	assert_null(qmp_execute(reg, "balloon", args, err, sizeof(err)));
	json_decref(args);

	r = qmp_execute(reg, "query-balloon", NULL, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(json_integer_value(json_object_get(r, "actual")), vm->mem.ram_size);
	json_decref(r);

	args = json_pack("{s:s,s:s}", "path", "/machine/peripheral/balloon0", "property", "guest-stats");
	r = qmp_execute(reg, "qom-get", args, err, sizeof(err));
	json_decref(args);
	assert_non_null(r);
	json_t *stats = json_object_get(r, "stats");
	assert_int_equal(json_object_size(stats), 16);
	assert_int_equal(json_integer_value(json_object_get(stats, "stat-free-memory")), -1);
	assert_int_equal(json_integer_value(json_object_get(r, "last-update")), 0);
	json_decref(r);

	args = json_pack("{s:s,s:s,s:i}", "path", "balloon0", "property",
			 "guest-stats-polling-interval", "value", 3);
	r = qmp_execute(reg, "qom-set", args, err, sizeof(err));
	json_decref(args);
	assert_non_null(r);
	json_decref(r);
	args = json_pack("{s:s,s:s}", "path", "balloon0", "property", "guest-stats-polling-interval");
	r = qmp_execute(reg, "qom-get", args, err, sizeof(err));
	json_decref(args);
	assert_int_equal(json_integer_value(r), 3);
	json_decref(r);

	args = json_pack("{s:s,s:s,s:i}", "path", "balloon0", "property",
			 "guest-stats-polling-interval", "value", -1);
	assert_null(qmp_execute(reg, "qom-set", args, err, sizeof(err)));
	json_decref(args);
	args = json_pack("{s:s,s:s}", "path", "/machine/peripheral/nope", "property", "guest-stats");
	assert_null(qmp_execute(reg, "qom-get", args, err, sizeof(err)));
	assert_non_null(strstr(err, "not found"));
	json_decref(args);
	args = json_pack("{s:s,s:s}", "path", "balloon0", "property", "colour");
	assert_null(qmp_execute(reg, "qom-get", args, err, sizeof(err)));
	assert_non_null(strstr(err, "colour"));
	json_decref(args);

	qmp_registry_free(reg);

	/* without a balloon device */
	assert_int_equal(qmp_registry_new(&reg), 0);
	assert_int_equal(balloon_qmp_register(reg, NULL), 0);
	args = json_pack("{s:I}", "value", (json_int_t)(vm->mem.ram_size / 2));
	assert_null(qmp_execute(reg, "balloon", args, err, sizeof(err)));
	assert_string_equal(err, "No balloon device has been activated");
	json_decref(args);
	assert_null(qmp_execute(reg, "query-balloon", NULL, err, sizeof(err)));
	assert_string_equal(err, "No balloon device has been activated");
	args = json_pack("{s:s,s:s}", "path", "balloon0", "property", "guest-stats");
	assert_null(qmp_execute(reg, "qom-get", args, err, sizeof(err)));
	assert_string_equal(err, "Device 'balloon0' not found");
	json_decref(args);
	qmp_registry_free(reg);
}

/* Plays the monitor: sets targets and reads everything QMP reads, all the
 * time, while the worker serves the queues and the test plays the vCPU. */
struct monitor { struct vm *vm; struct qmp_registry *reg; atomic_bool stop; atomic_uint rounds; };

static void *monitor_main(void *p)
{
	struct monitor *mon = p;
	struct vm *vm = mon->vm;
	char err[256];
	for (; !atomic_load(&mon->stop); mon->rounds++) {
		json_t *args = json_pack("{s:s,s:s}", "path", "balloon0", "property", "guest-stats");
		if (balloon_set_target(vm->balloon, vm->mem.ram_size - (uint64_t)(mon->rounds % 8) * MiB, err,
				       sizeof(err)))
			break;
		json_decref(qmp_execute(mon->reg, "query-balloon", NULL, err, sizeof(err)));
		json_decref(qmp_execute(mon->reg, "qom-get", args, err, sizeof(err)));
		json_decref(args);
	}
	return NULL;
}

/* The device with its worker thread, as with ioeventfd: notifications are
 * served off the thread that writes QueueNotify, while a monitor thread
 * reads and sets everything QMP does (a ThreadSanitizer run checks the
 * locking), and teardown stops the worker. */
static void test_device_worker(void **state)
{
	struct dev *d = *state;
	struct guest_mem *gm = &d->vm->mem;
	struct balloon *b = d->vm->balloon;
	struct virtio_mmio *t = d->t;
	struct monitor mon = { .vm = d->vm };
	pthread_t th;

	assert_int_equal(qmp_registry_new(&mon.reg), 0);
	assert_int_equal(balloon_qmp_register(mon.reg, b), 0);
	assert_int_equal(virtio_mmio_start_worker(t), 0);
	dev_probe(d, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BALLOON_F_STATS_VQ) |
		     (1ull << VIRTIO_BALLOON_F_REPORTING));
	for (unsigned q = 0; q < 4; q++)
		dev_queue(d, q);
	dirty(gm, 8 * MiB, 12 * MiB);
	/* a stats buffer queued before DRIVER_OK reaches the worker at DRIVER_OK */
	uint8_t *sb = mm_gpa_to_hva(gm, BUF(2), 160);
	size_t n = 0;
	for (uint16_t tag = 0; tag < BALLOON_NR_STATS; tag++)
		n = put_stat(sb, n, tag, 11);
	dev_send(d, 2, BUF(2), (uint32_t)n, false);
	assert_int_equal(pthread_create(&th, NULL, monitor_main, &mon), 0);
	wr(t, VIRTIO_MMIO_STATUS, 0xf);

	/* 4 MiB in four buffers of 256 PFNs, each waited for as Linux does */
	for (uint32_t k = 0; k < 4; k++) {
		uint32_t *pfns = mm_gpa_to_hva(gm, BUF(0), 1024);
		for (uint32_t i = 0; i < 256; i++)
			pfns[i] = htole32((uint32_t)(8 * MiB / PAGE) + k * 256 + (i * 97) % 256);
		dev_send(d, 0, BUF(0), 1024, false);
		(void)rd(t, VIRTIO_MMIO_INTERRUPT_STATUS);   /* a vCPU reading registers meanwhile */
		wait_used(d, 0, (uint16_t)(k + 1));
	}
	assert_int_equal(balloon_nr_ballooned(b), 1024);
	assert_false(resident(gm, 8 * MiB));
	assert_false(resident(gm, 12 * MiB - PAGE));

	/* deflate the first buffer's pages again, report a free 2 MiB block */
	uint32_t *pfns = mm_gpa_to_hva(gm, BUF(0), 1024);
	for (uint32_t i = 0; i < 256; i++)
		pfns[i] = htole32((uint32_t)(8 * MiB / PAGE) + i);
	dev_send(d, 1, BUF(0), 1024, false);
	wait_used(d, 1, 1);
	assert_int_equal(balloon_nr_ballooned(b), 768);
	dev_send(d, 3, 16 * MiB, 2 * MiB, true);
	wait_used(d, 3, 1);
	assert_int_equal(atomic_load(&b->reported_bytes), 2 * MiB);
	assert_false(resident(gm, 16 * MiB));

	/* a second stats buffer: the held one is used */
	dev_send(d, 2, BUF(2), (uint32_t)n, false);
	wait_used(d, 2, 1);
	virtio_mmio_lock(t);
	assert_int_equal(b->stats_updates, 2);
	assert_int_equal(b->stats[4], 11);
	virtio_mmio_unlock(t);

	/* on a loaded machine the monitor may not have run yet: let it */
	for (int i = 0; i < 2000 && !atomic_load(&mon.rounds); i++)
		usleep(1000);
	atomic_store(&mon.stop, true);
	pthread_join(th, NULL);
	qmp_registry_free(mon.reg);
	assert_true(mon.rounds > 0);
	/* reset with pages in the balloon: all handed back, the worker idle */
	wr(t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(balloon_nr_ballooned(b), 0);
	assert_int_equal(atomic_load(&b->inflated_pages), 1024);
	assert_int_equal(atomic_load(&b->deflated_pages), 1024);
	/* dev_teardown's balloon_destroy stops the worker */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts),
		cmocka_unit_test_setup_teardown(test_inflate_validate_coalesce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_shuffled_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pfns_around_hole, setup_hole, teardown),
		cmocka_unit_test_setup_teardown(test_report_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_end_to_end, dev_setup, dev_teardown),
		cmocka_unit_test_setup_teardown(test_queue_numbering_without_stats, dev_setup, dev_teardown),
		cmocka_unit_test_setup_teardown(test_guest_log_lines_limited, dev_setup, dev_teardown),
		cmocka_unit_test_setup_teardown(test_qmp_commands, dev_setup, dev_teardown),
		cmocka_unit_test_setup_teardown(test_device_worker, dev_setup, dev_teardown),
	};
	return cmocka_run_group_tests_name("balloon", tests, NULL, NULL);
}
