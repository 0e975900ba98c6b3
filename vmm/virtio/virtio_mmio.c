/*
 * virtio_mmio: the virtio-mmio transport (virtio 1.2, 4.2.2, Version 2 only).
 * Owns the register file of one device, device status and feature
 * negotiation, queue setup (validated when QueueReady is written), and
 * interrupts (irqfd edge, or KVM_IRQ_LINE pulses when irqfd is refused).
 * Queue notifications arrive as MMIO exits on the vCPU thread that wrote
 * QueueNotify and are handed to the device under the transport lock.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"
#include "vmm/virtio/virtio.h"

struct virtio_mmio {
	struct vm *vm;
	const struct virtio_dev_ops *ops;
	void *dev;
	pthread_mutex_t lock;
	uint64_t base;
	uint32_t gsi;
	int irq_efd;                /* irqfd eventfd, -1 when pulsing KVM_IRQ_LINE */
	bool irq_warned;
	struct ratelimit log_rl;    /* lines the driver's register writes cause */

	uint32_t status;
	uint32_t dev_features_sel, drv_features_sel;
	uint64_t drv_features;      /* as written by the driver so far */
	uint64_t features;          /* accepted at FEATURES_OK */
	uint32_t queue_sel;
	uint32_t isr;               /* InterruptStatus */
	uint32_t config_gen;
	struct virtq vqs[VIRTIO_MAX_QUEUES];
};

void virtio_mmio_lock(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
}

void virtio_mmio_unlock(struct virtio_mmio *t)
{
	pthread_mutex_unlock(&t->lock);
}

uint64_t virtio_mmio_base(struct virtio_mmio *t)
{
	return t->base;
}

uint32_t virtio_mmio_gsi(struct virtio_mmio *t)
{
	return t->gsi;
}

uint64_t virtio_mmio_features(struct virtio_mmio *t)
{
	return t->features;
}

