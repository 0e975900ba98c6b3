/*
 * opts: option strings of the form "key=value,key=value" (--mm, --balloon)
 * and the typed value parsers every subsystem and program shares, so that
 * "on", "1" or "0.5" mean the same wherever they are accepted. The parsers
 * only say whether a value is valid; the caller's message says what was
 * wrong and what is accepted, in its own option's words. Sizes ("512M") go
 * through size_parse() in size.h.
 *
 * Functions return 0 or a negative errno (-EINVAL for a bad value).
 */
#ifndef MINIVMM_LIB_OPTS_H
#define MINIVMM_LIB_OPTS_H

#include <stdbool.h>
#include <stdint.h>

/* Walks "key=value,..." over a private copy of the string. */
struct opts_iter {
	char *copy;
	char *save;
};

/* Starts a walk over s (NULL or "" has no pairs). 0 or -ENOMEM. */
int opts_begin(struct opts_iter *it, const char *s);
/* The next pair: 1 with *key and *val pointing into the copy (*val is NULL
 * when the item has no '='; the value is everything after the first '='),
 * 0 at the end. Empty items (",,") are skipped. */
int opts_next(struct opts_iter *it, char **key, char **val);
/* Frees the copy; the pointers opts_next() gave are invalid afterwards. */
void opts_end(struct opts_iter *it);

/* on/off, yes/no, true/false, 1/0, in any case. */
int opts_bool(const char *val, bool *out);
/* A decimal number (strtod syntax, not NaN) within [lo, hi]. */
int opts_double(const char *val, double lo, double hi, double *out);
/* A plain decimal integer (digits only, no sign) within [lo, hi]. */
int opts_u64(const char *val, uint64_t lo, uint64_t hi, uint64_t *out);

#endif
