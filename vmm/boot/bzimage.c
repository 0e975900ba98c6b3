/*
 * The bzImage setup header (x86 boot protocol 2.10 and later): parsed from
 * an untrusted file, so every offset and length is checked before it is
 * used, and a refusal says what is wrong in one line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/boot/boot.h"

static uint16_t get16(const uint8_t *b, size_t off)
{
	return (uint16_t)(b[off] | b[off + 1] << 8);
}

static uint32_t get32(const uint8_t *b, size_t off)
{
	return (uint32_t)get16(b, off) | (uint32_t)get16(b, off + 2) << 16;
}

static uint64_t get64(const uint8_t *b, size_t off)
{
	return (uint64_t)get32(b, off) | (uint64_t)get32(b, off + 4) << 32;
}

/* A bzImage: boot flag and "HdrS" where the protocol puts them. */
bool bzimage_is(const uint8_t *buf, size_t len)
{
	return len >= SETUP_HEADER + 4 && get16(buf, SETUP_BOOT_FLAG) == BOOT_FLAG_MAGIC &&
	       get32(buf, SETUP_HEADER) == HDRS_MAGIC;
}

/* The header's own length (the jump at 0x200 skips it) and the setup code's. */
static int bzimage_bounds(const uint8_t *buf, size_t len, struct linux_setup *s,
			  char *err, size_t errlen)
{
	size_t hdr_end = SETUP_JUMP + 2 + buf[SETUP_JUMP + 1];
	size_t sects = buf[SETUP_SECTS] ? buf[SETUP_SECTS] : 4;
	size_t setup_len = (sects + 1) * 512;

	if (hdr_end < SETUP_MIN_END || hdr_end > BP_E820_TABLE - 0x40 || hdr_end > len) {
		snprintf(err, errlen, "bzImage is corrupt: its setup header ends at 0x%zx (file %zu bytes)",
			 hdr_end, len);
		return -ENOEXEC;
	}
	if (setup_len >= len) {
		snprintf(err, errlen, "bzImage is truncated: %zu setup sectors and no kernel after them "
			 "(file %zu bytes)", sects, len);
		return -ENOEXEC;
	}
	s->hdr = buf + BP_HDR;
	s->hdr_len = hdr_end - BP_HDR;
	s->pm = buf + setup_len;
	s->pm_len = len - setup_len;
	return 0;
}

int bzimage_parse(const uint8_t *buf, size_t len, struct linux_setup *s, char *err, size_t errlen)
{
	uint32_t poff, plen;
	int ret;

	memset(s, 0, sizeof(*s));
	if (!bzimage_is(buf, len)) {
		snprintf(err, errlen, "image is not a bzImage (no 0xaa55 boot flag and \"HdrS\" header)");
		return -ENOEXEC;
	}
	/* bzimage_is() saw "HdrS", which may be the file's last bytes: the
	 * version after it is read only when it is there (a file ending right
	 * after "HdrS" was read 2 bytes past its end; found by fuzz_boot) */
	if (len < SETUP_VERSION + 2) {
		snprintf(err, errlen, "bzImage is truncated: %zu bytes end inside its setup header", len);
		return -ENOEXEC;
	}
	s->version = get16(buf, SETUP_VERSION);
	if (s->version < LINUX_PROTO_MIN) {
		snprintf(err, errlen, "bzImage speaks boot protocol %u.%02u; minivmm needs 2.10 or later "
			 "(Linux 2.6.31 and newer)", s->version >> 8, s->version & 0xff);
		return -ENOEXEC;
	}
	ret = bzimage_bounds(buf, len, s, err, errlen);
	if (ret)
		return ret;
	s->loadflags = buf[SETUP_LOADFLAGS];
	s->relocatable = buf[SETUP_RELOC];
	s->xloadflags = get16(buf, SETUP_XLOADFLAGS);
	s->code32_start = get32(buf, SETUP_CODE32);
	s->initrd_addr_max = get32(buf, SETUP_INITRD_MAX);
	s->kernel_alignment = get32(buf, SETUP_ALIGN);
	s->cmdline_size = get32(buf, SETUP_CMDLINE_SZ);
	s->pref_address = get64(buf, SETUP_PREF_ADDR);
	s->init_size = get32(buf, SETUP_INIT_SIZE);
	if (!(s->loadflags & LOADFLAG_LOADED_HIGH)) {
		snprintf(err, errlen, "image is a zImage (loaded below 1 MiB), which minivmm does not boot");
		return -ENOEXEC;
	}
	if (s->init_size < s->pm_len / 2 || (s->relocatable && (s->kernel_alignment == 0 ||
	    (s->kernel_alignment & (s->kernel_alignment - 1))))) {
		snprintf(err, errlen, "bzImage is corrupt: init_size 0x%x, kernel_alignment 0x%x",
			 s->init_size, s->kernel_alignment);
		return -ENOEXEC;
	}
	poff = get32(buf, SETUP_PAYLOAD_OFF);
	plen = get32(buf, SETUP_PAYLOAD_LEN);
	if (plen == 0 || poff > s->pm_len || plen > s->pm_len - poff) {
		snprintf(err, errlen, "bzImage is truncated or corrupt: its payload (offset 0x%x, %u bytes) "
			 "lies outside the %zu-byte kernel", poff, plen, s->pm_len);
		return -ENOEXEC;
	}
	s->payload = s->pm + poff;
	s->payload_len = plen;
	return 0;
}
