/*
 * Unit tests of mm/translate.c, the translation inspector's pure part: the
 * paging mode from CR0/CR4/EFER, walks over synthetic tables in every mode
 * (4 KiB, 2 MiB, 1 GiB, 4 MiB leaves, PSE-36, effective rights, NX only with
 * EFER.NXE), where a walk stops (not present at each level, reserved PS,
 * a table outside RAM, a non-canonical address), the memory references of
 * a TLB miss for every pair of guest and host page sizes, TLB entries to
 * cover memory, and the whole-table scan, including a table that points to
 * itself (bounded, reported truncated).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "mm/translate.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)


#define P  MM_PTE_P
#define RW MM_PTE_RW
#define US MM_PTE_US
#define PS MM_PTE_PS

/* Synthetic guest-physical memory: 64 pages at GPA 0; above is not RAM. */
#define MEM_PAGES 64
static uint8_t mem[MEM_PAGES * 4096] __attribute__((aligned(4096)));

static int rd(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
	(void)ctx;
	if (gpa + size > sizeof(mem) || gpa + size < gpa)
		return -EFAULT;
	*val = 0;
	memcpy(val, mem + gpa, size);
	return 0;
}

static const void *table(void *ctx, uint64_t gpa)
{
	(void)ctx;
	return gpa + 4096 <= sizeof(mem) ? mem + gpa : NULL;
}

/* For the scan: RAM is the first 1 GiB (mem[] holds only the tables). */
static bool is_ram(void *ctx, uint64_t gpa, uint64_t len)
{
	(void)ctx;
	return gpa + len <= GiB && gpa + len >= gpa;
}

static void put64(uint64_t gpa, uint64_t v)
{
	memcpy(mem + gpa, &v, 8);
}

static void put32(uint64_t gpa, uint32_t v)
{
	memcpy(mem + gpa, &v, 4);
}

static int reset(void **state)
{
	(void)state;
	memset(mem, 0, sizeof(mem));
	return 0;
}

static const struct mm_cpu_paging long4 = { .cr0 = CR0_PG | 1, .cr3 = 0x1000, .cr4 = CR4_PAE,
					    .efer = EFER_LMA | (1ull << 8) };

/* PML4 at 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000 for gva 0x40201000 + ... */
static void build_4level(void)
{
	put64(0x1000 + 0 * 8, 0x2000 | P | RW | US);
	put64(0x2000 + 1 * 8, 0x3000 | P | RW | US);          /* 1 GiB .. 2 GiB */
	put64(0x3000 + 1 * 8, 0x4000 | P | RW | US);          /* 2 MiB .. 4 MiB of it */
	put64(0x4000 + 1 * 8, 0x123000 | P | RW | US | MM_PTE_A | MM_PTE_D);
	put64(0x3000 + 2 * 8, 0x800000 | P | RW | PS);        /* a 2 MiB page, supervisor */
	put64(0x2000 + 2 * 8, 0x40000000 | P | PS | MM_PTE_NX); /* a 1 GiB page, read-only */
}

static void test_mode(void **state)
{
	(void)state;
	struct mm_cpu_paging p = { 0 };

	assert_int_equal(mm_xlate_mode(&p), MM_XLATE_OFF);
	p.cr0 = CR0_PG;
	assert_int_equal(mm_xlate_mode(&p), MM_XLATE_32);
	p.cr4 = CR4_PAE;
	assert_int_equal(mm_xlate_mode(&p), MM_XLATE_PAE);
	p.efer = EFER_LMA;
	assert_int_equal(mm_xlate_mode(&p), MM_XLATE_4LEVEL);
	p.cr4 |= CR4_LA57;
	assert_int_equal(mm_xlate_mode(&p), MM_XLATE_5LEVEL);
	assert_string_equal(mm_xlate_mode_name(MM_XLATE_4LEVEL), "4-level");
}

