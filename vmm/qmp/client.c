/*
 * qmp/client: a QMP client on a unix socket. Messages are JSON objects one
 * after another (QEMU ends them with CRLF, but a client must not rely on
 * line breaks), parsed with jansson straight from the receive buffer;
 * replies are matched to commands by an id the client adds; events are
 * kept in a bounded queue for the caller.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/lib/clock.h"
#include "vmm/qmp/client.h"

struct qmp_client {
	int fd;
	char *path;
	pid_t peer;
	char *buf;
	size_t len, cap;
	json_int_t next_id;
	json_t *greeting;
	json_t *events;            /* array, oldest first */
	char cls[64];
};

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* Milliseconds left until deadline (UINT64_MAX: none), as poll() wants them. */
static int left_ms(uint64_t deadline)
{
	uint64_t now;

	if (deadline == UINT64_MAX)
		return -1;
	now = now_ns();
	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX : now_ns() + (uint64_t)timeout_ms * 1000000ULL;
}

/* One complete message from the buffer: 1 with *msg, 0 when more bytes are needed. */
static int take_message(struct qmp_client *c, json_t **msg, char *err, size_t errlen)
{
	size_t off = 0;
	json_error_t jerr;

	while (off < c->len && strchr(" \t\r\n", c->buf[off]))
		off++;
	if (off == c->len) {
		c->len = 0;
		return 0;
	}
	*msg = json_loadb(c->buf + off, c->len - off, JSON_DISABLE_EOF_CHECK, &jerr);
	if (*msg) {
		off += (size_t)jerr.position;
		memmove(c->buf, c->buf + off, c->len - off);
		c->len -= off;
		if (!json_is_object(*msg)) {
			json_decref(*msg);
			*msg = NULL;
			return fail(err, errlen, -EBADMSG, "%s: the server sent JSON that is not a QMP message", c->path);
		}
		return 1;
	}
	/* an error before the end of what we have is malformed; at the end, a message in pieces */
	if (jerr.position >= 0 && (size_t)jerr.position < c->len - off)
		return fail(err, errlen, -EBADMSG, "%s: the server sent malformed JSON: %s", c->path, jerr.text);
	if (c->len > QMP_CLIENT_MAX_MESSAGE)
		return fail(err, errlen, -EMSGSIZE, "%s: a message larger than %u MiB", c->path,
			    QMP_CLIENT_MAX_MESSAGE >> 20);
	return 0;
}

/* The next message before deadline: 0 with *msg, or a negative errno. */
static int recv_message(struct qmp_client *c, uint64_t deadline, json_t **msg, char *err, size_t errlen)
{
	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;
		int r = take_message(c, msg, err, errlen);

		if (r < 0)
			return r;
		if (r > 0)
			return 0;
		r = poll(&pfd, 1, left_ms(deadline));
		if (r < 0 && errno == EINTR)
			return fail(err, errlen, -EINTR, "interrupted");
		if (r < 0)
			return fail(err, errlen, -errno, "%s: poll: %s", c->path, strerror(errno));
		if (r == 0)
			return fail(err, errlen, -ETIMEDOUT, "%s: no reply in time", c->path);
		if (c->cap - c->len < 65536) {
			size_t cap = c->cap ? c->cap * 2 : 131072;
			char *b = realloc(c->buf, cap);

			if (!b)
				return fail(err, errlen, -ENOMEM, "out of memory");
			c->buf = b;
			c->cap = cap;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0 && errno == EINTR)
			return fail(err, errlen, -EINTR, "interrupted");
		if (n < 0)
			return fail(err, errlen, -errno, "%s: recv: %s", c->path, strerror(errno));
		if (n == 0)
			return fail(err, errlen, -EPIPE, "%s: the server closed the connection", c->path);
		c->len += (size_t)n;
	}
}

static void keep_event(struct qmp_client *c, json_t *ev)
{
	if (json_array_size(c->events) >= QMP_CLIENT_MAX_EVENTS)
		json_array_remove(c->events, 0);
	json_array_append_new(c->events, ev);
}

static int send_message(struct qmp_client *c, json_t *msg, char *err, size_t errlen)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;

	json_decref(msg);
	if (!s)
		return fail(err, errlen, -ENOMEM, "out of memory");
	len = strlen(s);
	s[len++] = '\n';  /* replaces the NUL: one message per line */
	while (off < len) {
		ssize_t n = send(c->fd, s + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(s);
			if (e == EPIPE || e == ECONNRESET)
				return fail(err, errlen, -EPIPE, "%s: the server closed the connection", c->path);
			return fail(err, errlen, -e, "%s: send: %s", c->path, strerror(e));
		}
		off += (size_t)n;
	}
	free(s);
	return 0;
}

/* Waits for the reply to id (any id when match is false), keeping events. */
static int wait_reply(struct qmp_client *c, json_int_t id, bool match, uint64_t deadline, json_t **reply,
		      char *err, size_t errlen)
{
	for (;;) {
		json_t *msg, *mid;
		int r = recv_message(c, deadline, &msg, err, errlen);

		if (r)
			return r;
		if (json_object_get(msg, "event")) {
			keep_event(c, msg);
			continue;
		}
		mid = json_object_get(msg, "id");
		if (match && !(json_is_integer(mid) && json_integer_value(mid) == id)) {
			json_decref(msg);  /* a late reply to a command that timed out */
			continue;
		}
		*reply = msg;
		return 0;
	}
}

