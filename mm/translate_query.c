/*
 * translate_query: the translation inspector's answers about a running VM
 * (translate.h): one address followed from guest-virtual through the
 * guest's tables, the memslot, the host mapping and the host's physical
 * page, with the page-state table's view and what a TLB miss costs there;
 * and the summary of every stage's page sizes over all guest RAM.
 *
 * Guest memory is read only through mm_gpa_to_hva(). The host side comes
 * from /proc/self/pagemap (present, PFN), /proc/kpageflags (huge, THP;
 * PFNs and flags need CAP_SYS_ADMIN, so without it the answer says so and
 * falls back to the backing's nominal page size) and /proc/self/smaps for
 * the summary, where the kernel already sums AnonHugePages and hugetlb.
 *
 * Main thread: the vCPU registers come through ops.cpu_paging, which
 * pauses the vCPUs for the read; the walk that follows runs with the guest
 * running again, so it is a snapshot as good as the guest's own next walk.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mm/manager_priv.h"
#include "vmm/lib/sandbox.h"
#include "mm/translate.h"

/* EPT and NPT with 48-bit guest-physical addresses: 4 levels. */
#define HOST_LEVELS 4

/* /proc/self/pagemap and /proc/kpageflags bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_PRESENT   (1ull << 63)
#define PM_SWAPPED   (1ull << 62)
#define PM_PFN_MASK  ((1ull << 55) - 1)
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define KPF_HUGE          17
#define KPF_THP           22
#define KPF_ZERO_PAGE     24

void mm_translate_open(struct mm_manager *m)
{
	m->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	m->kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
}

void mm_translate_close(struct mm_manager *m)
{
	if (m->pagemap_fd >= 0)
		close(m->pagemap_fd);
	if (m->kpageflags_fd >= 0)
		close(m->kpageflags_fd);
	m->pagemap_fd = m->kpageflags_fd = -1;
}

static void set_u64(json_t *o, const char *k, uint64_t v)
{
	json_object_set_new(o, k, json_integer((json_int_t)v));
}

static void set_hex(json_t *o, const char *k, uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "0x%" PRIx64, v);
	json_object_set_new(o, k, json_string(b));
}

/* ---- guest memory through the checked translation ---- */

static int read_guest(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
	const struct guest_mem *gm = ctx;
	const void *p = mm_gpa_to_hva(gm, gpa, size);

	if (!p)
		return -EFAULT;
	*val = 0;
	memcpy(val, p, size);   /* little endian: a 4-byte entry lands zero-extended */
	return 0;
}

static const void *table_guest(void *ctx, uint64_t gpa)
{
	return mm_gpa_to_hva(ctx, gpa, 4096);
}

static bool ram_guest(void *ctx, uint64_t gpa, uint64_t len)
{
	return mm_gpa_to_hva(ctx, gpa, len) != NULL;
}

static int cpu_paging(struct mm_manager *m, int cpu, struct mm_cpu_paging *p, char *err, size_t errlen)
{
	int n = m->ops.cpu_count ? m->ops.cpu_count(m->ops_opaque) : 0;
	int ret;

	if (!m->ops.cpu_paging || n <= 0) {
		snprintf(err, errlen, "this VM has no vCPUs to read paging registers from");
		return -ENOTSUP;
	}
	if (cpu < 0 || cpu >= n) {
		snprintf(err, errlen, "no vCPU %d: the VM has %d (cpu 0..%d)", cpu, n, n - 1);
		return -ENOENT;
	}
	ret = m->ops.cpu_paging(m->ops_opaque, cpu, p);
	if (ret == -ESHUTDOWN)
		snprintf(err, errlen, "the VM is stopping");
	else if (ret)
		snprintf(err, errlen, "cannot read vCPU %d's registers: %s", cpu,
			 ret == -ETIMEDOUT ? "it did not pause within 5 s" : strerror(-ret));
	return ret;
}

/* ---- the host's side of one page ---- */

struct host_page {
	bool known;              /* pagemap could be read */
	bool present, swapped;
	uint64_t pfn;            /* 0: not visible (needs CAP_SYS_ADMIN) */
	uint64_t kflags;
	bool have_kflags;
	uint64_t size;           /* host page size; 0 when it cannot be told */
	const char *kind;        /* "4k", "thp", "hugetlb", "zero-page", or NULL */
	const char *note;
};

