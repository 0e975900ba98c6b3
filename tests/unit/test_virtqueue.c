/*
 * Unit tests of the split-virtqueue walker (vmm/virtqueue.c) and the
 * virtio-mmio transport (vmm/virtio_mmio.c) over real guest RAM from
 * mm_create(): looping chains, out-of-range head/next indices, buffers
 * outside RAM, straddling the 3 GiB hole or wrapping, zero-length and
 * oversized descriptors, wrong direction, indirect descriptors, avail index
 * jumps, ring validation at QueueReady, a valid chain, used ring updates,
 * and the transport's registers, feature negotiation and NEEDS_RESET.
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

#include "mm/mm.h"
#include "vmm/virtio/virtio.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"

#define MiB (1ULL << 20)
#define QSIZE 8
#define DESC_GPA  0x10000ULL
#define AVAIL_GPA 0x11000ULL
#define USED_GPA  0x12000ULL
#define BUF_GPA   0x100000ULL

struct fx {
	struct guest_mem gm;
	struct virtq vq;
	int fails;
	struct vq_chain chain;
};

static void count_fail(void *opaque, struct virtq *vq)
{
	((struct fx *)opaque)->fails++;
}

static void fx_queue(struct fx *f, uint16_t num)
{
	memset(&f->vq, 0, sizeof(f->vq));
	f->vq.name = "test";
	f->vq.gm = &f->gm;
	f->vq.num_max = VQ_MAX_SIZE;
	f->vq.fail = count_fail;
	f->vq.fail_opaque = f;
	vq_reset(&f->vq);
	f->vq.num = num;
	f->vq.desc_gpa = DESC_GPA;
	f->vq.avail_gpa = AVAIL_GPA;
	f->vq.used_gpa = USED_GPA;
}

static int fx_create(void **state, uint64_t ram)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct mm_config cfg = { .ram_size = ram, .backing = MM_BACKING_ANON };
	char err[256];

	if (!f)
		return -1;
	if (mm_create(&f->gm, &cfg, err, sizeof(err))) {
		print_error("mm_create: %s\n", err);
		free(f);
		return -1;
	}
	fx_queue(f, QSIZE);
	assert_int_equal(vq_setup(&f->vq), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return fx_create(state, 16 * MiB);
}

/* 3 GiB + 16 MiB: RAM continues above the hole at 4 GiB (memory is not touched). */
static int setup_hole(void **state)
{
	return fx_create(state, MINIVMM_LOWMEM_MAX + 16 * MiB);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	mm_destroy(&f->gm);
	free(f);
	return 0;
}

static void put_desc(struct fx *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct vring_desc *d = mm_gpa_to_hva(&f->gm, DESC_GPA + 16ull * i, 16);
	assert_non_null(d);
	d->addr = htole64(addr);
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16(next);
}

static uint16_t *avail(struct fx *f)
{
	return mm_gpa_to_hva(&f->gm, AVAIL_GPA, 6 + 2 * QSIZE);
}

/* Makes head the next available entry and publishes the index. */
static void offer(struct fx *f, uint16_t head)
{
	uint16_t *a = avail(f);
	uint16_t idx = le16toh(a[1]);
	a[2 + (idx % f->vq.num)] = htole16(head);
	a[1] = htole16(idx + 1);
}

static void expect_violation(struct fx *f, enum vq_dir dir)
{
	assert_int_equal(vq_pop(&f->vq, &f->chain, dir), -EIO);
	assert_int_equal(f->fails, 1);
	assert_true(f->vq.broken);
	/* a broken queue stays broken and does not log or fail again */
	assert_int_equal(vq_pop(&f->vq, &f->chain, dir), -EIO);
	assert_int_equal(f->fails, 1);
}

static void test_valid_chain_and_used_ring(void **state)
{
	struct fx *f = *state;

	put_desc(f, 3, BUF_GPA, 100, VRING_DESC_F_NEXT, 5);
	put_desc(f, 5, BUF_GPA + 0x1000, 200, VRING_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF_GPA + 0x2000, 300, VRING_DESC_F_WRITE, 0);
	offer(f, 3);
	assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_ANY), 1);
	assert_int_equal(f->chain.head, 3);
	assert_int_equal(f->chain.nr, 3);
	assert_int_equal(f->chain.read_len, 300);
	assert_int_equal(f->chain.write_len, 300);
	assert_ptr_equal(f->chain.buf[1].hva, mm_gpa_to_hva(&f->gm, BUF_GPA + 0x1000, 1));
	assert_false(f->chain.buf[0].writable);
	assert_true(f->chain.buf[2].writable);
	assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_ANY), 0);

	vq_push(&f->vq, 3, 42);
	uint8_t *used = mm_gpa_to_hva(&f->gm, USED_GPA, 6 + 8 * QSIZE);
	uint16_t idx;
	struct vring_used_elem e;
	memcpy(&idx, used + 2, 2);
	memcpy(&e, used + 4, 8);
	assert_int_equal(le16toh(idx), 1);
	assert_int_equal(le32toh(e.id), 3);
	assert_int_equal(le32toh(e.len), 42);
	assert_int_equal(f->fails, 0);
}

