/*
 * The entry states of a Linux guest's boot vCPU, as its boot ABIs define
 * them: PVH (32-bit protected mode, paging off, EBX = hvm_start_info), the
 * 64-bit boot protocol (long mode on identity page tables, RSI = zero
 * page) and the 32-bit one (protected mode, ESI = zero page). The GDT the
 * boot code wrote (vmm/boot) has __BOOT_CS at 0x10 and __BOOT_DS at 0x18.
 * Application processors are left to Linux: they wait in KVM's
 * uninitialized state for the INIT/SIPI the kernel sends through its LAPIC.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/boot/bootinfo.h"
#include "vmm/kvm/kvm.h"

#define CR0_PE (1u << 0)
#define CR0_ET (1u << 4)
#define CR0_PG (1u << 31)
#define CR4_PAE (1u << 5)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)

#define BOOT_CS 0x10
#define BOOT_DS 0x18

static void linux_sregs(struct kvm_sregs *s, bool long_mode, uint64_t cr3)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = BOOT_CS, .type = 11, .present = 1,
		.s = 1, .g = 1, .db = long_mode ? 0 : 1, .l = long_mode ? 1 : 0,
	};
	struct kvm_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = BOOT_DS, .type = 3, .present = 1,
		.s = 1, .g = 1, .db = 1,
	};

	s->cs = code;
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->gdt.base = BOOT_GDT_GPA;
	s->gdt.limit = 4 * 8 - 1;
	s->idt.base = 0;
	s->idt.limit = 0;
	/* a present busy TSS satisfies VM entry until the kernel loads its own */
	memset(&s->tr, 0, sizeof(s->tr));
	s->tr.limit = 0x67;
	s->tr.type = 11;
	s->tr.present = 1;
	s->cr0 = CR0_PE | CR0_ET | (long_mode ? CR0_PG : 0);
	s->cr3 = long_mode ? cr3 : 0;
	s->cr4 = long_mode ? CR4_PAE : 0;
	s->efer = long_mode ? (EFER_LME | EFER_LMA) : 0;
}

int vcpu_setup_regs_linux(struct vcpu *cpu)
{
	struct vm *vm = cpu->vm;
	bool long_mode = vm->entry_mode == VCPU_ENTRY_LINUX64;
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_UNINITIALIZED };
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (cpu->index != 0)
		return ioctl(cpu->fd, KVM_SET_MP_STATE, &mp) < 0 ? -errno : 0;
	if (ioctl(cpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	linux_sregs(&sregs, long_mode, vm->pml4_gpa);
	if (ioctl(cpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rip = vm->entry;
	regs.rflags = 0x2;             /* interrupts off; every entry path sets its own stack */
	if (vm->entry_mode == VCPU_ENTRY_PVH)
		regs.rbx = vm->entry_arg;
	else
		regs.rsi = vm->entry_arg;
	return ioctl(cpu->fd, KVM_SET_REGS, &regs) < 0 ? -errno : 0;
}
