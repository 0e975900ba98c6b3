/*
 * workload=wss (ring 3): a working set for overcommit experiments. Fills
 * SIZE with the page mix of fillgen.h (generation 0), then keeps operating
 * on random pages of the hot subset, the first HOT bytes: three reads in
 * four verify the whole page against its generation, one in four rewrites
 * it at the next generation. A per-page generation array makes every byte
 * checkable at any time, so every VERIFY seconds the whole of SIZE is
 * re-verified, and once more at the end. One line per second reports the
 * operations done, as a rate to compare between runs. The hot size follows
 * a schedule whose times count from the end of the fill. Runs on vCPU 0.
 */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#include "fillgen.h"
#include "user.h"

#define EXIT_VERIFY 1
#define EXIT_NOMEM  4
/* ops between clock reads: a page op is about a microsecond, so the report stays on time */
#define WSS_BATCH   64
#define WSS_REPORTS 4   /* mismatch lines printed before only counting */

struct wss {
	const struct uparams *up;
	struct fillgen_mix mix;
	uint64_t *mem;
	uint32_t *gen;          /* generation of each page: what its bytes must be */
	uint64_t npages;
	uint64_t mism;
	uint64_t want[FILLGEN_WORDS];
};

static void check_page(struct wss *w, uint64_t i)
{
	const uint64_t *p = w->mem + i * FILLGEN_WORDS;

	fillgen_page(w->up->seed, &w->mix, i, w->gen[i], w->want);
	for (uint32_t k = 0; k < FILLGEN_WORDS; k++) {
		if (p[k] != w->want[k]) {
			if (w->mism < WSS_REPORTS)
				uprintf("wss: mismatch page=%lu offset=%u gen=%u got=0x%016lx want=0x%016lx\n",
					i, k * 8, w->gen[i], p[k], w->want[k]);
			w->mism++;
			return;
		}
	}
}

static void write_page(struct wss *w, uint64_t i)
{
	w->gen[i]++;
	fillgen_page(w->up->seed, &w->mix, i, w->gen[i], w->mem + i * FILLGEN_WORDS);
}

static uint64_t verify_all(struct wss *w)
{
	uint64_t before = w->mism;

	for (uint64_t i = 0; i < w->npages; i++)
		check_page(w, i);
	return w->mism - before;
}

/* The hot size in pages at second sec of the hot phase, and its step index. */
static uint64_t hot_pages_at(const struct uparams *up, uint64_t sec, uint32_t *step)
{
	uint32_t s = 0;

	while (s + 1 < up->wss_steps && sec >= up->wss_at_s[s + 1])
		s++;
	*step = s;
	return up->wss_hot[s] / FILLGEN_PAGE;
}

int wss_main(void)
{
	const struct uparams *up = &uparams;
	struct wss w;   /* not zero-initialised as a whole: gcc would emit a memset call */
	uint64_t ticks_per_s = up->tsc_khz * 1000, x = up->seed * 0x9e3779b97f4a7c15ULL | 1;
	uint64_t t0, now, last, next_report, next_verify, ops = 0, last_ops = 0, hot, sec = 0;
	uint64_t genbytes, verifies = 0;
	uint32_t step = 0, shown_step;
	char s1[24], s2[24];

	w.up = up;
	for (int k = 0; k < FILLGEN_NKINDS; k++)
		w.mix.pct[k] = up->mix[k];
	w.mism = 0;
	w.npages = up->size / FILLGEN_PAGE;
	genbytes = w.npages * sizeof(uint32_t);
	w.mem = umem_alloc(up->size);
	w.gen = umem_alloc(genbytes);
	if (!w.mem || !w.gen) {
		uprintf("wss: FAILED out of memory: cannot allocate %s (free %luM)\n",
			usize(up->size, s1, sizeof(s1)), ufree_bytes() >> 20);
		return EXIT_NOMEM;
	}
	t0 = urdtsc();
	for (uint64_t i = 0; i < w.npages; i++) {
		w.gen[i] = 0;
		fillgen_page(up->seed, &w.mix, i, 0, w.mem + i * FILLGEN_WORDS);
	}
	now = urdtsc();
	uprintf("wss: filled size=%s hot=%s steps=%u ms=%lu\n", usize(up->size, s1, sizeof(s1)),
		usize(up->wss_hot[0], s2, sizeof(s2)), up->wss_steps, uelapsed_us(t0, now) / 1000);

	t0 = last = now;
	next_report = t0 + ticks_per_s;
	next_verify = up->verify_s ? t0 + up->verify_s * ticks_per_s : UINT64_MAX;
	hot = hot_pages_at(up, 0, &step);
	shown_step = step;
	for (;;) {
		for (uint32_t b = 0; b < WSS_BATCH; b++) {
			uint64_t i;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			i = (uint64_t)(((unsigned __int128)x * hot) >> 64);
			if ((x & 3) == 0)
				write_page(&w, i);
			else
				check_page(&w, i);
		}
		ops += WSS_BATCH;
		if (w.mism)
			break;
		now = urdtsc();
		if (now >= next_verify) {
			uint64_t v0 = now, m = verify_all(&w);

			verifies++;
			now = urdtsc();
			if (!up->quiet || m)
				uprintf("wss: verify t=%lu pages=%lu ms=%lu mismatches=%lu\n",
					(now - t0) / ticks_per_s, w.npages, uelapsed_us(v0, now) / 1000, m);
			if (m)
				break;
			next_verify = now + up->verify_s * ticks_per_s;
		}
		if (now < next_report)
			continue;
		/* line t=N covers the time since the previous line, normally (N-1, N] */
		sec = (now - t0) / ticks_per_s;
		uprintf("wss: t=%lu ops=%lu ops_per_s=%lu hot=%s mismatches=%lu\n", sec, ops,
			(ops - last_ops) * 1000000 / uelapsed_us(last, now),
			usize(hot * FILLGEN_PAGE, s1, sizeof(s1)), w.mism);
		last = now;
		last_ops = ops;
		next_report = t0 + (sec + 1) * ticks_per_s;
		if (up->duration_s && sec >= up->duration_s)
			break;
		hot = hot_pages_at(up, sec, &step);
		if (step != shown_step) {
			uprintf("wss: t=%lu hot=%s step=%u\n", sec, usize(hot * FILLGEN_PAGE, s1, sizeof(s1)),
				step);
			shown_step = step;
		}
	}
	if (!w.mism) {
		verify_all(&w);
		verifies++;
	}
	if (w.mism) {
		uprintf("wss: FAILED mismatches=%lu\n", w.mism);
		return EXIT_VERIFY;
	}
	uprintf("wss: ok t=%lu ops=%lu full_verifies=%lu verified_bytes=%lu mismatches=0\n", sec, ops,
		verifies, verifies * up->size);
	return 0;
}