static int pread_u64(int fd, uint64_t index, uint64_t *v)
{
	return pread(fd, v, 8, (off_t)(index * 8)) == 8 ? 0 : -EIO;
}

/*
 * Whether the THP page at hva is mapped whole (a PMD mapping, what KVM can
 * map with one 2 MiB entry): all 512 pieces present, with contiguous PFNs
 * starting at a 2 MiB aligned frame. kpageflags says THP for a split,
 * PTE-mapped one too.
 */
static bool thp_whole(struct mm_manager *m, uint64_t hva)
{
	uint64_t first = (hva & ~((2ull << 20) - 1)) / 4096, pm[512];

	if (pread(m->pagemap_fd, pm, sizeof(pm), (off_t)(first * 8)) != (ssize_t)sizeof(pm))
		return false;
	uint64_t pfn0 = pm[0] & PM_PFN_MASK;
	if (!(pm[0] & PM_PRESENT) || !pfn0 || pfn0 % 512)
		return false;
	for (unsigned i = 1; i < 512; i++)
		if (!(pm[i] & PM_PRESENT) || (pm[i] & PM_PFN_MASK) != pfn0 + i)
			return false;
	return true;
}

static void host_page_of(struct mm_manager *m, uint64_t hva, struct host_page *h)
{
	const struct guest_mem *gm = m->gm;
	uint64_t pm;

	memset(h, 0, sizeof(*h));
	if (m->pagemap_fd < 0 || pread_u64(m->pagemap_fd, hva / 4096, &pm)) {
		h->note = "/proc/self/pagemap cannot be read";
		return;
	}
	h->known = true;
	h->present = pm & PM_PRESENT;
	h->swapped = pm & PM_SWAPPED;
	if (!h->present)
		return;
	h->pfn = pm & PM_PFN_MASK;
	if (!h->pfn || m->kpageflags_fd < 0 || pread_u64(m->kpageflags_fd, h->pfn, &h->kflags)) {
		/* hugetlb is huge by construction; the others need the flags to tell */
		if (gm->backing == MM_BACKING_HUGETLB) {
			h->size = gm->page_size;
			h->kind = "hugetlb";
		}
		h->note = "the physical frame and its flags need CAP_SYS_ADMIN (/proc/kpageflags)";
		return;
	}
	h->have_kflags = true;
	if (h->kflags & (1ull << KPF_ZERO_PAGE)) {
		h->size = 4096;
		h->kind = "zero-page";
	} else if (h->kflags & (1ull << KPF_HUGE)) {
		h->size = gm->backing == MM_BACKING_HUGETLB ? gm->page_size : 2ull << 20;
		h->kind = "hugetlb";
	} else if (h->kflags & (1ull << KPF_THP)) {
		h->kind = "thp";
		h->size = thp_whole(m, hva) ? 2ull << 20 : 4096;
		if (h->size == 4096)
			h->note = "part of a transparent huge page that is mapped with 4 KiB entries";
	} else {
		h->size = 4096;
		h->kind = "4k";
	}
}

static json_t *host_json(const struct host_page *h)
{
	json_t *o = json_object();
	static const struct { unsigned bit; const char *name; } kf[] = {
		{ 10, "lru" }, { 11, "active" }, { 12, "anon" }, { KPF_COMPOUND_HEAD, "compound-head" },
		{ KPF_COMPOUND_TAIL, "compound-tail" }, { KPF_HUGE, "huge" }, { KPF_THP, "thp" },
		{ KPF_ZERO_PAGE, "zero-page" }, { 23, "balloon" }, { 21, "ksm" },
	};

	json_object_set_new(o, "present", json_boolean(h->present));
	if (h->swapped)
		json_object_set_new(o, "swapped", json_true());
	if (h->pfn)
		set_u64(o, "pfn", h->pfn);
	if (h->have_kflags) {
		json_t *fl = json_array();

		for (size_t i = 0; i < sizeof(kf) / sizeof(kf[0]); i++)
			if (h->kflags & (1ull << kf[i].bit))
				json_array_append_new(fl, json_string(kf[i].name));
		json_object_set_new(o, "flags", fl);
	}
	if (h->size)
		set_u64(o, "page-size", h->size);
	if (h->kind)
		json_object_set_new(o, "kind", json_string(h->kind));
	if (h->note)
		json_object_set_new(o, "note", json_string(h->note));
	return o;
}

