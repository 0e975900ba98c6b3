/*
 * Fuzz target: the virtio-mmio transport, the split-virtqueue walker and the
 * virtio-balloon device behind them, as a hostile guest driver sees them.
 *
 * One VM (no KVM, so notifications are served inline) lives for the whole
 * run; every input starts from a device reset (status 0, the guest's own
 * path) and zeroed guest RAM. The input is a program of small operations:
 * register reads and writes of any width at any offset in any order,
 * arbitrary bytes anywhere in RAM, and helpers that let the fuzzer reach
 * deep states quickly without taking anything away from it: bring the
 * device up with chosen features and queue sizes, write descriptors, PFN
 * arrays and stats entries, publish avail entries, notify, and the host's
 * side (a balloon target, the stats timer firing).
 *
 * After each input the device must still be able to reset and the manager's
 * count of ballooned pages must stay within guest RAM.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/balloon.h"
#include "mm/mm.h"
#include "tests/fuzz/common.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/loop.h"
#include "vmm/virtio/virtio.h"

#define RAM        (1ull << 20)          /* 256 pages: PFNs in range are easy to hit */
#define MMIO_SIZE  0x1000ull
#define NQ         4
#define RING_BASE  0x10000ull            /* queue q's rings at RING_BASE + q * RING_STEP */
#define RING_STEP  0x4000ull

static struct vm *vm;
static struct balloon *b;
static struct virtio_mmio *t;

/* What the fuzzed driver believes about its queues. */
struct drv_q {
	uint16_t num;
	uint16_t avail_idx;
	uint64_t desc, avail, used;
};
static struct drv_q dq[NQ];

static void reg_write(uint64_t off, uint32_t v)
{
	v = htole32(v);
	virtio_mmio_access(t, off, (uint8_t *)&v, 4, true);
}

static uint32_t reg_read(uint64_t off)
{
	uint32_t v = 0;
	virtio_mmio_access(t, off, (uint8_t *)&v, 4, false);
	return le32toh(v);
}

/* A guest address: mostly in RAM or just past it, sometimes anything. */
static uint64_t pick_gpa(struct fz_in *in)
{
	uint8_t mode = fz_u8(in);

	switch (mode & 3) {
	case 0:  return fz_u64(in);
	case 1:  return RAM - (fz_u16(in) & 0x1fff);               /* the end of RAM */
	default: return fz_u32(in) % (RAM + 0x2000);
	}
}

/* Writes into guest RAM, clipped to it (the fuzzer is the guest). */
static void ram_write(uint64_t gpa, const void *src, size_t len)
{
	if (gpa >= RAM)
		return;
	if (len > RAM - gpa)
		len = RAM - gpa;
	memcpy(vm->mem.base + gpa, src, len);
}

/* Status ACK, DRIVER, features, FEATURES_OK, queues, DRIVER_OK, as the
 * Linux driver does, with the fuzzer choosing features and sizes. */
