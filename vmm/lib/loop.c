/*
 * loop: the main thread's event loop. One epoll set; handlers are looked up
 * through epoll_data so dispatch is O(1); timers are timerfds the loop owns;
 * loop_stop() is safe from any thread (an eventfd wakes epoll_wait).
 *
 * A handler removed while events for it are still pending in the current
 * epoll_wait batch is only marked dead and freed after the batch, so a
 * callback may remove itself or any other handler.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "vmm/lib/log.h"
#include "vmm/lib/loop.h"

#define LOOP_MAX_EVENTS 32

struct loop_handler {
	int fd;
	loop_fn fn;
	void *opaque;
	bool is_timer;             /* the loop created the fd and closes it */
	bool dead;
	struct loop_handler *next;
};

struct event_loop {
	int epfd;
	int stop_fd;               /* eventfd written by loop_stop() */
	atomic_bool stopping;
	pthread_mutex_t lock;      /* guards the handler lists (loop_add may run off-thread) */
	struct loop_handler *handlers;
	struct loop_handler *graveyard; /* dead handlers, freed after each batch */
};

static const struct sb_rule loop_rules[] = {
	SB_SYS(epoll_wait), SB_SYS(epoll_pwait), SB_SYS(epoll_ctl), SB_SYS(read), SB_SYS(write),
	SB_SYS(timerfd_create), SB_SYS(timerfd_settime), SB_SYS(close),
};
const struct sb_list loop_sandbox = SB_LIST("loop", loop_rules);

struct event_loop *loop_new(void)
{
	struct event_loop *lp = calloc(1, sizeof(*lp));

	if (!lp)
		return NULL;
	lp->epfd = epoll_create1(EPOLL_CLOEXEC);
	lp->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (lp->epfd < 0 || lp->stop_fd < 0)
		goto fail;
	/* data.ptr == NULL marks the stop eventfd */
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->stop_fd, &ev) < 0)
		goto fail;
	atomic_init(&lp->stopping, false);
	pthread_mutex_init(&lp->lock, NULL);
	return lp;
fail:
	log_err("loop", "cannot create the event loop: %s", strerror(errno));
	if (lp->epfd >= 0)
		close(lp->epfd);
	if (lp->stop_fd >= 0)
		close(lp->stop_fd);
	free(lp);
	return NULL;
}

static void loop_handler_free(struct loop_handler *h)
{
	if (h->is_timer)
		close(h->fd);
	free(h);
}

static void loop_reap(struct event_loop *lp)
{
	pthread_mutex_lock(&lp->lock);
	struct loop_handler *h = lp->graveyard;
	lp->graveyard = NULL;
	pthread_mutex_unlock(&lp->lock);
	while (h) {
		struct loop_handler *next = h->next;
		loop_handler_free(h);
		h = next;
	}
}

void loop_free(struct event_loop *lp)
{
	if (!lp)
		return;
	loop_reap(lp);
	struct loop_handler *h = lp->handlers;
	while (h) {
		struct loop_handler *next = h->next;
		loop_handler_free(h);
		h = next;
	}
	close(lp->stop_fd);
	close(lp->epfd);
	pthread_mutex_destroy(&lp->lock);
	free(lp);
}

static int loop_add_handler(struct event_loop *lp, int fd, uint32_t events,
			    loop_fn fn, void *opaque, bool is_timer)
{
	if (!lp || fd < 0 || !fn)
		return -EINVAL;
	struct loop_handler *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fd = fd;
	h->fn = fn;
	h->opaque = opaque;
	h->is_timer = is_timer;

	pthread_mutex_lock(&lp->lock);
	struct epoll_event ev = { .events = events, .data.ptr = h };
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int ret = -errno;
		pthread_mutex_unlock(&lp->lock);
		free(h);
		return ret;
	}
	h->next = lp->handlers;
	lp->handlers = h;
	pthread_mutex_unlock(&lp->lock);
	return 0;
}

int loop_add(struct event_loop *lp, int fd, uint32_t events, loop_fn fn, void *opaque)
{
	return loop_add_handler(lp, fd, events, fn, opaque, false);
}

int loop_del(struct event_loop *lp, int fd)
{
	if (!lp)
		return -EINVAL;
	pthread_mutex_lock(&lp->lock);
	for (struct loop_handler **pp = &lp->handlers; *pp; pp = &(*pp)->next) {
		struct loop_handler *h = *pp;
		if (h->fd != fd)
			continue;
		*pp = h->next;
		/* The fd may already be closed by its owner; epoll then dropped it itself. */
		epoll_ctl(lp->epfd, EPOLL_CTL_DEL, fd, NULL);
		h->dead = true;
		h->next = lp->graveyard;
		lp->graveyard = h;
		pthread_mutex_unlock(&lp->lock);
		return 0;
	}
	pthread_mutex_unlock(&lp->lock);
	return -ENOENT;
}

int loop_timer_set(int timer_fd, uint64_t period_ns)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = period_ns / 1000000000ULL, .tv_nsec = period_ns % 1000000000ULL },
	};
	its.it_value = its.it_interval;
	return timerfd_settime(timer_fd, 0, &its, NULL) < 0 ? -errno : 0;
}

int loop_add_timer(struct event_loop *lp, uint64_t period_ns, loop_fn fn, void *opaque)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	int ret = loop_timer_set(fd, period_ns);
	if (ret == 0)
		ret = loop_add_handler(lp, fd, EPOLLIN, fn, opaque, true);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

static void loop_dispatch(struct loop_handler *h, uint32_t events)
{
	if (h->is_timer) {
		/* Consume the expiration count so a level-triggered timerfd does not spin. */
		uint64_t expirations;
		if (read(h->fd, &expirations, sizeof(expirations)) != sizeof(expirations))
			return;  /* disarmed or re-armed since epoll_wait: nothing due */
	}
	h->fn(h->opaque, events);
}

int loop_run(struct event_loop *lp)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];

	while (!atomic_load(&lp->stopping)) {
		int n = epoll_wait(lp->epfd, evs, LOOP_MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int ret = -errno;
			log_err("loop", "epoll_wait: %s", strerror(errno));
			return ret;
		}
		for (int i = 0; i < n && !atomic_load(&lp->stopping); i++) {
			struct loop_handler *h = evs[i].data.ptr;
			if (!h) {
				uint64_t v;
				if (read(lp->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_err("loop", "stop eventfd: %s", strerror(errno));
				continue;
			}
			if (!h->dead)
				loop_dispatch(h, evs[i].events);
		}
		loop_reap(lp);
	}
	return 0;
}

int loop_run_once(struct event_loop *lp, int timeout_ms)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int n = epoll_wait(lp->epfd, evs, LOOP_MAX_EVENTS, timeout_ms), done = 0;

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct loop_handler *h = evs[i].data.ptr;

		if (!h) {
			uint64_t v;

			/* a stop request: consumed so it does not wake every pass (the flag stays) */
			if (read(lp->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_err("loop", "stop eventfd: %s", strerror(errno));
			continue;
		}
		if (!h->dead) {
			loop_dispatch(h, evs[i].events);
			done++;
		}
	}
	loop_reap(lp);
	return done;
}

void loop_stop(struct event_loop *lp)
{
	if (!lp)
		return;
	/* The flag is sticky: a stop requested before loop_run() makes it return at once. */
	atomic_store(&lp->stopping, true);
	uint64_t one = 1;
	if (write(lp->stop_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("loop", "stop eventfd: %s", strerror(errno));
}
