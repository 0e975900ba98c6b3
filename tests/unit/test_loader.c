/*
 * Unit tests of the ELF loader's bounds (vmm/loader.c): every header and
 * segment field that could point outside the file or outside guest RAM is
 * refused with a message, and a good image lands byte for byte with its
 * .bss zeroed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/boot.h"

#define RAM (16ULL << 20)

struct image {
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint8_t pad[4096 - sizeof(Elf64_Ehdr) - sizeof(Elf64_Phdr)];
	uint8_t code[64];
};

static struct guest_mem gm;

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

static void good_image(struct image *im)
{
	memset(im, 0, sizeof(*im));
	memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
	im->eh.e_ident[EI_CLASS] = ELFCLASS64;
	im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	im->eh.e_ident[EI_VERSION] = EV_CURRENT;
	im->eh.e_type = ET_EXEC;
	im->eh.e_machine = EM_X86_64;
	im->eh.e_version = EV_CURRENT;
	im->eh.e_entry = 0x200000;
	im->eh.e_phoff = offsetof(struct image, ph);
	im->eh.e_ehsize = sizeof(Elf64_Ehdr);
	im->eh.e_phentsize = sizeof(Elf64_Phdr);
	im->eh.e_phnum = 1;
	im->ph.p_type = PT_LOAD;
	im->ph.p_offset = offsetof(struct image, code);
	im->ph.p_paddr = im->ph.p_vaddr = 0x200000;
	im->ph.p_filesz = sizeof(im->code);
	im->ph.p_memsz = 8192;
	for (size_t i = 0; i < sizeof(im->code); i++)
		im->code[i] = (uint8_t)(i * 7 + 1);
}

static int load(const struct image *im, size_t len, char *err, size_t errlen)
{
	struct elf_image out;

	err[0] = 0;
	return elf_load(&gm, (const uint8_t *)im, len, &out, err, errlen);
}

static void test_good_image_loads(void **state)
{
	struct image im;
	struct elf_image out;
	char err[256];
	uint8_t *p;

	(void)state;
	good_image(&im);
	/* dirty the .bss area first: the loader must zero it */
	memset(mm_gpa_to_hva(&gm, 0x200000, 8192), 0xaa, 8192);
	assert_int_equal(elf_load(&gm, (uint8_t *)&im, sizeof(im), &out, err, sizeof(err)), 0);
	assert_int_equal(out.entry, 0x200000);
	assert_int_equal(out.lo, 0x200000);
	assert_int_equal(out.hi, 0x200000 + 8192);
	p = mm_gpa_to_hva(&gm, 0x200000, 8192);
	assert_memory_equal(p, im.code, sizeof(im.code));
	for (size_t i = sizeof(im.code); i < 8192; i++)
		assert_int_equal(p[i], 0);
}

static void expect_refused(struct image *im, size_t len, const char *msg)
{
	char err[256];

	assert_true(load(im, len, err, sizeof(err)) < 0);
	if (!strstr(err, msg))
		fail_msg("message '%s' lacks '%s'", err, msg);
}

static void test_truncated_header(void **state)
{
	struct image im;

	(void)state;
	good_image(&im);
	expect_refused(&im, 10, "truncated");
	expect_refused(&im, sizeof(Elf64_Ehdr) + 8, "truncated");   /* phdr cut off */
}

static void test_bad_identity(void **state)
{
	struct image im;

	(void)state;
	good_image(&im);
	im.eh.e_ident[0] = 0;
	expect_refused(&im, sizeof(im), "not an ELF");
	good_image(&im);
	im.eh.e_ident[EI_CLASS] = ELFCLASS32;
	expect_refused(&im, sizeof(im), "64-bit");
	good_image(&im);
	im.eh.e_machine = EM_AARCH64;
	expect_refused(&im, sizeof(im), "x86-64");
	good_image(&im);
	im.eh.e_type = ET_DYN;
	expect_refused(&im, sizeof(im), "static executable");
}

static void test_phdr_table_bounds(void **state)
{
	struct image im;

	(void)state;
	good_image(&im);
	im.eh.e_phoff = UINT64_MAX - 8;          /* offset + size wraps */
	expect_refused(&im, sizeof(im), "program headers");
	good_image(&im);
	im.eh.e_phnum = 0xffff;                  /* table runs past the file */
	expect_refused(&im, sizeof(im), "program headers");
	good_image(&im);
	im.eh.e_phentsize = 12;
	expect_refused(&im, sizeof(im), "program headers");
}

static void test_segment_file_bounds(void **state)
{
	struct image im;

	(void)state;
	good_image(&im);
	im.ph.p_offset = sizeof(im) - 8;         /* data past end of file */
	expect_refused(&im, sizeof(im), "outside the file");
	good_image(&im);
	im.ph.p_offset = UINT64_MAX - 4;         /* wrap */
	expect_refused(&im, sizeof(im), "outside the file");
	good_image(&im);
	im.ph.p_filesz = im.ph.p_memsz + 1;      /* filesz > memsz */
	expect_refused(&im, sizeof(im), "outside the file");
}

static void test_segment_ram_bounds(void **state)
{
	struct image im;

	(void)state;
	good_image(&im);
	im.ph.p_paddr = RAM - 4096;              /* ends past RAM: more --mem would do */
	expect_refused(&im, sizeof(im), "too small for this image");
	good_image(&im);
	im.ph.p_paddr = MINIVMM_LOWMEM_MAX - 4096;   /* runs into the MMIO hole */
	expect_refused(&im, sizeof(im), "outside guest RAM");
	good_image(&im);
	im.ph.p_paddr = UINT64_MAX - 4095;       /* wraps */
	expect_refused(&im, sizeof(im), "outside guest RAM");
	good_image(&im);
	im.ph.p_paddr = 0x1000;                  /* below the image base: boot info lives there */
	expect_refused(&im, sizeof(im), "outside guest RAM");
	good_image(&im);
	im.ph.p_memsz = UINT64_MAX;
	im.ph.p_filesz = 16;
	expect_refused(&im, sizeof(im), "outside guest RAM");
}

static void test_entry_and_empty(void **state)
{
	struct image im;

	(void)state;
	good_image(&im);
	im.eh.e_entry = 0x100;
	expect_refused(&im, sizeof(im), "entry point");
	good_image(&im);
	im.ph.p_type = PT_NOTE;
	expect_refused(&im, sizeof(im), "no loadable segment");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_image_loads),
		cmocka_unit_test(test_truncated_header),
		cmocka_unit_test(test_bad_identity),
		cmocka_unit_test(test_phdr_table_bounds),
		cmocka_unit_test(test_segment_file_bounds),
		cmocka_unit_test(test_segment_ram_bounds),
		cmocka_unit_test(test_entry_and_empty),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
