/*
 * Unit tests of mm/pagestate.c (entry layout, counts, chunk counters,
 * ageing, metadata size) and of the manager around it, on real guest RAM
 * without a VM: forced reclaim of a known mix (zero, duplicate, random,
 * text) under anon, memfd and hugetlb 2M backing, every byte read back
 * through userfaultfd fault-in, writers racing reclaim (no write may be
 * lost between copy-out and discard), balloon give-up/take-back, and a
 * corrupted store entry stopping the VM instead of handing out bad data.
 *
 * The hugetlb case grows /proc/sys/vm/nr_hugepages when needed and restores
 * it afterwards; it is skipped with a message when that is impossible.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mm/manager_priv.h"
#include "guest-driver/fillgen.h"

/* Stands in for the VM: guest RAM, and the stop the manager asks for. */
enum { VM_RUNNING, VM_SHUTTING_DOWN };
struct tvm {
	struct guest_mem mem;
	struct mm_manager *mgr;
	atomic_int state;
	atomic_int exit_status;
	int vm_fd, kvm_fd;
};

static void tvm_stop(void *opaque, enum stop_reason why)
{
	struct tvm *vm = opaque;
	int running = VM_RUNNING;

	if (atomic_compare_exchange_strong(&vm->state, &running, VM_SHUTTING_DOWN))
		atomic_store(&vm->exit_status, stop_status(why));
}

static const struct mm_vm_ops tvm_ops = { .stop = tvm_stop };

static int tvm_mgr_create(struct tvm *vm, const char *opts, char *err, size_t errlen)
{
	return mmgr_create(&vm->mem, &tvm_ops, vm, opts, &vm->mgr, err, errlen);
}

static void tvm_mgr_destroy(struct tvm *vm)
{
	mmgr_destroy(vm->mgr);
	vm->mgr = NULL;
}

#define PG 4096ull
#define MiB (1ull << 20)

/* ---- the table alone ---- */

static void test_table_basics(void **state)
{
	struct mm_pagestate ps;
	uint64_t n = (64 * MiB) / PG;

	(void)state;
	assert_int_equal(ps_init(&ps, n, 2 * MiB), 0);
	assert_int_equal(ps.chunk_pages, 512);
	assert_int_equal(ps.nr_chunks, 32);
	/* at most 0.5% of guest RAM */
	assert_true(ps_metadata_bytes(&ps) * 200 <= n * PG);
	assert_int_equal(atomic_load(&ps.count[MM_PAGE_UNTOUCHED]), n);
	assert_int_equal(ps_state(&ps, 5), MM_PAGE_UNTOUCHED);

	ps_set_state(&ps, 5, MM_PAGE_RESIDENT, 0);
	ps_set_state(&ps, 6, MM_PAGE_COMPRESSED, 0xdeadbeef);
	ps_set_state(&ps, 7, MM_PAGE_ZERO, 0);
	ps_set_state(&ps, 600, MM_PAGE_BALLOONED, 0);
	assert_int_equal(ps_handle_of(ps_get(&ps, 6)), 0xdeadbeef);
	assert_int_equal(ps_state(&ps, 6), MM_PAGE_COMPRESSED);
	assert_int_equal(ps.chunks[0].n_evicted, 2);
	assert_int_equal(ps.chunks[1].n_given, 1);
	assert_int_equal(atomic_load(&ps.count[MM_PAGE_UNTOUCHED]), n - 4);
	assert_int_equal(atomic_load(&ps.count[MM_PAGE_COMPRESSED]), 1);

	/* flags survive state changes; state changes reset age */
	ps_flag_set(&ps, 6, PS_HOT);
	ps_age(&ps, 6, false);
	ps_age(&ps, 6, false);
	assert_int_equal(ps_age_of(ps_get(&ps, 6)), 2);
	ps_set_state(&ps, 6, MM_PAGE_RESIDENT, 0);
	assert_true(ps_get(&ps, 6) & PS_HOT);
	assert_int_equal(ps_age_of(ps_get(&ps, 6)), 0);
	assert_int_equal(ps_handle_of(ps_get(&ps, 6)), 0);
	assert_int_equal(ps.chunks[0].n_evicted, 1);

	/* ageing saturates; a write resets age and the incompressible mark */
	for (int i = 0; i < 70000; i++)
		ps_age(&ps, 5, false);
	assert_int_equal(ps_age_of(ps_get(&ps, 5)), PS_AGE_MAX);
	ps_update(&ps, 5, PS_SKIP | PS_SKIPCNT_MASK, PS_SKIP | (2ull << PS_SKIPCNT_SHIFT));
	ps_age(&ps, 5, false);
	ps_age(&ps, 5, false);
	assert_true(ps_get(&ps, 5) & PS_SKIP);
	ps_age(&ps, 5, false);   /* countdown over */
	assert_false(ps_get(&ps, 5) & PS_SKIP);
	ps_update(&ps, 5, PS_SKIP, PS_SKIP);
	ps_age(&ps, 5, true);
	assert_false(ps_get(&ps, 5) & PS_SKIP);
	assert_int_equal(ps_age_of(ps_get(&ps, 5)), 0);
	assert_string_equal(ps_state_name(MM_PAGE_SHARED), "shared");
	ps_fini(&ps);

	/* 1 GiB huge pages make 1 GiB chunks; a short last chunk */
	assert_int_equal(ps_init(&ps, (1ull << 30) / PG + 3, 1ull << 30), 0);
	assert_int_equal(ps.nr_chunks, 2);
	ps_fini(&ps);
	assert_int_equal(ps_init(&ps, 10, 4096), -EINVAL);
}

