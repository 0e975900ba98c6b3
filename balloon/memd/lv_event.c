/*
 * memd lv_event: libvirt's event implementation on the daemon's epoll loop
 * (vmm/lib/loop.h), so libvirt's sockets, keepalive timers and domain-event
 * dispatch run on the main thread with everything else and the daemon
 * stays single-threaded.
 *
 * libvirt asks for file handles (watch an fd for READABLE/WRITABLE) and
 * timeouts (every N ms; 0 = on every loop pass; -1 = off). A handle becomes
 * a loop handler on a dup() of its fd, because epoll refuses the same fd
 * twice and libvirt may watch one fd more than once; a timeout becomes one
 * of the loop's timerfds (0 ms = a 1 ns period, fired on each pass). A
 * disabled handle or timeout is taken off the loop, not left to wake it.
 *
 * libvirt's free callbacks (virFreeCallback) must not run inside the
 * libvirt call that removed the handle (libvirt may hold its locks): they
 * are queued and run from the loop through an eventfd, or at detach.
 *
 * State: libvirt's event callbacks carry no context and virEventRegisterImpl
 * can be called once per process, so the registry below is process-wide;
 * it belongs to the main thread (libvirt calls these functions from the
 * thread making a libvirt call, which is the main thread here).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "balloon/memd/memd.h"
#include "vmm/lib/loop.h"

struct lv_handle {
	int watch;                  /* libvirt's id for it */
	int fd;                     /* libvirt's fd */
	int efd;                    /* our dup in the loop; -1 while not in it */
	int events;                 /* VIR_EVENT_HANDLE_* wanted; 0 = disabled */
	virEventHandleCallback cb;
	void *opaque;
	virFreeCallback ff;
	struct lv_handle *next;
};

struct lv_timeout {
	int timer;                  /* libvirt's id */
	int ms;                     /* -1 off, 0 every pass, else the period */
	int tfd;                    /* the loop's timerfd; -1 while not in it */
	virEventTimeoutCallback cb;
	void *opaque;
	virFreeCallback ff;
	struct lv_timeout *next;
};

struct lv_free {
	virFreeCallback ff;
	void *opaque;
	struct lv_free *next;
};

static struct {
	bool registered;
	struct event_loop *lp;      /* NULL while detached */
	int free_fd;                /* eventfd: frees are pending */
	int next_id;
	struct lv_handle *handles;
	struct lv_timeout *timeouts;
	struct lv_free *frees;
} ev = { .free_fd = -1 };

static uint32_t to_epoll(int e)
{
	return (e & VIR_EVENT_HANDLE_READABLE ? EPOLLIN : 0) | (e & VIR_EVENT_HANDLE_WRITABLE ? EPOLLOUT : 0);
}

static int from_epoll(uint32_t e)
{
	return (e & EPOLLIN ? VIR_EVENT_HANDLE_READABLE : 0) | (e & EPOLLOUT ? VIR_EVENT_HANDLE_WRITABLE : 0) |
	       (e & EPOLLERR ? VIR_EVENT_HANDLE_ERROR : 0) | (e & EPOLLHUP ? VIR_EVENT_HANDLE_HANGUP : 0);
}

static void queue_free(virFreeCallback ff, void *opaque)
{
	struct lv_free *f;
	uint64_t one = 1;

	if (!ff)
		return;
	f = malloc(sizeof(*f));
	if (!f)
		return;  /* a leak of libvirt's opaque beats running it under libvirt's lock */
	*f = (struct lv_free){ .ff = ff, .opaque = opaque, .next = ev.frees };
	ev.frees = f;
	/* a failed write means the counter is full: a wake-up is pending anyway */
	if (ev.free_fd >= 0 && write(ev.free_fd, &one, sizeof(one)) < 0)
		return;
}

static void run_frees(void)
{
	while (ev.frees) {
		struct lv_free *f = ev.frees;

		ev.frees = f->next;
		f->ff(f->opaque);
		free(f);
	}
}

static void on_frees(void *opaque, uint32_t events)
{
	uint64_t n;

	/* EAGAIN: already drained; the frees are run either way */
	if (read(ev.free_fd, &n, sizeof(n)) < 0)
		n = 0;
	run_frees();
}

static void on_handle(void *opaque, uint32_t events)
{
	struct lv_handle *h = opaque;

	h->cb(h->watch, h->fd, from_epoll(events), h->opaque);
}

static void on_timeout(void *opaque, uint32_t events)
{
	struct lv_timeout *t = opaque;

	t->cb(t->timer, t->opaque);
}

