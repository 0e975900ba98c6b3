/*
 * Booting a Linux kernel: a vmlinux (ELF, entered through its Xen PVH note
 * or its 64-bit entry) or a bzImage (its payload decompressed here, or the
 * classic path where the kernel's own decompressor runs), an initrd where
 * the boot protocol allows it, and the data the kernel reads at entry: the
 * command line, the e820 map, and the zero page or hvm_start_info. Inputs
 * are untrusted files; everything is placed through the checked GPA
 * translation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/boot.h"
#include "vmm/lib/size.h"

#define PVH_CMDLINE_MAX   2047          /* x86 COMMAND_LINE_SIZE less the NUL */
#define PVH_INITRD_MAX    0x7fffffffULL /* what 2.03+ kernels announce in initrd_addr_max */
#define PVH_MODLIST_GPA   (LINUX_START_INFO_GPA + 0x100)
#define PVH_MEMMAP_GPA    (LINUX_START_INFO_GPA + 0x200)

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint64_t low_end(const struct guest_mem *gm)
{
	return gm->regions[0].gpa + gm->regions[0].size;
}

enum boot_image_kind boot_image_kind(const uint8_t *buf, size_t len)
{
	if (bzimage_is(buf, len))
		return BOOT_IMAGE_BZIMAGE;
	if (len >= 4 && memcmp(buf, "\177ELF", 4) == 0)
		return elf_is_linux(buf, len) ? BOOT_IMAGE_VMLINUX : BOOT_IMAGE_OWN;
	return BOOT_IMAGE_UNKNOWN;
}

/* The kernel needs [lo, lo + size) of RAM below the hole; says so when not. */
static int linux_check_fits(const struct guest_mem *gm, uint64_t lo, uint64_t size,
			    char *err, size_t errlen)
{
	char have[32], want[32];

	if (mm_gpa_to_hva(gm, lo, size))
		return 0;
	snprintf(err, errlen, "the kernel does not fit: it needs RAM from 0x%llx to 0x%llx and --mem %s "
		 "gives low RAM up to 0x%llx; use at least --mem %s",
		 (unsigned long long)lo, (unsigned long long)(lo + size),
		 size_format(gm->ram_size, SIZE_FIXED2, have, sizeof(have)),
		 (unsigned long long)low_end(gm),
		 size_format(align_up(lo + size, 1 << 20) + (64ULL << 20), SIZE_FIXED2, want, sizeof(want)));
	return -ENOMEM;
}

/* An ELF vmlinux: segments at their physical addresses, then the entry. */
static int linux_load_vmlinux(struct guest_mem *gm, const uint8_t *buf, size_t len, bool pvh_ok,
			      struct linux_boot *lb, char *err, size_t errlen)
{
	struct elf_image img;
	uint64_t pvh = 0;
	int ret = elf_pvh_entry(buf, len, &pvh);

	if (ret < 0) {
		snprintf(err, errlen, "vmlinux is corrupt: a malformed ELF note");
		return ret;
	}
	if (ret == 1 && pvh_ok) {
		lb->entry_kind = LINUX_ENTRY_PVH;
		lb->entry = pvh;
	} else {
		lb->entry_kind = LINUX_ENTRY_64;
	}
	ret = elf_load(gm, buf, len, &img, err, errlen);
	if (ret)
		return ret;
	if (lb->entry_kind == LINUX_ENTRY_64)
		lb->entry = img.entry;
	if (lb->entry < img.lo || lb->entry >= img.hi) {
		snprintf(err, errlen, "vmlinux PVH entry 0x%llx is outside its loaded segments",
			 (unsigned long long)lb->entry);
		return -ENOEXEC;
	}
	lb->kernel_lo = img.lo;
	lb->kernel_hi = img.hi;
	return 0;
}

/* The classic path: the protected-mode kernel copied where it wants to run. */
static int linux_load_classic(struct guest_mem *gm, struct linux_boot *lb, char *err, size_t errlen)
{
	const struct linux_setup *s = &lb->setup;
	uint64_t at = s->relocatable ? align_up(s->pref_address, s->kernel_alignment) : LINUX_DEFAULT_LOAD;
	uint64_t need = s->init_size > s->pm_len ? s->init_size : s->pm_len;
	int ret = linux_check_fits(gm, at, need, err, errlen);

	if (ret)
		return ret;
	memcpy(mm_gpa_to_hva(gm, at, s->pm_len), s->pm, s->pm_len);
	mm_note_write(gm, at, s->pm_len);
	lb->kernel_lo = at;
	lb->kernel_hi = at + need;
	if (s->xloadflags & XLF_KERNEL_64) {
		lb->entry_kind = LINUX_ENTRY_64;
		lb->entry = at + 0x200;
	} else {
		lb->entry_kind = LINUX_ENTRY_32;
		lb->entry = at;
	}
	return 0;
}