/* ---- the manager on real memory ---- */

#define RAM (16 * MiB)
#define NPG (RAM / PG)

static void fill_page(uint8_t *p, uint64_t i, uint64_t gen)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ gen;

	switch (i % 4) {
	case 0:
		memset(p, 0, PG);
		break;
	case 1:   /* duplicates: 8 distinct contents */
		memset(p, 'A' + (int)((i / 4) % 8), PG);
		memcpy(p, &gen, 8);
		break;
	case 2:   /* random */
		for (size_t k = 0; k < PG; k += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(p + k, &x, 8);
		}
		break;
	default:  /* text-like */
		for (size_t k = 0; k < PG; k++)
			p[k] = "the quick brown fox jumps over the lazy dog "[(k + i) % 44];
		memcpy(p + 100, &i, 8);
		memcpy(p + 200, &gen, 8);
		break;
	}
}

struct mfix {
	struct tvm vm;
	struct mm_manager *m;
	uint8_t *want;
	long hp_orig;
};

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "%ld\n", v);
	return fclose(f);
}

static int mfix_setup(struct mfix *f, enum mm_backing b, const char *opts)
{
	struct mm_config cfg = { .ram_size = RAM, .backing = b, .hugepage_size = 2 * MiB };
	char err[256];

	memset(f, 0, sizeof(*f));
	f->hp_orig = -1;
	f->vm.vm_fd = f->vm.kvm_fd = -1;
	atomic_store(&f->vm.state, VM_RUNNING);
	if (b == MM_BACKING_HUGETLB) {
		long fr = mm_hugepages_free(2 * MiB);
		if (fr < (long)(RAM / (2 * MiB))) {
			long cur = read_long("/proc/sys/vm/nr_hugepages");
			if (cur < 0 || write_long("/proc/sys/vm/nr_hugepages", cur + (long)(RAM / (2 * MiB)) - (fr > 0 ? fr : 0)))
				return -1;
			f->hp_orig = cur;
			if (mm_hugepages_free(2 * MiB) < (long)(RAM / (2 * MiB)))
				return -1;
		}
	}
	if (mm_create(&f->vm.mem, &cfg, err, sizeof(err))) {
		print_message("mm_create: %s\n", err);
		return -1;
	}
	assert_int_equal(tvm_mgr_create(&f->vm, opts, err, sizeof(err)), 0);
	f->m = f->vm.mgr;
	f->want = malloc(RAM);
	assert_non_null(f->want);
	for (uint64_t i = 0; i < NPG; i++) {
		fill_page(f->want + i * PG, i, 0);
		memcpy(f->vm.mem.base + i * PG, f->want + i * PG, PG);
	}
	assert_int_equal(mmgr_start(f->vm.mgr), 0);
	return 0;
}

