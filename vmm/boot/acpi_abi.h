/*
 * The ACPI tables minivmm builds, as facts from the ACPI specification
 * (6.x; section numbers below): the RSDP, the common table header, the
 * RSDT/XSDT, the FADT with its Generic Address Structures, the FACS, the
 * MADT and its entries. Packed structures and constants only: acpi.c
 * writes them, the unit tests and tests/tools/acpi_tables read them.
 * Where minivmm puts them in guest RAM is at the end.
 */
#ifndef MINIVMM_BOOT_ACPI_ABI_H
#define MINIVMM_BOOT_ACPI_ABI_H

#include <stdint.h>

/* 5.2.5.3: the Root System Description Pointer, revision 2 (36 bytes) */
struct acpi_rsdp {
	char signature[8];          /* "RSD PTR " */
	uint8_t checksum;           /* over the first 20 bytes (the ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;           /* 2: the XSDT fields below are valid */
	uint32_t rsdt;
	uint32_t length;            /* 36 */
	uint64_t xsdt;
	uint8_t ext_checksum;       /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

/* 5.2.6: every table but the RSDP and FACS starts with this (36 bytes) */
struct acpi_header {
	char signature[4];
	uint32_t length;            /* of the whole table, header included */
	uint8_t revision;
	uint8_t checksum;           /* the whole table sums to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

/* 5.2.3.2: Generic Address Structure (12 bytes) */
struct acpi_gas {
	uint8_t space_id;           /* ACPI_GAS_IO */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;        /* 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} __attribute__((packed));

#define ACPI_GAS_IO 1
#define ACPI_GAS_ACCESS_BYTE 1
#define ACPI_GAS_ACCESS_WORD 2

/* 5.2.9: Fixed ACPI Description Table, revision 6 (ACPI 6.0: 276 bytes) */
struct acpi_fadt {
	struct acpi_header h;       /* "FACP" */
	uint32_t firmware_ctrl;     /* 36: FACS */
	uint32_t dsdt;              /* 40 */
	uint8_t reserved0;          /* 44: INT_MODEL in ACPI 1.0 */
	uint8_t pm_profile;         /* 45 */
	uint16_t sci_int;           /* 46: the SCI's ISA IRQ */
	uint32_t smi_cmd;           /* 48: 0: no SMM, the machine is always in ACPI mode */
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;   /* 52 */
	uint32_t pm1a_evt_blk;      /* 56 */
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;      /* 64 */
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;        /* 76 */
	uint32_t gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len;        /* 88 */
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat;        /* 96: > 100 means no C2 */
	uint16_t p_lvl3_lat;        /* > 1000 means no C3 */
	uint16_t flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;    /* 109 */
	uint8_t reserved1;
	uint32_t flags;             /* 112 */
	struct acpi_gas reset_reg;  /* 116 */
	uint8_t reset_value;        /* 128 */
	uint16_t arm_boot_arch;
	uint8_t minor_version;      /* 131 */
	uint64_t x_firmware_ctrl;   /* 132 */
	uint64_t x_dsdt;            /* 140 */
	struct acpi_gas x_pm1a_evt_blk;   /* 148 */
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;   /* 172 */
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;   /* 244: hardware-reduced machines only */
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor;          /* 268 */
} __attribute__((packed));

/* FADT flags (table 5.10) */
#define ACPI_FADT_WBINVD        (1u << 0)
#define ACPI_FADT_C1_SUPPORTED  (1u << 2)
#define ACPI_FADT_POWER_BUTTON  (1u << 4)   /* set: no fixed-feature power button */
#define ACPI_FADT_SLEEP_BUTTON  (1u << 5)   /* set: no fixed-feature sleep button */
#define ACPI_FADT_RESET_REG_SUP (1u << 10)
#define ACPI_FADT_HW_REDUCED    (1u << 20)
/* IA-PC boot architecture flags (table 5.11) */
#define ACPI_IAPC_LEGACY_DEVICES (1u << 0)  /* ISA-style devices: the UART */
#define ACPI_IAPC_8042           (1u << 1)  /* the i8042 exists (Linux's fallback reset) */
#define ACPI_IAPC_NO_VGA         (1u << 2)
#define ACPI_IAPC_NO_CMOS_RTC    (1u << 5)

/* 5.2.10: Firmware ACPI Control Structure (64 bytes, 64-byte aligned) */
struct acpi_facs {
	char signature[4];          /* "FACS" */
	uint32_t length;            /* 64 */
	uint32_t hw_signature;
	uint32_t waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_waking_vector;
	uint8_t version;            /* 2 */
	uint8_t reserved[3];
	uint32_t ospm_flags;
	uint8_t reserved2[24];
} __attribute__((packed));

/* 5.2.12: Multiple APIC Description Table */
struct acpi_madt {
	struct acpi_header h;       /* "APIC" */
	uint32_t lapic_addr;
	uint32_t flags;             /* PCAT_COMPAT: 8259s present (KVM's in-kernel PIC) */
} __attribute__((packed));

#define ACPI_MADT_PCAT_COMPAT 1u

enum acpi_madt_type {
	ACPI_MADT_LAPIC = 0,
	ACPI_MADT_IOAPIC = 1,
	ACPI_MADT_ISO = 2,          /* interrupt source override */
	ACPI_MADT_LAPIC_NMI = 4,
};

struct acpi_madt_lapic {        /* 5.2.12.2 */
	uint8_t type, length;       /* 0, 8 */
	uint8_t uid;                /* ACPI processor UID */
	uint8_t apic_id;
	uint32_t flags;             /* 1: enabled */
} __attribute__((packed));

struct acpi_madt_ioapic {       /* 5.2.12.3 */
	uint8_t type, length;       /* 1, 12 */
	uint8_t id, reserved;
	uint32_t addr;
	uint32_t gsi_base;
} __attribute__((packed));

struct acpi_madt_iso {          /* 5.2.12.5 */
	uint8_t type, length;       /* 2, 10 */
	uint8_t bus;                /* 0: ISA */
	uint8_t source;             /* the ISA IRQ */
	uint32_t gsi;
	uint16_t flags;             /* MPS INTI flags: polarity bits 0-1, trigger bits 2-3 */
} __attribute__((packed));

#define ACPI_MPS_ACTIVE_HIGH 0x1
#define ACPI_MPS_LEVEL       0xc

struct acpi_madt_lapic_nmi {    /* 5.2.12.7 */
	uint8_t type, length;       /* 4, 6 */
	uint8_t uid;                /* 0xff: every processor */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

/* ---- where minivmm puts the tables: the BIOS area Linux scans ---- */
/* Linux looks for the RSDP in the EBDA's first KiB and in 0xe0000-0xfffff
 * on 16-byte boundaries; the MP table owns 0xf0000, so ACPI takes 0xe0000
 * up to it. Both lie in the e820 range reserved below 1 MiB. */
#define ACPI_RSDP_GPA  0xe0000ULL
#define ACPI_AREA_SIZE 0x10000ULL
#define ACPI_OEM_ID    "MINVMM"      /* 6 characters, no NUL */
#define ACPI_OEM_TABLE "MINIVMM "    /* 8 */

#endif
