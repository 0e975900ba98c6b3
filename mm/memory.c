/*
 * mm/memory.c: guest RAM. Owns the host mapping of all guest RAM and its
 * backing (anon, THP, memfd, hugetlb memfd), the split into the low and high
 * RAM regions around the 32-bit MMIO hole, the checked guest-physical ->
 * host translation, backing discard and residency accounting.
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mm/mm.h"
#include "vmm/lib/log.h"
#include "vmm/lib/sandbox.h"
#include "vmm/lib/size.h"

#define MM_4K   (4096ULL)
#define MM_2M   (2ULL << 20)
#define MM_1G   (1ULL << 30)
/* x86-64 user address space is 47 bits; nothing larger can ever be mapped. */
#define MM_MAX_RAM (1ULL << 46)

static const char *const mm_backing_names[] = {
	[MM_BACKING_ANON] = "anon",
	[MM_BACKING_THP] = "thp",
	[MM_BACKING_MEMFD] = "memfd",
	[MM_BACKING_HUGETLB] = "hugetlb",
};

const char *mm_backing_name(enum mm_backing b)
{
	if ((unsigned)b >= sizeof(mm_backing_names) / sizeof(mm_backing_names[0]))
		return "?";
	return mm_backing_names[b];
}

int mm_backing_parse(const char *s, enum mm_backing *out)
{
	if (!s)
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(mm_backing_names) / sizeof(mm_backing_names[0]); i++) {
		if (strcmp(s, mm_backing_names[i]) == 0) {
			*out = (enum mm_backing)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Reads one unsigned number from a sysfs/procfs file. */
static int mm_read_ulong(const char *path, unsigned long *val)
{
	char buf[64];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	errno = 0;
	char *end;
	*val = strtoul(buf, &end, 10);
	if (errno || end == buf)
		return -EIO;
	return 0;
}

long mm_hugepages_free(uint64_t hugepage_size)
{
	char path[128];
	unsigned long free_pages, resv_pages;
	int ret;

	if (hugepage_size < MM_2M || (hugepage_size & (hugepage_size - 1)))
		return -EINVAL;
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/free_hugepages",
		 hugepage_size >> 10);
	ret = mm_read_ulong(path, &free_pages);
	if (ret)
		return ret;
	/*
	 * free_hugepages still counts pages that other mappings have reserved
	 * but not yet faulted in; a new mapping can only get the rest.
	 */
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/resv_hugepages",
		 hugepage_size >> 10);
	if (mm_read_ulong(path, &resv_pages) == 0)
		free_pages = free_pages > resv_pages ? free_pages - resv_pages : 0;
	return (long)free_pages;
}

/* Returns a field ("MemTotal:") of /proc/meminfo in bytes, 0 if absent. */
static uint64_t mm_meminfo(const char *field)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	uint64_t kb = 0;
	size_t flen = strlen(field);

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, flen) == 0) {
			kb = strtoull(line + flen, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb << 10;
}

/* Checks the hugetlb pool before mapping, so the user learns what to reserve. */
static int mm_check_hugetlb(const struct mm_config *cfg, char *err, size_t errlen)
{
	char hs[32], rs[32], path[128];
	uint64_t hp = cfg->hugepage_size;
	unsigned long nr = 0;
	long free_pages;
	uint64_t need;

	if (hp != MM_2M && hp != MM_1G) {
		snprintf(err, errlen, "hugetlb page size %s is not supported: use 2M or 1G",
			 size_format(hp, SIZE_EXACT, hs, sizeof(hs)));
		return -EINVAL;
	}
	size_format(hp, SIZE_EXACT, hs, sizeof(hs));
	if (cfg->ram_size % hp) {
		snprintf(err, errlen, "guest RAM of %s is not a multiple of the %s huge page size: "
			 "round --mem to a multiple of %s", size_format(cfg->ram_size, SIZE_EXACT, rs, sizeof(rs)), hs, hs);
		return -EINVAL;
	}
	free_pages = mm_hugepages_free(hp);
	if (free_pages < 0) {
		snprintf(err, errlen, "hugetlb backing with %s pages: the host kernel does not offer this "
			 "huge page size (/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB missing)",
			 hs, hp >> 10);
		return -EOPNOTSUPP;
	}
	need = cfg->ram_size / hp;
	if ((uint64_t)free_pages < need) {
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/nr_hugepages",
			 hp >> 10);
		mm_read_ulong(path, &nr);
		/* The pool may already hold pages others use: ask for the missing ones on top. */
		uint64_t want = nr + (need - (uint64_t)free_pages);
		if (hp == MM_2M && mm_meminfo("Hugepagesize:") == MM_2M)
			snprintf(path, sizeof(path), "/proc/sys/vm/nr_hugepages");
		snprintf(err, errlen, "hugetlb backing needs %" PRIu64 " free %s huge page%s, %ld %s free: "
			 "reserve them with 'echo %" PRIu64 " > %s' (as root)",
			 need, hs, need == 1 ? "" : "s", free_pages, free_pages == 1 ? "is" : "are", want, path);
		return -ENOMEM;
	}
	return 0;
}