static void mfix_teardown(struct mfix *f)
{
	if (f->vm.mgr)
		tvm_mgr_destroy(&f->vm);
	if (f->vm.mem.base)
		mm_destroy(&f->vm.mem);
	free(f->want);
	if (f->hp_orig >= 0)
		write_long("/proc/sys/vm/nr_hugepages", f->hp_orig);
}

static uint64_t jget(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	assert_non_null(v);
	return (uint64_t)json_integer_value(v);
}

static json_t *reclaim(struct mfix *f, uint64_t bytes)
{
	char err[256];
	json_t *r = mmgr_reclaim(f->m, bytes, err, sizeof(err));
	if (!r)
		print_message("reclaim: %s\n", err);
	assert_non_null(r);
	return r;
}

static void verify_all(struct mfix *f)
{
	for (uint64_t i = 0; i < NPG; i++)
		if (memcmp(f->vm.mem.base + i * PG, f->want + i * PG, PG)) {
			print_message("page %llu differs (state %s)\n", (unsigned long long)i,
				      ps_state_name(ps_state(&f->m->ps, i)));
			fail();
		}
}

struct writer {
	struct mfix *f;
	uint64_t lo, hi;
	volatile bool stop;
	uint64_t rounds, bad;
};

/*
 * Each page carries a counter at a per-page offset; a lost write shows as a
 * stale counter. This thread plays the guest, whose writes the VMM's
 * threads race with by design (dirty log and userfaultfd settle them), and
 * which KVM never shows to ThreadSanitizer: left uninstrumented, as the
 * guest is, so a TSan report here is a race between the VMM's own threads.
 */
__attribute__((no_sanitize("thread")))
static void *writer_main(void *p)
{
	struct writer *w = p;

	while (!w->stop) {
		for (uint64_t i = w->lo; i < w->hi; i++) {
			uint64_t *cell = (uint64_t *)(w->f->vm.mem.base + i * PG + (i % 500) * 8);
			uint64_t *mine = (uint64_t *)(w->f->want + i * PG + (i % 500) * 8);
			if (*cell != *mine)
				w->bad++;
			*mine += 1;
			*cell = *mine;
		}
		w->rounds++;
	}
	return NULL;
}

struct reader {
	volatile uint8_t *p;
	atomic_bool done;
	uint8_t val;
};

static void *reader_main(void *p)
{
	struct reader *r = p;
	r->val = r->p[0];
	atomic_store(&r->done, true);
	return NULL;
}

