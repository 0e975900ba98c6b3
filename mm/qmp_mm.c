/*
 * qmp_mm: the memory manager's QMP commands: query-memory-manager (guest
 * RAM, host residency, balloon and reclaim figures, KVM mappings by size)
 * and mm-reclaim {"bytes": N} (an immediate forced reclaim pass).
 */
#include <errno.h>

#include "mm/manager_priv.h"
#include "vmm/qmp/qmp.h"

/* Referenced from manager.c so that linking the manager links these commands. */
void mm_qmp_link(void)
{
}

static json_t *qmp_query_memory_manager(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	json_t *o;
	uint64_t v;

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	o = json_object();
	if (vm->mgr) {
		mmgr_query(vm->mgr, o);
		return o;
	}
	json_object_set_new(o, "guest-ram", json_integer((json_int_t)vm->mem.ram_size));
	json_object_set_new(o, "host-resident", json_integer((json_int_t)mm_resident_bytes(&vm->mem)));
	if (vm->stats && !kvm_stats_get(vm->stats, "pages_2m", &v))
		json_object_set_new(o, "kvm-pages-2m", json_integer((json_int_t)v));
	return o;
}

static json_t *qmp_mm_reclaim(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "bytes", NULL };
	uint64_t bytes = 0;

	if (qmp_args_only(args, allowed, err, errlen))
		return NULL;
	if (qmp_arg_u64(args, "bytes", false, &bytes, err, errlen) == -EINVAL)
		return NULL;
	return mmgr_reclaim(vm->mgr, bytes, err, errlen);
}

QMP_COMMAND("query-memory-manager", qmp_query_memory_manager)
QMP_COMMAND("mm-reclaim", qmp_mm_reclaim)
