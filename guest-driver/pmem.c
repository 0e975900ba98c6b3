/*
 * Physical page allocator over the boot memory map. One bit per 4 KiB page
 * (1 = in use or not RAM) plus a free count per 2 MiB group, so 2 MiB blocks
 * come out of a cheap scan of the counts and 4 KiB pages from partially
 * used groups first (keeping whole blocks intact). Bits are only meaningful
 * inside groups that have ever been handed out piecewise; whole-block
 * operations write the 8 bitmap words of their group at once.
 *
 * Pages are never zeroed or touched here: fresh guest RAM is zero, and
 * users that need zeroed memory clear it themselves (in ring 3).
 */
#include "kernel.h"

#define MAX_GPA      PMEM_MAX_GPA
#define MAX_PAGES    (MAX_GPA / PAGE_SIZE)
#define MAX_GROUPS   (MAX_GPA / SZ_2M)
#define GROUP_PAGES  512u
#define GROUP_WORDS  (GROUP_PAGES / 64)

static uint64_t bm[MAX_PAGES / 64];
static uint16_t grp_free[MAX_GROUPS];
static uint8_t grp_dirty[MAX_GROUPS];   /* handed out since its last free page report */
static spinlock_t pmem_lock;
static uint64_t ngroups, total_pages, free_pages, nfull, npartial;
static uint64_t cursor_2m, cursor_4k, cursor_report;
static uint64_t stat_alloc_2m, stat_alloc_2m_fail;

static void set_free(uint64_t g, uint32_t v)
{
	uint32_t old = grp_free[g];

	nfull += (v == GROUP_PAGES) - (old == GROUP_PAGES);
	npartial += (v > 0 && v < GROUP_PAGES) - (old > 0 && old < GROUP_PAGES);
	free_pages += v;
	free_pages -= old;
	grp_free[g] = (uint16_t)v;
}

static void group_fill_bits(uint64_t g, uint64_t v)
{
	uint64_t *w = &bm[g * GROUP_WORDS];

	for (unsigned i = 0; i < GROUP_WORDS; i++)
		w[i] = v;
}

/* Pages [p, q) of one group change state page by page (init only). */
static void init_partial(uint64_t p, uint64_t q, bool make_free)
{
	for (; p < q; p++) {
		uint64_t g = p / GROUP_PAGES, bit = 1ULL << (p % 64);
		uint64_t *w = &bm[p / 64];

		if (make_free && (*w & bit)) {
			*w &= ~bit;
			set_free(g, grp_free[g] + 1);
		} else if (!make_free && !(*w & bit)) {
			*w |= bit;
			if (grp_free[g])
				set_free(g, grp_free[g] - 1);
		}
	}
}

static void init_range(uint64_t a, uint64_t b, bool make_free)
{
	uint64_t p = (a + PAGE_SIZE - 1) / PAGE_SIZE, q = b / PAGE_SIZE;

	if (!make_free) {
		p = a / PAGE_SIZE;
		q = (b + PAGE_SIZE - 1) / PAGE_SIZE;
	}
	if (q > ngroups * GROUP_PAGES)
		q = ngroups * GROUP_PAGES;
	while (p < q) {
		uint64_t g = p / GROUP_PAGES, gend = (g + 1) * GROUP_PAGES;

		if (p % GROUP_PAGES == 0 && q >= gend) {
			group_fill_bits(g, make_free ? 0 : ~0ULL);
			set_free(g, make_free ? GROUP_PAGES : 0);
			p = gend;
			continue;
		}
		if (gend > q)
			gend = q;
		init_partial(p, gend, make_free);
		p = gend;
	}
}

static void prep_partial(uint64_t g)
{
	if (!grp_dirty[g] && grp_free[g] == 0) {
		group_fill_bits(g, ~0ULL);
		grp_dirty[g] = 1;       /* init-time marker, cleared below */
	}
}

