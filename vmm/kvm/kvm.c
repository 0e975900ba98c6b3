/*
 * kvm: the VM file descriptor: /dev/kvm, capability checks, the in-kernel
 * irqchip, memslots, devices' interrupt and notification plumbing, vCPU
 * start, stop and join. The machine (vmm/machine.c) decides the order.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmm/kvm/kvm.h"
#include "vmm/kvm/stats.h"
#include "vmm/lib/log.h"
#include "vmm/lib/loop.h"
#include "vmm/lib/macros.h"
#include "vmm/lib/stop.h"

#define KVM_TSS_ADDR        0xfffbd000ULL
#define KVM_IDENTITY_ADDR   0xfffbc000ULL
#define VM_PAUSE_TIMEOUT_S  5

struct kvm_cap_req {
	int cap;
	const char *name;
};

/* Every capability minivmm depends on; checked up front so a missing one is
 * a clear message, not an obscure ioctl failure later. */
static const struct kvm_cap_req required_caps[] = {
	{ KVM_CAP_IRQCHIP,        "KVM_CAP_IRQCHIP (in-kernel interrupt controller)" },
	{ KVM_CAP_USER_MEMORY,    "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR,   "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_EXT_CPUID,      "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_MP_STATE,       "KVM_CAP_MP_STATE" },
	{ KVM_CAP_IRQFD,          "KVM_CAP_IRQFD" },
	{ KVM_CAP_IOEVENTFD,      "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
};

/* The pause lock and a condition on the monotonic clock, for vm_pause()'s timeout. */
static void vm_pause_init(struct vm *vm)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->pause_cond, &attr);
	pthread_condattr_destroy(&attr);
}

int kvm_vm_init(struct vm *vm, char *err, size_t errlen)
{
	const struct vm_config *cfg = &vm->cfg;
	int ret, i;

	vm_pause_init(vm);
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		ret = -errno;
		if (errno == ENOENT)
			snprintf(err, errlen, "/dev/kvm does not exist: this host has no KVM "
				 "(load the kvm_intel or kvm_amd module, or enable virtualization in the firmware)");
		else if (errno == EACCES || errno == EPERM)
			snprintf(err, errlen, "permission denied opening /dev/kvm: run as root or add "
				 "your user to the 'kvm' group");
		else
			snprintf(err, errlen, "cannot open /dev/kvm: %s", strerror(errno));
		return ret;
	}
	ret = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm speaks KVM API %d, minivmm needs %d", ret, KVM_API_VERSION);
		return -ENOTSUP;
	}
	for (i = 0; i < (int)ARRAY_SIZE(required_caps); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			snprintf(err, errlen, "this KVM lacks %s, which minivmm needs", required_caps[i].name);
			return -ENOTSUP;
		}
	}
	vm->max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (vm->max_vcpus <= 0)
		vm->max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (vm->max_vcpus <= 0)
		vm->max_vcpus = 4;
	if (vm->max_vcpus > 64)  /* the boot protocol's and the guest's limit */
		vm->max_vcpus = 64;
	if (cfg->nr_cpus < 1 || cfg->nr_cpus > vm->max_vcpus) {
		snprintf(err, errlen, "--cpus %d is out of range: this host allows 1 to %d vCPUs",
			 cfg->nr_cpus, vm->max_vcpus);
		return -EINVAL;
	}
	if (cfg->guest_page_size == GUEST_PAGES_1G && !kvm_has_1g_pages(vm->kvm_fd)) {
		snprintf(err, errlen, "--guest-pages 1G needs 1 GiB page support in the vCPU (CPUID "
			 "pdpe1gb), which this KVM does not offer: use --guest-pages 2M");
		return -ENOTSUP;
	}
	vm->run_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_mmap_size < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(errno));
		return -EIO;
	}

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "KVM_CREATE_VM failed: %s", strerror(errno));
		return ret;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0 ||
	    ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create the in-kernel irqchip: %s", strerror(errno));
		return ret;
	}
	{
		uint64_t ident = KVM_IDENTITY_ADDR;
		/* only meaningful on Intel; harmless to fail elsewhere */
		(void)ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident);
	}
	return 0;
}

int kvm_vm_create_pit(struct vm *vm)
{
	/* the dummy speaker port (0x61) too: Linux reads it while calibrating */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	return ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0 ? -errno : 0;
}

/* Memslot i holds RAM region i; this file is the only one that sets them. */
static int kvm_set_slot(struct vm *vm, int i, uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = (uint32_t)i,
		.flags = flags,
		.guest_phys_addr = vm->mem.regions[i].gpa,
		.memory_size = vm->mem.regions[i].size,
		.userspace_addr = (uint64_t)(uintptr_t)vm->mem.regions[i].hva,
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

int kvm_vm_dirty_log(struct vm *vm, bool on)
{
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		int ret = kvm_set_slot(vm, i, on ? KVM_MEM_LOG_DIRTY_PAGES : 0);
		if (ret)
			return ret;
	}
	return 0;
}