static void test_used_ring_wraps(void **state)
{
	struct fx *f = *state;
	uint8_t *used = mm_gpa_to_hva(&f->gm, USED_GPA, 6 + 8 * QSIZE);

	put_desc(f, 0, BUF_GPA, 16, 0, 0);
	for (int i = 0; i < 3 * QSIZE + 2; i++) {
		offer(f, 0);
		assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_READ), 1);
		vq_push(&f->vq, 0, (uint32_t)i);
	}
	uint16_t idx;
	struct vring_used_elem e;
	memcpy(&idx, used + 2, 2);
	assert_int_equal(le16toh(idx), 3 * QSIZE + 2);
	memcpy(&e, used + 4 + 8 * 1, 8);     /* the last element went to slot 25 % 8 */
	assert_int_equal(le32toh(e.len), 3 * QSIZE + 1);
	assert_int_equal(f->fails, 0);
}

static void test_full_length_chain(void **state)
{
	struct fx *f = *state;

	for (uint16_t i = 0; i < QSIZE; i++)
		put_desc(f, i, BUF_GPA + 0x1000ull * i, 8, i + 1 < QSIZE ? VRING_DESC_F_NEXT : 0, i + 1);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_READ), 1);
	assert_int_equal(f->chain.nr, QSIZE);
	assert_int_equal(f->fails, 0);
}

static void test_looping_chain(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF_GPA, 8, VRING_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF_GPA, 8, VRING_DESC_F_NEXT, 2);
	put_desc(f, 2, BUF_GPA, 8, VRING_DESC_F_NEXT, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_READ);
}

static void test_self_loop(void **state)
{
	struct fx *f = *state;

	put_desc(f, 4, BUF_GPA, 8, VRING_DESC_F_NEXT, 4);
	offer(f, 4);
	expect_violation(f, VQ_DIR_READ);
}

static void test_head_out_of_range(void **state)
{
	struct fx *f = *state;

	offer(f, QSIZE);
	expect_violation(f, VQ_DIR_ANY);
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF_GPA, 8, VRING_DESC_F_NEXT, 0xffff);
	offer(f, 0);
	expect_violation(f, VQ_DIR_ANY);
}

static void test_addr_outside_ram(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, f->gm.ram_size + 0x1000, 8, 0, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_ANY);
}

static void test_addr_straddles_ram_end(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, f->gm.ram_size - 0x800, 0x1000, 0, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_ANY);
}

static void test_addr_wraps(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, 0xfffffffffffff000ull, 0x2000, 0, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_ANY);
}

static void test_addr_straddles_hole(void **state)
{
	struct fx *f = *state;

	/* the last page below the hole is fine, one byte more is not */
	put_desc(f, 0, MINIVMM_LOWMEM_MAX - 0x1000, 0x1000, 0, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_READ), 1);
	put_desc(f, 0, MINIVMM_HIGHMEM_BASE, 0x1000, 0, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_READ), 1);
	assert_int_equal(f->fails, 0);

	put_desc(f, 0, MINIVMM_LOWMEM_MAX - 0x800, 0x1000, 0, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_READ);
}

static void test_addr_in_hole(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, MINIVMM_MMIO_BASE, 4, 0, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_READ);
}

static void test_zero_length(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF_GPA, 0, 0, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_ANY);
}

static void test_oversized(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF_GPA, 0xffffffffu, 0, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_ANY);
}

static void test_writable_where_readable_needed(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF_GPA, 8, VRING_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF_GPA, 8, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_READ);
}

static void test_readable_where_writable_needed(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_WRITE);
}

static void test_readable_after_writable(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_ANY);
}

static void test_indirect_refused(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_violation(f, VQ_DIR_ANY);
}

static void test_avail_jump(void **state)
{
	struct fx *f = *state;
	uint16_t *a = avail(f);

	put_desc(f, 0, BUF_GPA, 8, 0, 0);
	/* exactly a full ring is fine */
	a[1] = htole16(QSIZE);
	for (int i = 0; i < QSIZE; i++) {
		a[2 + i] = 0;
		assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_READ), 1);
	}
	assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_READ), 0);
	a[1] = htole16(2 * QSIZE + 1);   /* 9 new entries in a ring of 8 */
	expect_violation(f, VQ_DIR_READ);
}

