/*
 * workload=touch (ring 3): timed 8-byte read-and-write accesses over SIZE,
 * at xorshift64 random word indices (pattern=random) or every stride bytes
 * (pattern=seq), for TLB and page-size experiments. Memory is populated
 * before the clock starts.
 */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#include "user.h"

#define EXIT_NOMEM 4

int touch_main(void)
{
	const struct uparams *up = &uparams;
	uint64_t words = up->size / 8, x = up->seed * 0x9e3779b97f4a7c15ULL | 1, sum = 0, idx = 0;
	uint64_t step = up->stride / 8, t0, t1, ns, us;
	volatile uint64_t *p = umem_alloc(up->size);
	char s1[24], s2[24];

	if (!p) {
		uprintf("touch: FAILED out of memory: cannot allocate %s\n", usize(up->size, s1, sizeof(s1)));
		return EXIT_NOMEM;
	}
	for (uint64_t i = 0; i < words; i += 512)
		p[i] = i;
	t0 = urdtsc();
	if (up->pattern == 0) {
		for (uint64_t a = 0; a < up->accesses; a++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			idx = (uint64_t)(((unsigned __int128)x * words) >> 64);
			sum += p[idx];
			p[idx] = sum;
		}
	} else {
		for (uint64_t a = 0; a < up->accesses; a++) {
			sum += p[idx];
			p[idx] = sum;
			idx += step;
			if (idx >= words)
				idx -= words;
		}
	}
	t1 = urdtsc();
	ns = (t1 - t0) * 1000000 / up->tsc_khz;
	us = ns / 1000 ? ns / 1000 : 1;
	{
		uint64_t hundredths = ns * 100 / up->accesses;

		uprintf("touch: size=%s accesses=%lu ns_per_access=%lu.%02lu MBps=%s\n",
			usize(up->size, s1, sizeof(s1)), up->accesses, hundredths / 100, hundredths % 100,
			umbps(up->accesses * 8, us, s2, sizeof(s2)));
	}
	if (up->hold_s) {
		/* the memory stays mapped, for the VMM's translation inspector */
		uprintf("touch: holding %s mapped at 0x%lx for %lu s\n", usize(up->size, s1, sizeof(s1)),
			(uint64_t)(uintptr_t)p, up->hold_s);
		for (uint64_t s = 0; s < up->hold_s; s++)
			usleep_ms(1000);
	}
	return sum == 0x123456789abcdef ? 1 : 0;   /* keeps sum alive */
}
