/*
 * Unit tests of the main event loop (vmm/loop.c): timers, thread-safe stop,
 * handlers removed while their events are pending, timer re-arming.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/lib/clock.h"
#include "vmm/lib/loop.h"

struct counter {
	struct event_loop *lp;
	int calls;
	int stop_at;
};

static void count_and_stop(void *opaque, uint32_t events)
{
	struct counter *c = opaque;
	if (++c->calls == c->stop_at)
		loop_stop(c->lp);
}

static void test_timer_fires_periodically(void **state)
{
	struct event_loop *lp = loop_new();
	assert_non_null(lp);
	struct counter c = { .lp = lp, .stop_at = 5 };
	int fd = loop_add_timer(lp, 5 * 1000000ULL, count_and_stop, &c);
	assert_true(fd >= 0);
	uint64_t t0 = now_ns();
	assert_int_equal(loop_run(lp), 0);
	assert_int_equal(c.calls, 5);
	/* five 5 ms periods cannot be over in less than 25 ms */
	assert_true(now_ns() - t0 >= 24 * 1000000ULL);
	assert_int_equal(loop_del(lp, fd), 0);
	loop_free(lp);
}

static void *stop_later(void *arg)
{
	usleep(50 * 1000);
	loop_stop(arg);
	return NULL;
}

static void test_stop_from_another_thread(void **state)
{
	struct event_loop *lp = loop_new();
	pthread_t t;
	uint64_t t0 = now_ns();
	assert_int_equal(pthread_create(&t, NULL, stop_later, lp), 0);
	assert_int_equal(loop_run(lp), 0);  /* nothing else registered: only the stop wakes it */
	uint64_t took = now_ns() - t0;
	pthread_join(t, NULL);
	assert_true(took >= 40 * 1000000ULL && took < 2000 * 1000000ULL);
	loop_free(lp);
}

static void test_stop_before_run_returns_at_once(void **state)
{
	struct event_loop *lp = loop_new();
	loop_stop(lp);
	assert_int_equal(loop_run(lp), 0);
	loop_free(lp);
}

struct pair {
	struct event_loop *lp;
	int fds[2][2];  /* two pipes */
	int calls;
};

/* Whichever handler runs first removes and closes the other, whose event is pending. */
static void remove_other(void *opaque, uint32_t events)
{
	struct pair *p = opaque;
	p->calls++;
	for (int i = 0; i < 2; i++) {
		if (p->fds[i][0] >= 0 && loop_del(p->lp, p->fds[i][0]) == 0) {
			char ch;
			assert_int_equal(read(p->fds[i][0], &ch, 1), 1);
			close(p->fds[i][0]);
			p->fds[i][0] = -1;
		}
	}
	loop_stop(p->lp);
}

static void test_handler_removed_while_pending(void **state)
{
	struct pair p = { .lp = loop_new() };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe(p.fds[i]), 0);
		assert_int_equal(write(p.fds[i][1], "x", 1), 1);
		assert_int_equal(loop_add(p.lp, p.fds[i][0], EPOLLIN, remove_other, &p), 0);
	}
	/* A new handler may reuse the removed fd number inside the same batch. */
	assert_int_equal(loop_run(p.lp), 0);
	assert_int_equal(p.calls, 1);
	for (int i = 0; i < 2; i++)
		close(p.fds[i][1]);
	loop_free(p.lp);
}

struct disarm {
	struct event_loop *lp;
	int timer_fd;
	int calls;
};

static void disarm_self(void *opaque, uint32_t events)
{
	struct disarm *d = opaque;
	d->calls++;
	assert_int_equal(loop_timer_set(d->timer_fd, 0), 0);
}

static void test_timer_disarm_and_rearm(void **state)
{
	struct event_loop *lp = loop_new();
	struct disarm d = { .lp = lp };
	d.timer_fd = loop_add_timer(lp, 2 * 1000000ULL, disarm_self, &d);
	assert_true(d.timer_fd >= 0);
	struct counter stop = { .lp = lp, .stop_at = 1 };
	int sfd = loop_add_timer(lp, 60 * 1000000ULL, count_and_stop, &stop);
	assert_true(sfd >= 0);
	assert_int_equal(loop_run(lp), 0);
	assert_int_equal(d.calls, 1);  /* disarmed after its first expiry */
	loop_free(lp);                 /* also closes both timers */
}

static void test_bad_arguments(void **state)
{
	struct event_loop *lp = loop_new();
	assert_int_equal(loop_del(lp, 12345), -ENOENT);
	assert_true(loop_add(lp, -1, EPOLLIN, count_and_stop, NULL) < 0);
	assert_true(loop_add(lp, 999, EPOLLIN, count_and_stop, NULL) < 0);  /* not open */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(loop_add(lp, fds[0], EPOLLIN, count_and_stop, NULL), 0);
	assert_int_equal(loop_add(lp, fds[0], EPOLLIN, count_and_stop, NULL), -EEXIST);
	assert_int_equal(loop_del(lp, fds[0]), 0);
	assert_int_equal(loop_del(lp, fds[0]), -ENOENT);
	close(fds[0]);
	close(fds[1]);
	loop_free(lp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_fires_periodically),
		cmocka_unit_test(test_stop_from_another_thread),
		cmocka_unit_test(test_stop_before_run_returns_at_once),
		cmocka_unit_test(test_handler_removed_while_pending),
		cmocka_unit_test(test_timer_disarm_and_rearm),
		cmocka_unit_test(test_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
