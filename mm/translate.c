/*
 * translate: the pure part of the translation inspector (translate.h): the
 * guest's first-stage walk in every x86 paging mode, the scan of every
 * table reachable from a CR3, and the arithmetic of what a TLB miss costs
 * at each pair of page sizes. No I/O here: guest memory comes through the
 * caller's callbacks, so the unit tests can feed synthetic tables and the
 * manager feeds the checked translation.
 */
#include <errno.h>
#include <string.h>

#include "mm/translate.h"

/* Bits 12..51: the widest physical address x86 defines, so a guest's table
 * pointer is never truncated; entries beyond RAM stop the walk as NOT_RAM. */
#define ADDR_MASK 0x000ffffffffff000ull

/* One level of a mode's tables. */
struct level_desc {
	const char *name;
	unsigned shift;          /* the address bits this level indexes start here */
	unsigned bits;           /* and are this many */
	uint64_t ps_size;        /* a PS entry here maps this much; 0: PS is reserved here */
};

struct mode_desc {
	int levels;
	unsigned entry_size;
	const struct level_desc *lv;
};

static const struct level_desc lv_5[] = {
	{ "PML5", 48, 9, 0 }, { "PML4", 39, 9, 0 }, { "PDPT", 30, 9, 1ull << 30 },
	{ "PD", 21, 9, 2ull << 20 }, { "PT", 12, 9, 0 },
};
static const struct level_desc lv_pae[] = {
	/* the 4 PDPTEs have no PS bit: bit 7 is reserved there */
	{ "PDPT", 30, 2, 0 }, { "PD", 21, 9, 2ull << 20 }, { "PT", 12, 9, 0 },
};
static const struct level_desc lv_32[] = {
	{ "PD", 22, 10, 4ull << 20 }, { "PT", 12, 10, 0 },
};
static const struct level_desc lv_32_nopse[] = {
	{ "PD", 22, 10, 0 }, { "PT", 12, 10, 0 },
};

enum mm_xlate_mode mm_xlate_mode(const struct mm_cpu_paging *p)
{
	if (!(p->cr0 & CR0_PG))
		return MM_XLATE_OFF;
	if (!(p->cr4 & CR4_PAE))
		return MM_XLATE_32;
	if (!(p->efer & EFER_LMA))
		return MM_XLATE_PAE;
	return (p->cr4 & CR4_LA57) ? MM_XLATE_5LEVEL : MM_XLATE_4LEVEL;
}

const char *mm_xlate_mode_name(enum mm_xlate_mode mode)
{
	static const char *const names[] = { "off", "32-bit", "pae", "4-level", "5-level" };

	return (unsigned)mode < sizeof(names) / sizeof(names[0]) ? names[mode] : "?";
}

const char *mm_xlate_stop_name(enum mm_xlate_stop stop)
{
	static const char *const names[] = { "ok", "not present", "reserved bit",
					     "table not in RAM", "non-canonical address" };

	return (unsigned)stop < sizeof(names) / sizeof(names[0]) ? names[stop] : "?";
}

static void mode_desc(const struct mm_cpu_paging *p, enum mm_xlate_mode mode, struct mode_desc *d)
{
	switch (mode) {
	case MM_XLATE_5LEVEL:
		*d = (struct mode_desc){ 5, 8, lv_5 };
		break;
	case MM_XLATE_4LEVEL:
		*d = (struct mode_desc){ 4, 8, lv_5 + 1 };
		break;
	case MM_XLATE_PAE:
		*d = (struct mode_desc){ 3, 8, lv_pae };
		break;
	case MM_XLATE_32:
		*d = (struct mode_desc){ 2, 4, (p->cr4 & CR4_PSE) ? lv_32 : lv_32_nopse };
		break;
	default:
		*d = (struct mode_desc){ 0, 0, NULL };
	}
}

/* Where the first table lies: PAE's 4 PDPTEs are 32-byte aligned. */
static uint64_t root_table(const struct mm_cpu_paging *p, enum mm_xlate_mode mode)
{
	if (mode == MM_XLATE_PAE)
		return p->cr3 & 0xffffffe0ull;
	if (mode == MM_XLATE_32)
		return p->cr3 & 0xfffff000ull;
	return p->cr3 & ADDR_MASK;
}

/* The next table (or page) an entry points to. */
static uint64_t entry_addr(enum mm_xlate_mode mode, uint64_t e)
{
	return mode == MM_XLATE_32 ? (e & 0xfffff000ull) : (e & ADDR_MASK);
}

