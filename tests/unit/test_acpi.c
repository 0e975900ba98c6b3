/*
 * Unit tests of the ACPI tables (vmm/boot/acpi.c) read back from guest
 * memory by the spec's offsets, not minivmm's structures: the RSDP and
 * every table's checksum, reached by following pointers as a kernel does;
 * the FADT's fields; the DSDT's AML decoded by a small AML reader down to
 * \_S5's package; the MADT against the MP table for the same machine; the
 * RSDP in the zero page and hvm_start_info; and what the PM device makes
 * of the writes Linux issues.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "vmm/boot/boot.h"
#include "vmm/devices/acpi_pm.h"

#define RAM (64ULL << 20)

static struct guest_mem gm;

static const uint8_t *at(uint64_t gpa, uint64_t len)
{
	const uint8_t *p = mm_gpa_to_hva(&gm, gpa, len);

	assert_non_null(p);
	return p;
}

static uint16_t u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* A table with this signature at gpa, checksum and length checked, inside
 * the reserved BIOS area (e820: 0x9fc00-0xfffff reserved). */
static const uint8_t *table(uint64_t gpa, const char *sig)
{
	const uint8_t *t = at(gpa, 36);

	assert_memory_equal(t, sig, 4);
	assert_true(u32(t + 4) >= 36);
	assert_true(gpa >= LINUX_EBDA_START && gpa + u32(t + 4) <= 0x100000);
	t = at(gpa, u32(t + 4));
	assert_int_equal(sum(t, u32(t + 4)), 0);
	assert_memory_equal(t + 10, "MINVMM", 6);     /* OEM id */
	return t;
}

static uint64_t write_tables(int cpus)
{
	uint64_t rsdp = 0;

	assert_int_equal(acpi_write_tables(&gm, cpus, &rsdp), 0);
	assert_int_equal(rsdp, ACPI_RSDP_GPA);
	return rsdp;
}

static void test_rsdp_and_every_checksum(void **state)
{
	uint64_t rsdp = write_tables(2), xsdt, rsdt;
	const uint8_t *r = at(rsdp, 36), *x, *rt, *fadt = NULL;
	int found_madt = 0;

	(void)state;
	/* Linux scans 0xe0000-0xfffff on 16-byte boundaries */
	assert_true(rsdp >= 0xe0000 && rsdp < 0x100000 && rsdp % 16 == 0);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(sum(r, 20), 0);               /* ACPI 1.0 checksum */
	assert_int_equal(r[15], 2);                    /* revision */
	assert_int_equal(u32(r + 20), 36);             /* length */
	assert_int_equal(sum(r, 36), 0);               /* extended checksum */
	rsdt = u32(r + 16);
	xsdt = u64(r + 24);
	x = table(xsdt, "XSDT");
	rt = table(rsdt, "RSDT");
	assert_int_equal((u32(x + 4) - 36) / 8, 2);
	assert_int_equal((u32(rt + 4) - 36) / 4, 2);
	for (int i = 0; i < 2; i++) {
		uint64_t e = u64(x + 36 + i * 8);

		assert_int_equal(e, u32(rt + 36 + i * 4));   /* RSDT and XSDT list the same */
		if (memcmp(at(e, 4), "FACP", 4) == 0)
			fadt = table(e, "FACP");
		else
			found_madt += table(e, "APIC") != NULL;
	}
	assert_non_null(fadt);
	assert_int_equal(found_madt, 1);
	/* the FADT's pointers: DSDT (32 and 64 bit agree) and the FACS */
	assert_int_equal(u32(fadt + 40), u64(fadt + 140));
	table(u32(fadt + 40), "DSDT");
	uint64_t facs = u32(fadt + 36);
	const uint8_t *fc = at(facs, 64);
	assert_memory_equal(fc, "FACS", 4);            /* no checksum field: 5.2.10 */
	assert_int_equal(u32(fc + 4), 64);
	assert_int_equal(facs % 64, 0);
	assert_int_equal(u64(fadt + 132), 0);          /* X_FIRMWARE_CTRL: only one of the two */
}

