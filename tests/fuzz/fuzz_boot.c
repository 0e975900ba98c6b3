/*
 * Fuzz target: the image loaders as `minivmm IMAGE` runs them on a file it
 * did not build: the kind told by content, the ELF loader (own guest and
 * vmlinux, PVH and Linux notes), the bzImage setup header, host-side payload
 * decompression (gzip, bzip2, lzma, xz, lzo, lz4, zstd), the Linux loader in
 * each decompression mode, initrd placement and the boot data (command
 * line, e820, zero page or hvm_start_info), all into real guest RAM.
 *
 * Input: one control byte (bits 0-1 the --bzimage-decompress mode, bit 2
 * also decompress the image itself as a payload, bit 3 an initrd), one
 * byte of command line length, then the image.
 */
#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mm/mm.h"
#include "tests/fuzz/common.h"
#include "vmm/boot/boot.h"

#define RAM (64ull << 20)

/*
 * A payload says how large it decompresses (its last four bytes) and
 * minivmm allocates that much, up to 1 GiB, before it decompresses: fine
 * for a real process (untouched memory costs nothing), but ASan poisons
 * the shadow of every large block it frees, ~50 ms for 1 GiB. So the
 * harness does not load payloads claiming between 8 MiB and 1 GiB (claims
 * above 1 GiB are refused before any allocation and still run). A harness
 * limit for speed, not a check of minivmm's.
 */
static bool claim_too_big(const uint8_t *p, size_t len)
{
	uint32_t want;

	if (len < 12)
		return false;
	memcpy(&want, p + len - 4, 4);
	want = le32toh(want);
	return want > (8u << 20) && want <= (1u << 30);
}

static struct guest_mem gm;
static uint8_t initrd[8192];
static char cmdline[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mm_config mc = { .ram_size = RAM, .backing = MM_BACKING_ANON };
	char err[256];

	fz_quiet();
	if (mm_create(&gm, &mc, err, sizeof(err)))
		abort();
	memset(initrd, 0x5a, sizeof(initrd));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];

	if (size < 2)
		return 0;
	uint8_t ctl = data[0];
	size_t cmdlen = data[1];
	const uint8_t *img = data + 2;
	size_t len = size - 2;

	/* the file is read into a buffer of exactly its size: an overread is ASan's */
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, img, len);

	if ((ctl & 4) && !claim_too_big(buf, len)) {
		uint8_t *out = NULL;
		size_t outlen = 0;
		int ret = linux_decompress(buf, len, &out, &outlen, err, sizeof(err));
		fz_say("linux_decompress", ret, err);
		if (ret == 0)
			free(out);
	}

	uint64_t entry;
	(void)elf_pvh_entry(buf, len, &entry);
	(void)elf_is_linux(buf, len);

	switch (boot_image_kind(buf, len)) {
	case BOOT_IMAGE_OWN: {
		struct elf_image ei;
		fz_say("elf_load", elf_load(&gm, buf, len, &ei, err, sizeof(err)), err);
		break;
	}
	case BOOT_IMAGE_VMLINUX:
	case BOOT_IMAGE_BZIMAGE: {
		struct linux_boot lb;
		uint64_t arg;
		enum linux_decomp_mode mode = (enum linux_decomp_mode)((ctl & 3) % 3);

		memset(&lb, 0, sizeof(lb));
		if (mode != LINUX_DECOMP_GUEST && bzimage_parse(buf, len, &lb.setup, err, sizeof(err)) == 0 &&
		    claim_too_big(lb.setup.payload, lb.setup.payload_len))
			break;
		int ret = linux_load_kernel(&gm, buf, len, mode, &lb, err, sizeof(err));
		fz_say("linux_load_kernel", ret, err);
		if (ret)
			break;
		if (ctl & 8) {
			ret = linux_load_initrd(&gm, &lb, initrd, sizeof(initrd), err, sizeof(err));
			fz_say("linux_load_initrd", ret, err);
			if (ret)
				break;
		}
		memset(cmdline, 'c', cmdlen);
		cmdline[cmdlen] = 0;
		ret = linux_write_boot_data(&gm, &lb, cmdline, &arg, err, sizeof(err));
		fz_say("linux_write_boot_data", ret, err);
		break;
	}
	case BOOT_IMAGE_UNKNOWN: {
		struct linux_setup s;
		fz_say("bzimage_parse", bzimage_parse(buf, len, &s, err, sizeof(err)), err);
		break;
	}
	}
	free(buf);
	return 0;
}
