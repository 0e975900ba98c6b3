/*
 * sandbox: per-thread seccomp filters, built with libseccomp. After its
 * set-up each thread of minivmm and minivmm-memd calls sandbox_enter() with
 * the allow-lists of what it does from then on; each subsystem declares the
 * list of its own thread next to that thread's code. A filter installed
 * without TSYNC confines the calling thread only, and the threads it creates
 * later inherit it (filters stack: a call must pass every one of them), so
 * every thread is started before the main thread confines itself.
 *
 * A call no list allows raises SIGSYS (SCMP_ACT_TRAP). The handler writes
 *   minivmm: seccomp: thread NAME made forbidden system call CALL (NR)
 * to stderr and ends the process with status 70 (SANDBOX_EXIT_STATUS),
 * with async-signal-safe calls only. SECCOMP_RET_KILL_PROCESS would end it
 * with no word on stderr (only an audit record, which this kernel keeps
 * in the ring buffer at best), and the issue wants the thread and the call
 * named where the user looks; every filter also carries
 * SECCOMP_FILTER_FLAG_LOG (SCMP_FLTATR_CTL_LOG), so the kernel logs the
 * trapped call as well. No confined thread may call rt_sigaction, so no
 * thread can replace the handler once confined.
 *
 * Sanitizer builds (ASan/UBSan, TSan): their runtimes make calls of their
 * own when they report (symbolizer, /proc/self/maps, LeakSanitizer's ptrace
 * of every thread at exit); those builds add sandbox_sanitizer_extra to
 * every filter, so a report is printed in full rather than cut short by a
 * SIGSYS. Release builds never allow those calls.
 *
 * Threads: sandbox_init() once, on the main thread, before any other
 * thread starts; sandbox_enter() on the thread it confines.
 */
#ifndef MINIVMM_LIB_SANDBOX_H
#define MINIVMM_LIB_SANDBOX_H

#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit status of a process a filter stopped (README "Exit statuses"). */
#define SANDBOX_EXIT_STATUS 70

/* One allowed call; arg >= 0 also requires (argument arg & mask) == val.
 * Several rules for one call allow it when any of them matches. */
struct sb_rule {
	int nr;
	int arg;
	uint64_t mask, val;
};

#define SB_ANYARG (-1)
#define SB_SYS(name) { SCMP_SYS(name), SB_ANYARG, 0, 0 }
#define SB_ARG(name, i, v) { SCMP_SYS(name), (i), ~0ull, (uint64_t)(v) }
#define SB_ARG_MASK(name, i, m, v) { SCMP_SYS(name), (i), (uint64_t)(m), (uint64_t)(v) }
/* ioctl(fd, req): the kernel takes req as an unsigned int, so only the
 * low 32 bits of the register are compared. */
#define SB_IOCTL(req) SB_ARG_MASK(ioctl, 1, 0xffffffffu, (req))

struct sb_list {
	const char *what;            /* for --verbose: whose calls these are */
	const struct sb_rule *rules;
	size_t n;
};

#define SB_LIST(what, arr) ((struct sb_list){ (what), (arr), sizeof(arr) / sizeof((arr)[0]) })

/* What every thread does: allocate memory, wait on futexes, write log
 * lines to stderr, read clocks, exit. */
extern const struct sb_list sandbox_base;
/* What a sanitizer runtime may need when it reports; empty without one. */
extern const struct sb_list sandbox_sanitizer_extra;

/*
 * Sets the process's mode (on unless --seccomp off) and, when on, installs
 * the SIGSYS handler and names the system calls for it (the handler cannot
 * allocate). program prefixes the handler's line ("minivmm"). Set once
 * before any thread starts and read-only afterwards, like the log level.
 * 0 or -errno.
 */
int sandbox_init(bool on, const char *program);
/* Whether filters are installed (sandbox_init(true, ...) was called). */
bool sandbox_on(void);

/*
 * Confines the calling thread: sandbox_base, sandbox_sanitizer_extra and
 * the lists given (an array of pointers ending with NULL; a NULL entry
 * ends it, so a subsystem passes its callers' lists by pointer) are
 * allowed, anything else traps. thread names it in
 * the handler's line (at most 15 characters are kept). Nothing when the
 * sandbox is off. 0 or -errno (the thread then runs unconfined: callers
 * treat that as a set-up failure).
 */
int sandbox_enter(const char *thread, const struct sb_list *const *lists);
/* The same with two arrays of lists (a thread's own and its callers'). */
int sandbox_enter2(const char *thread, const struct sb_list *const *own,
		   const struct sb_list *const *more);

/*
 * A /proc or /sys file for reading afresh each time: fd was opened during
 * set-up, before any filter, and is read from its start with pread at the
 * stream's own offset (fclose it as usual; fd stays open). With fd <= 0 (never
 * opened: a unit test's hand-made state) the file at path is opened
 * instead, which a confined thread may not do. NULL with errno on failure.
 */
FILE *sandbox_fopen_early(int fd, const char *path);

/*
 * Test builds only (-DMINIVMM_TEST_HOOKS): the thread whose name starts
 * with this prefix makes a forbidden call (socket(2)) right after it is
 * confined, so the tests see the handler's line and status. Release
 * builds have no such hook.
 */
#ifdef MINIVMM_TEST_HOOKS
void sandbox_test_forbid(const char *thread_prefix);
#endif

#endif
