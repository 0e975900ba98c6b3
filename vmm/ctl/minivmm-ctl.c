/*
 * minivmm-ctl: the friendly command line over a running minivmm's QMP
 * socket (info, balloon, stats, watch, mm, reclaim, quit, raw) and over
 * minivmm-memd's control socket (host, vms, watch; ctl_memd.c). It speaks
 * plain QMP through vmm/qmp/client, so it also works against QEMU for the
 * commands QEMU has.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/ctl/ctl.h"
#include "vmm/lib/clock.h"
#include "vmm/lib/macros.h"
#include "vmm/lib/size.h"
#include "vmm/lib/version.h"

#define BALLOON_PATH         "/machine/peripheral/balloon0"

/* Set by the SIGINT/SIGTERM handler of watch: the one thing a handler may touch. */
volatile sig_atomic_t ctl_interrupted;

static void usage(FILE *out)
{
	fprintf(out,
"usage: minivmm-ctl [OPTIONS] SOCKET COMMAND [ARGS] (options may also follow the command)\n"
"\n"
"Talks to a running minivmm started with --qmp unix:SOCKET, or to minivmm-memd\n"
"started with --control unix:SOCKET.\n"
"\n"
"commands for a VM:\n"
"  info            VM status, guest memory size and balloon size\n"
"  balloon SIZE    set the guest memory target (K/M/G suffixes), e.g. balloon 512M\n"
"  stats           the guest's memory statistics reported through the balloon\n"
"  watch           print balloon events and statistics every second until Ctrl-C\n"
"                  (or --count refreshes)\n"
"  mm              the memory manager's figures (query-memory-manager)\n"
"  reclaim SIZE    ask the memory manager to reclaim SIZE bytes now (mm-reclaim)\n"
"  translate ADDR  follow a guest-virtual address (vCPU --cpu N, default 0) or with\n"
"                  --gpa a guest-physical one through every stage: the guest's\n"
"                  page tables, memslot, host page, page state, walk cost\n"
"                  (query-translation); ADDR in hex (0x...) or decimal\n"
"  translation     page sizes at every stage over all guest RAM: guest tables,\n"
"                  host backing, KVM (query-translation-summary)\n"
"  quit            stop the VM\n"
"  raw JSON        send one QMP command, e.g. raw '{\"execute\": \"query-kvm\"}'\n"
"                  (a bare command name works too: raw query-status), print the reply\n"
"\n"
"commands for minivmm-memd:\n"
"  host            budget, usage, pressure and state of the host (query-host)\n"
"  vms             every managed VM: target, actual, resident, floor, guest stats\n"
"  watch           host and VMs every second, and each decision as it is made,\n"
"                  until Ctrl-C (or --count refreshes)\n"
"  raw JSON        as above\n"
"\n"
"options:\n"
"  -n, --count N   watch: stop after N refreshes\n"
"  -c, --cpu N     translate: the vCPU whose page tables to walk (0)\n"
"  -p, --gpa       translate: ADDR is guest-physical (no guest walk)\n"
"  -h, --help      this text\n"
"  -V, --version   print the version\n");
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("minivmm-ctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

void ctl_print_time(void)
{
	time_t t = time(NULL);
	struct tm tm;
	char buf[16];
	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
	printf("%s ", buf);
}

static void ctl_print_event(struct ctl *c, json_t *ev)
{
	const char *name = json_string_value(json_object_get(ev, "event"));
	json_t *data = json_object_get(ev, "data");

	if (c->daemon) {
		ctl_memd_print_event(ev);
		return;
	}
	ctl_print_time();
	printf("event %s", name ? name : "?");
	json_t *actual = json_object_get(data, "actual");
	if (name && strcmp(name, "BALLOON_CHANGE") == 0 && json_is_integer(actual)) {
		char b[32];
		printf(": guest memory now %s",
		       size_format((uint64_t)json_integer_value(actual), SIZE_FIXED2, b, sizeof(b)));
	} else if (data) {
		char *s = json_dumps(data, JSON_COMPACT);
		printf(" %s", s ? s : "");
		free(s);
	}
	printf("\n");
	fflush(stdout);
}

/* Prints the events the client kept since the last call. */
void ctl_print_events(struct ctl *c)
{
	json_t *ev;
	char err[256];

	while (qmp_client_next_event(c->qc, 0, &ev, err, sizeof(err)) == 0) {
		ctl_print_event(c, ev);
		json_decref(ev);
	}
}

/* The user's words for a transport failure; ends the program. */
void ctl_die_io(struct ctl *c, const char *what, int r, const char *err)
{
	if (r == -EPIPE)
		die("%s: %s closed the connection", c->path, c->daemon ? "minivmm-memd" : "minivmm");
	if (r == -ETIMEDOUT)
		die("%s: no reply within %d s", what, CTL_REPLY_TIMEOUT_MS / 1000);
	if (r == -EMSGSIZE)
		die("%s: reply larger than 16 MiB", c->path);
	die("%s: %s", what, err);
}

json_t *ctl_cmd(struct ctl *c, const char *name, json_t *args, char *err, size_t errlen)
{
	json_t *ret;
	int r = qmp_client_execute(c->qc, name, args, CTL_REPLY_TIMEOUT_MS, &ret, err, errlen);

	if (c->watch)
		ctl_print_events(c);
	if (r == -EPROTO)
		return NULL;
	if (r == -EINTR && ctl_interrupted) {
		snprintf(err, errlen, "interrupted");
		return NULL;
	}
	if (r)
		ctl_die_io(c, name, r, err);
	return ret;
}

json_t *ctl_must(struct ctl *c, const char *name, json_t *args)
{
	char err[512];
	json_t *ret = ctl_cmd(c, name, args, err, sizeof(err));
	if (!ret)
		die("%s: %s", name, err);
	return ret;
}

static void ctl_connect(struct ctl *c, const char *spec)
{
	const char *path = strncmp(spec, "unix:", 5) == 0 ? spec + 5 : spec;
	char err[512];
	int r;

	c->path = path;
	r = qmp_client_connect(path, 5000, 1, &c->qc, err, sizeof(err));
	if (r == -EBADMSG && strstr(err, "no QMP greeting"))
		die("%s: no QMP greeting; is this a minivmm or QEMU QMP socket?", path);
	if (r && strstr(err, "cannot connect"))
		die("%s; is minivmm running with --qmp unix:%s?", err, path);
	if (r == -EPROTO)
		die("qmp_capabilities: %s", err);
	if (r == -ETIMEDOUT || r == -EPIPE || r == -EMSGSIZE)
		ctl_die_io(c, "qmp_capabilities", r, err);
	if (r)
		die("%s", err);
	/* minivmm-memd names itself in the greeting, as QEMU does with "package" */
	const char *pkg = json_string_value(json_object_get(json_object_get(qmp_client_greeting(c->qc),
									    "version"), "package"));
	c->daemon = pkg && strncmp(pkg, "minivmm-memd", 12) == 0;
}

/* ---- printing helpers ---- */

static uint64_t ctl_u64(json_t *obj, const char *key, bool *ok)
{
	json_t *v = json_object_get(obj, key);
	*ok = json_is_integer(v) && json_integer_value(v) >= 0;
	return *ok ? (uint64_t)json_integer_value(v) : 0;
}

static bool ctl_key_is_bytes(const char *key)
{
	return strstr(key, "bytes") || strstr(key, "memory") || strstr(key, "swap") ||
	       strstr(key, "caches") || strcmp(key, "ram") == 0 || strstr(key, "-ram") ||
	       strstr(key, "resident") || strstr(key, "size");
}

/* Prints a JSON value as an indented "key: value" tree; sizes as bytes with units. */
void ctl_print_tree(const char *key, json_t *v, int depth)
{
	char b[32];

	printf("%*s", depth * 2, "");
	if (key)
		printf("%-*s ", 28 - depth * 2 > 0 ? 28 - depth * 2 : 1, key);
	if (json_is_object(v)) {
		printf("\n");
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
			ctl_print_tree(k, x, depth + 1);
	} else if (json_is_array(v)) {
		printf("\n");
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) {
			char idx[24];
			snprintf(idx, sizeof(idx), "[%zu]", i);
			ctl_print_tree(idx, x, depth + 1);
		}
	} else if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		bool pages = key && strstr(key, "pages");
		if (key && n >= 1024 && !pages && ctl_key_is_bytes(key))
			printf("%s (%lld bytes)\n", size_format((uint64_t)n, SIZE_FIXED2, b, sizeof(b)), (long long)n);
		else if (key && n >= 0 && !pages && ctl_key_is_bytes(key))
			printf("%s\n", size_format((uint64_t)n, SIZE_FIXED2, b, sizeof(b)));
		else
			printf("%lld\n", (long long)n);
	} else if (json_is_real(v)) {
		printf("%.4g\n", json_real_value(v));
	} else if (json_is_string(v)) {
		printf("%s\n", json_string_value(v));
	} else {
		printf("%s\n", json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null");
	}
}

/* ---- commands ---- */

static int cmd_info(struct ctl *c, const char *unused)
{
	(void)unused;
	char b[32], err[512];

	json_t *st = ctl_must(c, "query-status", NULL);
	const char *status = json_string_value(json_object_get(st, "status"));
	printf("status:        %s\n", status ? status : "?");
	json_decref(st);

	json_t *mem = ctl_must(c, "query-memory-size-summary", NULL);
	bool ok;
	uint64_t base = ctl_u64(mem, "base-memory", &ok);
	printf("guest memory:  %s\n", ok ? size_format(base, SIZE_FIXED2, b, sizeof(b)) : "?");
	json_decref(mem);

	json_t *bal = ctl_cmd(c, "query-balloon", NULL, err, sizeof(err));
	if (bal) {
		uint64_t actual = ctl_u64(bal, "actual", &ok);
		printf("balloon:       guest has %s", ok ? size_format(actual, SIZE_FIXED2, b, sizeof(b)) : "?");
		if (ok && base && actual <= base) {
			char b2[32];
			printf(" (%s in the balloon)", size_format(base - actual, SIZE_FIXED2, b2, sizeof(b2)));
		}
		printf("\n");
		json_decref(bal);
	} else {
		printf("balloon:       not available (%s)\n", err);
	}
	return 0;
}

static uint64_t ctl_parse_size(const char *s)
{
	uint64_t v;
	if (size_parse(s, &v) < 0)
		die("'%s' is not a size; use bytes or a K/M/G suffix, e.g. 512M", s);
	return v;
}

static int cmd_balloon(struct ctl *c, const char *size)
{
	char b[32];
	uint64_t bytes = ctl_parse_size(size);
	json_decref(ctl_must(c, "balloon", json_pack("{s:I}", "value", (json_int_t)bytes)));
	printf("balloon: guest memory target set to %s\n", size_format(bytes, SIZE_FIXED2, b, sizeof(b)));
	return 0;
}

static void ctl_print_stats(json_t *gs)
{
	char b[32];
	json_t *stats = json_object_get(gs, "stats");
	json_int_t last = json_integer_value(json_object_get(gs, "last-update"));

	if (last <= 0)
		printf("last update:       never (enable polling: raw '{\"execute\": \"qom-set\", "
		       "\"arguments\": {\"path\": \"" BALLOON_PATH "\", \"property\": "
		       "\"guest-stats-polling-interval\", \"value\": 2}}')\n");
	else
		printf("last update:       %lld s ago\n", (long long)(time(NULL) - last));
	const char *key;
	json_t *v;
	json_object_foreach(stats, key, v) {
		const char *name = strncmp(key, "stat-", 5) == 0 ? key + 5 : key;
		json_int_t n = json_integer_value(v);
		printf("%-18s ", name);
		if (!json_is_integer(v) || n < 0)
			printf("n/a\n");
		else if (ctl_key_is_bytes(name))
			printf("%s\n", size_format((uint64_t)n, SIZE_FIXED2, b, sizeof(b)));
		else
			printf("%lld\n", (long long)n);
	}
}

static json_t *ctl_guest_stats(struct ctl *c, char *err, size_t errlen)
{
	return ctl_cmd(c, "qom-get", json_pack("{s:s,s:s}", "path", BALLOON_PATH,
					       "property", "guest-stats"), err, errlen);
}

static int cmd_stats(struct ctl *c, const char *unused)
{
	(void)unused;
	char err[512];
	json_t *gs = ctl_guest_stats(c, err, sizeof(err));
	if (!gs)
		die("stats: %s", err);
	ctl_print_stats(gs);
	json_decref(gs);
	return 0;
}

static void ctl_on_sigint(int sig)
{
	ctl_interrupted = 1;
}

void ctl_catch_interrupt(void)
{
	struct sigaction sa = { .sa_handler = ctl_on_sigint };

	sigaction(SIGINT, &sa, NULL);  /* no SA_RESTART: poll returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
}

void ctl_wait_second(struct ctl *c)
{
	uint64_t until = now_ns() + 1000000000ULL;

	/* print every event that arrives meanwhile */
	while (!ctl_interrupted) {
		uint64_t now = now_ns();
		json_t *ev;
		char err[256];
		int r;

		if (now >= until)
			break;
		r = qmp_client_next_event(c->qc, (int)((until - now) / 1000000ULL) + 1, &ev, err, sizeof(err));
		if (r == 0) {
			ctl_print_event(c, ev);
			json_decref(ev);
		} else if (r != -ETIMEDOUT && r != -EINTR) {
			ctl_die_io(c, "watch", r, err);
		}
	}
}

static int64_t ctl_stat(json_t *gs, const char *name)
{
	json_t *v = json_object_get(json_object_get(gs, "stats"), name);
	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static int cmd_watch(struct ctl *c, const char *unused)
{
	(void)unused;
	ctl_catch_interrupt();
	c->watch = true;
	printf("watching %s (Ctrl-C to stop)\n", c->path);
	fflush(stdout);

	bool said_no_stats = false;
	for (long round = 0; !ctl_interrupted && (!c->count || round < c->count); round++) {
		char err[512], b[32];
		json_t *bal = ctl_cmd(c, "query-balloon", NULL, err, sizeof(err));
		json_t *gs = bal ? ctl_guest_stats(c, err, sizeof(err)) : NULL;
		if (ctl_interrupted) {
			json_decref(bal);
			json_decref(gs);
			break;
		}
		if (bal) {
			bool ok;
			uint64_t actual = ctl_u64(bal, "actual", &ok);
			ctl_print_time();
			printf("guest memory %s", ok ? size_format(actual, SIZE_FIXED2, b, sizeof(b)) : "?");
			static const char *const shown[][2] = {
				{ "stat-free-memory", "free" }, { "stat-available-memory", "available" },
				{ "stat-disk-caches", "caches" }, { "stat-total-memory", "total" },
			};
			for (size_t i = 0; gs && i < ARRAY_SIZE(shown); i++) {
				int64_t n = ctl_stat(gs, shown[i][0]);
				if (n >= 0)
					printf("  %s %s", shown[i][1], size_format((uint64_t)n, SIZE_FIXED2, b, sizeof(b)));
			}
			printf("\n");
		} else if (!said_no_stats) {
			printf("(no balloon statistics: %s; showing events only)\n", err);
			said_no_stats = true;
		}
		fflush(stdout);
		json_decref(bal);
		json_decref(gs);

		if (!c->count || round + 1 < c->count)
			ctl_wait_second(c);
	}
	printf("\n");
	return 0;
}

/* A query's whole answer as an indented tree. */
static int print_query(struct ctl *c, const char *command)
{
	json_t *ret = ctl_must(c, command, NULL);
	const char *k;
	json_t *v;
	json_object_foreach(ret, k, v)
		ctl_print_tree(k, v, 0);
	json_decref(ret);
	return 0;
}

static int cmd_mm(struct ctl *c, const char *unused)
{
	(void)unused;
	return print_query(c, "query-memory-manager");
}

static int cmd_reclaim(struct ctl *c, const char *size)
{
	char b[32];
	uint64_t bytes = ctl_parse_size(size);
	json_t *ret = ctl_must(c, "mm-reclaim", json_pack("{s:I}", "bytes", (json_int_t)bytes));
	printf("reclaim of %s requested\n", size_format(bytes, SIZE_FIXED2, b, sizeof(b)));
	const char *k;
	json_t *v;
	json_object_foreach(ret, k, v)
		ctl_print_tree(k, v, 0);
	json_decref(ret);
	return 0;
}

static int cmd_quit(struct ctl *c, const char *unused)
{
	(void)unused;
	json_decref(ctl_must(c, "quit", NULL));
	printf("minivmm is quitting\n");
	return 0;
}

static int cmd_raw(struct ctl *c, const char *text)
{
	json_error_t jerr;
	json_t *req;

	/* a bare command name is the common case: raw query-status */
	if (text[0] != '{' && !strchr(text, ' ') && !strchr(text, '"'))
		req = json_pack("{s:s}", "execute", text);
	else
		req = json_loads(text, 0, &jerr);
	if (!req)
		die("raw: not valid JSON: %s (column %d)", jerr.text, jerr.column);
	if (!json_is_object(req))
		die("raw: a QMP command is a JSON object like {\"execute\": \"query-status\"}");
	json_t *msg;
	char err[512];
	int r = qmp_client_transact(c->qc, req, CTL_REPLY_TIMEOUT_MS, &msg, err, sizeof(err));
	if (r)
		ctl_die_io(c, "raw", r, err);
	char *s = json_dumps(msg, JSON_INDENT(2));
	printf("%s\n", s ? s : "");
	free(s);
	int status = json_object_get(msg, "error") ? 1 : 0;
	json_decref(msg);
	return status;
}

/* ---- the translation inspector ---- */

static uint64_t ctl_parse_addr(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (!*s || *end || errno || s[0] == '-')
		die("'%s' is not an address: give it in hex (0x7f0000001000) or decimal", s);
	return v;
}

static uint64_t jget(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

static const char *page_name(uint64_t size, char *b, size_t len)
{
	if (!size)
		return "?";
	return size_format(size, SIZE_EXACT, b, len);
}

static void print_flags(json_t *flags)
{
	size_t i;
	json_t *f;

	json_array_foreach(flags, i, f)
		printf("%s%s", i ? " " : "", json_string_value(f));
}

static int cmd_translate(struct ctl *c, const char *addr)
{
	char b[32], b2[32];
	uint64_t a = ctl_parse_addr(addr);
	json_t *args = c->gpa ? json_pack("{s:I}", "gpa", (json_int_t)a)
			      : json_pack("{s:s,s:i}", "gva", addr, "cpu", (int)c->cpu);
	json_t *r = ctl_must(c, "query-translation", args);
	json_t *walk = json_object_get(r, "guest-walk"), *l;
	size_t i;

	if (!c->gpa) {
		json_t *pg = json_object_get(r, "paging");

		printf("gva 0x%" PRIx64 " on vCPU %ld: %s paging, CR3 0x%" PRIx64 "\n", a, c->cpu,
		       json_string_value(json_object_get(pg, "mode")), jget(pg, "cr3"));
		json_array_foreach(walk, i, l) {
			printf("  %-4s[%3" PRIu64 "] at 0x%-12" PRIx64 " %-20s ",
			       json_string_value(json_object_get(l, "level")), jget(l, "index"),
			       jget(l, "entry-gpa"), json_string_value(json_object_get(l, "entry")) ?
			       json_string_value(json_object_get(l, "entry")) : "(not RAM)");
			print_flags(json_object_get(l, "flags"));
			printf("\n");
		}
	}
	json_t *st = json_object_get(r, "stopped");
	if (json_object_get(r, "gpa")) {
		json_t *acc = json_object_get(r, "access");

		printf("gpa 0x%" PRIx64, jget(r, "gpa"));
		if (json_object_get(r, "guest-page-size"))
			printf(" in a %s guest page", page_name(jget(r, "guest-page-size"), b, sizeof(b)));
		if (acc)
			printf(" (%s%s%s)", json_is_true(json_object_get(acc, "writable")) ? "writable" : "read-only",
			       json_is_true(json_object_get(acc, "user")) ? ", user" : ", supervisor",
			       json_is_true(json_object_get(acc, "executable")) ? ", executable" : ", no-execute");
		printf("\n");
	}
	json_t *slot = json_object_get(r, "memslot");
	if (slot)
		printf("memslot %" PRIu64 " (GPA 0x%" PRIx64 ", %s, %s backing) -> hva 0x%" PRIx64 "\n",
		       jget(slot, "slot"), jget(slot, "gpa"), size_format(jget(slot, "size"), SIZE_FIXED2, b,
		       sizeof(b)), json_string_value(json_object_get(r, "backing")), jget(r, "hva"));
	json_t *host = json_object_get(r, "host");
	if (host) {
		printf("host page: %s", json_is_true(json_object_get(host, "present")) ? "present" : "not present");
		if (json_object_get(host, "pfn"))
			printf(", pfn 0x%" PRIx64, jget(host, "pfn"));
		if (json_object_get(host, "kind"))
			printf(", %s", json_string_value(json_object_get(host, "kind")));
		if (json_object_get(host, "page-size"))
			printf(", %s page", page_name(jget(host, "page-size"), b, sizeof(b)));
		if (json_object_get(host, "flags")) {
			printf(" [");
			print_flags(json_object_get(host, "flags"));
			printf("]");
		}
		printf("\n");
		if (json_object_get(host, "note"))
			printf("  (%s)\n", json_string_value(json_object_get(host, "note")));
		printf("page state: %s", json_string_value(json_object_get(r, "page-state")));
		if (json_object_get(r, "page-state-note"))
			printf(" (%s)", json_string_value(json_object_get(r, "page-state-note")));
		printf("\n");
	}
	json_t *cost = json_object_get(r, "walk-cost");
	if (cost && json_object_get(cost, "2d-refs"))
		printf("TLB miss: %" PRIu64 " memory references with EPT/NPT (%" PRIu64 " guest levels, each and "
		       "the GPA through %" PRIu64 " second-stage ones), %" PRIu64 " with shadow paging; "
		       "%" PRIu64 " TLB entries of %s cover guest RAM\n", jget(cost, "2d-refs"),
		       jget(cost, "guest-refs"), jget(cost, "second-stage-refs"), jget(cost, "shadow-refs"),
		       jget(cost, "tlb-entries-for-guest-ram"), page_name(jget(cost, "tlb-entry-size"), b2, sizeof(b2)));
	else if (cost)
		printf("second stage: %" PRIu64 " memory references per miss with %s host pages\n",
		       jget(cost, "second-stage-refs"), page_name(jget(cost, "host-page-size"), b2, sizeof(b2)));
	if (st) {
		const char *lvl = json_string_value(json_object_get(st, "level"));

		printf("stopped at the %s stage%s%s: %s\n", json_string_value(json_object_get(st, "stage")),
		       lvl ? ", level " : "", lvl ? lvl : "", json_string_value(json_object_get(st, "reason")));
	}
	json_decref(r);
	return 0;
}

static int cmd_translation(struct ctl *c, const char *unused)
{
	(void)unused;
	return print_query(c, "query-translation-summary");
}

/* minivmm-memd's commands, in the table's signature. */
static int memd_host(struct ctl *c, const char *unused)
{
	(void)unused;
	return ctl_memd_host(c);
}

static int memd_vms(struct ctl *c, const char *unused)
{
	(void)unused;
	return ctl_memd_vms(c);
}

static int memd_watch(struct ctl *c, const char *unused)
{
	(void)unused;
	return ctl_memd_watch(c);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "gpa", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .qc = NULL };
	int opt;

	while ((opt = getopt_long(argc, argv, "n:c:phV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': {
			char *end;

			errno = 0;
			c.cpu = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || c.cpu < 0 || c.cpu > INT32_MAX)
				die("--cpu '%s' is not valid: give a vCPU index from 0 up", optarg);
			c.have_cpu = true;
			break;
		}
		case 'p':
			c.gpa = true;
			break;
		case 'n': {
			char *end;

			errno = 0;
			c.count = strtol(optarg, &end, 10);
			if (errno || *end || c.count < 1)
				die("--count '%s' is not valid: give a number of refreshes from 1 up", optarg);
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("minivmm-ctl %s\n", MINIVMM_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind < 2) {
		usage(stderr);
		return 2;
	}
	const char *sock = argv[optind];
	const char *cmd = argv[optind + 1];
	int nargs = argc - optind - 2;
	char **args = argv + optind + 2;

	/* One row per command: how many arguments, and what serves it on a VM's
	 * monitor and on minivmm-memd's control socket (NULL: not there). */
	static const struct {
		const char *name;
		int nargs;
		const char *args;
		int (*vm)(struct ctl *c, const char *arg);
		int (*memd)(struct ctl *c, const char *arg);
	} table[] = {
		{ "info", 0, "", cmd_info, NULL }, { "balloon", 1, " SIZE", cmd_balloon, NULL },
		{ "stats", 0, "", cmd_stats, NULL }, { "watch", 0, "", cmd_watch, memd_watch },
		{ "mm", 0, "", cmd_mm, NULL }, { "reclaim", 1, " SIZE", cmd_reclaim, NULL },
		{ "quit", 0, "", cmd_quit, NULL }, { "raw", 1, " JSON", cmd_raw, cmd_raw },
		{ "translate", 1, " ADDR", cmd_translate, NULL },
		{ "translation", 0, "", cmd_translation, NULL },
		{ "host", 0, "", NULL, memd_host }, { "vms", 0, "", NULL, memd_vms },
	};
	size_t i;
	for (i = 0; i < ARRAY_SIZE(table); i++)
		if (strcmp(table[i].name, cmd) == 0)
			break;
	if (i == ARRAY_SIZE(table)) {
		fprintf(stderr, "minivmm-ctl: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	if (nargs != table[i].nargs) {
		fprintf(stderr, "minivmm-ctl: usage: minivmm-ctl SOCKET %s%s\n", cmd, table[i].args);
		return 2;
	}
	/* check arguments before touching the VM */
	if (strcmp(cmd, "translate") == 0)
		ctl_parse_addr(args[0]);
	else if (table[i].nargs && strcmp(cmd, "raw"))
		ctl_parse_size(args[0]);
	if ((c.have_cpu || c.gpa) && strcmp(cmd, "translate"))
		die("--cpu and --gpa go with translate");
	if (c.have_cpu && c.gpa)
		die("translate: --cpu walks a vCPU's page tables, --gpa starts after them; give one");

	ctl_connect(&c, sock);
	if (c.daemon && !table[i].memd)
		die("%s is minivmm-memd's control socket: '%s' is a command for a VM; "
		    "use host, vms, watch or raw", c.path, cmd);
	if (!c.daemon && !table[i].vm)
		die("%s is not minivmm-memd's control socket: '%s' is a command for minivmm-memd "
		    "(started with --control unix:SOCKET)", c.path, cmd);
	int status = (c.daemon ? table[i].memd : table[i].vm)(&c, nargs ? args[0] : NULL);
	qmp_client_close(c.qc);
	return status;
}
