/*
 * ACPI power-off and reset (workload=poweroff, workload=reset): the tables
 * are found as an OS finds them, the RSDP in the BIOS area, then the XSDT
 * (RSDT for revision 0), the FADT and \_S5 in the DSDT, every checksum
 * verified; then the one register write. A table that is missing or wrong
 * stops the guest with EXIT_VERIFY and a line naming it, so a test sees
 * faults of the tables, not only of the device. Offsets are the ACPI
 * specification's (6.x, section 5.2); this guest includes no VMM header
 * but bootinfo.h, so it does not share minivmm's structures either.
 */
#include "kernel.h"

#define BIOS_LO 0xe0000ULL
#define BIOS_HI 0x100000ULL

struct acpi_found {
	uint64_t rsdp, fadt, dsdt;
	uint16_t pm1a_cnt;
	uint16_t reset_port;
	uint8_t reset_value, has_reset, s5_typ;
};

static __attribute__((noreturn)) void acpi_fail(const char *what, uint64_t at)
{
	kprintf("acpi: %s (at 0x%lx)\n", what, at);
	machine_exit(EXIT_VERIFY);
}

static uint8_t acpi_sum(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A table at gpa: its length (header at 4) and its checksum (5.2.6). */
static const uint8_t *acpi_table(uint64_t gpa, const char *sig)
{
	const uint8_t *t = (const uint8_t *)gpa;

	if (gpa < 0x1000 || gpa >= kinfo.ram_size || memcmp(t, sig, 4) != 0)
		acpi_fail("a table pointer does not lead to its signature", gpa);
	if (rd32(t + 4) < 36 || acpi_sum(t, rd32(t + 4)) != 0)
		acpi_fail("a table's checksum is wrong", gpa);
	return t;
}

static uint64_t acpi_find_rsdp(void)
{
	for (uint64_t a = BIOS_LO; a < BIOS_HI; a += 16) {
		const uint8_t *p = (const uint8_t *)a;

		if (memcmp(p, "RSD PTR ", 8) != 0)
			continue;
		if (acpi_sum(p, 20) != 0 || (p[15] >= 2 && acpi_sum(p, rd32(p + 20)) != 0))
			acpi_fail("the RSDP's checksum is wrong", a);
		return a;
	}
	acpi_fail("no RSDP in the BIOS area", BIOS_LO);
}

/* \_S5's first element (SLP_TYPa) from the DSDT's AML (20.2: NameOp,
 * NameSeg, PackageOp, PkgLength, NumElements, then a byte constant). */
static uint8_t acpi_s5_type(const uint8_t *dsdt)
{
	uint32_t len = rd32(dsdt + 4);

	for (uint32_t i = 36; i + 8 <= len; i++) {
		const uint8_t *p = dsdt + i;

		if (p[0] != 0x08 || memcmp(p + 1, "_S5_", 4) != 0 || p[5] != 0x12)
			continue;
		p += 6 + 1 + (p[6] >> 6);          /* PkgLength: bits 7-6 count its extra bytes */
		p++;                               /* NumElements */
		if (p >= dsdt + len)
			break;
		if (p[0] == 0x0a && p + 1 < dsdt + len)
			return p[1];               /* BytePrefix */
		if (p[0] == 0x00 || p[0] == 0x01)
			return p[0];               /* ZeroOp, OneOp */
		acpi_fail("\\_S5's SLP_TYPa is not a byte constant", (uint64_t)p);
	}
	acpi_fail("the DSDT has no \\_S5 package", (uint64_t)dsdt);
}

static void acpi_find(struct acpi_found *f)
{
	const uint8_t *r, *sdt, *fadt = 0;
	uint32_t n, esz;

	f->rsdp = acpi_find_rsdp();
	r = (const uint8_t *)f->rsdp;
	if (r[15] >= 2 && rd64(r + 24)) {
		sdt = acpi_table(rd64(r + 24), "XSDT");
		esz = 8;
	} else {
		sdt = acpi_table(rd32(r + 16), "RSDT");
		esz = 4;
	}
	n = (rd32(sdt + 4) - 36) / esz;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e = esz == 8 ? rd64(sdt + 36 + i * 8) : rd32(sdt + 36 + i * 4);

		if (e >= 0x1000 && e < kinfo.ram_size && memcmp((const void *)e, "FACP", 4) == 0)
			fadt = acpi_table(e, "FACP");
	}
	if (!fadt)
		acpi_fail("the XSDT lists no FADT", (uint64_t)sdt);
	f->fadt = (uint64_t)fadt;
	/* the 64-bit fields win where the FADT is long enough to have them (5.2.9) */
	f->dsdt = rd32(fadt + 4) >= 148 && rd64(fadt + 140) ? rd64(fadt + 140) : rd32(fadt + 40);
	f->pm1a_cnt = (uint16_t)(rd32(fadt + 4) >= 184 && fadt[172] == 1 && rd64(fadt + 176) ?
				 rd64(fadt + 176) : rd32(fadt + 64));
	f->has_reset = (rd32(fadt + 112) & (1u << 10)) && fadt[116] == 1;   /* RESET_REG_SUP, I/O */
	f->reset_port = (uint16_t)rd64(fadt + 120);
	f->reset_value = fadt[128];
	f->s5_typ = acpi_s5_type(acpi_table(f->dsdt, "DSDT"));
	if (!f->pm1a_cnt)
		acpi_fail("the FADT has no PM1a control block", f->fadt);
}

void acpi_leave(bool reset)
{
	struct acpi_found f;

	acpi_find(&f);
	kprintf("acpi: RSDP 0x%lx FADT 0x%lx DSDT 0x%lx PM1a_CNT 0x%x S5 SLP_TYP %u reset %s 0x%x <- 0x%x\n",
		f.rsdp, f.fadt, f.dsdt, f.pm1a_cnt, f.s5_typ, f.has_reset ? "port" : "none",
		f.reset_port, f.reset_value);
	if (reset) {
		if (!f.has_reset)
			acpi_fail("the FADT has no I/O reset register", f.fadt);
		kprintf("acpi: resetting\n");
		outb(f.reset_port, f.reset_value);
	} else {
		kprintf("acpi: powering off\n");
		outw(f.pm1a_cnt, (uint16_t)((f.s5_typ & 7) << 10 | 1u << 13));   /* SLP_TYP, SLP_EN */
	}
	/* the VMM stops the vCPU on the write; getting here means it did not */
	kprintf("acpi: still running after the %s write\n", reset ? "reset" : "power-off");
	machine_exit(EXIT_VERIFY);
}
