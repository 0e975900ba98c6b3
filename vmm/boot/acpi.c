/*
 * The ACPI tables, as far as an ACPI-capable kernel (Linux) uses them on a
 * microVM: where its CPUs and IOAPIC are (MADT, the same machine the MP
 * table describes, for kernels booted with acpi=off or without ACPI), and
 * how to power the machine off and reset it (FADT with the PM1a blocks and
 * the reset register of vmm/devices/acpi_pm.h, DSDT with \_S5). Layout in
 * acpi_abi.h; everything in the BIOS area below 1 MiB, which e820 reserves.
 *
 * Why a full (not hardware-reduced) FADT: a hardware-reduced FADT makes
 * Linux drop the legacy PIC and the PIT timer set-up (acpi_reduced_hw_init),
 * so the same kernel would run differently with and without acpi=off; the
 * PM1 blocks cost two small port ranges. There is no PM timer (optional
 * since ACPI 5.0A) and no GPE block: nothing raises an event.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "vmm/boot/boot.h"
#include "vmm/devices/acpi_pm.h"

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP is 36 bytes (ACPI 5.2.5.3)");
_Static_assert(sizeof(struct acpi_header) == 36, "table header is 36 bytes (5.2.6)");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 is 276 bytes (5.2.9)");
_Static_assert(offsetof(struct acpi_fadt, pm1a_cnt_blk) == 64, "PM1a_CNT_BLK at 64");
_Static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "RESET_REG at 116");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "X_DSDT at 140");
_Static_assert(offsetof(struct acpi_fadt, x_pm1a_cnt_blk) == 172, "X_PM1a_CNT_BLK at 172");
_Static_assert(offsetof(struct acpi_fadt, hypervisor_vendor) == 268, "hypervisor id at 268");
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS is 64 bytes (5.2.10)");
_Static_assert(sizeof(struct acpi_madt_lapic) == 8 && sizeof(struct acpi_madt_ioapic) == 12 &&
	       sizeof(struct acpi_madt_iso) == 10 && sizeof(struct acpi_madt_lapic_nmi) == 6,
	       "MADT entry sizes (5.2.12)");

/*
 * The DSDT's whole AML: Name (\_S5, Package (4) { 5, 5, 0, 0 }), encoded
 * by hand (ACPI 6.x, 20.2: AML grammar). For 14 constant bytes this keeps
 * the build free of an ASL compiler; tests/unit/test_acpi.c decodes it
 * and tests/integration/test_acpi.py has iasl disassemble and recompile it.
 */
const uint8_t acpi_dsdt_aml[] = {
	0x08,                   /* NameOp */
	'_', 'S', '5', '_',     /* NameSeg "_S5_": the DSDT's top level is the root scope \ */
	0x12,                   /* PackageOp */
	0x08,                   /* PkgLength, one-byte form (bits 7-6 = 0): these 8 bytes to the end */
	0x04,                   /* NumElements */
	0x0a, ACPI_S5_SLP_TYP,  /* BytePrefix, SLP_TYPa: PM1a_CNT.SLP_TYP for soft-off */
	0x0a, ACPI_S5_SLP_TYP,  /* BytePrefix, SLP_TYPb: there is no PM1b block; same value */
	0x00,                   /* ZeroOp: reserved */
	0x00,                   /* ZeroOp: reserved */
};
const size_t acpi_dsdt_aml_len = sizeof(acpi_dsdt_aml);

static uint8_t acpi_sum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *b++);
	return sum;
}

static void acpi_header(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, "MVMM", 4);
	h->creator_revision = 1;
}

/* Sets the checksum so the whole table sums to 0 (call last). */
static void acpi_seal(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_sum(h, h->length);
}

static struct acpi_gas io_gas(uint64_t port, uint8_t bits, uint8_t access)
{
	return (struct acpi_gas){ .space_id = ACPI_GAS_IO, .bit_width = bits, .access_size = access,
				  .address = port };
}

static void acpi_fadt(struct acpi_fadt *f, uint64_t facs, uint64_t dsdt)
{
	memset(f, 0, sizeof(*f));
	acpi_header(&f->h, "FACP", sizeof(*f), 6);
	f->firmware_ctrl = (uint32_t)facs;   /* X_FIRMWARE_CTRL stays 0: the spec wants one of them */
	f->dsdt = (uint32_t)dsdt;
	f->x_dsdt = dsdt;
	f->sci_int = ACPI_SCI_IRQ;
	f->pm1a_evt_blk = ACPI_PM1A_EVT_PORT;
	f->pm1a_cnt_blk = ACPI_PM1A_CNT_PORT;
	f->pm1_evt_len = ACPI_PM1_EVT_LEN;
	f->pm1_cnt_len = ACPI_PM1_CNT_LEN;
	f->x_pm1a_evt_blk = io_gas(ACPI_PM1A_EVT_PORT, ACPI_PM1_EVT_LEN * 8, ACPI_GAS_ACCESS_WORD);
	f->x_pm1a_cnt_blk = io_gas(ACPI_PM1A_CNT_PORT, ACPI_PM1_CNT_LEN * 8, ACPI_GAS_ACCESS_WORD);
	f->p_lvl2_lat = 101;                 /* no C2 */
	f->p_lvl3_lat = 1001;                /* no C3 */
	f->iapc_boot_arch = ACPI_IAPC_LEGACY_DEVICES | ACPI_IAPC_8042 | ACPI_IAPC_NO_VGA |
			    ACPI_IAPC_NO_CMOS_RTC;
	f->flags = ACPI_FADT_WBINVD | ACPI_FADT_C1_SUPPORTED | ACPI_FADT_POWER_BUTTON |
		   ACPI_FADT_SLEEP_BUTTON | ACPI_FADT_RESET_REG_SUP;
	f->reset_reg = io_gas(ACPI_RESET_PORT, 8, ACPI_GAS_ACCESS_BYTE);
	f->reset_value = ACPI_RESET_VALUE;
	acpi_seal(&f->h);
}

