/*
 * machine: assembles one VM from its config and takes it apart again. It
 * owns the order of the steps (KVM VM before RAM's memslots, devices before
 * the image so the boot info lists them, the manager's threads last) and the
 * built-in exit port, which turns a guest write into the VM's exit status.
 * Built-in devices: the exit port, the UART, the i8042 (Linux's reset
 * without ACPI), the ACPI power-off and reset registers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/balloon.h"
#include "mm/manager.h"
#include "mm/translate.h"
#include "vmm/boot/boot.h"
#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/uart.h"
#include "vmm/kvm/stats.h"
#include "vmm/lib/clock.h"
#include "vmm/lib/log.h"
#include "vmm/lib/loop.h"
#include "vmm/lib/stop.h"
#include "vmm/machine.h"
#include "vmm/qmp/server.h"

static void exit_port_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	/* Statuses from 64 up are minivmm's own (lib/stop.h): keep them apart. */
	if (data[0] > STOP_GUEST_MAX)
		log_err("vmm", "the guest exited with status %u; exiting with %d (statuses above %d "
			"are minivmm's own)", data[0], STOP_GUEST_MAX, STOP_GUEST_MAX);
	vm_request_exit(vm, data[0] > STOP_GUEST_MAX ? STOP_GUEST_MAX : data[0]);
}