static void test_walk_4level_sizes(void **state)
{
	(void)state;
	struct mm_xlate_walk w;

	build_4level();
	/* 4 KiB: four levels, the PT entry's page plus the offset */
	mm_xlate_walk(&long4, 0x40201abcull, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_OK);
	assert_int_equal(w.nr_levels, 4);
	assert_int_equal(w.paging_levels, 4);
	assert_int_equal(w.page_size, 4096);
	assert_int_equal(w.gpa, 0x123abc);
	assert_string_equal(w.lv[0].name, "PML4");
	assert_string_equal(w.lv[3].name, "PT");
	assert_int_equal(w.lv[3].index, 1);
	assert_int_equal(w.lv[3].entry_gpa, 0x4008);
	assert_true(w.writable && w.user && !w.nx);

	/* 2 MiB: stops at the PD, offset within 2 MiB kept; supervisor only */
	mm_xlate_walk(&long4, 0x40400000ull + 0x12345, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_OK);
	assert_int_equal(w.nr_levels, 3);
	assert_int_equal(w.page_size, 2 * MiB);
	assert_int_equal(w.gpa, 0x800000 + 0x12345);
	assert_false(w.user);

	/* 1 GiB: stops at the PDPT; read-only; NX only counts with EFER.NXE */
	mm_xlate_walk(&long4, 0x80000000ull + 0x3456789, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_OK);
	assert_int_equal(w.nr_levels, 2);
	assert_int_equal(w.page_size, GiB);
	assert_int_equal(w.gpa, 0x40000000ull + 0x3456789);
	assert_false(w.writable);
	assert_false(w.nx);
	struct mm_cpu_paging nxe = long4;
	nxe.efer |= EFER_NXE;
	mm_xlate_walk(&nxe, 0x80000000ull, rd, NULL, &w);
	assert_true(w.nx);
}

static void test_walk_stops(void **state)
{
	(void)state;
	struct mm_xlate_walk w;

	build_4level();
	/* not present at each level */
	mm_xlate_walk(&long4, 1ull << 39, rd, NULL, &w);          /* PML4[1] */
	assert_int_equal(w.stop, MM_XLATE_NOT_PRESENT);
	assert_int_equal(w.nr_levels, 1);
	mm_xlate_walk(&long4, 3ull << 30, rd, NULL, &w);          /* PDPT[3] */
	assert_int_equal(w.stop, MM_XLATE_NOT_PRESENT);
	assert_int_equal(w.nr_levels, 2);
	assert_string_equal(w.lv[1].name, "PDPT");
	mm_xlate_walk(&long4, 0x40000000ull, rd, NULL, &w);       /* PD[0] */
	assert_int_equal(w.stop, MM_XLATE_NOT_PRESENT);
	assert_int_equal(w.nr_levels, 3);
	mm_xlate_walk(&long4, 0x40202000ull, rd, NULL, &w);       /* PT[2] */
	assert_int_equal(w.stop, MM_XLATE_NOT_PRESENT);
	assert_int_equal(w.nr_levels, 4);
	assert_string_equal(mm_xlate_stop_name(w.stop), "not present");

	/* PS in a PML4 entry is reserved */
	put64(0x1000 + 3 * 8, 0x5000 | P | PS);
	mm_xlate_walk(&long4, 3ull << 39, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_RESERVED);

	/* a table outside RAM: the walk says at which level */
	put64(0x1000 + 4 * 8, (1ull << 40) | P);
	mm_xlate_walk(&long4, 4ull << 39, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_NOT_RAM);
	assert_int_equal(w.nr_levels, 2);
	assert_int_equal(w.lv[1].table_gpa, 1ull << 40);

	/* non-canonical: bit 47 set without the bits above */
	mm_xlate_walk(&long4, 1ull << 47, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_NON_CANONICAL);
	assert_int_equal(w.nr_levels, 0);
	/* canonical upper half walks (and finds nothing here) */
	mm_xlate_walk(&long4, 0xffff800000000000ull, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_NOT_PRESENT);
	assert_int_equal(w.lv[0].index, 256);
}

static void test_walk_5level(void **state)
{
	(void)state;
	struct mm_cpu_paging p = long4;
	struct mm_xlate_walk w;

	p.cr4 |= CR4_LA57;
	p.cr3 = 0x6000;
	put64(0x6000 + 1 * 8, 0x1000 | P | RW);   /* PML5[1] -> the 4-level tables */
	build_4level();
	mm_xlate_walk(&p, (1ull << 48) | 0x40201abcull, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_OK);
	assert_int_equal(w.nr_levels, 5);
	assert_string_equal(w.lv[0].name, "PML5");
	assert_int_equal(w.gpa, 0x123abc);
	/* 1 << 48 is canonical with 57 bits, not with 48 */
	mm_xlate_walk(&long4, 1ull << 48, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_NON_CANONICAL);
}

