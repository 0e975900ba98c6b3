/*
 * Guest side of virtio over MMIO (virtio 1.x, register layout version 2)
 * and split virtqueues, as used by the balloon driver.
 */
#ifndef GUEST_VIRTIO_MMIO_H
#define GUEST_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_F_VERSION_1      (1ULL << 32)

#define VIRTIO_STATUS_ACK          1u
#define VIRTIO_STATUS_DRIVER       2u
#define VIRTIO_STATUS_DRIVER_OK    4u
#define VIRTIO_STATUS_FEATURES_OK  8u
#define VIRTIO_STATUS_NEEDS_RESET  0x40u
#define VIRTIO_STATUS_FAILED       0x80u

#define VIRTIO_ISR_USED    1u
#define VIRTIO_ISR_CONFIG  2u

#define VQ_MAX_NUM 64u     /* we never use more descriptors per queue */

struct vmmio_dev {
	uint64_t base;
	uint32_t irq;
	uint32_t device_id;
};

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq_buf {
	uint64_t addr;
	uint32_t len;
	bool device_writes;
};

struct vq {
	struct vmmio_dev *dev;
	uint16_t index, num;
	uint16_t free_head, num_free, last_used;
	volatile struct vq_desc *desc;
	volatile uint16_t *avail;       /* flags, idx, ring[num] */
	volatile uint8_t *used;         /* flags, idx, ring[num] of {le32 id, le32 len} */
	uint16_t chain_len[VQ_MAX_NUM];
	uint32_t cookie[VQ_MAX_NUM];
};

/* Checks magic, version 2 and device id, resets, sets ACK|DRIVER. 0 or -1 (and says why). */
int vmmio_probe(struct vmmio_dev *d, uint64_t base, uint32_t irq, uint32_t device_id);
uint64_t vmmio_device_features(struct vmmio_dev *d);
/* Writes the driver features and FEATURES_OK; -1 if the device refuses. */
int vmmio_set_features(struct vmmio_dev *d, uint64_t features);
/* Sets up queue index with its rings in one zeroed 4 KiB page; -1 if absent. */
int vq_setup(struct vmmio_dev *d, struct vq *q, uint16_t index, void *page);
void vmmio_driver_ok(struct vmmio_dev *d);
void vmmio_fail(struct vmmio_dev *d);
uint32_t vmmio_status(struct vmmio_dev *d);
/* Reads and acknowledges InterruptStatus. */
uint32_t vmmio_ack(struct vmmio_dev *d);
uint32_t vmmio_config32(struct vmmio_dev *d, uint32_t off);       /* generation-stable read */
void vmmio_config_write32(struct vmmio_dev *d, uint32_t off, uint32_t v);

/* Adds one chain; cookie comes back from vq_get_used. -1 if the ring is full. */
int vq_add(struct vq *q, const struct vq_buf *bufs, uint16_t n, uint32_t cookie);
void vq_kick(struct vq *q);
/* Next used chain: returns true and its cookie, or false if none. */
bool vq_get_used(struct vq *q, uint32_t *cookie);

#endif
