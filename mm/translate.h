/*
 * translate: the two-dimensional translation inspector. A guest address is
 * translated twice: the guest's page tables map guest-virtual to
 * guest-physical (the first stage, walked here from a vCPU's CR3 and paging
 * mode), and the VM's second stage (EPT/NPT on hardware, shadow paging on a
 * nested host) maps guest-physical to host memory, which the host kernel
 * maps to physical frames. This header has the pure part (the walk over a
 * read callback, the walk-cost arithmetic, the whole-table scan), which the
 * unit tests drive with synthetic tables, and the manager's queries, which
 * read guest memory only through mm_gpa_to_hva() and the host's side from
 * /proc/self/pagemap, /proc/kpageflags and /proc/self/smaps.
 *
 * Threads: the pure functions on any thread; the manager's queries and
 * their QMP commands (qmp_translate.c) on the main thread, because reading
 * a vCPU's registers pauses the vCPUs (struct mm_vm_ops cpu_paging).
 * Functions return 0 or a negative errno unless stated otherwise.
 */
#ifndef MINIVMM_MM_TRANSLATE_H
#define MINIVMM_MM_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* The control-register bits the walk reads (Intel SDM vol. 3, 2.5; the tests set them too). */
#define CR0_PG    (1ull << 31)
#define CR4_PSE   (1ull << 4)
#define CR4_PAE   (1ull << 5)
#define CR4_LA57  (1ull << 12)
#define EFER_LMA  (1ull << 10)
#define EFER_NXE  (1ull << 11)

/* The registers that decide how a vCPU translates (struct mm_vm_ops). */
struct mm_cpu_paging {
	uint64_t cr0, cr3, cr4, efer;
};

enum mm_xlate_mode {
	MM_XLATE_OFF,      /* CR0.PG clear: guest-virtual is guest-physical */
	MM_XLATE_32,       /* 2 levels of 4-byte entries, 4 MiB pages with CR4.PSE */
	MM_XLATE_PAE,      /* 3 levels: 4 PDPTEs, then PD and PT */
	MM_XLATE_4LEVEL,   /* long mode: PML4, PDPT, PD, PT */
	MM_XLATE_5LEVEL,   /* long mode with CR4.LA57: PML5 first */
};

/* Why a walk stopped before a page. */
enum mm_xlate_stop {
	MM_XLATE_OK = 0,
	MM_XLATE_NOT_PRESENT,   /* an entry with P=0 */
	MM_XLATE_RESERVED,      /* PS set where the architecture reserves it */
	MM_XLATE_NOT_RAM,       /* a table lies outside guest RAM (MMIO hole, beyond RAM) */
	MM_XLATE_NON_CANONICAL, /* the address is not canonical for the mode */
};

#define MM_XLATE_MAX_LEVELS 5

/* Entry flag bits, the same in every mode (NX only with 8-byte entries). */
#define MM_PTE_P   (1ull << 0)
#define MM_PTE_RW  (1ull << 1)
#define MM_PTE_US  (1ull << 2)
#define MM_PTE_A   (1ull << 5)
#define MM_PTE_D   (1ull << 6)
#define MM_PTE_PS  (1ull << 7)
#define MM_PTE_NX  (1ull << 63)

struct mm_xlate_level {
	const char *name;       /* "PML5", "PML4", "PDPT", "PD", "PT" */
	uint64_t table_gpa;     /* the table this entry was read from */
	unsigned index;         /* the entry's index in it */
	uint64_t entry_gpa;
	uint64_t entry;         /* the raw entry (4-byte entries zero-extended) */
};

struct mm_xlate_walk {
	enum mm_xlate_mode mode;
	enum mm_xlate_stop stop;
	int nr_levels;          /* entries read (on a stop: including the one that stopped it) */
	struct mm_xlate_level lv[MM_XLATE_MAX_LEVELS];
	int paging_levels;      /* levels of the mode: 0 (off), 2, 3, 4, 5 */
	uint64_t gpa;           /* MM_XLATE_OK: the translation */
	uint64_t page_size;     /* MM_XLATE_OK: the guest page's size */
	bool writable, user, nx;   /* effective rights over every level */
};

/* Reads size (4 or 8) bytes of guest-physical memory at gpa into *val
 * (zero-extended); -EFAULT when gpa is not RAM. */
