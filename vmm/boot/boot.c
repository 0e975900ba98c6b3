/*
 * Boot setup: the identity page tables the vCPUs start on (leaf size chosen
 * by --guest-pages), the flat GDT, and the boot info the guest reads
 * (vmm/boot/bootinfo.h). Page tables live at the top of RAM below the 32-bit
 * hole and are reported to the guest as reserved.
 */
#include <errno.h>
#include <string.h>

#include "vmm/boot/boot.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/size.h"

#define PTE_P   0x1ULL
#define PTE_RW  0x2ULL
#define PTE_PS  0x80ULL
#define SZ_2M   (2ULL << 20)
#define SZ_1G   (1ULL << 30)
#define SZ_512G (512ULL << 30)
#define MIN_FREE_RAM (4ULL << 20)   /* what the guest needs beyond its image to run */

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* End of the identity map: all RAM and the whole low 4 GiB (MMIO hole, APICs). */
static uint64_t map_top(const struct guest_mem *gm)
{
	const struct mm_region *last = &gm->regions[gm->nr_regions - 1];
	uint64_t top = last->gpa + last->size;

	return align_up(top > (4ULL << 30) ? top : (4ULL << 30), SZ_1G);
}

/* Does [a, a+len) contain guest RAM? Leaf 4K is only spent on RAM. */
static bool has_ram(const struct guest_mem *gm, uint64_t a, uint64_t len)
{
	for (int i = 0; i < gm->nr_regions; i++) {
		const struct mm_region *r = &gm->regions[i];

		if (a < r->gpa + r->size && r->gpa < a + len)
			return true;
	}
	return false;
}

uint64_t boot_pagetable_size(const struct guest_mem *gm, uint64_t leaf)
{
	uint64_t top = map_top(gm), pages = 1;  /* PML4 */

	pages += align_up(top, SZ_512G) / SZ_512G;          /* PDPTs */
	if (leaf == SZ_1G)
		return pages * 4096;
	pages += top / SZ_1G;                               /* PDs */
	if (leaf == 4096) {
		for (uint64_t a = 0; a < top; a += SZ_2M)
			if (has_ram(gm, a, SZ_2M))
				pages++;                    /* PTs */
	}
	return pages * 4096;
}

/* Builds the tables in guest memory at base (zeroed by the caller). */
static void build_pagetables(struct vm *vm, uint64_t base, uint64_t leaf)
{
	struct guest_mem *gm = &vm->mem;
	uint64_t top = map_top(gm), next = base;
	uint64_t *pml4, *pdpt = NULL, *pd = NULL;

	pml4 = mm_gpa_to_hva(gm, next, 4096);
	next += 4096;
	for (uint64_t a = 0; a < top; a += SZ_2M) {
		if (a % SZ_512G == 0) {
			pdpt = mm_gpa_to_hva(gm, next, 4096);
			pml4[a / SZ_512G] = next | PTE_P | PTE_RW;
			next += 4096;
		}
		if (leaf == SZ_1G) {
			if (a % SZ_1G == 0)
				pdpt[(a / SZ_1G) % 512] = a | PTE_P | PTE_RW | PTE_PS;
			continue;
		}
		if (a % SZ_1G == 0) {
			pd = mm_gpa_to_hva(gm, next, 4096);
			pdpt[(a / SZ_1G) % 512] = next | PTE_P | PTE_RW;
			next += 4096;
		}
		if (leaf == 4096 && has_ram(gm, a, SZ_2M)) {
			uint64_t *pt = mm_gpa_to_hva(gm, next, 4096);

			pd[(a / SZ_2M) % 512] = next | PTE_P | PTE_RW;
			next += 4096;
			for (int i = 0; i < 512; i++)
				pt[i] = (a + (uint64_t)i * 4096) | PTE_P | PTE_RW;
		} else {
			pd[(a / SZ_2M) % 512] = a | PTE_P | PTE_RW | PTE_PS;
		}
	}
}

static void add_mem(struct bootinfo *bi, uint64_t addr, uint64_t size, uint32_t type)
{
	if (size == 0 || bi->nr_mem >= BOOTINFO_MAX_MEM)
		return;
	bi->mem[bi->nr_mem++] = (struct bootinfo_mem){ .addr = addr, .size = size, .type = type };
}

