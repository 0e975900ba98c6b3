/*
 * workload=churn (ring 3): allocate SIZE in chunks, fill and verify them,
 * free them all, pause, and again; meant to run while the balloon moves.
 * rounds=0 (the default) runs until the VMM quits. An allocation that
 * fails even after deflate-on-oom is reported and retried next round.
 */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#include "fillgen.h"
#include "user.h"

#define EXIT_VERIFY 1
#define MAX_CHUNKS  4096

int churn_main(void)
{
	const struct uparams *up = &uparams;
	struct fillgen_mix mix = { { up->mix[0], up->mix[1], up->mix[2], up->mix[3] } };
	uint64_t chunk = up->chunk, nchunks = (up->size + chunk - 1) / chunk;
	uint64_t *va[MAX_CHUNKS], want[FILLGEN_WORDS], total_fail = 0;
	char s1[24], s2[24];

	if (nchunks > MAX_CHUNKS) {
		uprintf("churn: FAILED size/chunk gives more than %d chunks\n", MAX_CHUNKS);
		return 2;
	}
	for (uint64_t r = 1; up->rounds == 0 || r <= up->rounds; r++) {
		uint64_t got = 0, mism = 0, pages_per = chunk / FILLGEN_PAGE, t0 = urdtsc(), t1;

		for (; got < nchunks; got++)
			if (!(va[got] = umem_alloc(chunk)))
				break;
		for (uint64_t c = 0; c < got; c++)
			for (uint64_t i = 0; i < pages_per; i++)
				fillgen_page(up->seed + r, &mix, c * pages_per + i, 0, va[c] + i * FILLGEN_WORDS);
		for (uint64_t c = 0; c < got; c++) {
			for (uint64_t i = 0; i < pages_per; i++) {
				const uint64_t *p = va[c] + i * FILLGEN_WORDS;

				fillgen_page(up->seed + r, &mix, c * pages_per + i, 0, want);
				for (uint32_t w = 0; w < FILLGEN_WORDS; w++) {
					if (p[w] != want[w]) {
						if (mism < 4)
							uprintf("churn: mismatch round=%lu chunk=%lu page=%lu offset=%u "
								"got=0x%016lx want=0x%016lx\n", r, c, i, w * 8, p[w], want[w]);
						mism++;
						break;
					}
				}
			}
		}
		for (uint64_t c = 0; c < got; c++)
			umem_free(va[c], chunk);
		t1 = urdtsc();
		if (got < nchunks)
			total_fail++;
		if (!up->quiet || mism || got < nchunks)
			uprintf("churn: round %lu size=%s chunks=%lu/%lu mismatches=%lu ms=%lu free=%luM%s\n", r,
				usize(got * chunk, s1, sizeof(s1)), got, nchunks, mism,
				uelapsed_us(t0, t1) / 1000, ufree_bytes() >> 20,
				got < nchunks ? " (allocation failed)" : "");
		if (mism) {
			uprintf("churn: FAILED mismatches=%lu\n", mism);
			return EXIT_VERIFY;
		}
		if (up->pause_ms)
			usleep_ms(up->pause_ms);
	}
	uprintf("churn: ok rounds=%lu size=%s allocation_failures=%lu\n", up->rounds,
		usize(up->size, s2, sizeof(s2)), total_fail);
	return 0;
}
