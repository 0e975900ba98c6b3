/*
 * dispatch: what the registry (registry.c, async.c, qom.c) and the socket
 * server (server.c) share inside vmm/qmp/: starting a command with a
 * request that may complete later, the request's outcome, where events go,
 * and the worker thread. Nothing outside vmm/qmp/ includes this (unit tests
 * may).
 *
 * Threads: qmp_dispatch() and qmp_registry_attach_events() on the main
 * thread; a request's sink may be called from any thread; the worker's
 * functions from the main thread, its thread runs the handlers.
 */
#ifndef MINIVMM_QMP_DISPATCH_H
#define MINIVMM_QMP_DISPATCH_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "vmm/qmp/qmp.h"

#define QMP_ERR_MAX 512

struct qmp_event_queue;
struct qom_router;
struct qmp_worker;

/* One command from its start to its outcome. The dispatcher (server or
 * qmp_execute) owns it; for asynchronous commands the provider holds it
 * from qmp_dispatch() until qmp_async_done(), which calls sink. */
struct qmp_async {
	void (*sink)(struct qmp_async *req);   /* any thread, once, after the outcome is set */
	void *owner;                           /* the dispatcher's (a client, a waiter) */
	json_t *id;                            /* the client's "id"; main thread only */
	struct qmp_async *next;                /* the dispatcher's queues */
	/* the outcome */
	json_t *ret;                           /* "return" value, NULL: error */
	char err[QMP_ERR_MAX];                 /* message, possibly with a class (qmp_error) */
	/* worker commands: what the worker runs */
	qmp_cmd_fn fn;
	void *ctx;
	json_t *args;                          /* a private copy the worker owns */
};

enum qmp_dispatch_result {
	QMP_DONE,      /* req->ret or req->err is set */
	QMP_PENDING,   /* req->sink will be called once it is */
};

/* Starts the command name with args (borrowed; NULL = none) for req.
 * Unknown names are QMP_DONE with a CommandNotFound error in req->err. */
enum qmp_dispatch_result qmp_dispatch(struct qmp_registry *reg, const char *name,
				      json_t *args, struct qmp_async *req);

/* Where qmp_emit_event() queues events: the server attaches its queue when it
 * opens and detaches (NULL) before it frees it. */
void qmp_registry_attach_events(struct qmp_registry *reg, struct qmp_event_queue *q);

/* The "version" object of the greeting and of query-version. */
json_t *qmp_version_json(void);

/* ---- qom.c ---- */

/* Creates the router and registers qom-get, qom-set and qom-list in reg. */
int qom_router_new(struct qmp_registry *reg, struct qom_router **out);
void qom_router_free(struct qom_router *qr);
/* The router of reg (registry.c). */
struct qom_router *qmp_registry_qom(struct qmp_registry *reg);
int qom_router_add(struct qom_router *qr, const char *path, const char *type,
		   const struct qom_prop *props, void *ctx);

/* ---- the worker (async.c) ---- */

/* Queues req (req->fn, ctx, args set) for the worker thread of *w, starting
 * the thread on first use. When the handler returns, req's outcome is set
 * and req->sink called on the worker thread. 0 or -errno. */
int qmp_worker_submit(struct qmp_worker **w, struct qmp_async *req);
/* Starts the worker now if it does not run yet (main thread, set-up). */
int qmp_worker_prestart(struct qmp_worker **w);
/* Waits for the queued requests to finish, stops the thread, frees *w. */
void qmp_worker_free(struct qmp_worker *w);

#endif
