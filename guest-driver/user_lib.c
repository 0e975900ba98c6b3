/*
 * Ring-3 runtime: syscall wrappers, uprintf, sizes and rates, the task
 * barrier, and the user entry point that dispatches the workload.
 */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#include "fmt.h"
#include "user.h"

/* written by the kernel from the command line before any task starts */
struct uparams uparams = { .workload = WL_DEMO };

static struct {
	volatile uint32_t count;
	volatile uint32_t sense;
} ubar;

void uexit(int status)
{
	for (;;)
		usys(SYS_EXIT, (uint64_t)status, 0);
}

void *umem_alloc(uint64_t bytes)
{
	return (void *)(uintptr_t)usys(SYS_MEM_ALLOC, bytes, 0);
}

int umem_free(void *p, uint64_t bytes)
{
	return (int)usys(SYS_MEM_FREE, (uint64_t)(uintptr_t)p, bytes);
}

void usleep_ms(uint64_t ms)
{
	usys(SYS_SLEEP_MS, ms, 0);
}

uint64_t ufree_bytes(void)
{
	return usys(SYS_MEMINFO, 0, 0);
}

void uprintf(const char *fmt, ...)
{
	char buf[320];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = fmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	usys(SYS_WRITE, (uint64_t)(uintptr_t)buf, n);
}

static size_t usnprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = fmt_vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

const char *usize(uint64_t b, char *buf, size_t len)
{
	if (b && b % (1ULL << 30) == 0)
		usnprintf(buf, len, "%luG", b >> 30);
	else if (b && b % (1ULL << 20) == 0)
		usnprintf(buf, len, "%luM", b >> 20);
	else if (b && b % 1024 == 0)
		usnprintf(buf, len, "%luK", b >> 10);
	else
		usnprintf(buf, len, "%lu", b);
	return buf;
}

uint64_t uelapsed_us(uint64_t t0, uint64_t t1)
{
	uint64_t us = (t1 - t0) * 1000 / uparams.tsc_khz;

	return us ? us : 1;
}

const char *umbps(uint64_t bytes, uint64_t us, char *buf, size_t len)
{
	uint64_t tenths = bytes * 10 / us;

	usnprintf(buf, len, "%lu.%lu", tenths / 10, tenths % 10);
	return buf;
}

void ubarrier(uint32_t *sense)
{
	*sense ^= 1;
	if (__atomic_add_fetch(&ubar.count, 1, __ATOMIC_ACQ_REL) == uparams.ntasks) {
		ubar.count = 0;
		__atomic_store_n(&ubar.sense, *sense, __ATOMIC_RELEASE);
	} else {
		while (__atomic_load_n(&ubar.sense, __ATOMIC_ACQUIRE) != *sense)
			urelax();
	}
}

/* Ring-3 entry: the kernel irets here with arg = this task's cpu index. */
__attribute__((noreturn)) void user_main(uint64_t arg)
{
	int status = 0;

	switch (uparams.workload) {
	case WL_DEMO:
		if (arg == 0) {
			char s[24];

			uprintf("demo: no workload= given, running fill size=%s rounds=%lu "
				"(see README for workload=fill|touch|idle|churn)\n",
				usize(uparams.size, s, sizeof(s)), uparams.rounds);
		}
		status = fill_main((uint32_t)arg);
		break;
	case WL_FILL:
		status = fill_main((uint32_t)arg);
		break;
	case WL_TOUCH:
		status = touch_main();
		break;
	case WL_CHURN:
		status = churn_main();
		break;
	case WL_WSS:
		status = wss_main();
		break;
	default:
		status = 0;
		break;
	}
	uexit(status);
}