static void run_manager(enum mm_backing b)
{
	struct mfix f;
	json_t *r, *q;

	if (mfix_setup(&f, b, "cold-age=0,max-refault-rate=0,scan-period=60000")) {
		mfix_teardown(&f);
		print_message("skipped: %s backing unavailable (no 2 MiB huge pages could be reserved)\n",
			      mm_backing_name(b));
		skip();
	}
	struct mm_manager *m = f.m;
	uint64_t res0 = mm_resident_bytes(&f.vm.mem);

	r = reclaim(&f, 0);
	q = json_object();
	mmgr_query(m, q);
	uint64_t res1 = mm_resident_bytes(&f.vm.mem);
	print_message("%s: reclaim zero=%llu compressed=%llu shared=%llu skipped=%llu huge=%llu; "
		      "resident %llu -> %llu KiB; store %llu bytes\n", mm_backing_name(b),
		      (unsigned long long)jget(r, "zero-pages"), (unsigned long long)jget(r, "compressed-pages"),
		      (unsigned long long)jget(r, "shared-pages"), (unsigned long long)jget(r, "skipped-pages"),
		      (unsigned long long)jget(r, "huge-pages"), (unsigned long long)res0 >> 10,
		      (unsigned long long)res1 >> 10, (unsigned long long)jget(q, "compressed-bytes"));
	assert_true(jget(r, "zero-pages") >= NPG / 4 - 8);
	assert_true(jget(r, "shared-pages") >= NPG / 4 - 16);
	assert_true(jget(r, "compressed-pages") >= NPG / 4);
	assert_true(res1 < res0 * 3 / 10);
	if (b == MM_BACKING_HUGETLB) {
		assert_int_equal(jget(r, "huge-pages"), RAM / (2 * MiB));
	} else {
		assert_true(jget(r, "skipped-pages") >= NPG / 4 - 8);   /* random pages stay */
		assert_int_equal(ps_state(&m->ps, 2), MM_PAGE_RESIDENT);
		assert_true(ps_get(&m->ps, 2) & PS_SKIP);
	}
	assert_int_equal(ps_state(&m->ps, 0), MM_PAGE_ZERO);
	assert_int_equal(ps_state(&m->ps, 3), MM_PAGE_COMPRESSED);
	assert_true(jget(q, "metadata-bytes") * 200 <= RAM);
	json_decref(r);
	json_decref(q);

	/* Every byte comes back through the fault service. */
	verify_all(&f);
	assert_true(atomic_load(&m->refaults) > 0);
	/* The faulting thread is woken by UFFDIO_COPY just before the table is updated. */
	for (int i = 0; i < 100 && atomic_load(&m->ps.count[MM_PAGE_ZERO]) + atomic_load(&m->ps.count[MM_PAGE_COMPRESSED]); i++)
		usleep(10000);
	assert_int_equal(atomic_load(&m->ps.count[MM_PAGE_ZERO]), 0);
	assert_int_equal(atomic_load(&m->ps.count[MM_PAGE_COMPRESSED]), 0);
	assert_true(mm_hist_pct(&m->fault_hist, 50) > 0);

	/* Writers race repeated reclaim: nothing written may be lost. */
	struct writer w[2] = {
		{ .f = &f, .lo = 0, .hi = NPG / 2 },
		{ .f = &f, .lo = NPG / 2, .hi = NPG },
	};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
	for (int i = 0; i < 6; i++) {
		json_decref(reclaim(&f, 0));
		usleep(50000);
	}
	for (int i = 0; i < 2; i++) {
		w[i].stop = true;
		pthread_join(t[i], NULL);
	}
	print_message("%s: writers did %llu+%llu rounds during reclaim, refaults %llu, wp faults %llu\n",
		      mm_backing_name(b), (unsigned long long)w[0].rounds, (unsigned long long)w[1].rounds,
		      (unsigned long long)atomic_load(&m->refaults), (unsigned long long)atomic_load(&m->wp_faults));
	assert_int_equal(w[0].bad + w[1].bad, 0);
	verify_all(&f);

	/* Balloon: give up, refuse a second inflate, read zero, take back. */
	uint64_t gpa = 64 * PG;
	json_decref(reclaim(&f, 0));
	assert_int_equal(mmgr_give_up(m, gpa, 8 * PG, MM_PAGE_BALLOONED), 0);
	assert_int_equal(mmgr_page_state(m, gpa + 3 * PG), MM_PAGE_BALLOONED);
	assert_int_equal(mmgr_give_up(m, gpa + 4 * PG, 8 * PG, MM_PAGE_BALLOONED), -EEXIST);
	assert_true(ps_is_evicted((enum mm_page_state)mmgr_page_state(m, gpa + 9 * PG)));   /* untouched by the refusal */
	assert_int_equal(mmgr_give_up(m, gpa + 1, PG, MM_PAGE_BALLOONED), -EINVAL);
	assert_int_equal(mmgr_give_up(m, RAM, PG, MM_PAGE_BALLOONED), -EINVAL);
	assert_int_equal(atomic_load(&m->ps.count[MM_PAGE_BALLOONED]), 8);
	for (uint64_t i = 0; i < 8 * PG; i++)
		assert_int_equal(f.vm.mem.base[gpa + i], 0);
	assert_int_equal(mmgr_take_back(m, gpa, 8 * PG), 0);
	assert_int_equal(mmgr_page_state(m, gpa), MM_PAGE_UNTOUCHED);
	memset(f.want + gpa, 0, 8 * PG);
	assert_int_equal(mmgr_give_up(m, gpa + 16 * PG, 4 * PG, MM_PAGE_REPORTED), 0);
	assert_int_equal(mmgr_page_state(m, gpa + 16 * PG), MM_PAGE_REPORTED);
	memset(f.want + gpa + 16 * PG, 0, 4 * PG);
	verify_all(&f);
	assert_int_equal(mmgr_page_state(m, RAM + PG), -EINVAL);

	/* A corrupted store entry stops the VM; the reader never gets the bytes. */
	json_decref(reclaim(&f, 0));
	uint64_t victim = 3 + 4 * 40;   /* a text page */
	assert_int_equal(ps_state(&m->ps, victim), MM_PAGE_COMPRESSED);
	assert_int_equal(mm_store_corrupt(m->store, ps_handle_of(ps_get(&m->ps, victim)), 7), 0);
	struct reader rd = { .p = f.vm.mem.base + victim * PG };
	pthread_t rt;
	assert_int_equal(pthread_create(&rt, NULL, reader_main, &rd), 0);
	/* The VM stops with the checksum reason, and the reading thread (a VMM
	 * thread here) is let go within a bound instead of blocking teardown:
	 * with zeros, never with the corrupt bytes. */
	for (int i = 0; i < 300 && !atomic_load(&rd.done); i++)
		usleep(10000);
	assert_int_equal(atomic_load(&f.vm.state), VM_SHUTTING_DOWN);
	assert_int_equal(atomic_load(&f.vm.exit_status), stop_status(STOP_CHECKSUM));
	assert_int_equal(atomic_load(&m->checksum_failures), 1);
	assert_true(atomic_load(&rd.done));
	assert_int_not_equal(f.want[victim * PG], 0);
	assert_int_equal(rd.val, 0);
	pthread_join(rt, NULL);
	tvm_mgr_destroy(&f.vm);
	mfix_teardown(&f);
}

