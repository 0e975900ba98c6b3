/*
 * Unit tests of the Linux loaders on synthetic images built here: a tiny
 * ELF vmlinux (one segment, a Xen PVH note) compressed with each format a
 * bzImage may use, through Debian's compressors, wrapped in a setup
 * header. Checks host decompression for every format, the entries, the
 * zero page, hvm_start_info, the e820 map below and above the MMIO hole,
 * the MP table, initrd placement, and every refusal, then throws mutated
 * images at the parser and decompressors (ASan watches).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <bzlib.h>
#include <elf.h>
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "vmm/boot/boot.h"

#define RAM (64ULL << 20)
#define KBASE 0x1000000ULL
#define PVH_ENTRY (KBASE + 0x10)
#define CODE_LEN 8192
#define IMG_MAX (256 << 10)

static struct guest_mem gm;

/* ---- the synthetic vmlinux ---- */

struct vmlinux {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	struct { Elf64_Nhdr nh; char name[4]; uint64_t desc; } pvh;
	struct { Elf64_Nhdr nh; char name[8]; uint32_t desc; } linux_note;
	uint8_t pad[4096 - sizeof(Elf64_Ehdr) - 2 * sizeof(Elf64_Phdr) - 24 - 24];
	uint8_t code[CODE_LEN];
} __attribute__((packed));

static void make_vmlinux(struct vmlinux *v)
{
	memset(v, 0, sizeof(*v));
	memcpy(v->eh.e_ident, ELFMAG, SELFMAG);
	v->eh.e_ident[EI_CLASS] = ELFCLASS64;
	v->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	v->eh.e_ident[EI_VERSION] = EV_CURRENT;
	v->eh.e_type = ET_EXEC;
	v->eh.e_machine = EM_X86_64;
	v->eh.e_entry = KBASE;
	v->eh.e_phoff = offsetof(struct vmlinux, ph);
	v->eh.e_phentsize = sizeof(Elf64_Phdr);
	v->eh.e_phnum = 2;
	v->ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(struct vmlinux, code),
				 .p_paddr = KBASE, .p_vaddr = 0xffffffff81000000ULL,
				 .p_filesz = CODE_LEN, .p_memsz = CODE_LEN + 4096 };
	v->ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = offsetof(struct vmlinux, pvh),
				 .p_filesz = 24 + 24 };
	v->pvh.nh = (Elf64_Nhdr){ .n_namesz = 4, .n_descsz = 8, .n_type = XEN_ELFNOTE_PHYS32_ENTRY };
	memcpy(v->pvh.name, "Xen", 4);
	v->pvh.desc = PVH_ENTRY;
	v->linux_note.nh = (Elf64_Nhdr){ .n_namesz = 6, .n_descsz = 4, .n_type = 0x100 };
	memcpy(v->linux_note.name, "Linux", 6);
	for (int i = 0; i < CODE_LEN; i++)
		v->code[i] = (uint8_t)(i * 13 + 7);
}

/* ---- compressors: each returns the payload length (stream + LE32 size) ---- */

static void put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static size_t comp_gzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	z_stream z = { 0 };

	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)in, z.avail_in = (uInt)len, z.next_out = out, z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	deflateEnd(&z);
	return z.total_out;        /* gzip's own trailer ends with the length */
}

static size_t comp_xz(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t pos = 0;

	assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, len, out, &pos, cap), LZMA_OK);
	return pos;
}

