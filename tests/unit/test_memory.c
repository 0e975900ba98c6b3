/*
 * Unit tests of mm/memory.c and mm/kvm_stats.c: backing names, RAM layout
 * around the 3 GiB hole, the checked translation's bounds, copy helpers,
 * discard (residency really drops), creation errors, and KVM binary
 * statistics on a real VM running a two-instruction guest.
 *
 * Hugetlb cases run when the 2 MiB pool has free pages; otherwise they are
 * skipped with a message, unless MINIVMM_TEST_HUGEPAGES=1 allows the test to
 * grow the pool, which it restores afterwards (also on failure).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/boot/bootinfo.h"
#include "mm/mm.h"
#include "vmm/kvm/stats.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

struct fixture {
	struct guest_mem gm;
	bool created;
	long hugepages_orig;      /* nr_hugepages to restore, -1 if untouched */
	uint64_t hugepages_size;  /* ... of this huge page size */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->gm.fd = -1;
	f->hugepages_orig = -1;
	*state = f;
	return 0;
}

static void nr_hugepages_path(char *buf, size_t len, uint64_t size)
{
	snprintf(buf, len, "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/nr_hugepages", size >> 10);
}

static long read_long(const char *path)
{
	FILE *fp = fopen(path, "r");
	long v = -1;

	if (!fp)
		return -1;
	if (fscanf(fp, "%ld", &v) != 1)
		v = -1;
	fclose(fp);
	return v;
}

static int write_long(const char *path, long v)
{
	FILE *fp = fopen(path, "w");
	int ret;

	if (!fp)
		return -errno;
	ret = fprintf(fp, "%ld\n", v) < 0 ? -EIO : 0;
	if (fclose(fp) != 0)
		ret = -errno;
	return ret;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->created)
		mm_destroy(&f->gm);
	if (f->hugepages_orig >= 0) {
		char path[128];

		nr_hugepages_path(path, sizeof(path), f->hugepages_size);
		if (write_long(path, f->hugepages_orig))
			fprintf(stderr, "test_memory: could not restore nr_hugepages to %ld\n",
				f->hugepages_orig);
	}
	free(f);
	return 0;
}

static void create(struct fixture *f, enum mm_backing b, uint64_t size, bool prealloc)
{
	struct mm_config cfg = { .ram_size = size, .backing = b, .hugepage_size = 2 * MiB,
				 .prealloc = prealloc };
	char err[256];
	int ret = mm_create(&f->gm, &cfg, err, sizeof(err));

	if (ret)
		fail_msg("mm_create(%s, %" PRIu64 " MiB): %d %s", mm_backing_name(b), size >> 20, ret, err);
	f->created = true;
}

/* Makes sure n free huge pages of this size exist; false (test skipped) if not possible. */
static bool need_hugepages_of(struct fixture *f, uint64_t size, long n)
{
	long free_pages = mm_hugepages_free(size), nr;
	const char *name = size == GiB ? "1 GiB" : "2 MiB";
	char path[128];

	if (free_pages >= n)
		return true;
	if (!getenv("MINIVMM_TEST_HUGEPAGES") || geteuid() != 0) {
		print_message("SKIP: needs %ld free %s huge pages, %ld free (reserve them, or set "
			      "MINIVMM_TEST_HUGEPAGES=1 to let the test reserve and restore)\n",
			      n, name, free_pages < 0 ? 0 : free_pages);
		return false;
	}
	nr_hugepages_path(path, sizeof(path), size);
	nr = read_long(path);
	if (nr < 0) {
		print_message("SKIP: %s: host has no %s huge pages\n", path, name);
		return false;
	}
	f->hugepages_orig = nr;
	f->hugepages_size = size;
	write_long(path, nr + (n - (free_pages < 0 ? 0 : free_pages)));
	if (mm_hugepages_free(size) < n) {
		print_message("SKIP: could not reserve %ld %s huge pages (host memory fragmented?)\n",
			      n, name);
		return false;
	}
	return true;
}

static bool need_hugepages(struct fixture *f, long n)
{
	return need_hugepages_of(f, 2 * MiB, n);
}

/* ---- names ---- */

