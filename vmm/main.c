/*
 * minivmm, the composition root: command-line options -> struct vm_config
 * -> the machine (vmm/machine.c), run until the guest exits or the user
 * stops it, then the summary. Signals are the process's, so they are
 * handled here. The only place that exits the process.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <malloc.h>

#include "balloon/balloon.h"
#include "mm/mm.h"
#include "vmm/lib/log.h"
#include "vmm/lib/loop.h"
#include "vmm/lib/opts.h"
#include "vmm/lib/sandbox.h"
#include "vmm/lib/size.h"
#include "vmm/lib/version.h"
#include "vmm/boot/boot.h"
#include "vmm/machine.h"
#include "vmm/machine_domain.h"
#include "vmm/lib/stop.h"

static const char usage_text[] =
"Usage: minivmm [OPTIONS] IMAGE\n"
"       minivmm --domain FILE [OPTIONS] [IMAGE]\n"
"Boot IMAGE in a KVM virtual machine: the project's x86-64 ELF guest (build/guest.img),\n"
"a Linux bzImage, or an ELF vmlinux (entered through its PVH note).\n"
"\n"
"Guest:\n"
"  -m, --mem SIZE            guest RAM, with a K/M/G suffix (default 256M); RAM above 3G\n"
"                            is placed above the 32-bit MMIO hole, at 4G\n"
"  -c, --cpus N              number of vCPUs (default 1)\n"
"  -a, --append STRING       guest command line, e.g. \"workload=fill size=64M\"\n"
"      --guest-pages SIZE    leaf size of the guest's identity page tables: 4K, 2M or 1G\n"
"                            (default 2M)\n"
"      --initrd FILE         Linux: initramfs loaded where the boot protocol allows\n"
"      --bzimage-decompress host|host-zeropage|guest\n"
"                            Linux bzImage: decompress on the host and enter through PVH\n"
"                            (host, default) or the 64-bit zero-page entry, or let the\n"
"                            kernel decompress itself (guest)\n"
"      --cpu-features -NAME,...  hide CPUID features (e.g. -xsave,-avx,-avx2,-x2apic,-cx16)\n"
"\n"
"Memory backing:\n"
"      --mem-backing TYPE    anon (4 KiB pages), thp (transparent huge pages), memfd\n"
"                            (shared memory), hugetlb (reserved huge pages); default thp\n"
"      --hugepage-size SIZE  huge page size for hugetlb: 2M or 1G (default 2M)\n"
"      --prealloc            allocate all guest RAM at start\n"
"      --mm OPTIONS          memory manager: zero=on,compress=on,dedup=on,zstd-level=N,\n"
"                            cold-age=SECONDS,policy=clock|2q,max-refault-rate=R,\n"
"                            scan-period=MS,threshold=BYTES,store-max=SIZE,\n"
"                            uffd-chunks=N,ksm=on|off (off without --mm)\n"
"\n"
"Devices and control:\n"
"      --balloon OPTIONS     virtio-balloon: deflate-on-oom=on|off,free-page-reporting=on|off,\n"
"                            must-tell-host=on|off,stats-period=SECONDS (on by default)\n"
"      --no-balloon          no balloon device\n"
"      --qmp unix:PATH       QMP monitor on a unix socket: QEMU's commands (stop, cont,\n"
"                            balloon, qom-get, query-status, quit, ...); long ones such\n"
"                            as mm-reclaim reply later (README, QMP; see minivmm-ctl)\n"
"      --domain FILE         a libvirt domain definition (XML) as the configuration;\n"
"                            options given here override it (README, libvirt domain XML)\n"
"      --name NAME           name the VM: its QMP socket is RUN-DIR/NAME.qmp, where\n"
"                            minivmm-memd finds it (removed at exit)\n"
"      --run-dir DIR         directory for --name's socket (default /run/minivmm)\n"
"      --seccomp on|off      per-thread system call filters after set-up (default on);\n"
"                            off is unsafe: a compromised thread could then make any\n"
"                            system call. For debugging only\n"
"\n"
"Output:\n"
"      --stats               print a memory and KVM statistics summary at exit\n"
"  -v, --verbose             more log lines (repeat for debug)\n"
"  -q, --quiet               errors only\n"
"  -h, --help                this text\n"
"  -V, --version             version\n"
"\n"
"The guest's serial console goes to standard output. The VM exits with the\n"
"status the guest writes to its exit port (0-63); SIGINT or SIGTERM stop it\n"
"cleanly. Statuses from 64 are minivmm's own (64 usage, 65 set-up, 66 vCPU,\n"
"67 checksum, 68 memory not restorable, 69 internal, 70 forbidden system call):\n"
"see README, Exit statuses.\n";

enum {
	OPT_GUEST_PAGES = 256, OPT_BACKING, OPT_HPSIZE, OPT_PREALLOC, OPT_MM,
	OPT_BALLOON, OPT_NO_BALLOON, OPT_QMP, OPT_STATS, OPT_NAME, OPT_RUN_DIR, OPT_DOMAIN,
	OPT_INITRD, OPT_BZDECOMP, OPT_CPU_FEATURES,   /* Linux guests */
	OPT_SECCOMP, OPT_TEST_FORBID,
};

