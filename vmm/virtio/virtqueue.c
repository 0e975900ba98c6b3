/*
 * virtqueue: the one split-virtqueue walker (virtio 1.2, 2.7) every device
 * uses. Nothing the guest wrote is trusted: each field is copied into a
 * local once, checked, and only then used; every buffer goes through
 * mm_gpa_to_hva() with its length. INDIRECT and EVENT_IDX are never
 * offered, so an indirect descriptor is a violation.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mm/mm.h"
#include "vmm/lib/log.h"
#include "vmm/virtio/virtio.h"

/* A guest may change ring memory under us at any time: read each field once. */
#define READ_ONCE(x)  __atomic_load_n(&(x), __ATOMIC_RELAXED)

void vq_fail(struct virtq *vq, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* The queue stops, but a driver can reset and break it again at will. */
	log_limited(&vq->log_rl, log_err, "virtio", "%s queue %u: %s; device needs reset",
		    vq->name ? vq->name : "?", vq->index, why);
	vq->broken = true;
	if (vq->fail)
		vq->fail(vq->fail_opaque, vq);
}

void vq_reset(struct virtq *vq)
{
	vq->num = vq->num_max;
	vq->ready = false;
	vq->broken = false;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->last_avail = 0;
	vq->used_idx = 0;
}

int vq_setup(struct virtq *vq)
{
	uint32_t num = vq->num;
	uint64_t desc_gpa = vq->desc_gpa, avail_gpa = vq->avail_gpa, used_gpa = vq->used_gpa;

	if (num == 0 || num > vq->num_max || (num & (num - 1))) {
		vq_fail(vq, "queue size %u is not a power of two <= %u", num, vq->num_max);
		return -EINVAL;
	}
	if ((desc_gpa & (VRING_DESC_ALIGN_SIZE - 1)) || (avail_gpa & (VRING_AVAIL_ALIGN_SIZE - 1)) ||
	    (used_gpa & (VRING_USED_ALIGN_SIZE - 1))) {
		vq_fail(vq, "misaligned rings (desc 0x%llx avail 0x%llx used 0x%llx)",
			(unsigned long long)desc_gpa, (unsigned long long)avail_gpa,
			(unsigned long long)used_gpa);
		return -EINVAL;
	}
	/* avail: flags, idx, ring[num], used_event; used: flags, idx, ring[num], avail_event */
	void *desc = mm_gpa_to_hva(vq->gm, desc_gpa, 16ull * num);
	void *avail = mm_gpa_to_hva(vq->gm, avail_gpa, 6ull + 2ull * num);
	void *used = mm_gpa_to_hva(vq->gm, used_gpa, 6ull + 8ull * num);
	if (!desc || !avail || !used) {
		vq_fail(vq, "ring outside guest RAM (desc 0x%llx avail 0x%llx used 0x%llx, size %u)",
			(unsigned long long)desc_gpa, (unsigned long long)avail_gpa,
			(unsigned long long)used_gpa, num);
		return -EINVAL;
	}
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->ring_used_gpa = used_gpa;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->broken = false;
	vq->ready = true;
	vq->gen++;
	return 0;
}

/* One descriptor's flags, length, direction and address against the rules
 * and guest RAM; 0 with *hva, or -EIO after vq_fail. */
static int vq_check_desc(struct virtq *vq, uint16_t idx, uint64_t addr, uint32_t len, uint16_t flags,
			 enum vq_dir dir, bool seen_writable, void **hva)
{
	bool writable = flags & VRING_DESC_F_WRITE;

	if (flags & VRING_DESC_F_INDIRECT) {
		vq_fail(vq, "descriptor %u is indirect (not negotiated)", idx);
		return -EIO;
	}
	if (len == 0) {
		vq_fail(vq, "descriptor %u has length 0", idx);
		return -EIO;
	}
	if (dir == VQ_DIR_READ && writable) {
		vq_fail(vq, "descriptor %u is device-writable where a readable buffer is needed", idx);
		return -EIO;
	}
	if (dir == VQ_DIR_WRITE && !writable) {
		vq_fail(vq, "descriptor %u is device-readable where a writable buffer is needed", idx);
		return -EIO;
	}
	if (dir == VQ_DIR_ANY && !writable && seen_writable) {
		vq_fail(vq, "descriptor %u: readable buffer after a writable one", idx);
		return -EIO;
	}
	*hva = mm_gpa_to_hva(vq->gm, addr, len);
	if (!*hva) {
		vq_fail(vq, "descriptor %u: [0x%llx, +0x%x) is not inside guest RAM",
			idx, (unsigned long long)addr, len);
		return -EIO;
	}
	return 0;
}

