/*
 * vcpu: creation, the own guest's long-mode entry state, and the run loop.
 * One thread per vCPU runs KVM_RUN and one flat switch over the exit
 * reason; port and MMIO accesses go to the registration tables. CPUID is
 * cpuid.c's, Linux's entry states vcpu_linux.c's.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/kvm/kvm.h"
#include "vmm/kvm/stats.h"
#include "vmm/lib/log.h"
#include "vmm/lib/stop.h"

#define CR0_PE (1u << 0)
#define CR0_MP (1u << 1)
#define CR0_ET (1u << 4)
#define CR0_NE (1u << 5)
#define CR0_WP (1u << 16)
#define CR0_PG (1u << 31)
#define CR4_PAE        (1u << 5)
#define CR4_PGE        (1u << 7)
#define CR4_OSFXSR     (1u << 9)
#define CR4_OSXMMEXCPT (1u << 10)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)

int vcpu_create(struct vm *vm, struct vcpu *cpu, int index)
{
	void *run;

	cpu->vm = vm;
	cpu->index = index;
	cpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (cpu->fd < 0)
		return -errno;
	run = mmap(NULL, (size_t)vm->run_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu->fd, 0);
	if (run == MAP_FAILED)
		return -errno;
	cpu->run = run;
	vcpu_set_cpuid(cpu);   /* cpuid.c; logs a failure, the guest may still run */
	cpu->stats = kvm_stats_open(cpu->fd);
	if (index == 0) {
		int khz = ioctl(cpu->fd, KVM_GET_TSC_KHZ, 0);

		vm->tsc_khz = khz > 0 ? (uint64_t)khz : 0;
	}
	return 0;
}

