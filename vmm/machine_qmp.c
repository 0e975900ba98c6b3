/*
 * machine_qmp: the VM's QMP monitor. Binds a server (vmm/qmp/server.c,
 * which knows nothing of VMs) to one VM: creation and teardown, where
 * events for the VM go, what `quit` does, and the commands that answer
 * about the VM as a whole (query-status, quit, query-memory-size-summary,
 * query-kvm, query-cpus-fast).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mm/manager.h"
#include "vmm/machine.h"
#include "vmm/qmp/qmp.h"
#include "vmm/qmp/server.h"

/*
 * Guards vm->qmp as seen by emitters on other threads, so a thread emitting
 * while the server is destroyed either queues before the teardown or sees
 * no server; never a freed one. One VM per process makes one lock enough.
 */
static pthread_mutex_t machine_qmp_lock = PTHREAD_MUTEX_INITIALIZER;

/* `quit` stops the VM once its reply went out. */
static void machine_qmp_quit(struct vm *vm)
{
	vm_request_exit(vm, 0);
}

int qmp_server_create(struct vm *vm, const char *spec, char *err, size_t errlen)
{
	struct qmp_server *srv;

	if (!vm || !vm->loop || !spec) {
		snprintf(err, errlen, "qmp: no event loop or socket path");
		return -EINVAL;
	}
	int ret = qmp_server_open(&srv, vm->loop, spec, vm, machine_qmp_quit, err, errlen);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&machine_qmp_lock);
	vm->qmp = srv;
	pthread_mutex_unlock(&machine_qmp_lock);
	return 0;
}

void qmp_server_destroy(struct vm *vm)
{
	struct qmp_server *srv = vm ? vm->qmp : NULL;
	if (!srv)
		return;

	qmp_server_shutdown(srv);
	pthread_mutex_lock(&machine_qmp_lock);
	vm->qmp = NULL;
	pthread_mutex_unlock(&machine_qmp_lock);
	qmp_server_free(srv);
}

void qmp_emit_event(struct vm *vm, const char *name, json_t *data)
{
	if (!vm || !name) {
		json_decref(data);
		return;
	}
	pthread_mutex_lock(&machine_qmp_lock);
	if (vm->qmp)
		qmp_server_emit(vm->qmp, name, data);
	else
		json_decref(data);
	pthread_mutex_unlock(&machine_qmp_lock);
}

/* ---- commands about the whole VM ---- */

static json_t *qmp_cmd_query_status(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	bool running = atomic_load(&vm->state) == VM_RUNNING;
	return json_pack("{s:s,s:b,s:b}", "status", running ? "running" : "shutdown",
			 "singlestep", 0, "running", running);
}
QMP_COMMAND("query-status", qmp_cmd_query_status)

static json_t *qmp_cmd_quit(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	if (vm->qmp)
		qmp_server_quit_after_reply(vm->qmp);
	else
		vm_request_exit(vm, 0);
	qmp_emit_event(vm, "SHUTDOWN", json_pack("{s:b,s:s}", "guest", 0, "reason", "host-qmp-quit"));
	return json_object();
}
QMP_COMMAND("quit", qmp_cmd_quit)

static json_t *qmp_cmd_query_memory_size_summary(struct vm *vm, json_t *args, char *err,
						 size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	return json_pack("{s:I,s:I}", "base-memory", (json_int_t)vm->mem.ram_size,
			 "plugged-memory", (json_int_t)0);
}
QMP_COMMAND("query-memory-size-summary", qmp_cmd_query_memory_size_summary)

static json_t *qmp_cmd_query_kvm(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	return json_pack("{s:b,s:b}", "enabled", 1, "present", 1);
}
QMP_COMMAND("query-kvm", qmp_cmd_query_kvm)

static json_t *qmp_cmd_query_cpus_fast(struct vm *vm, json_t *args, char *err, size_t errlen)
{
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
QMP_COMMAND("query-cpus-fast", qmp_cmd_query_cpus_fast)


/* The memory manager's commands take the manager (mm never sees the VM). */
static json_t *qmp_cmd_query_memory_manager(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	return mm_qmp_query(vm->mgr, args, err, errlen);
}
QMP_COMMAND("query-memory-manager", qmp_cmd_query_memory_manager)

static json_t *qmp_cmd_mm_reclaim(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	return mm_qmp_reclaim(vm->mgr, args, err, errlen);
}
QMP_COMMAND("mm-reclaim", qmp_cmd_mm_reclaim)

static json_t *qmp_cmd_mm_set_resident_target(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	return mm_qmp_set_resident_target(vm->mgr, args, err, errlen);
}
QMP_COMMAND("mm-set-resident-target", qmp_cmd_mm_set_resident_target)
