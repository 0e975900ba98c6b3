/*
 * Host-side decompression of a bzImage's payload (the compressed vmlinux),
 * through Debian's libraries: zlib, liblzma (xz and legacy lzma), libbz2,
 * libzstd, liblz4 and liblzo2. The payload is untrusted: its format comes
 * from its magic bytes, its output size from the 32-bit length the kernel
 * build appends to every payload, and nothing is written past that size.
 * Only lz4's legacy frame and lzop's container are walked here, because
 * their libraries decode blocks but not the kernel's containers.
 */
#include <bzlib.h>
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "vmm/boot/boot.h"

#define OUT_MAX (1ULL << 30)               /* as large an image as minivmm reads */
#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20)        /* uncompressed size of a full legacy block */

struct comp_magic {
	enum linux_comp comp;
	const char *name;
	const uint8_t magic[6];
	size_t len;
};

static const struct comp_magic magics[] = {
	{ LINUX_COMP_GZIP,  "gzip",  { 0x1f, 0x8b }, 2 },
	{ LINUX_COMP_BZIP2, "bzip2", { 'B', 'Z', 'h' }, 3 },
	{ LINUX_COMP_LZMA,  "lzma",  { 0x5d, 0x00, 0x00 }, 3 },
	{ LINUX_COMP_XZ,    "xz",    { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, 6 },
	{ LINUX_COMP_LZO,   "lzo",   { 0x89, 'L', 'Z', 'O' }, 4 },
	{ LINUX_COMP_LZ4,   "lz4",   { 0x02, 0x21, 0x4c, 0x18 }, 4 },
	{ LINUX_COMP_ZSTD,  "zstd",  { 0x28, 0xb5, 0x2f, 0xfd }, 4 },
	{ LINUX_COMP_NONE,  "uncompressed ELF", { 0x7f, 'E', 'L', 'F' }, 4 },
};

enum linux_comp linux_comp_detect(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (len >= magics[i].len && memcmp(p, magics[i].magic, magics[i].len) == 0)
			return magics[i].comp;
	return LINUX_COMP_UNKNOWN;
}

const char *linux_comp_name(enum linux_comp c)
{
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (magics[i].comp == c)
			return magics[i].name;
	return "unknown";
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

/* Each decoder fills out[0, cap) and reports the bytes produced; -EBADMSG on
 * a stream that is corrupt, truncated or longer than cap. */

static int dec_gzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *got)
{
	z_stream z = { 0 };
	int r;

	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	r = inflate(&z, Z_FINISH);
	*got = z.total_out;
	inflateEnd(&z);
	return r == Z_STREAM_END ? 0 : -EBADMSG;
}

static int dec_lzma(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *got, bool xz)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret r;

	r = xz ? lzma_stream_decoder(&s, UINT64_MAX, 0) : lzma_alone_decoder(&s, UINT64_MAX);
	if (r != LZMA_OK)
		return -ENOMEM;
	s.next_in = in;
	s.avail_in = len;
	s.next_out = out;
	s.avail_out = cap;
	r = lzma_code(&s, LZMA_FINISH);
	*got = (size_t)s.total_out;
	lzma_end(&s);
	return r == LZMA_STREAM_END ? 0 : -EBADMSG;
}

static int dec_bzip2(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *got)
{
	bz_stream s = { 0 };
	int r;

	if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK)
		return -ENOMEM;
	s.next_in = (char *)in;
	s.avail_in = (unsigned)len;
	s.next_out = (char *)out;
	s.avail_out = (unsigned)cap;
	r = BZ2_bzDecompress(&s);
	*got = cap - s.avail_out;
	BZ2_bzDecompressEnd(&s);
	return r == BZ_STREAM_END ? 0 : -EBADMSG;
}

static int dec_zstd(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *got)
{
	size_t frame = ZSTD_findFrameCompressedSize(in, len), n;
	ZSTD_DCtx *d;

	if (ZSTD_isError(frame))
		return -EBADMSG;
	d = ZSTD_createDCtx();
	if (!d)
		return -ENOMEM;
	/* the kernel compresses with --ultra -22: windows beyond the default limit */
	ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 31);   /* ZSTD_WINDOWLOG_MAX_64 */
	n = ZSTD_decompressDCtx(d, out, cap, in, frame);
	ZSTD_freeDCtx(d);
	if (ZSTD_isError(n))
		return -EBADMSG;
	*got = n;
	return 0;
}

/* lz4 -l: the legacy frame, a magic then blocks each led by its LE32 size. */
static int dec_lz4(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *got)
{
	size_t off = 0, done = 0;

	while (off + 4 <= len) {
		uint32_t n = le32(in + off);
		int r;

		off += 4;
		if (n == LZ4_LEGACY_MAGIC)
			continue;           /* concatenated frames */
		if (n == 0 || n > len - off || n > (uint32_t)LZ4_compressBound((int)LZ4_LEGACY_BLOCK))
			return -EBADMSG;
		r = LZ4_decompress_safe((const char *)in + off, (char *)out + done, (int)n,
					(int)(cap - done < LZ4_LEGACY_BLOCK ? cap - done : LZ4_LEGACY_BLOCK));
		if (r < 0)
			return -EBADMSG;
		done += (size_t)r;
		off += n;
	}
	*got = done;
	return off == len ? 0 : -EBADMSG;
}

