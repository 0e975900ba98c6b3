/*
 * qmp: the QMP monitor. Owns the listening unix socket, the client
 * connections (non-blocking, edge-triggered on vm->loop), stream parsing of
 * requests with jansson, dispatch through the command registry, the
 * cross-thread event queue and the built-in commands (qmp_capabilities,
 * query-version, query-commands, query-status, quit,
 * query-memory-size-summary, query-kvm, query-cpus-fast).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "qmp.h"
#include "vmm.h"

#define QMP_MAX_COMMANDS  128
#define QMP_MAX_INPUT     (1u << 20)   /* unparsed bytes one client may buffer */
#define QMP_MAX_OUTPUT    (8u << 20)   /* unsent bytes before a client counts as stuck */
#define QMP_MAX_EVENTS    4096         /* queued events before the oldest are dropped */
#define QMP_FLUSH_MS      500          /* how long destroy waits for slow readers */

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

struct qmp_event {
	char *text;                /* serialized, "\r\n"-terminated */
	struct qmp_event *next;
};

struct qmp_server {
	struct vm *vm;
	char *path;
	int listen_fd;
	int event_fd;
	unsigned int next_serial;
	bool quit_requested;
	struct qmp_client *clients;

	struct qmp_event *ev_head, *ev_tail;   /* under qmp_ev_lock */
	unsigned int ev_count;
	unsigned long ev_dropped;
};

/*
 * Guards every server's event queue and the vm->qmp pointer as seen by
 * emitters, so a thread emitting while the server is destroyed either queues
 * before the teardown or sees no server; never a freed one. One VM per
 * process makes a single lock enough.
 */
static pthread_mutex_t qmp_ev_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- registry ---- */

struct qmp_command {
	const char *name;
	qmp_cmd_fn fn;
};

/* A fixed table: constructors fill it before main(), no allocation needed. */
static struct qmp_command qmp_commands[QMP_MAX_COMMANDS];
static int qmp_nr_commands;

/* Set by a failing handler through qmp_set_error_class(); main thread only. */
static const char *qmp_error_class;

void qmp_set_error_class(const char *cls)
{
	qmp_error_class = cls;
}

qmp_cmd_fn qmp_lookup(const char *name)
{
	for (int i = 0; i < qmp_nr_commands; i++)
		if (strcmp(qmp_commands[i].name, name) == 0)
			return qmp_commands[i].fn;
	return NULL;
}

int qmp_register(const char *name, qmp_cmd_fn fn)
{
	if (!name || !*name || !fn)
		return -EINVAL;
	if (qmp_lookup(name)) {
		log_err("qmp", "command '%s' registered twice; keeping the first", name);
		return -EEXIST;
	}
	if (qmp_nr_commands == QMP_MAX_COMMANDS) {
		log_err("qmp", "command table full, '%s' not registered", name);
		return -ENOSPC;
	}
	qmp_commands[qmp_nr_commands++] = (struct qmp_command){ name, fn };
	return 0;
}

json_t *qmp_execute(struct vm *vm, const char *name, json_t *args, char *err, size_t errlen)
{
	qmp_cmd_fn fn = qmp_lookup(name);

	if (!fn) {
		snprintf(err, errlen, "The command %s has not been found", name);
		return NULL;
	}
	json_t *empty = NULL;
	if (!args)
		args = empty = json_object();
	err[0] = '\0';
	qmp_error_class = NULL;
	json_t *ret = fn(vm, args, err, errlen);
	if (!ret && !err[0])
		snprintf(err, errlen, "%s failed", name);
	json_decref(empty);
	return ret;
}

/* ---- argument helpers ---- */

static int qmp_arg_get(json_t *args, const char *key, bool required, json_t **val,
		       char *err, size_t errlen)
{
	*val = json_is_object(args) ? json_object_get(args, key) : NULL;
	if (*val)
		return 0;
	if (!required)
		return -ENOENT;
	snprintf(err, errlen, "Parameter '%s' is missing", key);
	return -EINVAL;
}