int qmp_client_execute(struct qmp_client *c, const char *cmd, json_t *args, int timeout_ms, json_t **ret,
		       char *err, size_t errlen)
{
	json_int_t id = ++c->next_id;
	json_t *req = json_pack("{s:s,s:I}", "execute", cmd, "id", id), *reply, *e;
	const char *desc, *cls;
	int r;

	*ret = NULL;
	c->cls[0] = '\0';
	if (!req) {
		json_decref(args);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	if (args)
		json_object_set_new(req, "arguments", args);
	r = send_message(c, req, err, errlen);
	if (!r)
		r = wait_reply(c, id, true, deadline_of(timeout_ms), &reply, err, errlen);
	if (r == -ETIMEDOUT)
		return fail(err, errlen, r, "%s: no reply to %s within %d ms", c->path, cmd, timeout_ms);
	if (r)
		return r;
	if (json_object_get(reply, "return")) {
		*ret = json_incref(json_object_get(reply, "return"));
		json_decref(reply);
		return 0;
	}
	e = json_object_get(reply, "error");
	desc = json_string_value(json_object_get(e, "desc"));
	cls = json_string_value(json_object_get(e, "class"));
	snprintf(c->cls, sizeof(c->cls), "%s", cls ? cls : "GenericError");
	r = fail(err, errlen, e ? -EPROTO : -EBADMSG, "%s", desc ? desc : "malformed reply");
	json_decref(reply);
	return r;
}

const char *qmp_client_error_class(const struct qmp_client *c)
{
	return c->cls;
}

int qmp_client_transact(struct qmp_client *c, json_t *msg, int timeout_ms, json_t **reply, char *err,
			size_t errlen)
{
	int r = send_message(c, msg, err, errlen);

	*reply = NULL;
	if (r)
		return r;
	return wait_reply(c, 0, false, deadline_of(timeout_ms), reply, err, errlen);
}

int qmp_client_next_event(struct qmp_client *c, int timeout_ms, json_t **ev, char *err, size_t errlen)
{
	uint64_t deadline = deadline_of(timeout_ms);

	*ev = NULL;
	for (;;) {
		json_t *msg;
		int r;

		if (json_array_size(c->events)) {
			*ev = json_incref(json_array_get(c->events, 0));
			json_array_remove(c->events, 0);
			return 0;
		}
		r = recv_message(c, deadline, &msg, err, errlen);
		if (r)
			return r;
		if (json_object_get(msg, "event"))
			keep_event(c, msg);
		else
			json_decref(msg);  /* a stray reply: nobody waits for it */
	}
}

int qmp_client_connect(const char *spec, int timeout_ms, int negotiate, struct qmp_client **out,
		       char *err, size_t errlen)
{
	const char *path = strncmp(spec, "unix:", 5) == 0 ? spec + 5 : spec;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct qmp_client *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	json_t *msg = NULL, *ret;
	int r;

	*out = NULL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return fail(err, errlen, -ENAMETOOLONG, "socket path %s is longer than %zu bytes", path,
			    sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c = calloc(1, sizeof(*c));
	if (c)
		c->fd = -1;
	if (!c || !(c->path = strdup(path)) || !(c->events = json_array())) {
		qmp_client_close(c);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = fail(err, errlen, -errno, "socket: %s", strerror(errno));
		goto fail;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = fail(err, errlen, -errno, "cannot connect to %s: %s", path, strerror(errno));
		goto fail;
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		c->peer = cred.pid;
	r = recv_message(c, deadline_of(timeout_ms), &msg, err, errlen);
	if (r == -ETIMEDOUT || r == -EPIPE || (!r && !json_is_object(json_object_get(msg, "QMP")))) {
		json_decref(msg);
		r = fail(err, errlen, -EBADMSG, "%s: no QMP greeting", path);
		goto fail;
	}
	if (r)
		goto fail;
	c->greeting = json_incref(json_object_get(msg, "QMP"));
	json_decref(msg);
	if (negotiate) {
		r = qmp_client_execute(c, "qmp_capabilities", NULL, timeout_ms, &ret, err, errlen);
		if (r)
			goto fail;
		json_decref(ret);
	}
	*out = c;
	return 0;
fail:
	qmp_client_close(c);
	return r;
}

void qmp_client_close(struct qmp_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	json_decref(c->greeting);
	json_decref(c->events);
	free(c->buf);
	free(c->path);
	free(c);
}

json_t *qmp_client_greeting(struct qmp_client *c)
{
	return c->greeting;
}

const char *qmp_client_path(const struct qmp_client *c)
{
	return c->path;
}

int qmp_client_fd(const struct qmp_client *c)
{
	return c->fd;
}

pid_t qmp_client_peer_pid(const struct qmp_client *c)
{
	return c->peer;
}