static size_t comp_lzma(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_options_lzma opt;

	lzma_lzma_preset(&opt, 6);
	assert_int_equal(lzma_alone_encoder(&s, &opt), LZMA_OK);
	s.next_in = in, s.avail_in = len, s.next_out = out, s.avail_out = cap;
	assert_int_equal(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
	lzma_end(&s);
	return (size_t)s.total_out;
}

static size_t comp_bzip2(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	unsigned n = (unsigned)cap;

	assert_int_equal(BZ2_bzBuffToBuffCompress((char *)out, &n, (char *)in, (unsigned)len, 9, 0, 0), BZ_OK);
	return n;
}

static size_t comp_zstd(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = ZSTD_compress(out, cap, in, len, 19);

	assert_false(ZSTD_isError(n));
	return n;
}

static size_t comp_lz4(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	int n;

	put_le32(out, 0x184c2102);     /* legacy frame, one block */
	n = LZ4_compress_default((const char *)in, (char *)out + 8, (int)len, (int)cap - 8);
	assert_true(n > 0);
	put_le32(out + 4, (uint32_t)n);
	return 8 + (size_t)n;
}

static size_t comp_lzo(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	static const uint8_t magic[9] = { 0x89, 'L', 'Z', 'O', 0, '\r', '\n', 0x1a, '\n' };
	static uint8_t wrk[LZO1X_1_MEM_COMPRESS];
	uint8_t *p = out;
	lzo_uint n = cap;

	assert_int_equal(lzo_init(), LZO_E_OK);
	memcpy(p, magic, 9), p += 9;
	p[0] = 0x10, p[1] = 0x40, p[2] = 0x20, p[3] = 0xa0, p[4] = 0x09, p[5] = 0x40;  /* versions */
	p[6] = 1, p[7] = 5, p += 8;                       /* method LZO1X-1, level */
	put_be32(p, 0x1), p += 4;                         /* flags: adler32 of the data */
	memset(p, 0, 12), p += 12;                        /* mode, mtime low, mtime high */
	*p++ = 0;                                         /* no file name */
	put_be32(p, 0), p += 4;                           /* header checksum (not checked) */
	put_be32(p, (uint32_t)len);
	put_be32(p + 8, 0);                               /* data checksum */
	assert_int_equal(lzo1x_1_compress(in, len, p + 12, &n, wrk), LZO_E_OK);
	put_be32(p + 4, (uint32_t)n);
	p += 12 + n;
	put_be32(p, 0), p += 4;                           /* end of blocks */
	(void)cap;
	return (size_t)(p - out);
}

typedef size_t (*comp_fn)(const uint8_t *, size_t, uint8_t *, size_t);
static const struct { enum linux_comp comp; comp_fn fn; } comps[] = {
	{ LINUX_COMP_GZIP, comp_gzip }, { LINUX_COMP_XZ, comp_xz }, { LINUX_COMP_LZMA, comp_lzma },
	{ LINUX_COMP_BZIP2, comp_bzip2 }, { LINUX_COMP_ZSTD, comp_zstd }, { LINUX_COMP_LZ4, comp_lz4 },
	{ LINUX_COMP_LZO, comp_lzo },
};

static size_t make_payload(comp_fn fn, uint8_t *out, size_t cap)
{
	struct vmlinux v;
	size_t n;

	make_vmlinux(&v);
	n = fn((uint8_t *)&v, sizeof(v), out, cap - 4);
	if (fn != comp_gzip) {         /* the kernel build appends the length to the others */
		put_le32(out + n, sizeof(v));
		n += 4;
	}
	return n;
}

/* ---- the bzImage around a payload ---- */

#define SETUP_LEN 1024             /* one setup sector plus the boot sector */
#define PAYLOAD_OFF 0x100

static void put16(uint8_t *b, size_t off, uint16_t v) { memcpy(b + off, &v, 2); }
static void put32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }
static void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }
static uint32_t get32(const uint8_t *b, size_t off) { uint32_t v; memcpy(&v, b + off, 4); return v; }

static size_t make_bzimage(uint8_t *img, const uint8_t *payload, size_t plen)
{
	memset(img, 0, IMG_MAX);
	img[SETUP_SECTS] = 1;
	put16(img, SETUP_BOOT_FLAG, BOOT_FLAG_MAGIC);
	img[SETUP_JUMP] = 0xeb;
	img[SETUP_JUMP + 1] = 0x268 - 0x202;
	put32(img, SETUP_HEADER, HDRS_MAGIC);
	put16(img, SETUP_VERSION, 0x020f);
	img[SETUP_LOADFLAGS] = LOADFLAG_LOADED_HIGH;
	put32(img, SETUP_CODE32, 0x100000);
	put32(img, SETUP_INITRD_MAX, 0x7fffffff);
	put32(img, SETUP_ALIGN, 0x200000);
	img[SETUP_RELOC] = 1;
	put16(img, SETUP_XLOADFLAGS, XLF_KERNEL_64);
	put32(img, SETUP_CMDLINE_SZ, 2047);
	put32(img, SETUP_PAYLOAD_OFF, PAYLOAD_OFF);
	put32(img, SETUP_PAYLOAD_LEN, (uint32_t)plen);
	put64(img, SETUP_PREF_ADDR, KBASE);
	put32(img, SETUP_INIT_SIZE, 0x400000);
	memcpy(img + SETUP_LEN + PAYLOAD_OFF, payload, plen);
	return SETUP_LEN + PAYLOAD_OFF + plen;
}