/* Faults in every page now, so the guest never waits for the host allocator. */
static int mm_populate(uint8_t *p, uint64_t size, uint64_t page)
{
	if (madvise(p, size, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* Kernels before 5.14 lack MADV_POPULATE_WRITE: touch each page. */
	for (uint64_t off = 0; off < size; off += page)
		((volatile uint8_t *)p)[off] = 0;
	return 0;
}

/* Refuses sizes that cannot work; says once when the guest is overcommitted. */
static int mm_check_size(const struct mm_config *cfg, const char *rs, char *err, size_t errlen)
{
	char a[32], b[32];
	uint64_t size = cfg->ram_size;

	if (size == 0 || size % MM_4K) {
		snprintf(err, errlen, "guest RAM size %s is not a positive multiple of 4 KiB", rs);
		return -EINVAL;
	}
	if (size > MM_MAX_RAM) {
		snprintf(err, errlen, "guest RAM of %s is more than the host can map (at most %s): "
			 "use a smaller --mem", rs, size_format(MM_MAX_RAM, SIZE_EXACT, a, sizeof(a)));
		return -ENOMEM;
	}
	/*
	 * More guest RAM than host RAM + swap is what an overcommit experiment
	 * asks for: nothing is reserved until the guest touches it (private
	 * memory is mapped MAP_NORESERVE, so the kernel's heuristic does not
	 * refuse it). Only preallocating it cannot work, and its page-state
	 * table alone (0.2%) must fit comfortably in the host.
	 */
	uint64_t host = mm_meminfo("MemTotal:") + mm_meminfo("SwapTotal:");
	if (host && size / 512 > host / 4) {
		snprintf(err, errlen, "guest RAM of %s is more than the host can map (tracking it would take "
			 "%s of host memory, RAM + swap is %s): use a smaller --mem", rs,
			 size_format(size / 512, SIZE_EXACT, a, sizeof(a)), size_format(host, SIZE_EXACT, b, sizeof(b)));
		return -ENOMEM;
	}
	if (host && size > host && cfg->prealloc) {
		snprintf(err, errlen, "cannot preallocate %s of guest RAM: the host has %s of RAM + swap: "
			 "drop --prealloc or use a smaller --mem", rs, size_format(host, SIZE_EXACT, a, sizeof(a)));
		return -ENOMEM;
	}
	if (host && size > host)
		log_err("mm", "note: guest RAM of %s is more than host RAM + swap (%s): the VM is "
			"overcommitted by %s; host memory is taken only as the guest touches it", rs,
			size_format(host, SIZE_EXACT, a, sizeof(a)), size_format(size - host, SIZE_EXACT, b, sizeof(b)));
	return 0;
}

/* The memfd behind a shared or hugetlb backing, sized; -1 in *fd for private memory. */
static int mm_open_backing(const struct mm_config *cfg, uint64_t page, const char *rs, int *fd,
			   char *err, size_t errlen)
{
	unsigned flags = MFD_CLOEXEC;
	int ret;

	*fd = -1;
	if (cfg->backing != MM_BACKING_MEMFD && cfg->backing != MM_BACKING_HUGETLB)
		return 0;
	if (cfg->backing == MM_BACKING_HUGETLB)
		flags |= MFD_HUGETLB | (page == MM_1G ? MFD_HUGE_1GB : MFD_HUGE_2MB);
	*fd = memfd_create("minivmm-guest-ram", flags);
	if (*fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create the %s memfd for guest RAM: %s",
			 mm_backing_name(cfg->backing), strerror(-ret));
		return ret;
	}
	if (ftruncate(*fd, (off_t)cfg->ram_size) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot size the %s memfd to %s: %s",
			 mm_backing_name(cfg->backing), rs, strerror(-ret));
		close(*fd);
		*fd = -1;
		return ret;
	}
	return 0;
}

/*
 * Maps size bytes of the backing at an address aligned to align: reserve
 * address space with slack, place the real mapping on an aligned address
 * inside it and give back the ends. mmap alone only guarantees 4 KiB
 * alignment, and KVM maps a 2 MiB / 1 GiB page only when host address and
 * guest-physical address agree modulo its size.
 */