static void test_manager_anon(void **state) { (void)state; run_manager(MM_BACKING_ANON); }
static void test_manager_memfd(void **state) { (void)state; run_manager(MM_BACKING_MEMFD); }
static void test_manager_hugetlb(void **state) { (void)state; run_manager(MM_BACKING_HUGETLB); }

/* ---- fault-around: sequential refaults restore the following stored pages too ---- */

struct fa_reader {
	volatile uint8_t *p;
	atomic_bool done;
	uint8_t val;
};

static void *fa_reader_main(void *arg)
{
	struct fa_reader *r = arg;

	r->val = r->p[0];
	atomic_store(&r->done, true);
	return NULL;
}

static void fa_wait_restored(struct mm_manager *m)
{
	for (int i = 0; i < 100 && atomic_load(&m->ps.count[MM_PAGE_COMPRESSED]); i++)
		usleep(10000);
}

static void test_fault_around(void **state)
{
	const uint64_t npg = 2048, bad = 205;
	struct mm_config cfg = { .ram_size = npg * PG, .backing = MM_BACKING_ANON };
	struct fillgen_mix mix;
	struct tvm vm;
	char err[256];

	(void)state;
	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = vm.kvm_fd = -1;
	atomic_store(&vm.state, VM_RUNNING);
	assert_int_equal(mm_create(&vm.mem, &cfg, err, sizeof(err)), 0);
	assert_int_equal(tvm_mgr_create(&vm, "cold-age=0,max-refault-rate=0,scan-period=60000",
				     err, sizeof(err)), 0);
	assert_int_equal(fillgen_parse_mix("text:100", &mix), 0);
	uint8_t *want = malloc(npg * PG);
	assert_non_null(want);
	for (uint64_t i = 0; i < npg; i++) {
		fillgen_page(5, &mix, i, 0, (uint64_t *)(want + i * PG));
		memcpy(vm.mem.base + i * PG, want + i * PG, PG);
	}
	assert_int_equal(mmgr_start(vm.mgr), 0);
	struct mm_manager *m = vm.mgr;

	/* a sequential read: every byte right, several pages per fault */
	json_decref(mmgr_reclaim(m, 0, err, sizeof(err)));
	assert_int_equal(atomic_load(&m->ps.count[MM_PAGE_COMPRESSED]), npg);
	uint64_t rf0 = atomic_load(&m->refaults);
	for (uint64_t i = 0; i < npg; i++)
		assert_memory_equal(vm.mem.base + i * PG, want + i * PG, PG);
	fa_wait_restored(m);
	assert_int_equal(atomic_load(&m->refaulted_pages), npg);
	assert_true(atomic_load(&m->refaults) - rf0 < npg / 4);
	assert_int_equal(atomic_load(&m->ps.count[MM_PAGE_COMPRESSED]), 0);

	/* stride 7: no run to follow, still right */
	json_decref(mmgr_reclaim(m, 0, err, sizeof(err)));
	assert_int_equal(atomic_load(&m->ps.count[MM_PAGE_COMPRESSED]), npg);
	for (uint64_t k = 0; k < npg; k++) {
		uint64_t i = (k * 7) % npg;
		assert_memory_equal(vm.mem.base + i * PG, want + i * PG, PG);
	}

	/* a corrupt page ahead of a sequential run ends the run; only its own
	 * touch stops the VM, and the reader never sees its bytes */
	json_decref(mmgr_reclaim(m, 0, err, sizeof(err)));
	assert_int_equal(mm_store_corrupt(m->store, ps_handle_of(ps_get(&m->ps, bad)), 7), 0);
	for (uint64_t i = 190; i < bad; i++)
		assert_memory_equal(vm.mem.base + i * PG, want + i * PG, PG);
	assert_int_equal(atomic_load(&vm.state), VM_RUNNING);
	assert_int_equal(ps_state_of(ps_get(&m->ps, bad)), MM_PAGE_COMPRESSED);
	struct fa_reader rd = { .p = vm.mem.base + bad * PG };
	pthread_t rt;
	assert_int_equal(pthread_create(&rt, NULL, fa_reader_main, &rd), 0);
	for (int i = 0; i < 300 && !atomic_load(&rd.done); i++)
		usleep(10000);
	assert_int_equal(atomic_load(&vm.state), VM_SHUTTING_DOWN);
	assert_int_equal(atomic_load(&vm.exit_status), stop_status(STOP_CHECKSUM));
	assert_int_equal(atomic_load(&m->checksum_failures), 1);
	assert_true(atomic_load(&rd.done));   /* released, with zeros */
	assert_int_equal(rd.val, 0);
	pthread_join(rt, NULL);
	tvm_mgr_destroy(&vm);
	mm_destroy(&vm.mem);
	free(want);
}

