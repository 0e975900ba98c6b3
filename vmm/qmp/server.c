/*
 * server: the QMP monitor's socket side. Owns the listening unix socket,
 * the client connections (non-blocking, edge-triggered on the event loop),
 * the session protocol (greeting, capabilities negotiation, query-version),
 * stream parsing of requests with jansson, dispatch through the registry,
 * replies, and sending queued events to every negotiated client.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/lib/clock.h"
#include "vmm/lib/json.h"
#include "vmm/lib/log.h"
#include "vmm/lib/loop.h"
#include "vmm/lib/version.h"
#include "vmm/qmp/events.h"
#include "vmm/qmp/qmp.h"
#include "vmm/qmp/server.h"

#define QMP_MAX_INPUT     (1u << 20)   /* unparsed bytes one client may buffer */
#define QMP_MAX_OUTPUT    (8u << 20)   /* unsent bytes before a client counts as stuck */
#define QMP_FLUSH_MS      500          /* how long shutdown waits for slow readers */

struct qmp_client {
	struct qmp_server *srv;
	int fd;
	unsigned int serial;       /* for log lines */
	bool negotiated;           /* qmp_capabilities done */
	char *in;                  /* bytes received, not yet parsed */
	size_t in_len, in_cap;
	char *out;                 /* bytes to send from out_off */
	size_t out_len, out_off, out_cap;
	struct qmp_client *next;
};

struct qmp_server {
	struct event_loop *loop;
	struct vm *ctx;            /* handed to every handler */
	void (*on_quit)(struct vm *ctx);
	char *path;
	int listen_fd;
	unsigned int next_serial;
	bool quit_requested;
	struct qmp_client *clients;
	struct qmp_event_queue events;
};

/* ---- output ---- */

static void qmp_client_close(struct qmp_client *c, const char *why);

/* A peer that went away mid-conversation is a normal disconnection, not news. */
static const char *qmp_close_reason(int err)
{
	return err == EPIPE || err == ECONNRESET ? NULL : strerror(err);
}

/* Writes as much pending output as the socket takes. -errno when the peer is gone. */
static int qmp_client_flush(struct qmp_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -errno;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
	} else if (c->out_off > c->out_cap / 2) {
		/* compact so the buffer does not creep forward forever */
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	return 0;
}

