/*
 * Guest kernel internals: CPU helpers, console, physical memory, tasks,
 * timer and the driver hooks. Ring 0 of this guest is instruction-emulated
 * on the development machines (about 1 us per instruction), so everything
 * here avoids per-byte and per-page loops where a bulk operation works.
 */
#ifndef GUEST_KERNEL_H
#define GUEST_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/boot/bootinfo.h"
#include "kconfig.h"
#include "uapi.h"

#define PAGE_SIZE   4096ULL
#define SZ_2M       (2ULL << 20)
#define SZ_1G       (1ULL << 30)
#define PTE_P       0x1ULL
#define PTE_RW      0x2ULL
#define PTE_U       0x4ULL
#define PTE_PS      0x80ULL
#define PTE_BLOCK   0x200ULL            /* software bit: PT maps one contiguous 2 MiB block */
#define PTE_ADDR    0x000ffffffffff000ULL
#define PMEM_MAX_GPA (64ULL << 30)       /* RAM above this is ignored */

/* exit statuses */
#define EXIT_OK       0
#define EXIT_VERIFY   1
#define EXIT_PARAM    2
#define EXIT_FAULT    3
#define EXIT_NOMEM    4

/* ---- CPU ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t read_cr2(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}
static inline uint64_t read_cr3(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}
static inline void write_cr3(uint64_t v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline uint64_t *phys(uint64_t pa) { return (uint64_t *)(uintptr_t)pa; }  /* identity map */

typedef struct { volatile uint32_t v; } spinlock_t;
static inline void spin_lock(spinlock_t *l)
{
	while (__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE))
		while (l->v)
			cpu_relax();
}
static inline bool spin_trylock(spinlock_t *l) { return !__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE); }
static inline void spin_unlock(spinlock_t *l) { __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE); }

struct task;
struct percpu {
	uint64_t task_save;     /* kernel rsp to return to when the task exits */
	struct task *task;
	uint32_t index;
};
extern struct percpu percpu[MAX_CPUS];
extern uint8_t kstacks[MAX_CPUS][KSTACK_SIZE];

/* This cpu's index, from which kernel stack we run on (no memory access). */
static inline uint32_t cpu_index(void)
{
	uint64_t sp;
	__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
	return (uint32_t)((sp - (uint64_t)(uintptr_t)kstacks) >> KSTACK_SHIFT);
}

struct kinfo {                  /* boot info copied once by cpu 0 */
	uint32_t nr_cpus;
	uint32_t page_size;
	uint64_t ram_size;
	uint64_t tsc_khz;
	uint64_t boot_cr3;
	uint64_t kernel_start, kernel_end;
	uint32_t showmap;       /* print each heap chunk's mapping (showmap): tests compare it
	                         * with what the VMM's translation inspector reads */
};
extern struct kinfo kinfo;

/* ---- console.c ---- */
void console_write(const char *s, size_t n);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
size_t ksnprintf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
__attribute__((noreturn)) void machine_exit(int status);
/* ACPI power-off (S5) or reset through the tables minivmm wrote (acpi.c); never returns. */
__attribute__((noreturn)) void acpi_leave(bool reset);

/* ---- cpu.c ---- */
void cpu_init_tables(void);             /* cpu 0, once: GDT, TSS descriptors, IDT */
void cpu_init_this(uint32_t idx);       /* every cpu: load GDT, TSS, IDT */
void cpu_set_rsp0(uint32_t idx, uint64_t rsp0);
void lapic_timer_start(uint32_t hz);    /* this cpu, periodic */
void ioapic_route(uint32_t gsi, uint8_t vector, uint8_t apic_id);
void idle_wait(void);                   /* sti; hlt; cli */
extern volatile uint64_t ticks;
extern uint32_t tick_hz;
uint64_t tsc_to_ms(uint64_t tsc);

/* ---- pmem.c ---- */
int pmem_init(const struct bootinfo *bi);
uint64_t pmem_alloc_2m(void);                   /* 0 if none */
uint64_t pmem_alloc_4k(void);                   /* 0 if none */
/* Allocates up to n 4 KiB pages, storing addr | flags in out[]; returns the count. */
uint32_t pmem_alloc_4k_many(uint64_t *out, uint32_t n, uint64_t flags);
void pmem_free_2m(uint64_t pa);
void pmem_free_4k(uint64_t pa);
void pmem_free_run(uint64_t pa, uint64_t npages);   /* contiguous pages */
void pmem_free_list(const uint64_t *ents, uint32_t n); /* page-table entries with P set */
/* Free page reporting: take up to max free 2 MiB blocks freed since their last report. */
uint32_t pmem_take_unreported(uint64_t *out, uint32_t max);
void pmem_return_reported(uint64_t pa);
struct pmem_stats {
	uint64_t total_pages, free_pages, free_2m_blocks;
	uint64_t alloc_2m, alloc_2m_fail;
};
void pmem_get_stats(struct pmem_stats *st);
uint64_t pmem_max_pfn(void);

/* ---- task.c ---- */
int task_global_init(void);             /* shared user mappings; cpu 0 */
int task_run(uint32_t cpu, uint64_t arg);   /* runs the user workload; returns exit status */
uint64_t syscall_dispatch(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t nr);

/* ---- entry.S ---- */
uint64_t task_enter(uint64_t *save, uint64_t rip, uint64_t rsp, uint64_t arg);  /* returns the exit status */
__attribute__((noreturn)) void task_leave(uint64_t save, uint64_t status);
extern const uint64_t isr_table[];

/* ---- drivers (balloon.c / virtio_mmio.c) ---- */
void drivers_init(const struct bootinfo *bi);
void drivers_poll(bool from_irq);       /* cpu 0: interrupt or tick */
bool drivers_present(void);
/* Allocation failed: get npages back from the balloon (deflate-on-oom). Returns pages freed. */
uint64_t drivers_reclaim(uint64_t npages);
struct guest_counters {
	uint64_t oom_deflates, alloc_stalls, user_allocs_2m, user_allocs_4k;
};
extern struct guest_counters gcount;

/* ---- misc ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