static int linux_load_bzimage(struct guest_mem *gm, const uint8_t *buf, size_t len,
			      enum linux_decomp_mode mode, struct linux_boot *lb, char *err, size_t errlen)
{
	const struct linux_setup *s = &lb->setup;
	uint8_t *vmlinux;
	size_t vlen;
	int ret = bzimage_parse(buf, len, &lb->setup, err, errlen);

	if (ret)
		return ret;
	lb->has_setup = true;
	lb->initrd_max = s->initrd_addr_max;
	lb->cmdline_max = s->cmdline_size;
	lb->comp = linux_comp_detect(s->payload, s->payload_len);
	if (mode == LINUX_DECOMP_GUEST)
		return linux_load_classic(gm, lb, err, errlen);
	ret = linux_decompress(s->payload, s->payload_len, &vmlinux, &vlen, err, errlen);
	if (ret)
		return ret;
	if (vlen < 4 || memcmp(vmlinux, "\177ELF", 4) != 0) {
		snprintf(err, errlen, "bzImage payload is corrupt: it decompresses (%s) to something "
			 "that is not an ELF vmlinux", linux_comp_name(lb->comp));
		free(vmlinux);
		return -ENOEXEC;
	}
	ret = linux_load_vmlinux(gm, vmlinux, vlen, mode == LINUX_DECOMP_HOST, lb, err, errlen);
	free(vmlinux);
	if (ret)
		return ret;
	/* the kernel uses init_size bytes from where it runs (page tables, brk) */
	if (lb->kernel_lo + s->init_size > lb->kernel_hi) {
		ret = linux_check_fits(gm, lb->kernel_lo, s->init_size, err, errlen);
		lb->kernel_hi = lb->kernel_lo + s->init_size;
	}
	return ret;
}

int linux_load_kernel(struct guest_mem *gm, const uint8_t *buf, size_t len,
		      enum linux_decomp_mode mode, struct linux_boot *lb, char *err, size_t errlen)
{
	memset(lb, 0, sizeof(*lb));
	switch (boot_image_kind(buf, len)) {
	case BOOT_IMAGE_BZIMAGE:
		return linux_load_bzimage(gm, buf, len, mode, lb, err, errlen);
	case BOOT_IMAGE_VMLINUX:
		lb->initrd_max = PVH_INITRD_MAX;
		lb->cmdline_max = PVH_CMDLINE_MAX;
		return linux_load_vmlinux(gm, buf, len, mode != LINUX_DECOMP_HOST_ZEROPAGE, lb, err, errlen);
	default:
		snprintf(err, errlen, "image is neither a bzImage nor an ELF Linux kernel");
		return -ENOEXEC;
	}
}

