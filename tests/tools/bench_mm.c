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

#include "fillgen.h"
#include "../../mm/manager_priv.h"

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
		int r = mm_store_put(s, p, false, &h, &dd);
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

/* ---- fault-in latency ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report_lat(const char *name, double *lat, uint64_t n)
{
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("%s_p50_us: %.1f us\n%s_p99_us: %.1f us\n", name, lat[n / 2] * 1e6, name, lat[n * 99 / 100] * 1e6);
}

static double touch_all(uint8_t *p, uint64_t npages, double *lat)
{
	volatile uint8_t sink = 0;

	for (uint64_t i = 0; i < npages; i++) {
		double t0 = now_s();
		sink += p[i * PG + 17];
		lat[i] = now_s() - t0;
	}
	(void)sink;
	qsort(lat, npages, sizeof(*lat), cmp_double);
	return lat[npages / 2];
}

struct bare {
	int uffd, stop;
};

static void *bare_handler(void *arg)
{
	struct bare *b = arg;
	static uint8_t zero[4096] __attribute__((aligned(4096)));
	struct pollfd pfd[2] = { { .fd = b->uffd, .events = POLLIN }, { .fd = b->stop, .events = POLLIN } };
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

static double bench_bare(uint64_t npages, double *lat)
{
	struct bare b;
	uint8_t *p = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_api api = { .api = UFFD_API };
	pthread_t t;
	int pp[2];

	b.uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (b.uffd < 0 || ioctl(b.uffd, UFFDIO_API, &api) || pipe(pp))
		return -1;
	b.stop = pp[0];
	madvise(p, npages * PG, MADV_NOHUGEPAGE);
	struct uffdio_register reg = { .range = { (uintptr_t)p, npages * PG }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(b.uffd, UFFDIO_REGISTER, &reg))
		return -1;
	pthread_create(&t, NULL, bare_handler, &b);
	touch_all(p, npages, lat);
	if (write(pp[1], "x", 1) != 1)
		perror("write");
	pthread_join(t, NULL);
	close(b.uffd);
	close(pp[0]);
	close(pp[1]);
	munmap(p, npages * PG);
	return 0;
}

static int bench_manager(const char *mix, uint64_t npages, double *lat, double *reclaim_cpu, double *reclaim_wall)
{
	struct vm vm;
	struct mm_config cfg = { .ram_size = npages * PG, .backing = MM_BACKING_ANON };
	char err[256];

	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = vm.kvm_fd = -1;
	if (mm_create(&vm.mem, &cfg, err, sizeof(err)) ||
	    mmgr_create(&vm, "cold-age=0,max-refault-rate=0,scan-period=60000", err, sizeof(err))) {
		fprintf(stderr, "bench_mm: %s\n", err);
		return -1;
	}
	fill_mix(vm.mem.base, npages, mix);
	if (mmgr_start(&vm))
		return -1;
	json_t *r = mmgr_reclaim(vm.mgr, 0, err, sizeof(err));
	if (!r)
		return -1;
	*reclaim_cpu = json_real_value(json_object_get(r, "cpu-seconds"));
	*reclaim_wall = json_real_value(json_object_get(r, "seconds"));
	json_decref(r);
	touch_all(vm.mem.base, npages, lat);
	mmgr_destroy(&vm);
	mm_destroy(&vm.mem);
	return 0;
}

static void bench_faults(void)
{
	uint64_t n = 16 * MiB / PG;
	double *a = calloc(n, sizeof(double)), *bz = calloc(n, sizeof(double)), *bc = calloc(n, sizeof(double));
	double cz, wz, cc, wc;

	if (bench_bare(n, a) || bench_manager("zero:100", n, bz, &cz, &wz) ||
	    bench_manager("text:100", n, bc, &cc, &wc)) {
		printf("fault_in: skipped (userfaultfd unavailable: run as root)\n");
		return;
	}
	double base = a[n / 2];
	report_lat("fault_in_bare_uffd_copy", a, n);
	report_lat("fault_in_minivmm_zero", bz, n);
	report_lat("fault_in_minivmm_compressed", bc, n);
	printf("fault_in_minivmm_zero_p50_vs_bare: %.2f x (target <= 1.5)\n", bz[n / 2] / base);
	printf("fault_in_minivmm_compressed_p50_vs_bare: %.2f x (target <= 1.5)\n", bc[n / 2] / base);
	printf("reclaim_text_MBps: %.0f MB/s (wall), %.0f MB/s per scanner CPU second\n",
	       (double)(n * PG) / wc / 1e6, (double)(n * PG) / cc / 1e6);
	printf("reclaim_zero_MBps: %.0f MB/s (wall)\n", (double)(n * PG) / wz / 1e6);
	free(a);
	free(bz);
	free(bc);
}

int main(void)
{
	uint64_t n = 64 * MiB / PG, pn = 0;
	uint8_t *buf;

	vmm_log_level = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
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
