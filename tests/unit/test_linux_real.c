/*
 * Unit tests of the Linux loaders on Debian's current stock kernel,
 * fetched by tests/tools/linux-image.sh (apt-get download, dpkg -x, cached
 * under build/): its setup header, its payload decompressed on the host to
 * the vmlinux ELF with a PVH note, the kernel loaded each way with the zero
 * page or hvm_start_info it gets, and refusals of damaged copies of it.
 * Every test skips, saying why, when the package cannot be fetched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/boot.h"

#define RAM (512ULL << 20)

static struct guest_mem gm;
static uint8_t *kernel;
static size_t kernel_len;
static char why[1100];

static uint32_t get32(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, 4);
	return v;
}

static void fetch_kernel(void)
{
	FILE *p = popen("tests/tools/linux-image.sh 2>&1", "r");
	char path[1024] = "", line[1024], err[512];

	if (!p) {
		snprintf(why, sizeof(why), "cannot run tests/tools/linux-image.sh");
		return;
	}
	/* the first line is the kernel (or the reason); read all, or the script gets SIGPIPE */
	if (!fgets(path, sizeof(path), p))
		snprintf(path, sizeof(path), "tests/tools/linux-image.sh printed nothing");
	while (fgets(line, sizeof(line), p))
		;
	path[strcspn(path, "\n")] = 0;
	if (pclose(p) != 0)
		snprintf(why, sizeof(why), "Debian's kernel is not available: %s", path);
	else if (read_file_as(path, "kernel", &kernel, &kernel_len, err, sizeof(err)))
		snprintf(why, sizeof(why), "%s", err);
}

static int setup(void **state)
{
	struct mm_config cfg = { .ram_size = RAM, .backing = MM_BACKING_ANON };
	char err[256];

	(void)state;
	fetch_kernel();
	return mm_create(&gm, &cfg, err, sizeof(err));
}

static int teardown(void **state)
{
	(void)state;
	mm_destroy(&gm);
	free(kernel);
	return 0;
}

#define NEED_KERNEL() do { if (!kernel) { printf("SKIP: %s\n", why); skip(); } } while (0)

static void test_setup_header(void **state)
{
	struct linux_setup s;
	char err[256];

	(void)state;
	NEED_KERNEL();
	assert_int_equal(boot_image_kind(kernel, kernel_len), BOOT_IMAGE_BZIMAGE);
	assert_int_equal(bzimage_parse(kernel, kernel_len, &s, err, sizeof(err)), 0);
	assert_true(s.version >= 0x020a);
	assert_int_equal(s.hdr_len, 0x202 + kernel[0x201] - 0x1f1);
	assert_true(s.loadflags & LOADFLAG_LOADED_HIGH);
	assert_true(s.xloadflags & XLF_KERNEL_64);
	assert_true(s.relocatable);
	assert_int_equal(s.pref_address, 0x1000000);
	assert_int_equal(s.pm, kernel + (kernel[0x1f1] + 1) * 512);
	assert_true(s.payload > s.pm && s.payload + s.payload_len <= kernel + kernel_len);
	assert_true(s.init_size > s.payload_len);
	assert_true(s.cmdline_size >= 2047);
	/* Debian compresses with xz */
	assert_int_equal(linux_comp_detect(s.payload, s.payload_len), LINUX_COMP_XZ);
}