int vq_pop(struct virtq *vq, struct vq_chain *c, enum vq_dir dir)
{
	if (vq->broken)
		return -EIO;
	if (!vq->ready)
		return 0;

	uint16_t num = vq->num;
	/* acquire: ring entries and descriptors are read after the index */
	uint16_t avail_idx = le16toh(__atomic_load_n(&vq->avail[1], __ATOMIC_ACQUIRE));
	uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
	if (pending == 0)
		return 0;
	if (pending > num) {
		vq_fail(vq, "avail index jumped from %u to %u (queue size %u)",
			vq->last_avail, avail_idx, num);
		return -EIO;
	}

	uint16_t head = le16toh(READ_ONCE(vq->avail[2 + (vq->last_avail & (num - 1))]));
	if (head >= num) {
		vq_fail(vq, "head index %u >= queue size %u", head, num);
		return -EIO;
	}

	uint16_t idx = head;
	uint16_t n = 0;
	bool seen_writable = false;
	c->read_len = c->write_len = 0;
	for (;;) {
		/* a chain can use every descriptor once at most; more means a loop */
		if (n >= num) {
			vq_fail(vq, "chain from head %u longer than queue size %u (loop)", head, num);
			return -EIO;
		}
		struct vring_desc *g = &vq->desc[idx];
		/* copied once: the guest may change the descriptor while we look */
		uint64_t addr = le64toh(READ_ONCE(g->addr));
		uint32_t len = le32toh(READ_ONCE(g->len));
		uint16_t flags = le16toh(READ_ONCE(g->flags));
		uint16_t next = le16toh(READ_ONCE(g->next));
		bool writable = flags & VRING_DESC_F_WRITE;
		void *hva;

		if (vq_check_desc(vq, idx, addr, len, flags, dir, seen_writable, &hva))
			return -EIO;
		if (writable)
			c->write_len += len;
		else
			c->read_len += len;
		/* the spec caps a chain's total length at 2^32 bytes */
		if (c->read_len + c->write_len > UINT32_MAX) {
			vq_fail(vq, "chain from head %u longer than 4 GiB", head);
			return -EIO;
		}
		seen_writable |= writable;
		c->buf[n] = (struct vq_buf){ .gpa = addr, .len = len, .writable = writable, .hva = hva };
		n++;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (next >= num) {
			vq_fail(vq, "descriptor %u: next index %u >= queue size %u", idx, next, num);
			return -EIO;
		}
		idx = next;
	}
	c->head = head;
	c->nr = n;
	vq->last_avail++;
	return 1;
}

void vq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	if (!vq->ready || vq->broken)
		return;
	uint16_t num = vq->num;
	if (head >= num) {   /* a device bug, never a guest's: refuse rather than corrupt */
		log_err("virtio", "%s queue %u: device pushed head %u >= queue size %u",
			vq->name ? vq->name : "?", vq->index, head, num);
		return;
	}
	struct vring_used_elem *ring = (struct vring_used_elem *)(vq->used + 4);
	struct vring_used_elem *e = &ring[vq->used_idx & (num - 1)];
	__atomic_store_n(&e->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(written), __ATOMIC_RELAXED);
	vq->used_idx++;
	/* release: the element is visible before the index that publishes it */
	__atomic_store_n((uint16_t *)(vq->used + 2), htole16(vq->used_idx), __ATOMIC_RELEASE);
	/* The memory manager must see these writes (KVM's dirty log does not). */
	mm_note_write(vq->gm, vq->ring_used_gpa, 4);
	mm_note_write(vq->gm, vq->ring_used_gpa + 4 + 8ull * (uint16_t)((vq->used_idx - 1) & (num - 1)), 8);
}

bool vq_want_interrupt(struct virtq *vq)
{
	if (!vq->ready)
		return false;
	/* the used index store must be ordered before the flags load (spec 2.7.10) */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t flags = le16toh(READ_ONCE(vq->avail[0]));
	return !(flags & VRING_AVAIL_F_NO_INTERRUPT);
}
