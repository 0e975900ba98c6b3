/*
 * server: the QMP monitor's socket side. Owns the listening unix socket,
 * the client connections (non-blocking, edge-triggered on the event loop),
 * the session protocol (greeting, capabilities negotiation), stream parsing
 * of requests with jansson, dispatch through the registry, replies (also
 * the late replies of asynchronous commands) and sending queued events to
 * every negotiated client.
 *
 * A client with a command in flight is "busy": its further input stays
 * unread until the reply went out, so its replies keep the order of its
 * commands (QEMU without out-of-band), while other clients are served.
 *
 * Threads: the main thread, except qmp_server_sink(), which the thread that
 * completes an asynchronous command calls.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/lib/clock.h"
#include "vmm/lib/json.h"
#include "vmm/lib/log.h"
#include "vmm/lib/loop.h"
#include "vmm/lib/ratelimit.h"
#include "vmm/qmp/dispatch.h"
#include "vmm/qmp/events.h"
#include "vmm/qmp/server.h"

/* The monitor's published limits (README, "QMP limits"); reaching one is
 * answered with an error and a log line, never a crash. JSON nesting is
 * jansson's (JSON_PARSER_MAX_DEPTH, 2048): deeper input is a parse error. */
#define QMP_MAX_CLIENTS   64           /* clients at once; more are refused */
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
	struct qmp_pending *busy;  /* the command in flight; input waits meanwhile */
	struct qmp_client *next;
};

/* A command the server started: the request, and whom to answer. */
struct qmp_pending {
	struct qmp_async req;
	struct qmp_server *srv;
	struct qmp_client *client; /* NULL once the client is gone */
};

