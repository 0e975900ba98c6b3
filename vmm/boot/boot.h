/*
 * boot: getting the guest's first instruction to run. The image kind is
 * told by content: the project's own ELF guest (loader.c, boot.c: identity
 * page tables, the flat GDT and the boot info of bootinfo.h), an ELF
 * vmlinux with a Xen PVH entry note, or a bzImage (bzimage.c: the setup
 * header; decompress.c: its payload on the host; linux.c: kernel, initrd,
 * zero page or hvm_start_info; tables.c: e820 and the MP table; acpi.c: the
 * ACPI tables every guest gets). The Linux ABIs are in linux_abi.h, the
 * ACPI tables' layout in acpi_abi.h. Set-up only, on the main thread.
 */
#ifndef MINIVMM_BOOT_H
#define MINIVMM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mm/mm.h"
#include "vmm/boot/acpi_abi.h"
#include "vmm/boot/bootinfo.h"
#include "vmm/boot/linux_abi.h"

struct vm;

/* ---- loader (loader.c) ---- */

struct elf_image {
	uint64_t entry;
	uint64_t lo, hi;          /* lowest / highest GPA written */
};
/* Loads an ELF64 x86-64 image from a buffer into guest RAM; every header and
 * segment bound is checked. err gets a one-line message. */
int elf_load(struct guest_mem *gm, const uint8_t *buf, size_t len,
	     struct elf_image *img, char *err, size_t errlen);
/* Reads a whole file (image) into memory. */
int read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen);
/* The same, naming the file as `what` ("initrd") in messages. */
int read_file_as(const char *path, const char *what, uint8_t **buf, size_t *len,
		 char *err, size_t errlen);

/* Finds the PVH entry (XEN_ELFNOTE_PHYS32_ENTRY) among an ELF image's notes:
 * 1 and *entry set, 0 when there is none, -ENOEXEC on a malformed note. */
int elf_pvh_entry(const uint8_t *buf, size_t len, uint64_t *entry);
/* Whether an ELF image is a Linux kernel (a "Linux" or "Xen" ELF note). */
bool elf_is_linux(const uint8_t *buf, size_t len);

/* ---- image kinds ---- */

enum boot_image_kind {
	BOOT_IMAGE_UNKNOWN,
	BOOT_IMAGE_OWN,          /* the project's guest: bootinfo.h contract */
	BOOT_IMAGE_VMLINUX,      /* an ELF Linux kernel */
	BOOT_IMAGE_BZIMAGE,      /* x86 boot protocol */
};
enum boot_image_kind boot_image_kind(const uint8_t *buf, size_t len);

/* ---- bzImage (bzimage.c) ---- */

struct linux_setup {
	uint16_t version;            /* boot protocol, 0x020a = 2.10 */
	uint8_t loadflags, relocatable;
	uint16_t xloadflags;
	uint32_t code32_start, initrd_addr_max, kernel_alignment, cmdline_size, init_size;
	uint64_t pref_address;
	size_t hdr_len;              /* setup header bytes from 0x1f1, copied to the zero page */
	const uint8_t *hdr;
	const uint8_t *pm;           /* the protected-mode kernel (after the setup sectors) */
	size_t pm_len;
	const uint8_t *payload;      /* the compressed vmlinux inside pm */
	size_t payload_len;
};
/* Whether buf starts like a bzImage (boot flag and "HdrS"). */
bool bzimage_is(const uint8_t *buf, size_t len);
/* Parses and checks a bzImage's setup header (protocol 2.10 or later); every
 * offset and length is checked against len. */
int bzimage_parse(const uint8_t *buf, size_t len, struct linux_setup *s, char *err, size_t errlen);

/* ---- payload decompression (decompress.c) ---- */

enum linux_comp {
	LINUX_COMP_UNKNOWN, LINUX_COMP_NONE, LINUX_COMP_GZIP, LINUX_COMP_BZIP2, LINUX_COMP_LZMA,
	LINUX_COMP_XZ, LINUX_COMP_LZO, LINUX_COMP_LZ4, LINUX_COMP_ZSTD,
};
/* The payload's format, from its magic bytes. */
enum linux_comp linux_comp_detect(const uint8_t *p, size_t len);
const char *linux_comp_name(enum linux_comp c);
/* Decompresses a payload to a malloc'ed buffer of exactly the length the
 * build appended to it; -ENOTSUP unknown format, -EBADMSG corrupt. */