static void test_backing_parse(void **state)
{
	enum mm_backing b;
	static const char *const names[] = { "anon", "thp", "memfd", "hugetlb" };

	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(mm_backing_parse(names[i], &b), 0);
		assert_int_equal(b, i);
		assert_string_equal(mm_backing_name(b), names[i]);
	}
	assert_int_equal(mm_backing_parse("", &b), -EINVAL);
	assert_int_equal(mm_backing_parse("ANON", &b), -EINVAL);
	assert_int_equal(mm_backing_parse("hugetlbfs", &b), -EINVAL);
	assert_int_equal(mm_backing_parse("thp ", &b), -EINVAL);
	assert_int_equal(mm_backing_parse(NULL, &b), -EINVAL);
}

/* ---- layout and translation ---- */

static void test_layout_small(void **state)
{
	struct fixture *f = *state;
	struct guest_mem *gm = &f->gm;

	create(f, MM_BACKING_ANON, 64 * MiB, false);
	assert_int_equal(gm->nr_regions, 1);
	assert_int_equal(gm->regions[0].gpa, 0);
	assert_int_equal(gm->regions[0].size, 64 * MiB);
	assert_ptr_equal(gm->regions[0].hva, gm->base);
	assert_int_equal(gm->regions[0].offset, 0);
	assert_int_equal(gm->page_size, 4 * KiB);
	assert_int_equal(gm->fd, -1);
	assert_int_equal((uintptr_t)gm->base % (2 * MiB), 0);
	assert_int_equal(mm_discard_granularity(gm), 4 * KiB);
}

static void test_translate_bounds(void **state)
{
	struct fixture *f = *state;
	struct guest_mem *gm = &f->gm;
	const uint64_t ram = 64 * MiB;

	create(f, MM_BACKING_ANON, ram, false);
	uint8_t *b = gm->base;
	/* start */
	assert_ptr_equal(mm_gpa_to_hva(gm, 0, 1), b);
	assert_ptr_equal(mm_gpa_to_hva(gm, 0, ram), b);
	assert_ptr_equal(mm_gpa_to_hva(gm, 0, 0), b);
	/* end */
	assert_ptr_equal(mm_gpa_to_hva(gm, ram - 1, 1), b + ram - 1);
	assert_ptr_equal(mm_gpa_to_hva(gm, ram - 4096, 4096), b + ram - 4096);
	assert_null(mm_gpa_to_hva(gm, ram - 4095, 4096));
	assert_null(mm_gpa_to_hva(gm, ram, 0));
	assert_null(mm_gpa_to_hva(gm, ram, 1));
	/* larger than RAM */
	assert_null(mm_gpa_to_hva(gm, 0, ram + 1));
	assert_null(mm_gpa_to_hva(gm, 4096, ram));
	/* wrap-around: gpa + len overflows to something small */
	assert_null(mm_gpa_to_hva(gm, 1, UINT64_MAX));
	assert_null(mm_gpa_to_hva(gm, 4096, UINT64_MAX - 4095));
	assert_null(mm_gpa_to_hva(gm, UINT64_MAX, 1));
	assert_null(mm_gpa_to_hva(gm, UINT64_MAX, 2));
	assert_null(mm_gpa_to_hva(gm, UINT64_MAX, 0));
	assert_null(mm_gpa_to_hva(gm, UINT64_MAX - 4095, 8192));
	assert_null(mm_gpa_to_hva(gm, 0, UINT64_MAX));
	/* the hole and high memory do not exist with 64 MiB */
	assert_null(mm_gpa_to_hva(gm, MINIVMM_LOWMEM_MAX, 1));
	assert_null(mm_gpa_to_hva(gm, MINIVMM_HIGHMEM_BASE, 1));
	assert_true(mm_is_ram(gm, 0));
	assert_true(mm_is_ram(gm, ram - 1));
	assert_false(mm_is_ram(gm, ram));
	assert_false(mm_is_ram(gm, UINT64_MAX));

	uint64_t gpa;
	assert_int_equal(mm_hva_to_gpa(gm, b + 12345, &gpa), 0);
	assert_int_equal(gpa, 12345);
	assert_int_equal(mm_hva_to_gpa(gm, b + ram, &gpa), -EFAULT);
	assert_int_equal(mm_hva_to_gpa(gm, b - 1, &gpa), -EFAULT);
}

