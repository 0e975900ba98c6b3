/*
 * minivmm-memd, the program: options (the same names as the config file's
 * keys), start-up checks, signals and the event loop. The only place that
 * exits the process.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <jansson.h>

#include "balloon/memd/memd.h"
#include "vmm/lib/loop.h"
#include "vmm/lib/sandbox.h"
#include "vmm/lib/version.h"

#define EXIT_USAGE   64
#define EXIT_STARTUP 65

static const char usage_text[] =
"Usage: minivmm-memd [OPTIONS]\n"
"Keep every minivmm VM (and libvirt domain) of this host within one memory\n"
"budget: watch host pressure and each VM, balloon guests and set their resident\n"
"targets, give memory back to guests under pressure.\n"
"\n"
"Budget (one of; default: the host itself, keeping --reserve available):\n"
"      --budget SIZE         memory the managed VMs may use together (process RSS,\n"
"                            hugetlb included), e.g. 8G\n"
"      --cgroup PATH         a memory cgroup's limit and usage (v1 or v2)\n"
"      --reserve SIZE        host mode: MemAvailable to keep free (default 512M)\n"
"\n"
"VMs:\n"
"      --vm unix:PATH        a VM's QMP socket (repeatable)\n"
"      --run-dir DIR         find VMs started with minivmm --name NAME here, as\n"
"                            NAME.qmp (default /run/minivmm; searched when neither\n"
"                            --vm nor --libvirt is given, or --run-dir is)\n"
"      --libvirt URI         manage that libvirt connection's running domains with a\n"
"                            virtio memballoon too, e.g. qemu:///system (repeatable;\n"
"                            sets their balloon target and, when unset, stats period)\n"
"      --vm-floor NAME=SIZE  never balloon VM NAME below SIZE (NAME * for every VM;\n"
"                            default max(256M, 25% of its RAM))\n"
"      --vm-weight NAME=N    share of memory under pressure, 1-10000 (default 100)\n"
"      --config FILE         options from a file: key = value lines or a JSON object\n"
"\n"
"Policy:\n"
"      --policy NAME         minivmm (default), mom (oVirt MOM's rules) or none\n"
"                            (observe only)\n"
"      --interval SECONDS    tick period (default 1); a PSI trigger also wakes it\n"
"      --headroom SIZE       minivmm policy: room kept ahead of bursts by trimming\n"
"                            pages idle 10 s (default: the largest VM's RAM, at\n"
"                            most 40% of the budget; 0 = that default)\n"
"      --ksm on|off          mom policy: apply its KSM rule to the host's ksmd\n"
"                            (settings found at start are put back; default off)\n"
"\n"
"Output and control:\n"
"      --control unix:PATH   QMP-style monitor: query-host, query-vms, set-budget,\n"
"                            set-policy, and an event for every decision\n"
"      --log FILE            timeline: one JSON line per sample and per decision\n"
"      --metrics-file PATH   Prometheus text-format metrics, rewritten every 2 s\n"
"      --seccomp on|off      system call filter once started (default on); off is\n"
"                            unsafe: the daemon could then make any call. For debugging only\n"
"  -v, --verbose             log every decision on stderr\n"
"  -h, --help                this text\n"
"  -V, --version             version\n"
"\n"
"Exit status: 0 stopped by SIGINT or SIGTERM, 64 bad option or configuration,\n"
"65 could not start (control socket, cgroup, log file), 70 a forbidden system call\n"
"(seccomp). A libvirt connection that cannot be opened or is lost is reported and\n"
"retried; it never stops the daemon.\n";

static const struct option long_opts[] = {
	{ "budget",       required_argument, NULL, 0 },
	{ "cgroup",       required_argument, NULL, 0 },
	{ "reserve",      required_argument, NULL, 0 },
	{ "vm",           required_argument, NULL, 0 },
	{ "run-dir",      required_argument, NULL, 0 },
	{ "libvirt",      required_argument, NULL, 0 },
	{ "vm-floor",     required_argument, NULL, 0 },
	{ "vm-weight",    required_argument, NULL, 0 },
	{ "config",       required_argument, NULL, 0 },
	{ "policy",       required_argument, NULL, 0 },
	{ "interval",     required_argument, NULL, 0 },
	{ "headroom",     required_argument, NULL, 0 },
	{ "ksm",          required_argument, NULL, 0 },
	{ "control",      required_argument, NULL, 0 },
	{ "log",          required_argument, NULL, 0 },
	{ "metrics-file", required_argument, NULL, 0 },
	{ "seccomp",      required_argument, NULL, 's' },
#ifdef MINIVMM_TEST_HOOKS
	/* test builds only, not in --help: the daemon makes a forbidden call */
	{ "test-forbidden-call", required_argument, NULL, 't' },
