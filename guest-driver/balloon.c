/*
 * virtio-balloon driver (virtio spec 1.2, 5.5) over virtio-mmio, and the
 * driver hooks the rest of the kernel calls (drivers_*).
 *
 * Runs on cpu 0 from the timer tick and the device interrupt, only when
 * cpu 0 was in ring 3 or idle, so it never races with cpu 0's own kernel
 * paths; other cpus reach it only through drivers_reclaim (under bl_lock).
 * Inflation prefers whole 2 MiB blocks so a host backed by huge pages can
 * free them; ballooned pages are remembered in a bitmap with a count per
 * 2 MiB group. Deflated pages are reused only after the host has returned
 * the buffer (which also honours MUST_TELL_HOST).
 */
#include "kernel.h"
#include "virtio_mmio.h"

#define VIRTIO_ID_BALLOON      5
#define F_MUST_TELL_HOST       (1ULL << 0)
#define F_STATS_VQ             (1ULL << 1)
#define F_DEFLATE_ON_OOM       (1ULL << 2)
#define F_REPORTING            (1ULL << 5)
#define CFG_NUM_PAGES          0
#define CFG_ACTUAL             4

#define PFNS_PER_BUF   256
#define NBUF           8
#define REPORT_MAX     16               /* 2 MiB blocks per report */
#define RESERVE_PAGES  1024             /* inflation leaves 4 MiB free for the kernel */
#define MAX_PAGES      (PMEM_MAX_GPA / PAGE_SIZE)
#define NSTATS         16

struct bbuf {
	uint32_t pfn[PFNS_PER_BUF] __attribute__((aligned(8)));
	uint32_t n;
	bool busy;
	bool contiguous;        /* pfn[i] == pfn[0] + i: one range operation suffices */
};

typedef uint64_t __attribute__((may_alias, aligned(4))) u64_alias;