int boot_setup(struct vm *vm, char *err, size_t errlen)
{
	struct guest_mem *gm = &vm->mem;
	const struct mm_region *low = &gm->regions[0];
	uint64_t leaf = vm->cfg.guest_page_size;
	uint64_t pt_size = boot_pagetable_size(gm, leaf);
	uint64_t pt_base, need;
	struct bootinfo *bi;
	uint64_t *gdt;
	size_t len;

	/* tables at the top of low RAM, 2 MiB aligned so they never share a
	 * guest huge page with memory the guest allocates */
	pt_base = (low->gpa + low->size - pt_size) & ~(SZ_2M - 1);
	need = align_up(vm->kernel_end, SZ_2M) + align_up(pt_size, SZ_2M) + MIN_FREE_RAM;
	if (low->size < need || pt_base < vm->kernel_end) {
		char have[32], want[32];

		snprintf(err, errlen, "--mem %s is too small for this image: it needs at least %s",
			 size_format(gm->ram_size, SIZE_FIXED2, have, sizeof(have)), size_format(need, SIZE_FIXED2, want, sizeof(want)));
		return -ENOMEM;
	}
	memset(mm_gpa_to_hva(gm, pt_base, pt_size), 0, pt_size);
	build_pagetables(vm, pt_base, leaf);
	vm->pml4_gpa = pt_base;

	gdt = mm_gpa_to_hva(gm, BOOT_GDT_GPA, 3 * 8);
	gdt[0] = 0;
	gdt[1] = 0x00af9a000000ffffULL;   /* 64-bit code, DPL 0 */
	gdt[2] = 0x00cf92000000ffffULL;   /* data, DPL 0 */

	bi = mm_gpa_to_hva(gm, BOOTINFO_GPA, sizeof(*bi));
	memset(bi, 0, sizeof(*bi));
	bi->magic = BOOTINFO_MAGIC;
	bi->version = BOOTINFO_VERSION;
	bi->size = sizeof(*bi);
	bi->nr_cpus = (uint32_t)vm->nr_cpus;
	bi->guest_page_size = (uint32_t)leaf;
	bi->pml4_gpa = pt_base;
	bi->ram_size = gm->ram_size;
	bi->tsc_khz = vm->tsc_khz;
	bi->kernel_start = vm->kernel_start;
	bi->kernel_end = vm->kernel_end;
	/* the first MiB holds the GDT and boot info; the allocator never sees it */
	add_mem(bi, 0, MINIVMM_KERNEL_BASE, BOOTINFO_MEM_RESERVED);
	add_mem(bi, MINIVMM_KERNEL_BASE, pt_base - MINIVMM_KERNEL_BASE, BOOTINFO_MEM_RAM);
	add_mem(bi, pt_base, low->gpa + low->size - pt_base, BOOTINFO_MEM_RESERVED);
	for (int i = 1; i < gm->nr_regions; i++)
		add_mem(bi, gm->regions[i].gpa, gm->regions[i].size, BOOTINFO_MEM_RAM);

	bi->nr_dev = (uint32_t)vm->nr_devs;
	memcpy(bi->dev, vm->devs, sizeof(vm->devs[0]) * (size_t)vm->nr_devs);

	/* the user's command line, then the devices in Linux's virtio_mmio form */
	len = (size_t)snprintf(bi->cmdline, sizeof(bi->cmdline), "%s", vm->cfg.append ? vm->cfg.append : "");
	for (int i = 0; i < vm->nr_devs && len < sizeof(bi->cmdline); i++)
		len += (size_t)snprintf(bi->cmdline + len, sizeof(bi->cmdline) - len,
					"%svirtio_mmio.device=%lluK@0x%llx:%u", len ? " " : "",
					(unsigned long long)(vm->devs[i].size >> 10),
					(unsigned long long)vm->devs[i].base, vm->devs[i].irq);
	if (len >= sizeof(bi->cmdline)) {
		snprintf(err, errlen, "--append is too long: the guest command line holds %d bytes",
			 BOOTINFO_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	snprintf(vm->cmdline, sizeof(vm->cmdline), "%s", bi->cmdline);
	return 0;
}
