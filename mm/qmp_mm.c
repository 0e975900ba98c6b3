/*
 * qmp_mm: the memory manager's QMP commands, registered with the manager as
 * their context: query-memory-manager (guest RAM, host residency, balloon
 * and reclaim figures, KVM mappings by size) and mm-set-resident-target
 * {"bytes": N} (0 clears) on the main thread, and mm-reclaim {"bytes": N}
 * (a forced reclaim pass, which can take seconds) on the registry's worker
 * thread, so the monitor keeps serving meanwhile.
 */
#include <errno.h>

#include "mm/manager_priv.h"
#include "vmm/qmp/qmp.h"

static json_t *qmp_query_memory_manager(void *ctx, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	json_t *o = json_object();
	mmgr_query(ctx, o);
	return o;
}

/* Worker thread: mmgr_reclaim() blocks until the scanner finished the pass. */
static json_t *qmp_mm_reclaim(void *ctx, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "bytes", NULL };
	uint64_t bytes = 0;

	if (qmp_args_only(args, allowed, err, errlen))
		return NULL;
	if (qmp_arg_u64(args, "bytes", false, &bytes, err, errlen) == -EINVAL)
		return NULL;
	return mmgr_reclaim(ctx, bytes, err, errlen);
}

static json_t *qmp_mm_set_resident_target(void *ctx, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "bytes", NULL };
	uint64_t bytes;

	if (qmp_args_only(args, allowed, err, errlen) ||
	    qmp_arg_u64(args, "bytes", true, &bytes, err, errlen))
		return NULL;
	if (mmgr_set_resident_target(ctx, bytes, err, errlen))
		return NULL;
	return json_object();
}

/* mm-set-compression {"enabled": bool}: the soak's and an experimenter's switch. */
static json_t *qmp_mm_set_compression(void *ctx, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "enabled", NULL };
	bool on;

	if (qmp_args_only(args, allowed, err, errlen) ||
	    qmp_arg_bool(args, "enabled", true, &on, err, errlen))
		return NULL;
	if (mmgr_set_compression(ctx, on, err, errlen))
		return NULL;
	return json_object();
}

int mmgr_qmp_register(struct qmp_registry *reg, struct mm_manager *m)
{
	int ret = qmp_register(reg, "query-memory-manager", qmp_query_memory_manager, m);

	if (!ret)
		ret = qmp_register(reg, "mm-set-compression", qmp_mm_set_compression, m);
	if (!ret)
		ret = qmp_register(reg, "mm-set-resident-target", qmp_mm_set_resident_target, m);
	if (!ret)
		ret = qmp_register_worker(reg, "mm-reclaim", qmp_mm_reclaim, m);
	if (!ret)
		ret = mm_translate_qmp_register(reg, m);
	return ret;
}
