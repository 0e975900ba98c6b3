/*
 * minivmm-ctl: the friendly command line over a running minivmm's QMP
 * socket (info, balloon, stats, watch, mm, reclaim, quit, raw). It speaks
 * plain QMP, so it also works against QEMU for the commands QEMU has.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/lib/clock.h"
#include "vmm/lib/macros.h"
#include "vmm/lib/size.h"
#include "vmm/lib/version.h"

#define CTL_REPLY_TIMEOUT_MS 30000
#define CTL_MAX_MESSAGE      (16u << 20)
#define BALLOON_PATH         "/machine/peripheral/balloon0"

struct ctl {
	int fd;
	const char *path;
	char *buf;
	size_t len, cap;
	json_int_t next_id;
	bool watch;                /* print events as they pass */
};

static volatile sig_atomic_t ctl_interrupted;

static void usage(FILE *out)
{
	fprintf(out,
"usage: minivmm-ctl SOCKET COMMAND [ARGS]\n"
"\n"
"Talks to a running minivmm started with --qmp unix:SOCKET.\n"
"\n"
"commands:\n"
"  info            VM status, guest memory size and balloon size\n"
"  balloon SIZE    set the guest memory target (K/M/G suffixes), e.g. balloon 512M\n"
"  stats           the guest's memory statistics reported through the balloon\n"
"  watch           print balloon events and statistics every second until Ctrl-C\n"
"  mm              the memory manager's figures (query-memory-manager)\n"
"  reclaim SIZE    ask the memory manager to reclaim SIZE bytes now (mm-reclaim)\n"
"  quit            stop the VM\n"
"  raw JSON        send one QMP command, e.g. raw '{\"execute\": \"query-kvm\"}'\n"
"                  (a bare command name works too: raw query-status), print the reply\n"
"\n"
"options:\n"
"  -h, --help      this text\n"
"  -V, --version   print the version\n");
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("minivmm-ctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* ---- transport ---- */

static void ctl_send(struct ctl *c, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!s)
		die("out of memory");
	size_t len = strlen(s), off = 0;
	s[len] = '\n';  /* replaces the NUL: one request per line */
	len++;
	while (off < len) {
		ssize_t n = send(c->fd, s + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("%s: send: %s", c->path, strerror(errno));
		}
		off += (size_t)n;
	}
	free(s);
}

/*
 * Returns the next message, or NULL on timeout (timeout_ms < 0 waits
 * forever) or Ctrl-C in watch mode. Dies when the connection ends.
 */
static json_t *ctl_recv(struct ctl *c, int timeout_ms)
{
	for (;;) {
		size_t off = 0;
		while (off < c->len && strchr(" \t\r\n", c->buf[off]))
			off++;
		if (off < c->len) {
			json_error_t jerr;
			json_t *msg = json_loadb(c->buf + off, c->len - off, JSON_DISABLE_EOF_CHECK, &jerr);
			size_t used = jerr.position > 0 ? (size_t)jerr.position : 0;
			if (msg) {
				off += used;
				memmove(c->buf, c->buf + off, c->len - off);
				c->len -= off;
				return msg;
			}
			if (used < c->len - off)
				die("%s: the server sent malformed JSON: %s", c->path, jerr.text);
		}
		if (c->len > CTL_MAX_MESSAGE)
			die("%s: reply larger than 16 MiB", c->path);

		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int r = poll(&pfd, 1, timeout_ms);
		if (r < 0 && errno == EINTR) {
			if (ctl_interrupted)
				return NULL;
			continue;
		}
		if (r < 0)
			die("%s: poll: %s", c->path, strerror(errno));
		if (r == 0)
			return NULL;
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 131072;
			c->buf = realloc(c->buf, c->cap);
			if (!c->buf)
				die("out of memory");
		}
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("%s: recv: %s", c->path, strerror(errno));
		if (n == 0)
			die("%s: minivmm closed the connection", c->path);
		c->len += (size_t)n;
	}
}

static void ctl_print_time(void)
{
	time_t t = time(NULL);
	struct tm tm;
	char buf[16];
	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
	printf("%s ", buf);
}

