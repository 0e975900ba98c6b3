/*
 * size: the size parser and the size formatter (see size.h).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "vmm/lib/macros.h"
#include "vmm/lib/size.h"

int size_parse(const char *s, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (!s || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	switch (toupper((unsigned char)*p)) {
	case 0:   break;
	case 'K': mul = 1ULL << 10; p++; break;
	case 'M': mul = 1ULL << 20; p++; break;
	case 'G': mul = 1ULL << 30; p++; break;
	case 'T': mul = 1ULL << 40; p++; break;
	default:  return -EINVAL;
	}
	/* accept "4G", "4GB", "4GiB" */
	if (mul > 1 && (*p == 'i' || *p == 'I'))
		p++;
	if (mul > 1 && (*p == 'b' || *p == 'B'))
		p++;
	if (*p)
		return -EINVAL;
	if (v && mul > UINT64_MAX / v)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

const char *size_format(uint64_t bytes, enum size_format_style style, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	uint64_t div = 1;
	unsigned i = 0;

	while (i + 1 < ARRAY_SIZE(unit) && bytes / div >= 1024) {
		div *= 1024;
		i++;
	}
	if (i == 0 || (style == SIZE_EXACT && bytes % div == 0))
		snprintf(buf, len, "%" PRIu64 " %s", bytes / div, unit[i]);
	else
		snprintf(buf, len, "%.2f %s", (double)bytes / (double)div, unit[i]);
	return buf;
}
