/*
 * workload=fill (ring 3): fill SIZE with the page mix of fillgen.h, then
 * re-read and verify every byte, round after round; round r >= 2 rewrites
 * about one eighth of the pages with a new generation first. With several
 * cpus each task owns a contiguous share of the page indices; cpu 0 sums
 * the per-task results and prints.
 */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#include "fillgen.h"
#include "user.h"

#define EXIT_VERIFY 1
#define EXIT_NOMEM  4

static struct {
	uint64_t written[UPARAM_MAX_CPUS];
	uint64_t csum[UPARAM_MAX_CPUS];
	uint64_t mism[UPARAM_MAX_CPUS];
	uint32_t failed[UPARAM_MAX_CPUS];
} fsh;

static uint64_t verify_page(const uint64_t *p, const uint64_t *want, uint64_t index, uint32_t me)
{
	for (uint32_t w = 0; w < FILLGEN_WORDS; w++) {
		if (p[w] != want[w]) {
			uprintf("fill: mismatch cpu=%u page=%lu offset=%u got=0x%016lx want=0x%016lx\n", me,
				index, w * 8, p[w], want[w]);
			return 1;
		}
	}
	return 0;
}

int fill_main(uint32_t me)
{
	const struct uparams *up = &uparams;
	struct fillgen_mix mix = { { up->mix[0], up->mix[1], up->mix[2], up->mix[3] } };
	uint64_t npages = up->size / FILLGEN_PAGE, n = up->ntasks;
	uint64_t lo = npages * me / n, hi = npages * (me + 1) / n, seed = up->seed;
	uint64_t want[FILLGEN_WORDS];
	uint64_t *mem = NULL, csum = 0, t0 = 0, t1 = 0, t2 = 0;
	uint32_t sense = 0;
	char s1[24], s2[24], s3[24];
	int status = 0;

	if (hi > lo && !(mem = umem_alloc((hi - lo) * FILLGEN_PAGE)))
		fsh.failed[me] = 1;
	ubarrier(&sense);
	for (uint32_t i = 0; i < n; i++) {
		if (fsh.failed[i]) {
			if (me == 0)
				uprintf("fill: FAILED out of memory: cannot allocate %s (free %luM)\n",
					usize(up->size, s1, sizeof(s1)), ufree_bytes() >> 20);
			return EXIT_NOMEM;
		}
	}
	for (uint64_t r = 1; up->rounds == 0 || r <= up->rounds; r++) {
		uint64_t written = 0, mism = 0, sum = 0, tot_written = 0, tot_mism = 0;

		ubarrier(&sense);
		t0 = urdtsc();
		for (uint64_t i = lo; i < hi; i++) {
			if (r == 1 || fillgen_rewritten(seed, i, r)) {
				fillgen_page(seed, &mix, i, r == 1 ? 0 : r - 1, mem + (i - lo) * FILLGEN_WORDS);
				written++;
			}
		}
		fsh.written[me] = written;
		ubarrier(&sense);
		t1 = urdtsc();
		for (uint64_t i = lo; i < hi; i++) {
			const uint64_t *p = mem + (i - lo) * FILLGEN_WORDS;

			fillgen_page(seed, &mix, i, fillgen_gen(seed, i, r), want);
			if (mism < 4)
				mism += verify_page(p, want, i, me);
			else
				for (uint32_t w = 0; w < FILLGEN_WORDS; w++)
					if (p[w] != want[w]) {
						mism++;
						break;
					}
			sum += fillgen_hash_page(p, i);
		}
		fsh.csum[me] = sum;
		fsh.mism[me] = mism;
		ubarrier(&sense);
		t2 = urdtsc();
		if (me != 0)
			continue;
		csum = 0;
		for (uint32_t i = 0; i < n; i++) {
			csum += fsh.csum[i];
			tot_mism += fsh.mism[i];
			tot_written += fsh.written[i];
		}
		if (!up->quiet || tot_mism)
			uprintf("fill: round %lu size=%s fill_MBps=%s verify_MBps=%s checksum=0x%016lx mismatches=%lu\n",
				r, usize(up->size, s1, sizeof(s1)),
				umbps(tot_written * FILLGEN_PAGE, uelapsed_us(t0, t1), s2, sizeof(s2)),
				umbps(npages * FILLGEN_PAGE, uelapsed_us(t1, t2), s3, sizeof(s3)), csum, tot_mism);
		if (tot_mism) {
			uprintf("fill: FAILED mismatches=%lu\n", tot_mism);
			status = EXIT_VERIFY;
			break;
		}
	}
	if (me == 0 && status == 0)
		uprintf("fill: ok checksum=0x%016lx\n", csum);
	return status;
}