/* Queues text and tries to send it. false when the client was closed. */
static bool qmp_client_send_text(struct qmp_client *c, const char *text, size_t len)
{
	if (c->out_len - c->out_off + len > QMP_MAX_OUTPUT) {
		qmp_client_close(c, "client does not read its replies (over 8 MiB pending)");
		return false;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (!p) {
			qmp_client_close(c, "out of memory");
			return false;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, text, len);
	c->out_len += len;
	int ret = qmp_client_flush(c);
	if (ret < 0) {
		qmp_client_close(c, qmp_close_reason(-ret));
		return false;
	}
	return true;
}

static bool qmp_client_send(struct qmp_client *c, json_t *msg)
{
	char *line = json_dump_line(msg);
	if (!line) {
		qmp_client_close(c, "cannot serialize a reply");
		return false;
	}
	bool ok = qmp_client_send_text(c, line, strlen(line));
	free(line);
	return ok;
}

static bool qmp_send_error(struct qmp_client *c, const char *cls, const char *desc, json_t *id)
{
	json_t *msg = json_pack("{s:{s:s,s:s}}", "error", "class", cls, "desc", desc);
	if (msg && id)
		json_object_set(msg, "id", id);
	return qmp_client_send(c, msg);
}

/* ---- requests ---- */

static bool qmp_handle_request(struct qmp_client *c, json_t *req)
{
	struct qmp_server *srv = c->srv;
	char err[512];

	if (!json_is_object(req))
		return qmp_send_error(c, "GenericError", "QMP input must be a JSON object", NULL);

	json_t *id = json_object_get(req, "id");
	const char *key;
	json_t *val;
	json_object_foreach(req, key, val) {
		if (strcmp(key, "execute") && strcmp(key, "arguments") && strcmp(key, "id")) {
			snprintf(err, sizeof(err), "QMP input member '%s' is unexpected", key);
			return qmp_send_error(c, "GenericError", err, id);
		}
	}
	json_t *exec = json_object_get(req, "execute");
	if (!exec)
		return qmp_send_error(c, "GenericError", "QMP input lacks member 'execute'", id);
	if (!json_is_string(exec))
		return qmp_send_error(c, "GenericError", "QMP input member 'execute' must be a string", id);
	json_t *args = json_object_get(req, "arguments");
	if (args && !json_is_object(args))
		return qmp_send_error(c, "GenericError", "QMP input member 'arguments' must be an object", id);

	const char *name = json_string_value(exec);
	bool is_caps = strcmp(name, "qmp_capabilities") == 0;
	if (!c->negotiated && !is_caps)
		return qmp_send_error(c, "CommandNotFound",
				      "Expecting capabilities negotiation with 'qmp_capabilities'", id);
	if (c->negotiated && is_caps)
		return qmp_send_error(c, "CommandNotFound",
				      "Capabilities negotiation is already complete, command ignored", id);
	qmp_cmd_fn fn = qmp_lookup(name);
	if (!fn) {
		snprintf(err, sizeof(err), "The command %s has not been found", name);
		return qmp_send_error(c, "CommandNotFound", err, id);
	}

	json_t *ret = qmp_execute(srv->ctx, name, args, err, sizeof(err));
	if (!ret)
		return qmp_send_error(c, qmp_last_error_class() ? qmp_last_error_class() : "GenericError",
				      err, id);
	if (is_caps)
		c->negotiated = true;
	json_t *msg = json_pack("{s:o}", "return", ret);
	if (msg && id)
		json_object_set(msg, "id", id);
	bool ok = qmp_client_send(c, msg);
	if (srv->quit_requested) {
		/* after the reply went out, as QEMU does */
		srv->quit_requested = false;
		srv->on_quit(srv->ctx);
	}
	return ok;
}

static bool qmp_is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/*
 * Parses every complete JSON value in the input buffer. jansson finds where a
 * value ends (JSON_DISABLE_EOF_CHECK reports the bytes it used); an error at
 * the very end of the buffer means the value is not complete yet. After a
 * real syntax error the client gets an error reply and parsing resumes at
 * the next '{', so one bad request costs one error and the session goes on.
 * false when the client was closed.
 */
static bool qmp_client_parse(struct qmp_client *c)
{
	size_t off = 0;
	bool alive = true;

	while (alive) {
		while (off < c->in_len && qmp_is_space(c->in[off]))
			off++;
		if (off == c->in_len)
			break;
		json_error_t jerr;
		size_t avail = c->in_len - off;
		json_t *req = json_loadb(c->in + off, avail,
					 JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &jerr);
		size_t used = jerr.position > 0 ? (size_t)jerr.position : 0;
		if (req) {
			/* a bare scalar at the end may still grow ("12" then "3") */
			if (!json_is_object(req) && !json_is_array(req) && used >= avail) {
				json_decref(req);
				break;
			}
			off += used ? used : avail;
			alive = qmp_handle_request(c, req);
			json_decref(req);
			continue;
		}
		if (used >= avail)
			break;  /* incomplete: wait for more bytes */
		char desc[256];
		snprintf(desc, sizeof(desc), "JSON parse error, %s", jerr.text);
		log_debug("qmp", "client %u: %s", c->serial, desc);
		alive = qmp_send_error(c, "GenericError", desc, NULL);
		/* resume past the error; never on the same byte, which could loop */
		size_t skip = used ? used : 1;
		const char *brace = memchr(c->in + off + skip, '{', avail - skip);
		off = brace ? (size_t)(brace - c->in) : c->in_len;
	}
	if (!alive)
		return false;
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return true;
}

/* Reads until EAGAIN (the socket is edge-triggered). false when the client was closed. */
static bool qmp_client_read(struct qmp_client *c)
{
	for (;;) {
		if (c->in_cap - c->in_len < 4096) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
			char *p = realloc(c->in, cap);
			if (!p) {
				qmp_client_close(c, "out of memory");
				return false;
			}
			c->in = p;
			c->in_cap = cap;
		}
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			qmp_client_close(c, qmp_close_reason(errno));
			return false;
		}
		if (n == 0) {
			qmp_client_close(c, NULL);
			return false;
		}
		/* Only a closing bracket, a newline or a space can complete a value. */
		bool may_complete = memchr(c->in + c->in_len, '}', (size_t)n) ||
				    memchr(c->in + c->in_len, ']', (size_t)n) ||
				    memchr(c->in + c->in_len, '\n', (size_t)n) ||
				    memchr(c->in + c->in_len, ' ', (size_t)n);
		c->in_len += (size_t)n;
		if (may_complete && !qmp_client_parse(c))
			return false;
		if (c->in_len > QMP_MAX_INPUT) {
			qmp_client_close(c, "request larger than 1 MiB without a complete JSON value");
			return false;
		}
	}
}