int kvm_vm_dirty_fetch(struct vm *vm, int region, uint64_t *bitmap)
{
	struct kvm_dirty_log dl = { .slot = (uint32_t)region, .dirty_bitmap = bitmap };

	if (region < 0 || region >= vm->mem.nr_regions)
		return -EINVAL;
	return ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &dl) < 0 ? -errno : 0;
}

int kvm_vm_set_memory(struct vm *vm, char *err, size_t errlen)
{
	int ret, i;

	for (i = 0; i < vm->mem.nr_regions; i++) {
		if ((ret = kvm_set_slot(vm, i, 0))) {
			snprintf(err, errlen, "cannot give guest RAM to KVM (slot %d): %s", i, strerror(-ret));
			return ret;
		}
	}

	vm->stats = kvm_stats_open(vm->vm_fd);
	if (!vm->stats)
		log_info("kvm", "binary statistics unavailable (%s): --stats will be partial",
			 strerror(errno));
	return 0;
}

/*
 * A thread blocked in guest memory that cannot be restored (a hugetlb page
 * with an empty pool) never returns, and teardown would wait for it
 * forever. After the grace period this ends the process with the stop's
 * status; a normal teardown ends the process long before. It is started
 * with the vCPUs and waits for the stop, rather than being started by
 * whichever thread stops the VM, so that no confined thread needs to
 * create threads.
 */
static const struct sb_rule watchdog_rules[] = {
	SB_SYS(clock_nanosleep), SB_SYS(nanosleep),
};
static const struct sb_list watchdog_sandbox = SB_LIST("stop-watchdog", watchdog_rules);

static void *vm_stop_watchdog(void *arg)
{
	static const struct sb_list *const lists[] = { &watchdog_sandbox, NULL };
	struct vm *vm = arg;
	int status;

	if (sandbox_enter("stop-watchdog", lists) < 0)
		vm_request_exit(vm, stop_status(STOP_INTERNAL));
	while (sem_wait(&vm->stop_sem) < 0)
		;
	status = atomic_load(&vm->exit_status);
	sleep(vm->stop_grace_s);
	log_err("vmm", "the VM did not finish stopping within %u s (a thread is blocked in guest "
		"memory that cannot be restored); exiting with status %d", vm->stop_grace_s, status);
	_exit(status);
	return NULL;
}

static int vm_start_watchdog(struct vm *vm)
{
	pthread_t wd;
	int ret;

	if (sem_init(&vm->stop_sem, 0, 0) < 0)
		return -errno;
	ret = pthread_create(&wd, NULL, vm_stop_watchdog, vm);
	if (ret)
		return -ret;
	pthread_setname_np(wd, "stop-watchdog");
	pthread_detach(wd);
	atomic_store(&vm->watchdog, true);
	return 0;
}

int vm_start(struct vm *vm)
{
	int i, ret;

	if (vm->stop_grace_s && (ret = vm_start_watchdog(vm)) < 0)
		return ret;
	for (i = 0; i < vm->nr_cpus; i++) {
		ret = vcpu_start(&vm->vcpus[i]);
		if (ret) {
			vm_request_exit(vm, stop_status(STOP_STARTUP));
			return ret;
		}
	}
	return 0;
}

/* Makes every vCPU leave KVM_RUN soon: immediate_exit covers a vCPU about to
 * enter it, the signal one inside it. */
static void vm_kick_vcpus(struct vm *vm)
{
	for (int i = 0; i < vm->nr_cpus; i++) {
		struct vcpu *cpu = &vm->vcpus[i];

		if (cpu->run)
			__atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (atomic_load(&cpu->started) && !pthread_equal(cpu->thread, pthread_self()))
			pthread_kill(cpu->thread, SIGUSR1);
	}
}

void vm_request_exit(struct vm *vm, int status)
{
	int expected = VM_RUNNING;

	if (!atomic_compare_exchange_strong(&vm->state, &expected, VM_SHUTTING_DOWN))
		return;
	atomic_store(&vm->exit_status, status);
	if (atomic_load(&vm->watchdog))
		sem_post(&vm->stop_sem);
	vm_kick_vcpus(vm);
	/* parked vCPUs wake up, see the state and leave */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	if (vm->loop)
		loop_stop(vm->loop);
}

/*
 * vCPUs park at the top of their loop (vcpu.c), outside KVM_RUN and holding
 * no lock, so the monitor and devices never wait for a paused vCPU. The
 * main thread waits here until every running vCPU is parked, as QEMU's
 * `stop` returns once the vCPUs stopped.
 */
int vm_pause(struct vm *vm)
{
	struct timespec deadline;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += VM_PAUSE_TIMEOUT_S;
	pthread_mutex_lock(&vm->pause_lock);
	if (vm->paused)
		goto out;
	atomic_store(&vm->pause_req, true);
	vm_kick_vcpus(vm);
	while (!ret && atomic_load(&vm->state) == VM_RUNNING &&
	       vm->vcpus_parked < atomic_load(&vm->vcpus_running))
		ret = -pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &deadline);
	if (!ret && atomic_load(&vm->state) != VM_RUNNING)
		ret = -ESHUTDOWN;
	if (ret) {
		log_err("vmm", "cannot pause the VM: %s", ret == -ETIMEDOUT ?
			"a vCPU did not stop within 5 s" : strerror(-ret));
		atomic_store(&vm->pause_req, false);
		pthread_cond_broadcast(&vm->pause_cond);
	} else {
		vm->paused = true;
	}