int vcpu_setup_regs(struct vcpu *cpu)
{
	struct vm *vm = cpu->vm;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	if (vm->entry_mode != VCPU_ENTRY_OWN)
		return vcpu_setup_regs_linux(cpu);   /* vcpu_linux.c */
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 11,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 3,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};

	if (ioctl(cpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.gdt.base = BOOT_GDT_GPA;
	sregs.gdt.limit = 3 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	/* a present busy 64-bit TSS keeps VM entry checks happy until the guest loads its own */
	sregs.tr.selector = 0;
	sregs.tr.base = 0;
	sregs.tr.limit = 0x67;
	sregs.tr.type = 11;
	sregs.tr.present = 1;
	sregs.tr.s = 0;
	sregs.cr3 = vm->pml4_gpa;
	sregs.cr4 = CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.efer = EFER_LME | EFER_LMA;
	if (ioctl(cpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rip = vm->entry;
	regs.rflags = 0x2;
	regs.rdi = BOOTINFO_GPA;
	regs.rsi = (uint64_t)cpu->index;
	if (ioctl(cpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;

	/* with the in-kernel LAPIC, application processors would wait for INIT/SIPI;
	 * the boot contract starts every vCPU at the entry point at once */
	if (cpu->index != 0) {
		struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };

		if (ioctl(cpu->fd, KVM_SET_MP_STATE, &mp) < 0)
			return -errno;
	}
	return 0;
}

void vcpu_dump(struct vcpu *cpu, FILE *out)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(cpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(cpu->fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(out, "vcpu %d: cannot read registers: %s\n", cpu->index, strerror(errno));
		return;
	}
	fprintf(out,
		"vcpu %d registers:\n"
		"  rip %016llx rsp %016llx rflags %016llx\n"
		"  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
		"  rsi %016llx rdi %016llx rbp %016llx\n"
		"  r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
		"  r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n"
		"  cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %016llx\n"
		"  cs %04x ss %04x cpl %d\n",
		cpu->index, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx,
		r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15,
		s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.ss.selector, s.cs.dpl);
}

int vcpu_get_paging(struct vcpu *cpu, uint64_t *cr0, uint64_t *cr3, uint64_t *cr4, uint64_t *efer)
{
	struct kvm_sregs s;

	if (ioctl(cpu->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	*cr0 = s.cr0;
	*cr3 = s.cr3;
	*cr4 = s.cr4;
	*efer = s.efer;
	return 0;
}

/* A vCPU stops the whole VM on anything it cannot continue from. */
static void __attribute__((format(printf, 2, 3))) vcpu_fail(struct vcpu *cpu, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_err("vcpu", "cpu %d: %s", cpu->index, why);
	vcpu_dump(cpu, stderr);
	vm_request_exit(cpu->vm, stop_status(STOP_VCPU));
}

static void handle_io(struct vcpu *cpu)
{
	struct kvm_run *run = cpu->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint32_t i;

	cpu->exits_io++;
	for (i = 0; i < run->io.count; i++, p += run->io.size) {
		if (io_bus_dispatch(&cpu->vm->pio, run->io.port, p, run->io.size, is_write) < 0) {
			/* unclaimed ports read as all ones, as on a PC */
			if (!is_write)
				memset(p, 0xff, run->io.size);
			log_debug("vcpu", "cpu %d: unclaimed port 0x%x %s", cpu->index,
				  run->io.port, is_write ? "write" : "read");
		}
	}
}

static void handle_mmio(struct vcpu *cpu)
{
	struct kvm_run *run = cpu->run;
	uint32_t len = run->mmio.len;

	cpu->exits_mmio++;
	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	if (io_bus_dispatch(&cpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len,
			    run->mmio.is_write) < 0) {
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, len);
		log_debug("vcpu", "cpu %d: unclaimed MMIO 0x%llx %s", cpu->index,
			  (unsigned long long)run->mmio.phys_addr, run->mmio.is_write ? "write" : "read");
	}
}

/*
 * Waits while the VM is paused (QMP `stop`), outside KVM_RUN and holding no
 * other lock. immediate_exit is cleared under the pause lock so that a
 * pause requested after this vCPU resumed sets it again and is not lost.
 */
static void vcpu_park(struct vcpu *cpu)
{
	struct vm *vm = cpu->vm;

	pthread_mutex_lock(&vm->pause_lock);
	vm->vcpus_parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pause_req) && atomic_load(&vm->state) == VM_RUNNING)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->vcpus_parked--;
	/* a stop under way keeps it set; the loop sees the state next */
	if (atomic_load(&vm->state) == VM_RUNNING)
		__atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&vm->pause_lock);
}

/*
 * What a vCPU thread does once running (strace of the integration tests,
 * plus the error paths read from the code): KVM_RUN; the registers for
 * vcpu_dump() when it fails; and stopping the VM (kvm_sandbox_stop). The
 * devices' register handlers that run here add theirs (vm->vcpu_sandbox):
 * the UART's console output, virtio-mmio's kicks and interrupts.
 */
static const struct sb_rule vcpu_rules[] = {
	SB_IOCTL(KVM_RUN), SB_IOCTL(KVM_GET_REGS), SB_IOCTL(KVM_GET_SREGS),
};
static const struct sb_list vcpu_sandbox = SB_LIST("vcpu", vcpu_rules);

static void *vcpu_thread(void *arg)
{
	static const struct sb_list *const own[] = { &vcpu_sandbox, &kvm_sandbox_stop, NULL };
	struct vcpu *cpu = arg;
	struct vm *vm = cpu->vm;
	struct kvm_run *run = cpu->run;
	sigset_t set;
	char name[16];

	/* SIGUSR1 kicks this thread out of KVM_RUN; all other signals go to main */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	snprintf(name, sizeof(name), "vcpu%d", cpu->index);
	if (sandbox_enter2(name, own, vm->vcpu_sandbox) < 0) {
		vm_request_exit(vm, stop_status(STOP_INTERNAL));
		goto out;
	}

	while (atomic_load(&vm->state) == VM_RUNNING) {
		if (atomic_load(&vm->pause_req)) {
			vcpu_park(cpu);
			continue;
		}
		if (ioctl(cpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vcpu_fail(cpu, "KVM_RUN failed: %s", strerror(errno));
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(cpu);
			break;
		case KVM_EXIT_MMIO:
			handle_mmio(cpu);
			break;
		case KVM_EXIT_INTR:
			cpu->exits_other++;
			break;
		case KVM_EXIT_HLT:
			/* only without in-kernel LAPIC; treat as a stop of this vCPU */
			log_info("vcpu", "cpu %d halted", cpu->index);
			goto out;
		case KVM_EXIT_SHUTDOWN:
			vcpu_fail(cpu, "guest shutdown (triple fault)");
			goto out;
		case KVM_EXIT_SYSTEM_EVENT:
			vcpu_fail(cpu, "system event type %llu",
				  (unsigned long long)run->system_event.type);
			goto out;
		case KVM_EXIT_FAIL_ENTRY:
			vcpu_fail(cpu, "VM entry failed, hardware reason 0x%llx",
				  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			goto out;
		case KVM_EXIT_INTERNAL_ERROR:
			vcpu_fail(cpu, "KVM internal error, suberror %llu (1 = instruction emulation failed)",
				  (unsigned long long)run->internal.suberror);
			goto out;
		default:
			vcpu_fail(cpu, "unhandled exit reason %llu",
				  (unsigned long long)run->exit_reason);
			goto out;
		}
	}
out:
	/* a pause waiting for this vCPU to park waits for one fewer now */
	pthread_mutex_lock(&vm->pause_lock);
	int last = atomic_fetch_sub(&vm->vcpus_running, 1) == 1;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	if (last)
		vm_request_exit(vm, 0);
	return NULL;
}

static void sigusr1_noop(int sig)
{
	(void)sig;
}

int vcpu_start(struct vcpu *cpu)
{
	static bool handler_set;
	int ret;

	if (!handler_set) {
		struct sigaction sa = { .sa_handler = sigusr1_noop };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, NULL);  /* no SA_RESTART: KVM_RUN returns EINTR */
		handler_set = true;
	}
	atomic_fetch_add(&cpu->vm->vcpus_running, 1);
	pthread_t th;
	ret = pthread_create(&th, NULL, vcpu_thread, cpu);
	if (ret) {
		atomic_fetch_sub(&cpu->vm->vcpus_running, 1);
		return -ret;
	}
	/* a vCPU already running may stop the VM and kick the others
	 * (vm_request_exit): it reads thread only after it sees started */
	cpu->thread = th;
	atomic_store(&cpu->started, true);
	char name[16];
	snprintf(name, sizeof(name), "vcpu%d", cpu->index);
	pthread_setname_np(cpu->thread, name);   /* for top -H, gdb and TSan reports */
	return 0;
}

void vcpu_destroy(struct vcpu *cpu)
{
	if (cpu->stats)
		kvm_stats_close(cpu->stats);
	cpu->stats = NULL;
	if (cpu->run)
		munmap(cpu->run, (size_t)cpu->vm->run_mmap_size);
	cpu->run = NULL;
	if (cpu->fd > 0)
		close(cpu->fd);
	cpu->fd = -1;
}
