/*
 * bench_mm: memory manager figures, each beside its baseline measured in
 * the same run, printed as `name: value unit` lines:
 *   - zero-page detection and XXH3 dedup hashing throughput per core;
 *   - the store (zero elimination + dedup + zstd) on the synthetic guest mix
 *     and on a realistic corpus (the memory of a running Python process
 *     dumped through /proc/PID/mem), against plain per-page ZSTD_compress on
 *     the same bytes and against zram lz4 when /dev/zram0 is free (it is
 *     configured, used and reset; skipped with the reason otherwise);
 *   - fault-in latency p50/p99 of the manager's userfaultfd service (zero
 *     and compressed pages) against a bare userfaultfd round trip (a minimal
 *     handler doing UFFDIO_COPY of a zero-filled page).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "guest-driver/fillgen.h"
#include "mm/manager_priv.h"

#define PG 4096ull
#define MiB (1ull << 20)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill_mix(uint8_t *buf, uint64_t npages, const char *mixs)
{
	struct fillgen_mix mix;

	fillgen_parse_mix(mixs, &mix);
	for (uint64_t i = 0; i < npages; i++)
		fillgen_page(42, &mix, i, 0, (uint64_t *)(buf + i * PG));
}

/* ---- zero detection and hashing ---- */

static void bench_scan(void)
{
	uint64_t n = 64 * MiB / PG, reps = 8;
	uint8_t *z = aligned_alloc(4096, n * PG);
	volatile uint64_t sink = 0;
	double t;

	memset(z, 0, n * PG);
	t = cpu_s();
	for (uint64_t r = 0; r < reps; r++)
		for (uint64_t i = 0; i < n; i++)
			sink += mm_page_is_zero(z + i * PG);
	t = cpu_s() - t;
	printf("zero_check_GBps: %.2f GB/s\n", (double)(reps * n * PG) / t / 1e9);

	static const uint8_t zp[4096];
	t = cpu_s();
	for (uint64_t r = 0; r < reps; r++)
		for (uint64_t i = 0; i < n; i++)
			sink += memcmp(z + i * PG, zp, PG) == 0;
	t = cpu_s() - t;
	printf("zero_check_memcmp_baseline_GBps: %.2f GB/s\n", (double)(reps * n * PG) / t / 1e9);

	fill_mix(z, n, "random:100");
	t = cpu_s();
	for (uint64_t r = 0; r < reps; r++)
		for (uint64_t i = 0; i < n; i++)
			sink += XXH3_64bits(z + i * PG, PG);
	t = cpu_s() - t;
	printf("dedup_hash_xxh3_GBps: %.2f GB/s\n", (double)(reps * n * PG) / t / 1e9);
	(void)sink;
	free(z);
}

/* ---- compression ---- */

static void bench_store(const char *name, const uint8_t *buf, uint64_t npages)
{
	struct mm_store_config c = { .compress = true, .dedup = true, .level = 1, .max_csize = 3072 };
	struct mm_store *s = mm_store_new(&c);
	uint64_t zero = 0, resident = 0, shared = 0;
	struct mm_store_stats st;
	double t = cpu_s();

	for (uint64_t i = 0; i < npages; i++) {
		const uint8_t *p = buf + i * PG;
		uint32_t h;
		bool dd;
		if (mm_page_is_zero(p)) {
			zero++;
			continue;
		}
		int r = mm_store_put(s, p, i + 1, false, &h, &dd);
		if (r == -E2BIG)
			resident++;
		else if (dd)
			shared++;
	}
	t = cpu_s() - t;
	mm_store_get_stats(s, &st);
	uint64_t after = st.stored_bytes + resident * PG;
	printf("%s_input_MiB: %.1f MiB\n", name, (double)(npages * PG) / MiB);
	printf("%s_minivmm_ratio: %.2f x (zero %.0f%%, shared %.0f%%, left resident %.0f%%)\n", name,
	       (double)(npages * PG) / (double)(after ? after : 1), 100.0 * (double)zero / (double)npages,
	       100.0 * (double)shared / (double)npages, 100.0 * (double)resident / (double)npages);
	printf("%s_minivmm_MBps: %.0f MB/s\n", name, (double)(npages * PG) / t / 1e6);

	/* Plain zstd level 1 per 4 KiB page: no zero shortcut, no dedup. */
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	uint8_t out[ZSTD_COMPRESSBOUND(4096)];
	uint64_t total = 0;
	t = cpu_s();
	for (uint64_t i = 0; i < npages; i++) {
		size_t n = ZSTD_compressCCtx(cc, out, sizeof(out), buf + i * PG, PG, 1);
		total += n < PG ? n : PG;
	}
	t = cpu_s() - t;
	printf("%s_zstd1_page_ratio: %.2f x\n", name, (double)(npages * PG) / (double)total);
	printf("%s_zstd1_page_MBps: %.0f MB/s\n", name, (double)(npages * PG) / t / 1e6);
	ZSTD_freeCCtx(cc);

	/* decompression + checksum throughput of the store */
	uint8_t page[4096];
	uint64_t got = 0;
	t = cpu_s();
	for (uint32_t h = 1; h < 1u + (uint32_t)st.entries * 2 && got < st.entries; h++)
		if (mm_store_refcount(s, h) && mm_store_get(s, h, page) == 0)
			got++;
	t = cpu_s() - t;
	if (got)
		printf("%s_restore_MBps: %.0f MB/s (decompress + XXH3 verify)\n", name, (double)(got * PG) / t / 1e6);
	mm_store_free(s);
}