static void qmp_client_event(void *opaque, uint32_t events)
{
	struct qmp_client *c = opaque;

	if (events & EPOLLOUT) {
		int ret = qmp_client_flush(c);
		if (ret < 0) {
			qmp_client_close(c, qmp_close_reason(-ret));
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		qmp_client_read(c);
}

static void qmp_client_close(struct qmp_client *c, const char *why)
{
	struct qmp_server *srv = c->srv;

	if (why)
		log_err("qmp", "client %u dropped: %s", c->serial, why);
	else
		log_debug("qmp", "client %u disconnected", c->serial);
	loop_del(srv->loop, c->fd);
	close(c->fd);
	for (struct qmp_client **pp = &srv->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	free(c->in);
	free(c->out);
	free(c);
}

static json_t *qmp_version_json(void)
{
	int major = 0, minor = 0, micro = 0;
	sscanf(MINIVMM_VERSION, "%d.%d.%d", &major, &minor, &micro);
	return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "micro", micro, "minor", minor,
			 "major", major, "package", "minivmm " MINIVMM_VERSION);
}

static void qmp_accept(void *opaque, uint32_t events)
{
	struct qmp_server *srv = opaque;

	for (;;) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_err("qmp", "accept: %s", strerror(errno));
			return;
		}
		struct qmp_client *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = srv;
		c->fd = fd;
		c->serial = ++srv->next_serial;
		int ret = loop_add(srv->loop, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				   qmp_client_event, c);
		if (ret < 0) {
			log_err("qmp", "cannot watch a client: %s", strerror(-ret));
			close(fd);
			free(c);
			continue;
		}
		c->next = srv->clients;
		srv->clients = c;
		log_debug("qmp", "client %u connected", c->serial);
		json_t *greet = json_pack("{s:{s:o,s:[]}}", "QMP", "version", qmp_version_json(),
					  "capabilities");
		qmp_client_send(c, greet);
	}
}

/* ---- events ---- */

static void qmp_broadcast(struct qmp_server *srv, const char *text)
{
	size_t len = strlen(text);
	struct qmp_client *c = srv->clients;
	while (c) {
		struct qmp_client *next = c->next;  /* c may be closed by the send */
		if (c->negotiated)
			qmp_client_send_text(c, text, len);
		c = next;
	}
}

static void qmp_drain_events(struct qmp_server *srv)
{
	unsigned long dropped;
	struct qmp_event *ev = qmp_events_take(&srv->events, &dropped);

	if (dropped)
		log_err("qmp", "%lu events dropped: the main loop fell behind", dropped);
	while (ev) {
		struct qmp_event *next = ev->next;
		qmp_broadcast(srv, ev->text);
		qmp_event_free(ev);
		ev = next;
	}
}