static void test_fadt_fields(void **state)
{
	const uint8_t *r = at(write_tables(1), 36);
	const uint8_t *x = at(u64(r + 24), 52), *f = NULL;

	(void)state;
	for (int i = 0; i < 2 && !f; i++)
		if (memcmp(at(u64(x + 36 + i * 8), 4), "FACP", 4) == 0)
			f = table(u64(x + 36 + i * 8), "FACP");
	assert_non_null(f);
	assert_int_equal(u32(f + 4), 276);             /* ACPI 6.0 FADT */
	assert_int_equal(f[8], 6);
	assert_int_equal(u16(f + 46), ACPI_SCI_IRQ);
	assert_int_equal(u32(f + 48), 0);              /* SMI_CMD: always in ACPI mode */
	assert_int_equal(u32(f + 56), ACPI_PM1A_EVT_PORT);
	assert_int_equal(u32(f + 64), ACPI_PM1A_CNT_PORT);
	assert_int_equal(u32(f + 60) | u32(f + 68) | u32(f + 76), 0);   /* no PM1b, no PM timer */
	assert_int_equal(f[88], 4);                    /* PM1_EVT_LEN */
	assert_int_equal(f[89], 2);                    /* PM1_CNT_LEN */
	assert_int_equal(f[91], 0);                    /* PM_TMR_LEN */
	assert_true(u16(f + 96) > 100 && u16(f + 98) > 1000);   /* no C2, no C3 */
	assert_true(u16(f + 109) & (1u << 1));         /* the i8042 is there */
	uint32_t flags = u32(f + 112);
	assert_true(flags & (1u << 10));               /* RESET_REG_SUP */
	assert_false(flags & (1u << 20));              /* not hardware-reduced */
	/* RESET_REG: I/O space, 8 bits, port 0xcf9, value 6 */
	assert_int_equal(f[116], 1);
	assert_int_equal(f[117], 8);
	assert_int_equal(u64(f + 120), ACPI_RESET_PORT);
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	/* the 64-bit blocks repeat the 32-bit ones with widths = lengths * 8 */
	assert_int_equal(f[148], 1);
	assert_int_equal(f[149], 32);
	assert_int_equal(u64(f + 152), ACPI_PM1A_EVT_PORT);
	assert_int_equal(f[172], 1);
	assert_int_equal(f[173], 16);
	assert_int_equal(u64(f + 176), ACPI_PM1A_CNT_PORT);
	for (int off = 244; off < 268; off++)          /* sleep control/status: reduced only */
		assert_int_equal(f[off], 0);
}

/* ---- a small AML reader for the DSDT (ACPI 6.x, 20.2) ---- */

static uint32_t pkg_length(const uint8_t *p, uint32_t *used)
{
	uint32_t extra = p[0] >> 6, len;

	if (extra == 0) {
		*used = 1;
		return p[0] & 0x3f;
	}
	len = p[0] & 0x0f;
	for (uint32_t i = 0; i < extra; i++)
		len |= (uint32_t)p[1 + i] << (4 + 8 * i);
	*used = 1 + extra;
	return len;
}

/* One data object: ZeroOp, OneOp, OnesOp, BytePrefix, WordPrefix. */
static uint64_t aml_integer(const uint8_t **pp)
{
	const uint8_t *p = *pp;

	switch (p[0]) {
	case 0x00: *pp = p + 1; return 0;
	case 0x01: *pp = p + 1; return 1;
	case 0xff: *pp = p + 1; return ~0ULL;
	case 0x0a: *pp = p + 2; return p[1];
	case 0x0b: *pp = p + 3; return u16(p + 1);
	}
	fail_msg("unexpected AML opcode 0x%02x in a package", p[0]);
	return 0;
}

