/*
 * loop: the main thread's epoll event loop: file descriptors, periodic
 * timers and a thread-safe stop. Knows nothing of VMs.
 *
 * Threads: handlers run on the thread in loop_run() (the main thread).
 * Register and remove on that thread or before loop_run(); loop_stop() is
 * callable from any thread.
 */
#ifndef MINIVMM_LIB_LOOP_H
#define MINIVMM_LIB_LOOP_H

#include <stdint.h>

#include "vmm/lib/sandbox.h"

typedef void (*loop_fn)(void *opaque, uint32_t events);
struct event_loop;

/* The calls of the thread that runs the loop (sandbox.h): epoll, timers
 * (created at run time too: a polling interval set over QMP), reading the
 * timerfds and the stop eventfd. */
extern const struct sb_list loop_sandbox;

struct event_loop *loop_new(void);
void loop_free(struct event_loop *lp);
/* Watches fd for events (EPOLLIN...); fn runs on the main thread. */
int loop_add(struct event_loop *lp, int fd, uint32_t events, loop_fn fn, void *opaque);
int loop_del(struct event_loop *lp, int fd);
/* A periodic (period_ns > 0) timer; returns its fd (>= 0) or -errno.
 * loop_timer_set() re-arms it (0 disarms). */
int loop_add_timer(struct event_loop *lp, uint64_t period_ns, loop_fn fn, void *opaque);
int loop_timer_set(int timer_fd, uint64_t period_ns);
/* loop_del() on a fd from loop_add_timer() also closes it (the loop owns timer
 * fds); timer callbacks need not read the timerfd. Handlers may remove any
 * handler, themselves included. */
/* Runs until loop_stop(); thread-safe stop through an eventfd, sticky: a stop
 * requested before loop_run() makes it return at once. */
int loop_run(struct event_loop *lp);
void loop_stop(struct event_loop *lp);
/* One pass: waits up to timeout_ms (-1 forever) for events and dispatches
 * them; returns how many were dispatched, or -errno. Ignores loop_stop():
 * for callers (tests) that drive the loop themselves. */
int loop_run_once(struct event_loop *lp, int timeout_ms);

#endif