int linux_load_initrd(struct guest_mem *gm, struct linux_boot *lb, const uint8_t *buf,
		      size_t len, char *err, size_t errlen)
{
	uint64_t top = low_end(gm), floor = align_up(lb->kernel_hi, 4096), at;
	char sz[32];

	/* initrd_addr_max is the last byte it may occupy */
	if (lb->initrd_max < top - 1)
		top = lb->initrd_max + 1;
	at = (top - (len < top ? len : top)) & ~4095ULL;
	if (len == 0 || len > top || at < floor) {
		snprintf(err, errlen, "the initrd (%s) does not fit between the kernel's end 0x%llx and 0x%llx "
			 "(%s): %s", size_format(len, SIZE_FIXED2, sz, sizeof(sz)),
			 (unsigned long long)floor, (unsigned long long)top,
			 top == low_end(gm) ? "the end of low RAM" : "the kernel's initrd_addr_max",
			 len == 0 ? "it is empty" : top == low_end(gm) ? "raise --mem" : "use a smaller initrd");
		return -ENOMEM;
	}
	memcpy(mm_gpa_to_hva(gm, at, len), buf, len);
	mm_note_write(gm, at, len);
	lb->initrd_gpa = at;
	lb->initrd_size = len;
	return 0;
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

/* The zero page: the image's own setup header (or a minimal one for a plain
 * vmlinux), the fields a boot loader must fill, and the e820 map. */
static void linux_zero_page(uint8_t *zp, const struct linux_boot *lb,
			    const struct e820_entry *map, int n)
{
	memset(zp, 0, BP_SIZE);
	if (lb->has_setup) {
		memcpy(zp + BP_HDR, lb->setup.hdr, lb->setup.hdr_len);
	} else {
		uint16_t flag = BOOT_FLAG_MAGIC, version = 0x020f;

		memcpy(zp + SETUP_BOOT_FLAG, &flag, 2);
		put32(zp, SETUP_HEADER, HDRS_MAGIC);
		memcpy(zp + SETUP_VERSION, &version, 2);
		zp[SETUP_LOADFLAGS] = LOADFLAG_LOADED_HIGH;
		put32(zp, SETUP_CMDLINE_SZ, lb->cmdline_max);
	}
	zp[SETUP_LOADER] = LOADER_UNDEFINED;
	if (lb->entry_kind == LINUX_ENTRY_32)
		put32(zp, SETUP_CODE32, (uint32_t)lb->entry);
	put32(zp, SETUP_CMDLINE, (uint32_t)LINUX_CMDLINE_GPA);
	put32(zp, SETUP_RD_IMAGE, (uint32_t)lb->initrd_gpa);
	put32(zp, BP_EXT_RD_IMAGE, (uint32_t)(lb->initrd_gpa >> 32));
	put32(zp, SETUP_RD_SIZE, (uint32_t)lb->initrd_size);
	put32(zp, BP_EXT_RD_SIZE, (uint32_t)(lb->initrd_size >> 32));
	memcpy(zp + BP_ACPI_RSDP, &lb->acpi_rsdp, 8);   /* saves the kernel its BIOS-area scan */
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + BP_E820_TABLE, map, (size_t)n * sizeof(*map));
}

/* hvm_start_info with its module list (the initrd) and memory map. */
static int linux_start_info(struct guest_mem *gm, const struct linux_boot *lb,
			    const struct e820_entry *map, int n)
{
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC, .version = 1,
		.nr_modules = lb->initrd_size ? 1 : 0,
		.modlist_paddr = lb->initrd_size ? PVH_MODLIST_GPA : 0,
		.cmdline_paddr = LINUX_CMDLINE_GPA,
		.rsdp_paddr = lb->acpi_rsdp,   /* PVH has no BIOS area to scan: this is how Linux finds ACPI */
		.memmap_paddr = PVH_MEMMAP_GPA, .memmap_entries = (uint32_t)n,
	};
	struct hvm_modlist_entry mod = { .paddr = lb->initrd_gpa, .size = lb->initrd_size };
	struct hvm_memmap_entry mm[BP_E820_MAX];
	int ret;

	for (int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_entry){ .addr = map[i].addr, .size = map[i].size, .type = map[i].type };
	ret = mm_write(gm, LINUX_START_INFO_GPA, &si, sizeof(si));
	if (!ret)
		ret = mm_write(gm, PVH_MODLIST_GPA, &mod, sizeof(mod));
	if (!ret)
		ret = mm_write(gm, PVH_MEMMAP_GPA, mm, (uint64_t)n * sizeof(mm[0]));
	return ret;
}

int linux_write_boot_data(struct guest_mem *gm, const struct linux_boot *lb, const char *cmdline,
			  uint64_t *arg, char *err, size_t errlen)
{
	struct e820_entry map[BP_E820_MAX];
	size_t clen = strlen(cmdline);
	int n = e820_build(gm, map, BP_E820_MAX), ret;

	if (clen > lb->cmdline_max || clen >= LINUX_CMDLINE_MAX) {
		snprintf(err, errlen, "the kernel command line is %zu bytes; this kernel takes at most %u "
			 "(shorten --append; minivmm adds virtio_mmio.device= for its devices)",
			 clen, lb->cmdline_max);
		return -E2BIG;
	}
	ret = mm_write(gm, LINUX_CMDLINE_GPA, cmdline, clen + 1);
	if (ret)
		return ret;
	if (lb->entry_kind == LINUX_ENTRY_PVH) {
		*arg = LINUX_START_INFO_GPA;
		return linux_start_info(gm, lb, map, n);
	}
	uint8_t *zp = mm_gpa_to_hva(gm, LINUX_ZERO_PAGE_GPA, BP_SIZE);
	if (!zp)
		return -EFAULT;
	linux_zero_page(zp, lb, map, n);
	mm_note_write(gm, LINUX_ZERO_PAGE_GPA, BP_SIZE);
	*arg = LINUX_ZERO_PAGE_GPA;
	return lb->entry_kind == LINUX_ENTRY_64 ? linux_write_pagetables(gm) : 0;
}