/* ---- query-translation ---- */

static json_t *flags_json(uint64_t e, bool leaf, bool wide)
{
	json_t *a = json_array();

	json_array_append_new(a, json_string((e & MM_PTE_P) ? "P" : "-"));
	if (!(e & MM_PTE_P))
		return a;
	if (e & MM_PTE_RW)
		json_array_append_new(a, json_string("RW"));
	if (e & MM_PTE_US)
		json_array_append_new(a, json_string("US"));
	if (e & MM_PTE_A)
		json_array_append_new(a, json_string("A"));
	/* D is defined on leaves only; PS on tables is what made it a leaf */
	if (leaf && (e & MM_PTE_D))
		json_array_append_new(a, json_string("D"));
	if (e & MM_PTE_PS)
		json_array_append_new(a, json_string("PS"));
	if (wide && (e & MM_PTE_NX))
		json_array_append_new(a, json_string("NX"));
	return a;
}

static json_t *walk_json(const struct mm_xlate_walk *w)
{
	json_t *levels = json_array();

	for (int i = 0; i < w->nr_levels; i++) {
		const struct mm_xlate_level *l = &w->lv[i];
		bool last = i == w->nr_levels - 1;
		bool leaf = last && w->stop == MM_XLATE_OK;
		json_t *o = json_object();

		json_object_set_new(o, "level", json_string(l->name));
		set_u64(o, "table", l->table_gpa);
		set_u64(o, "index", l->index);
		set_u64(o, "entry-gpa", l->entry_gpa);
		if (!(last && w->stop == MM_XLATE_NOT_RAM)) {
			set_hex(o, "entry", l->entry);
			json_object_set_new(o, "flags", flags_json(l->entry, leaf, w->mode != MM_XLATE_32));
		}
		json_array_append_new(levels, o);
	}
	return levels;
}

static void stopped(json_t *o, const char *stage, const char *level, const char *why)
{
	json_t *st = json_pack("{s:s,s:s}", "stage", stage, "reason", why);

	if (level)
		json_object_set_new(st, "level", json_string(level));
	json_object_set_new(o, "stopped", st);
}

/* Where a guest-physical address falls when it is not RAM. */
static const char *not_ram_reason(const struct guest_mem *gm, uint64_t gpa)
{
	uint64_t low_end = gm->nr_regions ? gm->regions[0].gpa + gm->regions[0].size : 0;

	if (gpa >= low_end && gpa < MINIVMM_HIGHMEM_BASE && low_end == MINIVMM_LOWMEM_MAX)
		return "not guest RAM: the 32-bit MMIO hole (3 GiB to 4 GiB), devices' windows";
	if (gpa >= low_end && gpa < MINIVMM_HIGHMEM_BASE)
		return "not guest RAM: between the end of RAM and 4 GiB (MMIO windows live here)";
	return "not guest RAM: beyond the end of guest RAM";
}