static void test_options(void **state)
{
	struct tvm vm;
	struct mm_config cfg = { .ram_size = 4 * MiB, .backing = MM_BACKING_ANON };
	char err[256];

	(void)state;
	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = -1;
	assert_int_equal(mm_create(&vm.mem, &cfg, err, sizeof(err)), 0);
	assert_int_equal(tvm_mgr_create(&vm, "policy=lru", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "clock"));
	assert_null(vm.mgr);
	assert_int_equal(tvm_mgr_create(&vm, "zstd-level=99", err, sizeof(err)), -EINVAL);
	assert_int_equal(tvm_mgr_create(&vm, "cold-age=-1", err, sizeof(err)), -EINVAL);
	/* counts are refused with a fraction, not truncated; seconds may have one */
	assert_int_equal(tvm_mgr_create(&vm, "scan-period=100.5", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "whole milliseconds"));
	assert_int_equal(tvm_mgr_create(&vm, "threshold=300.5", err, sizeof(err)), -EINVAL);
	assert_int_equal(tvm_mgr_create(&vm, "uffd-chunks=2.5", err, sizeof(err)), -EINVAL);
	assert_int_equal(tvm_mgr_create(&vm, "cold-age=0.5", err, sizeof(err)), 0);
	tvm_mgr_destroy(&vm);
	assert_int_equal(tvm_mgr_create(&vm, "bogus=1", err, sizeof(err)), -EINVAL);
	assert_int_equal(tvm_mgr_create(&vm, "zero", err, sizeof(err)), -EINVAL);
	/* no --mm: reclaim off, balloon tracking on */
	assert_int_equal(tvm_mgr_create(&vm, NULL, err, sizeof(err)), 0);
	assert_false(vm.mgr->o.reclaim);
	assert_null(mmgr_reclaim(vm.mgr, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "--mm"));
	assert_int_equal(mmgr_give_up(vm.mgr, 0, 2 * MiB, MM_PAGE_BALLOONED), 0);
	assert_int_equal(mmgr_page_state(vm.mgr, 4096), MM_PAGE_BALLOONED);
	tvm_mgr_destroy(&vm);
	/* ksm=on alone: KSM baseline, own reclaim off */
	assert_int_equal(tvm_mgr_create(&vm, "ksm=on", err, sizeof(err)), 0);
	assert_true(vm.mgr->o.ksm);
	assert_false(vm.mgr->o.reclaim);
	json_t *q = json_object();
	mmgr_query(vm.mgr, q);
	assert_non_null(json_object_get(q, "ksm"));
	json_decref(q);
	tvm_mgr_destroy(&vm);
	assert_int_equal(tvm_mgr_create(&vm, "cold-age=5,policy=2q,zstd-level=3,compress=off", err, sizeof(err)), 0);
	assert_true(vm.mgr->o.reclaim && vm.mgr->o.zero && vm.mgr->o.dedup && !vm.mgr->o.compress);
	assert_int_equal(vm.mgr->o.zstd_level, 3);
	tvm_mgr_destroy(&vm);
	mm_destroy(&vm.mem);
	/* ksm refuses shared memory */
	cfg.backing = MM_BACKING_MEMFD;
	assert_int_equal(mm_create(&vm.mem, &cfg, err, sizeof(err)), 0);
	assert_int_equal(tvm_mgr_create(&vm, "ksm=on", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "anon"));
	mm_destroy(&vm.mem);
}