static void test_layout_highmem(void **state)
{
	struct fixture *f = *state;
	struct guest_mem *gm = &f->gm;
	const uint64_t low = MINIVMM_LOWMEM_MAX, ram = 5 * GiB, high = ram - low;
	const uint64_t hb = MINIVMM_HIGHMEM_BASE;

	/* Not preallocated: 5 GiB of address space costs nothing. */
	create(f, MM_BACKING_ANON, ram, false);
	assert_int_equal(gm->nr_regions, 2);
	assert_int_equal(gm->regions[0].gpa, 0);
	assert_int_equal(gm->regions[0].size, low);
	assert_int_equal(gm->regions[0].offset, 0);
	assert_ptr_equal(gm->regions[0].hva, gm->base);
	assert_int_equal(gm->regions[1].gpa, hb);
	assert_int_equal(gm->regions[1].size, high);
	assert_int_equal(gm->regions[1].offset, low);
	assert_ptr_equal(gm->regions[1].hva, gm->base + low);

	uint8_t *b = gm->base;
	assert_ptr_equal(mm_gpa_to_hva(gm, low - 1, 1), b + low - 1);
	assert_ptr_equal(mm_gpa_to_hva(gm, low - 4096, 4096), b + low - 4096);
	/* the hole, and ranges straddling either edge of it */
	assert_null(mm_gpa_to_hva(gm, low, 1));
	assert_null(mm_gpa_to_hva(gm, low, 0));
	assert_null(mm_gpa_to_hva(gm, low - 8, 16));
	assert_null(mm_gpa_to_hva(gm, 0, low + 1));
	assert_null(mm_gpa_to_hva(gm, MINIVMM_MMIO_BASE, 4));
	assert_null(mm_gpa_to_hva(gm, hb - 1, 1));
	assert_null(mm_gpa_to_hva(gm, hb - 8, 16));
	assert_null(mm_gpa_to_hva(gm, low - 4096, hb - low + 8192));  /* spans the hole */
	/* high memory */
	assert_ptr_equal(mm_gpa_to_hva(gm, hb, 1), b + low);
	assert_ptr_equal(mm_gpa_to_hva(gm, hb, high), b + low);
	assert_ptr_equal(mm_gpa_to_hva(gm, hb + high - 1, 1), b + ram - 1);
	assert_null(mm_gpa_to_hva(gm, hb + high, 1));
	assert_null(mm_gpa_to_hva(gm, hb, high + 1));
	assert_null(mm_gpa_to_hva(gm, hb + 1, UINT64_MAX));
	assert_null(mm_gpa_to_hva(gm, 0, ram));

	/* a write through one side is seen through the other */
	uint64_t v = 0x1122334455667788ULL, r = 0, gpa;
	assert_int_equal(mm_write(gm, hb + 4096, &v, sizeof(v)), 0);
	memcpy(&r, b + low + 4096, sizeof(r));
	assert_true(r == v);
	assert_int_equal(mm_hva_to_gpa(gm, b + low + 4096, &gpa), 0);
	assert_true(gpa == hb + 4096);
	assert_int_equal(mm_hva_to_gpa(gm, b + low - 1, &gpa), 0);
	assert_true(gpa == low - 1);
	assert_int_equal(mm_hva_to_gpa(gm, b + ram, &gpa), -EFAULT);
	assert_true(mm_is_ram(gm, hb));
	assert_false(mm_is_ram(gm, low));
}

/* Exactly 3 GiB has no high region; one page more has a one-page high region. */
static void test_layout_edges(void **state)
{
	struct fixture *f = *state;

	create(f, MM_BACKING_ANON, MINIVMM_LOWMEM_MAX, false);
	assert_int_equal(f->gm.nr_regions, 1);
	mm_destroy(&f->gm);
	f->created = false;

	create(f, MM_BACKING_ANON, MINIVMM_LOWMEM_MAX + 4096, false);
	assert_int_equal(f->gm.nr_regions, 2);
	assert_int_equal(f->gm.regions[1].size, 4096);
	assert_non_null(mm_gpa_to_hva(&f->gm, MINIVMM_HIGHMEM_BASE, 4096));
	assert_null(mm_gpa_to_hva(&f->gm, MINIVMM_HIGHMEM_BASE, 4097));
}