static void test_avail_index_wraps(void **state)
{
	struct fx *f = *state;
	uint16_t *a = avail(f);

	/* the 16-bit indices wrap: 0xffff -> 0x0001 is two entries */
	f->vq.last_avail = 0xffff;
	a[1] = htole16(1);
	a[2 + (0xffff % QSIZE)] = 0;
	a[2 + 0] = htole16(1);
	put_desc(f, 0, BUF_GPA, 8, 0, 0);
	put_desc(f, 1, BUF_GPA, 8, 0, 0);
	assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_READ), 1);
	assert_int_equal(f->chain.head, 0);
	assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_READ), 1);
	assert_int_equal(f->chain.head, 1);
	assert_int_equal(vq_pop(&f->vq, &f->chain, VQ_DIR_READ), 0);
	assert_int_equal(f->fails, 0);
}

static void test_no_interrupt_flag(void **state)
{
	struct fx *f = *state;
	uint16_t *a = avail(f);

	a[0] = 0;
	assert_true(vq_want_interrupt(&f->vq));
	a[0] = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	assert_false(vq_want_interrupt(&f->vq));
}

static void expect_setup_fails(struct fx *f, uint16_t num, uint64_t desc, uint64_t av, uint64_t used)
{
	fx_queue(f, num);
	f->vq.desc_gpa = desc;
	f->vq.avail_gpa = av;
	f->vq.used_gpa = used;
	int before = f->fails;
	assert_int_equal(vq_setup(&f->vq), -EINVAL);
	assert_false(f->vq.ready);
	assert_int_equal(f->fails, before + 1);
}

static void test_setup_validation(void **state)
{
	struct fx *f = *state;
	uint64_t end = f->gm.ram_size;

	expect_setup_fails(f, 0, DESC_GPA, AVAIL_GPA, USED_GPA);
	expect_setup_fails(f, 6, DESC_GPA, AVAIL_GPA, USED_GPA);
	expect_setup_fails(f, 512, DESC_GPA, AVAIL_GPA, USED_GPA);
	expect_setup_fails(f, 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA);
	expect_setup_fails(f, 8, DESC_GPA, AVAIL_GPA + 1, USED_GPA);
	expect_setup_fails(f, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2);
	expect_setup_fails(f, 8, end - 64, AVAIL_GPA, USED_GPA);       /* desc table runs off RAM */
	expect_setup_fails(f, 8, DESC_GPA, end - 16, USED_GPA);        /* avail runs off RAM */
	expect_setup_fails(f, 8, DESC_GPA, AVAIL_GPA, end - 32);       /* used runs off RAM */
	expect_setup_fails(f, 8, DESC_GPA, AVAIL_GPA, MINIVMM_MMIO_BASE);
	fx_queue(f, VQ_MAX_SIZE);
	assert_int_equal(vq_setup(&f->vq), 0);
	assert_true(f->vq.ready);
}

/* ---- the transport, driven through its registers like a driver ---- */

struct echo {
	struct virtio_mmio *t;
	int notifies, resets, activated;
	uint8_t cfg[8];
};

static uint64_t echo_features(void *dev) { return 1ull << 3; }
static unsigned echo_nr_queues(void *dev, uint64_t f) { return 2; }
static void echo_cfg_read(void *dev, uint32_t off, uint8_t *d, uint32_t len)
{
	struct echo *e = dev;
	for (uint32_t i = 0; i < len; i++)
		d[i] = off + i < sizeof(e->cfg) ? e->cfg[off + i] : 0;
}
static void echo_cfg_write(void *dev, uint32_t off, const uint8_t *d, uint32_t len) {}
static void echo_activate(void *dev) { ((struct echo *)dev)->activated++; }
static void echo_reset(void *dev) { ((struct echo *)dev)->resets++; }
static void echo_notify(void *dev, struct virtq *vq)
{
	struct echo *e = dev;
	struct vq_chain c;
	e->notifies++;
	while (vq_pop(vq, &c, VQ_DIR_ANY) == 1) {
		vq_push(vq, c.head, (uint32_t)c.write_len);
		virtio_mmio_notify_used(e->t, vq);
	}
}

