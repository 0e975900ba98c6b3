/*
 * Boot protocol between minivmm (vmm/) and the test guest (guest-driver/).
 * This is the only header both sides include (as "vmm/boot/bootinfo.h",
 * both build with -I. at the repository root); it must stay freestanding
 * (fixed-width integers only, no libc) and include nothing else, which is
 * why scripts/check-deps.sh lets the VMM's layers above mm/ use it.
 *
 * Entry contract, identical for every vCPU:
 *   - 64-bit long mode, CPL 0, paging on with VMM-built identity page tables
 *     (CR3 = bootinfo->pml4_gpa) covering all guest RAM with leaf pages of
 *     bootinfo->guest_page_size and the rest of the low 4 GiB (MMIO hole)
 *     with 2 MiB pages; every entry has U/S=0 (supervisor only).
 *   - a flat GDT provided by the VMM: selector 0x08 = 64-bit code,
 *     0x10 = data; interrupts disabled (RFLAGS = 0x2); no IDT.
 *   - RIP = ELF entry point, RDI = GPA of struct bootinfo,
 *     RSI = this vCPU's index (0 .. nr_cpus-1), RSP = 0 (the guest picks its
 *     own stack from its cpu index).
 *   - vCPU 0 is the bootstrap processor; all vCPUs start at once.
 */
#ifndef MINIVMM_BOOTINFO_H
#define MINIVMM_BOOTINFO_H

#include <stdint.h>

#define BOOTINFO_MAGIC   0x4f464e494d4d5631ULL /* "1VMMINFO" little endian */
#define BOOTINFO_VERSION 1
#define BOOTINFO_GPA     0x9000ULL     /* one 4 KiB page, never RAM for the guest allocator */
#define BOOT_GDT_GPA     0x8000ULL     /* the flat GDT the vCPUs start with */

#define BOOTINFO_MAX_MEM     16
#define BOOTINFO_MAX_DEV     16
#define BOOTINFO_CMDLINE_MAX 1024

/* Guest-visible I/O ports. */
#define MINIVMM_UART_PORT  0x3f8   /* 8250 UART, COM1 */
#define MINIVMM_EXIT_PORT  0x510   /* 32-bit OUT: the VM exits with (value & 0xff) as status */

/* Guest-physical layout. Where RAM lies (below MINIVMM_LOWMEM_MAX, the rest
 * from MINIVMM_HIGHMEM_BASE) is mm's decision, in mm/mm.h; the guest reads
 * it from bootinfo->mem[]. */
#define MINIVMM_KERNEL_BASE   0x100000ULL     /* guest ELF images link here or above */
#define MINIVMM_MMIO_BASE     0xD0000000ULL   /* virtio-mmio windows, 4 KiB each */
#define MINIVMM_MMIO_STRIDE   0x1000ULL
#define MINIVMM_IOAPIC_BASE   0xFEC00000ULL
#define MINIVMM_LAPIC_BASE    0xFEE00000ULL
#define MINIVMM_IRQ_BASE      5               /* first IOAPIC pin handed to devices */

enum bootinfo_mem_type {
	BOOTINFO_MEM_RAM      = 1,  /* usable by the guest allocator */
	BOOTINFO_MEM_RESERVED = 2,  /* VMM page tables, boot info, GDT: do not allocate */
};

struct bootinfo_mem {
	uint64_t addr;
	uint64_t size;
	uint32_t type;              /* enum bootinfo_mem_type */
	uint32_t reserved;
};

enum bootinfo_dev_type {
	BOOTINFO_DEV_VIRTIO_MMIO = 1,
};

struct bootinfo_dev {
	uint32_t type;              /* enum bootinfo_dev_type */
	uint32_t device_id;         /* virtio device id (5 = balloon) */
	uint64_t base;              /* MMIO window GPA */
	uint64_t size;              /* MMIO window length */
	uint32_t irq;               /* IOAPIC input (GSI) */
	uint32_t reserved;
};

struct bootinfo {
	uint64_t magic;             /* BOOTINFO_MAGIC */
	uint32_t version;           /* BOOTINFO_VERSION */
	uint32_t size;              /* sizeof(struct bootinfo) */
	uint32_t nr_cpus;
	uint32_t nr_mem;
	uint32_t nr_dev;
	uint32_t guest_page_size;   /* leaf size of the VMM identity map: 4096, 2 MiB or 1 GiB */
	uint64_t pml4_gpa;          /* CR3 the VMM loaded */
	uint64_t ram_size;          /* total guest RAM in bytes (--mem) */
	uint64_t tsc_khz;           /* TSC frequency, 0 if unknown */
	uint64_t kernel_start;      /* lowest and highest GPA of the loaded image */
	uint64_t kernel_end;
	struct bootinfo_mem mem[BOOTINFO_MAX_MEM];
	struct bootinfo_dev dev[BOOTINFO_MAX_DEV];
	char cmdline[BOOTINFO_CMDLINE_MAX];   /* NUL-terminated */
};

#endif
