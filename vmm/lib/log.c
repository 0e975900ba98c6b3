/*
 * log: serialized one-line messages on stderr, filtered by level.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "vmm/lib/log.h"

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