static const struct virtio_dev_ops echo_ops = {
	.name = "echo", .device_id = 42,
	.features = echo_features, .nr_queues = echo_nr_queues,
	.config_read = echo_cfg_read, .config_write = echo_cfg_write,
	.activate = echo_activate, .queue_notify = echo_notify, .reset = echo_reset,
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

static void test_transport(void **state)
{
	struct fx *f = *state;
	struct vm *vm = calloc(1, sizeof(*vm));
	struct echo e = { .cfg = { 1, 2, 3, 4, 5, 6, 7, 8 } };

	assert_non_null(vm);
	vm->vm_fd = -1;     /* no KVM: interrupts fall back and fail quietly */
	vm->mem = f->gm;
	assert_int_equal(virtio_mmio_create(vm, &echo_ops, &e, &e.t), 0);
	struct virtio_mmio *t = e.t;
	assert_int_equal(vm->nr_devs, 1);
	assert_int_equal(vm->devs[0].device_id, 42);
	assert_int_equal(virtio_mmio_base(t), vm->devs[0].base);

	assert_int_equal(rd(t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(t, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(t, VIRTIO_MMIO_DEVICE_ID), 42);
	wr(t, VIRTIO_MMIO_STATUS, 0);
	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_DEVICE_FEATURES), 1u << 3);
	wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_DEVICE_FEATURES), 1u);   /* VERSION_1 */

	/* features not offered are refused: FEATURES_OK does not stick */
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 4);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(t, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_false(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* legacy (no VERSION_1) is refused too */
	wr(t, VIRTIO_MMIO_STATUS, 0);
	wr(t, VIRTIO_MMIO_STATUS, 3);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 3);
	wr(t, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_false(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);

	wr(t, VIRTIO_MMIO_STATUS, 0);
	wr(t, VIRTIO_MMIO_STATUS, 3);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(t, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);

	/* queue 2 does not exist; queue 0 is set up through the registers */
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), VQ_MAX_SIZE);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC_GPA);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	wr(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)AVAIL_GPA);
	wr(t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)USED_GPA);
	wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 1);

	/* a buffer queued before DRIVER_OK is served when DRIVER_OK arrives */
	memset(mm_gpa_to_hva(&f->gm, AVAIL_GPA, 6 + 2 * QSIZE), 0, 6 + 2 * QSIZE);
	put_desc(f, 0, BUF_GPA, 8, VRING_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF_GPA + 8, 24, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(e.notifies, 0);
	wr(t, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(e.activated, 1);
	assert_int_equal(e.notifies, 1);
	uint8_t *used = mm_gpa_to_hva(&f->gm, USED_GPA, 6 + 8 * QSIZE);
	assert_int_equal(used[2], 1);
	assert_int_equal(used[8], 24);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_INT_VRING);
	wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);

	/* config space reads at any width */
	uint16_t w;
	virtio_mmio_access(t, VIRTIO_MMIO_CONFIG + 2, (uint8_t *)&w, 2, false);
	assert_int_equal(le16toh(w), 0x0403);
	uint32_t gen = rd(t, VIRTIO_MMIO_CONFIG_GENERATION);
	virtio_mmio_config_changed(t);   /* takes the register lock itself */
	assert_int_equal(rd(t, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	assert_true(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);

	/* a bad chain: NEEDS_RESET, config interrupt, and no more processing */
	put_desc(f, 2, BUF_GPA, 8, VRING_DESC_F_NEXT, 2);
	offer(f, 2);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	put_desc(f, 0, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	int before = e.notifies;
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(e.notifies, before);
	/* the driver cannot clear NEEDS_RESET except by resetting */
	wr(t, VIRTIO_MMIO_STATUS, 0xf);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	wr(t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_STATUS), 0);
	assert_true(e.resets >= 1);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);

	/* a queue whose rings are outside RAM fails the device at QueueReady */
	wr(t, VIRTIO_MMIO_STATUS, 3);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(t, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0xfff00000u);
	wr(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)AVAIL_GPA);
	wr(t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)USED_GPA);
	wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* a failed device takes no queue until reset, even a good one: a guest
	 * repeating QueueReady can neither revive it nor flood the log */
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC_GPA);
	for (int i = 0; i < 3; i++)
		wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);

	/* status only grows until a reset: clearing DRIVER_OK under live queues fails the device */
	wr(t, VIRTIO_MMIO_STATUS, 0);
	wr(t, VIRTIO_MMIO_STATUS, 3);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(t, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_false(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	wr(t, VIRTIO_MMIO_STATUS, 3);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK);

		/* odd-sized register accesses are ignored, not fatal */
	uint8_t b = 0xff;
	virtio_mmio_access(t, VIRTIO_MMIO_MAGIC_VALUE, &b, 1, false);
	assert_int_equal(b, 0);

	virtio_mmio_destroy(t);
	io_bus_free(&vm->mmio);
	free(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_valid_chain_and_used_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_used_ring_wraps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_length_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_looping_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_straddles_ram_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_wraps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_straddles_hole, setup_hole, teardown),
		cmocka_unit_test_setup_teardown(test_addr_in_hole, setup_hole, teardown),
		cmocka_unit_test_setup_teardown(test_zero_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writable_where_readable_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readable_where_writable_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readable_after_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_index_wraps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_interrupt_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setup_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transport, setup, teardown),
	};
	return cmocka_run_group_tests_name("virtqueue", tests, NULL, NULL);
}
