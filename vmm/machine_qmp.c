/*
 * machine_qmp: the VM's QMP monitor. Owns the VM's command registry
 * (vm->qmp_reg, which exists with or without a socket so the subsystems
 * can register into it), binds a server (vmm/qmp/server.c, which knows
 * nothing of VMs) to it, says what `quit` does, and registers the commands
 * that answer about the VM as a whole, with the VM as their context:
 * query-status, stop, cont, quit, query-memory-size-summary, query-kvm,
 * query-cpus-fast.
 *
 * Threads: everything on the main thread; the handlers run there too.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/lib/macros.h"
#include "vmm/machine.h"
#include "vmm/qmp/qmp.h"
#include "vmm/qmp/server.h"

/* `quit` stops the VM once its reply went out; SHUTDOWN follows the reply,
 * as QEMU's main loop sends it after the command returned. */
static void machine_qmp_quit(void *opaque)
{
	struct vm *vm = opaque;

	qmp_emit_event(vm->qmp_reg, "SHUTDOWN",
		       json_pack("{s:b,s:s}", "guest", 0, "reason", "host-qmp-quit"));
	vm_request_exit(vm, 0);
}

int qmp_server_create(struct vm *vm, const char *spec, char *err, size_t errlen)
{
	if (!vm || !vm->loop || !vm->qmp_reg || !spec) {
		snprintf(err, errlen, "qmp: no event loop, registry or socket path");
		return -EINVAL;
	}
	return qmp_server_open(&vm->qmp, vm->loop, spec, vm->qmp_reg, machine_qmp_quit, vm,
			       err, errlen);
}

void qmp_server_destroy(struct vm *vm)
{
	struct qmp_server *srv = vm ? vm->qmp : NULL;
	if (!srv)
		return;

	qmp_server_shutdown(srv);
	vm->qmp = NULL;
	qmp_server_free(srv);
}

/* ---- commands about the whole VM ---- */

/* QEMU's run states as query-status names them. */
static json_t *qmp_cmd_query_status(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct vm *vm = ctx;
	const char *status = "running";

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	if (atomic_load(&vm->state) != VM_RUNNING)
		status = "shutdown";
	else if (vm_paused(vm))
		status = "paused";
	return json_pack("{s:s,s:b,s:b}", "status", status, "singlestep", 0,
			 "running", strcmp(status, "running") == 0);
}

/* As QEMU: the reply once the vCPUs stopped, STOP only when it was running. */
static json_t *qmp_cmd_stop(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct vm *vm = ctx;

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	if (vm_paused(vm))
		return json_object();
	int ret = vm_pause(vm);
	if (ret == -ESHUTDOWN)
		return qmp_error(err, errlen, NULL, "the VM is shutting down");
	if (ret)
		return qmp_error(err, errlen, NULL, "cannot stop the vCPUs: %s",
				 ret == -ETIMEDOUT ? "a vCPU did not stop within 5 s" : strerror(-ret));
	qmp_emit_event(vm->qmp_reg, "STOP", NULL);
	return json_object();
}

/* As QEMU: `cont` on a running VM succeeds and says nothing. */
static json_t *qmp_cmd_cont(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct vm *vm = ctx;

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	if (!vm_paused(vm))
		return json_object();
	/* RESUME goes out before the vCPUs run, as QEMU sends it */
	qmp_emit_event(vm->qmp_reg, "RESUME", NULL);
	vm_resume(vm);
	return json_object();
}

static json_t *qmp_cmd_quit(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct vm *vm = ctx;

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	if (vm->qmp)
		qmp_server_quit_after_reply(vm->qmp);
	else
		machine_qmp_quit(vm);
	return json_object();
}

static json_t *qmp_cmd_query_memory_size_summary(void *ctx, json_t *args, char *err,
						 size_t errlen)
{
	struct vm *vm = ctx;

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	return json_pack("{s:I,s:I}", "base-memory", (json_int_t)vm->mem.ram_size,
			 "plugged-memory", (json_int_t)0);
}

static json_t *qmp_cmd_query_kvm(void *ctx, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	return json_pack("{s:b,s:b}", "enabled", 1, "present", 1);
}

static json_t *qmp_cmd_query_cpus_fast(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct vm *vm = ctx;

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	json_t *list = json_array();
	for (int i = 0; list && i < vm->nr_cpus; i++) {
		char qom[64];
		snprintf(qom, sizeof(qom), "/machine/unattached/device[%d]", i);
		json_array_append_new(list, json_pack("{s:i,s:s,s:s,s:{s:i,s:i,s:i}}",
			"cpu-index", i, "qom-path", qom, "target", "x86_64",
			"props", "socket-id", i, "core-id", 0, "thread-id", 0));
	}
	return list;
}

/* minivmm's own: the VM's name and what minivmm-memd should give it (a
 * floor and a weight from the domain's metadata; 0 = the daemon's default). */
static json_t *qmp_cmd_query_minivmm(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct vm *vm = ctx;

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	return json_pack("{s:s?,s:I,s:i}", "name", vm->cfg.name, "memd-floor", (json_int_t)vm->cfg.memd_floor,
			 "memd-weight", (int)vm->cfg.memd_weight);
}

static const struct {
	const char *name;
	qmp_cmd_fn fn;
} machine_commands[] = {
	{ "query-minivmm", qmp_cmd_query_minivmm },
	{ "query-status", qmp_cmd_query_status },
	{ "stop", qmp_cmd_stop },
	{ "cont", qmp_cmd_cont },
	{ "quit", qmp_cmd_quit },
	{ "query-memory-size-summary", qmp_cmd_query_memory_size_summary },
	{ "query-kvm", qmp_cmd_query_kvm },
	{ "query-cpus-fast", qmp_cmd_query_cpus_fast },
};

int machine_qmp_init(struct vm *vm, char *err, size_t errlen)
{
	int ret = qmp_registry_new(&vm->qmp_reg);

	for (size_t i = 0; !ret && i < ARRAY_SIZE(machine_commands); i++)
		ret = qmp_register(vm->qmp_reg, machine_commands[i].name, machine_commands[i].fn, vm);
	if (ret)
		snprintf(err, errlen, "qmp: cannot set up the command registry: %s", strerror(-ret));
	return ret;
}

void machine_qmp_fini(struct vm *vm)
{
	qmp_registry_free(vm->qmp_reg);
	vm->qmp_reg = NULL;
}