struct qmp_server {
	struct event_loop *loop;
	struct qmp_registry *reg;
	void (*on_quit)(void *opaque);
	void *opaque;
	char *path;
	int listen_fd;
	unsigned int next_serial;
	bool quit_requested;
	bool closing;              /* shutting down: finish what runs, start nothing */
	struct qmp_client *clients;
	unsigned int nr_clients;
	struct ratelimit refused_rl;   /* log lines about refused clients */
	struct qmp_event_queue events;
	unsigned int inflight;     /* commands started and not finished */
	/* finished asynchronous commands, handed over by the threads that ran them */
	pthread_mutex_t done_lock;
	int done_fd;               /* eventfd the main loop watches */
	struct qmp_async *done_head, *done_tail;
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
		/* no error reply: the client reads nothing, and it would not fit */
		qmp_client_close(c, "client does not read its replies and events (over 8 MiB pending)");
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

/* ---- replies ---- */

static void qmp_drain_events(struct qmp_server *srv);

static bool qmp_client_alive(struct qmp_server *srv, struct qmp_client *c)
{
	for (struct qmp_client *p = srv->clients; p; p = p->next)
		if (p == c)
			return true;
	return false;
}

/*
 * Sends a command's outcome to c. Events queued before it (a STOP from
 * `stop`) go out first, as QEMU sends them before the reply; a client that
 * negotiates now gets the events emitted from here on. false when c was
 * closed (possibly by the events' sending).
 */
static bool qmp_send_outcome(struct qmp_server *srv, struct qmp_client *c, struct qmp_async *req,
			     bool is_caps)
{
	char cls[64];
	json_t *msg;

	qmp_drain_events(srv);
	if (!qmp_client_alive(srv, c))
		return false;
	if (is_caps && req->ret)
		c->negotiated = true;
	if (req->ret) {
		msg = json_pack("{s:o}", "return", req->ret);
		req->ret = NULL;
	} else {
		qmp_error_split(req->err, cls, sizeof(cls));
		msg = json_pack("{s:{s:s,s:s}}", "error", "class", cls, "desc", req->err);
	}
	if (msg && req->id)
		json_object_set(msg, "id", req->id);
	bool ok = qmp_client_send(c, msg);
	if (srv->quit_requested) {
		/* after the reply went out, as QEMU does */
		srv->quit_requested = false;
		srv->on_quit(srv->opaque);
	}
	return ok;
}

static void qmp_pending_free(struct qmp_pending *p)
{
	json_decref(p->req.id);
	json_decref(p->req.ret);
	free(p);
}

/* Called by whichever thread finished an asynchronous command. */
static void qmp_server_sink(struct qmp_async *req)
{
	struct qmp_pending *p = (struct qmp_pending *)req;
	struct qmp_server *srv = p->srv;
	uint64_t one = 1;

	pthread_mutex_lock(&srv->done_lock);
	req->next = NULL;
	if (srv->done_tail)
		srv->done_tail->next = req;
	else
		srv->done_head = req;
	srv->done_tail = req;
	if (write(srv->done_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("qmp", "completion eventfd: %s", strerror(errno));
	pthread_mutex_unlock(&srv->done_lock);
}

static bool qmp_client_parse(struct qmp_client *c);
static bool qmp_client_read(struct qmp_client *c);

/* Answers a finished asynchronous command and lets its client go on. */
static void qmp_finish_pending(struct qmp_server *srv, struct qmp_pending *p)
{
	struct qmp_client *c = p->client;

	srv->inflight--;
	if (c) {
		c->busy = NULL;
		/* what the client sent meanwhile is parsed now, then the socket read */
		if (qmp_send_outcome(srv, c, &p->req, false) && !srv->closing && qmp_client_parse(c) &&
		    !c->busy)
			qmp_client_read(c);
	}
	qmp_pending_free(p);
}

static void qmp_done_ready(void *opaque, uint32_t events)
{
	struct qmp_server *srv = opaque;
	uint64_t v;

	if (read(srv->done_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("qmp", "completion eventfd: %s", strerror(errno));
	pthread_mutex_lock(&srv->done_lock);
	struct qmp_async *req = srv->done_head;
	srv->done_head = srv->done_tail = NULL;
	pthread_mutex_unlock(&srv->done_lock);
	while (req) {
		struct qmp_async *next = req->next;
		qmp_finish_pending(srv, (struct qmp_pending *)req);
		req = next;
	}
}

/* ---- requests ---- */

/* Starts a validated command for c: replies at once, or marks c busy. */
static bool qmp_start(struct qmp_client *c, const char *name, json_t *args, json_t *id,
		      bool is_caps)
{
	struct qmp_server *srv = c->srv;
	struct qmp_pending *p = calloc(1, sizeof(*p));

	if (!p)
		return qmp_send_error(c, "GenericError", "out of memory", id);
	p->srv = srv;
	p->client = c;
	p->req.sink = qmp_server_sink;
	p->req.id = json_incref(id);
	if (qmp_dispatch(srv->reg, name, args, &p->req) == QMP_PENDING) {
		c->busy = p;
		srv->inflight++;
		return true;
	}
	bool ok = qmp_send_outcome(srv, c, &p->req, is_caps);
	qmp_pending_free(p);
	return ok;
}

static bool qmp_handle_request(struct qmp_client *c, json_t *req)
{
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
	return qmp_start(c, name, args, id, is_caps);
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

	while (alive && !c->busy) {
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
		if (!alive)
			break;  /* the send closed the client: c is freed */
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
		if (c->busy)
			return true;   /* read on when its command finished */
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
			/* the client learns why before the connection goes */
			if (qmp_send_error(c, "GenericError", "request longer than 1 MiB without a complete "
					   "JSON value: the monitor's limit; the connection is closed", NULL))
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
	if (c->busy)
		c->busy->client = NULL;   /* its command finishes unanswered */
	loop_del(srv->loop, c->fd);
	close(c->fd);
	for (struct qmp_client **pp = &srv->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			srv->nr_clients--;
			break;
		}
	}
	free(c->in);
	free(c->out);
	free(c);
}

/* One client too many: it gets one error line (best effort, it may not
 * read yet) and is closed; the log says so, rate-limited, as a client can
 * retry in a loop. */
static void qmp_refuse(struct qmp_server *srv, int fd)
{
	char desc[160];
	json_t *msg;
	char *line = NULL;

	snprintf(desc, sizeof(desc), "too many QMP clients: the monitor serves at most %u at once; "
		 "close one and retry", QMP_MAX_CLIENTS);
	msg = json_pack("{s:{s:s,s:s}}", "error", "class", "GenericError", "desc", desc);
	if (msg)
		line = json_dump_line(msg);   /* takes msg */
	if (line && send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("qmp", "refused client: %s", strerror(errno));
	free(line);
	close(fd);
	log_limited(&srv->refused_rl, log_err, "qmp", "client refused: %u clients are connected, the most "
		    "the monitor serves at once", QMP_MAX_CLIENTS);
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
		if (srv->nr_clients >= QMP_MAX_CLIENTS) {
			qmp_refuse(srv, fd);
			continue;
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
		srv->nr_clients++;
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

void qmp_server_quit_after_reply(struct qmp_server *srv)
{
	srv->quit_requested = true;
}

/* ---- the listening socket ---- */

void qmp_server_free(struct qmp_server *srv)
{
	if (!srv)
		return;
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->done_fd >= 0) {
		close(srv->done_fd);
		pthread_mutex_destroy(&srv->done_lock);
	}
	qmp_events_fini(&srv->events);
	free(srv->path);
	free(srv);
}

/* The event queue, the completion eventfd and the loop watches. 0 or -errno with err. */
static int qmp_watch(struct qmp_server *srv, char *err, size_t errlen)
{
	int ret = qmp_events_init(&srv->events);

	if (ret < 0) {
		snprintf(err, errlen, "qmp: eventfd: %s", strerror(-ret));
		return ret;
	}
	srv->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->done_fd < 0) {
		snprintf(err, errlen, "qmp: eventfd: %s", strerror(errno));
		return -errno;
	}
	pthread_mutex_init(&srv->done_lock, NULL);
	ret = loop_add(srv->loop, srv->listen_fd, EPOLLIN, qmp_accept, srv);
	if (ret == 0)
		ret = loop_add(srv->loop, srv->events.fd, EPOLLIN, qmp_event_ready, srv);
	if (ret == 0)
		ret = loop_add(srv->loop, srv->done_fd, EPOLLIN, qmp_done_ready, srv);
	if (ret < 0) {
		loop_del(srv->loop, srv->listen_fd);
		loop_del(srv->loop, srv->events.fd);
		snprintf(err, errlen, "qmp: cannot watch the socket: %s", strerror(-ret));
	}
	return ret;
}

static const struct sb_rule qmp_server_rules[] = {
	SB_SYS(accept4), SB_SYS(accept), SB_SYS(recvfrom), SB_SYS(sendto), SB_SYS(read), SB_SYS(write),
	SB_SYS(close), SB_SYS(shutdown), SB_SYS(poll), SB_SYS(ppoll), SB_SYS(unlink), SB_SYS(getsockopt),
};
const struct sb_list qmp_sandbox_server = SB_LIST("qmp-server", qmp_server_rules);

int qmp_server_open(struct qmp_server **out, struct event_loop *loop, const char *spec,
		    struct qmp_registry *reg, void (*on_quit)(void *opaque), void *opaque,
		    char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int ret;

	if (!loop || !spec || !reg || !on_quit) {
		snprintf(err, errlen, "qmp: no event loop, registry or socket path");
		return -EINVAL;
	}
	ret = qmp_socket_parse(spec, &sa, err, errlen);
	if (ret < 0)
		return ret;
	struct qmp_server *srv = calloc(1, sizeof(*srv));
	if (!srv || !(srv->path = strdup(sa.sun_path))) {
		free(srv);
		snprintf(err, errlen, "qmp: out of memory");
		return -ENOMEM;
	}
	srv->loop = loop;
	srv->reg = reg;
	srv->on_quit = on_quit;
	srv->opaque = opaque;
	srv->listen_fd = srv->events.fd = srv->done_fd = -1;
	ret = qmp_socket_listen(&sa, &srv->listen_fd, err, errlen);
	if (ret == 0) {
		ret = qmp_watch(srv, err, errlen);
		if (ret < 0)
			unlink(sa.sun_path);
	}
	if (ret < 0) {
		qmp_server_free(srv);
		return ret;
	}
	qmp_registry_attach_events(reg, &srv->events);
	*out = srv;
	log_info("qmp", "listening on unix:%s", sa.sun_path);
	return 0;
}

/* Runs the main loop's share of the commands still in flight until none is. */
static void qmp_finish_inflight(struct qmp_server *srv)
{
	while (srv->inflight) {
		struct pollfd pfd = { .fd = srv->done_fd, .events = POLLIN };
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			break;
		qmp_done_ready(srv, POLLIN);
	}
}

void qmp_server_shutdown(struct qmp_server *srv)
{
	/* A command in flight still gets its reply; nothing new starts. */
	srv->closing = true;
	qmp_finish_inflight(srv);
	qmp_registry_attach_events(srv->reg, NULL);
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
	loop_del(srv->loop, srv->done_fd);
	unlink(srv->path);
}