/* A large page's base: bit 12 is PAT there, and a 32-bit 4 MiB entry holds
 * physical bits 32..39 in bits 13..20 (PSE-36). */
static uint64_t large_base(enum mm_xlate_mode mode, uint64_t e, uint64_t size)
{
	if (mode == MM_XLATE_32)
		return (e & 0xffc00000ull) | (((e >> 13) & 0xffull) << 32);
	return e & ADDR_MASK & ~(size - 1);
}

static bool canonical(enum mm_xlate_mode mode, uint64_t gva)
{
	unsigned top = mode == MM_XLATE_5LEVEL ? 56 : mode == MM_XLATE_4LEVEL ? 47 : 63;
	uint64_t hi = gva >> top;

	if (mode != MM_XLATE_4LEVEL && mode != MM_XLATE_5LEVEL)
		return gva <= 0xffffffffull;   /* 32-bit modes translate 32-bit addresses */
	return hi == 0 || hi == (~0ull >> top);
}

int mm_xlate_walk(const struct mm_cpu_paging *p, uint64_t gva, mm_xlate_read_fn rd, void *ctx,
		  struct mm_xlate_walk *w)
{
	enum mm_xlate_mode mode = mm_xlate_mode(p);
	struct mode_desc d;
	uint64_t table;

	memset(w, 0, sizeof(*w));
	w->mode = mode;
	mode_desc(p, mode, &d);
	w->paging_levels = d.levels;
	w->writable = w->user = true;
	if (mode == MM_XLATE_OFF) {
		/* no guest stage: the address is the guest-physical one */
		w->gpa = gva;
		return 0;
	}
	if (!canonical(mode, gva)) {
		w->stop = MM_XLATE_NON_CANONICAL;
		return 0;
	}
	table = root_table(p, mode);
	for (int i = 0; i < d.levels; i++) {
		const struct level_desc *l = &d.lv[i];
		struct mm_xlate_level *o = &w->lv[i];
		unsigned idx = (unsigned)((gva >> l->shift) & ((1ull << l->bits) - 1));
		uint64_t e;

		o->name = l->name;
		o->table_gpa = table;
		o->index = idx;
		o->entry_gpa = table + (uint64_t)idx * d.entry_size;
		w->nr_levels = i + 1;
		if (rd(ctx, o->entry_gpa, d.entry_size, &e)) {
			w->stop = MM_XLATE_NOT_RAM;
			return 0;
		}
		o->entry = e;
		if (!(e & MM_PTE_P)) {
			w->stop = MM_XLATE_NOT_PRESENT;
			return 0;
		}
		w->writable &= !!(e & MM_PTE_RW);
		w->user &= !!(e & MM_PTE_US);
		if (d.entry_size == 8 && (p->efer & EFER_NXE) && (e & MM_PTE_NX))
			w->nx = true;
		bool last = i == d.levels - 1;
		/* PAE's PDPTEs have no rights bits: they are reserved there */
		if (mode == MM_XLATE_PAE && i == 0) {
			w->writable = w->user = true;
			if (e & MM_PTE_PS) {
				w->stop = MM_XLATE_RESERVED;
				return 0;
			}
			table = entry_addr(mode, e);
			continue;
		}
		if (last || (e & MM_PTE_PS)) {
			if (!last && !l->ps_size) {
				w->stop = MM_XLATE_RESERVED;
				return 0;
			}
			w->page_size = last ? 4096 : l->ps_size;
			uint64_t base = last ? entry_addr(mode, e) : large_base(mode, e, w->page_size);
			w->gpa = base | (gva & (w->page_size - 1));
			return 0;
		}
		table = entry_addr(mode, e);
	}
	return 0;   /* not reached: the last level always ends the loop */
}

/* ---- what a TLB miss costs ---- */

unsigned mm_xlate_stage_refs(int levels, uint64_t page)
{
	int above;

	if (levels <= 0)
		return 0;
	switch (page) {
	case 4096:
		above = 0;
		break;
	case 2ull << 20:
	case 4ull << 20:
		above = 1;
		break;
	case 1ull << 30:
		above = 2;
		break;
	default:
		return 0;
	}
	return levels - above >= 1 ? (unsigned)(levels - above) : 0;
}

