/*
 * Ring-3 runtime of the test guest: syscall wrappers, console output,
 * timing and a barrier. Every user_*.c file is linked into the user
 * sections (guest.ld) and must not call kernel code: only these helpers
 * and static inline headers (fmt.h, fillgen.h).
 */
#ifndef GUEST_USER_H
#define GUEST_USER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "uapi.h"

extern struct uparams uparams;

static inline uint64_t usys(uint64_t nr, uint64_t a1, uint64_t a2)
{
	uint64_t ret;

	/* a ud2 traps to the kernel (see cpu.c), which preserves every register but rax */
	__asm__ volatile("ud2" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2) : "memory");
	return ret;
}

static inline uint64_t urdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void urelax(void) { __asm__ volatile("pause" ::: "memory"); }

__attribute__((noreturn)) void uexit(int status);
void *umem_alloc(uint64_t bytes);
int umem_free(void *p, uint64_t bytes);
void usleep_ms(uint64_t ms);
uint64_t ufree_bytes(void);
void uprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "64M"-style size into buf */
const char *usize(uint64_t bytes, char *buf, size_t len);
uint64_t uelapsed_us(uint64_t tsc0, uint64_t tsc1);
/* bytes per microsecond as "123.4" (decimal MB/s) */
const char *umbps(uint64_t bytes, uint64_t us, char *buf, size_t len);
/* all uparams.ntasks tasks meet here; sense is the caller's own variable, initially 0 */
void ubarrier(uint32_t *sense);

int fill_main(uint32_t me);
int touch_main(void);
int churn_main(void);
int wss_main(void);

#endif
