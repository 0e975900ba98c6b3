/*
 * virtio-mmio transport (modern registers, version 2) and split virtqueues
 * for the guest drivers. Rings live in a 4 KiB page per queue: descriptors
 * at 0, the driver (avail) ring at 1 KiB, the device (used) ring at 2 KiB.
 */
#include "kernel.h"
#include "virtio_mmio.h"

#define REG_MAGIC          0x000
#define REG_VERSION        0x004
#define REG_DEVICE_ID      0x008
#define REG_DEV_FEATURES   0x010
#define REG_DEV_FEAT_SEL   0x014
#define REG_DRV_FEATURES   0x020
#define REG_DRV_FEAT_SEL   0x024
#define REG_QUEUE_SEL      0x030
#define REG_QUEUE_NUM_MAX  0x034
#define REG_QUEUE_NUM      0x038
#define REG_QUEUE_READY    0x044
#define REG_QUEUE_NOTIFY   0x050
#define REG_INT_STATUS     0x060
#define REG_INT_ACK        0x064
#define REG_STATUS         0x070
#define REG_QUEUE_DESC     0x080
#define REG_QUEUE_DRIVER   0x090
#define REG_QUEUE_DEVICE   0x0a0
#define REG_CONFIG_GEN     0x0fc
#define REG_CONFIG         0x100

#define VQ_DESC_F_NEXT   1
#define VQ_DESC_F_WRITE  2

static uint32_t rd(struct vmmio_dev *d, uint32_t off)
{
	return *(volatile uint32_t *)(uintptr_t)(d->base + off);
}

static void wr(struct vmmio_dev *d, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(d->base + off) = v;
}

