/*
 * Ring-3 tasks: one per cpu, each with its own PML4. PML4[0] is shared by
 * all tasks: the kernel's identity map (supervisor only) with the user_*.c
 * code and data mapped U=1 at their load addresses. PML4[1] (512 GiB up)
 * is the task's heap, filled by SYS_MEM_ALLOC in 2 MiB chunks mapped with
 * the guest page size (2 MiB leaves, or a page table of 4 KiB entries).
 * Also the syscall dispatcher.
 */
#include "kernel.h"

#define USER_HEAP_BASE  (512ULL << 30)
#define USER_HEAP_END   (1024ULL << 30)
#define USER_STACK      SZ_2M

struct task {
	uint64_t pml4, heap_pdpt;
	uint64_t floor, brk;        /* heap: [floor, brk) holds the live allocations */
	uint64_t live;
};

extern char __user_start[], __user_data_start[], __user_end[];
extern void user_main(uint64_t arg);

static struct task tasks[MAX_CPUS];
static uint64_t user_low_pdpt;

static uint64_t *pt_alloc_zeroed(void)
{
	uint64_t pa = pmem_alloc_4k();

	if (!pa)
		return NULL;
	memset(phys(pa), 0, PAGE_SIZE);
	return phys(pa);
}

int task_global_init(void)
{
	uint64_t *kpml4 = phys(kinfo.boot_cr3), *kpdpt = phys(kpml4[0] & PTE_ADDR);
	uint64_t ustart = (uint64_t)(uintptr_t)__user_start, uend = (uint64_t)(uintptr_t)__user_end;
	uint64_t udata = (uint64_t)(uintptr_t)__user_data_start;
	uint64_t pdpt_pa = pmem_alloc_4k(), pd_pa = pmem_alloc_4k();
	uint64_t *pdpt = phys(pdpt_pa), *pd = phys(pd_pa);

	if (!pdpt_pa || !pd_pa)
		return -1;
	/* every entry below is written, so these tables need no zeroing */
	for (int i = 1; i < 512; i++)
		pdpt[i] = kpdpt[i];
	if (kpdpt[0] & PTE_PS) {
		for (uint64_t e = 0; e < 512; e++)
			pd[e] = (e << 21) | PTE_P | PTE_RW | PTE_PS;
	} else {
		uint64_t *kpd = phys(kpdpt[0] & PTE_ADDR);

		for (int e = 0; e < 512; e++)
			pd[e] = kpd[e];
	}
	for (uint64_t k = ustart / SZ_2M; k <= (uend - 1) / SZ_2M; k++) {
		uint64_t pt_pa = pmem_alloc_4k(), *pt = phys(pt_pa);

		if (!pt_pa || k >= 512)
			return -1;
		for (uint64_t j = 0; j < 512; j++) {
			uint64_t pa = k * SZ_2M + j * PAGE_SIZE, f = PTE_P | PTE_RW;

			if (pa >= ustart && pa < uend)
				f = PTE_P | PTE_U | (pa >= udata ? PTE_RW : 0);
			pt[j] = pa | f;
		}
		pd[k] = pt_pa | PTE_P | PTE_RW | PTE_U;
	}
	pdpt[0] = pd_pa | PTE_P | PTE_RW | PTE_U;
	user_low_pdpt = pdpt_pa;
	return 0;
}

static uint64_t *heap_pd(struct task *t, uint64_t va, bool create)
{
	uint64_t *pdpt = phys(t->heap_pdpt), i = (va >> 30) & 511;

	if (!(pdpt[i] & PTE_P)) {
		uint64_t *pd;

		if (!create || !(pd = pt_alloc_zeroed()))
			return NULL;
		pdpt[i] = (uint64_t)(uintptr_t)pd | PTE_P | PTE_RW | PTE_U;
	}
	return phys(pdpt[i] & PTE_ADDR);
}

static int map_chunk(struct task *t, uint64_t va)
{
	uint64_t *pd = heap_pd(t, va, true), k = (va >> 21) & 511, pa = 0, pt_pa, *pt;

	if (!pd)
		return -1;
	if (kinfo.page_size >= SZ_2M) {
		pa = pmem_alloc_2m();
		if (pa) {
			pd[k] = pa | PTE_P | PTE_RW | PTE_U | PTE_PS;
			gcount.user_allocs_2m++;
			return 0;
		}
	}
	pt_pa = pmem_alloc_4k();
	if (!pt_pa)
		return -1;
	pt = phys(pt_pa);
	if (kinfo.page_size < SZ_2M)
		pa = pmem_alloc_2m();
	if (pa) {
		for (uint64_t j = 0; j < 512; j++)
			pt[j] = (pa + j * PAGE_SIZE) | PTE_P | PTE_RW | PTE_U;
		pt[0] |= PTE_BLOCK;
	} else {
		uint32_t got = pmem_alloc_4k_many(pt, 512, PTE_P | PTE_RW | PTE_U);

		if (got < 512) {
			pmem_free_list(pt, got);
			pmem_free_4k(pt_pa);
			return -1;
		}
		gcount.user_allocs_4k++;
	}
	pd[k] = pt_pa | PTE_P | PTE_RW | PTE_U;
	return 0;
}

static void unmap_chunk(struct task *t, uint64_t va)
{
	uint64_t *pd = heap_pd(t, va, false), k = (va >> 21) & 511, e;

	if (!pd || !((e = pd[k]) & PTE_P))
		return;
	pd[k] = 0;
	if (e & PTE_PS) {
		pmem_free_2m(e & PTE_ADDR);
	} else {
		uint64_t *pt = phys(e & PTE_ADDR);

		if (pt[0] & PTE_BLOCK)
			pmem_free_2m(pt[0] & PTE_ADDR);
		else
			pmem_free_list(pt, 512);
		pmem_free_4k(e & PTE_ADDR);
	}
}