static void test_walk_pae_and_32bit(void **state)
{
	(void)state;
	struct mm_xlate_walk w;
	struct mm_cpu_paging pae = { .cr0 = CR0_PG, .cr3 = 0x1020, .cr4 = CR4_PAE };

	/* PAE: 4 PDPTEs at CR3 (32-byte aligned), no rights bits there */
	put64(0x1020 + 2 * 8, 0x2000 | P);
	put64(0x2000 + 3 * 8, 0x3000 | P | RW | US);
	put64(0x3000 + 4 * 8, 0x7000 | P | RW | US);
	put64(0x2000 + 5 * 8, 0xa00000 | P | RW | PS);
	mm_xlate_walk(&pae, 0x80604123ull, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_OK);
	assert_int_equal(w.nr_levels, 3);
	assert_int_equal(w.gpa, 0x7123);
	assert_true(w.user && w.writable);
	mm_xlate_walk(&pae, 0x80a00000ull + 77, rd, NULL, &w);
	assert_int_equal(w.page_size, 2 * MiB);
	assert_int_equal(w.gpa, 0xa00000 + 77);
	mm_xlate_walk(&pae, 0x100000000ull, rd, NULL, &w);   /* 32-bit modes: 32-bit addresses */
	assert_int_equal(w.stop, MM_XLATE_NON_CANONICAL);

	/* 32-bit: 4-byte entries; 4 MiB pages with CR4.PSE, PSE-36 high bits */
	struct mm_cpu_paging p32 = { .cr0 = CR0_PG, .cr3 = 0x8000, .cr4 = CR4_PSE };
	put32(0x8000 + 1 * 4, 0x9000 | P | RW);
	put32(0x9000 + 2 * 4, 0x5000 | P | RW);
	put32(0x8000 + 3 * 4, 0x00c00000 | (0x3u << 13) | P | PS);
	mm_xlate_walk(&p32, 0x00402abcull, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_OK);
	assert_int_equal(w.nr_levels, 2);
	assert_int_equal(w.gpa, 0x5abc);
	mm_xlate_walk(&p32, 0x00c00000ull + 0x1234, rd, NULL, &w);
	assert_int_equal(w.page_size, 4 * MiB);
	assert_int_equal(w.gpa, (3ull << 32) | 0x00c00000 | 0x1234);
	/* without CR4.PSE the PS bit is reserved */
	p32.cr4 = 0;
	mm_xlate_walk(&p32, 0x00c00000ull, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_RESERVED);

	/* paging off: the address is the GPA, no levels */
	struct mm_cpu_paging off = { 0 };
	mm_xlate_walk(&off, 0x12345678ull, rd, NULL, &w);
	assert_int_equal(w.stop, MM_XLATE_OK);
	assert_int_equal(w.gpa, 0x12345678ull);
	assert_int_equal(w.nr_levels, 0);
	assert_int_equal(w.page_size, 0);
}

/* Every pair of guest and host page sizes, 4-level stages: g * (h + 1) + h. */
static void test_refs_per_size_pair(void **state)
{
	(void)state;
	static const struct { uint64_t guest, host; unsigned refs; } pairs[] = {
		{ 4 * KiB, 4 * KiB, 24 }, { 4 * KiB, 2 * MiB, 19 }, { 4 * KiB, GiB, 14 },
		{ 2 * MiB, 4 * KiB, 19 }, { 2 * MiB, 2 * MiB, 15 }, { 2 * MiB, GiB, 11 },
		{ GiB, 4 * KiB, 14 }, { GiB, 2 * MiB, 11 }, { GiB, GiB, 8 },
	};

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		assert_int_equal(mm_xlate_2d_refs(4, pairs[i].guest, 4, pairs[i].host), pairs[i].refs);
	/* one stage alone: native paging, shadow paging */
	assert_int_equal(mm_xlate_stage_refs(4, 4 * KiB), 4);
	assert_int_equal(mm_xlate_stage_refs(4, 2 * MiB), 3);
	assert_int_equal(mm_xlate_stage_refs(4, GiB), 2);
	assert_int_equal(mm_xlate_stage_refs(5, 4 * KiB), 5);
	assert_int_equal(mm_xlate_stage_refs(2, 4 * MiB), 1);
	/* 5-level guest on a 4-level second stage: 5 * 5 + 4 */
	assert_int_equal(mm_xlate_2d_refs(5, 4 * KiB, 4, 4 * KiB), 29);
	/* no guest paging: only the second stage */
	assert_int_equal(mm_xlate_2d_refs(0, 0, 4, 4 * KiB), 4);
	assert_int_equal(mm_xlate_2d_refs(0, 0, 4, 2 * MiB), 3);
	/* sizes a stage cannot map */
	assert_int_equal(mm_xlate_stage_refs(4, 8 * KiB), 0);
	assert_int_equal(mm_xlate_2d_refs(4, 4 * KiB, 4, 64 * KiB), 0);
	assert_int_equal(mm_xlate_stage_refs(1, GiB), 0);
}

