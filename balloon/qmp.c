/*
 * balloon/qmp: the balloon's QMP control with QEMU's names and replies:
 * the commands balloon and query-balloon, the QOM object
 * /machine/peripheral/balloon0 (type virtio-balloon-device) with its
 * properties guest-stats and guest-stats-polling-interval, and the
 * BALLOON_CHANGE event. Everything is registered with the balloon itself as
 * context; without a balloon the commands answer DeviceNotActive as QEMU's
 * do and the QOM object does not exist.
 *
 * Threads: handlers and property accessors run on the main thread and take
 * the transport lock; balloon_emit_change() runs on whichever thread changed
 * `actual`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "balloon/balloon.h"
#include "vmm/qmp/qmp.h"

#define BALLOON_QOM_PATH "/machine/peripheral/balloon0"
#define BALLOON_QOM_TYPE "virtio-balloon-device"

#define NOT_ACTIVE(err, errlen) \
	qmp_error(err, errlen, "DeviceNotActive", "No balloon device has been activated")

void balloon_emit_change(struct balloon *b)
{
	if (!b->qmp)
		return;
	qmp_emit_event(b->qmp, "BALLOON_CHANGE",
		       json_pack("{s:I}", "actual", (json_int_t)balloon_actual_bytes(b)));
}

static json_t *qmp_balloon(void *ctx, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "value", NULL };
	struct balloon *b = ctx;

	if (qmp_args_only(args, allowed, err, errlen))
		return NULL;
	json_t *v = json_object_get(args, "value");
	if (!v)
		return qmp_error(err, errlen, NULL, "Parameter 'value' is missing");
	if (!json_is_integer(v))
		return qmp_error(err, errlen, NULL, "Invalid parameter type for 'value', expected: integer");
	if (!b)
		return NOT_ACTIVE(err, errlen);
	json_int_t value = json_integer_value(v);
	if (value <= 0)
		return qmp_error(err, errlen, NULL, "Parameter 'value' expects a size greater than 0");
	if (balloon_set_target(b, (uint64_t)value, err, errlen))
		return NULL;
	return json_object();
}

static json_t *qmp_query_balloon(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct balloon *b = ctx;

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
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

/* ---- QOM properties ---- */

static json_t *bq_get_guest_stats(void *ctx, char *err, size_t errlen)
{
	struct balloon *b = ctx;
	json_t *stats = json_object();

	virtio_mmio_lock(b->vio);
	for (int i = 0; i < BALLOON_NR_STATS; i++)
		json_object_set_new(stats, balloon_stat_names[i], json_integer(b->stats[i]));
	json_int_t last = (json_int_t)b->stats_last_update;
	virtio_mmio_unlock(b->vio);
	return json_pack("{s:o,s:I}", "stats", stats, "last-update", last);
}

static json_t *bq_get_polling_interval(void *ctx, char *err, size_t errlen)
{
	struct balloon *b = ctx;

	virtio_mmio_lock(b->vio);
	json_int_t secs = b->opts.stats_period;
	virtio_mmio_unlock(b->vio);
	return json_integer(secs);
}

/* The router checked that value is an integer; the range is QEMU's. */
static int bq_set_polling_interval(void *ctx, json_t *value, char *err, size_t errlen)
{
	struct balloon *b = ctx;
	json_int_t secs = json_integer_value(value);

	if (secs < 0) {
		qmp_error(err, errlen, NULL, "timer value must be greater than zero");
		return -EINVAL;
	}
	if (secs > UINT32_MAX) {
		qmp_error(err, errlen, NULL, "timer value is too big");
		return -EINVAL;
	}
	virtio_mmio_lock(b->vio);
	int ret = balloon_set_stats_period(b, (uint32_t)secs);
	virtio_mmio_unlock(b->vio);
	if (ret)
		qmp_error(err, errlen, NULL, "cannot set the stats timer: %s", strerror(-ret));
	return ret;
}

static const struct qom_prop balloon_qom_props[] = {
	{ "guest-stats", "guest-stats", bq_get_guest_stats, NULL },
	{ "guest-stats-polling-interval", "int", bq_get_polling_interval, bq_set_polling_interval },
	{ NULL, NULL, NULL, NULL },
};

int balloon_qmp_register(struct qmp_registry *reg, struct balloon *b)
{
	int ret = qmp_register(reg, "balloon", qmp_balloon, b);

	if (!ret)
		ret = qmp_register(reg, "query-balloon", qmp_query_balloon, b);
	if (!ret && b)
		ret = qmp_qom_add(reg, BALLOON_QOM_PATH, BALLOON_QOM_TYPE, balloon_qom_props, b);
	if (!ret && b)
		b->qmp = reg;
	return ret;
}
