/*
 * balloon/qmp: the balloon's QMP commands with QEMU's names and replies
 * (balloon, query-balloon, qom-get / qom-set of guest-stats and
 * guest-stats-polling-interval on /machine/peripheral/balloon0) and the
 * BALLOON_CHANGE event.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "balloon/balloon.h"
#include "vmm/kvm/kvm.h"
#include "vmm/qmp/qmp.h"

#define BALLOON_QOM_PATH "/machine/peripheral/balloon0"

static json_t *bq_error(char *err, size_t errlen, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static json_t *bq_error(char *err, size_t errlen, const char *cls, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	/* QEMU answers some errors with a class other than GenericError */
	if (cls)
		qmp_set_error_class(cls);
	return NULL;
}

#define NOT_ACTIVE(err, errlen) \
	bq_error(err, errlen, "DeviceNotActive", "No balloon device has been activated")

void balloon_emit_change(struct balloon *b)
{
	if (!b->vm)
		return;
	qmp_emit_event(b->vm, "BALLOON_CHANGE",
		       json_pack("{s:I}", "actual", (json_int_t)balloon_actual_bytes(b)));
}

static json_t *qmp_balloon(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "value", NULL };

	if (qmp_args_only(args, allowed, err, errlen))
		return NULL;
	json_t *v = json_object_get(args, "value");
	if (!v)
		return bq_error(err, errlen, NULL, "Parameter 'value' is missing");
	if (!json_is_integer(v))
		return bq_error(err, errlen, NULL, "Invalid parameter type for 'value', expected: integer");
	if (!vm->balloon)
		return NOT_ACTIVE(err, errlen);
	json_int_t value = json_integer_value(v);
	if (value <= 0)
		return bq_error(err, errlen, NULL, "Parameter 'value' expects a size greater than 0");
	if (balloon_set_target(vm, (uint64_t)value, err, errlen))
		return NULL;
	return json_object();
}
QMP_COMMAND("balloon", qmp_balloon)

static json_t *qmp_query_balloon(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	struct balloon *b = vm->balloon;
	if (!b)
		return NOT_ACTIVE(err, errlen);
	virtio_mmio_lock(b->vio);
	uint64_t actual = balloon_actual_bytes(b);
	virtio_mmio_unlock(b->vio);
	json_t *o = json_pack("{s:I}", "actual", (json_int_t)actual);
	/* QEMU's reply is `actual` alone; clients ignore members they do not
	 * know (QMP spec), so minivmm adds the device's own figures */
	balloon_query(b, o);
	return o;
}
QMP_COMMAND("query-balloon", qmp_query_balloon)

/* Finds the balloon behind a QOM path; NULL with err (as QEMU words it). */
static struct balloon *bq_resolve(struct vm *vm, json_t *args, const char **prop,
				  char *err, size_t errlen)
{
	const char *path;

	if (qmp_arg_str(args, "path", true, &path, err, errlen) ||
	    qmp_arg_str(args, "property", true, prop, err, errlen))
		return NULL;
	if (!vm->balloon || (strcmp(path, BALLOON_QOM_PATH) && strcmp(path, "balloon0"))) {
		bq_error(err, errlen, "DeviceNotFound", "Device '%s' not found", path);
		return NULL;
	}
	return vm->balloon;
}

static json_t *bq_guest_stats(struct balloon *b)
{
	json_t *stats = json_object();

	for (int i = 0; i < BALLOON_NR_STATS; i++)
		json_object_set_new(stats, balloon_stat_names[i], json_integer(b->stats[i]));
	return json_pack("{s:o,s:I}", "stats", stats, "last-update", (json_int_t)b->stats_last_update);
}

static json_t *qmp_qom_get(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "path", "property", NULL };
	const char *prop;
	json_t *ret = NULL;

	if (qmp_args_only(args, allowed, err, errlen))
		return NULL;
	struct balloon *b = bq_resolve(vm, args, &prop, err, errlen);
	if (!b)
		return NULL;
	virtio_mmio_lock(b->vio);
	if (!strcmp(prop, "guest-stats"))
		ret = bq_guest_stats(b);
	else if (!strcmp(prop, "guest-stats-polling-interval"))
		ret = json_integer(b->opts.stats_period);
	virtio_mmio_unlock(b->vio);
	if (!ret)
		return bq_error(err, errlen, NULL, "Property 'virtio-balloon-device.%s' not found", prop);
	return ret;
}
QMP_COMMAND("qom-get", qmp_qom_get)

static json_t *qmp_qom_set(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "path", "property", "value", NULL };
	const char *prop;

	if (qmp_args_only(args, allowed, err, errlen))
		return NULL;
	struct balloon *b = bq_resolve(vm, args, &prop, err, errlen);
	if (!b)
		return NULL;
	json_t *v = json_object_get(args, "value");
	if (!v)
		return bq_error(err, errlen, NULL, "Parameter 'value' is missing");
	if (!strcmp(prop, "guest-stats"))
		return bq_error(err, errlen, NULL, "Property 'virtio-balloon-device.guest-stats' is not writable");
	if (strcmp(prop, "guest-stats-polling-interval"))
		return bq_error(err, errlen, NULL, "Property 'virtio-balloon-device.%s' not found", prop);
	if (!json_is_integer(v))
		return bq_error(err, errlen, NULL, "Invalid parameter type for 'value', expected: integer");
	json_int_t secs = json_integer_value(v);
	if (secs < 0)
		return bq_error(err, errlen, NULL, "timer value must be greater than zero");
	if (secs > UINT32_MAX)
		return bq_error(err, errlen, NULL, "timer value is too big");
	virtio_mmio_lock(b->vio);
	int ret = balloon_set_stats_period(b, (uint32_t)secs);
	virtio_mmio_unlock(b->vio);
	if (ret)
		return bq_error(err, errlen, NULL, "cannot set the stats timer: %s", strerror(-ret));
	return json_object();
}
QMP_COMMAND("qom-set", qmp_qom_set)