static void test_tlb_entries(void **state)
{
	(void)state;
	assert_int_equal(mm_xlate_tlb_entries(GiB, 4 * KiB, 4 * KiB), 262144);
	assert_int_equal(mm_xlate_tlb_entries(GiB, 2 * MiB, 2 * MiB), 512);
	/* the smaller stage decides: a 2 MiB guest page on 4 KiB host pages */
	assert_int_equal(mm_xlate_tlb_entries(GiB, 2 * MiB, 4 * KiB), 262144);
	assert_int_equal(mm_xlate_tlb_entries(GiB, 4 * KiB, 2 * MiB), 262144);
	assert_int_equal(mm_xlate_tlb_entries(GiB, GiB, GiB), 1);
	assert_int_equal(mm_xlate_tlb_entries(3 * MiB, 2 * MiB, 2 * MiB), 2);   /* rounded up */
	assert_int_equal(mm_xlate_tlb_entries(GiB, 0, 2 * MiB), 512);           /* no guest paging */
	assert_int_equal(mm_xlate_tlb_entries(0, 4 * KiB, 4 * KiB), 0);
}

static void test_scan(void **state)
{
	(void)state;
	struct mm_xlate_scan s;

	build_4level();
	/* one leaf of each size; the 1 GiB page lies above the first GiB, so not in RAM */
	assert_int_equal(mm_xlate_scan(&long4, table, is_ram, NULL, 100, &s), 0);
	assert_int_equal(s.mapped[0], 4096);
	assert_int_equal(s.mapped[1], 2 * MiB);
	assert_int_equal(s.mapped[2], GiB);
	assert_int_equal(s.mapped_ram[0], 4096);
	assert_int_equal(s.mapped_ram[1], 2 * MiB);
	assert_int_equal(s.mapped_ram[2], 0);
	assert_int_equal(s.tables, 4);
	assert_false(s.truncated);

	/* a table outside RAM is skipped and counted */
	put64(0x1000 + 4 * 8, (1ull << 40) | P);
	mm_xlate_scan(&long4, table, is_ram, NULL, 100, &s);
	assert_int_equal(s.bad_tables, 1);

	/* a PML4 entry pointing back at the PML4 re-reads its tables as lower
	 * levels: the scan stops at max_tables and says so */
	put64(0x1000 + 5 * 8, 0x1000 | P);
	mm_xlate_scan(&long4, table, is_ram, NULL, 5, &s);
	assert_true(s.truncated);
	assert_int_equal(s.tables, 5);

	/* paging off has nothing to scan */
	struct mm_cpu_paging off = { 0 };
	assert_int_equal(mm_xlate_scan(&off, table, is_ram, NULL, 10, &s), -ENOENT);
}

static void test_scan_pae(void **state)
{
	(void)state;
	struct mm_cpu_paging pae = { .cr0 = CR0_PG, .cr3 = 0x1020, .cr4 = CR4_PAE };
	struct mm_xlate_scan s;

	put64(0x1020 + 0 * 8, 0x2000 | P);
	put64(0x1000 + 0 * 8, 0x5000 | P);   /* outside the 4 PDPTEs at 0x1020: never read */
	put64(0x2000 + 0 * 8, 0x3000 | P);
	put64(0x3000 + 7 * 8, 0x9000 | P);
	put64(0x2000 + 9 * 8, 0x400000 | P | PS);
	mm_xlate_scan(&pae, table, is_ram, NULL, 100, &s);
	assert_int_equal(s.mapped[0], 4096);
	assert_int_equal(s.mapped[1], 2 * MiB);
	assert_int_equal(s.tables, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_mode, reset),
		cmocka_unit_test_setup(test_walk_4level_sizes, reset),
		cmocka_unit_test_setup(test_walk_stops, reset),
		cmocka_unit_test_setup(test_walk_5level, reset),
		cmocka_unit_test_setup(test_walk_pae_and_32bit, reset),
		cmocka_unit_test_setup(test_refs_per_size_pair, reset),
		cmocka_unit_test_setup(test_tlb_entries, reset),
		cmocka_unit_test_setup(test_scan, reset),
		cmocka_unit_test_setup(test_scan_pae, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