unsigned mm_xlate_2d_refs(int guest_levels, uint64_t guest_page, int host_levels, uint64_t host_page)
{
	unsigned g = mm_xlate_stage_refs(guest_levels, guest_page);
	unsigned h = mm_xlate_stage_refs(host_levels, host_page);

	if (!h || (guest_levels > 0 && !g))
		return 0;
	/* every guest entry's address and the final GPA each take a nested walk */
	return g * (h + 1) + h;
}

uint64_t mm_xlate_tlb_entries(uint64_t bytes, uint64_t guest_page, uint64_t host_page)
{
	uint64_t eff = guest_page && guest_page < host_page ? guest_page : host_page;

	if (!eff)
		return 0;
	return bytes / eff + (bytes % eff ? 1 : 0);
}

int mm_xlate_size_index(uint64_t page)
{
	switch (page) {
	case 4096:
		return 0;
	case 2ull << 20:
		return 1;
	case 1ull << 30:
		return 2;
	case 4ull << 20:
		return 3;
	default:
		return -1;
	}
}

/* ---- the whole-table scan ---- */

struct scan_ctx {
	enum mm_xlate_mode mode;
	struct mode_desc d;
	mm_xlate_table_fn table;
	mm_xlate_ram_fn is_ram;
	void *ctx;
	uint64_t max_tables;
	struct mm_xlate_scan *out;
};

static void scan_leaf(struct scan_ctx *s, uint64_t base, uint64_t size)
{
	int k = mm_xlate_size_index(size);

	if (k < 0)
		return;
	s->out->mapped[k] += size;
	if (s->is_ram(s->ctx, base, size))
		s->out->mapped_ram[k] += size;
}

/*
 * Entries [first, first + n) of the table at gpa (page aligned), at level i.
 * The callback's copy is consumed entry by entry before recursing, because
 * a deeper level's read may reuse the callee's buffer: each level copies
 * what it needs into locals first.
 */
static void scan_table(struct scan_ctx *s, uint64_t gpa, unsigned first, unsigned n, int i)
{
	const struct level_desc *l = &s->d.lv[i];
	bool last = i == s->d.levels - 1;
	uint64_t entries[1024];

	if (s->out->tables >= s->max_tables) {
		s->out->truncated = true;
		return;
	}
	const void *t = s->table(s->ctx, gpa);
	if (!t) {
		s->out->bad_tables++;
		return;
	}
	s->out->tables++;
	for (unsigned k = 0; k < n; k++) {
		if (s->d.entry_size == 8) {
			memcpy(&entries[k], (const uint8_t *)t + (first + k) * 8, 8);
		} else {
			uint32_t v;

			memcpy(&v, (const uint8_t *)t + (first + k) * 4, 4);
			entries[k] = v;
		}
	}
	for (unsigned k = 0; k < n && !s->out->truncated; k++) {
		uint64_t e = entries[k];

		if (!(e & MM_PTE_P))
			continue;
		if (s->mode == MM_XLATE_PAE && i == 0) {
			if (!(e & MM_PTE_PS))
				scan_table(s, entry_addr(s->mode, e), 0, 512, i + 1);
			continue;
		}
		if (last) {
			scan_leaf(s, entry_addr(s->mode, e), 4096);
		} else if (e & MM_PTE_PS) {
			if (l->ps_size)
				scan_leaf(s, large_base(s->mode, e, l->ps_size), l->ps_size);
		} else {
			const struct level_desc *nl = &s->d.lv[i + 1];

			scan_table(s, entry_addr(s->mode, e), 0, 1u << nl->bits, i + 1);
		}
	}
}

int mm_xlate_scan(const struct mm_cpu_paging *p, mm_xlate_table_fn table, mm_xlate_ram_fn is_ram,
		  void *ctx, uint64_t max_tables, struct mm_xlate_scan *out)
{
	struct scan_ctx s = { .table = table, .is_ram = is_ram, .ctx = ctx, .max_tables = max_tables,
			      .out = out };

	memset(out, 0, sizeof(*out));
	s.mode = mm_xlate_mode(p);
	if (s.mode == MM_XLATE_OFF)
		return -ENOENT;
	mode_desc(p, s.mode, &s.d);
	uint64_t root = root_table(p, s.mode);
	/* PAE's root is 4 entries inside a page; the others are whole pages */
	if (s.mode == MM_XLATE_PAE)
		scan_table(&s, root & ~0xfffull, (unsigned)(root & 0xfe0) / 8, 4, 0);
	else
		scan_table(&s, root, 0, 1u << s.d.lv[0].bits, 0);
	return 0;
}