static uint8_t *img_buf, *pay_buf;

static size_t xz_bzimage(void)
{
	return make_bzimage(img_buf, pay_buf, make_payload(comp_xz, pay_buf, IMG_MAX / 2));
}

static int setup(void **state)
{
	struct mm_config cfg = { .ram_size = RAM, .backing = MM_BACKING_ANON };
	char err[256];

	(void)state;
	img_buf = malloc(IMG_MAX);
	pay_buf = malloc(IMG_MAX / 2);
	return mm_create(&gm, &cfg, err, sizeof(err));
}

static int teardown(void **state)
{
	(void)state;
	mm_destroy(&gm);
	free(img_buf);
	free(pay_buf);
	return 0;
}

static int load(size_t len, enum linux_decomp_mode mode, struct linux_boot *lb, char *err)
{
	err[0] = 0;
	return linux_load_kernel(&gm, img_buf, len, mode, lb, err, 256);
}

static void expect_refused(size_t len, enum linux_decomp_mode mode, const char *msg)
{
	struct linux_boot lb;
	char err[256];

	assert_true(load(len, mode, &lb, err) < 0);
	if (!strstr(err, msg))
		fail_msg("message '%s' lacks '%s'", err, msg);
}

static void test_every_compression_decompresses(void **state)
{
	struct vmlinux v;

	(void)state;
	make_vmlinux(&v);
	for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
		size_t plen = make_payload(comps[i].fn, pay_buf, IMG_MAX / 2);
		size_t len = make_bzimage(img_buf, pay_buf, plen);
		struct linux_boot lb;
		char err[256];

		memset(mm_gpa_to_hva(&gm, KBASE, CODE_LEN), 0xaa, CODE_LEN);
		if (load(len, LINUX_DECOMP_HOST, &lb, err))
			fail_msg("%s: %s", linux_comp_name(comps[i].comp), err);
		assert_int_equal(lb.comp, comps[i].comp);
		assert_int_equal(lb.entry_kind, LINUX_ENTRY_PVH);
		assert_int_equal(lb.entry, PVH_ENTRY);
		assert_memory_equal(mm_gpa_to_hva(&gm, KBASE, CODE_LEN), v.code, CODE_LEN);
		/* init_size is what the kernel owns, more than its segments */
		assert_int_equal(lb.kernel_lo, KBASE);
		assert_int_equal(lb.kernel_hi, KBASE + 0x400000);

		assert_int_equal(load(len, LINUX_DECOMP_HOST_ZEROPAGE, &lb, err), 0);
		assert_int_equal(lb.entry_kind, LINUX_ENTRY_64);
		assert_int_equal(lb.entry, KBASE);
	}
}

static void test_corrupt_payload_every_compression(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
		size_t plen = make_payload(comps[i].fn, pay_buf, IMG_MAX / 2);
		uint32_t want = get32(pay_buf, plen - 4);
		size_t len;

		/* the stream cut in half, the length trailer kept */
		memmove(pay_buf + plen / 2, pay_buf + plen - 4, 4);
		len = make_bzimage(img_buf, pay_buf, plen / 2 + 4);
		if (comps[i].comp == LINUX_COMP_GZIP)
			put32(img_buf, SETUP_LEN + PAYLOAD_OFF + plen / 2, want);
		expect_refused(len, LINUX_DECOMP_HOST, "corrupt");
	}
	/* garbage in the middle of an xz stream */
	size_t len = xz_bzimage();
	memset(img_buf + SETUP_LEN + PAYLOAD_OFF + 64, 0x5a, 64);
	expect_refused(len, LINUX_DECOMP_HOST, "corrupt");
	/* a length trailer that lies */
	len = xz_bzimage();
	put32(img_buf, len - 4, 1u << 31);
	expect_refused(len, LINUX_DECOMP_HOST, "corrupt");
}