int pmem_init(const struct bootinfo *bi)
{
	uint32_t nr = bi->nr_mem < BOOTINFO_MAX_MEM ? bi->nr_mem : BOOTINFO_MAX_MEM;
	uint64_t top = 0;

	for (uint32_t i = 0; i < nr; i++)
		if (bi->mem[i].type == BOOTINFO_MEM_RAM && bi->mem[i].addr + bi->mem[i].size > top)
			top = bi->mem[i].addr + bi->mem[i].size;
	if (top > MAX_GPA) {
		kprintf("guest: RAM above %lu GiB is not used\n", (uint64_t)(MAX_GPA >> 30));
		top = MAX_GPA;
	}
	ngroups = (top + SZ_2M - 1) / SZ_2M;
	/* groups start "not RAM": count 0 and (for partial ones) bits set */
	for (uint32_t i = 0; i < nr; i++) {
		const struct bootinfo_mem *m = &bi->mem[i];
		uint64_t a = m->addr, b = m->addr + m->size;

		if (m->type != BOOTINFO_MEM_RAM || b <= a || a >= top)
			continue;
		if (b > top)
			b = top;
		/* a partial group's other pages must read as used before we free ours */
		if (a % SZ_2M || (a / SZ_2M == (b - 1) / SZ_2M && b % SZ_2M))
			prep_partial(a / SZ_2M);
		if (b % SZ_2M)
			prep_partial((b - 1) / SZ_2M);
		init_range(a, b, true);
	}
	for (uint32_t i = 0; i < nr; i++)
		if (bi->mem[i].type != BOOTINFO_MEM_RAM)
			init_range(bi->mem[i].addr, bi->mem[i].addr + bi->mem[i].size, false);
	init_range(0, 1ULL << 20, false);
	init_range(BOOTINFO_GPA, BOOTINFO_GPA + PAGE_SIZE, false);
	init_range(bi->kernel_start, bi->kernel_end, false);
	/* dirty marked partial groups during init; fresh memory counts as reported */
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t a = bi->mem[i].addr, b = a + bi->mem[i].size;

		if (b > a && a < top) {
			grp_dirty[a / SZ_2M] = 0;
			grp_dirty[((b < top ? b : top) - 1) / SZ_2M] = 0;
		}
	}
	total_pages = free_pages;
	return total_pages ? 0 : -1;
}

static uint64_t take_group(uint64_t g)
{
	group_fill_bits(g, ~0ULL);
	set_free(g, 0);
	grp_dirty[g] = 1;
	return g * SZ_2M;
}

static int64_t find_full_group(uint64_t *cursor)
{
	if (!nfull)
		return -1;
	for (uint64_t n = 0; n < ngroups; n++) {
		uint64_t g = (*cursor + n) % ngroups;

		if (grp_free[g] == GROUP_PAGES) {
			*cursor = g;
			return (int64_t)g;
		}
	}
	return -1;
}

uint64_t pmem_alloc_2m(void)
{
	uint64_t pa = 0;
	int64_t g;

	spin_lock(&pmem_lock);
	g = find_full_group(&cursor_2m);
	if (g >= 0) {
		pa = take_group((uint64_t)g);
		stat_alloc_2m++;
	} else {
		stat_alloc_2m_fail++;
	}
	spin_unlock(&pmem_lock);
	return pa;
}

/* A group to take 4 KiB pages from: a partial one if any, else a whole one. */
static int64_t pick_4k_group(void)
{
	if (npartial) {
		for (uint64_t n = 0; n < ngroups; n++) {
			uint64_t g = (cursor_4k + n) % ngroups;

			if (grp_free[g] && grp_free[g] < GROUP_PAGES) {
				cursor_4k = g;
				return (int64_t)g;
			}
		}
	}
	return find_full_group(&cursor_4k);
}

uint32_t pmem_alloc_4k_many(uint64_t *out, uint32_t n, uint64_t flags)
{
	uint32_t got = 0;

	spin_lock(&pmem_lock);
	while (got < n) {
		int64_t g = pick_4k_group();
		uint32_t taken = 0;

		if (g < 0)
			break;
		grp_dirty[g] = 1;
		for (unsigned i = 0; i < GROUP_WORDS && got < n; i++) {
			uint64_t *w = &bm[(uint64_t)g * GROUP_WORDS + i];
			uint64_t avail = ~*w;

			while (avail && got < n) {
				unsigned bit = (unsigned)__builtin_ctzll(avail);

				avail &= avail - 1;
				*w |= 1ULL << bit;
				out[got++] = ((((uint64_t)g * GROUP_WORDS + i) * 64 + bit) * PAGE_SIZE) | flags;
				taken++;
			}
		}
		set_free((uint64_t)g, grp_free[g] - taken);
	}
	spin_unlock(&pmem_lock);
	return got;
}