int qmp_arg_u64(json_t *args, const char *key, bool required, uint64_t *out,
		char *err, size_t errlen)
{
	json_t *v;
	int ret = qmp_arg_get(args, key, required, &v, err, errlen);
	if (ret)
		return ret;
	/* jansson integers are signed 64-bit; negative values are not sizes */
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(err, errlen, "Invalid parameter type for '%s', expected: integer >= 0", key);
		return -EINVAL;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int qmp_arg_str(json_t *args, const char *key, bool required, const char **out,
		char *err, size_t errlen)
{
	json_t *v;
	int ret = qmp_arg_get(args, key, required, &v, err, errlen);
	if (ret)
		return ret;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "Invalid parameter type for '%s', expected: string", key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

int qmp_arg_bool(json_t *args, const char *key, bool required, bool *out,
		 char *err, size_t errlen)
{
	json_t *v;
	int ret = qmp_arg_get(args, key, required, &v, err, errlen);
	if (ret)
		return ret;
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "Invalid parameter type for '%s', expected: boolean", key);
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

int qmp_args_only(json_t *args, const char *const *allowed, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) {
		bool ok = false;
		for (int i = 0; allowed && allowed[i]; i++)
			ok |= strcmp(allowed[i], key) == 0;
		if (!ok) {
			snprintf(err, errlen, "Parameter '%s' is unexpected", key);
			return -EINVAL;
		}
	}
	return 0;
}

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

/* Serializes msg (stolen) as one line, as QEMU does ("\r\n"-terminated). */
static char *qmp_serialize(json_t *msg)
{
	char *s = json_dumps(msg, JSON_ENSURE_ASCII);
	json_decref(msg);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *line = realloc(s, n + 3);
	if (!line) {
		free(s);
		return NULL;
	}
	memcpy(line + n, "\r\n", 3);
	return line;
}

static bool qmp_client_send(struct qmp_client *c, json_t *msg)
{
	char *line = qmp_serialize(msg);
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

	json_t *ret = qmp_execute(srv->vm, name, args, err, sizeof(err));
	if (!ret)
		return qmp_send_error(c, qmp_error_class ? qmp_error_class : "GenericError", err, id);
	if (is_caps)
		c->negotiated = true;
	json_t *msg = json_pack("{s:o}", "return", ret);
	if (msg && id)
		json_object_set(msg, "id", id);
	bool ok = qmp_client_send(c, msg);
	if (srv->quit_requested) {
		/* after the reply went out, as QEMU does */
		srv->quit_requested = false;
		vm_request_exit(srv->vm, 0);
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
	loop_del(srv->vm->loop, c->fd);
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
		int ret = loop_add(srv->vm->loop, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
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
	pthread_mutex_lock(&qmp_ev_lock);
	struct qmp_event *ev = srv->ev_head;
	unsigned long dropped = srv->ev_dropped;
	srv->ev_head = srv->ev_tail = NULL;
	srv->ev_count = 0;
	srv->ev_dropped = 0;
	pthread_mutex_unlock(&qmp_ev_lock);

	if (dropped)
		log_err("qmp", "%lu events dropped: the main loop fell behind", dropped);
	while (ev) {
		struct qmp_event *next = ev->next;
		qmp_broadcast(srv, ev->text);
		free(ev->text);
		free(ev);
		ev = next;
	}
}

static void qmp_event_ready(void *opaque, uint32_t events)
{
	struct qmp_server *srv = opaque;
	uint64_t v;

	if (read(srv->event_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("qmp", "event eventfd: %s", strerror(errno));
	qmp_drain_events(srv);
}

void qmp_emit_event(struct vm *vm, const char *name, json_t *data)
{
	if (!vm || !name) {
		json_decref(data);
		return;
	}
	pthread_mutex_lock(&qmp_ev_lock);
	bool serving = vm->qmp != NULL;
	pthread_mutex_unlock(&qmp_ev_lock);
	if (!serving) {
		json_decref(data);
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_t *msg = json_pack("{s:s}", "event", name);
	if (msg && data)
		json_object_set_new(msg, "data", data);
	else
		json_decref(data);
	if (msg)
		json_object_set_new(msg, "timestamp",
				    json_pack("{s:I,s:I}", "seconds", (json_int_t)ts.tv_sec,
					      "microseconds", (json_int_t)(ts.tv_nsec / 1000)));
	struct qmp_event *ev = calloc(1, sizeof(*ev));
	if (!ev || !msg || !(ev->text = qmp_serialize(msg))) {
		log_err("qmp", "cannot queue event %s: out of memory", name);
		free(ev);
		return;
	}

	pthread_mutex_lock(&qmp_ev_lock);
	struct qmp_server *srv = vm->qmp;
	if (!srv) {
		pthread_mutex_unlock(&qmp_ev_lock);
		free(ev->text);
		free(ev);
		return;
	}
	if (srv->ev_count == QMP_MAX_EVENTS) {
		struct qmp_event *old = srv->ev_head;
		srv->ev_head = old->next;
		if (!srv->ev_head)
			srv->ev_tail = NULL;
		free(old->text);
		free(old);
		srv->ev_count--;
		srv->ev_dropped++;
	}
	if (srv->ev_tail)
		srv->ev_tail->next = ev;
	else
		srv->ev_head = ev;
	srv->ev_tail = ev;
	srv->ev_count++;
	uint64_t one = 1;
	if (write(srv->event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("qmp", "event eventfd: %s", strerror(errno));
	pthread_mutex_unlock(&qmp_ev_lock);
}

/* ---- server ---- */

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

static void qmp_server_free(struct qmp_server *srv)
{
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->event_fd >= 0)
		close(srv->event_fd);
	free(srv->path);
	free(srv);
}

int qmp_server_create(struct vm *vm, const char *spec, char *err, size_t errlen)
{
	const char *path = spec;
	int ret;

	if (!vm || !vm->loop || !spec) {
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
	srv->vm = vm;
	srv->listen_fd = srv->event_fd = -1;
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
	srv->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->event_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "qmp: eventfd: %s", strerror(errno));
		unlink(path);
		goto fail;
	}
	ret = loop_add(vm->loop, srv->listen_fd, EPOLLIN, qmp_accept, srv);
	if (ret == 0) {
		ret = loop_add(vm->loop, srv->event_fd, EPOLLIN, qmp_event_ready, srv);
		if (ret < 0)
			loop_del(vm->loop, srv->listen_fd);
	}
	if (ret < 0) {
		snprintf(err, errlen, "qmp: cannot watch the socket: %s", strerror(-ret));
		unlink(path);
		goto fail;
	}
	pthread_mutex_lock(&qmp_ev_lock);
	vm->qmp = srv;
	pthread_mutex_unlock(&qmp_ev_lock);
	log_info("qmp", "listening on unix:%s", path);
	return 0;
fail:
	qmp_server_free(srv);
	return ret;
}

void qmp_server_destroy(struct vm *vm)
{
	struct qmp_server *srv = vm ? vm->qmp : NULL;
	if (!srv)
		return;

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
	loop_del(vm->loop, srv->listen_fd);
	loop_del(vm->loop, srv->event_fd);
	unlink(srv->path);
	pthread_mutex_lock(&qmp_ev_lock);
	vm->qmp = NULL;
	pthread_mutex_unlock(&qmp_ev_lock);

	struct qmp_event *ev = srv->ev_head;
	while (ev) {
		struct qmp_event *next = ev->next;
		free(ev->text);
		free(ev);
		ev = next;
	}
	qmp_server_free(srv);
}

/* ---- built-in commands ---- */

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

static json_t *qmp_cmd_query_commands(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	json_t *list = json_array();
	for (int i = 0; list && i < qmp_nr_commands; i++)
		json_array_append_new(list, json_pack("{s:s}", "name", qmp_commands[i].name));
	return list;
}
QMP_COMMAND("query-commands", qmp_cmd_query_commands)

static json_t *qmp_cmd_query_status(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	bool running = atomic_load(&vm->state) == VM_RUNNING;
	return json_pack("{s:s,s:b,s:b}", "status", running ? "running" : "shutdown",
			 "singlestep", 0, "running", running);
}
QMP_COMMAND("query-status", qmp_cmd_query_status)

static json_t *qmp_cmd_quit(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	if (vm->qmp)
		vm->qmp->quit_requested = true;  /* acted on once the reply is sent */
	else
		vm_request_exit(vm, 0);
	qmp_emit_event(vm, "SHUTDOWN", json_pack("{s:b,s:s}", "guest", 0, "reason", "host-qmp-quit"));
	return json_object();
}
QMP_COMMAND("quit", qmp_cmd_quit)

static json_t *qmp_cmd_query_memory_size_summary(struct vm *vm, json_t *args, char *err,
						 size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	return json_pack("{s:I,s:I}", "base-memory", (json_int_t)vm->mem.ram_size,
			 "plugged-memory", (json_int_t)0);
}
QMP_COMMAND("query-memory-size-summary", qmp_cmd_query_memory_size_summary)

static json_t *qmp_cmd_query_kvm(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	return json_pack("{s:b,s:b}", "enabled", 1, "present", 1);
}
QMP_COMMAND("query-kvm", qmp_cmd_query_kvm)

static json_t *qmp_cmd_query_cpus_fast(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	json_t *list = json_array();
	for (int i = 0; list && i < vm->nr_cpus; i++) {
		char qom[64];
		snprintf(qom, sizeof(qom), "/machine/unattached/device[%d]", i);
		json_array_append_new(list, json_pack("{s:i,s:s,s:s,s:{s:i,s:i,s:i}}",
			"cpu-index", i, "qom-path", qom, "target", "x86_64",
			"props", "socket-id", i, "core-id", 0, "thread-id", 0));
	}
	return list;
}
QMP_COMMAND("query-cpus-fast", qmp_cmd_query_cpus_fast)