static void test_refusals(void **state)
{
	size_t len;

	(void)state;
	len = xz_bzimage();
	put16(img_buf, SETUP_VERSION, 0x0209);
	expect_refused(len, LINUX_DECOMP_HOST, "boot protocol 2.09");
	len = xz_bzimage();
	memcpy(img_buf + SETUP_LEN + PAYLOAD_OFF, "ABCDEFGH", 8);
	expect_refused(len, LINUX_DECOMP_HOST, "unknown compression");
	len = xz_bzimage();
	expect_refused(0x300, LINUX_DECOMP_HOST, "truncated");              /* no kernel after setup */
	expect_refused(SETUP_LEN + 0x80, LINUX_DECOMP_HOST, "outside");      /* payload cut off */
	put32(img_buf, SETUP_PAYLOAD_OFF, 0xfffffff0);                       /* offset wraps */
	expect_refused(len, LINUX_DECOMP_HOST, "outside");
	len = xz_bzimage();
	img_buf[SETUP_JUMP + 1] = 0xff;                                      /* header runs too far */
	expect_refused(len, LINUX_DECOMP_HOST, "corrupt");
	len = xz_bzimage();
	img_buf[SETUP_LOADFLAGS] = 0;
	expect_refused(len, LINUX_DECOMP_HOST, "zImage");
	len = xz_bzimage();
	put32(img_buf, SETUP_INIT_SIZE, 0x8000000);                          /* 128 MiB > RAM */
	expect_refused(len, LINUX_DECOMP_HOST, "does not fit");
	expect_refused(len, LINUX_DECOMP_GUEST, "does not fit");
	expect_refused(len - 100, LINUX_DECOMP_HOST, "outside");
	memcpy(img_buf, "\x7f" "ELF", 4);                                    /* neither */
	img_buf[SETUP_BOOT_FLAG] = 0;
	expect_refused(len, LINUX_DECOMP_HOST, "Linux kernel");
}

static void test_classic_entries(void **state)
{
	struct linux_boot lb;
	char err[256];
	size_t len = xz_bzimage();

	(void)state;
	assert_int_equal(load(len, LINUX_DECOMP_GUEST, &lb, err), 0);
	assert_int_equal(lb.entry_kind, LINUX_ENTRY_64);
	assert_int_equal(lb.entry, KBASE + 0x200);
	assert_memory_equal(mm_gpa_to_hva(&gm, KBASE, len - SETUP_LEN), img_buf + SETUP_LEN, len - SETUP_LEN);
	put16(img_buf, SETUP_XLOADFLAGS, 0);
	img_buf[SETUP_RELOC] = 0;                  /* not relocatable: 1 MiB, 32-bit entry */
	assert_int_equal(load(len, LINUX_DECOMP_GUEST, &lb, err), 0);
	assert_int_equal(lb.entry_kind, LINUX_ENTRY_32);
	assert_int_equal(lb.entry, 0x100000);
	uint64_t arg;
	assert_int_equal(linux_write_boot_data(&gm, &lb, "console=ttyS0", &arg, err, sizeof(err)), 0);
	assert_int_equal(arg, LINUX_ZERO_PAGE_GPA);
	assert_int_equal(get32(mm_gpa_to_hva(&gm, arg, BP_SIZE), SETUP_CODE32), 0x100000);
}

static void check_e820(const struct e820_entry *m, int n, uint64_t low, uint64_t high)
{
	assert_int_equal(n, high ? 4 : 3);
	assert_int_equal(m[0].addr, 0);
	assert_int_equal(m[0].size, 0x9fc00);
	assert_int_equal(m[0].type, E820_RAM);
	assert_int_equal(m[1].addr, 0x9fc00);
	assert_int_equal(m[1].addr + m[1].size, 0x100000);
	assert_int_equal(m[1].type, E820_RESERVED);
	assert_int_equal(m[2].addr, 0x100000);
	assert_int_equal(m[2].addr + m[2].size, low);
	assert_int_equal(m[2].type, E820_RAM);
	if (high) {
		assert_int_equal(m[3].addr, 0x100000000ULL);
		assert_int_equal(m[3].size, high);
		assert_int_equal(m[3].type, E820_RAM);
	}
}

