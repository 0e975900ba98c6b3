/*
 * async: the registry's worker thread, which runs the handlers of commands
 * registered with qmp_register_worker() (a forced reclaim can take seconds)
 * so that the main loop keeps serving every client meanwhile. One thread,
 * started on first use, runs queued requests in arrival order: such
 * commands block on the work they wait for, so more threads would only
 * queue inside the provider instead.
 *
 * Threads: qmp_worker_submit() and qmp_worker_free() on the main thread;
 * the "qmp-worker" thread runs the handlers and calls each request's sink.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/lib/log.h"
#include "vmm/lib/sandbox.h"
#include "vmm/qmp/dispatch.h"

struct qmp_worker {
	pthread_t thread;
	pthread_mutex_t lock;      /* guards the queue and stop */
	pthread_cond_t cond;       /* a request was queued, or stop */
	struct qmp_async *head, *tail;
	bool stop;
};

static void qmp_worker_run(struct qmp_async *req, bool confined)
{
	if (confined) {
		req->ret = req->fn(req->ctx, req->args, req->err, sizeof(req->err));
	} else {
		req->ret = NULL;
		snprintf(req->err, sizeof(req->err), "the worker thread could not install its seccomp filter "
			 "(see the log)");
	}
	if (!req->ret && !req->err[0])
		snprintf(req->err, sizeof(req->err), "command failed");
	json_decref(req->args);
	req->args = NULL;
	req->sink(req);
}

/*
 * The worker's own calls: waiting for requests (futex, base) and the
 * sink's completion eventfd write. The handlers that run here block on the
 * provider's own threads (mm-reclaim waits for the scanner), so they need
 * nothing more (strace of test_control's asynchronous reclaim).
 */
static const struct sb_rule qmp_worker_rules[] = {
	SB_SYS(write),
};
static const struct sb_list qmp_worker_sandbox = SB_LIST("qmp-worker", qmp_worker_rules);

static void *qmp_worker_thread(void *arg)
{
	static const struct sb_list *const own[] = { &qmp_worker_sandbox, NULL };
	struct qmp_worker *w = arg;

	/* a worker that could not confine itself (logged) runs no handler:
	 * each request is answered with an error instead */
	bool confined = sandbox_enter("qmp-worker", own) == 0;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		struct qmp_async *req = w->head;
		if (!req)
			break;      /* stop, and everything queued ran */
		w->head = req->next;
		if (!w->head)
			w->tail = NULL;
		req->next = NULL;
		pthread_mutex_unlock(&w->lock);
		qmp_worker_run(req, confined);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int qmp_worker_start(struct qmp_worker **out)
{
	struct qmp_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	int ret = pthread_create(&w->thread, NULL, qmp_worker_thread, w);
	if (ret) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		free(w);
		log_err("qmp", "cannot start the worker thread: %s", strerror(ret));
		return -ret;
	}
	pthread_setname_np(w->thread, "qmp-worker");
	*out = w;
	return 0;
}

int qmp_worker_prestart(struct qmp_worker **wp)
{
	return *wp ? 0 : qmp_worker_start(wp);
}

int qmp_worker_submit(struct qmp_worker **wp, struct qmp_async *req)
{
	if (!*wp) {
		int ret = qmp_worker_start(wp);
		if (ret)
			return ret;
	}
	struct qmp_worker *w = *wp;

	req->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->tail)
		w->tail->next = req;
	else
		w->head = req;
	w->tail = req;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void qmp_worker_free(struct qmp_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}