/* showmap: how a heap chunk is mapped, as the translation inspector must see it */
static void show_chunk(struct task *t, uint64_t va)
{
	uint64_t *pd = heap_pd(t, va, false), e = pd ? pd[(va >> 21) & 511] : 0;

	if (e & PTE_PS) {
		kprintf("map: va=0x%lx pa=0x%lx page=2M\n", va, (uint64_t)(e & PTE_ADDR));
	} else if (e & PTE_P) {
		uint64_t *pt = phys(e & PTE_ADDR);

		kprintf("map: va=0x%lx pa=0x%lx page=4K pt=0x%lx%s\n", va, (uint64_t)(pt[0] & PTE_ADDR),
			(uint64_t)(e & PTE_ADDR),
			(pt[0] & PTE_BLOCK) ? " block" : "");
	}
}

static uint64_t mem_alloc(struct task *t, uint64_t bytes)
{
	uint64_t n = (bytes + SZ_2M - 1) / SZ_2M, va = t->brk;

	if (!bytes || n > (USER_HEAP_END - t->brk) / SZ_2M)
		return 0;
	for (int attempt = 0;; attempt++) {
		uint64_t i;

		for (i = 0; i < n; i++)
			if (map_chunk(t, va + i * SZ_2M) < 0)
				break;
		if (i == n)
			break;
		while (i--)
			unmap_chunk(t, va + i * SZ_2M);
		write_cr3(t->pml4);
		/* deflate-on-oom: take pages back from the balloon and retry */
		gcount.alloc_stalls++;
		if (attempt >= 8 || !drivers_reclaim(n * 513 + 64))
			return 0;
	}
	if (kinfo.showmap)
		for (uint64_t i = 0; i < n; i++)
			show_chunk(t, va + i * SZ_2M);
	t->brk += n * SZ_2M;
	t->live++;
	return va;
}

static int mem_free(struct task *t, uint64_t va, uint64_t bytes)
{
	uint64_t n = (bytes + SZ_2M - 1) / SZ_2M;

	if (va % SZ_2M || va < t->floor || !n || n > (t->brk - va) / SZ_2M || !t->live)
		return -1;
	for (uint64_t i = 0; i < n; i++)
		unmap_chunk(t, va + i * SZ_2M);
	write_cr3(t->pml4);
	if (--t->live == 0)
		t->brk = t->floor;
	else if (va + n * SZ_2M == t->brk)
		t->brk = va;
	return 0;
}

static void sleep_ms(uint64_t ms)
{
	uint64_t khz = kinfo.tsc_khz ? kinfo.tsc_khz : 1000000, end = rdtsc() + ms * khz;

	while (rdtsc() < end) {
		if (tick_hz && cpu_index() == 0)
			idle_wait();
		else
			cpu_relax();
	}
}

static bool user_range_ok(struct task *t, uint64_t p, uint64_t len)
{
	uint64_t us = (uint64_t)(uintptr_t)__user_start, ue = (uint64_t)(uintptr_t)__user_end;

	if (p + len < p)
		return false;
	return (p >= us && p + len <= ue) || (p >= USER_HEAP_BASE && p + len <= t->brk);
}

uint64_t syscall_dispatch(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t nr)
{
	uint32_t cpu = cpu_index();
	struct task *t = &tasks[cpu];

	(void)a3;
	(void)a4;
	(void)a5;
	switch (nr) {
	case SYS_EXIT:
		task_leave(percpu[cpu].task_save, a1 & 0xff);
	case SYS_WRITE:
		if (a2 > 4096 || !user_range_ok(t, a1, a2))
			return (uint64_t)-1;
		console_write((const char *)(uintptr_t)a1, a2);
		return a2;
	case SYS_MEM_ALLOC:
		return mem_alloc(t, a1);
	case SYS_MEM_FREE:
		return (uint64_t)(int64_t)mem_free(t, a1, a2);
	case SYS_SLEEP_MS:
		sleep_ms(a1);
		return 0;
	case SYS_YIELD:
		return 0;
	case SYS_MEMINFO: {
		struct pmem_stats st;

		pmem_get_stats(&st);
		return st.free_pages * PAGE_SIZE;
	}
	default:
		return (uint64_t)-1;
	}
}

int task_run(uint32_t cpu, uint64_t arg)
{
	struct task *t = &tasks[cpu];
	uint64_t *pml4 = pt_alloc_zeroed(), *pdpt = pt_alloc_zeroed(), stack, sp;
	int status;

	if (!pml4 || !pdpt)
		return EXIT_NOMEM;
	pml4[0] = user_low_pdpt | PTE_P | PTE_RW | PTE_U;
	pml4[1] = (uint64_t)(uintptr_t)pdpt | PTE_P | PTE_RW | PTE_U;
	t->pml4 = (uint64_t)(uintptr_t)pml4;
	t->heap_pdpt = (uint64_t)(uintptr_t)pdpt;
	t->brk = t->floor = USER_HEAP_BASE;
	t->live = 0;
	write_cr3(t->pml4);
	stack = mem_alloc(t, USER_STACK);
	if (!stack) {
		write_cr3(kinfo.boot_cr3);
		return EXIT_NOMEM;
	}
	t->floor = t->brk;
	t->live = 0;
	percpu[cpu].task = t;
	/* syscalls and interrupts from ring 3 run below this frame */
	__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
	cpu_set_rsp0(cpu, (sp - 512) & ~15ULL);
	status = (int)task_enter(&percpu[cpu].task_save, (uint64_t)(uintptr_t)user_main,
				 stack + USER_STACK - 8, arg);
	write_cr3(kinfo.boot_cr3);
	percpu[cpu].task = NULL;
	return status;
}
