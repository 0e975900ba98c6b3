/*
 * sandbox: the mechanism behind every thread's seccomp filter (sandbox.h
 * says why TRAP and a handler rather than KILL_PROCESS). The allow-lists
 * themselves live with the code of each thread; this file holds only what
 * every thread shares and what a sanitizer runtime needs.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/lib/log.h"
#include "vmm/lib/sandbox.h"

/* Above every x86-64 system call number (about 460 in Linux 6.x). */
#define SB_MAX_NR 512

/*
 * The handler's state, written once by sandbox_init() before any thread
 * starts and only read afterwards: the handler may not allocate, so the
 * names of the calls are resolved beforehand.
 */
static bool sb_on;
static const char *sb_program = "minivmm";
static const char *sb_names[SB_MAX_NR];
static __thread char sb_thread[16] = "?";
#ifdef MINIVMM_TEST_HOOKS
static const char *sb_test_prefix;
#endif

/*
 * Every thread: malloc (brk, mmap and friends for its arenas), futexes
 * behind every lock and condition variable, log lines on stderr (fd 2
 * only), clocks when the vDSO falls back, its own end. sched_yield and
 * restart_syscall are what glibc's locks and the kernel's restarts use.
 */
static const struct sb_rule sb_base_rules[] = {
	SB_SYS(brk), SB_SYS(mmap), SB_SYS(munmap), SB_SYS(mremap), SB_SYS(mprotect), SB_SYS(madvise),
	SB_SYS(futex), SB_SYS(sched_yield), SB_SYS(restart_syscall), SB_SYS(rt_sigreturn),
	SB_SYS(rt_sigprocmask),   /* glibc blocks every signal in a thread that ends */
	SB_SYS(clock_gettime), SB_SYS(gettimeofday), SB_SYS(gettid), SB_SYS(getpid),
	SB_SYS(sysinfo), SB_SYS(sched_getaffinity),   /* glibc sizing a new malloc arena */
	SB_ARG(write, 0, 2), SB_ARG(writev, 0, 2),
	SB_SYS(exit), SB_SYS(exit_group),
};
const struct sb_list sandbox_base = SB_LIST("base", sb_base_rules);

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/*
 * A sanitizer report symbolizes (llvm-symbolizer in a child over pipes, or
 * the binary read in-process), reads /proc/self/maps, and LeakSanitizer's
 * exit check runs a tracer thread that ptraces every thread. These are
 * allowed in sanitizer builds only, so a report is printed in full; the
 * tests' forbidden call (socket) is none of them.
 */
static const struct sb_rule sb_sanitizer_rules[] = {
	SB_SYS(open), SB_SYS(openat), SB_SYS(close), SB_SYS(read), SB_SYS(pread64), SB_SYS(write),
	SB_SYS(lseek), SB_SYS(fstat), SB_SYS(newfstatat), SB_SYS(stat), SB_SYS(lstat),
	SB_SYS(readlink), SB_SYS(readlinkat), SB_SYS(getdents), SB_SYS(getdents64), SB_SYS(access), SB_SYS(faccessat2),
	SB_SYS(pipe), SB_SYS(pipe2), SB_SYS(dup), SB_SYS(dup2), SB_SYS(dup3), SB_SYS(fcntl),
	SB_SYS(clone), SB_SYS(clone3), SB_SYS(execve), SB_SYS(wait4), SB_SYS(waitid),
	SB_SYS(ptrace), SB_SYS(prctl), SB_SYS(kill), SB_SYS(tgkill), SB_SYS(getppid),
	SB_SYS(sched_getaffinity), SB_SYS(sigaltstack), SB_SYS(rt_sigaction), SB_SYS(rt_sigprocmask),
	SB_SYS(uname), SB_SYS(getrlimit), SB_SYS(prlimit64), SB_SYS(setrlimit),
	SB_SYS(process_vm_readv), SB_SYS(nanosleep), SB_SYS(clock_nanosleep), SB_SYS(getrusage),
	SB_SYS(set_robust_list), SB_SYS(rseq), SB_SYS(getcwd), SB_SYS(poll), SB_SYS(ppoll),
	SB_SYS(unlink), SB_SYS(getuid), SB_SYS(geteuid), SB_SYS(sysinfo), SB_SYS(mincore),
	SB_IOCTL(TCGETS),   /* isatty(), whether to colour the report */
};
const struct sb_list sandbox_sanitizer_extra = SB_LIST("sanitizer", sb_sanitizer_rules);
#else
const struct sb_list sandbox_sanitizer_extra = { "sanitizer", NULL, 0 };
#endif

static size_t sb_append(char *buf, size_t len, size_t cap, const char *s)
{
	while (*s && len < cap)
		buf[len++] = *s++;
	return len;
}

/* SIGSYS from a filter: one line, then the end of the process. Only
 * async-signal-safe calls; exit_group directly, because a sanitizer's
 * _exit interceptor would run its leak check from here. */
