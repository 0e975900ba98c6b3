/*
 * qmp_mm: the memory manager's QMP commands: query-memory-manager (guest
 * RAM, host residency, balloon and reclaim figures, KVM mappings by size)
 * mm-reclaim {"bytes": N} (an immediate forced reclaim pass) and
 * mm-set-resident-target {"bytes": N} (0 clears). They take
 * the manager; the machine registers them with the monitor.
 */
#include <errno.h>

#include "mm/manager_priv.h"
#include "vmm/qmp/qmp.h"

/* Referenced from manager.c so that linking the manager links these commands. */
void mm_qmp_link(void)
{
}

json_t *mm_qmp_query(struct mm_manager *m, json_t *args, char *err, size_t errlen)
{
	json_t *o;

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	o = json_object();
	mmgr_query(m, o);
	return o;
}

json_t *mm_qmp_reclaim(struct mm_manager *m, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "bytes", NULL };
	uint64_t bytes = 0;

	if (qmp_args_only(args, allowed, err, errlen))
		return NULL;
	if (qmp_arg_u64(args, "bytes", false, &bytes, err, errlen) == -EINVAL)
		return NULL;
	return mmgr_reclaim(m, bytes, err, errlen);
}

json_t *mm_qmp_set_resident_target(struct mm_manager *m, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "bytes", NULL };
	uint64_t bytes;

	if (qmp_args_only(args, allowed, err, errlen) ||
	    qmp_arg_u64(args, "bytes", true, &bytes, err, errlen))
		return NULL;
	if (mmgr_set_resident_target(m, bytes, err, errlen))
		return NULL;
	return json_object();
}