static void test_read_write(void **state)
{
	struct fixture *f = *state;
	struct guest_mem *gm = &f->gm;
	const uint64_t ram = 16 * MiB;
	uint8_t in[300], out[300];

	create(f, MM_BACKING_MEMFD, ram, false);
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 1);
	/* across a page boundary, and at the very end */
	assert_int_equal(mm_write(gm, 4096 - 100, in, sizeof(in)), 0);
	assert_int_equal(mm_read(gm, 4096 - 100, out, sizeof(out)), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_memory_equal(gm->base + 4096 - 100, in, sizeof(in));
	assert_int_equal(mm_write(gm, ram - sizeof(in), in, sizeof(in)), 0);
	assert_int_equal(mm_read(gm, ram - sizeof(in), out, sizeof(out)), 0);
	assert_memory_equal(in, out, sizeof(in));
	/* out of range copies fail and touch nothing */
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(mm_write(gm, ram - sizeof(in) + 1, in, sizeof(in)), -EFAULT);
	assert_int_equal(mm_read(gm, ram - 1, out, 2), -EFAULT);
	assert_int_equal(out[0], 0xaa);
	assert_int_equal(mm_read(gm, UINT64_MAX - 1, out, 4), -EFAULT);
	assert_int_equal(mm_write(gm, 8, in, UINT64_MAX - 4), -EFAULT);
	assert_int_equal(mm_read(gm, 0, out, 0), 0);
}

/* ---- residency and discard ---- */

static void fill(struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint8_t *p = mm_gpa_to_hva(gm, gpa, len);

	assert_non_null(p);
	for (uint64_t off = 0; off < len; off += 4096)
		memset(p + off, 0x5a, 4096);
}

static bool all_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = mm_gpa_to_hva(gm, gpa, len);

	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Writes 32 MiB of a 64 MiB RAM, checks it is resident, discards 24 MiB of it,
 * checks the resident bytes drop by that much and the guest reads zeros. */
static void check_discard(struct fixture *f, enum mm_backing b)
{
	struct guest_mem *gm = &f->gm;
	const uint64_t ram = 64 * MiB, used = 32 * MiB, gone = 24 * MiB, at = 4 * MiB;
	uint64_t r0, r1, r2;

	create(f, b, ram, false);
	r0 = mm_resident_bytes(gm);
	fill(gm, 0, used);
	r1 = mm_resident_bytes(gm);
	assert_int_equal(mm_discard(gm, at, gone), 0);
	r2 = mm_resident_bytes(gm);
	print_message("%s: resident %" PRIu64 " KiB empty, %" PRIu64 " KiB after writing 32 MiB, "
		      "%" PRIu64 " KiB after discarding 24 MiB\n", mm_backing_name(b),
		      r0 >> 10, r1 >> 10, r2 >> 10);
	assert_true(r0 < 2 * MiB);
	assert_true(r1 >= used);
	assert_true(r1 <= used + 4 * MiB);
	assert_true(r2 <= r1 - gone + 2 * MiB);
	assert_true(r2 >= used - gone - 2 * MiB);
	assert_true(all_zero(gm, at, gone));
	/* the rest survived */
	assert_int_equal(*(uint8_t *)mm_gpa_to_hva(gm, at - 1, 1), 0x5a);
	assert_int_equal(*(uint8_t *)mm_gpa_to_hva(gm, at + gone, 1), 0x5a);
	/* the page after the discarded range is still there, and RAM still writable */
	fill(gm, at, 4096);
	assert_int_equal(*(uint8_t *)mm_gpa_to_hva(gm, at, 1), 0x5a);
}

static void test_discard_anon(void **state) { check_discard(*state, MM_BACKING_ANON); }
static void test_discard_thp(void **state) { check_discard(*state, MM_BACKING_THP); }
static void test_discard_memfd(void **state) { check_discard(*state, MM_BACKING_MEMFD); }