struct stat_ent {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

static struct balloon {
	struct vmmio_dev dev;
	struct vq vq_inf, vq_def, vq_stats, vq_rep;
	bool present, broken, has_stats, has_report, oom, stalled, moving, first;
	uint64_t features;
	uint32_t target, actual, infl_inflight, defl_inflight;
	uint64_t blk_pa;
	uint32_t blk_left;
	uint64_t hold_until, rep_next, move_tsc, oom_log_tick;
	uint64_t rep_blocks[REPORT_MAX];
	uint32_t rep_n;
	bool rep_busy;
	uint64_t def_cursor;
	uint64_t reported_pages, report_scans, oom_pages, oom_events;
} bl;

static struct bbuf inf_buf[NBUF], def_buf[NBUF];
static struct stat_ent stats_buf[NSTATS];
static uint8_t rings[4][4096] __attribute__((aligned(4096)));
static uint64_t bbm[MAX_PAGES / 64];
static uint16_t bgrp[MAX_PAGES / 512];
static spinlock_t bl_lock;

static uint64_t mib(uint64_t pages)
{
	return pages >> 8;
}

/*
 * pfn[0..n) = start, start+1, ...: two PFNs per store, since every guest
 * ring-0 instruction is emulated on the development machines.
 */
static void fill_seq(uint32_t *d, uint32_t start, uint32_t n)
{
	uint64_t v;
	uint32_t i = 0;

	if (((uintptr_t)d & 7) && n) {
		d[0] = start++;
		d++;
		n--;
	}
	v = start | ((uint64_t)(start + 1) << 32);
	for (; i + 2 <= n; i += 2) {
		*(u64_alias *)&d[i] = v;
		v += 0x200000002ULL;
	}
	if (i < n)
		d[i] = start + i;
}

/* Sets or clears bits [p, p+n) of the balloon bitmap and the group counts. */
static void mark_run(uint32_t p, uint32_t n, bool set)
{
	while (n) {
		uint32_t lo = p % 64, cnt = n < 64 - lo ? n : 64 - lo;
		uint64_t mask = (cnt == 64 ? ~0ULL : ((1ULL << cnt) - 1)) << lo;

		if (set) {
			bbm[p / 64] |= mask;
			bgrp[p / 512] = (uint16_t)(bgrp[p / 512] + cnt);
		} else {
			bbm[p / 64] &= ~mask;
			bgrp[p / 512] = (uint16_t)(bgrp[p / 512] - cnt);
		}
		p += cnt;
		n -= cnt;
	}
}

static void set_actual(void)
{
	vmmio_config_write32(&bl.dev, CFG_ACTUAL, bl.actual);
}

static uint64_t free_pages_now(void)
{
	struct pmem_stats st;

	pmem_get_stats(&st);
	return st.free_pages;
}

/* PFNs for one inflate buffer: whole 2 MiB blocks while at least one more is wanted. */
static uint32_t fill_inflate(struct bbuf *b, uint32_t want, uint32_t total_want)
{
	uint32_t n = 0;

	b->contiguous = true;

	while (n < want) {
		if (bl.blk_left) {
			uint32_t pfn = (uint32_t)(bl.blk_pa / PAGE_SIZE) + (512 - bl.blk_left);
			uint32_t k = want - n < bl.blk_left ? want - n : bl.blk_left;

			if (n && b->pfn[n - 1] + 1 != pfn)
				b->contiguous = false;
			fill_seq(&b->pfn[n], pfn, k);
			n += k;
			bl.blk_left -= k;
			continue;
		}
		if (total_want - n >= 512 && free_pages_now() >= RESERVE_PAGES + 512) {
			uint64_t pa = pmem_alloc_2m();

			if (pa) {
				bl.blk_pa = pa;
				bl.blk_left = 512;
				continue;
			}
		}
		if (free_pages_now() <= RESERVE_PAGES)
			break;
		{
			uint64_t tmp[64];
			uint32_t k = pmem_alloc_4k_many(tmp, want - n < 64 ? want - n : 64, 0);

			if (!k)
				break;
			for (uint32_t i = 0; i < k; i++)
				b->pfn[n++] = (uint32_t)(tmp[i] / PAGE_SIZE);
			b->contiguous = false;
		}
	}
	return n;
}

/* Marks the buffer's pages ballooned, by runs. */
static void commit_inflate(struct bbuf *b)
{
	uint32_t i = 0;

	if (b->contiguous) {
		mark_run(b->pfn[0], b->n, true);
	} else {
		while (i < b->n) {
			uint32_t p = b->pfn[i], len = 1;

			while (i + len < b->n && b->pfn[i + len] == p + len)
				len++;
			mark_run(p, len, true);
			i += len;
		}
	}
	bl.actual += b->n;
	bl.infl_inflight -= b->n;
}

static uint32_t fill_deflate(struct bbuf *b, uint32_t want)
{
	uint64_t ngroups = pmem_max_pfn() / 512;
	uint32_t n = 0;

	b->contiguous = true;
	for (uint64_t scanned = 0; scanned < ngroups && n < want; scanned++) {
		uint64_t g = bl.def_cursor;

		if (!bgrp[g]) {
			bl.def_cursor = (g + 1) % ngroups;
			continue;
		}
		for (unsigned w = 0; w < 8 && n < want; w++) {
			uint64_t *word = &bbm[g * 8 + w];
			uint32_t base = (uint32_t)((g * 8 + w) * 64);

			if (*word == ~0ULL && want - n >= 64) {
				if (n && b->pfn[n - 1] + 1 != base)
					b->contiguous = false;
				fill_seq(&b->pfn[n], base, 64);
				n += 64;
				*word = 0;
				bgrp[g] = (uint16_t)(bgrp[g] - 64);
				continue;
			}
			while (*word && n < want) {
				unsigned bit = (unsigned)__builtin_ctzll(*word);

				*word &= *word - 1;
				if (n && b->pfn[n - 1] + 1 != base + bit)
					b->contiguous = false;
				b->pfn[n++] = base + bit;
				bgrp[g]--;
			}
		}
		if (!bgrp[g])
			bl.def_cursor = (g + 1) % ngroups;
	}
	return n;
}

/* Returns the buffer's pages to the allocator, coalescing runs. */
static void free_pfns(const struct bbuf *b)
{
	uint32_t i = 0;

	if (b->contiguous && b->n) {
		pmem_free_run((uint64_t)b->pfn[0] * PAGE_SIZE, b->n);
		return;
	}

	while (i < b->n) {
		uint32_t start = b->pfn[i], len = 1;

		while (i + len < b->n && b->pfn[i + len] == start + len)
			len++;
		pmem_free_run((uint64_t)start * PAGE_SIZE, len);
		i += len;
	}
}

static void commit_deflate(struct bbuf *b)
{
	free_pfns(b);
	bl.actual -= b->n;
	bl.defl_inflight -= b->n;
}

static void fill_stats(void)
{
	struct pmem_stats st;
	uint64_t v[NSTATS] = { 0 };

	pmem_get_stats(&st);
	v[3] = gcount.user_allocs_2m * 512 + gcount.user_allocs_4k * 512;  /* pages mapped for ring 3 */
	v[4] = st.free_pages * PAGE_SIZE;
	v[5] = st.total_pages * PAGE_SIZE;
	v[6] = (st.free_pages + (bl.rep_busy ? bl.rep_n * 512ULL : 0)) * PAGE_SIZE;
	v[8] = st.alloc_2m;
	v[9] = st.alloc_2m_fail;
	v[11] = gcount.alloc_stalls;
	v[12] = bl.report_scans;
	v[14] = bl.reported_pages;
	v[15] = bl.oom_pages;
	for (uint16_t t = 0; t < NSTATS; t++) {
		stats_buf[t].tag = t;
		stats_buf[t].val = v[t];
	}
}

static void queue_stats(void)
{
	struct vq_buf b = { (uint64_t)(uintptr_t)stats_buf, sizeof(stats_buf), false };

	fill_stats();
	if (vq_add(&bl.vq_stats, &b, 1, 0) == 0)
		vq_kick(&bl.vq_stats);
}

static void process_used(void)
{
	uint32_t c;
	bool changed = false;

	while (vq_get_used(&bl.vq_inf, &c)) {
		if (c < NBUF && inf_buf[c].busy) {
			commit_inflate(&inf_buf[c]);
			inf_buf[c].busy = false;
			changed = true;
		}
	}
	while (vq_get_used(&bl.vq_def, &c)) {
		if (c < NBUF && def_buf[c].busy) {
			commit_deflate(&def_buf[c]);
			def_buf[c].busy = false;
			changed = true;
		}
	}
	if (bl.has_stats && vq_get_used(&bl.vq_stats, &c))
		queue_stats();          /* the host asks for fresh stats by returning the buffer */
	if (bl.has_report && vq_get_used(&bl.vq_rep, &c)) {
		for (uint32_t i = 0; i < bl.rep_n; i++)
			pmem_return_reported(bl.rep_blocks[i]);
		bl.reported_pages += bl.rep_n * 512ULL;
		bl.rep_busy = false;
		bl.rep_next = ticks;    /* more may be waiting */
	}
	if (changed)
		set_actual();
}

static uint32_t projected(void)
{
	return bl.actual + bl.infl_inflight - bl.defl_inflight;
}

static void submit(void)
{
	bool kick_inf = false, kick_def = false;

	if (bl.target > projected() && ticks >= bl.hold_until) {
		for (int i = 0; i < NBUF && bl.target > projected(); i++) {
			struct bbuf *b = &inf_buf[i];
			uint32_t want = bl.target - projected();
			struct vq_buf vb;

			if (b->busy)
				continue;
			b->n = fill_inflate(b, want < PFNS_PER_BUF ? want : PFNS_PER_BUF, want);
			if (!b->n) {
				if (!bl.stalled)
					kprintf("balloon: inflate stalled at %u of %u pages: guest memory exhausted\n",
						bl.actual, bl.target);
				bl.stalled = true;
				bl.hold_until = ticks + tick_hz;
				break;
			}
			vb = (struct vq_buf){ (uint64_t)(uintptr_t)b->pfn, b->n * 4, false };
			if (vq_add(&bl.vq_inf, &vb, 1, (uint32_t)i) < 0) {
				free_pfns(b);
				break;
			}
			b->busy = true;
			bl.infl_inflight += b->n;
			kick_inf = true;
		}
	} else if (bl.target < projected()) {
		for (int i = 0; i < NBUF && bl.target < projected(); i++) {
			struct bbuf *b = &def_buf[i];
			uint32_t want = projected() - bl.target;
			struct vq_buf vb;

			if (b->busy)
				continue;
			b->n = fill_deflate(b, want < PFNS_PER_BUF ? want : PFNS_PER_BUF);
			if (!b->n)
				break;
			vb = (struct vq_buf){ (uint64_t)(uintptr_t)b->pfn, b->n * 4, false };
			if (vq_add(&bl.vq_def, &vb, 1, (uint32_t)i) < 0)
				break;
			b->busy = true;
			bl.defl_inflight += b->n;
			kick_def = true;
		}
	}
	/* a 2 MiB block only partly needed after the target moved back */
	if (bl.blk_left && bl.target <= projected()) {
		pmem_free_run(bl.blk_pa + (512 - bl.blk_left) * PAGE_SIZE, bl.blk_left);
		bl.blk_left = 0;
	}
	if (kick_inf)
		vq_kick(&bl.vq_inf);
	if (kick_def)
		vq_kick(&bl.vq_def);
}

static void report_free(void)
{
	struct vq_buf vb[REPORT_MAX];
	uint32_t n;

	if (!bl.has_report || bl.rep_busy || ticks < bl.rep_next)
		return;
	n = pmem_take_unreported(bl.rep_blocks, REPORT_MAX);
	bl.report_scans++;
	if (!n) {
		bl.rep_next = ticks + tick_hz;
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		vb[i] = (struct vq_buf){ bl.rep_blocks[i], (uint32_t)SZ_2M, true };
	if (vq_add(&bl.vq_rep, vb, (uint16_t)n, 0) < 0) {
		for (uint32_t i = 0; i < n; i++)
			pmem_return_reported(bl.rep_blocks[i]);
		bl.rep_next = ticks + tick_hz;
		return;
	}
	bl.rep_n = n;
	bl.rep_busy = true;
	vq_kick(&bl.vq_rep);
}

static void log_progress(void)
{
	if (bl.moving && bl.actual == bl.target && !bl.infl_inflight && !bl.defl_inflight) {
		kprintf("balloon: actual=%u pages (%luM) reached target in %lu ms\n", bl.actual,
			mib(bl.actual), tsc_to_ms(rdtsc() - bl.move_tsc));
		bl.moving = false;
	}
}

static void read_target(void)
{
	uint32_t t = vmmio_config32(&bl.dev, CFG_NUM_PAGES);

	if (t == bl.target && !bl.first)
		return;
	bl.first = false;
	if (t != bl.target || t != bl.actual) {
		kprintf("balloon: target=%u pages (%luM), actual=%u pages\n", t, mib(t), bl.actual);
		bl.moving = t != bl.actual;
		bl.move_tsc = rdtsc();
	}
	bl.target = t;
	bl.stalled = false;
}

void drivers_poll(bool from_irq)
{
	uint32_t isr;

	(void)from_irq;
	if (!bl.present || bl.broken || !spin_trylock(&bl_lock))
		return;
	isr = vmmio_ack(&bl.dev);
	if ((isr & VIRTIO_ISR_CONFIG) || bl.first) {
		if (vmmio_status(&bl.dev) & VIRTIO_STATUS_NEEDS_RESET) {
			kprintf("balloon: device set DEVICE_NEEDS_RESET, driver stopped\n");
			bl.broken = true;
			spin_unlock(&bl_lock);
			return;
		}
		read_target();
	}
	process_used();
	submit();
	report_free();
	log_progress();
	spin_unlock(&bl_lock);
}

/* Spins (ring 0, interrupts off) until cond() or about two seconds passed. */
static bool wait_for(bool (*cond)(void))
{
	uint64_t khz = kinfo.tsc_khz ? kinfo.tsc_khz : 1000000, end = rdtsc() + 2000 * khz;

	while (!cond()) {
		process_used();
		if (rdtsc() > end)
			return false;
		cpu_relax();
	}
	return true;
}

static bool no_report_inflight(void) { return !bl.rep_busy; }
static bool no_deflate_inflight(void) { return !bl.defl_inflight; }
static bool no_inflate_inflight(void) { return !bl.infl_inflight; }

uint64_t drivers_reclaim(uint64_t npages)
{
	uint64_t before, got;
	uint32_t want;

	if (!bl.present || bl.broken)
		return 0;
	spin_lock(&bl_lock);
	before = free_pages_now();
	wait_for(no_report_inflight);
	wait_for(no_inflate_inflight);
	if (bl.oom && bl.actual) {
		want = (uint32_t)(npages < 256 ? 256 : npages);
		if (want > bl.actual)
			want = bl.actual;
		/* no re-inflation for a while: the workload needs the memory now */
		bl.hold_until = ticks + 5ULL * (tick_hz ? tick_hz : 50);
		while (want) {
			bool queued = false;

			for (int i = 0; i < NBUF && want; i++) {
				struct bbuf *b = &def_buf[i];
				struct vq_buf vb;

				if (b->busy)
					continue;
				b->n = fill_deflate(b, want < PFNS_PER_BUF ? want : PFNS_PER_BUF);
				if (!b->n) {
					want = 0;
					break;
				}
				vb = (struct vq_buf){ (uint64_t)(uintptr_t)b->pfn, b->n * 4, false };
				if (vq_add(&bl.vq_def, &vb, 1, (uint32_t)i) < 0)
					break;
				b->busy = true;
				bl.defl_inflight += b->n;
				want -= b->n;
				queued = true;
			}
			if (queued)
				vq_kick(&bl.vq_def);
			if (!wait_for(no_deflate_inflight))
				break;
		}
		process_used();
		bl.oom_events++;
		got = free_pages_now() - before;
		bl.oom_pages += got;
		if (ticks >= bl.oom_log_tick) {
			kprintf("balloon: deflate-on-oom: %lu events, %lu pages (%luM) returned so far, actual=%u pages\n",
				bl.oom_events, bl.oom_pages, mib(bl.oom_pages), bl.actual);
			bl.oom_log_tick = ticks + 2ULL * (tick_hz ? tick_hz : 50);
		}
		if (bl.target != bl.actual)
			bl.moving = false;
	}
	got = free_pages_now();
	got = got > before ? got - before : 0;
	spin_unlock(&bl_lock);
	return got;
}

bool drivers_present(void)
{
	return bl.present;
}

static void balloon_probe(const struct bootinfo_dev *bd)
{
	uint64_t want = VIRTIO_F_VERSION_1 | F_MUST_TELL_HOST | F_STATS_VQ | F_DEFLATE_ON_OOM | F_REPORTING;
	uint16_t next = 2;
	int q_stats = -1, q_rep = -1;

	if (vmmio_probe(&bl.dev, bd->base, bd->irq, VIRTIO_ID_BALLOON) < 0)
		return;
	bl.features = vmmio_device_features(&bl.dev);
	if (!(bl.features & VIRTIO_F_VERSION_1)) {
		kprintf("balloon: device does not offer VIRTIO_F_VERSION_1 (legacy only), not used\n");
		vmmio_fail(&bl.dev);
		return;
	}
	bl.features &= want;
	if (vmmio_set_features(&bl.dev, bl.features) < 0) {
		kprintf("balloon: device refused features 0x%lx\n", bl.features);
		vmmio_fail(&bl.dev);
		return;
	}
	bl.has_stats = bl.features & F_STATS_VQ;
	bl.has_report = bl.features & F_REPORTING;
	bl.oom = bl.features & F_DEFLATE_ON_OOM;
	/* queue numbering as Linux: optional queues take the next index */
	if (bl.has_stats)
		q_stats = next++;
	if (bl.has_report)
		q_rep = next++;
	if (vq_setup(&bl.dev, &bl.vq_inf, 0, rings[0]) < 0 || vq_setup(&bl.dev, &bl.vq_def, 1, rings[1]) < 0 ||
	    (bl.has_stats && vq_setup(&bl.dev, &bl.vq_stats, (uint16_t)q_stats, rings[2]) < 0) ||
	    (bl.has_report && vq_setup(&bl.dev, &bl.vq_rep, (uint16_t)q_rep, rings[3]) < 0)) {
		kprintf("balloon: queue setup failed\n");
		vmmio_fail(&bl.dev);
		return;
	}
	vmmio_driver_ok(&bl.dev);
	if (bl.has_stats)
		queue_stats();
	bl.actual = 0;
	set_actual();
	bl.first = true;
	bl.present = true;
	ioapic_route(bd->irq, VEC_DEVICE, 0);
	kprintf("balloon: virtio-balloon at 0x%lx irq %u features=0x%lx%s%s%s%s queues inflate=0 deflate=1"
		" stats=%d reporting=%d\n", bd->base, bd->irq, bl.features,
		bl.has_stats ? " stats" : "", bl.oom ? " deflate-on-oom" : "",
		bl.has_report ? " free-page-reporting" : "",
		(bl.features & F_MUST_TELL_HOST) ? " must-tell-host" : "", q_stats, q_rep);
}

void drivers_init(const struct bootinfo *bi)
{
	uint32_t n = bi->nr_dev < BOOTINFO_MAX_DEV ? bi->nr_dev : BOOTINFO_MAX_DEV;

	for (uint32_t i = 0; i < n; i++) {
		const struct bootinfo_dev *d = &bi->dev[i];

		if (d->type == BOOTINFO_DEV_VIRTIO_MMIO && d->device_id == VIRTIO_ID_BALLOON && !bl.present)
			balloon_probe(d);
	}
}