#endif
	{ "verbose",      no_argument,       NULL, 'v' },
	{ "help",         no_argument,       NULL, 'h' },
	{ "version",      no_argument,       NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void __attribute__((noreturn)) usage_error(const char *msg)
{
	fprintf(stderr, "minivmm-memd: %s; see 'minivmm-memd --help'\n", msg);
	exit(EXIT_USAGE);
}

/* What the command line says besides the daemon's options. */
struct main_opts {
	bool seccomp_off;
	const char *test_forbid;
};

static void parse_args(int argc, char **argv, struct memd_opts *o, struct main_opts *mo)
{
	char err[600], msg[700];
	int c, idx, sources = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vhV", long_opts, &idx)) != -1) {
		switch (c) {
		case 0: {
			const char *name = long_opts[idx].name;

			if (!strcmp(name, "budget") || !strcmp(name, "cgroup"))
				sources++;
			if (memd_opts_set(o, name, optarg, err, sizeof(err)))
				usage_error(err);
			break;
		}
		case 's':
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				usage_error("--seccomp takes on or off");
			mo->seccomp_off = !strcmp(optarg, "off");
			break;
		case 't':
			mo->test_forbid = optarg;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("minivmm-memd %s\n", MINIVMM_VERSION);
			exit(0);
		case ':':
			snprintf(msg, sizeof(msg), "option '%s' needs a value", argv[optind - 1]);
			usage_error(msg);
		default:
			snprintf(msg, sizeof(msg), "unknown option '%s'", argv[optind - 1]);
			usage_error(msg);
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof(msg), "unexpected argument '%s' (VM sockets are given with --vm unix:PATH)",
			 argv[optind]);
		usage_error(msg);
	}
	if (sources > 1)
		usage_error("give --budget or --cgroup, not both");
}

static void on_signal(void *opaque, uint32_t events)
{
	struct memd *d = opaque;
	struct signalfd_siginfo si;

	if (read(d->sig_fd, &si, sizeof(si)) != sizeof(si))
		return;
	memd_log_msg(d, "%s: stopping", strsignal((int)si.ssi_signo));
	loop_stop(d->loop);
}

/*
 * The daemon's one thread once started (strace of test_memd and
 * test_libvirt, and the code's paths): generous but explicit, because it
 * keeps discovering things after start. It opens files: each VM's
 * /proc/PID/smaps_rollup and a libvirt domain's /proc/PID/cmdline (VMs
 * appear at any time, so these cannot be opened in advance), the run
 * directory's listing, the timeline and metrics files (written to a
 * temporary file, then renamed). It connects unix sockets only (VM
 * monitors, libvirt's daemon, its control socket's clients). libvirt's
 * client library, on (re)connection, reads its configuration, makes
 * pipes and eventfds for its event loop, passes descriptors over the
 * socket and asks who it is (uid, hostname). No process or thread
 * creation, no other socket families, no ptrace, mount or module calls.
 */