static int write_str(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, v, strlen(v));
	int e = n < 0 ? -errno : 0;
	close(fd);
	return e;
}

static void bench_zram(const char *name, const uint8_t *buf, uint64_t npages)
{
	char v[256];
	FILE *f = fopen("/sys/block/zram0/disksize", "r");
	unsigned long long ds = 1;

	if (!f) {
		printf("%s_zram_lz4_ratio: skipped (no /dev/zram0: modprobe zram)\n", name);
		return;
	}
	if (fscanf(f, "%llu", &ds) != 1)
		ds = 1;
	fclose(f);
	if (ds) {
		printf("%s_zram_lz4_ratio: skipped (/dev/zram0 is in use)\n", name);
		return;
	}
	if (write_str("/sys/block/zram0/comp_algorithm", "lz4")) {
		printf("%s_zram_lz4_ratio: skipped (zram has no lz4)\n", name);
		return;
	}
	snprintf(v, sizeof(v), "%llu", (unsigned long long)(npages * PG + 16 * MiB));
	if (write_str("/sys/block/zram0/disksize", v)) {
		printf("%s_zram_lz4_ratio: skipped (cannot size /dev/zram0)\n", name);
		write_str("/sys/block/zram0/reset", "1");
		return;
	}
	int fd = open("/dev/zram0", O_WRONLY | O_DIRECT);
	double t = now_s();
	if (fd >= 0) {
		uint64_t off = 0;
		while (off < npages * PG) {
			ssize_t n = pwrite(fd, buf + off, npages * PG - off > 4 * MiB ? 4 * MiB : npages * PG - off, (off_t)off);
			if (n <= 0)
				break;
			off += (uint64_t)n;
		}
		fsync(fd);
		close(fd);
	}
	t = now_s() - t;
	unsigned long long orig = 0, compr = 0, used = 0;
	f = fopen("/sys/block/zram0/mm_stat", "r");
	if (f) {
		if (fscanf(f, "%llu %llu %llu", &orig, &compr, &used) != 3)
			used = 0;
		fclose(f);
	}
	if (used)
		printf("%s_zram_lz4_ratio: %.2f x (mem_used_total)\n%s_zram_lz4_MBps: %.0f MB/s (write, wall)\n",
		       name, (double)(npages * PG) / (double)used, name, (double)(npages * PG) / t / 1e6);
	else
		printf("%s_zram_lz4_ratio: skipped (writing /dev/zram0 failed)\n", name);
	write_str("/sys/block/zram0/reset", "1");
}

