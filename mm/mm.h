/*
 * mm: guest memory. Owns guest RAM regions and their host backing, the one
 * checked guest-physical -> host translation every device must use, backing
 * discard and residency accounting.
 *
 * Guest-physical addresses are plain uint64_t on the host side so they can
 * never be dereferenced by accident; only mm_gpa_to_hva() turns one into a
 * pointer, and only after checking the whole [gpa, gpa+len) range.
 *
 * All functions return 0 or a negative errno unless stated otherwise.
 */
#ifndef MINIVMM_MM_H
#define MINIVMM_MM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mm_backing {
	MM_BACKING_ANON,     /* private anonymous, THP disabled: 4 KiB host pages */
	MM_BACKING_THP,      /* private anonymous + MADV_HUGEPAGE */
	MM_BACKING_MEMFD,    /* shared memfd (shmem), 4 KiB */
	MM_BACKING_HUGETLB,  /* memfd MFD_HUGETLB, 2 MiB or 1 GiB pages */
};

struct mm_config {
	uint64_t ram_size;          /* bytes of guest RAM, multiple of 4 KiB */
	enum mm_backing backing;
	uint64_t hugepage_size;     /* for MM_BACKING_HUGETLB: 2 MiB or 1 GiB */
	bool prealloc;              /* populate all backing at creation */
};

#define MM_MAX_REGIONS 2

/* Where guest RAM lies in guest-physical space (mm_create). */
#define MINIVMM_LOWMEM_MAX    0xC0000000ULL   /* RAM below the 32-bit MMIO hole */
#define MINIVMM_HIGHMEM_BASE  0x100000000ULL  /* RAM above 3 GiB continues here */

/* A contiguous guest-physical range backed by a contiguous host range. */
struct mm_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	uint64_t offset;            /* offset of this region inside the backing */
};

struct guest_mem {
	enum mm_backing backing;
	uint64_t ram_size;
	uint64_t page_size;         /* host backing page size: 4 KiB (anon, memfd), 2 MiB (thp),
	                             * or the hugetlb page size; base is aligned to max(2 MiB, it) */
	int fd;                     /* memfd / hugetlb memfd, -1 for anonymous */
	/* /proc/self/smaps and /proc/self/status, opened by mm_create() so that
	 * confined threads read them (sandbox_fopen_early); <= 0: not open */
	int smaps_fd, status_fd;
	uint8_t *base;              /* one host mapping of all RAM, page_size aligned */
	int nr_regions;
	struct mm_region regions[MM_MAX_REGIONS];
	/* One bit per 4 KiB page (backing offset / 4 KiB): written by the VMM
	 * itself since the memory manager last looked (mm_note_write). */
	_Atomic uint64_t *host_written;
};

#define MM_HOST_PAGE 4096ull

/* Human-readable name of a backing ("anon", "thp", "memfd", "hugetlb"). */
const char *mm_backing_name(enum mm_backing b);

/* Parses "anon|thp|memfd|hugetlb". Returns -EINVAL on anything else. */
int mm_backing_parse(const char *s, enum mm_backing *out);

/*
 * Creates guest RAM: RAM below MINIVMM_LOWMEM_MAX at GPA 0, the rest at
 * MINIVMM_HIGHMEM_BASE. On failure fills err (one line saying what was
 * wrong and how to fix it, e.g. how many huge pages to reserve).
 */
int mm_create(struct guest_mem *gm, const struct mm_config *cfg, char *err, size_t errlen);
void mm_destroy(struct guest_mem *gm);

/*
 * The checked translation: returns a host pointer for [gpa, gpa+len) when the
 * whole range lies inside one RAM region, NULL otherwise (overflow, hole,
 * out of range, len == 0 is allowed and checks gpa only).
 */
void *mm_gpa_to_hva(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy helpers over the checked translation: -EFAULT when out of range. */
int mm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);
int mm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);

/*
 * Records that the VMM wrote [gpa, gpa+len) (a device's used ring or
 * buffers): KVM's dirty log sees only the guest's own writes, and a page
 * the VMM keeps writing must count as hot, not be evicted and faulted back
 * on every request. mm_write() calls it; code that writes through a pointer
 * from mm_gpa_to_hva() calls it itself. Any thread; out-of-RAM is ignored.
 */
void mm_note_write(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* Takes and clears bits [64 * word, 64 * word + 64) of the VMM-write bitmap
 * (memory manager's scanner). */
uint64_t mm_take_host_written(const struct guest_mem *gm, uint64_t word);

/* True if gpa lies in guest RAM. */
bool mm_is_ram(const struct guest_mem *gm, uint64_t gpa);

/* Reverse translation for host-side bookkeeping; -EFAULT if hva is not guest RAM. */
int mm_hva_to_gpa(const struct guest_mem *gm, const void *hva, uint64_t *gpa);

/*
 * Frees the host backing of [gpa, gpa+len), which must be host-page aligned
 * for the backing (4 KiB, or the huge page size for hugetlb): MADV_DONTNEED for
 * private anon, fallocate(PUNCH_HOLE) for memfd/hugetlb. The guest reads zeros
 * there afterwards.
 */
int mm_discard(struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Smallest unit mm_discard() accepts: the huge page size for hugetlb, else 4 KiB. */
uint64_t mm_discard_granularity(const struct guest_mem *gm);

/* Bytes of guest RAM currently resident in host memory (from /proc/self/smaps,
 * hugetlb pages included). Returns 0 on failure. */
uint64_t mm_resident_bytes(const struct guest_mem *gm);

/* Resident memory of the whole process (VmRSS + hugetlb), in bytes, read
 * through gm's early descriptor (NULL: opens /proc/self/status). */
uint64_t mm_process_rss(const struct guest_mem *gm);

/* Number of free huge pages of the given size in the host pool, -errno on error. */
long mm_hugepages_free(uint64_t hugepage_size);

#endif