/* The memslot, host and page-state stages of gpa; the cost arithmetic. */
static void second_stage(struct mm_manager *m, json_t *o, uint64_t gpa, const struct mm_xlate_walk *w)
{
	const struct guest_mem *gm = m->gm;
	int r;

	for (r = 0; r < gm->nr_regions; r++)
		if (gpa >= gm->regions[r].gpa && gpa - gm->regions[r].gpa < gm->regions[r].size)
			break;
	if (r == gm->nr_regions) {
		stopped(o, "memslot", NULL, not_ram_reason(gm, gpa));
		return;
	}
	const struct mm_region *reg = &gm->regions[r];
	uint64_t hva = (uint64_t)(uintptr_t)mm_gpa_to_hva(gm, gpa, 1);
	/* the machine gives KVM one memslot per region, numbered as the regions */
	json_object_set_new(o, "memslot", json_pack("{s:i,s:I,s:I,s:I}", "slot", r, "gpa",
						    (json_int_t)reg->gpa, "size", (json_int_t)reg->size,
						    "hva", (json_int_t)(uintptr_t)reg->hva));
	set_u64(o, "hva", hva);
	json_object_set_new(o, "backing", json_string(mm_backing_name(gm->backing)));

	int st = mmgr_page_state(m, gpa);
	json_object_set_new(o, "page-state", json_string(ps_state_name((enum mm_page_state)st)));

	struct host_page h;
	host_page_of(m, hva, &h);
	/* the table learns that a page was written from the scanner's pass
	 * (dirty log and mincore), which runs only with --mm */
	if (st == MM_PAGE_UNTOUCHED && h.present)
		json_object_set_new(o, "page-state-note", json_string(
			m->o.reclaim ? "present on the host: the scanner's next pass marks it resident"
				     : "present on the host: without --mm no scanner moves pages to resident"));
	json_object_set_new(o, "host", host_json(&h));
	if (h.known && !h.present)
		stopped(o, "host", NULL, st == MM_PAGE_RESIDENT ? "not resident on the host (swapped or "
			"not yet touched)" : "not resident on the host: see page-state");

	/* The second stage maps at most the host page; without the flags, the
	 * backing's page size is what minivmm asked the host for. */
	uint64_t host_page = h.size ? h.size : gm->page_size;
	json_t *cost = json_object();
	unsigned hrefs = mm_xlate_stage_refs(HOST_LEVELS, host_page);

	set_u64(cost, "host-page-size", host_page);
	json_object_set_new(cost, "host-page-size-from", json_string(h.size ? "kpageflags" : "backing"));
	set_u64(cost, "second-stage-levels", HOST_LEVELS);
	set_u64(cost, "second-stage-refs", hrefs);
	if (w && w->stop == MM_XLATE_OK) {
		unsigned g = mm_xlate_stage_refs(w->paging_levels, w->page_size);
		uint64_t eff = w->page_size && w->page_size < host_page ? w->page_size : host_page;

		set_u64(cost, "guest-page-size", w->page_size);
		set_u64(cost, "guest-levels", (uint64_t)w->paging_levels);
		set_u64(cost, "guest-refs", g);
		/* hardware EPT/NPT: every guest entry and the final GPA go through the second stage */
		set_u64(cost, "2d-refs", mm_xlate_2d_refs(w->paging_levels, w->page_size, HOST_LEVELS,
							   host_page));
		/* shadow paging: one walk of tables that map GVA straight to host
		 * pages, whose leaves can be no larger than either stage's */
		set_u64(cost, "shadow-refs", mm_xlate_stage_refs(w->paging_levels, eff));
		set_u64(cost, "tlb-entry-size", eff);
		set_u64(cost, "tlb-entries-for-guest-ram", mm_xlate_tlb_entries(gm->ram_size, w->page_size,
										  host_page));
	} else {
		set_u64(cost, "tlb-entry-size", host_page);
		set_u64(cost, "tlb-entries-for-guest-ram", mm_xlate_tlb_entries(gm->ram_size, 0, host_page));
	}
	json_object_set_new(o, "walk-cost", cost);
}

json_t *mm_translate_query(struct mm_manager *m, uint64_t addr, bool from_gpa, int cpu,
			   char *err, size_t errlen)
{
	json_t *o = json_object();
	struct mm_xlate_walk w;
	uint64_t gpa = addr;

	if (from_gpa) {
		set_u64(o, "gpa", addr);
		second_stage(m, o, gpa, NULL);
		return o;
	}
	struct mm_cpu_paging p;
	if (cpu_paging(m, cpu, &p, err, errlen)) {
		json_decref(o);
		return NULL;
	}
	mm_xlate_walk(&p, addr, read_guest, m->gm, &w);
	if (w.stop == MM_XLATE_NON_CANONICAL) {
		json_decref(o);
		snprintf(err, errlen, "gva 0x%" PRIx64 " is out of range for vCPU %d's %s paging: %s", addr,
			 cpu, mm_xlate_mode_name(w.mode), w.mode == MM_XLATE_4LEVEL ?
			 "bits 63..47 must all equal bit 47" : w.mode == MM_XLATE_5LEVEL ?
			 "bits 63..56 must all equal bit 56" : "32-bit paging translates 32-bit addresses");
		return NULL;
	}
	set_hex(o, "gva", addr);
	json_object_set_new(o, "cpu", json_integer(cpu));
	json_object_set_new(o, "paging", json_pack("{s:s,s:I,s:I,s:I,s:I}", "mode",
						  mm_xlate_mode_name(w.mode), "cr0", (json_int_t)p.cr0,
						  "cr3", (json_int_t)p.cr3, "cr4", (json_int_t)p.cr4,
						  "efer", (json_int_t)p.efer));
	json_object_set_new(o, "guest-walk", walk_json(&w));
	if (w.stop != MM_XLATE_OK) {
		const char *lvl = w.nr_levels ? w.lv[w.nr_levels - 1].name : NULL;

		stopped(o, "guest", lvl, mm_xlate_stop_name(w.stop));
		if (w.stop == MM_XLATE_NOT_RAM)
			json_object_set_new(o, "stopped-at-gpa",
					    json_integer((json_int_t)w.lv[w.nr_levels - 1].entry_gpa));
		return o;
	}
	set_u64(o, "gpa", w.gpa);
	if (w.page_size)
		set_u64(o, "guest-page-size", w.page_size);
	json_object_set_new(o, "access", json_pack("{s:b,s:b,s:b}", "writable", w.writable,
						   "user", w.user, "executable", !w.nx));
	second_stage(m, o, w.gpa, &w);
	return o;
}

