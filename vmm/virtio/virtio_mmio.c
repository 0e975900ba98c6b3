/*
 * virtio_mmio: the virtio-mmio transport (virtio 1.2, 4.2.2, Version 2 only).
 * Owns the register file of one device, device status and feature
 * negotiation, queue setup (validated when QueueReady is written),
 * interrupts (irqfd edge, or KVM_IRQ_LINE pulses when irqfd is refused),
 * and the notification path: one eventfd per queue that KVM signals on a
 * QueueNotify write (ioeventfd, datamatch on the queue index) and the
 * device's worker thread that serves it. Locks and threads: virtio.h.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"
#include "vmm/lib/stop.h"
#include "vmm/virtio/virtio.h"

struct virtio_mmio {
	struct vm *vm;
	const struct virtio_dev_ops *ops;
	void *dev;
	pthread_mutex_t lock;       /* register lock: brief, taken by every access */
	pthread_mutex_t qlock;      /* queue lock: held while the device works a queue */
	uint64_t base;
	uint32_t gsi;
	int irq_efd;                /* irqfd eventfd, -1 when pulsing KVM_IRQ_LINE */
	bool irq_warned;
	struct ratelimit log_rl;    /* lines the driver's register writes cause */

	/* notifications: set up before vCPUs run, fixed afterwards */
	int notify_efd[VIRTIO_MAX_QUEUES];   /* -1 when not served by the worker */
	int stop_efd;               /* ends the worker */
	bool ioeventfd;             /* KVM signals notify_efd[] itself */
	pthread_t worker;
	atomic_bool async;          /* the worker serves notifications */

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

void virtio_mmio_queues_lock(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->qlock);
}

void virtio_mmio_queues_unlock(struct virtio_mmio *t)
{
	pthread_mutex_unlock(&t->qlock);
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

/* Register lock held. */
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
	if (!vq_want_interrupt(vq))
		return;
	pthread_mutex_lock(&t->lock);
	mmio_raise(t, VIRTIO_MMIO_INT_VRING);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	t->config_gen++;
	if (t->status & VIRTIO_CONFIG_S_DRIVER_OK)
		mmio_raise(t, VIRTIO_MMIO_INT_CONFIG);
	pthread_mutex_unlock(&t->lock);
}