static int mm_map_aligned(const struct mm_config *cfg, int fd, uint64_t align, const char *rs,
			  uint8_t **out, char *err, size_t errlen)
{
	uint64_t size = cfg->ram_size;
	uint8_t *resv, *base;
	int ret;

	resv = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED) {
		ret = -errno;
		snprintf(err, errlen, "cannot reserve %s of address space for guest RAM: %s: use a smaller --mem",
			 rs, strerror(-ret));
		return ret;
	}
	base = (uint8_t *)(((uintptr_t)resv + align - 1) & ~(uintptr_t)(align - 1));
	int flags = MAP_FIXED | (fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	if (mmap(base, size, PROT_READ | PROT_WRITE, flags, fd, 0) == MAP_FAILED) {
		ret = -errno;
		if (ret == -ENOMEM)
			snprintf(err, errlen, "guest RAM of %s is more than the host can map (mmap: %s): "
				 "use a smaller --mem", rs, strerror(-ret));
		else
			snprintf(err, errlen, "cannot map %s of %s guest RAM: %s", rs,
				 mm_backing_name(cfg->backing), strerror(-ret));
		munmap(resv, size + align);
		return ret;
	}
	if (base > resv)
		munmap(resv, (size_t)(base - resv));
	if (base + size < resv + size + align)
		munmap(base + size, (size_t)(resv + size + align - (base + size)));
	*out = base;
	return 0;
}