static void ctl_print_event(json_t *ev)
{
	const char *name = json_string_value(json_object_get(ev, "event"));
	json_t *data = json_object_get(ev, "data");
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

/*
 * Sends one command and waits for its reply; events in between are printed
 * in watch mode and skipped otherwise. Returns the reply message (with
 * "return" or "error"); NULL on timeout or interruption.
 */
static json_t *ctl_exchange(struct ctl *c, json_t *req, bool match_id)
{
	json_int_t id = ++c->next_id;
	if (match_id)
		json_object_set_new(req, "id", json_integer(id));
	ctl_send(c, req);
	for (;;) {
		json_t *msg = ctl_recv(c, CTL_REPLY_TIMEOUT_MS);
		if (!msg)
			return NULL;
		if (json_object_get(msg, "event")) {
			if (c->watch)
				ctl_print_event(msg);
			json_decref(msg);
			continue;
		}
		json_t *mid = json_object_get(msg, "id");
		if (match_id && !(json_is_integer(mid) && json_integer_value(mid) == id)) {
			json_decref(msg);
			continue;
		}
		return msg;
	}
}

/* Runs name(args stolen); returns the "return" value (new ref) or NULL with the error in err. */
static json_t *ctl_cmd(struct ctl *c, const char *name, json_t *args, char *err, size_t errlen)
{
	json_t *req = json_pack("{s:s}", "execute", name);
	if (!req)
		die("out of memory");
	if (args)
		json_object_set_new(req, "arguments", args);
	json_t *msg = ctl_exchange(c, req, true);
	if (!msg) {
		snprintf(err, errlen, ctl_interrupted ? "interrupted" : "no reply within %d s",
			 CTL_REPLY_TIMEOUT_MS / 1000);
		return NULL;
	}
	json_t *ret = json_object_get(msg, "return");
	if (ret) {
		json_incref(ret);
		json_decref(msg);
		return ret;
	}
	const char *desc = json_string_value(json_object_get(json_object_get(msg, "error"), "desc"));
	snprintf(err, errlen, "%s", desc ? desc : "malformed reply");
	json_decref(msg);
	return NULL;
}

/* Like ctl_cmd but a failure ends the program with the server's message. */
static json_t *ctl_must(struct ctl *c, const char *name, json_t *args)
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
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	c->path = path;
	if (strlen(path) >= sizeof(sa.sun_path))
		die("socket path %s is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot connect to %s: %s; is minivmm running with --qmp unix:%s?",
		    path, strerror(errno), path);

	json_t *greet = ctl_recv(c, 5000);
	if (!greet || !json_object_get(greet, "QMP"))
		die("%s: no QMP greeting; is this a minivmm or QEMU QMP socket?", path);
	json_decref(greet);
	json_decref(ctl_must(c, "qmp_capabilities", NULL));
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
static void ctl_print_tree(const char *key, json_t *v, int depth)
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

static int cmd_info(struct ctl *c)
{
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

static int cmd_stats(struct ctl *c)
{
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

static int64_t ctl_stat(json_t *gs, const char *name)
{
	json_t *v = json_object_get(json_object_get(gs, "stats"), name);
	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static int cmd_watch(struct ctl *c)
{
	struct sigaction sa = { .sa_handler = ctl_on_sigint };
	sigaction(SIGINT, &sa, NULL);  /* no SA_RESTART: poll returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	c->watch = true;
	printf("watching %s (Ctrl-C to stop)\n", c->path);
	fflush(stdout);

	bool said_no_stats = false;
	while (!ctl_interrupted) {
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

		/* wait a second, printing any event that arrives meanwhile */
		uint64_t until = now_ns() + 1000000000ULL;
		while (!ctl_interrupted) {
			uint64_t now = now_ns();
			if (now >= until)
				break;
			json_t *ev = ctl_recv(c, (int)((until - now) / 1000000ULL) + 1);
			if (!ev)
				continue;
			if (json_object_get(ev, "event"))
				ctl_print_event(ev);
			json_decref(ev);
		}
	}
	printf("\n");
	return 0;
}

static int cmd_mm(struct ctl *c)
{
	json_t *ret = ctl_must(c, "query-memory-manager", NULL);
	const char *k;
	json_t *v;
	json_object_foreach(ret, k, v)
		ctl_print_tree(k, v, 0);
	json_decref(ret);
	return 0;
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

static int cmd_quit(struct ctl *c)
{
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
	bool has_id = json_object_get(req, "id") != NULL;
	json_t *msg = ctl_exchange(c, req, !has_id);
	if (!msg)
		die("raw: no reply within %d s", CTL_REPLY_TIMEOUT_MS / 1000);
	if (!has_id)
		json_object_del(msg, "id");  /* ours, not the user's */
	char *s = json_dumps(msg, JSON_INDENT(2));
	printf("%s\n", s ? s : "");
	free(s);
	int status = json_object_get(msg, "error") ? 1 : 0;
	json_decref(msg);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (opt) {
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

	static const struct {
		const char *name;
		int nargs;
		const char *args;
	} table[] = {
		{ "info", 0, "" }, { "balloon", 1, " SIZE" }, { "stats", 0, "" },
		{ "watch", 0, "" }, { "mm", 0, "" }, { "reclaim", 1, " SIZE" },
		{ "quit", 0, "" }, { "raw", 1, " JSON" },
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
	/* check sizes before touching the VM */
	if (table[i].nargs && strcmp(cmd, "raw"))
		ctl_parse_size(args[0]);

	struct ctl c = { .fd = -1 };
	ctl_connect(&c, sock);
	int status;
	if (!strcmp(cmd, "info"))
		status = cmd_info(&c);
	else if (!strcmp(cmd, "balloon"))
		status = cmd_balloon(&c, args[0]);
	else if (!strcmp(cmd, "stats"))
		status = cmd_stats(&c);
	else if (!strcmp(cmd, "watch"))
		status = cmd_watch(&c);
	else if (!strcmp(cmd, "mm"))
		status = cmd_mm(&c);
	else if (!strcmp(cmd, "reclaim"))
		status = cmd_reclaim(&c, args[0]);
	else if (!strcmp(cmd, "quit"))
		status = cmd_quit(&c);
	else
		status = cmd_raw(&c, args[0]);
	close(c.fd);
	free(c.buf);
	return status;
}