static void test_discard_hugetlb(void **state)
{
	struct fixture *f = *state;
	struct guest_mem *gm = &f->gm;
	const uint64_t ram = 16 * MiB, hp = 2 * MiB;
	uint64_t r1, r2;

	if (!need_hugepages(f, (long)(ram / hp))) {
		skip();
		return;
	}
	create(f, MM_BACKING_HUGETLB, ram, false);
	assert_int_equal(gm->page_size, hp);
	assert_int_equal(mm_discard_granularity(gm), hp);
	assert_int_equal((uintptr_t)gm->base % hp, 0);
	fill(gm, 0, ram);
	r1 = mm_resident_bytes(gm);
	/* huge page granularity only */
	assert_int_equal(mm_discard(gm, 4096, hp), -EINVAL);
	assert_int_equal(mm_discard(gm, 0, hp + 4096), -EINVAL);
	assert_int_equal(mm_discard(gm, hp, 4 * hp), 0);
	r2 = mm_resident_bytes(gm);
	print_message("hugetlb: resident %" PRIu64 " KiB after writing 16 MiB, %" PRIu64
		      " KiB after discarding 8 MiB\n", r1 >> 10, r2 >> 10);
	assert_int_equal(r1, ram);
	assert_int_equal(r2, ram - 4 * hp);
	assert_true(all_zero(gm, hp, 4 * hp));
	assert_int_equal(*(uint8_t *)mm_gpa_to_hva(gm, 5 * hp, 1), 0x5a);
	/* the process total includes hugetlb pages, which VmRSS alone does not */
	assert_true(mm_process_rss(NULL) >= r2);
}

/* 1 GiB pages: the mapping must be 1 GiB aligned and discard works per 1 GiB. */
static void test_hugetlb_1g(void **state)
{
	struct fixture *f = *state;
	struct guest_mem *gm = &f->gm;
	struct mm_config cfg = { .ram_size = GiB, .backing = MM_BACKING_HUGETLB, .hugepage_size = GiB };
	char err[256];

	if (!need_hugepages_of(f, GiB, 1)) {
		skip();
		return;
	}
	if (mm_create(gm, &cfg, err, sizeof(err)))
		fail_msg("mm_create: %s", err);
	f->created = true;
	assert_int_equal(gm->page_size, GiB);
	assert_int_equal((uintptr_t)gm->base % GiB, 0);
	assert_int_equal(mm_discard_granularity(gm), GiB);
	fill(gm, 0, 8 * MiB);
	assert_int_equal(mm_resident_bytes(gm), GiB);
	assert_int_equal(mm_discard(gm, 0, 2 * MiB), -EINVAL);
	assert_int_equal(mm_discard(gm, 0, GiB), 0);
	assert_int_equal(mm_resident_bytes(gm), 0);
	assert_true(all_zero(gm, 0, 8 * MiB));
}

static void test_discard_args(void **state)
{
	struct fixture *f = *state;
	struct guest_mem *gm = &f->gm;
	const uint64_t ram = 8 * MiB;

	create(f, MM_BACKING_ANON, ram, false);
	assert_int_equal(mm_discard(gm, 1, 4096), -EINVAL);
	assert_int_equal(mm_discard(gm, 4096, 100), -EINVAL);
	assert_int_equal(mm_discard(gm, ram, 4096), -EINVAL);
	assert_int_equal(mm_discard(gm, ram - 4096, 8192), -EINVAL);
	assert_int_equal(mm_discard(gm, 4096, UINT64_MAX & ~4095ULL), -EINVAL);
	assert_int_equal(mm_discard(gm, MINIVMM_HIGHMEM_BASE, 4096), -EINVAL);
	assert_int_equal(mm_discard(gm, ram - 4096, 4096), 0);
	assert_int_equal(mm_discard(gm, 0, ram), 0);
	assert_int_equal(mm_discard(gm, 0, 0), 0);
}

static void test_prealloc(void **state)
{
	struct fixture *f = *state;
	uint64_t r;

	create(f, MM_BACKING_MEMFD, 16 * MiB, true);
	r = mm_resident_bytes(&f->gm);
	assert_true(r >= 16 * MiB && r <= 17 * MiB);
	mm_destroy(&f->gm);
	f->created = false;

	create(f, MM_BACKING_ANON, 16 * MiB, true);
	r = mm_resident_bytes(&f->gm);
	assert_true(r >= 16 * MiB && r <= 17 * MiB);
	assert_true(mm_process_rss(NULL) >= r);
}

