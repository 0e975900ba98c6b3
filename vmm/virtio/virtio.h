/*
 * virtio: the host side of virtio 1.x over MMIO (virtio spec v1.2, 4.2,
 * modern register layout only, Version = 2) and the one split-virtqueue
 * walker every device uses (2.7). Devices describe themselves with one
 * static const struct virtio_dev_ops and keep their state in their own
 * struct; the transport owns registers, status, feature negotiation,
 * queue setup and interrupts.
 *
 * Threads and locks. Register accesses arrive on vCPU threads (MMIO exits);
 * queue notifications reach the device's worker thread ("balloon-wk") through
 * one eventfd per queue that KVM signals on a QueueNotify write (ioeventfd,
 * datamatch on the queue index), so device work never runs on a vCPU.
 * Without ioeventfd (said once in the log) a notification is served on the
 * vCPU thread that exits for it. Timers and QMP run on the main thread.
 * Each transport has two locks, always taken in this order:
 * - the queue lock (virtio_mmio_queues_lock): whoever walks a queue holds it,
 *   the worker while it serves one notification, for as long as the device
 *   works (inflate, reporting, memsets);
 * - the register lock (virtio_mmio_lock): the register file and device
 *   config space, held only for the access itself, by vCPUs, the monitor
 *   and the worker (interrupts).
 * Register writes that change status or queue set-up take both, so either
 * lock is enough to read status, features and queue configuration. A vCPU
 * waits on the queue lock only while it sets a queue up or resets the
 * device, never for an ordinary register access.
 *
 * A guest that breaks the rules (bad index, address, length, direction,
 * ring layout) puts the device into DEVICE_NEEDS_RESET with one log line
 * and a configuration-change interrupt; the VMM keeps running.
 */
#ifndef MINIVMM_VIRTIO_H
#define MINIVMM_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include "vmm/lib/ratelimit.h"

struct vm;
struct guest_mem;

/* Largest queue the transport offers (QueueNumMax); chains are capped at it. */
#define VQ_MAX_SIZE      256
#define VIRTIO_MAX_QUEUES 8

#define VIRTIO_MMIO_MAGIC   0x74726976u  /* "virt" */
#define VIRTIO_MMIO_VENDOR  0x4d564d4du  /* "MMVM": minivmm */

/* ---- split virtqueue (virtqueue.c) ---- */

/* Descriptors and used elements are the kernel's struct vring_desc and
 * struct vring_used_elem (linux/virtio_ring.h), little endian in guest RAM. */

/* What a device needs from the buffers of one chain. */
enum vq_dir {
	VQ_DIR_ANY,        /* readable buffers, then writable ones (spec order) */
	VQ_DIR_READ,       /* every buffer device-readable */
	VQ_DIR_WRITE,      /* every buffer device-writable */
};

/* One checked buffer of a chain: hva is valid for len bytes. */
struct vq_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable;
	uint8_t *hva;
};

/* A popped descriptor chain, every buffer already translated and checked. */
struct vq_chain {
	uint16_t head;
	uint16_t nr;               /* buffers in buf[] */
	uint64_t read_len;         /* total bytes of device-readable buffers */
	uint64_t write_len;        /* total bytes of device-writable buffers */
	struct vq_buf buf[VQ_MAX_SIZE];
};

struct virtq;
/* Called once when the walker finds a guest violation (after the log line). */
typedef void (*vq_fail_fn)(void *opaque, struct virtq *vq);

/* Host view of one queue. Guest-set fields (num, *_gpa, ready) are only
 * trusted after vq_setup() accepted them. */
struct virtq {
	const char *name;          /* device name for log lines */
	unsigned index;
	struct guest_mem *gm;

	uint16_t num_max;
	uint16_t num;
	bool ready;
	bool broken;               /* a violation was seen; nothing more is walked */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint64_t ring_used_gpa;    /* used_gpa as it was when the queue was enabled */

	/* host pointers into guest RAM, valid once ready */
	struct vring_desc *desc;
	uint16_t *avail;           /* flags, idx, ring[num], used_event */
	uint8_t *used;             /* flags, idx, ring[num] of vring_used_elem, avail_event */

	uint16_t last_avail;       /* next avail ring slot the device reads */
	uint16_t used_idx;         /* the device's copy of used->idx */
	uint32_t gen;              /* bumped by every vq_setup(): a chain head a device
				    * held from an earlier ring is stale */

	vq_fail_fn fail;
	void *fail_opaque;
	struct ratelimit log_rl;   /* the guest decides how often a ring is bad */
};

/* Clears a queue to its reset state (not ready, no addresses); keeps name,
 * index, gm, num_max and the fail callback. */
void vq_reset(struct virtq *vq);

/* Checks the guest-set size and ring addresses (size a power of two <=
 * num_max, rings aligned and wholly inside RAM) and, when they hold, maps
 * the rings and marks the queue ready. -EINVAL (after vq_fail) otherwise. */
int vq_setup(struct virtq *vq);

/* Pops the next available chain into c, checking every index, length,
 * address and direction. Returns 1 with c filled, 0 when the ring is empty
 * or the queue is not ready, -EIO when the guest broke the rules (the queue
 * is then broken and vq_fail() already ran). */
int vq_pop(struct virtq *vq, struct vq_chain *c, enum vq_dir dir);