int vmmio_probe(struct vmmio_dev *d, uint64_t base, uint32_t irq, uint32_t device_id)
{
	uint32_t magic, version, id;

	d->base = base;
	d->irq = irq;
	d->device_id = device_id;
	magic = rd(d, REG_MAGIC);
	version = rd(d, REG_VERSION);
	id = rd(d, REG_DEVICE_ID);
	if (magic != 0x74726976 || version != 2 || id != device_id) {
		kprintf("virtio: no usable device at 0x%lx (magic 0x%x version %u id %u, want version 2 id %u)\n",
			base, magic, version, id, device_id);
		return -1;
	}
	wr(d, REG_STATUS, 0);
	wr(d, REG_STATUS, VIRTIO_STATUS_ACK);
	wr(d, REG_STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
	return 0;
}

uint64_t vmmio_device_features(struct vmmio_dev *d)
{
	uint64_t f;

	wr(d, REG_DEV_FEAT_SEL, 1);
	f = (uint64_t)rd(d, REG_DEV_FEATURES) << 32;
	wr(d, REG_DEV_FEAT_SEL, 0);
	return f | rd(d, REG_DEV_FEATURES);
}

int vmmio_set_features(struct vmmio_dev *d, uint64_t features)
{
	wr(d, REG_DRV_FEAT_SEL, 1);
	wr(d, REG_DRV_FEATURES, (uint32_t)(features >> 32));
	wr(d, REG_DRV_FEAT_SEL, 0);
	wr(d, REG_DRV_FEATURES, (uint32_t)features);
	wr(d, REG_STATUS, rd(d, REG_STATUS) | VIRTIO_STATUS_FEATURES_OK);
	return (rd(d, REG_STATUS) & VIRTIO_STATUS_FEATURES_OK) ? 0 : -1;
}

int vq_setup(struct vmmio_dev *d, struct vq *q, uint16_t index, void *page)
{
	uint64_t pa = (uint64_t)(uintptr_t)page;
	uint32_t max;

	wr(d, REG_QUEUE_SEL, index);
	if (rd(d, REG_QUEUE_READY))
		return -1;
	max = rd(d, REG_QUEUE_NUM_MAX);
	if (max == 0)
		return -1;
	q->dev = d;
	q->index = index;
	q->num = (uint16_t)(max < VQ_MAX_NUM ? max : VQ_MAX_NUM);
	q->desc = (volatile struct vq_desc *)page;
	q->avail = (volatile uint16_t *)(uintptr_t)(pa + 1024);
	q->used = (volatile uint8_t *)(uintptr_t)(pa + 2048);
	for (uint16_t i = 0; i < q->num; i++)
		q->desc[i].next = (uint16_t)(i + 1);
	q->free_head = 0;
	q->num_free = q->num;
	q->last_used = 0;
	wr(d, REG_QUEUE_NUM, q->num);
	wr(d, REG_QUEUE_DESC, (uint32_t)pa);
	wr(d, REG_QUEUE_DESC + 4, (uint32_t)(pa >> 32));
	wr(d, REG_QUEUE_DRIVER, (uint32_t)(pa + 1024));
	wr(d, REG_QUEUE_DRIVER + 4, (uint32_t)((pa + 1024) >> 32));
	wr(d, REG_QUEUE_DEVICE, (uint32_t)(pa + 2048));
	wr(d, REG_QUEUE_DEVICE + 4, (uint32_t)((pa + 2048) >> 32));
	wr(d, REG_QUEUE_READY, 1);
	return 0;
}

void vmmio_driver_ok(struct vmmio_dev *d)
{
	wr(d, REG_STATUS, rd(d, REG_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

void vmmio_fail(struct vmmio_dev *d)
{
	wr(d, REG_STATUS, rd(d, REG_STATUS) | VIRTIO_STATUS_FAILED);
}

uint32_t vmmio_status(struct vmmio_dev *d)
{
	return rd(d, REG_STATUS);
}

uint32_t vmmio_ack(struct vmmio_dev *d)
{
	uint32_t isr = rd(d, REG_INT_STATUS);

	if (isr)
		wr(d, REG_INT_ACK, isr);
	return isr;
}

uint32_t vmmio_config32(struct vmmio_dev *d, uint32_t off)
{
	uint32_t gen, v;

	do {
		gen = rd(d, REG_CONFIG_GEN);
		v = rd(d, REG_CONFIG + off);
	} while (rd(d, REG_CONFIG_GEN) != gen);
	return v;
}

void vmmio_config_write32(struct vmmio_dev *d, uint32_t off, uint32_t v)
{
	wr(d, REG_CONFIG + off, v);
}

int vq_add(struct vq *q, const struct vq_buf *bufs, uint16_t n, uint32_t cookie)
{
	uint16_t head = q->free_head, i = head, aidx;

	if (!n || n > q->num_free)
		return -1;
	for (uint16_t k = 0; k < n; k++) {
		volatile struct vq_desc *dsc = &q->desc[i];

		dsc->addr = bufs[k].addr;
		dsc->len = bufs[k].len;
		dsc->flags = (uint16_t)((bufs[k].device_writes ? VQ_DESC_F_WRITE : 0) |
					(k + 1 < n ? VQ_DESC_F_NEXT : 0));
		i = dsc->next;
	}
	q->free_head = i;
	q->num_free = (uint16_t)(q->num_free - n);
	q->chain_len[head] = n;
	q->cookie[head] = cookie;
	aidx = q->avail[1];
	q->avail[2 + aidx % q->num] = head;
	barrier();              /* x86: stores are ordered; keep the compiler honest */
	q->avail[1] = (uint16_t)(aidx + 1);
	return 0;
}

void vq_kick(struct vq *q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	wr(q->dev, REG_QUEUE_NOTIFY, q->index);
}

bool vq_get_used(struct vq *q, uint32_t *cookie)
{
	volatile uint16_t *uidx = (volatile uint16_t *)(q->used + 2);
	uint32_t id;
	uint16_t n, i, tail;

	if (*uidx == q->last_used)
		return false;
	barrier();
	id = *(volatile uint32_t *)(q->used + 4 + 8 * (q->last_used % q->num));
	q->last_used++;
	if (id >= q->num || !q->chain_len[id]) {
		kprintf("virtio: queue %u: device returned bad id %u\n", q->index, id);
		return false;
	}
	n = q->chain_len[id];
	q->chain_len[id] = 0;
	/* the chain is a run of the free list, linked by vq_add */
	tail = (uint16_t)id;
	for (i = 1; i < n; i++)
		tail = q->desc[tail].next;
	q->desc[tail].next = q->free_head;
	q->free_head = (uint16_t)id;
	q->num_free = (uint16_t)(q->num_free + n);
	*cookie = q->cookie[id];
	return true;
}