/* Puts h into the loop or takes it out, as its events say. */
static void handle_sync(struct lv_handle *h)
{
	if (h->efd >= 0) {
		loop_del(ev.lp, h->efd);
		close(h->efd);
		h->efd = -1;
	}
	if (!ev.lp || !h->events)
		return;
	h->efd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
	if (h->efd < 0)
		return;
	if (loop_add(ev.lp, h->efd, to_epoll(h->events), on_handle, h) < 0) {
		close(h->efd);
		h->efd = -1;
	}
}

static void timeout_sync(struct lv_timeout *t)
{
	uint64_t ns = t->ms < 0 ? 0 : t->ms == 0 ? 1 : (uint64_t)t->ms * 1000000ULL;

	if (!ev.lp) {
		t->tfd = -1;
		return;
	}
	if (t->tfd < 0) {
		int fd = loop_add_timer(ev.lp, ns, on_timeout, t);

		t->tfd = fd < 0 ? -1 : fd;
	} else {
		loop_timer_set(t->tfd, ns);
	}
}

static int add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff)
{
	struct lv_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return -1;
	*h = (struct lv_handle){ .watch = ++ev.next_id, .fd = fd, .efd = -1, .events = events, .cb = cb,
				 .opaque = opaque, .ff = ff, .next = ev.handles };
	ev.handles = h;
	handle_sync(h);
	return h->watch;
}

static void update_handle(int watch, int events)
{
	for (struct lv_handle *h = ev.handles; h; h = h->next)
		if (h->watch == watch) {
			if (h->events != events) {
				h->events = events;
				handle_sync(h);
			}
			return;
		}
}

static int remove_handle(int watch)
{
	for (struct lv_handle **pp = &ev.handles; *pp; pp = &(*pp)->next) {
		struct lv_handle *h = *pp;

		if (h->watch != watch)
			continue;
		*pp = h->next;
		h->events = 0;
		handle_sync(h);   /* off the loop: it is never dispatched again, so h can go now */
		queue_free(h->ff, h->opaque);
		free(h);
		return 0;
	}
	return -1;
}

static int add_timeout(int ms, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
	struct lv_timeout *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	*t = (struct lv_timeout){ .timer = ++ev.next_id, .ms = ms, .tfd = -1, .cb = cb, .opaque = opaque,
				  .ff = ff, .next = ev.timeouts };
	ev.timeouts = t;
	timeout_sync(t);
	return t->timer;
}

static void update_timeout(int timer, int ms)
{
	for (struct lv_timeout *t = ev.timeouts; t; t = t->next)
		if (t->timer == timer) {
			t->ms = ms;
			timeout_sync(t);
			return;
		}
}

static int remove_timeout(int timer)
{
	for (struct lv_timeout **pp = &ev.timeouts; *pp; pp = &(*pp)->next) {
		struct lv_timeout *t = *pp;

		if (t->timer != timer)
			continue;
		*pp = t->next;
		/* the loop closes its timerfd and never dispatches a removed handler */
		if (t->tfd >= 0 && ev.lp)
			loop_del(ev.lp, t->tfd);
		queue_free(t->ff, t->opaque);
		free(t);
		return 0;
	}
	return -1;
}

int memd_lv_events_attach(struct event_loop *lp, char *err, size_t errlen)
{
	if (ev.lp == lp)
		return 0;
	if (ev.lp)
		memd_lv_events_detach();
	if (ev.free_fd < 0) {
		ev.free_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ev.free_fd < 0) {
			int r = -errno;

			snprintf(err, errlen, "libvirt events: eventfd: %s", strerror(errno));
			return r;
		}
	}
	if (loop_add(lp, ev.free_fd, EPOLLIN, on_frees, NULL) < 0) {
		snprintf(err, errlen, "libvirt events: cannot watch the eventfd");
		return -ENOMEM;
	}
	ev.lp = lp;
	for (struct lv_handle *h = ev.handles; h; h = h->next)
		handle_sync(h);
	for (struct lv_timeout *t = ev.timeouts; t; t = t->next)
		timeout_sync(t);
	if (!ev.registered) {
		/* before any connection opens: libvirt's remote driver and events need it */
		virEventRegisterImpl(add_handle, update_handle, remove_handle, add_timeout, update_timeout,
				     remove_timeout);
		ev.registered = true;
	}
	return 0;
}

void memd_lv_events_detach(void)
{
	if (!ev.lp)
		return;
	for (struct lv_handle *h = ev.handles; h; h = h->next)
		if (h->efd >= 0) {
			loop_del(ev.lp, h->efd);
			close(h->efd);
			h->efd = -1;
		}
	for (struct lv_timeout *t = ev.timeouts; t; t = t->next)
		if (t->tfd >= 0) {
			loop_del(ev.lp, t->tfd);
			t->tfd = -1;
		}
	loop_del(ev.lp, ev.free_fd);
	ev.lp = NULL;
	/* no libvirt call is in progress here: the frees are safe now */
	run_frees();
}