/* Both locks held: status changes only so, and either lock reads it. */
static void mmio_needs_reset_locked(struct virtio_mmio *t)
{
	if (t->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	t->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	/* spec 2.1.2: with DRIVER_OK set the driver learns it from a config interrupt */
	if (t->status & VIRTIO_CONFIG_S_DRIVER_OK)
		mmio_raise(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio_needs_reset(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	mmio_needs_reset_locked(t);
	pthread_mutex_unlock(&t->lock);
}

/* The walker found a violation; the queue lock is held (never the register
 * lock: QueueReady's own check runs with fail unset, see mmio_queue_ready). */
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

/* Every ready queue, as a kick mask: buffers queued before DRIVER_OK
 * (Linux fills the stats queue during probe) are served now. */
static uint32_t mmio_ready_queues(struct virtio_mmio *t)
{
	unsigned n = mmio_nr_queues(t);
	uint32_t kick = 0;

	for (unsigned i = 0; i < n; i++)
		if (t->vqs[i].ready)
			kick |= 1u << i;
	return kick;
}

/* Both locks held. Queues to serve once the register lock is dropped go to *kick. */
static void mmio_write_status(struct virtio_mmio *t, uint32_t v, uint32_t *kick)
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
		mmio_needs_reset_locked(t);
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
			mmio_needs_reset_locked(t);
			return;
		}
		if (t->ops->activate)
			t->ops->activate(t->dev);
		*kick |= mmio_ready_queues(t);
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

/*
 * QueueReady with both locks held. The ring check's failure is reported
 * here under the register lock already held, so the queue's fail callback
 * (which takes that lock) is off meanwhile; only queue lock holders read it.
 */
static void mmio_queue_ready(struct virtio_mmio *t, struct virtq *vq)
{
	vq_fail_fn fail = vq->fail;

	vq->fail = NULL;
	int ret = vq_setup(vq);
	vq->fail = fail;
	if (ret)
		mmio_needs_reset_locked(t);
}

/* Register lock held, and the queue lock for the registers that
 * mmio_reg_takes_queues() names. */
static void mmio_write_reg(struct virtio_mmio *t, uint64_t off, uint32_t v, uint32_t *kick)
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
			mmio_queue_ready(t, vq);   /* a bad layout fails the device */
		else if (v == 0)
			vq->ready = false;
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* with ioeventfd KVM signals the worker without an exit; a write it
		 * did not match (or none bound) lands here */
		if (v < mmio_nr_queues(t) && virtio_mmio_live(t) && t->vqs[v].ready)
			*kick |= 1u << v;
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:       t->isr &= ~v; return;
	case VIRTIO_MMIO_STATUS:              mmio_write_status(t, v, kick); return;
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

/*
 * Register writes that change queue state (status, reset, queue set-up) and,
 * without the worker, QueueNotify also take the queue lock, first: lock
 * order is queue lock, then register lock. So the worker never walks a queue
 * that is being set up or reset, and status and queue configuration change
 * only with both locks held: either lock is enough to read them.
 */
static bool mmio_reg_takes_queues(struct virtio_mmio *t, uint64_t off)
{
	switch (off) {
	case VIRTIO_MMIO_STATUS:
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		return true;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		return !atomic_load(&t->async);
	default:
		return false;
	}
}

/* Hands queue idx to the device if it is still live; queue lock held. */
static void mmio_serve_queue(struct virtio_mmio *t, unsigned idx)
{
	pthread_mutex_lock(&t->lock);
	bool ok = idx < mmio_nr_queues(t) && virtio_mmio_live(t) && t->vqs[idx].ready;
	pthread_mutex_unlock(&t->lock);
	if (ok)
		t->ops->queue_notify(t->dev, &t->vqs[idx]);
}

/* Queues in kick: to the worker, or served here (the queue lock is held
 * then: mmio_reg_takes_queues took it). */
static void mmio_kick(struct virtio_mmio *t, uint32_t kick)
{
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		if (!(kick & (1u << i)))
			continue;
		if (atomic_load(&t->async)) {
			uint64_t one = 1;
			if (write(t->notify_efd[i], &one, sizeof(one)) != sizeof(one))
				log_err("virtio", "%s: cannot signal queue %u: %s", t->ops->name, i,
					strerror(errno));
		} else {
			mmio_serve_queue(t, i);
		}
	}
}

void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write)
{
	struct virtio_mmio *t = opaque;
	bool reg = offset < VIRTIO_MMIO_CONFIG && len == 4 && !(offset & 3);
	bool queues = reg && is_write && mmio_reg_takes_queues(t, offset);
	uint32_t kick = 0;

	if (queues)
		pthread_mutex_lock(&t->qlock);
	pthread_mutex_lock(&t->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		uint32_t off = (uint32_t)(offset - VIRTIO_MMIO_CONFIG);
		if (is_write)
			t->ops->config_write(t->dev, off, data, len);
		else
			t->ops->config_read(t->dev, off, data, len);
	} else if (!reg) {
		/* spec 4.2.2.2: registers are 32-bit aligned words */
		log_debug("virtio", "%s: %u-byte access at register 0x%llx ignored", t->ops->name,
			  len, (unsigned long long)offset);
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		uint32_t v;
		memcpy(&v, data, 4);
		mmio_write_reg(t, offset, le32toh(v), &kick);
	} else {
		uint32_t v = htole32(mmio_read_reg(t, offset));
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
	/* the device's queue work runs without the register lock, so other
	 * vCPUs and the monitor keep reaching the registers meanwhile */
	if (kick)
		mmio_kick(t, kick);
	if (queues)
		pthread_mutex_unlock(&t->qlock);
}

/* ---- the worker ---- */

/*
 * The worker's own calls: poll and read the notification eventfds, write
 * the interrupt eventfd (or KVM_IRQ_LINE without irqfd), stop the VM when
 * a device cannot go on. The device's queue work adds its list (ops).
 */
static const struct sb_rule mmio_worker_rules[] = {
	SB_SYS(poll), SB_SYS(ppoll), SB_SYS(read), SB_SYS(write),
};
static const struct sb_list mmio_worker_sandbox = SB_LIST("virtio-worker", mmio_worker_rules);
static const struct sb_list *const mmio_worker_lists[] = {
	&mmio_worker_sandbox, &kvm_sandbox_irq, &kvm_sandbox_stop, NULL,
};

/* Serves notifications until stop_efd fires; one pass per wake-up. */
static void *mmio_worker(void *arg)
{
	struct virtio_mmio *t = arg;
	struct pollfd pfd[VIRTIO_MAX_QUEUES + 1];
	char name[16];

	snprintf(name, sizeof(name), "%s-wk", t->ops->name);
	if (sandbox_enter2(name, mmio_worker_lists, t->ops->sandbox) < 0) {
		vm_request_exit(t->vm, stop_status(STOP_INTERNAL));
		return NULL;
	}

	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		pfd[i] = (struct pollfd){ .fd = t->notify_efd[i], .events = POLLIN };
	pfd[VIRTIO_MAX_QUEUES] = (struct pollfd){ .fd = t->stop_efd, .events = POLLIN };
	for (;;) {
		if (poll(pfd, VIRTIO_MAX_QUEUES + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("virtio", "%s: worker: poll failed: %s", t->ops->name, strerror(errno));
			break;
		}
		if (pfd[VIRTIO_MAX_QUEUES].revents)
			break;
		for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
			uint64_t n;
			/* reading resets the count: notifications that came meanwhile
			 * are covered by this pass, which walks the ring to its end */
			if (!(pfd[i].revents & POLLIN) || read(t->notify_efd[i], &n, sizeof(n)) != sizeof(n))
				continue;
			pthread_mutex_lock(&t->qlock);
			mmio_serve_queue(t, i);
			pthread_mutex_unlock(&t->qlock);
		}
	}
	return NULL;
}

static void mmio_notify_close(struct virtio_mmio *t)
{
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		if (t->notify_efd[i] < 0)
			continue;
		if (t->ioeventfd)
			vm_ioeventfd_remove(t->vm, t->base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, i, t->notify_efd[i]);
		close(t->notify_efd[i]);
		t->notify_efd[i] = -1;
	}
	t->ioeventfd = false;
	if (t->stop_efd >= 0)
		close(t->stop_efd);
	t->stop_efd = -1;
}

