/*
 * Small helpers every part of the VMM uses: logging, size parsing and
 * formatting, the monotonic clock.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vmm.h"

int vmm_log_level = 0;   /* errors; -v adds info, -vv debug */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void vmm_log(int level, const char *subsys, const char *fmt, ...)
{
	va_list ap;

	if (level > vmm_log_level)
		return;
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "minivmm: %s: ", subsys);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}

int parse_size(const char *s, uint64_t *out)
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

const char *fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	unsigned i = 0;

	while (v >= 1024 && i + 1 < ARRAY_SIZE(unit)) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.2f %s", v, unit[i]);
	return buf;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