static void sb_sigsys(int sig, siginfo_t *si, void *uc)
{
	char line[256], num[24];
	size_t len = 0, i = sizeof(num) - 1;
	int nr = si->si_syscall;
	unsigned v = nr < 0 ? 0u : (unsigned)nr;

	(void)sig;
	(void)uc;
	num[i] = '\0';
	do {
		num[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i);
	len = sb_append(line, len, sizeof(line), sb_program);
	len = sb_append(line, len, sizeof(line), ": seccomp: thread ");
	len = sb_append(line, len, sizeof(line), sb_thread);
	len = sb_append(line, len, sizeof(line), " made forbidden system call ");
	len = sb_append(line, len, sizeof(line), nr >= 0 && nr < SB_MAX_NR && sb_names[nr] ? sb_names[nr] : "?");
	len = sb_append(line, len, sizeof(line), " (");
	len = sb_append(line, len, sizeof(line), num + i);
	len = sb_append(line, len, sizeof(line), "); the process ends (status 70). "
			"If this call is legitimate, it is missing from that thread's allow-list; "
			"--seccomp off runs without filters (unsafe)\n");
	if (write(2, line, len) < 0) {
		/* nothing left to tell anyone */
	}
	syscall(SYS_exit_group, SANDBOX_EXIT_STATUS);
}

int sandbox_init(bool on, const char *program)
{
	struct sigaction sa;

	sb_on = on;
	if (program)
		sb_program = program;
	if (!on)
		return 0;
	for (int nr = 0; nr < SB_MAX_NR; nr++)
		sb_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sb_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

bool sandbox_on(void)
{
	return sb_on;
}

#ifdef MINIVMM_TEST_HOOKS
void sandbox_test_forbid(const char *thread_prefix)
{
	sb_test_prefix = thread_prefix;
}
#endif

/* A stream over an early descriptor: each read is a pread at the stream's
 * own offset, so it starts at the file's beginning whatever the descriptor
 * was used for before, and a reader that stops early reads no further. */
struct sb_early {
	int fd;
	off_t off;
};

static ssize_t sb_early_read(void *cookie, char *buf, size_t size)
{
	struct sb_early *e = cookie;
	ssize_t n;

	do
		n = pread(e->fd, buf, size, e->off);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		e->off += n;
	return n;
}

static int sb_early_close(void *cookie)
{
	free(cookie);
	return 0;
}

FILE *sandbox_fopen_early(int fd, const char *path)
{
	static const cookie_io_functions_t io = { .read = sb_early_read, .close = sb_early_close };
	struct sb_early *e;
	FILE *f;

	if (fd <= 0)
		return fopen(path, "re");
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->fd = fd;
	f = fopencookie(e, "r", io);
	if (!f)
		free(e);
	return f;
}

static int sb_add(scmp_filter_ctx ctx, const struct sb_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct sb_rule *r = &l->rules[i];
		int ret;

		if (r->nr < 0)   /* a call this architecture does not have */
			continue;
		if (r->arg < 0)
			ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
		else
			ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1,
					       SCMP_CMP((unsigned)r->arg, SCMP_CMP_MASKED_EQ, r->mask, r->val));
		/* a call already allowed without conditions stays allowed */
		if (ret < 0 && ret != -EEXIST) {
			log_err("sandbox", "cannot add system call %d of list %s: %s", r->nr, l->what,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int sandbox_enter(const char *thread, const struct sb_list *const *lists)
{
	return sandbox_enter2(thread, lists, NULL);
}

int sandbox_enter2(const char *thread, const struct sb_list *const *own,
		   const struct sb_list *const *more)
{
	scmp_filter_ctx ctx;
	sigset_t sys;
	int ret;

	if (!sb_on)
		return 0;
	snprintf(sb_thread, sizeof(sb_thread), "%s", thread);
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	/* a call through another ABI (int 0x80) would be misnamed: kill outright */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (!ret)
		ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
	if (!ret)
		ret = sb_add(ctx, &sandbox_base);
	if (!ret)
		ret = sb_add(ctx, &sandbox_sanitizer_extra);
	for (size_t i = 0; !ret && own && own[i]; i++)
		ret = sb_add(ctx, own[i]);
	for (size_t i = 0; !ret && more && more[i]; i++)
		ret = sb_add(ctx, more[i]);
	/* a thread that blocks SIGSYS would die of the default action, unnamed */
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	if (!ret)
		ret = -pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (!ret)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	if (ret) {
		log_err("sandbox", "thread %s: cannot install its seccomp filter: %s", thread, strerror(-ret));
		return ret;
	}
	log_debug("sandbox", "thread %s confined", thread);
#ifdef MINIVMM_TEST_HOOKS
	if (sb_test_prefix && strncmp(thread, sb_test_prefix, strlen(sb_test_prefix)) == 0)
		syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
#endif
	return 0;
}