static int mmio_notify_open(struct virtio_mmio *t)
{
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		if ((t->notify_efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			return -errno;
	t->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return t->stop_efd < 0 ? -errno : 0;
}

int virtio_mmio_start_worker(struct virtio_mmio *t)
{
	char name[16];
	sigset_t all, old;
	int ret = 0;

	if (atomic_load(&t->async))
		return 0;
	if (t->stop_efd < 0)
		ret = mmio_notify_open(t);
	if (ret)
		return ret;
	/* signals are the main thread's and the vCPUs' (SIGUSR1) business */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&t->worker, NULL, mmio_worker, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "%s-wk", t->ops->name);
	pthread_setname_np(t->worker, name);
	atomic_store(&t->async, true);
	return 0;
}

/* Binds one eventfd per queue to QueueNotify (datamatch: the queue index)
 * and starts the worker; without that, notifications are served on the
 * vCPU thread that exits for them. */
static void mmio_notify_setup(struct virtio_mmio *t)
{
	int ret = mmio_notify_open(t);

	for (unsigned i = 0; !ret && i < VIRTIO_MAX_QUEUES; i++) {
		ret = vm_ioeventfd(t->vm, t->base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, i, t->notify_efd[i]);
		if (ret) {
			while (i--)
				vm_ioeventfd_remove(t->vm, t->base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, i,
						    t->notify_efd[i]);
		}
	}
	if (!ret) {
		t->ioeventfd = true;
		ret = virtio_mmio_start_worker(t);
	}
	if (ret) {
		log_info("virtio", "%s: ioeventfd or worker unavailable (%s): queue notifications are "
			 "served on the vCPU thread", t->ops->name, strerror(-ret));
		mmio_notify_close(t);
	}
}

/* The register handlers on vCPU threads write eventfds (kicks, interrupts)
 * and pulse KVM_IRQ_LINE; without ioeventfd they also serve the queues. */
static int mmio_vcpu_sandbox(struct virtio_mmio *t)
{
	int ret = vm_sandbox_vcpu_add(t->vm, &mmio_worker_sandbox);

	for (size_t i = 0; !ret && !t->ioeventfd && t->ops->sandbox && t->ops->sandbox[i]; i++)
		ret = vm_sandbox_vcpu_add(t->vm, t->ops->sandbox[i]);
	if (ret)
		log_err("virtio", "%s: too many allow-lists for the vCPU threads' filter", t->ops->name);
	return ret;
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
	t->stop_efd = -1;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		t->notify_efd[i] = -1;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->qlock, NULL);
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
	mmio_notify_setup(t);
	ret = mmio_vcpu_sandbox(t);
	if (ret) {
		virtio_mmio_destroy(t);
		return ret;
	}
	log_debug("virtio", "%s: virtio-mmio at 0x%llx irq %u, notifications %s", ops->name,
		  (unsigned long long)t->base, t->gsi, t->ioeventfd ? "by ioeventfd" : "on MMIO exits");
	*out = t;
	return 0;
fail:
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->qlock);
	free(t);
	return ret;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	if (!t)
		return;
	if (atomic_load(&t->async)) {
		uint64_t one = 1;
		/* the worker finishes the queue it is on, then sees this */
		if (write(t->stop_efd, &one, sizeof(one)) == sizeof(one))
			pthread_join(t->worker, NULL);
		atomic_store(&t->async, false);
	}
	mmio_notify_close(t);
	if (t->irq_efd >= 0)
		close(t->irq_efd);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->qlock);
	free(t);
}