static const struct sb_rule memd_rules[] = {
	/* the event loop, timers, signals */
	SB_SYS(epoll_wait), SB_SYS(epoll_pwait), SB_SYS(epoll_ctl), SB_SYS(epoll_create1),
	SB_SYS(timerfd_create), SB_SYS(timerfd_settime), SB_SYS(poll), SB_SYS(ppoll),
	SB_SYS(nanosleep), SB_SYS(clock_nanosleep),
	/* files: /proc/PID of new VMs, the run directory, timeline and metrics */
	SB_SYS(openat), SB_SYS(open), SB_SYS(read), SB_SYS(pread64), SB_SYS(write), SB_SYS(writev),
	SB_SYS(close), SB_SYS(lseek), SB_SYS(fstat), SB_SYS(newfstatat), SB_SYS(stat), SB_SYS(lstat),
	SB_SYS(statfs), SB_SYS(fstatfs), SB_SYS(getdents64), SB_SYS(rename), SB_SYS(renameat),
	SB_SYS(renameat2), SB_SYS(unlink), SB_SYS(fsync), SB_SYS(fdatasync), SB_SYS(ftruncate),
	SB_SYS(fcntl), SB_SYS(access), SB_SYS(faccessat), SB_SYS(faccessat2), SB_SYS(readlink),
	SB_SYS(umask), SB_SYS(getcwd),
	/* --ksm on: ksmd's settings through the descriptors opened at start */
	SB_SYS(pwrite64),
	/* unix sockets only: VM monitors, libvirt, the control socket */
	SB_ARG(socket, 0, AF_UNIX), SB_ARG(socketpair, 0, AF_UNIX), SB_SYS(connect), SB_SYS(accept4),
	SB_SYS(accept), SB_SYS(bind), SB_SYS(listen), SB_SYS(sendto), SB_SYS(recvfrom),
	SB_SYS(sendmsg), SB_SYS(recvmsg), SB_SYS(shutdown), SB_SYS(getsockopt), SB_SYS(setsockopt),
	SB_SYS(getsockname), SB_SYS(getpeername),
	/* libvirt's client: its event loop's wake-ups, who it is */
	SB_SYS(pipe2), SB_SYS(eventfd2), SB_SYS(dup), SB_SYS(dup3), SB_SYS(getuid), SB_SYS(geteuid),
	SB_SYS(getgid), SB_SYS(getegid), SB_SYS(uname), SB_SYS(getrandom),
	SB_IOCTL(FIONBIO), SB_IOCTL(FIOCLEX), SB_IOCTL(FIONREAD), SB_IOCTL(TCGETS),
};
static const struct sb_list memd_sandbox = SB_LIST("minivmm-memd", memd_rules);
static const struct sb_list *const memd_lists[] = { &memd_sandbox, &loop_sandbox, NULL };

int main(int argc, char **argv)
{
	static struct memd d;
	struct main_opts mo = { 0 };
	char err[600] = "";
	sigset_t sigs;
	int r;

	/* jansson reads /dev/urandom for its hash seed with its first object: before the filter */
	json_object_seed(0);
	memd_opts_init(&d.o);
	parse_args(argc, argv, &d.o, &mo);
	if (mo.seccomp_off)
		fprintf(stderr, "minivmm-memd: --seccomp off: the daemon runs without a system call filter; "
			"this is unsafe and meant for debugging\n");
	if (sandbox_init(!mo.seccomp_off, "minivmm-memd") < 0) {
		fprintf(stderr, "minivmm-memd: cannot set up seccomp: %s\n", strerror(errno));
		return EXIT_STARTUP;
	}
#ifdef MINIVMM_TEST_HOOKS
	if (mo.test_forbid)
		sandbox_test_forbid(mo.test_forbid);
#endif
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	d.sig_fd = -1;

	r = memd_start(&d, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivmm-memd: %s\n", err[0] ? err : strerror(-r));
		memd_stop(&d);
		return r == -EINVAL ? EXIT_USAGE : EXIT_STARTUP;
	}
	d.sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d.sig_fd < 0 || loop_add(d.loop, d.sig_fd, EPOLLIN, on_signal, &d) < 0) {
		fprintf(stderr, "minivmm-memd: cannot watch signals: %s\n", strerror(errno));
		memd_stop(&d);
		return EXIT_STARTUP;
	}
	/* single-threaded: the one filter covers the daemon from here on */
	if (sandbox_enter("memd", memd_lists) < 0) {
		memd_stop(&d);
		return EXIT_STARTUP;
	}
	loop_run(d.loop);
	loop_del(d.loop, d.sig_fd);
	close(d.sig_fd);
	memd_stop(&d);
	return 0;
}