/* ---- query-translation-summary ---- */

struct smaps_figures {
	uint64_t rss, anon_huge, shmem_huge, hugetlb;
};

/* Sums the guest RAM mapping's figures; the kernel counts huge mappings. */
static void smaps_guest(const struct guest_mem *gm, struct smaps_figures *f)
{
	uint64_t lo = (uint64_t)(uintptr_t)gm->base, hi = lo + gm->ram_size;
	char *line = NULL;
	size_t cap = 0;
	bool in = false;
	/* the descriptor opened at set-up: the main thread may not open /proc once confined */
	FILE *fp = sandbox_fopen_early(gm->smaps_fd, "/proc/self/smaps");

	memset(f, 0, sizeof(*f));
	if (!fp)
		return;
	while (getline(&line, &cap, fp) > 0) {
		uint64_t s, e, kb;
		char *end;

		if (line[0] >= 'A' && line[0] <= 'Z') {
			if (!in)
				continue;
			if (sscanf(line, "Rss: %" SCNu64, &kb) == 1)
				f->rss += kb << 10;
			else if (sscanf(line, "AnonHugePages: %" SCNu64, &kb) == 1)
				f->anon_huge += kb << 10;
			else if (sscanf(line, "ShmemPmdMapped: %" SCNu64, &kb) == 1)
				f->shmem_huge += kb << 10;
			else if (sscanf(line, "Private_Hugetlb: %" SCNu64, &kb) == 1 ||
				 sscanf(line, "Shared_Hugetlb: %" SCNu64, &kb) == 1)
				f->hugetlb += kb << 10;
			continue;
		}
		s = strtoull(line, &end, 16);
		if (end == line || *end != '-')
			continue;
		e = strtoull(end + 1, &end, 16);
		/* guest RAM has VMAs of its own (mm_create maps it apart) */
		in = s >= lo && e <= hi;
	}
	free(line);
	fclose(fp);
}

static const char *const size_names[4] = { "4k", "2m", "1g", "4m" };

static json_t *guest_summary(struct mm_manager *m, const struct mm_cpu_paging *p, struct mm_xlate_scan *sc)
{
	json_t *g = json_object();
	/* enough for every page of RAM mapped twice with 4 KiB pages (the own
	 * guest maps its heap twice: identity and task), and bounded for a guest
	 * whose tables loop */
	uint64_t max_tables = 4 * (m->gm->ram_size >> 21) + 4096;

	json_object_set_new(g, "mode", json_string(mm_xlate_mode_name(mm_xlate_mode(p))));
	set_u64(g, "cr3", p->cr3);
	if (mm_xlate_scan(p, table_guest, ram_guest, m->gm, max_tables, sc)) {
		json_object_set_new(g, "note", json_string("paging is off: guest-virtual is guest-physical"));
		return g;
	}
	json_t *all = json_object(), *ram = json_object();
	for (int k = 0; k < 4; k++) {
		if (k == 3 && !sc->mapped[3])
			continue;   /* 4 MiB pages exist only in 32-bit paging */
		set_u64(all, size_names[k], sc->mapped[k]);
		set_u64(ram, size_names[k], sc->mapped_ram[k]);
	}
	json_object_set_new(g, "mapped-bytes", all);
	json_object_set_new(g, "mapped-ram-bytes", ram);
	set_u64(g, "tables", sc->tables);
	if (sc->bad_tables)
		set_u64(g, "tables-outside-ram", sc->bad_tables);
	json_object_set_new(g, "truncated", json_boolean(sc->truncated));
	return g;
}