/* Skips lzop's file header the way the kernel's unlzo does; returns the
 * offset of the first block and the header flags, or -EBADMSG. */
static long lzop_header(const uint8_t *in, size_t len, uint32_t *flags)
{
	static const uint8_t magic[9] = { 0x89, 'L', 'Z', 'O', 0, '\r', '\n', 0x1a, '\n' };
	size_t p = 9;
	uint16_t version;

	if (len < 9 + 7 + 1 + 8 || memcmp(in, magic, 9) != 0)
		return -EBADMSG;
	version = (uint16_t)(in[p] << 8 | in[p + 1]);
	p += 7;                     /* version, library version, version needed, method */
	if (version >= 0x0940)
		p++;                /* level */
	*flags = be32(in + p);
	p += (*flags & 0x800) ? 8 : 4;   /* F_H_FILTER: a filter word follows */
	p += 8;                     /* mode, mtime low */
	if (version >= 0x0940)
		p += 4;             /* mtime high */
	if (p + 1 > len)
		return -EBADMSG;
	p += 1 + in[p] + 4;         /* file name, header checksum */
	return p <= len ? (long)p : -EBADMSG;
}

static int dec_lzo(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *got)
{
	uint32_t flags;
	long start = lzop_header(in, len, &flags);
	size_t off, done = 0;

	if (start < 0 || lzo_init() != LZO_E_OK)
		return -EBADMSG;
	for (off = (size_t)start; off + 4 <= len;) {
		uint32_t dst = be32(in + off), src;
		size_t skip = 0;
		lzo_uint n;

		off += 4;
		if (dst == 0) {
			*got = done;
			return 0;           /* the end marker */
		}
		if (off + 4 > len)
			return -EBADMSG;
		src = be32(in + off);
		off += 4;
		skip += (flags & 0x101) ? 4 : 0;                  /* adler32 / crc32 of the data */
		skip += ((flags & 0x202) && src < dst) ? 4 : 0;   /* ... of the compressed block */
		if (src == 0 || src > dst || dst > cap - done || skip > len - off || src > len - off - skip)
			return -EBADMSG;
		off += skip;
		n = dst;
		if (src == dst)
			memcpy(out + done, in + off, src);            /* stored */
		else if (lzo1x_decompress_safe(in + off, src, out + done, &n, NULL) != LZO_E_OK || n != dst)
			return -EBADMSG;
		done += dst;
		off += src;
	}
	return -EBADMSG;
}

static int dec_any(enum linux_comp c, const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *got)
{
	switch (c) {
	case LINUX_COMP_GZIP:  return dec_gzip(in, len, out, cap, got);
	case LINUX_COMP_XZ:    return dec_lzma(in, len, out, cap, got, true);
	case LINUX_COMP_LZMA:  return dec_lzma(in, len, out, cap, got, false);
	case LINUX_COMP_BZIP2: return dec_bzip2(in, len, out, cap, got);
	case LINUX_COMP_ZSTD:  return dec_zstd(in, len, out, cap, got);
	/* the containers end where the build appended the length */
	case LINUX_COMP_LZ4:   return dec_lz4(in + 4, len - 8, out, cap, got);
	case LINUX_COMP_LZO:   return dec_lzo(in, len - 4, out, cap, got);
	default:               return -ENOTSUP;
	}
}

int linux_decompress(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
		     char *err, size_t errlen)
{
	enum linux_comp c = linux_comp_detect(in, len);
	uint32_t want;
	size_t got = 0;
	uint8_t *buf;
	int ret;

	if (c == LINUX_COMP_UNKNOWN || c == LINUX_COMP_NONE) {
		snprintf(err, errlen, "bzImage payload has an unknown compression (magic %02x %02x %02x %02x): "
			 "minivmm reads gzip, bzip2, lzma, xz, lzo, lz4 and zstd; try --bzimage-decompress guest",
			 len > 0 ? in[0] : 0, len > 1 ? in[1] : 0, len > 2 ? in[2] : 0, len > 3 ? in[3] : 0);
		return -ENOTSUP;
	}
	/* every kernel payload ends with its uncompressed length (LE32) */
	want = len >= 12 ? le32(in + len - 4) : 0;
	if (want < 64 || want > OUT_MAX) {
		snprintf(err, errlen, "bzImage payload is corrupt: its %s stream claims %u uncompressed bytes",
			 linux_comp_name(c), want);
		return -EBADMSG;
	}
	buf = malloc(want);
	if (!buf)
		return -ENOMEM;
	ret = dec_any(c, in, len, buf, want, &got);
	if (ret == 0 && got != want)
		ret = -EBADMSG;
	if (ret) {
		if (ret == -EBADMSG)
			snprintf(err, errlen, "bzImage payload is corrupt: its %s stream does not decompress to the "
				 "%u bytes it claims (got %zu)", linux_comp_name(c), want, got);
		else
			snprintf(err, errlen, "cannot decompress the bzImage payload (%s): %s",
				 linux_comp_name(c), strerror(-ret));
		free(buf);
		return ret;
	}
	*out = buf;
	*outlen = got;
	return 0;
}
