/*
 * The Linux boot ABIs minivmm speaks, as facts from their specifications
 * (Documentation/arch/x86/boot.rst: the setup header and the zero page,
 * struct boot_params; the Xen PVH ABI: struct hvm_start_info; the e820
 * entry), plus where minivmm puts each structure in guest RAM. Constants
 * and packed structures only: the loaders (bzimage.c, linux.c, tables.c)
 * and the unit tests read and write guest memory through them.
 */
#ifndef MINIVMM_BOOT_LINUX_ABI_H
#define MINIVMM_BOOT_LINUX_ABI_H

#include <stdint.h>

/* ---- the setup header (offsets in the bzImage file and in the zero page) ---- */
#define SETUP_SECTS      0x1f1   /* u8: 512-byte sectors of real-mode setup, 0 means 4 */
#define SETUP_BOOT_FLAG  0x1fe   /* u16: 0xaa55 */
#define SETUP_JUMP       0x200   /* u16: a short jump; its offset byte (0x201) ends the header */
#define SETUP_HEADER     0x202   /* u32: "HdrS" */
#define SETUP_VERSION    0x206   /* u16: protocol version, 0x020a = 2.10 */
#define SETUP_LOADER     0x210   /* u8: type_of_loader */
#define SETUP_LOADFLAGS  0x211   /* u8 */
#define SETUP_CODE32     0x214   /* u32: code32_start */
#define SETUP_RD_IMAGE   0x218   /* u32: ramdisk_image */
#define SETUP_RD_SIZE    0x21c   /* u32: ramdisk_size */
#define SETUP_CMDLINE    0x228   /* u32: cmd_line_ptr */
#define SETUP_INITRD_MAX 0x22c   /* u32: initrd_addr_max (highest byte address) */
#define SETUP_ALIGN      0x230   /* u32: kernel_alignment */
#define SETUP_RELOC      0x234   /* u8: relocatable_kernel */
#define SETUP_XLOADFLAGS 0x236   /* u16 */
#define SETUP_CMDLINE_SZ 0x238   /* u32: cmdline_size (without the NUL) */
#define SETUP_PAYLOAD_OFF 0x248  /* u32: payload_offset, from the protected-mode code */
#define SETUP_PAYLOAD_LEN 0x24c  /* u32: payload_length */
#define SETUP_PREF_ADDR  0x258   /* u64: pref_address */
#define SETUP_INIT_SIZE  0x260   /* u32: init_size, linear memory the kernel needs */
#define SETUP_MIN_END    0x264   /* the header reaches at least this far in 2.10 */

#define BOOT_FLAG_MAGIC  0xaa55
#define HDRS_MAGIC       0x53726448u   /* "HdrS" */
#define LINUX_PROTO_MIN  0x020a        /* 2.10: payload fields, pref_address, init_size */
#define LOADER_UNDEFINED 0xff          /* type_of_loader for a loader without an id */
#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_QUIET       0x20
#define XLF_KERNEL_64        0x01      /* a 64-bit entry at load address + 0x200 */

/* ---- the zero page (struct boot_params), 4 KiB ---- */
#define BP_ACPI_RSDP     0x070   /* u64: acpi_rsdp_addr (read from protocol 2.14 on) */
#define BP_EXT_RD_IMAGE  0x0c0   /* u32: high 32 bits of ramdisk_image */
#define BP_EXT_RD_SIZE   0x0c4
#define BP_EXT_CMDLINE   0x0c8
#define BP_E820_ENTRIES  0x1e8   /* u8 */
#define BP_HDR           0x1f1   /* the setup header, copied from the image */
#define BP_E820_TABLE    0x2d0   /* struct e820_entry[128] */
#define BP_E820_MAX      128
#define BP_SIZE          4096

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

#define E820_RAM       1
#define E820_RESERVED  2

/* ---- the Xen PVH boot ABI ---- */
#define XEN_ELFNOTE_PHYS32_ENTRY 18     /* in an ELF note named "Xen" */
#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;          /* 1: memmap_paddr and memmap_entries are valid */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;    /* struct hvm_modlist_entry[nr_modules] */
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;     /* struct hvm_memmap_entry[memmap_entries] */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_entry {      /* types as in e820 */
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* ---- where minivmm puts things for a Linux guest (all in the first MiB) ---- */
#define LINUX_START_INFO_GPA 0x6000ULL    /* hvm_start_info, then modlist (+0x100), memmap (+0x200) */
#define LINUX_ZERO_PAGE_GPA  0x7000ULL
#define LINUX_PT_GPA         0x10000ULL   /* PML4, PDPT, 4 PDs: 0-4 GiB with 2 MiB pages */
#define LINUX_PT_SIZE        (6 * 4096ULL)
#define LINUX_CMDLINE_GPA    0x20000ULL
#define LINUX_CMDLINE_MAX    0x10000ULL
#define LINUX_EBDA_START     0x9fc00ULL   /* from here to 1 MiB: reserved, as on a PC */
#define LINUX_MPTABLE_GPA    0xf0000ULL   /* BIOS area: Linux scans it for the MP table */
#define LINUX_DEFAULT_LOAD   0x100000ULL  /* a non-relocatable protected-mode kernel */

/* Linux's GDT selectors at entry (boot.rst: __BOOT_CS, __BOOT_DS). */
#define LINUX_BOOT_CS 0x10
#define LINUX_BOOT_DS 0x18

#endif