#define RUN_DIR_DEFAULT "/run/minivmm"

/* What the command line gives besides the VM's config. */
struct main_opts {
	const char *name;
	const char *run_dir;
	char qmp_path[PATH_MAX];   /* RUN-DIR/NAME.qmp */
	const char *domain;        /* --domain FILE */
	bool seccomp_off;          /* --seccomp off */
	const char *test_forbid;   /* test builds: --test-forbidden-call THREAD */
	unsigned cli;              /* enum domain_cli: what the command line set itself */
	struct domain_def dom;
};

static const struct option long_opts[] = {
	{ "mem",           required_argument, NULL, 'm' },
	{ "cpus",          required_argument, NULL, 'c' },
	{ "append",        required_argument, NULL, 'a' },
	{ "guest-pages",   required_argument, NULL, OPT_GUEST_PAGES },
	{ "mem-backing",   required_argument, NULL, OPT_BACKING },
	{ "hugepage-size", required_argument, NULL, OPT_HPSIZE },
	{ "prealloc",      no_argument,       NULL, OPT_PREALLOC },
	{ "mm",            required_argument, NULL, OPT_MM },
	{ "balloon",       required_argument, NULL, OPT_BALLOON },
	{ "no-balloon",    no_argument,       NULL, OPT_NO_BALLOON },
	{ "qmp",           required_argument, NULL, OPT_QMP },
	{ "name",          required_argument, NULL, OPT_NAME },
	{ "run-dir",       required_argument, NULL, OPT_RUN_DIR },
	{ "domain",        required_argument, NULL, OPT_DOMAIN },
	{ "stats",         no_argument,       NULL, OPT_STATS },
	{ "initrd",        required_argument, NULL, OPT_INITRD },
	{ "bzimage-decompress", required_argument, NULL, OPT_BZDECOMP },
	{ "cpu-features",  required_argument, NULL, OPT_CPU_FEATURES },
	{ "seccomp",       required_argument, NULL, OPT_SECCOMP },
#ifdef MINIVMM_TEST_HOOKS
	/* test builds only, not in --help: the named thread makes a forbidden call */
	{ "test-forbidden-call", required_argument, NULL, OPT_TEST_FORBID },
#endif
	{ "verbose",       no_argument,       NULL, 'v' },
	{ "quiet",         no_argument,       NULL, 'q' },
	{ "help",          no_argument,       NULL, 'h' },
	{ "version",       no_argument,       NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fputs("minivmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(STOP_USAGE);
}

static uint64_t size_arg(const char *opt, const char *s)
{
	uint64_t v;

	if (size_parse(s, &v) < 0)
		die("%s '%s' is not a size: use a number with an optional K, M or G suffix, e.g. 512M", opt, s);
	return v;
}

/* A name is a file name in the run directory and a label in metrics: keep it plain. */
static bool name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 63 || n[0] == '.' || n[0] == '-')
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/* --name: the QMP socket goes into the run directory, which is created if needed. */
static void name_socket(struct main_opts *mo, struct vm_config *cfg)
{
	const char *dir = mo->run_dir ? mo->run_dir : RUN_DIR_DEFAULT;

	if (!mo->name) {
		if (mo->run_dir)
			die("--run-dir only applies with --name NAME (the VM's socket is RUN-DIR/NAME.qmp)");
		return;
	}
	if (cfg->qmp_path)
		die("--name puts the QMP socket in the run directory; give --name or --qmp, not both");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die("--run-dir %s: cannot create it: %s", dir, strerror(errno));
	if ((size_t)snprintf(mo->qmp_path, sizeof(mo->qmp_path), "%s/%s.qmp", dir, mo->name) >= 108)
		die("--run-dir %s: the socket path %s/%s.qmp is longer than a unix socket allows (107 bytes)",
		    dir, dir, mo->name);
	cfg->qmp_path = mo->qmp_path;
}

/* The domain_cli bit of a command-line option (0: not a machine setting). */
static unsigned cli_bit(int opt)
{
	switch (opt) {
	case 'm': return DOM_CLI_MEM;
	case 'c': return DOM_CLI_CPUS;
	case 'a': return DOM_CLI_APPEND;
	case OPT_BACKING: return DOM_CLI_BACKING;
	case OPT_HPSIZE: return DOM_CLI_HPSIZE;
	case OPT_PREALLOC: return DOM_CLI_PREALLOC;
	case OPT_MM: return DOM_CLI_MM;
	case OPT_BALLOON: return DOM_CLI_BALLOON;
	case OPT_NO_BALLOON: return DOM_CLI_NO_BALLOON;
	case OPT_NAME: return DOM_CLI_NAME;
	default: return 0;
	}
}

/* --domain FILE: the libvirt definition under the command line's options. */
static void apply_domain(struct vm_config *cfg, struct main_opts *mo)
{
	const char *name = NULL;
	char err[600];

	if (domain_load(mo->domain, &mo->dom, err, sizeof(err)) ||
	    domain_apply(&mo->dom, mo->cli, cfg, &name, err, sizeof(err))) {
		domain_free(&mo->dom);
		die("%s", err);
	}
	/* The domain's name names the VM for minivmm-memd, unless a socket was given. */
	if (name && !mo->name && !cfg->qmp_path && name_ok(name))
		mo->name = name;
}

/* The options for Linux guests: --initrd, --bzimage-decompress, --cpu-features. */
static void parse_linux_opt(int c, const char *arg, struct vm_config *cfg)
{
	static const char *const modes[] = {
		[LINUX_DECOMP_HOST] = "host", [LINUX_DECOMP_HOST_ZEROPAGE] = "host-zeropage",
		[LINUX_DECOMP_GUEST] = "guest",
	};
	char err[256];

	if (c == OPT_INITRD) {
		cfg->initrd = arg;
	} else if (c == OPT_CPU_FEATURES) {
		if (cpuid_hide_parse(arg, &cfg->cpu_hide, err, sizeof(err)))
			die("%s", err);
	} else {
		for (cfg->bzimage_decompress = 0; cfg->bzimage_decompress < 3; cfg->bzimage_decompress++)
			if (strcmp(arg, modes[cfg->bzimage_decompress]) == 0)
				return;
		die("--bzimage-decompress '%s' is not valid: use host, host-zeropage or guest", arg);
	}
}

/* The options that shape the machine itself: memory, vCPUs, devices, the monitor. */
static void parse_machine_opt(int c, const char *arg, struct vm_config *cfg)
{
	uint64_t v;

	switch (c) {
	case 'm':
		cfg->mem.ram_size = size_arg("--mem", arg);
		break;
	case 'c':
		if (opts_u64(arg, 1, 1024, &v))
			die("--cpus '%s' is not valid: give a number of vCPUs from 1 up", arg);
		cfg->nr_cpus = (int)v;
		break;
	case 'a':
		cfg->append = arg;
		break;
	case OPT_GUEST_PAGES:
		v = size_arg("--guest-pages", arg);
		if (v != GUEST_PAGES_4K && v != GUEST_PAGES_2M && v != GUEST_PAGES_1G)
			die("--guest-pages '%s' is not valid: use 4K, 2M or 1G", arg);
		cfg->guest_page_size = v;
		break;
	case OPT_BACKING:
		if (mm_backing_parse(arg, &cfg->mem.backing) < 0)
			die("--mem-backing '%s' is not valid: use anon, thp, memfd or hugetlb", arg);
		break;
	case OPT_HPSIZE:
		cfg->mem.hugepage_size = size_arg("--hugepage-size", arg);
		if (cfg->mem.hugepage_size != (2ULL << 20) && cfg->mem.hugepage_size != (1ULL << 30))
			die("--hugepage-size '%s' is not valid: use 2M or 1G", arg);
		break;
	case OPT_PREALLOC:
		cfg->mem.prealloc = true;
		break;
	case OPT_MM:
		cfg->mm_opts = arg;
		break;
	case OPT_BALLOON:
		cfg->balloon_opts = arg;
		break;
	case OPT_NO_BALLOON:
		cfg->no_balloon = true;
		break;
	case OPT_QMP:
		cfg->qmp_path = arg;
		break;
	case OPT_STATS:
		cfg->stats = true;
		break;
	}
}

static void parse_args(int argc, char **argv, struct vm_config *cfg, struct main_opts *mo)
{
	const char *bad;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->mem.ram_size = 256ULL << 20;
	cfg->mem.backing = MM_BACKING_THP;
	cfg->mem.hugepage_size = 2ULL << 20;
	cfg->nr_cpus = 1;
	cfg->guest_page_size = GUEST_PAGES_2M;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:c:a:vqhV", long_opts, NULL)) != -1) {
		mo->cli |= cli_bit(c);
		switch (c) {
		case 'm': case 'c': case 'a': case OPT_GUEST_PAGES: case OPT_BACKING: case OPT_HPSIZE:
		case OPT_PREALLOC: case OPT_MM: case OPT_BALLOON: case OPT_NO_BALLOON: case OPT_QMP: case OPT_STATS:
			parse_machine_opt(c, optarg, cfg);
			break;
		case OPT_INITRD:
		case OPT_BZDECOMP:
		case OPT_CPU_FEATURES:
			parse_linux_opt(c, optarg, cfg);
			break;
		case OPT_NAME:
			if (!name_ok(optarg))
				die("--name '%s' is not valid: use up to 63 letters, digits, '.', '_' or '-', "
				    "not starting with '.' or '-'", optarg);
			mo->name = optarg;
			break;
		case OPT_DOMAIN:
			mo->domain = optarg;
			break;
		case OPT_SECCOMP:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				die("--seccomp '%s' is not valid: use on or off", optarg);
			mo->seccomp_off = strcmp(optarg, "off") == 0;
			break;
		case OPT_TEST_FORBID:
			mo->test_forbid = optarg;
			break;
		case OPT_RUN_DIR:
			if (!*optarg)
				die("--run-dir needs a directory");
			mo->run_dir = optarg;
			break;
		case 'v':
			vmm_log_level++;
			break;
		case 'q':
			vmm_log_level = 0;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("minivmm %s\n", MINIVMM_VERSION);
			exit(0);
		case ':':
			die("option '%s' needs a value; see 'minivmm --help'", argv[optind - 1]);
		default:
			bad = argv[optind - 1];
			if (optopt && !(bad[0] == '-' && bad[1] == '-'))
				die("unknown option '-%c'; see 'minivmm --help'", optopt);
			die("unknown option '%s'; see 'minivmm --help'", bad);
		}
	}
	if (optind >= argc && !mo->domain)
		die("no guest image given: minivmm [OPTIONS] IMAGE, e.g. minivmm --mem 256M build/guest.img");
	if (optind + 1 < argc)
		die("more than one guest image given ('%s' and '%s'); options go before the image",
		    argv[optind], argv[optind + 1]);
	if (optind < argc) {
		cfg->image = argv[optind];
		mo->cli |= DOM_CLI_IMAGE;
	}
	if (mo->domain)
		apply_domain(cfg, mo);
	cfg->name = mo->name;
	if (cfg->mem.ram_size < (2ULL << 20) || cfg->mem.ram_size % 4096)
		die("--mem is not valid: give at least 2M, a multiple of 4K (e.g. --mem 256M)");
	if (cfg->mem.backing != MM_BACKING_HUGETLB && cfg->mem.hugepage_size != (2ULL << 20))
		die("--hugepage-size only applies to --mem-backing hugetlb");
	if (cfg->qmp_path && strncmp(cfg->qmp_path, "unix:", 5) == 0)
		cfg->qmp_path += 5;
	name_socket(mo, cfg);
}

