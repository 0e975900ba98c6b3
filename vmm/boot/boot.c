/*
 * Boot setup for a VM: the image loaded by its kind, then the state the
 * vCPUs start on. For the own guest: the identity page tables (leaf size
 * chosen by --guest-pages), the flat GDT, and the boot info the guest reads
 * (vmm/boot/bootinfo.h); page tables live at the top of RAM below the
 * 32-bit hole and are reported to the guest as reserved. For Linux: kernel,
 * initrd and boot data (linux.c), Linux's boot GDT, the MP table, the PIT.
 * Both get the ACPI tables (acpi.c): they are how a guest powers off.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/boot.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"
#include "vmm/lib/size.h"

#define GDT_CODE64 0x00af9a000000ffffULL   /* DPL 0, present, 64-bit */
#define GDT_CODE32 0x00cf9a000000ffffULL   /* DPL 0, present, 32-bit, 4 GiB */
#define GDT_DATA   0x00cf92000000ffffULL

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

static int boot_setup_own(struct vm *vm, char *err, size_t errlen);

int boot_setup(struct vm *vm, char *err, size_t errlen)
{
	if (vm->entry_mode != VCPU_ENTRY_OWN)
		return 0;   /* boot_load_linux() wrote everything Linux reads */
	return boot_setup_own(vm, err, errlen);
}

static int boot_setup_own(struct vm *vm, char *err, size_t errlen)
{
	struct guest_mem *gm = &vm->mem;
	const struct mm_region *low = &gm->regions[0];
	uint64_t leaf = vm->cfg.guest_page_size;
	uint64_t pt_size = boot_pagetable_size(gm, leaf);
	uint64_t pt_base, need, rsdp;
	struct bootinfo *bi;
	uint64_t *gdt;
	int ret;

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

	/* the own guest finds the power-off and reset registers the way an OS
	 * does, through the RSDP in the BIOS area (its workload=poweroff) */
	ret = acpi_write_tables(gm, vm->cfg.nr_cpus, &rsdp);
	if (ret) {
		snprintf(err, errlen, "cannot write the ACPI tables: %s", strerror(-ret));
		return ret;
	}

	gdt = mm_gpa_to_hva(gm, BOOT_GDT_GPA, 3 * 8);
	gdt[0] = 0;
	gdt[1] = GDT_CODE64;
	gdt[2] = GDT_DATA;

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

	ret = boot_cmdline(vm, bi->cmdline, sizeof(bi->cmdline));
	if (ret) {
		snprintf(err, errlen, "--append is too long: the guest command line holds %d bytes",
			 BOOTINFO_CMDLINE_MAX - 1);
		return ret;
	}
	snprintf(vm->cmdline, sizeof(vm->cmdline), "%s", bi->cmdline);
	return 0;
}

int boot_cmdline(const struct vm *vm, char *buf, size_t size)
{
	/* the user's command line, then the devices in Linux's virtio_mmio form */
	size_t len = (size_t)snprintf(buf, size, "%s", vm->cfg.append ? vm->cfg.append : "");

	for (int i = 0; i < vm->nr_devs && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%svirtio_mmio.device=%lluK@0x%llx:%u",
					len ? " " : "", (unsigned long long)(vm->devs[i].size >> 10),
					(unsigned long long)vm->devs[i].base, vm->devs[i].irq);
	return len < size ? 0 : -E2BIG;
}

/* ---- Linux ---- */

static const char *const entry_names[] = {
	[LINUX_ENTRY_PVH] = "its PVH entry (32-bit, hvm_start_info)",
	[LINUX_ENTRY_64] = "its 64-bit entry (zero page)",
	[LINUX_ENTRY_32] = "its 32-bit entry (zero page)",
};

static int boot_linux_initrd(struct vm *vm, struct linux_boot *lb, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int ret;

	if (!vm->cfg.initrd)
		return 0;
	ret = read_file_as(vm->cfg.initrd, "initrd", &buf, &len, err, errlen);
	if (ret)
		return ret;
	ret = linux_load_initrd(&vm->mem, lb, buf, len, err, errlen);
	free(buf);
	return ret;
}

/* Linux's boot GDT: __BOOT_CS (0x10) in the entry's mode, __BOOT_DS (0x18). */
static int boot_linux_gdt(struct vm *vm, bool long_mode)
{
	uint64_t gdt[4] = { 0, 0, long_mode ? GDT_CODE64 : GDT_CODE32, GDT_DATA };

	return mm_write(&vm->mem, BOOT_GDT_GPA, gdt, sizeof(gdt));
}

/* The machine Linux expects around it: the MP table and the PIT. The MP
 * table stays beside the ACPI tables: a kernel booted with acpi=off (or
 * built without ACPI) finds the CPUs and the IOAPIC there; an ACPI kernel
 * takes them from the MADT, which describes the same machine. */