static void test_e820_below_and_above_the_hole(void **state)
{
	struct mm_config cfg = { .ram_size = 3584ULL << 20, .backing = MM_BACKING_ANON };
	struct e820_entry m[BP_E820_MAX];
	struct guest_mem big;
	char err[256];

	(void)state;
	check_e820(m, e820_build(&gm, m, BP_E820_MAX), RAM, 0);
	assert_int_equal(mm_create(&big, &cfg, err, sizeof(err)), 0);
	check_e820(m, e820_build(&big, m, BP_E820_MAX), MINIVMM_LOWMEM_MAX, 512ULL << 20);
	mm_destroy(&big);
}

static void test_zero_page_and_start_info(void **state)
{
	struct e820_entry m[BP_E820_MAX];
	struct linux_boot lb;
	char err[256], big[3000];
	uint8_t rd[5000], *zp;
	uint64_t arg;
	size_t len = xz_bzimage();
	int n = e820_build(&gm, m, BP_E820_MAX);

	(void)state;
	memset(rd, 0x77, sizeof(rd));
	/* zero page: the image's header, then what the loader fills */
	assert_int_equal(load(len, LINUX_DECOMP_HOST_ZEROPAGE, &lb, err), 0);
	assert_int_equal(linux_load_initrd(&gm, &lb, rd, sizeof(rd), err, sizeof(err)), 0);
	assert_int_equal(linux_write_boot_data(&gm, &lb, "root=/dev/vda quiet", &arg, err, sizeof(err)), 0);
	zp = mm_gpa_to_hva(&gm, arg, BP_SIZE);
	assert_int_equal(get32(zp, SETUP_HEADER), HDRS_MAGIC);
	assert_int_equal(get32(zp, SETUP_INIT_SIZE), 0x400000);
	assert_int_equal(zp[SETUP_LOADER], LOADER_UNDEFINED);
	assert_int_equal(get32(zp, SETUP_CMDLINE), LINUX_CMDLINE_GPA);
	assert_string_equal(mm_gpa_to_hva(&gm, LINUX_CMDLINE_GPA, 20), "root=/dev/vda quiet");
	assert_int_equal(get32(zp, SETUP_RD_IMAGE), lb.initrd_gpa);
	assert_int_equal(get32(zp, SETUP_RD_SIZE), sizeof(rd));
	assert_int_equal(zp[BP_E820_ENTRIES], n);
	assert_memory_equal(zp + BP_E820_TABLE, m, (size_t)n * sizeof(m[0]));
	/* the identity map of the 64-bit entry: PML4 -> PDPT -> 2 MiB leaves */
	uint64_t *pt = mm_gpa_to_hva(&gm, LINUX_PT_GPA, LINUX_PT_SIZE);
	assert_int_equal(pt[0], (LINUX_PT_GPA + 0x1000) | 3);
	assert_int_equal(pt[1024 + 3 * 512 + 511], ((3ULL << 30) + (511ULL << 21)) | 0x83);

	/* hvm_start_info for the PVH entry */
	assert_int_equal(load(len, LINUX_DECOMP_HOST, &lb, err), 0);
	assert_int_equal(linux_load_initrd(&gm, &lb, rd, sizeof(rd), err, sizeof(err)), 0);
	assert_int_equal(linux_write_boot_data(&gm, &lb, "console=ttyS0", &arg, err, sizeof(err)), 0);
	assert_int_equal(arg, LINUX_START_INFO_GPA);
	struct hvm_start_info *si = mm_gpa_to_hva(&gm, arg, sizeof(*si));
	assert_int_equal(si->magic, HVM_START_MAGIC);
	assert_int_equal(si->version, 1);
	assert_int_equal(si->nr_modules, 1);
	struct hvm_modlist_entry *mod = mm_gpa_to_hva(&gm, si->modlist_paddr, sizeof(*mod));
	assert_int_equal(mod->paddr, lb.initrd_gpa);
	assert_int_equal(mod->size, sizeof(rd));
	assert_memory_equal(mm_gpa_to_hva(&gm, mod->paddr, sizeof(rd)), rd, sizeof(rd));
	assert_string_equal(mm_gpa_to_hva(&gm, si->cmdline_paddr, 14), "console=ttyS0");
	assert_int_equal(si->memmap_entries, n);
	struct hvm_memmap_entry *mm = mm_gpa_to_hva(&gm, si->memmap_paddr, (size_t)n * sizeof(*mm));
	for (int i = 0; i < n; i++) {
		assert_int_equal(mm[i].addr, m[i].addr);
		assert_int_equal(mm[i].size, m[i].size);
		assert_int_equal(mm[i].type, m[i].type);
	}
	/* a command line longer than the kernel takes */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(linux_write_boot_data(&gm, &lb, big, &arg, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "command line"));
}