/* One line on whether the stages agree, for a user at a glance. */
static const char *verdict(double guest_huge, double host_huge, double kvm_huge, bool *agree)
{
	bool gh = guest_huge >= 0.5, hh = host_huge >= 0.5, kh = kvm_huge >= 0.5;

	*agree = gh == hh && hh == kh;
	if (gh && hh && kh)
		return "huge pages at every stage: one TLB entry covers 2 MiB and every walk is shorter";
	if (!gh && !hh && !kh)
		return "4 KiB pages at every stage: the longest walks and the smallest TLB reach";
	if (gh && !hh)
		return "2 MiB guest pages on 4 KiB host pages: TLB entries stay 4 KiB; only the guest's "
		       "walk is shorter";
	if (!gh && hh)
		return "4 KiB guest pages on huge host pages: TLB entries stay 4 KiB; only the second "
		       "stage's walk is shorter";
	if (hh && !kh)
		return "the host backs guest RAM with huge pages but KVM maps most of it with 4 KiB "
		       "entries (not touched yet, split by dirty logging or reclaim)";
	return "KVM maps more with huge entries than the host backing shows";
}

json_t *mm_translate_summary(struct mm_manager *m, char *err, size_t errlen)
{
	const struct guest_mem *gm = m->gm;
	struct mm_cpu_paging p;
	struct mm_xlate_scan sc;
	struct smaps_figures f;
	json_t *o = json_object();

	if (cpu_paging(m, 0, &p, err, errlen)) {
		json_decref(o);
		return NULL;
	}
	set_u64(o, "guest-ram", gm->ram_size);
	json_object_set_new(o, "guest", guest_summary(m, &p, &sc));

	smaps_guest(gm, &f);
	uint64_t huge = f.anon_huge + f.shmem_huge + f.hugetlb;
	uint64_t resident = f.rss + f.hugetlb;
	json_t *h = json_object();
	json_object_set_new(h, "backing", json_string(mm_backing_name(gm->backing)));
	set_u64(h, "page-size", gm->page_size);
	set_u64(h, "resident-bytes", resident);
	set_u64(h, "huge-bytes", huge);
	set_u64(h, "4k-bytes", resident > huge ? resident - huge : 0);
	json_object_set_new(o, "host", h);

	uint64_t k4 = 0, k2 = 0, k1 = 0;
	bool have_kvm = m->ops.stat && !m->ops.stat(m->ops_opaque, "pages_4k", &k4) &&
			!m->ops.stat(m->ops_opaque, "pages_2m", &k2) &&
			!m->ops.stat(m->ops_opaque, "pages_1g", &k1);
	if (have_kvm)
		json_object_set_new(o, "kvm", json_pack("{s:I,s:I,s:I}", "pages_4k", (json_int_t)k4,
							"pages_2m", (json_int_t)k2, "pages_1g", (json_int_t)k1));

	/* fractions of each stage that is huge: the guest's RAM mappings, the
	 * host's resident backing, KVM's mapped bytes */
	uint64_t gtot = sc.mapped_ram[0] + sc.mapped_ram[1] + sc.mapped_ram[2] + sc.mapped_ram[3];
	double gf = gtot ? (double)(gtot - sc.mapped_ram[0]) / (double)gtot : 0;
	double hf = resident ? (double)huge / (double)resident : 0;
	double kbytes = (double)k4 * 4096 + (double)k2 * (2 << 20) + (double)k1 * (1 << 30);
	double kf = kbytes > 0 ? ((double)k2 * (2 << 20) + (double)k1 * (1 << 30)) / kbytes : 0;
	bool agree;
	const char *why = verdict(gf, hf, have_kvm ? kf : hf, &agree);
	json_object_set_new(o, "huge-fraction", json_pack("{s:f,s:f,s:o?}", "guest", gf, "host", hf,
							  "kvm", have_kvm ? json_real(kf) : NULL));
	json_object_set_new(o, "stages-agree", json_boolean(agree));
	json_object_set_new(o, "verdict", json_string(why));
	return o;
}
