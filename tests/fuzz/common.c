/*
 * The fuzz targets' shared fixtures (common.h): the VM is assembled from the
 * same calls machine.c makes, minus KVM, as the unit tests do.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "balloon/balloon.h"
#include "mm/manager.h"
#include "mm/mm.h"
#include "tests/fuzz/common.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"
#include "vmm/lib/loop.h"
#include "vmm/machine.h"
#include "vmm/qmp/qmp.h"

size_t fz_bytes(struct fz_in *in, size_t n, const uint8_t **p)
{
	size_t left = in->len - in->off;

	if (n > left)
		n = left;
	*p = in->p + in->off;
	in->off += n;
	return n;
}

void fz_quiet(void)
{
	const char *lvl = getenv("MINIVMM_FUZZ_LOG");   /* 2: debug lines, to study an input */

	vmm_log_level = lvl ? atoi(lvl) : -1;
}

void fz_say(const char *what, int ret, const char *err)
{
	const char *lvl = getenv("MINIVMM_FUZZ_LOG");

	if (lvl && atoi(lvl) >= 0)
		fprintf(stderr, "fuzz: %s: %d%s%s\n", what, ret, ret ? ": " : "", ret ? err : "");
}

static void fz_die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz fixture: %s: %s\n", what, err);
	abort();
}

struct vm *fz_vm_new(uint64_t ram, const char *balloon_opts, bool loop)
{
	struct mm_config mc = { .ram_size = ram, .backing = MM_BACKING_ANON };
	struct vm *vm = calloc(1, sizeof(*vm));
	char err[256] = "";

	if (!vm)
		fz_die("vm", "out of memory");
	vm->kvm_fd = vm->vm_fd = -1;     /* no KVM: the rest is real */
	vm->sig_fd = -1;
	/* one vCPU that never started: what stop/cont/quit see before vm_start() */
	vm->nr_cpus = 1;
	vm->vcpus = calloc(1, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		fz_die("vcpus", "out of memory");
	vm->vcpus[0].vm = vm;
	vm->vcpus[0].fd = -1;
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	if (mm_create(&vm->mem, &mc, err, sizeof(err)))
		fz_die("mm_create", err);
	if (mmgr_create(&vm->mem, NULL, NULL, NULL, &vm->mgr, err, sizeof(err)))
		fz_die("mmgr_create", err);
	if (loop) {
		vm->loop = loop_new();
		if (!vm->loop)
			fz_die("loop_new", "failed");
		if (machine_qmp_init(vm, err, sizeof(err)))
			fz_die("machine_qmp_init", err);
	}
	if (balloon_opts && balloon_create(vm, balloon_opts, err, sizeof(err)))
		fz_die("balloon_create", err);
	if (loop && (mmgr_qmp_register(vm->qmp_reg, vm->mgr) ||
		     balloon_qmp_register(vm->qmp_reg, vm->balloon)))
		fz_die("qmp registration", "failed");
	return vm;
}

void fz_vm_free(struct vm *vm)
{
	balloon_destroy(vm);
	if (vm->qmp_reg)
		machine_qmp_fini(vm);
	mmgr_destroy(vm->mgr);
	io_bus_free(&vm->mmio);
	if (vm->loop)
		loop_free(vm->loop);
	mm_destroy(&vm->mem);
	free(vm->vcpus);
	free(vm);
}