static int boot_linux_machine(struct vm *vm, char *err, size_t errlen)
{
	uint32_t sig = 0, features = 0;
	int ret;

	kvm_cpuid_leaf1(vm->kvm_fd, &sig, &features);
	ret = mptable_write(&vm->mem, vm->cfg.nr_cpus, sig, features);
	if (!ret)
		ret = kvm_vm_create_pit(vm);
	if (ret)
		snprintf(err, errlen, "cannot set up the MP table and PIT for Linux: %s", strerror(-ret));
	return ret;
}

/* What Linux will print as its "BIOS-e820:" lines, for the log and the tests. */
static void boot_log_e820(const struct vm *vm)
{
	struct e820_entry map[BP_E820_MAX];
	int n = e820_build(&vm->mem, map, BP_E820_MAX);

	for (int i = 0; i < n; i++)
		log_info("boot", "e820: [mem 0x%016llx-0x%016llx] %s", (unsigned long long)map[i].addr,
			 (unsigned long long)(map[i].addr + map[i].size - 1),
			 map[i].type == E820_RAM ? "usable" : "reserved");
}

static int boot_load_linux(struct vm *vm, char *err, size_t errlen)
{
	static const int modes[] = { [LINUX_ENTRY_PVH] = VCPU_ENTRY_PVH,
		[LINUX_ENTRY_64] = VCPU_ENTRY_LINUX64, [LINUX_ENTRY_32] = VCPU_ENTRY_LINUX32 };
	char *cmdline = malloc(LINUX_CMDLINE_MAX);
	struct linux_boot lb;
	int ret;

	if (!cmdline)
		return -ENOMEM;
	ret = linux_load_kernel(&vm->mem, vm->cfg.image_buf, vm->cfg.image_len,
				(enum linux_decomp_mode)vm->cfg.bzimage_decompress, &lb, err, errlen);
	if (!ret)
		ret = boot_linux_initrd(vm, &lb, err, errlen);
	if (!ret && boot_cmdline(vm, cmdline, LINUX_CMDLINE_MAX))
		ret = -E2BIG;
	if (!ret && (ret = acpi_write_tables(&vm->mem, vm->cfg.nr_cpus, &lb.acpi_rsdp)) != 0)
		snprintf(err, errlen, "cannot write the ACPI tables: %s", strerror(-ret));
	if (!ret)
		ret = linux_write_boot_data(&vm->mem, &lb, cmdline, &vm->entry_arg, err, errlen);
	if (!ret)
		ret = boot_linux_gdt(vm, lb.entry_kind == LINUX_ENTRY_64);
	if (!ret)
		ret = boot_linux_machine(vm, err, errlen);
	if (!ret) {
		snprintf(vm->cmdline, sizeof(vm->cmdline), "%s", cmdline);
		vm->entry_mode = modes[lb.entry_kind];
		vm->entry = lb.entry;
		vm->pml4_gpa = LINUX_PT_GPA;
		vm->kernel_start = lb.kernel_lo;
		vm->kernel_end = lb.kernel_hi;
		log_info("boot", "Linux %s%s%s, entered at 0x%llx through %s",
			 lb.has_setup ? "bzImage, payload " : "vmlinux", lb.has_setup ? linux_comp_name(lb.comp) : "",
			 !lb.has_setup ? "" : vm->cfg.bzimage_decompress == LINUX_DECOMP_GUEST ?
			 " decompressed by the kernel" : " decompressed on the host",
			 (unsigned long long)lb.entry, entry_names[lb.entry_kind]);
		if (lb.initrd_size)
			log_info("boot", "initrd %llu bytes at 0x%llx", (unsigned long long)lb.initrd_size,
				 (unsigned long long)lb.initrd_gpa);
		boot_log_e820(vm);
	}
	free(cmdline);
	return ret;
}

int boot_load(struct vm *vm, char *err, size_t errlen)
{
	const struct vm_config *cfg = &vm->cfg;
	enum boot_image_kind kind = boot_image_kind(cfg->image_buf, cfg->image_len);
	struct elf_image img;
	int ret;

	if (kind == BOOT_IMAGE_VMLINUX || kind == BOOT_IMAGE_BZIMAGE)
		return boot_load_linux(vm, err, errlen);
	if (cfg->initrd) {
		snprintf(err, errlen, "--initrd is for Linux kernels, and %s is not one", cfg->image);
		return -EINVAL;
	}
	ret = elf_load(&vm->mem, cfg->image_buf, cfg->image_len, &img, err, errlen);
	if (ret)
		return ret;
	vm->entry_mode = VCPU_ENTRY_OWN;
	vm->entry = img.entry;
	vm->kernel_start = img.lo;
	vm->kernel_end = img.hi;
	return 0;
}
