/*
 * registry: one QMP command table per registry instance (each command with
 * its handler, its kind and its owner's context pointer), dispatch of a
 * command for the server or for an in-process caller, where events go, and
 * the protocol's own commands (qmp_capabilities, query-version,
 * query-commands).
 *
 * Threads: the table is written and read on the main thread; the event
 * queue pointer is read by emitters on any thread under event_lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/lib/version.h"
#include "vmm/qmp/dispatch.h"
#include "vmm/qmp/events.h"

enum qmp_kind { QMP_SYNC, QMP_WORKER, QMP_ASYNC };

struct qmp_command {
	char *name;
	enum qmp_kind kind;
	qmp_cmd_fn fn;             /* QMP_SYNC, QMP_WORKER */
	qmp_async_fn afn;          /* QMP_ASYNC */
	void *ctx;
};

struct qmp_registry {
	struct qmp_command *cmds;
	int nr, cap;
	struct qom_router *qom;
	struct qmp_worker *worker; /* started on the first worker command */
	/* Guards events against a server detaching while another thread emits:
	 * an emitter either queues before the detach or sees no queue. */
	pthread_mutex_t event_lock;
	struct qmp_event_queue *events;
};

static struct qmp_command *qmp_find(struct qmp_registry *reg, const char *name)
{
	for (int i = 0; i < reg->nr; i++)
		if (strcmp(reg->cmds[i].name, name) == 0)
			return &reg->cmds[i];
	return NULL;
}

bool qmp_has_command(struct qmp_registry *reg, const char *name)
{
	return qmp_find(reg, name) != NULL;
}

static int qmp_add(struct qmp_registry *reg, struct qmp_command cmd)
{
	if (!reg || !cmd.name || !*cmd.name || (!cmd.fn && !cmd.afn))
		return -EINVAL;
	if (qmp_find(reg, cmd.name))
		return -EEXIST;
	if (reg->nr == reg->cap) {
		int cap = reg->cap ? reg->cap * 2 : 32;
		struct qmp_command *p = realloc(reg->cmds, (size_t)cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		reg->cmds = p;
		reg->cap = cap;
	}
	cmd.name = strdup(cmd.name);
	if (!cmd.name)
		return -ENOMEM;
	reg->cmds[reg->nr++] = cmd;
	return 0;
}

int qmp_register(struct qmp_registry *reg, const char *name, qmp_cmd_fn fn, void *ctx)
{
	return qmp_add(reg, (struct qmp_command){ (char *)name, QMP_SYNC, fn, NULL, ctx });
}

int qmp_register_worker(struct qmp_registry *reg, const char *name, qmp_cmd_fn fn, void *ctx)
{
	int ret = qmp_add(reg, (struct qmp_command){ (char *)name, QMP_WORKER, fn, NULL, ctx });

	/* The worker starts now, during set-up: a thread started once the main
	 * thread is confined would inherit the main thread's filter. */
	return ret ? ret : qmp_worker_prestart(&reg->worker);
}

int qmp_register_async(struct qmp_registry *reg, const char *name, qmp_async_fn fn, void *ctx)
{
	return qmp_add(reg, (struct qmp_command){ (char *)name, QMP_ASYNC, NULL, fn, ctx });
}

struct qom_router *qmp_registry_qom(struct qmp_registry *reg)
{
	return reg->qom;
}

/* ---- dispatch ---- */

static enum qmp_dispatch_result qmp_start_worker(struct qmp_registry *reg,
						 struct qmp_command *cmd, json_t *args,
						 struct qmp_async *req)
{
	/* the worker gets its own copy: jansson objects are not shared across threads */
	req->args = args ? json_deep_copy(args) : json_object();
	req->fn = cmd->fn;
	req->ctx = cmd->ctx;
	int ret = req->args ? qmp_worker_submit(&reg->worker, req) : -ENOMEM;
	if (ret < 0) {
		json_decref(req->args);
		req->args = NULL;
		snprintf(req->err, sizeof(req->err), "cannot start %s: %s", cmd->name, strerror(-ret));
		return QMP_DONE;
	}
	return QMP_PENDING;
}

enum qmp_dispatch_result qmp_dispatch(struct qmp_registry *reg, const char *name,
				      json_t *args, struct qmp_async *req)
{
	struct qmp_command *cmd = qmp_find(reg, name);

	req->ret = NULL;
	req->err[0] = '\0';
	if (!cmd) {
		qmp_error(req->err, sizeof(req->err), "CommandNotFound",
			  "The command %s has not been found", name);
		return QMP_DONE;
	}
	if (cmd->kind == QMP_WORKER)
		return qmp_start_worker(reg, cmd, args, req);

	json_t *empty = args ? NULL : json_object();
	enum qmp_dispatch_result res = QMP_DONE;
	if (cmd->kind == QMP_SYNC) {
		req->ret = cmd->fn(cmd->ctx, args ? args : empty, req->err, sizeof(req->err));
	} else if (cmd->afn(cmd->ctx, args ? args : empty, req, req->err, sizeof(req->err)) == 0) {
		res = QMP_PENDING;
	}
	json_decref(empty);
	if (res == QMP_DONE && !req->ret && !req->err[0])
		snprintf(req->err, sizeof(req->err), "%s failed", name);
	return res;
}

void qmp_async_done(struct qmp_async *req, json_t *ret, const char *err)
{
	req->ret = ret;
	if (!ret)
		snprintf(req->err, sizeof(req->err), "%s", err && *err ? err : "command failed");
	req->sink(req);
}

/* In-process callers wait on a condition variable for a pending command. */
struct qmp_waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void qmp_waiter_sink(struct qmp_async *req)
{
	struct qmp_waiter *w = req->owner;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

json_t *qmp_execute(struct qmp_registry *reg, const char *name, json_t *args,
		    char *err, size_t errlen)
{
	struct qmp_waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };
	struct qmp_async *req = calloc(1, sizeof(*req));
	char cls[64];

	if (!req) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	req->sink = qmp_waiter_sink;
	req->owner = &w;
	if (qmp_dispatch(reg, name, args, req) == QMP_PENDING) {
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock);
		pthread_mutex_unlock(&w.lock);
	}
	json_t *ret = req->ret;
	if (!ret) {
		qmp_error_split(req->err, cls, sizeof(cls));
		snprintf(err, errlen, "%s", req->err);
	}
	free(req);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	return ret;
}