/* The readable memory of a running Python process (heap, libraries, stacks). */
static uint8_t *dump_process(uint64_t *npages)
{
	int pfd[2];
	char line[512], path[64];
	uint64_t cap = 96 * MiB, len = 0;
	uint8_t *buf = malloc(cap);

	if (pipe(pfd))
		return NULL;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		execlp("python3", "python3", "-c",
		       "import json, re, decimal, email.parser, xml.dom.minidom, sqlite3, zlib, sys, time\n"
		       "d = [{'id': i, 'name': 'user%d' % i, 'tags': ['a', 'b', str(i % 7)]} for i in range(150000)]\n"
		       "s = json.dumps(d[:20000])\n"
		       "print('ready', flush=True)\n"
		       "time.sleep(60)\n", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	FILE *rp = fdopen(pfd[0], "r");
	if (!rp || !fgets(line, sizeof(line), rp)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		free(buf);
		return NULL;
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	int mem = open(path, O_RDONLY);
	while (maps && mem >= 0 && fgets(line, sizeof(line), maps) && len < cap) {
		unsigned long long a, b;
		char perms[8];
		if (sscanf(line, "%llx-%llx %7s", &a, &b, perms) != 3 || perms[0] != 'r' ||
		    strstr(line, "[vvar") || strstr(line, "[vsyscall]"))
			continue;
		for (unsigned long long p = a; p < b && len < cap; p += PG) {
			if (pread(mem, buf + len, PG, (off_t)p) == (ssize_t)PG)
				len += PG;
		}
	}
	if (maps)
		fclose(maps);
	if (mem >= 0)
		close(mem);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fclose(rp);
	*npages = len / PG;
	return buf;
}

/* ---- fault-in latency ----
 *
 * Three targets are set up first: a bare userfaultfd region (a minimal
 * handler doing UFFDIO_COPY of a zero page), a manager whose pages were all
 * evicted as zero, and one whose pages were all compressed (text). They are
 * touched one page at a time, interleaved in blocks so drifting noise lands
 * on all three alike; a warm-up block of each is not counted, and every
 * target gets the same number of samples, in two passes over fresh pages:
 *
 *   - random order (one permutation, the same for all three): every touch
 *     is one fault of one page, nothing to batch; this is the per-fault
 *     latency, the headline figure against the bare round trip;
 *   - ascending order: the manager's fault-around restores several stored
 *     pages per fault, so most touches do not fault at all. Reported apart:
 *     pages per fault, the latency of the touches that did fault, and the
 *     mean cost per page touched (the figure fault-around improves).
 *
 * The restore floor line decompresses and checksums the same kind of pages
 * in a hot loop (no kernel, no cache misses): bare round trip + that floor
 * is the best a compressed fault can do without batching.
 *
 * Placement decides the figure more than anything else: a wake-up across
 * CPUs costs an IPI (tens of microseconds under a hypervisor), one on the
 * same CPU does not. So the toucher and every handler thread are pinned:
 * first all on one CPU (the headline figures), then, where there are two
 * CPUs, toucher on one and handlers on the other.
 */

#define FAULT_PAGES  4096ull
#define FAULT_WARMUP 256ull
#define FAULT_BLOCK  64ull
/* Touches slower than this took a fault (a resident page reads in ~0.1 us). */
#define FAULT_MIN_S  1.5e-6

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, uint64_t n, uint64_t p)
{
	return sorted[n * p / 100 < n ? n * p / 100 : n - 1];
}

struct bare {
	int uffd, stop[2];
	uint8_t *p;
	pthread_t t;
};

static void *bare_handler(void *arg)
{
	struct bare *b = arg;
	static uint8_t zero[4096] __attribute__((aligned(4096)));
	struct pollfd pfd[2] = { { .fd = b->uffd, .events = POLLIN }, { .fd = b->stop[0], .events = POLLIN } };
	struct uffd_msg msg;

	for (;;) {
		if (poll(pfd, 2, -1) < 0 || pfd[1].revents)
			break;
		if (read(b->uffd, &msg, sizeof(msg)) != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		struct uffdio_copy c = {
			.dst = msg.arg.pagefault.address & ~(PG - 1), .src = (uintptr_t)zero, .len = PG,
		};
		ioctl(b->uffd, UFFDIO_COPY, &c);
	}
	return NULL;
}

static int bare_setup(struct bare *b, uint64_t npages)
{
	struct uffdio_api api = { .api = UFFD_API };

	b->p = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (b->p == MAP_FAILED || b->uffd < 0 || ioctl(b->uffd, UFFDIO_API, &api) || pipe(b->stop))
		return -1;
	madvise(b->p, npages * PG, MADV_NOHUGEPAGE);
	struct uffdio_register reg = { .range = { (uintptr_t)b->p, npages * PG }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(b->uffd, UFFDIO_REGISTER, &reg))
		return -1;
	return pthread_create(&b->t, NULL, bare_handler, b) ? -1 : 0;
}

static void bare_teardown(struct bare *b, uint64_t npages)
{
	if (write(b->stop[1], "x", 1) != 1)
		perror("write");
	pthread_join(b->t, NULL);
	close(b->uffd);
	close(b->stop[0]);
	close(b->stop[1]);
	munmap(b->p, npages * PG);
}

struct mgr_target {
	struct {
		struct guest_mem mem;
		struct mm_manager *mgr;
	} vm;                      /* guest RAM and its manager, no VM around them */
	double reclaim_cpu, reclaim_wall;
};

static int mgr_setup(struct mgr_target *t, const char *mix, uint64_t npages)
{
	struct mm_config cfg = { .ram_size = npages * PG, .backing = MM_BACKING_ANON };
	char err[256];

	memset(&t->vm, 0, sizeof(t->vm));
	if (mm_create(&t->vm.mem, &cfg, err, sizeof(err)) ||
	    mmgr_create(&t->vm.mem, NULL, NULL, "cold-age=0,max-refault-rate=0,scan-period=60000",
			&t->vm.mgr, err, sizeof(err))) {
		fprintf(stderr, "bench_mm: %s\n", err);
		return -1;
	}
	fill_mix(t->vm.mem.base, npages, mix);
	if (mmgr_start(t->vm.mgr))
		return -1;
	json_t *r = mmgr_reclaim(t->vm.mgr, 0, err, sizeof(err));
	if (!r)
		return -1;
	t->reclaim_cpu = json_real_value(json_object_get(r, "cpu-seconds"));
	t->reclaim_wall = json_real_value(json_object_get(r, "seconds"));
	json_decref(r);
	return 0;
}

static void mgr_teardown(struct mgr_target *t)
{
	mmgr_destroy(t->vm.mgr);
	t->vm.mgr = NULL;
	mm_destroy(&t->vm.mem);
}

static void touch_range(uint8_t *p, uint64_t first, uint64_t n, double *lat)
{
	volatile uint8_t sink = 0;

	for (uint64_t i = first; i < first + n; i++) {
		double t0 = now_s();
		sink += p[i * PG + 17];
		if (lat)
			*lat++ = now_s() - t0;
	}
	(void)sink;
}

static void pin(pthread_t t, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(t, sizeof(set), &set);
}

/* Touches pages order[0..n) of each target, interleaved in blocks. */
static void touch_interleaved(uint8_t *const base[3], const uint64_t *order, uint64_t first, uint64_t n,
			      double *const lat[3])
{
	volatile uint8_t sink = 0;

	for (uint64_t off = 0; off < n; off += FAULT_BLOCK)
		for (int k = 0; k < 3; k++)
			for (uint64_t i = off; i < off + FAULT_BLOCK && i < n; i++) {
				uint64_t pg = first + (order ? order[i] : i);
				double t0 = now_s();
				sink += base[k][pg * PG + 17];
				lat[k][i] = now_s() - t0;
			}
	(void)sink;
}

/* Prints one pass; returns the bare round trip's p50 (s). per_fault: every
 * touch was a fault, so p50 is the per-fault figure with the target. */
static double report_pass(const char *pass, double *const lat[3], uint64_t n, bool per_fault)
{
	static const char *const names[3] = { "bare_uffd_copy", "minivmm_zero", "minivmm_compressed" };
	double p50[3], p99[3], mean[3];

	for (int k = 0; k < 3; k++) {
		double sum = 0;
		for (uint64_t i = 0; i < n; i++)
			sum += lat[k][i];
		qsort(lat[k], n, sizeof(double), cmp_double);
		p50[k] = pct(lat[k], n, 50);
		p99[k] = pct(lat[k], n, 99);
		mean[k] = sum / (double)n;
		/* The mean is the cost per page touched, whatever the pages per fault. */
		printf("%s_%s_p50_us: %.1f us\n%s_%s_p99_us: %.1f us\n%s_%s_mean_us: %.1f us per page\n", pass,
		       names[k], p50[k] * 1e6, pass, names[k], p99[k] * 1e6, pass, names[k], sum / (double)n * 1e6);
	}
	for (int k = 1; k < 3; k++) {
		if (per_fault)
			printf("%s_%s_vs_bare: p50 %.2f x (target <= 1.5), p99 %.2f x\n", pass, names[k],
			       p50[k] / p50[0], p99[k] / p99[0]);
		else
			printf("%s_%s_vs_bare: mean per page %.2f x, p99 %.2f x (p50 of touches, most of them "
			       "not faults when pages per fault > 1: not the target figure)\n", pass, names[k],
			       mean[k] / mean[0], p99[k] / p99[0]);
	}
	return p50[0];
}

/* Hot-loop decompression + checksum of compressed text pages (no kernel). */
static double restore_floor_us(void)
{
	enum { NP = 256 };
	uint8_t *src = aligned_alloc(4096, NP * PG), *out = aligned_alloc(4096, PG);
	static uint8_t cbuf[NP][ZSTD_COMPRESSBOUND(4096)];
	size_t csz[NP];
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_DCtx *d = ZSTD_createDCtx();
	volatile uint64_t sink = 0;
	double best = 1e9;

	fill_mix(src, NP, "text:100");
	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
	for (int i = 0; i < NP; i++)
		csz[i] = ZSTD_compress2(c, cbuf[i], sizeof(cbuf[i]), src + (uint64_t)i * PG, PG);
	for (int r = 0; r < 5; r++) {
		double t0 = now_s();
		for (int i = 0; i < NP; i++) {
			ZSTD_decompressDCtx(d, out, PG, cbuf[i], csz[i]);
			sink += XXH3_64bits(out, PG);
		}
		double t = (now_s() - t0) / NP;
		best = t < best ? t : best;
	}
	(void)sink;
	ZSTD_freeCCtx(c);
	ZSTD_freeDCtx(d);
	free(src);
	free(out);
	return best * 1e6;
}

/* One run of both passes; handler_cpu < 0: handlers on the toucher's CPU. */
static int bench_faults_run(const char *tag, int toucher_cpu, int handler_cpu, double floor_us)
{
	const uint64_t n = FAULT_PAGES, total = FAULT_WARMUP + 2 * FAULT_PAGES;
	double *lat[3];
	uint64_t *order = calloc(n, sizeof(*order)), seed = 0x9e3779b97f4a7c15ull;
	struct bare b;
	struct mgr_target z, c;
	uint8_t *base[3];
	char pass[128];

	/* Threads inherit the creator's affinity: pin first, then create. */
	pin(pthread_self(), toucher_cpu);
	if (bare_setup(&b, total) || mgr_setup(&z, "zero:100", total) || mgr_setup(&c, "text:100", total))
		return -1;
	if (handler_cpu >= 0) {
		pin(b.t, handler_cpu);
		pin(z.vm.mgr->fault_thread, handler_cpu);
		pin(c.vm.mgr->fault_thread, handler_cpu);
	}
	base[0] = b.p;
	base[1] = z.vm.mem.base;
	base[2] = c.vm.mem.base;
	for (int k = 0; k < 3; k++) {
		lat[k] = calloc(n, sizeof(double));
		touch_range(base[k], 0, FAULT_WARMUP, NULL);
	}
	/* Fisher-Yates with a fixed xorshift seed: the same order every run. */
	for (uint64_t i = 0; i < n; i++)
		order[i] = i;
	for (uint64_t i = n - 1; i > 0; i--) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		uint64_t j = seed % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}

	/* Pass 1: random order, one page per fault. */
	uint64_t rf0 = atomic_load(&c.vm.mgr->refaults), rp0 = atomic_load(&c.vm.mgr->refaulted_pages);
	touch_interleaved(base, order, FAULT_WARMUP, n, lat);
	uint64_t rf1 = atomic_load(&c.vm.mgr->refaults), rp1 = atomic_load(&c.vm.mgr->refaulted_pages);
	snprintf(pass, sizeof(pass), "fault_in%s", tag);
	double bare50 = report_pass(pass, lat, n, true) * 1e6;
	printf("%s_minivmm_compressed_floor_vs_bare: %.2f x ((bare p50 %.1f + restore floor %.2f us) / bare p50: "
	       "the best one page per fault can do)\n", pass, (bare50 + floor_us) / bare50, bare50, floor_us);
	printf("%s_minivmm_compressed_pages_per_fault: %.2f (%llu pages, %llu faults, %llu samples, random order)\n",
	       pass, rf1 > rf0 ? (double)(rp1 - rp0) / (double)(rf1 - rf0) : 0.0, (unsigned long long)(rp1 - rp0),
	       (unsigned long long)(rf1 - rf0), (unsigned long long)n);
	struct mm_store_stats st;
	mm_store_get_stats(c.vm.mgr->store, &st);
	printf("%s_minivmm_compressed_restore_mean_us: %.2f us per page (decompress + checksum, inside the fault)\n",
	       pass, st.gets ? (double)st.decompress_ns / (double)st.gets / 1e3 : 0.0);

	/* Pass 2: ascending order over fresh pages, where fault-around batches. */
	touch_interleaved(base, NULL, FAULT_WARMUP + n, n, lat);
	uint64_t rf2 = atomic_load(&c.vm.mgr->refaults), rp2 = atomic_load(&c.vm.mgr->refaulted_pages);
	double *fl = calloc(n, sizeof(double));
	uint64_t nf = 0;
	for (uint64_t i = 0; i < n; i++)
		if (lat[2][i] >= FAULT_MIN_S)
			fl[nf++] = lat[2][i];
	qsort(fl, nf, sizeof(double), cmp_double);
	snprintf(pass, sizeof(pass), "fault_in%s_seq", tag);
	report_pass(pass, lat, n, false);
	printf("%s_minivmm_compressed_faultaround: %.2f pages per fault (%llu pages, %llu faults, %llu samples); "
	       "faulting touches (>= %.1f us): %llu, p50 %.1f us, p99 %.1f us\n", pass,
	       rf2 > rf1 ? (double)(rp2 - rp1) / (double)(rf2 - rf1) : 0.0, (unsigned long long)(rp2 - rp1),
	       (unsigned long long)(rf2 - rf1), (unsigned long long)n, FAULT_MIN_S * 1e6, (unsigned long long)nf,
	       nf ? pct(fl, nf, 50) * 1e6 : 0.0, nf ? pct(fl, nf, 99) * 1e6 : 0.0);
	free(fl);
	if (!*tag) {
		printf("reclaim_text_MBps: %.0f MB/s (wall), %.0f MB/s per scanner CPU second\n",
		       (double)(total * PG) / c.reclaim_wall / 1e6, (double)(total * PG) / c.reclaim_cpu / 1e6);
		printf("reclaim_zero_MBps: %.0f MB/s (wall)\n", (double)(total * PG) / z.reclaim_wall / 1e6);
	}
	bare_teardown(&b, total);
	mgr_teardown(&z);
	mgr_teardown(&c);
	for (int k = 0; k < 3; k++)
		free(lat[k]);
	free(order);
	return 0;
}

static void bench_faults(void)
{
	cpu_set_t all;
	int cpus[2], ncpu = 0;

	if (pthread_getaffinity_np(pthread_self(), sizeof(all), &all))
		CPU_ZERO(&all);
	for (int i = 0; i < CPU_SETSIZE && ncpu < 2; i++)
		if (CPU_ISSET(i, &all))
			cpus[ncpu++] = i;
	if (!ncpu) {
		cpus[0] = 0;
		ncpu = 1;
	}
	printf("fault_in_placement: toucher and handlers on cpu %d; %d samples each after %llu warm-up, "
	       "interleaved in blocks of %llu\n", cpus[0], (int)FAULT_PAGES, (unsigned long long)FAULT_WARMUP,
	       (unsigned long long)FAULT_BLOCK);
	double floor_us = restore_floor_us();
	printf("fault_in_restore_floor_us: %.2f us per page (zstd level 1 decompress + XXH3 of text pages, hot loop)\n",
	       floor_us);
	if (bench_faults_run("", cpus[0], -1, floor_us)) {
		printf("fault_in: skipped (userfaultfd unavailable: run as root)\n");
		goto out;
	}
	if (ncpu > 1) {
		printf("fault_in_xcpu_placement: toucher on cpu %d, handlers on cpu %d\n", cpus[0], cpus[1]);
		bench_faults_run("_xcpu", cpus[0], cpus[1], floor_us);
	}
out:
	pthread_setaffinity_np(pthread_self(), sizeof(all), &all);
}

int main(int argc, char **argv)
{
	uint64_t n = 64 * MiB / PG, pn = 0;
	uint8_t *buf;

	vmm_log_level = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* `bench_mm faults`: only the fault-in latency section. */
	if (argc > 1 && strcmp(argv[1], "faults") == 0) {
		bench_faults();
		return 0;
	}
	bench_scan();

	buf = aligned_alloc(4096, n * PG);
	fill_mix(buf, n, "zero:25,dup:25,random:25,text:25");
	bench_store("synthetic", buf, n);
	bench_zram("synthetic", buf, n);
	free(buf);

	buf = dump_process(&pn);
	if (buf && pn > 256) {
		bench_store("process", buf, pn);
		bench_zram("process", buf, pn);
	} else {
		printf("process_minivmm_ratio: skipped (could not dump a python3 process)\n");
	}
	free(buf);

	bench_faults();
	return 0;
}