int vm_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->mem.fd = -1;
	vm->pio.name = "pio";
	vm->mmio.name = "mmio";
	vm->start_ns = now_ns();
	atomic_store(&vm->state, VM_RUNNING);

	ret = kvm_vm_init(vm, err, errlen);
	if (ret)
		return ret;
	ret = mm_create(&vm->mem, &cfg->mem, err, errlen);
	if (ret)
		return ret;
	ret = kvm_vm_set_memory(vm, err, errlen);
	if (ret)
		return ret;

	vm->loop = loop_new();
	if (!vm->loop) {
		snprintf(err, errlen, "cannot create the event loop: %s", strerror(errno));
		return -ENOMEM;
	}
	ret = io_bus_register(&vm->pio, MINIVMM_EXIT_PORT, 4, exit_port_io, vm, "exit-port");
	if (!ret)
		ret = uart_init(vm);
	if (!ret)
		ret = i8042_init(vm);
	if (!ret)
		ret = acpi_pm_init(vm);
	if (ret) {
		snprintf(err, errlen, "cannot register built-in devices: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

int vm_load(struct vm *vm, char *err, size_t errlen)
{
	int ret, i;

	ret = boot_load(vm, err, errlen);
	if (ret)
		return ret;

	vm->nr_cpus = vm->cfg.nr_cpus;
	vm->vcpus = calloc((size_t)vm->nr_cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (i = 0; i < vm->nr_cpus; i++) {
		ret = vcpu_create(vm, &vm->vcpus[i], i);
		if (ret) {
			snprintf(err, errlen, "cannot create vCPU %d: %s", i, strerror(-ret));
			return ret;
		}
	}
	/* boot info needs the TSC rate, known once a vCPU exists */
	ret = boot_setup(vm, err, errlen);
	if (ret)
		return ret;
	for (i = 0; i < vm->nr_cpus; i++) {
		ret = vcpu_setup_regs(&vm->vcpus[i]);
		if (ret) {
			snprintf(err, errlen, "cannot set up vCPU %d registers: %s", i, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

void vm_destroy(struct vm *vm)
{
	kvm_vm_close(vm);
	mm_destroy(&vm->mem);
	if (vm->loop)
		loop_free(vm->loop);
	vm->loop = NULL;
	io_bus_free(&vm->pio);
	io_bus_free(&vm->mmio);
	uart_destroy(vm);
	i8042_destroy(vm);
	acpi_pm_destroy(vm);
}

/* ---- what the memory manager gets from the VM (mm/manager.h) ---- */

static int machine_mm_dirty_log(void *opaque, bool on)
{
	return kvm_vm_dirty_log(opaque, on);
}

static int machine_mm_dirty_fetch(void *opaque, int region, uint64_t *bitmap)
{
	return kvm_vm_dirty_fetch(opaque, region, bitmap);
}

static int machine_mm_stat(void *opaque, const char *name, uint64_t *val)
{
	struct vm *vm = opaque;

	return vm->stats ? kvm_stats_get(vm->stats, name, val) : -ENOENT;
}

static void machine_mm_stop(void *opaque, enum stop_reason why)
{
	vm_request_exit(opaque, stop_status(why));
}

static int machine_mm_cpu_count(void *opaque)
{
	struct vm *vm = opaque;

	return vm->vcpus ? vm->nr_cpus : 0;
}

/*
 * Main thread (the inspector's QMP commands). A vCPU inside KVM_RUN holds
 * its vCPU mutex, so KVM_GET_SREGS would wait for its next exit, which a
 * halted guest may never make: pause the VM (as QMP `stop` does, without
 * its events) for the read unless it is paused already.
 */
static int machine_mm_cpu_paging(void *opaque, int cpu, struct mm_cpu_paging *out)
{
	struct vm *vm = opaque;
	bool was_paused;
	int ret;

	if (!vm->vcpus || cpu < 0 || cpu >= vm->nr_cpus)
		return -ENOENT;
	was_paused = vm_paused(vm);
	if (!was_paused) {
		ret = vm_pause(vm);
		if (ret)
			return ret;
	}
	ret = vcpu_get_paging(&vm->vcpus[cpu], &out->cr0, &out->cr3, &out->cr4, &out->efer);
	if (!was_paused)
		vm_resume(vm);
	return ret;
}
/* What the ops above do on the scanner and fault-service threads. */
static const struct sb_list *const machine_mm_sandbox[] = {
	&kvm_sandbox_dirty, &kvm_sandbox_stop, NULL,
};

static const struct mm_vm_ops machine_mm_ops = {
	.dirty_log = machine_mm_dirty_log,
	.dirty_fetch = machine_mm_dirty_fetch,
	.stat = machine_mm_stat,
	.stop = machine_mm_stop,
	.cpu_count = machine_mm_cpu_count,
	.cpu_paging = machine_mm_cpu_paging,
	.sandbox = machine_mm_sandbox,
};

/* Each subsystem registers its QMP commands with its own object as context. */
static int machine_register_commands(struct vm *vm, char *err, size_t errlen)
{
	int ret = mmgr_qmp_register(vm->qmp_reg, vm->mgr);

	if (!ret)
		ret = balloon_qmp_register(vm->qmp_reg, vm->balloon);
	if (ret)
		snprintf(err, errlen, "qmp: cannot register the commands: %s", strerror(-ret));
	return ret;
}

int machine_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
	int ret;

	ret = vm_create(vm, cfg, err, errlen);
	if (!ret)
		ret = machine_qmp_init(vm, err, errlen);
	if (!ret)
		ret = mmgr_create(&vm->mem, &machine_mm_ops, vm, cfg->mm_opts, &vm->mgr, err, errlen);
	if (!ret && !cfg->no_balloon)
		ret = balloon_create(vm, cfg->balloon_opts, err, errlen);
	if (!ret)
		ret = machine_register_commands(vm, err, errlen);
	if (!ret && cfg->qmp_path)
		ret = qmp_server_create(vm, cfg->qmp_path, err, errlen);
	if (!ret)
		ret = vm_load(vm, err, errlen);
	if (!ret)
		ret = mmgr_start(vm->mgr);
	return ret;
}

/* What the machine's parts do on the main thread: the event loop, the QMP
 * monitor, the VM (interrupts, pause, teardown), pages given up or taken
 * back from QMP and timers (the balloon, the memory manager). */
static const struct sb_list *const machine_main_sandbox[] = {
	&loop_sandbox, &qmp_sandbox_server, &kvm_sandbox_main, &kvm_sandbox_stop, &mm_sandbox_guest_ram, NULL,
};

int machine_run(struct vm *vm, const struct sb_list *const *main_sandbox)
{
	int ret = vm_start(vm);

	/* Every thread runs now, each under its own filter; the main thread
	 * goes last, as a thread started after it would inherit its filter. */
	if (ret)
		fprintf(stderr, "minivmm: cannot start vCPUs: %s\n", strerror(-ret));
	else if (main_sandbox && (ret = sandbox_enter2("main", machine_main_sandbox, main_sandbox)) < 0)
		vm_request_exit(vm, stop_status(STOP_INTERNAL));
	else
		loop_run(vm->loop);
	vm_join(vm);
	return ret;
}

void machine_destroy(struct vm *vm)
{
	/* one teardown for every path, so a failed start leaks nothing either */
	qmp_server_destroy(vm);
	if (vm->balloon)
		balloon_destroy(vm);
	mmgr_destroy(vm->mgr);
	vm->mgr = NULL;
	vm_destroy(vm);
	machine_qmp_fini(vm);
}