static void test_dsdt_s5_decodes(void **state)
{
	const uint8_t *r = at(write_tables(1), 36), *x = at(u64(r + 24), 52), *f = NULL;
	const uint8_t *d, *p, *end;
	uint32_t used, plen;
	uint64_t v[4];

	(void)state;
	for (int i = 0; i < 2 && !f; i++)
		if (memcmp(at(u64(x + 36 + i * 8), 4), "FACP", 4) == 0)
			f = at(u64(x + 36 + i * 8), 276);
	d = table(u64(f + 140), "DSDT");
	assert_int_equal(d[8], 2);                     /* revision 2: 64-bit integers */
	p = d + 36;
	end = d + u32(d + 4);
	assert_int_equal(end - p, (ptrdiff_t)acpi_dsdt_aml_len);
	assert_memory_equal(p, acpi_dsdt_aml, acpi_dsdt_aml_len);
	assert_int_equal(*p++, 0x08);                  /* NameOp */
	assert_memory_equal(p, "_S5_", 4);             /* NameSeg, at the root scope */
	p += 4;
	assert_int_equal(*p++, 0x12);                  /* PackageOp */
	plen = pkg_length(p, &used);
	assert_ptr_equal(p + plen, end);               /* the package is the rest of the table */
	p += used;
	assert_int_equal(*p++, 4);                     /* NumElements */
	for (int i = 0; i < 4; i++)
		v[i] = aml_integer(&p);
	assert_ptr_equal(p, end);
	assert_int_equal(v[0], ACPI_S5_SLP_TYP);       /* SLP_TYPa */
	assert_int_equal(v[1], ACPI_S5_SLP_TYP);
	assert_int_equal(v[2], 0);
	assert_int_equal(v[3], 0);
	/* what Linux then writes (acpi_hw_legacy_sleep) powers the VM off */
	assert_int_equal(acpi_pm_cnt_action((uint16_t)(v[0] << ACPI_PM1_SLP_TYP_SHIFT | ACPI_PM1_SLP_EN)),
			 ACPI_PM_POWEROFF);
}

/* The MP table's processors and IOAPIC (tables.c) against the MADT. */
static void test_madt_matches_mp_table(void **state)
{
	(void)state;
	for (int cpus = 1; cpus <= 64; cpus = cpus * 4 - 1 + (cpus == 1)) {
		const uint8_t *r, *x, *m = NULL, *mpf, *mpc, *e, *end;
		int mp_cpus = 0, mp_ioapic = -1, lapics = 0, ioapics = 0, isos = 0, nmis = 0;

		assert_int_equal(mptable_write(&gm, cpus, 0x806f0, 0x178bfbff), 0);
		r = at(write_tables(cpus), 36);
		x = at(u64(r + 24), 52);
		for (int i = 0; i < 2; i++)
			if (memcmp(at(u64(x + 36 + i * 8), 4), "APIC", 4) == 0)
				m = table(u64(x + 36 + i * 8), "APIC");
		assert_non_null(m);
		assert_int_equal(u32(m + 36), MINIVMM_LAPIC_BASE);
		assert_int_equal(u32(m + 40), 1);          /* PCAT_COMPAT */

		mpf = at(LINUX_MPTABLE_GPA, 16);
		mpc = at(u32(mpf + 4), 44);
		e = mpc + 44;
		for (int i = 0; i < u16(mpc + 34); i++) {
			if (e[0] == 0) {
				assert_int_equal(e[1], mp_cpus);   /* APIC ids 0..n-1 */
				mp_cpus++;
				e += 20;
			} else {
				if (e[0] == 2)
					mp_ioapic = e[1];
				e += 8;
			}
		}
		e = m + 44;
		end = m + u32(m + 4);
		while (e < end) {
			assert_true(e[1] >= 2 && e + e[1] <= end);
			switch (e[0]) {
			case 0:
				assert_int_equal(e[1], 8);
				assert_int_equal(e[2], lapics);     /* processor UID */
				assert_int_equal(e[3], lapics);     /* APIC id, as in the MP table */
				assert_int_equal(u32(e + 4), 1);    /* enabled */
				lapics++;
				break;
			case 1:
				assert_int_equal(e[1], 12);
				assert_int_equal(e[2], mp_ioapic);
				assert_int_equal(u32(e + 4), MINIVMM_IOAPIC_BASE);
				assert_int_equal(u32(e + 8), 0);    /* GSI base */
				ioapics++;
				break;
			case 2:
				assert_int_equal(e[1], 10);
				assert_int_equal(e[2], 0);          /* ISA */
				assert_int_equal(e[3], ACPI_SCI_IRQ);
				assert_int_equal(u32(e + 4), ACPI_SCI_IRQ);
				assert_int_equal(u16(e + 8), 0xd);  /* active high, level */
				isos++;
				break;
			case 4:
				assert_int_equal(e[1], 6);
				assert_int_equal(e[2], 0xff);       /* every processor */
				assert_int_equal(e[5], 1);          /* LINT1 */
				nmis++;
				break;
			default:
				fail_msg("unexpected MADT entry type %d", e[0]);
			}
			e += e[1];
		}
		assert_ptr_equal(e, end);
		assert_int_equal(lapics, cpus);
		assert_int_equal(mp_cpus, cpus);
		assert_int_equal(ioapics, 1);
		assert_int_equal(isos, 1);
		assert_int_equal(nmis, 1);
	}
}

