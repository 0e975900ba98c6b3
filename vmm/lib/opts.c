/*
 * opts: the option-string tokenizer and typed value parsers (see opts.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vmm/lib/macros.h"
#include "vmm/lib/opts.h"

int opts_begin(struct opts_iter *it, const char *s)
{
	it->save = NULL;
	it->copy = strdup(s ? s : "");
	return it->copy ? 0 : -ENOMEM;
}

int opts_next(struct opts_iter *it, char **key, char **val)
{
	/* strtok_r skips empty items, which is what ",," should mean */
	char *tok = strtok_r(it->save ? NULL : it->copy, ",", &it->save);

	if (!tok)
		return 0;
	char *eq = strchr(tok, '=');
	if (eq)
		*eq++ = '\0';
	*key = tok;
	*val = eq;
	return 1;
}

void opts_end(struct opts_iter *it)
{
	free(it->copy);
	it->copy = it->save = NULL;
}

int opts_bool(const char *val, bool *out)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };

	for (size_t i = 0; val && i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(val, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(val, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int opts_double(const char *val, double lo, double hi, double *out)
{
	char *end;
	double d;

	if (!val)
		return -EINVAL;
	errno = 0;
	d = strtod(val, &end);
	if (errno || end == val || *end || d != d || d < lo || d > hi)
		return -EINVAL;
	*out = d;
	return 0;
}

int opts_u64(const char *val, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	/* strtoull would take "-1", " 5" and "+5"; an option value is digits */
	if (!val || !isdigit((unsigned char)val[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(val, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}