uint64_t pmem_alloc_4k(void)
{
	uint64_t pa;

	return pmem_alloc_4k_many(&pa, 1, 0) ? pa : 0;
}

void pmem_free_2m(uint64_t pa)
{
	uint64_t g = pa / SZ_2M;

	spin_lock(&pmem_lock);
	group_fill_bits(g, 0);
	set_free(g, GROUP_PAGES);
	spin_unlock(&pmem_lock);
}

void pmem_free_run(uint64_t pa, uint64_t npages)
{
	uint64_t p = pa / PAGE_SIZE, q = p + npages;

	spin_lock(&pmem_lock);
	while (p < q) {
		uint64_t g = p / GROUP_PAGES, gend = (g + 1) * GROUP_PAGES;
		uint32_t cleared = 0;

		if (p % GROUP_PAGES == 0 && q >= gend) {
			group_fill_bits(g, 0);
			set_free(g, GROUP_PAGES);
			p = gend;
			continue;
		}
		if (gend > q)
			gend = q;
		while (p < gend) {
			uint64_t *w = &bm[p / 64];
			unsigned lo = p % 64, cnt = (unsigned)(gend - p < 64 - lo ? gend - p : 64 - lo);
			uint64_t mask = (cnt == 64 ? ~0ULL : ((1ULL << cnt) - 1)) << lo;

			cleared += (unsigned)__builtin_popcountll(*w & mask);
			*w &= ~mask;
			p += cnt;
		}
		set_free(g, grp_free[g] + cleared);
	}
	spin_unlock(&pmem_lock);
}

void pmem_free_4k(uint64_t pa)
{
	pmem_free_run(pa & PTE_ADDR, 1);
}

uint32_t pmem_take_unreported(uint64_t *out, uint32_t max)
{
	uint32_t got = 0;

	spin_lock(&pmem_lock);
	for (uint64_t n = 0; n < ngroups && got < max && nfull; n++) {
		uint64_t g = cursor_report;

		cursor_report = (cursor_report + 1) % ngroups;
		if (grp_free[g] == GROUP_PAGES && grp_dirty[g])
			out[got++] = take_group(g);
	}
	spin_unlock(&pmem_lock);
	return got;
}

void pmem_return_reported(uint64_t pa)
{
	uint64_t g = pa / SZ_2M;

	spin_lock(&pmem_lock);
	group_fill_bits(g, 0);
	set_free(g, GROUP_PAGES);
	grp_dirty[g] = 0;
	spin_unlock(&pmem_lock);
}

void pmem_get_stats(struct pmem_stats *st)
{
	spin_lock(&pmem_lock);
	st->total_pages = total_pages;
	st->free_pages = free_pages;
	st->free_2m_blocks = nfull;
	st->alloc_2m = stat_alloc_2m;
	st->alloc_2m_fail = stat_alloc_2m_fail;
	spin_unlock(&pmem_lock);
}

uint64_t pmem_max_pfn(void)
{
	return ngroups * GROUP_PAGES;
}

/* Frees the pages named by n page-table entries (flag bits ignored). */
void pmem_free_list(const uint64_t *ents, uint32_t n)
{
	spin_lock(&pmem_lock);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t p = (ents[i] & PTE_ADDR) / PAGE_SIZE, g = p / GROUP_PAGES;
		uint64_t *w = &bm[p / 64], bit = 1ULL << (p % 64);

		if (!(ents[i] & PTE_P) || !(*w & bit))
			continue;
		*w &= ~bit;
		set_free(g, grp_free[g] + 1u);
	}
	spin_unlock(&pmem_lock);
}