/* Page-size advice and preallocation on the fresh mapping. */
static int mm_prepare(const struct mm_config *cfg, uint8_t *base, uint64_t page, const char *rs,
		      char *err, size_t errlen)
{
	uint64_t size = cfg->ram_size;
	const char *why = NULL;
	int ret;

	/* Distinct VMA flags also keep the kernel from merging guest RAM with a
	 * neighbouring anonymous mapping, which would blur residency figures. */
	if (cfg->backing == MM_BACKING_THP) {
		if (madvise(base, size, MADV_HUGEPAGE) < 0)
			why = "madvise(MADV_HUGEPAGE)";
	} else if (cfg->backing != MM_BACKING_HUGETLB) {
		/* "4 KiB" backings must stay 4 KiB even when THP is "always". */
		if (madvise(base, size, MADV_NOHUGEPAGE) < 0 && cfg->backing == MM_BACKING_ANON)
			why = "madvise(MADV_NOHUGEPAGE)";
	}
	if (why) {
		ret = -errno;
		snprintf(err, errlen, "%s on %s backing failed: %s (is transparent huge page support "
			 "built into the host kernel?)", why, mm_backing_name(cfg->backing), strerror(-ret));
		return ret;
	}
	/* Guest RAM has no place in a VMM core dump. */
	madvise(base, size, MADV_DONTDUMP);
	if (cfg->prealloc) {
		ret = mm_populate(base, size, page);
		if (ret) {
			snprintf(err, errlen, "cannot preallocate %s of %s guest RAM: %s: free host memory "
				 "or drop --prealloc", rs, mm_backing_name(cfg->backing), strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Low RAM at GPA 0 up to the hole, the rest from 4 GiB on. */
static void mm_set_regions(struct guest_mem *gm)
{
	uint64_t size = gm->ram_size, low = size < MINIVMM_LOWMEM_MAX ? size : MINIVMM_LOWMEM_MAX;

	gm->regions[0] = (struct mm_region){ .gpa = 0, .size = low, .hva = gm->base, .offset = 0 };
	gm->nr_regions = 1;
	if (size > low) {
		gm->regions[1] = (struct mm_region){
			.gpa = MINIVMM_HIGHMEM_BASE, .size = size - low, .hva = gm->base + low, .offset = low,
		};
		gm->nr_regions = 2;
	}
}

int mm_create(struct guest_mem *gm, const struct mm_config *cfg, char *err, size_t errlen)
{
	char rs[32];
	uint64_t size = cfg->ram_size, page = MM_4K;
	uint8_t *base = NULL;
	int fd = -1, ret;

	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;
	if (!err || !errlen) {
		static char dummy[8];
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	size_format(size, SIZE_EXACT, rs, sizeof(rs));
	if ((unsigned)cfg->backing > MM_BACKING_HUGETLB) {
		snprintf(err, errlen, "unknown memory backing %d: use anon, thp, memfd or hugetlb",
			 (int)cfg->backing);
		return -EINVAL;
	}
	ret = mm_check_size(cfg, rs, err, errlen);
	if (ret)
		return ret;
	if (cfg->backing == MM_BACKING_THP) {
		page = MM_2M;
	} else if (cfg->backing == MM_BACKING_HUGETLB) {
		ret = mm_check_hugetlb(cfg, err, errlen);
		if (ret)
			return ret;
		page = cfg->hugepage_size;
	}
	ret = mm_open_backing(cfg, page, rs, &fd, err, errlen);
	if (ret)
		return ret;
	/* At least 2 MiB so KVM may use large mappings whenever the host has them. */
	ret = mm_map_aligned(cfg, fd, page > MM_2M ? page : MM_2M, rs, &base, err, errlen);
	if (!ret)
		ret = mm_prepare(cfg, base, page, rs, err, errlen);
	if (!ret) {
		gm->host_written = calloc((size / MM_HOST_PAGE + 63) / 64, sizeof(*gm->host_written));
		if (!gm->host_written) {
			snprintf(err, errlen, "out of memory for the write bitmap of %s guest RAM", rs);
			ret = -ENOMEM;
		}
	}
	if (ret) {
		if (base)
			munmap(base, size);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	gm->backing = cfg->backing;
	gm->ram_size = size;
	gm->page_size = page;
	gm->fd = fd;
	gm->base = base;
	/* read later by confined threads (scanner, monitor, summary) */
	gm->smaps_fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	gm->status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	mm_set_regions(gm);
	return 0;
}

void mm_destroy(struct guest_mem *gm)
{
	/* fd is only meaningful once base is set: a zeroed struct must not close fd 0. */
	if (gm->base) {
		munmap(gm->base, gm->ram_size);
		if (gm->fd >= 0)
			close(gm->fd);
		if (gm->smaps_fd > 0)
			close(gm->smaps_fd);
		if (gm->status_fd > 0)
			close(gm->status_fd);
		gm->smaps_fd = gm->status_fd = -1;
	}
	free((void *)gm->host_written);
	gm->host_written = NULL;
	gm->base = NULL;
	gm->fd = -1;
	gm->nr_regions = 0;
	gm->ram_size = 0;
}

void mm_note_write(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint8_t *hva = mm_gpa_to_hva(gm, gpa, len);

	if (!hva || !gm->host_written || !len)
		return;
	uint64_t first = (uint64_t)(hva - gm->base) / MM_HOST_PAGE;
	uint64_t last = (uint64_t)(hva - gm->base + len - 1) / MM_HOST_PAGE;
	for (uint64_t i = first; i <= last; i++) {
		uint64_t bit = 1ull << (i % 64);
		/* A plain load first: the used ring is written on every request,
		 * and its page's bit is nearly always set already. */
		if (!(atomic_load_explicit(&gm->host_written[i / 64], memory_order_relaxed) & bit))
			atomic_fetch_or_explicit(&gm->host_written[i / 64], bit, memory_order_relaxed);
	}
}

uint64_t mm_take_host_written(const struct guest_mem *gm, uint64_t word)
{
	if (!gm->host_written || word * 64 * MM_HOST_PAGE >= gm->ram_size)
		return 0;
	if (!atomic_load_explicit(&gm->host_written[word], memory_order_relaxed))
		return 0;
	return atomic_exchange_explicit(&gm->host_written[word], 0, memory_order_relaxed);
}

/*
 * Called on every descriptor a device touches, so: no locks, at most two
 * regions, and no gpa + len that could wrap (compare against the space left).
 */
void *mm_gpa_to_hva(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < gm->nr_regions; i++) {
		const struct mm_region *r = &gm->regions[i];
		uint64_t off = gpa - r->gpa;   /* wraps to huge when gpa < r->gpa */

		if (off < r->size && len <= r->size - off)
			return r->hva + off;
	}
	return NULL;
}

int mm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = mm_gpa_to_hva(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int mm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = mm_gpa_to_hva(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	mm_note_write(gm, gpa, len);
	return 0;
}

bool mm_is_ram(const struct guest_mem *gm, uint64_t gpa)
{
	return mm_gpa_to_hva(gm, gpa, 0) != NULL;
}

int mm_hva_to_gpa(const struct guest_mem *gm, const void *hva, uint64_t *gpa)
{
	uintptr_t p = (uintptr_t)hva;

	for (int i = 0; i < gm->nr_regions; i++) {
		const struct mm_region *r = &gm->regions[i];
		uintptr_t off = p - (uintptr_t)r->hva;

		if (off < r->size) {
			*gpa = r->gpa + off;
			return 0;
		}
	}
	return -EFAULT;
}

uint64_t mm_discard_granularity(const struct guest_mem *gm)
{
	return gm->backing == MM_BACKING_HUGETLB ? gm->page_size : MM_4K;
}

int mm_discard(struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t gran = mm_discard_granularity(gm);
	uint8_t *p;

	if ((gpa | len) & (gran - 1))
		return -EINVAL;
	if (len == 0)
		return mm_is_ram(gm, gpa) ? 0 : -EINVAL;
	p = mm_gpa_to_hva(gm, gpa, len);
	if (!p)
		return -EINVAL;

	switch (gm->backing) {
	case MM_BACKING_ANON:
	case MM_BACKING_THP:
		/* Private anonymous: dropping the pages makes the next access read zeros. */
		if (madvise(p, len, MADV_DONTNEED) < 0)
			return -errno;
		return 0;
	case MM_BACKING_MEMFD:
	case MM_BACKING_HUGETLB:
		/*
		 * A shared mapping's pages belong to the file: MADV_DONTNEED would
		 * only unmap them. Punching the hole frees them and zaps every
		 * mapping, KVM's included (through its MMU notifier).
		 */
		if (fallocate(gm->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(p - gm->base), (off_t)len) < 0)
			return -errno;
		return 0;
	}
	return -EINVAL;
}

/* "7f12a0000000-7f12e0000000 rw-p ..." -> start, end. Returns false for other lines. */
static bool mm_smaps_header(const char *line, uint64_t *start, uint64_t *end)
{
	char *e;

	*start = strtoull(line, &e, 16);
	if (e == line || *e != '-')
		return false;
	const char *s = e + 1;
	*end = strtoull(s, &e, 16);
	return e != s && *e == ' ';
}

/* Resident bytes of a VMA [vs, ve) attributed to [lo, hi). */
static uint64_t mm_overlap_bytes(uint64_t kb, uint64_t vs, uint64_t ve, uint64_t lo, uint64_t hi)
{
	uint64_t os = vs > lo ? vs : lo, oe = ve < hi ? ve : hi;

	if (os == vs && oe == ve)
		return kb << 10;
	return (uint64_t)((double)(kb << 10) * (double)(oe - os) / (double)(ve - vs));
}

uint64_t mm_resident_bytes(const struct guest_mem *gm)
{
	uint64_t lo = (uintptr_t)gm->base, hi = lo + gm->ram_size;
	uint64_t total = 0, vstart = 0, vend = 0, vma_kb = 0;
	bool in = false, found = false;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (!gm->base)
		return 0;
	f = sandbox_fopen_early(gm->smaps_fd, "/proc/self/smaps");
	if (!f)
		return 0;

	/*
	 * Only the guest RAM VMAs are parsed field by field; for every other
	 * VMA we only look at the first character of each line. A VMA reaching
	 * outside guest RAM (not expected: guest RAM has its own VMA flags) is
	 * counted in proportion to its overlap.
	 */
	while (getline(&line, &cap, f) > 0) {
		uint64_t s, e, kb;

		if (line[0] >= 'A' && line[0] <= 'Z') {
			if (!in)
				continue;
			if (sscanf(line, "Rss: %" SCNu64, &kb) == 1 ||
			    sscanf(line, "Shared_Hugetlb: %" SCNu64, &kb) == 1 ||
			    sscanf(line, "Private_Hugetlb: %" SCNu64, &kb) == 1)
				vma_kb += kb;
			continue;
		}
		if (!mm_smaps_header(line, &s, &e))
			continue;
		if (in)
			total += mm_overlap_bytes(vma_kb, vstart, vend, lo, hi);
		in = s < hi && e > lo;
		if (in) {
			found = true;
			vstart = s;
			vend = e;
			vma_kb = 0;
		} else if (found && s >= hi) {
			break;  /* VMAs are listed in address order */
		}
	}
	if (in)
		total += mm_overlap_bytes(vma_kb, vstart, vend, lo, hi);
	free(line);
	fclose(f);
	return total;
}

uint64_t mm_process_rss(const struct guest_mem *gm)
{
	FILE *f = sandbox_fopen_early(gm ? gm->status_fd : -1, "/proc/self/status");
	char line[256];
	uint64_t kb, total = 0;

	if (!f)
		return 0;
	/* VmRSS leaves out hugetlb pages; HugetlbPages counts them. */
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %" SCNu64, &kb) == 1 ||
		    sscanf(line, "HugetlbPages: %" SCNu64, &kb) == 1)
			total += kb << 10;
	}
	fclose(f);
	return total;
}