/* ---- events ---- */

void qmp_registry_attach_events(struct qmp_registry *reg, struct qmp_event_queue *q)
{
	pthread_mutex_lock(&reg->event_lock);
	reg->events = q;
	pthread_mutex_unlock(&reg->event_lock);
}

void qmp_emit_event(struct qmp_registry *reg, const char *name, json_t *data)
{
	if (!reg || !name) {
		json_decref(data);
		return;
	}
	pthread_mutex_lock(&reg->event_lock);
	if (reg->events)
		qmp_events_push(reg->events, name, data);
	else
		json_decref(data);
	pthread_mutex_unlock(&reg->event_lock);
}

/* ---- the protocol's own commands ---- */

json_t *qmp_version_json(void)
{
	int major = 0, minor = 0, micro = 0;
	sscanf(MINIVMM_VERSION, "%d.%d.%d", &major, &minor, &micro);
	return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "micro", micro, "minor", minor,
			 "major", major, "package", "minivmm " MINIVMM_VERSION);
}

/* Arguments only: the server itself tracks which clients negotiated. */
static json_t *qmp_cmd_capabilities(void *ctx, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "enable", NULL };
	if (qmp_args_only(args, allowed, err, errlen))
		return NULL;
	json_t *enable = json_object_get(args, "enable");
	if (enable && !json_is_array(enable)) {
		snprintf(err, errlen, "Invalid parameter type for 'enable', expected: array");
		return NULL;
	}
	/* minivmm offers no optional capability (no out-of-band execution) */
	if (json_array_size(enable) > 0) {
		json_t *cap = json_array_get(enable, 0);
		snprintf(err, errlen, "Capability '%s' not available",
			 json_is_string(cap) ? json_string_value(cap) : "?");
		return NULL;
	}
	return json_object();
}

static json_t *qmp_cmd_query_version(void *ctx, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	return qmp_version_json();
}

static json_t *qmp_cmd_query_commands(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct qmp_registry *reg = ctx;

	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	json_t *list = json_array();
	for (int i = 0; list && i < reg->nr; i++)
		json_array_append_new(list, json_pack("{s:s}", "name", reg->cmds[i].name));
	return list;
}

/* ---- life cycle ---- */

int qmp_registry_new(struct qmp_registry **out)
{
	struct qmp_registry *reg = calloc(1, sizeof(*reg));
	int ret;

	if (!reg)
		return -ENOMEM;
	pthread_mutex_init(&reg->event_lock, NULL);
	ret = qmp_register(reg, "qmp_capabilities", qmp_cmd_capabilities, reg);
	if (!ret)
		ret = qmp_register(reg, "query-version", qmp_cmd_query_version, reg);
	if (!ret)
		ret = qmp_register(reg, "query-commands", qmp_cmd_query_commands, reg);
	if (!ret)
		ret = qom_router_new(reg, &reg->qom);
	if (ret) {
		qmp_registry_free(reg);
		return ret;
	}
	*out = reg;
	return 0;
}

void qmp_registry_free(struct qmp_registry *reg)
{
	if (!reg)
		return;
	qmp_worker_free(reg->worker);
	qom_router_free(reg->qom);
	for (int i = 0; i < reg->nr; i++)
		free(reg->cmds[i].name);
	free(reg->cmds);
	pthread_mutex_destroy(&reg->event_lock);
	free(reg);
}