/* Called a few times a second by the stats / memory manager: keep it cheap. */
static void test_resident_cost(void **state)
{
	struct fixture *f = *state;
	struct timespec t0, t1;
	const int n = 20;

	create(f, MM_BACKING_ANON, 1 * GiB, false);
	fill(&f->gm, 0, 8 * MiB);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++)
		assert_true(mm_resident_bytes(&f->gm) >= 8 * MiB);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n / 1e3;
	print_message("mm_resident_bytes: %.0f us per call (1 GiB anon, 8 MiB touched)\n", us);
	assert_true(us < 50000);
}

/* ---- creation errors ---- */

static void test_create_errors(void **state)
{
	struct fixture *f = *state;
	struct mm_config cfg = { .backing = MM_BACKING_ANON };
	char err[256];

	cfg.ram_size = 0;
	assert_int_equal(mm_create(&f->gm, &cfg, err, sizeof(err)), -EINVAL);
	cfg.ram_size = 4096 + 1;
	assert_int_equal(mm_create(&f->gm, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "multiple of 4 KiB"));

	/* more than the host can map: says so, with the size */
	cfg.ram_size = 64ULL << 40;
	assert_int_equal(mm_create(&f->gm, &cfg, err, sizeof(err)), -ENOMEM);
	print_message("64T anon: %s\n", err);
	assert_non_null(strstr(err, "64 TiB"));
	assert_non_null(strstr(err, "more than the host can map"));
	cfg.backing = MM_BACKING_MEMFD;
	assert_int_equal(mm_create(&f->gm, &cfg, err, sizeof(err)), -ENOMEM);
	assert_non_null(strstr(err, "64 TiB"));
	cfg.ram_size = UINT64_MAX & ~4095ULL;
	assert_int_equal(mm_create(&f->gm, &cfg, err, sizeof(err)), -ENOMEM);

	/* hugetlb: size must be a multiple of the huge page size */
	cfg.backing = MM_BACKING_HUGETLB;
	cfg.hugepage_size = 2 * MiB;
	cfg.ram_size = 3 * MiB;
	assert_int_equal(mm_create(&f->gm, &cfg, err, sizeof(err)), -EINVAL);
	print_message("hugetlb 3M: %s\n", err);
	assert_non_null(strstr(err, "multiple"));
	cfg.hugepage_size = 64 * KiB;
	cfg.ram_size = 4 * MiB;
	assert_int_equal(mm_create(&f->gm, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "2M or 1G"));

	/* hugetlb: one page more than the pool has free says how many to reserve */
	long free_pages = mm_hugepages_free(2 * MiB);
	assert_true(free_pages >= 0);
	cfg.hugepage_size = 2 * MiB;
	cfg.ram_size = (uint64_t)(free_pages + 1) * 2 * MiB;
	assert_int_equal(mm_create(&f->gm, &cfg, err, sizeof(err)), -ENOMEM);
	print_message("hugetlb pool: %s\n", err);
	char want[64];
	snprintf(want, sizeof(want), "needs %ld free 2 MiB huge page", free_pages + 1);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "nr_hugepages"));
	assert_null(strchr(err, '\n'));

	/* 1 GiB: ask for one more than is free (none here is the usual case) */
	long free_1g = mm_hugepages_free(GiB);
	if (free_1g >= 0) {
		cfg.hugepage_size = GiB;
		cfg.ram_size = (uint64_t)(free_1g + 1) * GiB;
		assert_int_equal(mm_create(&f->gm, &cfg, err, sizeof(err)), -ENOMEM);
		print_message("hugetlb 1G pool: %s\n", err);
		assert_non_null(strstr(err, "1 GiB huge page"));
		assert_non_null(strstr(err, "hugepages-1048576kB/nr_hugepages"));
	}
	assert_false(f->created);

	/* a failed create leaves a struct mm_destroy() accepts */
	mm_destroy(&f->gm);
	/* and a never-created (zeroed) struct closes no descriptor it does not own */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct guest_mem z = { .fd = fd };
	assert_true(fd >= 0);
	mm_destroy(&z);
	assert_true(fcntl(fd, F_GETFD) >= 0);
	close(fd);
}