out:
	pthread_mutex_unlock(&vm->pause_lock);
	return ret;
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm->paused = false;
	atomic_store(&vm->pause_req, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	bool paused = vm->paused;
	pthread_mutex_unlock(&vm->pause_lock);
	return paused;
}

void vm_join(struct vm *vm)
{
	int i;

	for (i = 0; i < vm->nr_cpus; i++) {
		if (atomic_load(&vm->vcpus[i].started)) {
			pthread_join(vm->vcpus[i].thread, NULL);
			atomic_store(&vm->vcpus[i].started, false);
		}
	}
}

void kvm_vm_close(struct vm *vm)
{
	int i;

	for (i = 0; vm->vcpus && i < vm->nr_cpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	if (vm->stats)
		kvm_stats_close(vm->stats);
	vm->stats = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}

int vm_set_irq(struct vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

int vm_irqfd(struct vm *vm, int efd, uint32_t gsi)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)efd, .gsi = gsi };

	return ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

static int vm_ioeventfd_op(struct vm *vm, uint64_t addr, uint32_t len, int64_t datamatch, int efd,
			   uint32_t flags)
{
	struct kvm_ioeventfd io = {
		.addr = addr, .len = len, .fd = efd,
		.datamatch = datamatch < 0 ? 0 : (uint64_t)datamatch,
		.flags = flags | (datamatch < 0 ? 0 : KVM_IOEVENTFD_FLAG_DATAMATCH),
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, int64_t datamatch, int efd)
{
	return vm_ioeventfd_op(vm, addr, len, datamatch, efd, 0);
}

int vm_ioeventfd_remove(struct vm *vm, uint64_t addr, uint32_t len, int64_t datamatch, int efd)
{
	return vm_ioeventfd_op(vm, addr, len, datamatch, efd, KVM_IOEVENTFD_FLAG_DEASSIGN);
}

int vm_add_device(struct vm *vm, uint32_t device_id, uint64_t *base, uint32_t *gsi)
{
	struct bootinfo_dev *d;

	/* IOAPIC has 24 inputs; keep device lines below that */
	if (vm->nr_devs >= BOOTINFO_MAX_DEV || MINIVMM_IRQ_BASE + vm->nr_devs >= 24)
		return -ENOSPC;
	d = &vm->devs[vm->nr_devs];
	d->type = BOOTINFO_DEV_VIRTIO_MMIO;
	d->device_id = device_id;
	d->base = MINIVMM_MMIO_BASE + (uint64_t)vm->nr_devs * MINIVMM_MMIO_STRIDE;
	d->size = MINIVMM_MMIO_STRIDE;
	d->irq = MINIVMM_IRQ_BASE + (uint32_t)vm->nr_devs;
	vm->nr_devs++;
	*base = d->base;
	*gsi = d->irq;
	return 0;
}

/* ---- seccomp allow-lists ---- */

/* pthread_kill blocks signals around tgkill; loop_stop writes an eventfd. */
static const struct sb_rule kvm_stop_rules[] = {
	SB_SYS(tgkill), SB_SYS(rt_sigprocmask), SB_SYS(write),
};
const struct sb_list kvm_sandbox_stop = SB_LIST("kvm-stop", kvm_stop_rules);

static const struct sb_rule kvm_irq_rules[] = {
	SB_IOCTL(KVM_IRQ_LINE),
};
const struct sb_list kvm_sandbox_irq = SB_LIST("kvm-irq", kvm_irq_rules);

/* kvm_vm_dirty_log() re-registers memslots; statistics are pread()s. */
static const struct sb_rule kvm_dirty_rules[] = {
	SB_IOCTL(KVM_GET_DIRTY_LOG), SB_IOCTL(KVM_SET_USER_MEMORY_REGION), SB_SYS(pread64),
};
const struct sb_list kvm_sandbox_dirty = SB_LIST("kvm-dirty", kvm_dirty_rules);

static const struct sb_rule kvm_main_rules[] = {
	SB_IOCTL(KVM_IRQ_LINE), SB_IOCTL(KVM_IOEVENTFD), SB_IOCTL(KVM_IRQFD),
	SB_IOCTL(KVM_GET_DIRTY_LOG), SB_IOCTL(KVM_SET_USER_MEMORY_REGION),
	SB_IOCTL(KVM_GET_REGS), SB_IOCTL(KVM_GET_SREGS),
	SB_SYS(pread64), SB_SYS(tgkill), SB_SYS(rt_sigprocmask), SB_SYS(close), SB_SYS(write),
};
const struct sb_list kvm_sandbox_main = SB_LIST("kvm-main", kvm_main_rules);

int vm_sandbox_vcpu_add(struct vm *vm, const struct sb_list *l)
{
	if (vm->nr_vcpu_sandbox >= VM_VCPU_SANDBOX_MAX)
		return -ENOSPC;
	vm->vcpu_sandbox[vm->nr_vcpu_sandbox++] = l;
	return 0;
}