static void test_initrd_placement(void **state)
{
	struct linux_boot lb;
	char err[256];
	static uint8_t rd[(1 << 20) + 123];
	size_t len = xz_bzimage();

	(void)state;
	assert_int_equal(load(len, LINUX_DECOMP_HOST, &lb, err), 0);
	assert_int_equal(linux_load_initrd(&gm, &lb, rd, sizeof(rd), err, sizeof(err)), 0);
	/* as high as RAM allows, page aligned, clear of the kernel */
	assert_int_equal(lb.initrd_gpa % 4096, 0);
	assert_true(lb.initrd_gpa + sizeof(rd) <= RAM);
	assert_true(lb.initrd_gpa + sizeof(rd) > RAM - 4096);
	assert_true(lb.initrd_gpa >= lb.kernel_hi);
	/* below initrd_addr_max (the last byte it may use) when that is lower */
	put32(img_buf, SETUP_INITRD_MAX, (32 << 20) - 1);
	assert_int_equal(load(len, LINUX_DECOMP_HOST, &lb, err), 0);
	assert_int_equal(linux_load_initrd(&gm, &lb, rd, sizeof(rd), err, sizeof(err)), 0);
	assert_true(lb.initrd_gpa + sizeof(rd) <= 32 << 20);
	assert_int_equal(lb.initrd_gpa, ((32ULL << 20) - sizeof(rd)) & ~4095ULL);
	/* does not fit between the kernel and initrd_addr_max */
	put32(img_buf, SETUP_INITRD_MAX, (KBASE + 0x400000 + (1 << 20)) - 1);
	assert_int_equal(load(len, LINUX_DECOMP_HOST, &lb, err), 0);
	assert_true(linux_load_initrd(&gm, &lb, rd, sizeof(rd), err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "does not fit"));
	assert_non_null(strstr(err, "initrd_addr_max"));
	/* larger than RAM above the kernel */
	put32(img_buf, SETUP_INITRD_MAX, 0x7fffffff);
	assert_int_equal(load(len, LINUX_DECOMP_HOST, &lb, err), 0);
	uint8_t *huge = calloc(1, RAM - KBASE);
	assert_true(linux_load_initrd(&gm, &lb, huge, RAM - KBASE, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "raise --mem"));
	free(huge);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void test_mptable(void **state)
{
	uint8_t *mpf = mm_gpa_to_hva(&gm, LINUX_MPTABLE_GPA, 16), *mpc;
	uint16_t len;

	(void)state;
	assert_int_equal(mptable_write(&gm, 4, 0x806f8, 0x1234), 0);
	assert_memory_equal(mpf, "_MP_", 4);
	assert_int_equal(sum(mpf, 16), 0);
	mpc = mm_gpa_to_hva(&gm, get32(mpf, 4), 44);
	assert_memory_equal(mpc, "PCMP", 4);
	memcpy(&len, mpc + 4, 2);
	assert_int_equal(sum(mm_gpa_to_hva(&gm, get32(mpf, 4), len), len), 0);
	/* four processors (the first the BSP), bus, IOAPIC, 24 pins, 2 local lines */
	assert_int_equal(mpc[34] | mpc[35] << 8, 4 + 1 + 1 + 24 + 2);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(mpc[44 + i * 20], 0);
		assert_int_equal(mpc[44 + i * 20 + 1], i);
		assert_int_equal(mpc[44 + i * 20 + 3], i ? 1 : 3);
	}
	assert_int_equal(get32(mpc, 44 + 80 + 8 + 4), (uint32_t)MINIVMM_IOAPIC_BASE);
	assert_int_equal(mptable_write(&gm, 0, 0, 0), -EINVAL);
}