/* Returns a chain to the guest: used element (head, written bytes), then
 * the used index with release semantics. A head >= the queue size is a
 * device bug: logged, nothing written. */
void vq_push(struct virtq *vq, uint16_t head, uint32_t written);

/* True unless the driver asked for no interrupts (VRING_AVAIL_F_NO_INTERRUPT);
 * call after vq_push(). */
bool vq_want_interrupt(struct virtq *vq);

/* Reports a violation: one log line (device, queue, reason), marks the queue
 * broken and calls vq->fail. Devices use it for their own protocol errors. */
void vq_fail(struct virtq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- virtio-mmio transport (virtio_mmio.c) ---- */

struct virtio_mmio;

/*
 * A device model. features, nr_queues, config_read, config_write,
 * set_features and activate run with the register lock held (vCPU thread)
 * and must not call the virtio_mmio_* helpers that take it. queue_notify
 * runs with the queue lock only (worker, or the vCPU without ioeventfd) and
 * may call every helper; reset runs with both locks (vCPU thread).
 */
struct virtio_dev_ops {
	const char *name;                  /* "balloon": log prefix and MMIO range name */
	uint32_t device_id;                /* virtio device id (5 = balloon) */
	/* Device feature bits offered (VERSION_1 is added by the transport). */
	uint64_t (*features)(void *dev);
	/* Queues that exist with these negotiated features (Linux numbering). */
	unsigned (*nr_queues)(void *dev, uint64_t features);
	/* Reads len bytes of device config space at off into data (little endian). */
	void (*config_read)(void *dev, uint32_t off, uint8_t *data, uint32_t len);
	/* A driver write to device config space. */
	void (*config_write)(void *dev, uint32_t off, const uint8_t *data, uint32_t len);
	/* FEATURES_OK accepted with these features; the device may reject (-errno). */
	int (*set_features)(void *dev, uint64_t features);
	/* DRIVER_OK: the device is live; queues may be walked from now on. */
	void (*activate)(void *dev);
	/* The driver notified queue vq (or DRIVER_OK arrived with buffers queued). */
	void (*queue_notify)(void *dev, struct virtq *vq);
	/* Device reset (status 0 written, or before destroy): drop queue state. */
	void (*reset)(void *dev);
	/* What the device's queue work calls (sandbox.h), NULL-terminated: the
	 * worker's filter allows these besides the transport's own, and so do
	 * the vCPUs' when notifications are served on them. */
	const struct sb_list *const *sandbox;
};

/* Creates a virtio-mmio device for vm (main thread, before vCPUs start):
 * takes an MMIO window and interrupt line with vm_add_device(), registers
 * the window on vm->mmio, binds an irqfd (falling back to KVM_IRQ_LINE
 * pulses) and the queues' ioeventfds, and starts the worker. *out is freed
 * by virtio_mmio_destroy(). 0 or -errno. */
int virtio_mmio_create(struct vm *vm, const struct virtio_dev_ops *ops, void *dev,
		       struct virtio_mmio **out);

/* Stops the worker (it finishes the notification it serves), unbinds the
 * eventfds and frees the transport; main thread, after vCPU threads
 * stopped (the MMIO window stays registered but must not be reached). */
void virtio_mmio_destroy(struct virtio_mmio *t);

/* Serves notifications on the worker from now on even without KVM: a
 * QueueNotify write then signals the queue's eventfd instead of being
 * served inline. virtio_mmio_create() does it once KVM took the eventfds;
 * tests call it to drive the worker without KVM. 0 or -errno. */
int virtio_mmio_start_worker(struct virtio_mmio *t);

/* The register lock, from outside a device callback (QMP, timers). */
void virtio_mmio_lock(struct virtio_mmio *t);
void virtio_mmio_unlock(struct virtio_mmio *t);
/* The queue lock, from outside a device callback (timers returning a held
 * buffer). Taken before the register lock, never while holding it. */
void virtio_mmio_queues_lock(struct virtio_mmio *t);
void virtio_mmio_queues_unlock(struct virtio_mmio *t);

/* Queue idx, or NULL when idx is out of range. */
struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned idx);

/* Features the driver negotiated (valid after FEATURES_OK); either lock held. */
uint64_t virtio_mmio_features(struct virtio_mmio *t);

/* True once the driver set DRIVER_OK and the device needs no reset; either
 * lock held. */
bool virtio_mmio_live(struct virtio_mmio *t);

/* Raises a used-buffer interrupt for vq unless the driver suppressed it.
 * Queue lock held; takes the register lock. */
void virtio_mmio_notify_used(struct virtio_mmio *t, struct virtq *vq);

/* Device config changed: bumps ConfigGeneration and raises a config
 * interrupt. Takes the register lock: call without it. */
void virtio_mmio_config_changed(struct virtio_mmio *t);

/* Puts the device into DEVICE_NEEDS_RESET (log line given by the caller).
 * Queue lock held; takes the register lock. */
void virtio_mmio_needs_reset(struct virtio_mmio *t);

/* MMIO window base and interrupt line, for logs and tests. */
uint64_t virtio_mmio_base(struct virtio_mmio *t);
uint32_t virtio_mmio_gsi(struct virtio_mmio *t);

/* The MMIO register handler (io_handler_fn); exposed for unit tests. */
void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write);

#endif