/* ---- KVM statistics ---- */

static int open_kvm_vm(int *kvm)
{
	*kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (*kvm < 0) {
		print_message("SKIP: /dev/kvm: %s\n", strerror(errno));
		return -1;
	}
	int vm = ioctl(*kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		print_message("SKIP: KVM_CREATE_VM: %s\n", strerror(errno));
		close(*kvm);
		return -1;
	}
	return vm;
}

struct seen {
	int n;
	bool pages_4k, remote_tlb_flush;
};

static void count_cb(const char *name, uint64_t val, void *opaque)
{
	struct seen *s = opaque;

	s->n++;
	if (strcmp(name, "pages_4k") == 0)
		s->pages_4k = true;
	if (strcmp(name, "remote_tlb_flush") == 0)
		s->remote_tlb_flush = true;
}

static void test_kvm_stats_vm(void **state)
{
	int kvm, vm = open_kvm_vm(&kvm);
	struct kvm_stats *st;
	struct seen s = { 0 };
	uint64_t v = 12345;

	if (vm < 0) {
		skip();
		return;
	}
	st = kvm_stats_open(vm);
	assert_non_null(st);
	assert_int_equal(kvm_stats_get(st, "remote_tlb_flush", &v), 0);
	assert_true(v == 0);
	assert_int_equal(kvm_stats_get(st, "pages_4k", &v), 0);
	assert_true(v == 0);
	assert_int_equal(kvm_stats_get(st, "no_such_statistic", &v), -ENOENT);
	assert_int_equal(kvm_stats_foreach(st, count_cb, &s), 0);
	assert_true(s.n > 5);
	assert_true(s.pages_4k && s.remote_tlb_flush);
	kvm_stats_close(st);

	/* not a VM or vCPU fd */
	errno = 0;
	assert_null(kvm_stats_open(kvm));
	assert_true(errno != 0);
	close(vm);
	close(kvm);
}

/*
 * Runs a two-instruction guest directly in 64-bit ring 3 with identity page
 * tables of 2 MiB pages (ring 3 runs natively even under an emulating
 * nested KVM, so KVM must really map guest RAM): it writes a byte at 2 MiB
 * and leaves with an OUT. Then the statistics must have moved: the vCPU
 * exited, and KVM mapped guest RAM with the page size the backing allows
 * (4 KiB for anon, 2 MiB for THP, which needs the 2 MiB host alignment).
 */