static void test_hostile_notes(void **state)
{
	struct vmlinux v;
	uint64_t e;

	(void)state;
	make_vmlinux(&v);
	assert_int_equal(elf_pvh_entry((uint8_t *)&v, sizeof(v), &e), 1);
	assert_int_equal(e, PVH_ENTRY);
	assert_true(elf_is_linux((uint8_t *)&v, sizeof(v)));
	v.pvh.nh.n_namesz = 0xffffffff;
	assert_int_equal(elf_pvh_entry((uint8_t *)&v, sizeof(v), &e), -ENOEXEC);
	make_vmlinux(&v);
	v.pvh.nh.n_descsz = 3;
	assert_int_equal(elf_pvh_entry((uint8_t *)&v, sizeof(v), &e), -ENOEXEC);
	make_vmlinux(&v);
	v.ph[1].p_filesz = 1ULL << 40;
	assert_int_equal(elf_pvh_entry((uint8_t *)&v, sizeof(v), &e), -ENOEXEC);
	make_vmlinux(&v);
	v.ph[1].p_type = PT_NULL;
	assert_int_equal(elf_pvh_entry((uint8_t *)&v, sizeof(v), &e), 0);
	assert_false(elf_is_linux((uint8_t *)&v, sizeof(v)));
}

/* Random bytes in the header, the payload and the length: never a crash. */
static void test_mutated_images_never_crash(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	uint8_t *orig = malloc(IMG_MAX);
	size_t len;

	(void)state;
	for (size_t c = 0; c < sizeof(comps) / sizeof(comps[0]); c++) {
		len = make_bzimage(orig, pay_buf, make_payload(comps[c].fn, pay_buf, IMG_MAX / 2));
		for (int i = 0; i < 300; i++) {
			struct linux_boot lb;
			char err[256];

			memcpy(img_buf, orig, IMG_MAX);
			for (int k = 0; k < 4; k++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				size_t at = (k & 1) ? SETUP_SECTS + x % 0x80 : SETUP_LEN + PAYLOAD_OFF + x % (len - SETUP_LEN - PAYLOAD_OFF);
				img_buf[at] = (uint8_t)(x >> 32);
			}
			load(x % 7 ? len : (size_t)(x >> 40) % len, (enum linux_decomp_mode)(i % 3), &lb, err);
		}
	}
	free(orig);
}

/* A bzImage cut anywhere in its setup header, from right after "HdrS" on,
 * in a block of exactly its size: refused, never read past its end (a file
 * ending right after "HdrS" had its version read 2 bytes past it; found by
 * fuzz_boot, input in tests/fuzz/regressions/fuzz_boot/). */
static void test_truncated_header_read_within_file(void **state)
{
	size_t full;

	(void)state;
	full = make_bzimage(img_buf, pay_buf, make_payload(comp_gzip, pay_buf, IMG_MAX / 2));
	for (size_t len = SETUP_HEADER + 4; len < SETUP_LEN; len++) {
		uint8_t *cut = malloc(len);
		struct linux_setup st;
		struct linux_boot lb;
		char err[256] = "";

		assert_non_null(cut);
		memcpy(cut, img_buf, len);
		assert_true(bzimage_is(cut, len));
		assert_int_equal(bzimage_parse(cut, len, &st, err, sizeof(err)), -ENOEXEC);
		if (!strstr(err, "truncated") && !strstr(err, "setup header ends"))
			fail_msg("%zu bytes: '%s' does not say the header is cut", len, err);
		assert_true(linux_load_kernel(&gm, cut, len, LINUX_DECOMP_HOST, &lb, err, sizeof(err)) < 0);
		free(cut);
	}
	assert_true(full > SETUP_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_compression_decompresses),
		cmocka_unit_test(test_corrupt_payload_every_compression),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_classic_entries),
		cmocka_unit_test(test_e820_below_and_above_the_hole),
		cmocka_unit_test(test_zero_page_and_start_info),
		cmocka_unit_test(test_initrd_placement),
		cmocka_unit_test(test_mptable),
		cmocka_unit_test(test_hostile_notes),
		cmocka_unit_test(test_mutated_images_never_crash),
		cmocka_unit_test(test_truncated_header_read_within_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
