/*
 * events: QMP events queued from any thread for the main loop, bounded so
 * that a stalled main loop costs old events, not unbounded memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/lib/json.h"
#include "vmm/lib/log.h"
#include "vmm/qmp/events.h"

#define QMP_MAX_EVENTS    4096         /* queued events before the oldest are dropped */

int qmp_events_init(struct qmp_event_queue *q)
{
	memset(q, 0, sizeof(*q));
	q->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->fd < 0)
		return -errno;
	pthread_mutex_init(&q->lock, NULL);
	return 0;
}

void qmp_event_free(struct qmp_event *ev)
{
	free(ev->text);
	free(ev);
}

void qmp_events_fini(struct qmp_event_queue *q)
{
	struct qmp_event *ev = q->head;

	while (ev) {
		struct qmp_event *next = ev->next;
		qmp_event_free(ev);
		ev = next;
	}
	q->head = q->tail = NULL;
	if (q->fd >= 0) {
		close(q->fd);
		pthread_mutex_destroy(&q->lock);
	}
	q->fd = -1;
}

void qmp_events_push(struct qmp_event_queue *q, const char *name, json_t *data)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_t *msg = json_pack("{s:s}", "event", name);
	if (msg && data)
		json_object_set_new(msg, "data", data);
	else
		json_decref(data);
	if (msg)
		json_object_set_new(msg, "timestamp",
				    json_pack("{s:I,s:I}", "seconds", (json_int_t)ts.tv_sec,
					      "microseconds", (json_int_t)(ts.tv_nsec / 1000)));
	struct qmp_event *ev = calloc(1, sizeof(*ev));
	if (!ev || !msg || !(ev->text = json_dump_line(msg))) {
		log_err("qmp", "cannot queue event %s: out of memory", name);
		free(ev);
		return;
	}

	pthread_mutex_lock(&q->lock);
	if (q->count == QMP_MAX_EVENTS) {
		struct qmp_event *old = q->head;
		q->head = old->next;
		if (!q->head)
			q->tail = NULL;
		qmp_event_free(old);
		q->count--;
		q->dropped++;
	}
	if (q->tail)
		q->tail->next = ev;
	else
		q->head = ev;
	q->tail = ev;
	q->count++;
	uint64_t one = 1;
	if (write(q->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("qmp", "event eventfd: %s", strerror(errno));
	pthread_mutex_unlock(&q->lock);
}

struct qmp_event *qmp_events_take(struct qmp_event_queue *q, unsigned long *dropped)
{
	pthread_mutex_lock(&q->lock);
	struct qmp_event *ev = q->head;
	*dropped = q->dropped;
	q->head = q->tail = NULL;
	q->count = 0;
	q->dropped = 0;
	pthread_mutex_unlock(&q->lock);
	return ev;
}