static void driver_up(struct fz_in *in)
{
	uint32_t f_lo = fz_u32(in), f_hi = fz_u8(in) & 1 ? 1 : fz_u32(in);
	uint8_t nq = fz_u8(in) % (NQ + 1);

	reg_write(VIRTIO_MMIO_STATUS, 0);
	reg_write(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	reg_write(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	reg_write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	(void)reg_read(VIRTIO_MMIO_DEVICE_FEATURES);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES, f_lo);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(VIRTIO_MMIO_DRIVER_FEATURES, f_hi);
	reg_write(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		  VIRTIO_CONFIG_S_FEATURES_OK);
	(void)reg_read(VIRTIO_MMIO_STATUS);
	for (unsigned q = 0; q < nq; q++) {
		struct drv_q *d = &dq[q];
		d->num = (uint16_t)(1u << (fz_u8(in) % 9));
		d->desc = RING_BASE + q * RING_STEP;
		d->avail = d->desc + 0x1000;
		d->used = d->desc + 0x2000;
		d->avail_idx = 0;
		reg_write(VIRTIO_MMIO_QUEUE_SEL, q);
		(void)reg_read(VIRTIO_MMIO_QUEUE_NUM_MAX);
		reg_write(VIRTIO_MMIO_QUEUE_NUM, d->num);
		reg_write(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)d->desc);
		reg_write(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
		reg_write(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)d->avail);
		reg_write(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
		reg_write(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)d->used);
		reg_write(VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
		reg_write(VIRTIO_MMIO_QUEUE_READY, 1);
	}
	reg_write(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		  VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* One descriptor of queue q, at the ring the driver set up (or raw bytes
 * when the fuzzer moved the ring elsewhere: it may write them itself). */
static void put_desc(struct fz_in *in)
{
	struct drv_q *d = &dq[fz_u8(in) % NQ];
	uint16_t i = fz_u8(in);
	struct vring_desc desc = {
		.addr = htole64(pick_gpa(in)),
		.len = htole32(fz_u8(in) & 0x80 ? fz_u32(in) : fz_u16(in)),
		.flags = htole16(fz_u8(in) & 7),
		.next = htole16(fz_u8(in)),
	};

	if (!d->num)
		return;
	ram_write(d->desc + (uint64_t)(i % d->num) * sizeof(desc), &desc, sizeof(desc));
}

/* Publishes head in queue q's avail ring and bumps its index. */
static void push_avail(struct fz_in *in)
{
	struct drv_q *d = &dq[fz_u8(in) % NQ];
	uint16_t head = fz_u8(in) & 0x80 ? fz_u16(in) : (uint16_t)(fz_u8(in) % (d->num ? d->num : 1));
	uint16_t v;

	if (!d->num)
		return;
	v = htole16(head);
	ram_write(d->avail + 4 + 2ull * (d->avail_idx % d->num), &v, 2);
	d->avail_idx++;
	v = htole16(d->avail_idx);
	ram_write(d->avail + 2, &v, 2);
}

/* n little-endian PFNs, mostly of RAM pages, at gpa. */
static void put_pfns(struct fz_in *in)
{
	uint64_t gpa = pick_gpa(in);
	unsigned n = fz_u8(in);

	for (unsigned i = 0; i < n && fz_more(in); i++) {
		uint8_t k = fz_u8(in);
		uint32_t pfn = k & 0x80 ? fz_u32(in) : (uint32_t)(k % (RAM / 4096 + 4));
		pfn = htole32(pfn);
		ram_write(gpa + 4ull * i, &pfn, 4);
	}
}

/* n stats entries (tag, value) at gpa; tags mostly known ones. */
static void put_stats(struct fz_in *in)
{
	uint64_t gpa = pick_gpa(in);
	unsigned n = fz_u8(in) % 24;

	for (unsigned i = 0; i < n; i++) {
		struct virtio_balloon_stat st;
		st.tag = htole16(fz_u8(in) % (BALLOON_NR_STATS + 2));
		st.val = htole64(fz_u64(in));
		ram_write(gpa + sizeof(st) * i, &st, sizeof(st));
	}
}

/* The stats timer fires once (the main thread's path). */
static void stats_tick(void)
{
	/* one pass of the loop: a periodic 1 us timer has fired by then */
	loop_timer_set(b->stats_timer_fd, 1000);
	loop_run_once(vm->loop, 1);
	loop_timer_set(b->stats_timer_fd, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	vm = fz_vm_new(RAM, "stats-period=0", true);
	b = vm->balloon;
	t = b->vio;
	/* a timer exists (disarmed) so the fuzzer can fire it on demand */
	balloon_set_stats_period(b, 1);
	loop_timer_set(b->stats_timer_fd, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size, 0 };
	char err[256];

	reg_write(VIRTIO_MMIO_STATUS, 0);
	memset(vm->mem.base, 0, RAM);
	memset(dq, 0, sizeof(dq));
	balloon_set_target(b, RAM, err, sizeof(err));

	while (fz_more(&in)) {
		uint8_t op = fz_u8(&in);
		switch (op % 12) {
		case 0: {       /* any register access, any width */
			uint64_t off = fz_u16(&in) % MMIO_SIZE;
			static const uint32_t lens[] = { 1, 2, 4, 8 };
			uint32_t len = lens[fz_u8(&in) & 3];
			uint64_t v = fz_u64(&in);
			virtio_mmio_access(t, off, (uint8_t *)&v, len, op & 0x80);
			break;
		}
		case 1:         /* an aligned 32-bit register write, the common case */
			reg_write((fz_u8(&in) % 0x48) * 4ull, fz_u32(&in));
			break;
		case 2:
			(void)reg_read((fz_u8(&in) % 0x48) * 4ull);
			break;
		case 3:
			reg_write(VIRTIO_MMIO_QUEUE_NOTIFY, fz_u8(&in) & 0x80 ? fz_u32(&in) : fz_u8(&in) % NQ);
			break;
		case 4: {       /* raw bytes anywhere in RAM */
			uint64_t gpa = pick_gpa(&in);
			const uint8_t *p;
			size_t n = fz_bytes(&in, fz_u8(&in), &p);
			ram_write(gpa, p, n);
			break;
		}
		case 5: driver_up(&in); break;
		case 6: put_desc(&in); break;
		case 7: push_avail(&in); break;
		case 8: put_pfns(&in); break;
		case 9: put_stats(&in); break;
		case 10:        /* the host sets a target (QMP `balloon`) */
			balloon_set_target(b, (uint64_t)fz_u16(&in) * 4096, err, sizeof(err));
			break;
		case 11: stats_tick(); break;
		}
	}

	if (balloon_nr_ballooned(b) > RAM / 4096)
		abort();
	return 0;
}