/* ---- hugetlb: given pieces the guest reused are live (data-loss regression) ---- */

#define HP_PAGES 512u   /* 4 KiB pieces per 2 MiB huge page */

static bool chunk_present(struct mfix *f, uint64_t chunk)
{
	unsigned char v = 0;
	assert_int_equal(mincore(f->vm.mem.base + chunk * 2 * MiB, PG, &v), 0);
	return v & 1;
}

static int hugetlb_setup(struct mfix *f, const char *opts)
{
	if (mfix_setup(f, MM_BACKING_HUGETLB, opts)) {
		mfix_teardown(f);
		print_message("skipped: no 2 MiB huge pages could be reserved\n");
		return -1;
	}
	return 0;
}

/* The guest (this thread) gives pieces up and writes its own pages, as a
 * driver would; want[] follows what each page must read. */
static void guest_give(struct mfix *f, uint64_t first, uint64_t n, enum mm_page_state why)
{
	assert_int_equal(mmgr_give_up(f->m, first * PG, n * PG, why), 0);
	memset(f->want + first * PG, 0, n * PG);
}

static void guest_write(struct mfix *f, uint64_t page, uint64_t gen)
{
	fill_page(f->want + page * PG, page, gen);
	memcpy(f->vm.mem.base + page * PG, f->want + page * PG, PG);
}

/* Reported, then reused without telling the host, then the rest of the huge
 * page inflated: the balloon's whole-page discard must keep the reused data.
 * No --mm: the manager still decides under write protection. */
static void test_huge_reported_reused_inflated(void **state)
{
	struct mfix f;

	(void)state;
	if (hugetlb_setup(&f, NULL))
		skip();
	struct mm_manager *m = f.m;
	assert_true(m->uffd >= 0);   /* hugetlb opens it even without --mm */

	guest_give(&f, 0, HP_PAGES / 2, MM_PAGE_REPORTED);
	for (uint64_t p = 9; p < 12; p++)   /* a duplicate, a random and a text page */
		guest_write(&f, p, 1);
	guest_give(&f, HP_PAGES / 2, HP_PAGES / 2, MM_PAGE_BALLOONED);
	assert_true(chunk_present(&f, 0));
	assert_int_equal(atomic_load(&m->huge_live_pieces), 3);
	assert_int_equal(ps_state(&m->ps, 11), MM_PAGE_RESIDENT);
	verify_all(&f);

	/* Reported again once free: now every given piece is zero, and it goes. */
	guest_give(&f, 0, HP_PAGES / 2, MM_PAGE_REPORTED);
	assert_false(chunk_present(&f, 0));
	assert_int_equal(m->ps.chunks[0].n_given, HP_PAGES);
	verify_all(&f);   /* reads fault a zeroed huge page back in */

	/* A ballooned piece the guest writes is kept too, and counted touched. */
	guest_give(&f, 2 * HP_PAGES, HP_PAGES - 1, MM_PAGE_BALLOONED);
	guest_write(&f, 2 * HP_PAGES + 7, 2);
	guest_give(&f, 3 * HP_PAGES - 1, 1, MM_PAGE_BALLOONED);
	assert_true(chunk_present(&f, 2));
	assert_int_equal(atomic_load(&m->balloon_touched), 1);
	verify_all(&f);

	/* A request covering a whole huge page needs no check and frees it. */
	uint64_t d0 = atomic_load(&m->discarded_bytes);
	guest_give(&f, 4 * HP_PAGES, HP_PAGES, MM_PAGE_REPORTED);
	assert_false(chunk_present(&f, 4));
	assert_int_equal(atomic_load(&m->discarded_bytes) - d0, 2 * MiB);
	verify_all(&f);
	mfix_teardown(&f);
}

