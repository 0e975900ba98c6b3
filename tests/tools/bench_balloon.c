/*
 * bench_balloon: host-side inflation processing throughput. Over the same
 * guest RAM (1 GiB by default, of the chosen backing), re-dirtied before every run, it
 * times the balloon device's handling of a full set of inflate buffers
 * (256 PFNs each, shuffled within a buffer, as a driver sends them:
 * validated, sorted, coalesced, one discard per range, every page's state
 * kept in the memory manager's table as in the VMM) against a
 * page-by-page discard loop (madvise DONTNEED, or a hole punch for memfd)
 * over the same pages in the same
 * order. A third figure, one discard over the whole range, is the kernel's
 * own floor (its per-page freeing cost), which bounds any coalescing.
 * Prints `name: value unit` lines for bench/bench.py.
 *
 *   bench_balloon [SIZE] [ROUNDS] [BACKING]   defaults: 1G 3 anon (best run kept)
 *
 * BACKING is anon, thp or memfd: on thp the page-by-page loop also splits
 * every huge page, which is what a per-page balloon costs there.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mm/manager.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/clock.h"
#include "vmm/lib/log.h"
#include "vmm/lib/size.h"
#include "balloon/balloon.h"

#define PAGE 4096u
#define PFNS_PER_BUF 256u

static void dirty(struct guest_mem *gm)
{
	/* one write per page is enough to make it resident */
	for (int r = 0; r < gm->nr_regions; r++)
		for (uint64_t off = 0; off < gm->regions[r].size; off += PAGE)
			gm->regions[r].hva[off] = 1;
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t size = 1ull << 30;
	int rounds = 3;
	char err[256];

	if (argc > 1 && size_parse(argv[1], &size)) {
		fprintf(stderr, "bench_balloon: bad size '%s'\n", argv[1]);
		return 2;
	}
	if (argc > 2)
		rounds = atoi(argv[2]);
	enum mm_backing backing = MM_BACKING_ANON;
	if (argc > 3 && (mm_backing_parse(argv[3], &backing) || backing == MM_BACKING_HUGETLB)) {
		fprintf(stderr, "bench_balloon: backing '%s' is not anon, thp or memfd\n", argv[3]);
		return 2;
	}
	const char *bname = mm_backing_name(backing);
	if (rounds < 1 || size < PFNS_PER_BUF * PAGE || size > MINIVMM_LOWMEM_MAX) {
		fprintf(stderr, "usage: bench_balloon [SIZE up to 3G] [ROUNDS >= 1]\n");
		return 2;
	}
	vmm_log_level = 0;

	/* guest RAM and the memory manager that keeps every page's state, as in
	 * the VMM without --mm */
	static struct vm vm;
	struct guest_mem *gm = &vm.mem;
	struct mm_config cfg = { .ram_size = size, .backing = backing };
	if (mm_create(gm, &cfg, err, sizeof(err)) || mmgr_create(&vm.mem, NULL, NULL, NULL, &vm.mgr, err, sizeof(err))) {
		fprintf(stderr, "bench_balloon: %s\n", err);
		return 1;
	}
	struct balloon_opts o;
	struct balloon *b = calloc(1, sizeof(*b));
	if (!b || balloon_parse_opts(NULL, &o, err, sizeof(err)) || balloon_init(b, gm, vm.mgr, &o)) {
		fprintf(stderr, "bench_balloon: cannot set up the balloon\n");
		return 1;
	}

	/* buffers of 256 consecutive PFNs, each shuffled (a fixed seed: same work every run) */
	uint64_t npfns = size / PAGE / PFNS_PER_BUF * PFNS_PER_BUF;
	uint32_t *pfns = malloc(npfns * sizeof(*pfns));
	if (!pfns)
		return 1;
	srand(12345);
	for (uint64_t i = 0; i < npfns; i++)
		pfns[i] = (uint32_t)i;
	for (uint64_t base = 0; base < npfns; base += PFNS_PER_BUF)
		for (uint32_t i = PFNS_PER_BUF - 1; i > 0; i--) {
			uint32_t j = (uint32_t)rand() % (i + 1);
			uint32_t t = pfns[base + i];
			pfns[base + i] = pfns[base + j];
			pfns[base + j] = t;
		}

	double best_balloon = 0, best_madvise = 0, best_floor = 0;
	uint64_t left_balloon = 0, left_madvise = 0, ranges = 0;
	for (int r = 0; r < rounds; r++) {
		struct balloon_batch res;

		/* the kernel's own floor: one discard over everything. First, while the
		 * memory is still in the shape the backing gives it: the per-page loop
		 * below splits THPs, and memory refaulted after it stays 4 KiB */
		dirty(gm);
		uint64_t t4 = now_ns();
		for (int r2 = 0; r2 < gm->nr_regions; r2++)
			if (mm_discard(gm, gm->regions[r2].gpa, gm->regions[r2].size))
				return 1;
		uint64_t t5 = now_ns();

		dirty(gm);
		uint64_t t0 = now_ns();
		for (uint64_t base = 0; base < npfns; base += PFNS_PER_BUF) {
			balloon_inflate_pfns(b, pfns + base, PFNS_PER_BUF, &res);
			ranges += res.ranges;
			if (res.done != PFNS_PER_BUF) {
				fprintf(stderr, "bench_balloon: inflate took %" PRIu64 " of %u pages\n",
					res.done, PFNS_PER_BUF);
				return 1;
			}
		}
		uint64_t t1 = now_ns();
		left_balloon = mm_resident_bytes(gm);
		balloon_release_all(b);   /* bookkeeping only: the memory is already gone */

		dirty(gm);
		uint64_t t2 = now_ns();
		for (uint64_t i = 0; i < npfns; i++) {
			uint8_t *p = mm_gpa_to_hva(gm, (uint64_t)pfns[i] * PAGE, PAGE);
			if (!p || mm_discard(gm, (uint64_t)pfns[i] * PAGE, PAGE)) {
				fprintf(stderr, "bench_balloon: page-by-page discard: %s\n", strerror(errno));
				return 1;
			}
		}
		uint64_t t3 = now_ns();
		left_madvise = mm_resident_bytes(gm);

		double gb = (double)(npfns * PAGE) / 1e9;
		double g1 = gb / secs(t1 - t0), g2 = gb / secs(t3 - t2), g3 = gb / secs(t5 - t4);
		if (g3 > best_floor)
			best_floor = g3;
		if (g1 > best_balloon)
			best_balloon = g1;
		if (g2 > best_madvise)
			best_madvise = g2;
		fprintf(stderr, "round %d: balloon %.3f s, madvise loop %.3f s, one madvise %.3f s\n",
			r + 1, secs(t1 - t0), secs(t3 - t2), secs(t5 - t4));
	}

	printf("balloon_inflate_bytes_%s: %" PRIu64 " bytes\n", bname, npfns * PAGE);
	printf("balloon_inflate_discards_%s: %" PRIu64 " calls\n", bname, ranges / (uint64_t)rounds);
	printf("balloon_inflate_coalesced_%s: %.2f GB/s\n", bname, best_balloon);
	printf("balloon_inflate_madvise_per_page_%s: %.2f GB/s\n", bname, best_madvise);
	printf("balloon_inflate_speedup_%s: %.1f x\n", bname, best_balloon / best_madvise);
	/* the kernel's page freeing cost bounds any coalescing: how close we get */
	printf("balloon_inflate_floor_one_madvise_%s: %.2f GB/s\n", bname, best_floor);
	printf("balloon_inflate_of_floor_%s: %.0f %%\n", bname, 100.0 * best_balloon / best_floor);
	printf("balloon_inflate_resident_after_%s: %" PRIu64 " bytes\n", bname, left_balloon);
	printf("balloon_madvise_resident_after_%s: %" PRIu64 " bytes\n", bname, left_madvise);

	balloon_fini(b);
	free(b);
	free(pfns);
	mmgr_destroy(vm.mgr);
	mm_destroy(gm);
	/* a discard that did not free the memory would make the figures meaningless */
	return left_balloon > size / 100 || left_madvise > size / 100 ? 1 : 0;
}