static void test_refusals(void **state)
{
	uint64_t rsdp;

	(void)state;
	assert_int_equal(acpi_write_tables(&gm, 0, &rsdp), -EINVAL);
	assert_int_equal(acpi_write_tables(&gm, 255, &rsdp), -EINVAL);
	assert_int_equal(acpi_write_tables(&gm, 254, &rsdp), 0);
	table(u64(at(rsdp, 36) + 24), "XSDT");
}

/* Linux is told where the RSDP is: zero page and hvm_start_info. */
static void test_boot_data_carries_rsdp(void **state)
{
	struct linux_boot lb = { .entry_kind = LINUX_ENTRY_64, .cmdline_max = 2047 };
	char err[256];
	uint64_t arg;

	(void)state;
	lb.acpi_rsdp = write_tables(1);
	assert_int_equal(linux_write_boot_data(&gm, &lb, "console=ttyS0", &arg, err, sizeof(err)), 0);
	assert_int_equal(arg, LINUX_ZERO_PAGE_GPA);
	assert_int_equal(u64(at(arg + 0x70, 8)), ACPI_RSDP_GPA);   /* boot_params.acpi_rsdp_addr */
	lb.entry_kind = LINUX_ENTRY_PVH;
	assert_int_equal(linux_write_boot_data(&gm, &lb, "console=ttyS0", &arg, err, sizeof(err)), 0);
	assert_int_equal(arg, LINUX_START_INFO_GPA);
	assert_int_equal(u64(at(arg + offsetof(struct hvm_start_info, rsdp_paddr), 8)), ACPI_RSDP_GPA);
	assert_int_equal(offsetof(struct hvm_start_info, rsdp_paddr), 32);   /* the PVH ABI's offset */
}

static void test_pm_writes(void **state)
{
	(void)state;
	assert_int_equal(acpi_pm_cnt_action(0), ACPI_PM_NONE);
	assert_int_equal(acpi_pm_cnt_action(ACPI_PM1_SCI_EN), ACPI_PM_NONE);
	/* SLP_TYP alone does nothing: Linux writes the type, then SLP_EN */
	assert_int_equal(acpi_pm_cnt_action(5 << 10), ACPI_PM_NONE);
	assert_int_equal(acpi_pm_cnt_action(5 << 10 | 1 << 13 | ACPI_PM1_SCI_EN), ACPI_PM_POWEROFF);
	assert_int_equal(acpi_pm_cnt_action(1 << 10 | 1 << 13), ACPI_PM_SLEEP_UNSUPPORTED);
	assert_int_equal(acpi_pm_cnt_action(1 << 13), ACPI_PM_SLEEP_UNSUPPORTED);
	/* 0xcf9: Linux's reboot=pci writes 0x02 then 0x06; only RST_CPU resets */
	assert_int_equal(acpi_pm_reset_action(0x02), ACPI_PM_NONE);
	assert_int_equal(acpi_pm_reset_action(ACPI_RESET_VALUE), ACPI_PM_RESET);
	assert_int_equal(acpi_pm_reset_action(0x0e), ACPI_PM_RESET);
}

static int setup(void **state)
{
	struct mm_config cfg = { .ram_size = RAM, .backing = MM_BACKING_ANON };
	char err[256];

	(void)state;
	return mm_create(&gm, &cfg, err, sizeof(err));
}

static int teardown(void **state)
{
	(void)state;
	mm_destroy(&gm);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp_and_every_checksum),
		cmocka_unit_test(test_fadt_fields),
		cmocka_unit_test(test_dsdt_s5_decodes),
		cmocka_unit_test(test_madt_matches_mp_table),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_boot_data_carries_rsdp),
		cmocka_unit_test(test_pm_writes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