static uint32_t acpi_madt(uint8_t *p, int nr_cpus)
{
	struct acpi_madt *m = (struct acpi_madt *)p;
	uint8_t *e = p + sizeof(*m);

	for (int i = 0; i < nr_cpus; i++) {
		/* APIC ids 0..n-1 as vcpu_set_cpuid gives them and the MP table lists them */
		struct acpi_madt_lapic l = { ACPI_MADT_LAPIC, sizeof(l), (uint8_t)i, (uint8_t)i, 1 };

		memcpy(e, &l, sizeof(l));
		e += sizeof(l);
	}
	/* the IOAPIC's id follows the CPUs' as in the MP table */
	struct acpi_madt_ioapic io = { ACPI_MADT_IOAPIC, sizeof(io), (uint8_t)nr_cpus, 0,
				       (uint32_t)MINIVMM_IOAPIC_BASE, 0 };
	memcpy(e, &io, sizeof(io));
	e += sizeof(io);
	/* ISA IRQs map to the same IOAPIC pins (KVM's default routing, the MP
	 * table's INT entries), which is ACPI's default: no override needed but
	 * for the SCI, which ACPI otherwise assumes active-low, and which
	 * minivmm would assert active-high, level-triggered */
	struct acpi_madt_iso iso = { ACPI_MADT_ISO, sizeof(iso), 0, ACPI_SCI_IRQ, ACPI_SCI_IRQ,
				     ACPI_MPS_ACTIVE_HIGH | ACPI_MPS_LEVEL };
	memcpy(e, &iso, sizeof(iso));
	e += sizeof(iso);
	/* LINT1 is NMI on every LAPIC, as the MP table's local interrupt entry */
	struct acpi_madt_lapic_nmi nmi = { ACPI_MADT_LAPIC_NMI, sizeof(nmi), 0xff, 0, 1 };
	memcpy(e, &nmi, sizeof(nmi));
	e += sizeof(nmi);

	acpi_header(&m->h, "APIC", (uint32_t)(e - p), 4);
	m->lapic_addr = (uint32_t)MINIVMM_LAPIC_BASE;
	m->flags = ACPI_MADT_PCAT_COMPAT;
	acpi_seal(&m->h);
	return m->h.length;
}

static uint64_t align16(uint64_t v)
{
	return (v + 15) & ~15ULL;
}

int acpi_write_tables(struct guest_mem *gm, int nr_cpus, uint64_t *rsdp_gpa)
{
	uint8_t *area = mm_gpa_to_hva(gm, ACPI_RSDP_GPA, ACPI_AREA_SIZE);
	uint64_t base = ACPI_RSDP_GPA, facs, dsdt, fadt, madt, rsdt, xsdt, end;
	struct acpi_rsdp *rsdp = (struct acpi_rsdp *)area;
	struct acpi_facs *fc;
	struct acpi_header *h;
	uint32_t *r32;
	uint8_t *x64;

	/* 254 CPUs (the MP table's limit too) need about 3 KiB of the 64 KiB */
	if (!area || nr_cpus < 1 || nr_cpus > 254)
		return -EINVAL;
	memset(area, 0, ACPI_AREA_SIZE);
	facs = base + 64;                                    /* the FACS must be 64-byte aligned */
	dsdt = facs + sizeof(struct acpi_facs);
	fadt = align16(dsdt + sizeof(struct acpi_header) + acpi_dsdt_aml_len);
	madt = align16(fadt + sizeof(struct acpi_fadt));

	fc = (struct acpi_facs *)(area + (facs - base));
	memcpy(fc->signature, "FACS", 4);
	fc->length = sizeof(*fc);
	fc->version = 2;

	h = (struct acpi_header *)(area + (dsdt - base));
	acpi_header(h, "DSDT", (uint32_t)(sizeof(*h) + acpi_dsdt_aml_len), 2);
	memcpy(h + 1, acpi_dsdt_aml, acpi_dsdt_aml_len);
	acpi_seal(h);

	acpi_fadt((struct acpi_fadt *)(area + (fadt - base)), facs, dsdt);
	rsdt = align16(madt + acpi_madt(area + (madt - base), nr_cpus));

	/* RSDT (32-bit entries) for ACPI 1.0 readers, XSDT for the rest: the same two tables */
	h = (struct acpi_header *)(area + (rsdt - base));
	acpi_header(h, "RSDT", sizeof(*h) + 2 * 4, 1);
	r32 = (uint32_t *)(h + 1);
	r32[0] = (uint32_t)fadt;
	r32[1] = (uint32_t)madt;
	acpi_seal(h);
	xsdt = align16(rsdt + h->length);
	h = (struct acpi_header *)(area + (xsdt - base));
	acpi_header(h, "XSDT", sizeof(*h) + 2 * 8, 1);
	x64 = (uint8_t *)(h + 1);             /* 8-byte entries at offset 36: unaligned */
	memcpy(x64, &fadt, 8);
	memcpy(x64 + 8, &madt, 8);
	acpi_seal(h);
	end = xsdt + h->length;

	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, ACPI_OEM_ID, 6);
	rsdp->revision = 2;
	rsdp->rsdt = (uint32_t)rsdt;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt = xsdt;
	rsdp->checksum = (uint8_t)-acpi_sum(rsdp, 20);
	rsdp->ext_checksum = (uint8_t)-acpi_sum(rsdp, sizeof(*rsdp));

	mm_note_write(gm, base, end - base);
	*rsdp_gpa = base;
	return 0;
}
