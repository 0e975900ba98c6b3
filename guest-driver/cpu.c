/*
 * CPU tables and interrupts: the GDT (kernel and user segments, one TSS per
 * cpu), the IDT with exception reports, the ud2 syscall trap, the LAPIC timer tick
 * and IOAPIC routing for device interrupts.
 */
#include "kernel.h"


#define LAPIC_ID        0x020
#define LAPIC_TPR       0x080
#define LAPIC_EOI       0x0b0
#define LAPIC_SVR       0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3e0

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

static uint64_t gdt[5 + 2 * MAX_CPUS] __attribute__((aligned(16)));
static struct tss tss[MAX_CPUS] __attribute__((aligned(16)));
static uint64_t idt[256 * 2] __attribute__((aligned(16)));
struct percpu percpu[MAX_CPUS];
volatile uint64_t ticks;
uint32_t tick_hz;

struct __attribute__((packed)) dtr {
	uint16_t limit;
	uint64_t base;
};

static void idt_set(int vec, uint64_t handler, uint64_t dpl)
{
	idt[vec * 2] = (handler & 0xffff) | ((uint64_t)SEL_KCODE << 16) | ((0x8eULL | dpl << 5) << 40) |
		       ((handler >> 16 & 0xffff) << 48);
	idt[vec * 2 + 1] = handler >> 32;
}

void cpu_init_tables(void)
{
	gdt[1] = 0x00af9a000000ffffULL;   /* kernel code */
	gdt[2] = 0x00cf92000000ffffULL;   /* kernel data */
	gdt[3] = 0x00cff2000000ffffULL;   /* user data (sysret: STAR base + 8) */
	gdt[4] = 0x00affa000000ffffULL;   /* user code (sysret: STAR base + 16) */
	for (int i = 0; i < MAX_CPUS; i++) {
		uint64_t b = (uint64_t)(uintptr_t)&tss[i], lim = sizeof(struct tss) - 1;

		tss[i].iomap_base = sizeof(struct tss);
		gdt[5 + 2 * i] = (lim & 0xffff) | ((b & 0xffffff) << 16) | (0x89ULL << 40) |
				 ((lim >> 16 & 0xf) << 48) | ((b >> 24 & 0xff) << 56);
		gdt[6 + 2 * i] = b >> 32;
	}
	for (int v = 0; v < 32; v++)
		idt_set(v, isr_table[v], 0);
	idt_set(VEC_TIMER, isr_table[32], 0);
	idt_set(VEC_DEVICE, isr_table[33], 0);
	idt_set(VEC_SPURIOUS, isr_table[34], 0);

}

static volatile uint32_t *lapic(uint32_t reg)
{
	return (volatile uint32_t *)(uintptr_t)(MINIVMM_LAPIC_BASE + reg);
}

void cpu_init_this(uint32_t idx)
{
	struct dtr g = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };
	struct dtr i = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	uint16_t tr = (uint16_t)(SEL_TSS0 + 16 * idx);

	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "mov %2, %%ss\n\t"
			 "xor %%eax, %%eax\n\t"
			 "mov %%eax, %%ds\n\t"
			 "mov %%eax, %%es\n\t"
			 "mov %%eax, %%fs\n\t"
			 "mov %%eax, %%gs\n\t"
			 "ltr %3\n\t"
			 "lidt %4"
			 : : "m"(g), "i"(SEL_KCODE), "r"(SEL_KDATA), "r"(tr), "m"(i) : "rax", "memory");
	percpu[idx].index = idx;
}

void cpu_set_rsp0(uint32_t idx, uint64_t rsp0)
{
	tss[idx].rsp[0] = rsp0;
}

/*
 * KVM's LAPIC timer counts at 1 GHz (APIC bus cycle 1 ns) before the
 * divider; we divide by 16.
 */
void lapic_timer_start(uint32_t hz)
{
	/* legacy PIC fully masked: everything comes through the IOAPIC */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	*lapic(LAPIC_TPR) = 0;
	*lapic(LAPIC_SVR) = 0x100 | VEC_SPURIOUS;
	*lapic(LAPIC_LVT_LINT0) = 0x10000;
	*lapic(LAPIC_LVT_LINT1) = 0x10000;
	*lapic(LAPIC_TIMER_DIV) = 0x3;
	*lapic(LAPIC_LVT_TIMER) = VEC_TIMER | (1u << 17);
	*lapic(LAPIC_TIMER_INIT) = 1000000000u / 16 / hz;
	tick_hz = hz;
}

void ioapic_route(uint32_t gsi, uint8_t vector, uint8_t apic_id)
{
	volatile uint32_t *sel = (volatile uint32_t *)(uintptr_t)MINIVMM_IOAPIC_BASE;
	volatile uint32_t *win = (volatile uint32_t *)(uintptr_t)(MINIVMM_IOAPIC_BASE + 0x10);

	/* edge-triggered, active high, fixed delivery, physical destination;
	 * the periodic tick also polls, so a lost edge only costs latency */
	*sel = 0x11 + 2 * gsi;
	*win = (uint32_t)apic_id << 24;
	*sel = 0x10 + 2 * gsi;
	*win = vector;
}

void idle_wait(void)
{
	__asm__ volatile("sti; hlt; cli" ::: "memory");
}

uint64_t tsc_to_ms(uint64_t tsc)
{
	return kinfo.tsc_khz ? tsc / kinfo.tsc_khz : 0;
}

static const char *const exc_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound",
	"#UD invalid opcode", "#NM no FPU", "#DF double fault", "coprocessor overrun",
	"#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved", "#MF x87 error", "#AC alignment check", "#MC machine check",
	"#XM SIMD error", "#VE virtualization", "#CP control protection", "reserved", "reserved",
	"reserved", "reserved", "reserved", "reserved", "#HV", "#VC", "#SX security", "reserved",
};

void isr_dispatch(struct frame *f)
{
	uint64_t vec = f->vector;

	if (vec == VEC_TIMER) {
		ticks++;
		*lapic(LAPIC_EOI) = 0;
		/* driver work only when we interrupted ring 3 or the idle loop,
		 * never a kernel path that holds driver state */
		drivers_poll(false);
		return;
	}
	if (vec == VEC_DEVICE) {
		*lapic(LAPIC_EOI) = 0;
		drivers_poll(true);
		return;
	}
	/*
	 * Syscalls are a ud2 executed in ring 3. The nested PVM hypervisor of
	 * the development machines reflects exceptions faithfully but not the
	 * usual gates: SYSCALL reached LSTAR still at CPL 3 (the fetch
	 * faulted), and INT n from ring 3 raised #UD.
	 */
	if (vec == 6 && (f->cs & 3) == 3 && *(const uint16_t *)(uintptr_t)f->rip == 0x0b0f) {
		f->rip += 2;
		f->rax = syscall_dispatch(f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->rax);
		return;
	}
	if (vec == VEC_SPURIOUS)
		return;
	kprintf("guest: exception vector=%lu (%s) error=0x%lx rip=0x%lx cr2=0x%lx cpu=%u %s\n",
		vec, vec < 32 ? exc_names[vec] : "?", f->error, f->rip, read_cr2(), cpu_index(),
		(f->cs & 3) ? "user" : "kernel");
	kprintf("guest: rsp=0x%lx rflags=0x%lx rax=0x%lx rbx=0x%lx rcx=0x%lx rdx=0x%lx rsi=0x%lx rdi=0x%lx\n",
		f->rsp, f->rflags, f->rax, f->rbx, f->rcx, f->rdx, f->rsi, f->rdi);
	machine_exit(EXIT_FAULT);
}
