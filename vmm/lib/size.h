/*
 * size: byte counts as people write them ("512M", "4G") and as minivmm
 * prints them ("1.50 GiB"). The one parser and the one formatter every
 * program and subsystem uses, so a size means the same everywhere.
 */
#ifndef MINIVMM_LIB_SIZE_H
#define MINIVMM_LIB_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* Parses "512M", "4G", "4GiB", "1024K", "65536" (binary multiples K, M, G,
 * T; case-insensitive; optional "i" and "B"). -EINVAL on garbage, an empty
 * string or overflow. */
int size_parse(const char *s, uint64_t *out);

enum size_format_style {
	SIZE_FIXED2,   /* "256.00 MiB", "1.50 GiB": two decimals above 1 KiB (summaries) */
	SIZE_EXACT,    /* "2 MiB", "1 GiB", but "5.50 GiB": no decimals for whole units (messages) */
};

/* Formats bytes with binary units ("N B" below 1 KiB) into buf; returns buf. */
const char *size_format(uint64_t bytes, enum size_format_style style, char *buf, size_t len);

#endif