/* Reported, reused, then whole-page eviction: the reused piece is stored and
 * restored like any other guest data. */
static void test_huge_reported_reused_evicted(void **state)
{
	struct mfix f;

	(void)state;
	if (hugetlb_setup(&f, "cold-age=0,max-refault-rate=0,scan-period=60000"))
		skip();
	struct mm_manager *m = f.m;

	guest_give(&f, 100, 200, MM_PAGE_REPORTED);
	guest_write(&f, 150, 3);
	guest_write(&f, 299, 3);
	json_decref(reclaim(&f, 0));
	assert_true(atomic_load(&m->huge_live_pieces) >= 2);
	/* Another pass evicts it with the reused pieces as ordinary memory. */
	json_decref(reclaim(&f, 0));
	assert_false(chunk_present(&f, 0));
	assert_int_equal(ps_state(&m->ps, 150), MM_PAGE_COMPRESSED);
	verify_all(&f);

	/* The huge restore buffer does not stay resident after the restores. */
	uint64_t len = m->ps.chunk_pages << MM_PAGE_SHIFT;
	unsigned char *vec = malloc(len / PG);
	for (int i = 0; i < 300 && atomic_load(&m->restore_buf_releases) == 0; i++)
		usleep(10000);
	assert_true(atomic_load(&m->restore_buf_releases) >= 1);
	assert_int_equal(mincore(m->restore_buf, len, vec), 0);
	uint64_t res = 0;
	for (uint64_t i = 0; i < len / PG; i++)
		res += vec[i] & 1;
	free(vec);
	assert_int_equal(res, 0);
	mfix_teardown(&f);
}

/* compress=off,dedup=on: a unique page is never stored raw, however many
 * passes offer it again after its skip period. */
static void test_unique_never_raw(void **state)
{
	struct mfix f;

	(void)state;
	if (mfix_setup(&f, MM_BACKING_ANON, "compress=off,dedup=on,cold-age=0,max-refault-rate=0,"
			"scan-period=60000")) {
		mfix_teardown(&f);
		fail();
	}
	struct mm_manager *m = f.m;
	/* Every page unique and incompressible (a random page per index). */
	for (uint64_t i = 0; i < NPG; i++) {
		fill_page(f.want + i * PG, 2 + 4 * i, 0);
		memcpy(f.vm.mem.base + i * PG, f.want + i * PG, PG);
	}
	/* Far more passes than the skip countdown lasts. */
	for (int pass = 0; pass < MM_SKIP_PASSES + 8; pass++)
		json_decref(reclaim(&f, 0));
	assert_int_equal(atomic_load(&m->ps.count[MM_PAGE_COMPRESSED]), 0);
	verify_all(&f);
	mfix_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_basics),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_manager_anon),
		cmocka_unit_test(test_manager_memfd),
		cmocka_unit_test(test_manager_hugetlb),
		cmocka_unit_test(test_fault_around),
		cmocka_unit_test(test_huge_reported_reused_inflated),
		cmocka_unit_test(test_huge_reported_reused_evicted),
		cmocka_unit_test(test_unique_never_raw),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
