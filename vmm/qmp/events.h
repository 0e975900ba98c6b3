/*
 * events: the queue of QMP events between the threads that emit them and
 * the main loop that sends them. Internal to vmm/qmp/ (the server embeds
 * one queue); providers emit through qmp_emit_event() in qmp.h.
 *
 * Threads: qmp_events_push() from any thread; take/free on the main thread.
 */
#ifndef MINIVMM_QMP_EVENTS_H
#define MINIVMM_QMP_EVENTS_H

#include <jansson.h>
#include <pthread.h>

struct qmp_event {
	char *text;                /* serialized, "\r\n"-terminated */
	struct qmp_event *next;
};

struct qmp_event_queue {
	pthread_mutex_t lock;      /* guards the list and the counters */
	int fd;                    /* eventfd the main loop watches; written on every push */
	struct qmp_event *head, *tail;
	unsigned int count;
	unsigned long dropped;     /* oldest events dropped because the queue was full */
};

/* An empty queue with its eventfd. 0 or -errno. */
int qmp_events_init(struct qmp_event_queue *q);
/* Frees every queued event and closes the eventfd. */
void qmp_events_fini(struct qmp_event_queue *q);
/* Queues {"event": name, "data": data, "timestamp": now}; data is stolen
 * (NULL: no "data" member). Drops the oldest event when the queue is full. */
void qmp_events_push(struct qmp_event_queue *q, const char *name, json_t *data);
/* Takes every queued event, oldest first, and how many were dropped since
 * the last take. Free each with qmp_event_free(). */
struct qmp_event *qmp_events_take(struct qmp_event_queue *q, unsigned long *dropped);
void qmp_event_free(struct qmp_event *ev);

#endif