bool virtio_mmio_live(struct virtio_mmio *t)
{
	return (t->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(t->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static uint64_t mmio_offered(struct virtio_mmio *t)
{
	return t->ops->features(t->dev) | (1ull << VIRTIO_F_VERSION_1);
}

static unsigned mmio_nr_queues(struct virtio_mmio *t)
{
	uint64_t f = (t->status & VIRTIO_CONFIG_S_FEATURES_OK) ? t->features : t->drv_features;
	unsigned n = t->ops->nr_queues(t->dev, f);
	return n > VIRTIO_MAX_QUEUES ? VIRTIO_MAX_QUEUES : n;
}

struct virtq *virtio_mmio_queue(struct virtio_mmio *t, unsigned idx)
{
	return idx < VIRTIO_MAX_QUEUES ? &t->vqs[idx] : NULL;
}

static void mmio_raise(struct virtio_mmio *t, uint32_t why)
{
	t->isr |= why;
	if (t->irq_efd >= 0) {
		uint64_t one = 1;
		if (write(t->irq_efd, &one, sizeof(one)) == sizeof(one))
			return;
	}
	/* an edge for the IOAPIC: assert then deassert */
	int ret = vm_set_irq(t->vm, t->gsi, 1);
	if (!ret)
		ret = vm_set_irq(t->vm, t->gsi, 0);
	if (ret && !t->irq_warned) {
		t->irq_warned = true;
		log_err("virtio", "%s: cannot raise interrupt %u: %s", t->ops->name, t->gsi,
			strerror(-ret));
	}
}

void virtio_mmio_notify_used(struct virtio_mmio *t, struct virtq *vq)
{
	if (vq_want_interrupt(vq))
		mmio_raise(t, VIRTIO_MMIO_INT_VRING);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	t->config_gen++;
	if (t->status & VIRTIO_CONFIG_S_DRIVER_OK)
		mmio_raise(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio_needs_reset(struct virtio_mmio *t)
{
	if (t->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	t->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	/* spec 2.1.2: with DRIVER_OK set the driver learns it from a config interrupt */
	if (t->status & VIRTIO_CONFIG_S_DRIVER_OK)
		mmio_raise(t, VIRTIO_MMIO_INT_CONFIG);
}

static void mmio_vq_failed(void *opaque, struct virtq *vq)
{
	virtio_mmio_needs_reset(opaque);
}

static void mmio_reset(struct virtio_mmio *t)
{
	t->ops->reset(t->dev);
	t->status = 0;
	t->dev_features_sel = t->drv_features_sel = 0;
	t->drv_features = t->features = 0;
	t->queue_sel = 0;
	t->isr = 0;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_reset(&t->vqs[i]);
}

/* Hands every ready queue to the device: buffers queued before DRIVER_OK
 * (Linux fills the stats queue during probe) are served now. */
static void mmio_kick_all(struct virtio_mmio *t)
{
	unsigned n = mmio_nr_queues(t);
	for (unsigned i = 0; i < n && virtio_mmio_live(t); i++)
		if (t->vqs[i].ready)
			t->ops->queue_notify(t->dev, &t->vqs[i]);
}

static void mmio_write_status(struct virtio_mmio *t, uint32_t v)
{
	if (v == 0) {
		mmio_reset(t);
		return;
	}
	uint32_t old = t->status;
	/* NEEDS_RESET is the device's bit; the driver cannot clear it but by reset */
	uint32_t now = (v & 0xff & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (old & VIRTIO_CONFIG_S_NEEDS_RESET);
	uint32_t steps = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;

	/* status only grows until a reset (spec 2.1.1); clearing a step would let a
	 * driver renegotiate features under live queues */
	if (old & ~now & steps) {
		log_limited(&t->log_rl, log_err, "virtio", "%s: driver cleared status bits 0x%x without a reset",
			    t->ops->name, old & ~now & steps);
		virtio_mmio_needs_reset(t);
		return;
	}

	if ((now & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		uint64_t want = t->drv_features, offered = mmio_offered(t);
		int ret = 0;
		if (want & ~offered) {
			log_limited(&t->log_rl, log_info, "virtio",
				    "%s: driver asked for features 0x%llx not offered (0x%llx)",
				    t->ops->name, (unsigned long long)want, (unsigned long long)offered);
			ret = -EINVAL;
		} else if (!(want & (1ull << VIRTIO_F_VERSION_1))) {
			log_limited(&t->log_rl, log_info, "virtio",
				    "%s: driver did not accept VERSION_1; legacy is not supported", t->ops->name);
			ret = -EINVAL;
		} else if (t->ops->set_features) {
			ret = t->ops->set_features(t->dev, want);
		}
		if (ret)
			now &= ~VIRTIO_CONFIG_S_FEATURES_OK;   /* the driver re-reads and gives up */
		else
			t->features = want;
	}
	if ((now & VIRTIO_CONFIG_S_FAILED) && !(old & VIRTIO_CONFIG_S_FAILED))
		log_limited(&t->log_rl, log_info, "virtio", "%s: driver set FAILED", t->ops->name);
	t->status = now;
	if ((now & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		if (!(now & VIRTIO_CONFIG_S_FEATURES_OK)) {
			log_limited(&t->log_rl, log_info, "virtio", "%s: DRIVER_OK without FEATURES_OK",
				    t->ops->name);
			virtio_mmio_needs_reset(t);
			return;
		}
		if (t->ops->activate)
			t->ops->activate(t->dev);
		mmio_kick_all(t);
	}
}

static uint32_t mmio_read_reg(struct virtio_mmio *t, uint64_t off)
{
	struct virtq *vq = t->queue_sel < VIRTIO_MAX_QUEUES ? &t->vqs[t->queue_sel] : NULL;
	bool vq_exists = vq && t->queue_sel < mmio_nr_queues(t);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:     return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:         return 2;
	case VIRTIO_MMIO_DEVICE_ID:       return t->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:       return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->dev_features_sel > 1)
			return 0;
		return (uint32_t)(mmio_offered(t) >> (32 * t->dev_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:   return vq_exists ? vq->num_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:     return vq_exists ? vq->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS: return t->isr;
	case VIRTIO_MMIO_STATUS:          return t->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:   return 0xffffffffu;   /* no shared memory regions */
	case VIRTIO_MMIO_CONFIG_GENERATION: return t->config_gen;
	default:                          return 0;
	}
}

static void mmio_set_addr(struct virtq *vq, uint64_t *field, bool high, uint32_t v)
{
	if (vq->ready)
		return;   /* spec 4.2.2.3: not while the queue is live */
	if (high)
		*field = (*field & 0xffffffffull) | ((uint64_t)v << 32);
	else
		*field = (*field & ~0xffffffffull) | v;
}

static void mmio_write_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtq *vq = t->queue_sel < VIRTIO_MAX_QUEUES ? &t->vqs[t->queue_sel] : NULL;
	bool vq_exists = vq && t->queue_sel < mmio_nr_queues(t);

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: t->dev_features_sel = v; return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: t->drv_features_sel = v; return;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (t->status & VIRTIO_CONFIG_S_FEATURES_OK || t->drv_features_sel > 1)
			return;
		if (t->drv_features_sel)
			t->drv_features = (t->drv_features & 0xffffffffull) | ((uint64_t)v << 32);
		else
			t->drv_features = (t->drv_features & ~0xffffffffull) | v;
		return;
	case VIRTIO_MMIO_QUEUE_SEL:           t->queue_sel = v; return;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (vq_exists && !vq->ready)
			vq->num = v > 0xffff ? 0 : (uint16_t)v;   /* checked at QueueReady */
		return;
	case VIRTIO_MMIO_QUEUE_READY:
		/* a failed device takes no new queues until reset, so a guest
		 * cannot turn one violation into a flood of log lines */
		if (!vq_exists || (t->status & VIRTIO_CONFIG_S_NEEDS_RESET))
			return;
		if (v == 1 && !vq->ready)
			vq_setup(vq);   /* a bad layout fails the device via vq->fail */
		else if (v == 0)
			vq->ready = false;
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		if (v < mmio_nr_queues(t) && virtio_mmio_live(t) && t->vqs[v].ready)
			t->ops->queue_notify(t->dev, &t->vqs[v]);
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:       t->isr &= ~v; return;
	case VIRTIO_MMIO_STATUS:              mmio_write_status(t, v); return;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:   if (vq_exists) mmio_set_addr(vq, &vq->desc_gpa, false, v); return;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:  if (vq_exists) mmio_set_addr(vq, &vq->desc_gpa, true, v); return;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:  if (vq_exists) mmio_set_addr(vq, &vq->avail_gpa, false, v); return;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: if (vq_exists) mmio_set_addr(vq, &vq->avail_gpa, true, v); return;
	case VIRTIO_MMIO_QUEUE_USED_LOW:   if (vq_exists) mmio_set_addr(vq, &vq->used_gpa, false, v); return;
	case VIRTIO_MMIO_QUEUE_USED_HIGH:  if (vq_exists) mmio_set_addr(vq, &vq->used_gpa, true, v); return;
	default:
		log_debug("virtio", "%s: write 0x%x to read-only or unknown register 0x%llx",
			  t->ops->name, v, (unsigned long long)off);
		return;
	}
}

void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write)
{
	struct virtio_mmio *t = opaque;

	pthread_mutex_lock(&t->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		uint32_t off = (uint32_t)(offset - VIRTIO_MMIO_CONFIG);
		if (is_write)
			t->ops->config_write(t->dev, off, data, len);
		else
			t->ops->config_read(t->dev, off, data, len);
	} else if (len != 4 || (offset & 3)) {
		/* spec 4.2.2.2: registers are 32-bit aligned words */
		log_debug("virtio", "%s: %u-byte access at register 0x%llx ignored", t->ops->name,
			  len, (unsigned long long)offset);
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		uint32_t v;
		memcpy(&v, data, 4);
		mmio_write_reg(t, offset, le32toh(v));
	} else {
		uint32_t v = htole32(mmio_read_reg(t, offset));
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
}

int virtio_mmio_create(struct vm *vm, const struct virtio_dev_ops *ops, void *dev,
		       struct virtio_mmio **out)
{
	struct virtio_mmio *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	t->vm = vm;
	t->ops = ops;
	t->dev = dev;
	t->irq_efd = -1;
	pthread_mutex_init(&t->lock, NULL);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct virtq *vq = &t->vqs[i];
		vq->name = ops->name;
		vq->index = i;
		vq->gm = &vm->mem;
		vq->num_max = VQ_MAX_SIZE;
		vq->fail = mmio_vq_failed;
		vq->fail_opaque = t;
		vq_reset(vq);
	}

	ret = vm_add_device(vm, ops->device_id, &t->base, &t->gsi);
	if (ret) {
		log_err("virtio", "%s: no MMIO window or interrupt line left: %s", ops->name,
			strerror(-ret));
		goto fail;
	}
	ret = io_bus_register(&vm->mmio, t->base, MINIVMM_MMIO_STRIDE, virtio_mmio_access, t,
			      ops->name);
	if (ret) {
		log_err("virtio", "%s: cannot register MMIO window at 0x%llx: %s", ops->name,
			(unsigned long long)t->base, strerror(-ret));
		goto fail;
	}
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd >= 0 && vm_irqfd(vm, efd, t->gsi) == 0) {
		t->irq_efd = efd;
	} else {
		log_info("virtio", "%s: irqfd unavailable, using KVM_IRQ_LINE pulses", ops->name);
		if (efd >= 0)
			close(efd);
	}
	log_debug("virtio", "%s: virtio-mmio at 0x%llx irq %u", ops->name,
		  (unsigned long long)t->base, t->gsi);
	*out = t;
	return 0;
fail:
	pthread_mutex_destroy(&t->lock);
	free(t);
	return ret;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	if (!t)
		return;
	if (t->irq_efd >= 0)
		close(t->irq_efd);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