static void test_payload_decompresses_to_vmlinux(void **state)
{
	struct linux_setup s;
	uint8_t *v;
	size_t vlen;
	uint64_t pvh = 0;
	char err[256];
	Elf64_Ehdr eh;

	(void)state;
	NEED_KERNEL();
	assert_int_equal(bzimage_parse(kernel, kernel_len, &s, err, sizeof(err)), 0);
	if (linux_decompress(s.payload, s.payload_len, &v, &vlen, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(vlen, get32(s.payload, s.payload_len - 4));
	memcpy(&eh, v, sizeof(eh));
	assert_memory_equal(eh.e_ident, ELFMAG, SELFMAG);
	assert_int_equal(eh.e_ident[EI_CLASS], ELFCLASS64);
	assert_int_equal(eh.e_machine, EM_X86_64);
	assert_int_equal(eh.e_type, ET_EXEC);
	assert_int_equal(eh.e_entry, 0x1000000);   /* physical: startup_64 */
	assert_true(elf_is_linux(v, vlen));
	assert_int_equal(boot_image_kind(v, vlen), BOOT_IMAGE_VMLINUX);
	assert_int_equal(elf_pvh_entry(v, vlen, &pvh), 1);
	assert_true(pvh > 0x1000000 && pvh < 0x1000000 + s.init_size);
	free(v);
}

static void test_pvh_start_info(void **state)
{
	static uint8_t rd[3 << 20];
	struct e820_entry m[BP_E820_MAX];
	struct linux_boot lb;
	char err[256];
	uint64_t arg;
	int n = e820_build(&gm, m, BP_E820_MAX);

	(void)state;
	NEED_KERNEL();
	if (linux_load_kernel(&gm, kernel, kernel_len, LINUX_DECOMP_HOST, &lb, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(lb.entry_kind, LINUX_ENTRY_PVH);
	assert_int_equal(lb.kernel_lo, 0x1000000);
	assert_int_equal(lb.kernel_hi, lb.kernel_lo + lb.setup.init_size);
	assert_int_equal(linux_load_initrd(&gm, &lb, rd, sizeof(rd), err, sizeof(err)), 0);
	assert_true(lb.initrd_gpa >= lb.kernel_hi && lb.initrd_gpa + sizeof(rd) <= RAM);
	assert_true(lb.initrd_gpa + sizeof(rd) - 1 <= lb.setup.initrd_addr_max);
	assert_int_equal(linux_write_boot_data(&gm, &lb, "console=ttyS0 noxsave", &arg, err, sizeof(err)), 0);
	struct hvm_start_info *si = mm_gpa_to_hva(&gm, arg, sizeof(*si));
	assert_int_equal(si->magic, HVM_START_MAGIC);
	assert_int_equal(si->nr_modules, 1);
	assert_int_equal(si->memmap_entries, n);
	assert_string_equal(mm_gpa_to_hva(&gm, si->cmdline_paddr, 22), "console=ttyS0 noxsave");
	struct hvm_modlist_entry *mod = mm_gpa_to_hva(&gm, si->modlist_paddr, sizeof(*mod));
	assert_int_equal(mod->paddr, lb.initrd_gpa);
	assert_int_equal(mod->size, sizeof(rd));
}

static void test_zero_page_from_setup_header(void **state)
{
	struct linux_boot lb;
	char err[256];
	uint64_t arg;
	uint8_t *zp;

	(void)state;
	NEED_KERNEL();
	assert_int_equal(linux_load_kernel(&gm, kernel, kernel_len, LINUX_DECOMP_HOST_ZEROPAGE, &lb,
					   err, sizeof(err)), 0);
	assert_int_equal(lb.entry_kind, LINUX_ENTRY_64);
	assert_int_equal(lb.entry, 0x1000000);
	assert_int_equal(linux_write_boot_data(&gm, &lb, "console=ttyS0", &arg, err, sizeof(err)), 0);
	zp = mm_gpa_to_hva(&gm, arg, BP_SIZE);
	/* the header as the image has it, except what a loader must fill */
	for (size_t off = BP_HDR; off < BP_HDR + lb.setup.hdr_len; off++) {
		if (off == SETUP_LOADER || (off >= SETUP_RD_IMAGE && off < SETUP_RD_SIZE + 4) ||
		    (off >= SETUP_CMDLINE && off < SETUP_CMDLINE + 4))
			continue;
		if (zp[off] != kernel[off])
			fail_msg("zero page byte 0x%zx is 0x%x, the image has 0x%x", off, zp[off], kernel[off]);
	}
	assert_int_equal(zp[SETUP_LOADER], LOADER_UNDEFINED);
	assert_int_equal(get32(zp, SETUP_CMDLINE), LINUX_CMDLINE_GPA);
	assert_int_equal(zp[BP_E820_ENTRIES], 3);
}

static void test_classic_load(void **state)
{
	struct linux_boot lb;
	char err[256];

	(void)state;
	NEED_KERNEL();
	assert_int_equal(linux_load_kernel(&gm, kernel, kernel_len, LINUX_DECOMP_GUEST, &lb, err, sizeof(err)), 0);
	assert_int_equal(lb.entry_kind, LINUX_ENTRY_64);
	assert_int_equal(lb.entry, 0x1000200);
	assert_memory_equal(mm_gpa_to_hva(&gm, 0x1000000, lb.setup.pm_len), lb.setup.pm, lb.setup.pm_len);
}

static void test_damaged_copies_refused(void **state)
{
	struct mm_config cfg = { .ram_size = 32ULL << 20, .backing = MM_BACKING_ANON };
	struct guest_mem small;
	struct linux_setup s;
	struct linux_boot lb;
	char err[256];
	uint8_t *copy;

	(void)state;
	NEED_KERNEL();
	/* 32 MiB cannot hold init_size from 16 MiB */
	assert_int_equal(mm_create(&small, &cfg, err, sizeof(err)), 0);
	assert_true(linux_load_kernel(&small, kernel, kernel_len, LINUX_DECOMP_HOST, &lb, err, sizeof(err)) < 0);
	assert_true(strstr(err, "does not fit") || strstr(err, "too small"));
	mm_destroy(&small);
	/* cut in half: the payload runs past the file */
	assert_true(linux_load_kernel(&gm, kernel, kernel_len / 2, LINUX_DECOMP_HOST, &lb, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "truncated"));
	/* bytes damaged inside the xz stream */
	copy = malloc(kernel_len);
	memcpy(copy, kernel, kernel_len);
	assert_int_equal(bzimage_parse(copy, kernel_len, &s, err, sizeof(err)), 0);
	memset((uint8_t *)s.payload + s.payload_len / 2, 0, 4096);
	assert_true(linux_load_kernel(&gm, copy, kernel_len, LINUX_DECOMP_HOST, &lb, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "corrupt"));
	free(copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setup_header),
		cmocka_unit_test(test_payload_decompresses_to_vmlinux),
		cmocka_unit_test(test_pvh_start_info),
		cmocka_unit_test(test_zero_page_from_setup_header),
		cmocka_unit_test(test_classic_load),
		cmocka_unit_test(test_damaged_copies_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