static void run_tiny_guest(struct fixture *f, enum mm_backing b, uint64_t *p4k, uint64_t *p2m,
			   uint64_t *exits, uint64_t *io_exits)
{
	struct guest_mem *gm = &f->gm;
	int kvm, vm = open_kvm_vm(&kvm);
	/* mov byte [0x200000], 1; out 0x10, al */
	static const uint8_t code[] = { 0xc6, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0x01, 0xe6, 0x10 };
	const uint64_t pml4 = 0x1000, pdpt = 0x2000, pd = 0x3000, entry = 0x4000;

	if (vm < 0) {
		skip();
		return;
	}
	create(f, b, 4 * MiB, true);
	uint64_t e;
	e = pdpt | 7;                                    /* present, writable, user */
	assert_int_equal(mm_write(gm, pml4, &e, 8), 0);
	e = pd | 7;
	assert_int_equal(mm_write(gm, pdpt, &e, 8), 0);
	for (uint64_t i = 0; i < 2; i++) {
		e = (i << 21) | 0x87;                    /* 2 MiB page, user */
		assert_int_equal(mm_write(gm, pd + i * 8, &e, 8), 0);
	}
	assert_int_equal(mm_write(gm, entry, code, sizeof(code)), 0);

	struct kvm_userspace_memory_region mr = {
		.slot = 0, .guest_phys_addr = gm->regions[0].gpa, .memory_size = gm->regions[0].size,
		.userspace_addr = (uintptr_t)gm->regions[0].hva,
	};
	assert_int_equal(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr), 0);
	ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);  /* VMX wants it; harmless elsewhere */
	int cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	assert_true(cpu >= 0);
	int msz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	assert_true(msz > 0);
	struct kvm_run *run = mmap(NULL, (size_t)msz, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
	assert_true(run != MAP_FAILED);

	struct kvm_sregs sr;
	assert_int_equal(ioctl(cpu, KVM_GET_SREGS, &sr), 0);
	struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 0x1b, .type = 11,
				  .present = 1, .dpl = 3, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment ds = { .base = 0, .limit = 0xffffffff, .selector = 0x23, .type = 3,
				  .present = 1, .dpl = 3, .db = 1, .s = 1, .g = 1 };
	sr.cs = cs;
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = ds;
	sr.cr3 = pml4;
	sr.cr4 = 0x20;                 /* PAE */
	sr.cr0 = 0x80050033;           /* PG, AM, WP, NE, ET, MP, PE */
	sr.efer = 0x500;               /* LME, LMA */
	assert_int_equal(ioctl(cpu, KVM_SET_SREGS, &sr), 0);
	struct kvm_regs regs = { .rip = entry, .rflags = 0x3002 };  /* IOPL 3: OUT allowed in ring 3 */
	assert_int_equal(ioctl(cpu, KVM_SET_REGS, &regs), 0);

	struct kvm_stats *vst = kvm_stats_open(vm), *cst = kvm_stats_open(cpu);
	assert_non_null(vst);
	assert_non_null(cst);
	assert_int_equal(kvm_stats_get(cst, "exits", exits), 0);
	assert_true(*exits == 0);
	assert_int_equal(kvm_stats_get(vst, "pages_4k", p4k), 0);
	assert_true(*p4k == 0);

	int ret = ioctl(cpu, KVM_RUN, 0);
	assert_int_equal(ret, 0);
	if (run->exit_reason != KVM_EXIT_IO)
		fail_msg("exit reason %u (internal error suberror %u)", run->exit_reason,
			 run->internal.suberror);
	assert_int_equal(run->io.port, 0x10);
	assert_int_equal(*(uint8_t *)mm_gpa_to_hva(gm, 0x200000, 1), 1);

	assert_int_equal(kvm_stats_get(vst, "pages_4k", p4k), 0);
	assert_int_equal(kvm_stats_get(vst, "pages_2m", p2m), 0);
	assert_int_equal(kvm_stats_get(cst, "exits", exits), 0);
	assert_int_equal(kvm_stats_get(cst, "io_exits", io_exits), 0);
	print_message("%s guest: pages_4k=%" PRIu64 " pages_2m=%" PRIu64 " exits=%" PRIu64
		      " io_exits=%" PRIu64 "\n", mm_backing_name(b), *p4k, *p2m, *exits, *io_exits);
	kvm_stats_close(vst);
	kvm_stats_close(cst);
	munmap(run, (size_t)msz);
	close(cpu);
	close(vm);
	close(kvm);
}

static void test_kvm_stats_guest_anon(void **state)
{
	uint64_t p4k = 0, p2m = 0, exits = 0, io = 0;

	run_tiny_guest(*state, MM_BACKING_ANON, &p4k, &p2m, &exits, &io);
	assert_true(exits >= 1);
	assert_true(p4k >= 1);
	assert_true(p2m == 0);
}

static void test_kvm_stats_guest_thp(void **state)
{
	uint64_t p4k = 0, p2m = 0, exits = 0, io = 0;

	run_tiny_guest(*state, MM_BACKING_THP, &p4k, &p2m, &exits, &io);
	assert_true(exits >= 1);
	assert_true(p2m >= 1);
}

static void test_kvm_stats_guest_hugetlb(void **state)
{
	uint64_t p4k = 0, p2m = 0, exits = 0, io = 0;

	if (!need_hugepages(*state, 2)) {
		skip();
		return;
	}
	run_tiny_guest(*state, MM_BACKING_HUGETLB, &p4k, &p2m, &exits, &io);
	assert_true(exits >= 1);
	assert_true(p2m >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backing_parse),
		cmocka_unit_test_setup_teardown(test_layout_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_translate_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_highmem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_anon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_thp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_memfd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_hugetlb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hugetlb_1g, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prealloc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resident_cost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
		cmocka_unit_test(test_kvm_stats_vm),
		cmocka_unit_test_setup_teardown(test_kvm_stats_guest_anon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kvm_stats_guest_thp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kvm_stats_guest_hugetlb, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