int linux_decompress(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
		     char *err, size_t errlen);

/* ---- Linux boot (linux.c, tables.c) ---- */

enum linux_decomp_mode {
	LINUX_DECOMP_HOST,           /* decompress on the host, PVH entry when the kernel has one */
	LINUX_DECOMP_HOST_ZEROPAGE,  /* decompress on the host, always the 64-bit zero-page entry */
	LINUX_DECOMP_GUEST,          /* classic: the kernel's own decompressor runs */
};

enum linux_entry { LINUX_ENTRY_PVH, LINUX_ENTRY_64, LINUX_ENTRY_32 };

/* What the Linux loader put in guest RAM and how the boot vCPU enters it. */
struct linux_boot {
	enum linux_entry entry_kind;
	uint64_t entry;              /* RIP / EIP */
	uint64_t kernel_lo, kernel_hi;   /* RAM the kernel owns, init_size included */
	uint64_t initrd_max;         /* last byte address an initrd may use */
	uint64_t initrd_gpa, initrd_size;
	uint32_t cmdline_max;        /* bytes of command line the kernel takes, NUL excluded */
	struct linux_setup setup;    /* the setup header, when the image is a bzImage */
	bool has_setup;
	enum linux_comp comp;        /* the payload's compression, bzImage only */
	uint64_t acpi_rsdp;          /* the RSDP's GPA for the zero page / hvm_start_info; 0: none */
};

/* Loads a vmlinux or bzImage into guest RAM as mode says. */
int linux_load_kernel(struct guest_mem *gm, const uint8_t *buf, size_t len,
		      enum linux_decomp_mode mode, struct linux_boot *lb, char *err, size_t errlen);
/* Places an initrd page aligned as high as the protocol allows (below
 * initrd_addr_max and low RAM's end, above the kernel). */
int linux_load_initrd(struct guest_mem *gm, struct linux_boot *lb, const uint8_t *buf,
		      size_t len, char *err, size_t errlen);
/* Writes the command line, the e820 map and either the zero page (64/32-bit
 * entry) or hvm_start_info (PVH); *arg gets the GPA the entry register holds. */
int linux_write_boot_data(struct guest_mem *gm, const struct linux_boot *lb, const char *cmdline,
			  uint64_t *arg, char *err, size_t errlen);
/* The e820 map of guest RAM: returns the number of entries (at most max). */
int e820_build(const struct guest_mem *gm, struct e820_entry *tab, int max);
/* Identity page tables for the 64-bit entry: 0-4 GiB with 2 MiB pages. */
int linux_write_pagetables(struct guest_mem *gm);
/* An MP table listing nr_cpus processors (APIC ids 0..n-1), the ISA bus, the
 * IOAPIC and its 24 pins; cpu_sig/cpu_features from CPUID leaf 1. */
int mptable_write(struct guest_mem *gm, int nr_cpus, uint32_t cpu_sig, uint32_t cpu_features);

/* ---- ACPI (acpi.c) ---- */

/* The RSDP at ACPI_RSDP_GPA, then FACS, DSDT (\_S5), FADT (PM1a blocks and
 * reset register of vmm/devices/acpi_pm.h), MADT (nr_cpus LAPICs with APIC
 * ids 0..n-1, the IOAPIC with id nr_cpus as in the MP table, the SCI's
 * override, LINT1 NMI), RSDT and XSDT; *rsdp gets the RSDP's GPA. */
int acpi_write_tables(struct guest_mem *gm, int nr_cpus, uint64_t *rsdp);
/* The DSDT's AML (its body after the header), for the tests. */
extern const uint8_t acpi_dsdt_aml[];
extern const size_t acpi_dsdt_aml_len;

/* ---- boot setup (boot.c): page tables, GDT, boot info ---- */

/* Bytes of page tables needed to identity-map this memory with this leaf size. */
uint64_t boot_pagetable_size(const struct guest_mem *gm, uint64_t leaf);
/* Loads vm->cfg's image (and initrd) by its kind; sets vm->entry_mode. */
int boot_load(struct vm *vm, char *err, size_t errlen);
/* Writes the boot state for vm (image loaded, vCPUs created): page tables,
 * GDT and boot info, or Linux's boot data, e820 and MP table. */
int boot_setup(struct vm *vm, char *err, size_t errlen);
/* The guest command line: --append, then virtio_mmio.device= per device. */
int boot_cmdline(const struct vm *vm, char *buf, size_t size);

#endif