typedef int (*mm_xlate_read_fn)(void *ctx, uint64_t gpa, unsigned size, uint64_t *val);

/* The paging mode the registers select. */
enum mm_xlate_mode mm_xlate_mode(const struct mm_cpu_paging *p);
/* "off", "32-bit", "pae", "4-level", "5-level". */
const char *mm_xlate_mode_name(enum mm_xlate_mode mode);
/* "ok", "not present", "reserved bit", "table not in RAM", "non-canonical address". */
const char *mm_xlate_stop_name(enum mm_xlate_stop stop);

/* Walks the guest's tables for gva. The walk itself always "succeeds" (0);
 * w->stop says whether it reached a page and where it stopped if not. */
int mm_xlate_walk(const struct mm_cpu_paging *p, uint64_t gva, mm_xlate_read_fn rd, void *ctx,
		  struct mm_xlate_walk *w);

/*
 * Memory references of one TLB miss. A stage of `levels` levels whose leaf
 * is `page` reads one entry per level above the page: 4 KiB pages in a
 * 4-level table take 4, 2 MiB take 3, 1 GiB take 2 (levels - leaf depth).
 * A two-dimensional walk (EPT/NPT) translates each of the g guest entries'
 * addresses and the final GPA through the h-reference second stage:
 * g * (h + 1) + h, 24 for 4 KiB pages in both 4-level stages. Returns 0 for
 * a page size the stage cannot map.
 */
unsigned mm_xlate_stage_refs(int levels, uint64_t page);
unsigned mm_xlate_2d_refs(int guest_levels, uint64_t guest_page, int host_levels, uint64_t host_page);
/* The TLB caches one translation per min(guest page, host page): entries
 * needed to cover bytes of guest memory (rounded up). 0 for a zero size. */
uint64_t mm_xlate_tlb_entries(uint64_t bytes, uint64_t guest_page, uint64_t host_page);

/* What a scan of every table reachable from CR3 found. */
struct mm_xlate_scan {
	uint64_t mapped[4];         /* bytes mapped by leaves of 4 KiB, 2 MiB, 1 GiB, 4 MiB */
	uint64_t mapped_ram[4];     /* ... of which land in guest RAM */
	uint64_t tables;            /* table pages read */
	bool truncated;             /* stopped at max_tables (a table graph with cycles or
	                             * heavy sharing would otherwise take forever) */
	uint64_t bad_tables;        /* tables outside RAM, skipped */
};
/* Index into mapped[] for a page size; -1 for another size. */
int mm_xlate_size_index(uint64_t page);

/* Reads one whole table page (4 KiB at gpa, 4 KiB aligned): a pointer to a
 * copy owned by the callee's ctx, or NULL when it is not RAM. */
typedef const void *(*mm_xlate_table_fn)(void *ctx, uint64_t gpa);
/* is_ram(ctx, gpa, len): whether [gpa, gpa+len) lies in guest RAM. */
typedef bool (*mm_xlate_ram_fn)(void *ctx, uint64_t gpa, uint64_t len);

/* Counts every present leaf reachable from p's CR3 (long mode and PAE and
 * 32-bit), reading at most max_tables table pages. */
int mm_xlate_scan(const struct mm_cpu_paging *p, mm_xlate_table_fn table, mm_xlate_ram_fn is_ram,
		  void *ctx, uint64_t max_tables, struct mm_xlate_scan *out);

/* ---- the manager's queries (translate_query.c; main thread) ---- */

struct mm_manager;

/* query-translation: from a guest-virtual address through vCPU cpu's tables
 * (from_gpa false), or from a guest-physical address. A new JSON object, or
 * NULL with err filled (a message naming what was wrong). */
json_t *mm_translate_query(struct mm_manager *m, uint64_t addr, bool from_gpa, int cpu,
				  char *err, size_t errlen);
/* query-translation-summary: the guest's mappings by page size (from vCPU
 * 0's CR3), the host backing's huge share, KVM's mappings by size. */
json_t *mm_translate_summary(struct mm_manager *m, char *err, size_t errlen);
/* Opens /proc/self/pagemap and /proc/kpageflags (set-up, so that a later
 * seccomp filter need not allow open); a missing one is said in answers. */
void mm_translate_open(struct mm_manager *m);
void mm_translate_close(struct mm_manager *m);

#endif