/* SIGINT and SIGTERM arrive on the main loop through a signalfd. */
static void on_signal(void *opaque, uint32_t events)
{
	(void)events;
	struct vm *vm = opaque;
	struct signalfd_siginfo si;
	int fd = vm->sig_fd;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("vmm", "%s: stopping the VM", strsignal((int)si.ssi_signo));
	vm_request_exit(vm, 0);
}

/*
 * The main thread's own calls after set-up (strace of the integration
 * tests from the moment the vCPUs run, and the teardown read from the
 * code): signals from the signalfd, the console's input, the summary
 * (pread of the early /proc descriptors) and the last flushes at exit
 * (stdio may fstat and seek its streams). The machine adds what its parts
 * do on this thread (loop, monitor, VM, memory).
 */
static const struct sb_rule main_rules[] = {
	SB_SYS(read), SB_SYS(write), SB_SYS(close), SB_SYS(fstat), SB_SYS(newfstatat),
	SB_SYS(lseek), SB_SYS(pread64),
};
static const struct sb_list main_sandbox = SB_LIST("main", main_rules);
static const struct sb_list *const main_lists[] = { &main_sandbox, NULL };

int main(int argc, char **argv)
{
	struct vm_config cfg;
	static struct main_opts mo;
	static struct vm vm;
	char err[512] = "";
	sigset_t sigs;
	int ret, status;

	/* jansson seeds its hash tables from /dev/urandom with its first object: do it now,
	 * before the filters (the first object may come with a QMP client, long after) */
	json_object_seed(0);
	/*
	 * One malloc arena: glibc shrinks a thread's own arena with a read of
	 * /proc/sys/vm/overcommit_memory, which the threads' filters forbid
	 * (seen on the fault service freeing restore buffers). The main arena
	 * never needs it; minivmm's few threads share it without contention.
	 */
	mallopt(M_ARENA_MAX, 1);
	parse_args(argc, argv, &cfg, &mo);
	if (mo.seccomp_off)
		fprintf(stderr, "minivmm: --seccomp off: every thread runs without a system call filter; "
			"this is unsafe (a compromised thread could make any call) and meant for debugging\n");
	if (sandbox_init(!mo.seccomp_off, "minivmm") < 0) {
		fprintf(stderr, "minivmm: cannot set up seccomp: %s\n", strerror(errno));
		return STOP_STARTUP;
	}
#ifdef MINIVMM_TEST_HOOKS
	if (mo.test_forbid)
		sandbox_test_forbid(mo.test_forbid);
#endif
	/* the image is the user's input: complain about it before touching KVM */
	{
		uint8_t *buf;
		size_t len;

		if (read_file(cfg.image, &buf, &len, err, sizeof(err)) < 0) {
			fprintf(stderr, "minivmm: %s\n", err);
			return STOP_USAGE;
		}
		cfg.image_buf = buf;
		cfg.image_len = len;
	}

	/* every thread inherits the block; only the signalfd sees these */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = machine_create(&vm, &cfg, err, sizeof(err));
	/* A program, unlike a test harness, must end even when a thread never
	 * comes back from guest memory that cannot be restored. */
	vm.stop_grace_s = 5;
	/* <currentMemory> below <memory>: the balloon starts at that target. */
	if (!ret && mo.dom.current_memory && mo.dom.current_memory < cfg.mem.ram_size && vm.balloon)
		ret = balloon_set_target(vm.balloon, mo.dom.current_memory, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "minivmm: %s\n", err[0] ? err : strerror(-ret));
		goto out;
	}

	sigdelset(&sigs, SIGUSR1);
	vm.sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (vm.sig_fd < 0 || loop_add(vm.loop, vm.sig_fd, EPOLLIN, on_signal, &vm) < 0) {
		ret = -errno;
		fprintf(stderr, "minivmm: cannot watch signals: %s\n", strerror(errno));
		goto out;
	}

	ret = machine_run(&vm, main_lists);
	if (cfg.stats)
		vm_print_summary(&vm, stderr);
out:
	status = atomic_load(&vm.exit_status);
	if (vm.sig_fd > 0) {
		loop_del(vm.loop, vm.sig_fd);
		close(vm.sig_fd);
	}
	machine_destroy(&vm);
	free((void *)cfg.image_buf);
	domain_free(&mo.dom);
	return ret ? stop_status(STOP_STARTUP) : status;
}