static void qmp_event_ready(void *opaque, uint32_t events)
{
	struct qmp_server *srv = opaque;
	uint64_t v;

	if (read(srv->events.fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("qmp", "event eventfd: %s", strerror(errno));
	qmp_drain_events(srv);
}

void qmp_server_emit(struct qmp_server *srv, const char *name, json_t *data)
{
	qmp_events_push(&srv->events, name, data);
}

void qmp_server_quit_after_reply(struct qmp_server *srv)
{
	srv->quit_requested = true;
}

/* ---- the listening socket ---- */

/* Removes a socket file nobody listens on; refuses a live one or a non-socket. */
static int qmp_clear_stale(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "qmp: %s exists and is not a socket; choose another path", path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int saved = errno;
	close(fd);
	if (ret == 0) {
		snprintf(err, errlen, "qmp: %s is in use by another running process", path);
		return -EADDRINUSE;
	}
	if (saved != ECONNREFUSED) {
		snprintf(err, errlen, "qmp: cannot probe %s: %s", path, strerror(saved));
		return -saved;
	}
	log_info("qmp", "removing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "qmp: cannot remove stale socket %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

void qmp_server_free(struct qmp_server *srv)
{
	if (!srv)
		return;
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	qmp_events_fini(&srv->events);
	free(srv->path);
	free(srv);
}

int qmp_server_open(struct qmp_server **out, struct event_loop *loop, const char *spec,
		    struct vm *ctx, void (*on_quit)(struct vm *ctx), char *err, size_t errlen)
{
	const char *path = spec;
	int ret;

	if (!loop || !spec || !on_quit) {
		snprintf(err, errlen, "qmp: no event loop or socket path");
		return -EINVAL;
	}
	if (strncmp(spec, "unix:", 5) == 0) {
		path = spec + 5;
	} else if (strchr(spec, ':') && !strchr(spec, '/')) {
		snprintf(err, errlen, "qmp: unsupported address '%s'; use unix:PATH", spec);
		return -EINVAL;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "qmp: socket path '%s' is empty or longer than %zu bytes",
			 path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);

	struct qmp_server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		snprintf(err, errlen, "qmp: out of memory");
		return -ENOMEM;
	}
	srv->loop = loop;
	srv->ctx = ctx;
	srv->on_quit = on_quit;
	srv->listen_fd = srv->events.fd = -1;
	srv->path = strdup(path);
	if (!srv->path) {
		ret = -ENOMEM;
		snprintf(err, errlen, "qmp: out of memory");
		goto fail;
	}

	ret = qmp_clear_stale(path, err, errlen);
	if (ret < 0) {
		if (!err[0])
			snprintf(err, errlen, "qmp: %s: %s", path, strerror(-ret));
		goto fail;
	}
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "qmp: socket: %s", strerror(errno));
		goto fail;
	}
	/*
	 * The monitor can stop the VM and read guest state: owner only. The umask
	 * covers the window between bind() and chmod(); nobody can connect before
	 * listen() anyway.
	 */
	mode_t old = umask(0177);
	ret = bind(srv->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	int saved = errno;
	umask(old);
	if (ret < 0) {
		ret = -saved;
		snprintf(err, errlen, "qmp: cannot bind %s: %s", path, strerror(saved));
		goto fail;
	}
	if (chmod(path, 0600) < 0 || listen(srv->listen_fd, 16) < 0) {
		ret = -errno;
		snprintf(err, errlen, "qmp: cannot listen on %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	ret = qmp_events_init(&srv->events);
	if (ret < 0) {
		snprintf(err, errlen, "qmp: eventfd: %s", strerror(-ret));
		unlink(path);
		goto fail;
	}
	ret = loop_add(loop, srv->listen_fd, EPOLLIN, qmp_accept, srv);
	if (ret == 0) {
		ret = loop_add(loop, srv->events.fd, EPOLLIN, qmp_event_ready, srv);
		if (ret < 0)
			loop_del(loop, srv->listen_fd);
	}
	if (ret < 0) {
		snprintf(err, errlen, "qmp: cannot watch the socket: %s", strerror(-ret));
		unlink(path);
		goto fail;
	}
	*out = srv;
	log_info("qmp", "listening on unix:%s", path);
	return 0;
fail:
	qmp_server_free(srv);
	return ret;
}

void qmp_server_shutdown(struct qmp_server *srv)
{
	/* Events queued after the loop stopped (SHUTDOWN after quit) still go out. */
	qmp_drain_events(srv);
	uint64_t deadline = now_ns() + QMP_FLUSH_MS * 1000000ULL;
	for (struct qmp_client *c = srv->clients; c; c = c->next) {
		while (c->out_len > c->out_off) {
			uint64_t now = now_ns();
			if (now >= deadline || qmp_client_flush(c) < 0)
				break;
			if (c->out_len == c->out_off)
				break;
			struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
			poll(&pfd, 1, (int)((deadline - now) / 1000000ULL) + 1);
		}
	}
	while (srv->clients)
		qmp_client_close(srv->clients, NULL);
	loop_del(srv->loop, srv->listen_fd);
	loop_del(srv->loop, srv->events.fd);
	unlink(srv->path);
}

/* ---- the session protocol's own commands ---- */

static json_t *qmp_cmd_capabilities(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "enable", NULL };
	if (qmp_args_only(args, allowed, err, errlen))
		return NULL;
	json_t *enable = json_object_get(args, "enable");
	if (enable && !json_is_array(enable)) {
		snprintf(err, errlen, "Invalid parameter type for 'enable', expected: array");
		return NULL;
	}
	/* minivmm offers no optional capability (no out-of-band execution) */
	if (json_array_size(enable) > 0) {
		json_t *cap = json_array_get(enable, 0);
		snprintf(err, errlen, "Capability '%s' not available",
			 json_is_string(cap) ? json_string_value(cap) : "?");
		return NULL;
	}
	return json_object();
}
QMP_COMMAND("qmp_capabilities", qmp_cmd_capabilities)

static json_t *qmp_cmd_query_version(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	return qmp_version_json();
}
QMP_COMMAND("query-version", qmp_cmd_query_version)

