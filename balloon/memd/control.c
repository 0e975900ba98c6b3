/*
 * memd control socket: a QMP-style monitor (greeting, qmp_capabilities,
 * then commands as JSON objects, one per line) with the daemon's own
 * commands and events. Every client is untrusted: lines are bounded
 * (MEMD_CTL_MAX_LINE; a longer one closes the connection after saying
 * why), a client that does not read its replies is dropped once its queue
 * passes MEMD_CTL_MAX_OUT, and every malformed input gets an error reply.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "balloon/memd/memd.h"
#include "vmm/lib/json.h"
#include "vmm/lib/loop.h"
#include "vmm/lib/size.h"
#include "vmm/lib/version.h"

struct memd_control;

struct client {
	struct memd_control *srv;
	int fd;
	bool negotiated;
	bool want_out;              /* EPOLLOUT registered */
	char in[MEMD_CTL_MAX_LINE];
	size_t inlen;
	char *out;
	size_t outlen;
};

struct memd_control {
	struct memd *d;
	int fd;
	char *path;
	struct client *cl[MEMD_CTL_MAX_CLIENTS];
};

static const char *const commands[] = {
	"qmp_capabilities", "query-commands", "query-host", "query-vms", "set-budget", "set-policy",
};

static json_t *error_reply(const char *cls, const char *desc)
{
	return json_pack("{s:{s:s,s:s}}", "error", "class", cls, "desc", desc);
}

static json_t *set_budget(struct memd *d, json_t *args, char *err, size_t errlen)
{
	json_t *v = json_object_get(args, "bytes");
	uint64_t bytes;

	if (json_is_integer(v) && json_integer_value(v) > 0) {
		bytes = (uint64_t)json_integer_value(v);
	} else if (json_is_string(v) && size_parse(json_string_value(v), &bytes) == 0 && bytes) {
		;
	} else {
		snprintf(err, errlen, "set-budget needs 'bytes': a number of bytes above 0 or a size such as \"8G\"");
		return NULL;
	}
	if (memd_set_budget(d, bytes, err, errlen))
		return NULL;
	return json_object();
}

/* One command (args an object); the reply or an error in err. */
static json_t *run(struct memd *d, const char *cmd, json_t *args, char *err, size_t errlen)
{
	if (!strcmp(cmd, "qmp_capabilities"))
		return json_object();
	if (!strcmp(cmd, "query-commands")) {
		json_t *a = json_array();

		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			json_array_append_new(a, json_pack("{s:s}", "name", commands[i]));
		return a;
	}
	if (!strcmp(cmd, "query-host"))
		return memd_host_json(d);
	if (!strcmp(cmd, "query-vms"))
		return memd_vms_json(d);
	if (!strcmp(cmd, "set-budget"))
		return set_budget(d, args, err, errlen);
	if (!strcmp(cmd, "set-policy")) {
		const char *p = json_string_value(json_object_get(args, "policy"));

		if (!p) {
			snprintf(err, errlen, "set-policy needs 'policy': minivmm, mom or none");
			return NULL;
		}
		return memd_set_policy(d, p, err, errlen) ? NULL : json_object();
	}
	return NULL;
}

json_t *memd_control_handle(struct memd *d, const char *line, size_t len, bool *negotiated)
{
	json_error_t jerr;
	json_t *req, *reply = NULL, *args, *id, *ret;
	const char *cmd;
	char err[512] = "", desc[600];
	bool known = false;

	/* bounded by len: the line is not NUL-terminated (strspn read past a
	 * blank line's end, up to the end of the buffer; found by fuzz_memd_control) */
	size_t blank = 0;
	while (blank < len && memchr(" \t\r\n", line[blank], 4))
		blank++;
	if (blank == len)
		return NULL;
	req = json_loadb(line, len, 0, &jerr);
	if (!req) {
		snprintf(desc, sizeof(desc), "JSON parse error: %s", jerr.text);
		return error_reply("GenericError", desc);
	}
	id = json_object_get(req, "id");
	if (!json_is_object(req)) {
		reply = error_reply("GenericError", "QMP input must be a JSON object");
		goto out;
	}
	cmd = json_string_value(json_object_get(req, "execute"));
	args = json_object_get(req, "arguments");
	if (!cmd) {
		reply = error_reply("GenericError", "QMP input lacks member 'execute'");
		goto out;
	}
	if (args && !json_is_object(args)) {
		reply = error_reply("GenericError", "QMP input member 'arguments' must be an object");
		goto out;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		known |= !strcmp(commands[i], cmd);
	if (!known) {
		snprintf(desc, sizeof(desc), "The command %.200s has not been found", cmd);
		reply = error_reply("CommandNotFound", desc);
		goto out;
	}
	if (!*negotiated && strcmp(cmd, "qmp_capabilities")) {
		reply = error_reply("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
		goto out;
	}
	if (*negotiated && !strcmp(cmd, "qmp_capabilities")) {
		reply = error_reply("CommandNotFound", "Capabilities negotiation is already complete, command "
				    "ignored");
		goto out;
	}
	if (!args) {
		json_t *none = json_object();

		ret = run(d, cmd, none, err, sizeof(err));
		json_decref(none);
	} else {
		ret = run(d, cmd, args, err, sizeof(err));
	}
	if (!ret) {
		reply = error_reply("GenericError", err[0] ? err : "failed");
		goto out;
	}
	if (!strcmp(cmd, "qmp_capabilities"))
		*negotiated = true;
	reply = json_pack("{s:o}", "return", ret);
out:
	if (reply && id)
		json_object_set(reply, "id", id);
	json_decref(req);
	return reply;
}

static void drop(struct memd_control *c, int i)
{
	struct client *cl = c->cl[i];

	loop_del(c->d->loop, cl->fd);
	close(cl->fd);
	free(cl->out);
	free(cl);
	c->cl[i] = NULL;
}

static void on_client(void *opaque, uint32_t events);

/* Sends what is queued; registers for EPOLLOUT while some remains. -1: the client is gone. */
static int flush(struct memd_control *c, int i)
{
	struct client *cl = c->cl[i];

	while (cl->outlen) {
		ssize_t n = send(cl->fd, cl->out, cl->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			drop(c, i);
			return -1;
		}
		memmove(cl->out, cl->out + n, cl->outlen - (size_t)n);
		cl->outlen -= (size_t)n;
	}
	if ((cl->outlen > 0) != cl->want_out) {
		cl->want_out = cl->outlen > 0;
		loop_del(c->d->loop, cl->fd);
		if (loop_add(c->d->loop, cl->fd, EPOLLIN | (cl->want_out ? EPOLLOUT : 0), on_client, cl) < 0) {
			close(cl->fd);
			free(cl->out);
			free(cl);
			c->cl[i] = NULL;
			return -1;
		}
	}
	return 0;
}

/* Queues msg (stolen) for client i. -1: the client is gone. */
static int queue(struct memd_control *c, int i, json_t *msg)
{
	struct client *cl = c->cl[i];
	char *line = json_dump_line(msg);
	size_t n = line ? strlen(line) : 0;
	char *out;

	if (!line)
		return 0;
	if (cl->outlen + n > MEMD_CTL_MAX_OUT) {
		/* a client that does not read must not make the daemon hold its memory */
		free(line);
		drop(c, i);
		return -1;
	}
	out = realloc(cl->out, cl->outlen + n);
	if (!out) {
		free(line);
		return 0;
	}
	memcpy(out + cl->outlen, line, n);
	cl->out = out;
	cl->outlen += n;
	free(line);
	return flush(c, i);
}

static int index_of(struct memd_control *c, struct client *cl)
{
	for (int i = 0; i < MEMD_CTL_MAX_CLIENTS; i++)
		if (c->cl[i] == cl)
			return i;
	return -1;
}

static void on_client(void *opaque, uint32_t events)
{
	struct client *cl = opaque;
	struct memd_control *c = cl->srv;
	struct memd *d;
	int i = index_of(c, cl);

	if (i < 0)
		return;
	d = c->d;
	if ((events & EPOLLOUT) && flush(c, i) < 0)
		return;
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = recv(cl->fd, cl->in + cl->inlen, sizeof(cl->in) - cl->inlen, MSG_DONTWAIT);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			drop(c, i);
			return;
		}
		cl->inlen += (size_t)n;
		while ((nl = memchr(cl->in, '\n', cl->inlen))) {
			size_t len = (size_t)(nl - cl->in);
			json_t *reply = memd_control_handle(d, cl->in, len, &cl->negotiated);

			memmove(cl->in, nl + 1, cl->inlen - len - 1);
			cl->inlen -= len + 1;
			if (reply && queue(c, i, reply) < 0)
				return;
		}
		if (cl->inlen == sizeof(cl->in)) {
			char desc[96];

			snprintf(desc, sizeof(desc), "line longer than %d bytes: closing the connection",
				 MEMD_CTL_MAX_LINE);
			if (queue(c, i, error_reply("GenericError", desc)) == 0)
				drop(c, i);
			return;
		}
	}
}

static void on_accept(void *opaque, uint32_t events)
{
	struct memd_control *c = opaque;
	int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), i;
	struct client *cl;

	if (fd < 0)
		return;
	for (i = 0; i < MEMD_CTL_MAX_CLIENTS && c->cl[i]; i++)
		;
	cl = i < MEMD_CTL_MAX_CLIENTS ? calloc(1, sizeof(*cl)) : NULL;
	if (!cl) {
		static const char busy[] = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"too many clients\"}}\r\n";

		(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	cl->fd = fd;
	cl->srv = c;
	c->cl[i] = cl;
	if (loop_add(c->d->loop, fd, EPOLLIN, on_client, cl) < 0) {
		close(fd);
		free(cl);
		c->cl[i] = NULL;
		return;
	}
	queue(c, i, json_pack("{s:{s:{s:{s:i,s:i,s:i},s:s},s:[]}}", "QMP", "version", "qemu", "major", 0,
			      "minor", 0, "micro", 0, "package", "minivmm-memd " MINIVMM_VERSION,
			      "capabilities"));
}

void memd_event(struct memd *d, const char *name, json_t *data)
{
	struct memd_control *c = d->ctl;
	uint64_t ms = memd_now_ms();

	if (!c || !data) {
		json_decref(data);
		return;
	}
	for (int i = 0; i < MEMD_CTL_MAX_CLIENTS; i++) {
		if (!c->cl[i] || !c->cl[i]->negotiated)
			continue;
		/* QMP events carry a wall-clock timestamp; ms since start keeps them ordered */
		queue(c, i, json_pack("{s:s,s:O,s:{s:I,s:I}}", "event", name, "data", data, "timestamp",
				      "seconds", (json_int_t)(ms / 1000), "microseconds",
				      (json_int_t)(ms % 1000) * 1000));
	}
	json_decref(data);
}

int memd_control_open(struct memd *d, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct memd_control *c;
	int fd, probe;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "--control %s: path longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* replace a stale socket, never a live daemon's */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(probe);
		snprintf(err, errlen, "--control %s: another daemon is listening there", path);
		return -EADDRINUSE;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 64) < 0) {
		int e = errno;

		snprintf(err, errlen, "--control %s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		close(fd);
		return -ENOMEM;
	}
	c->d = d;
	c->fd = fd;
	if (loop_add(d->loop, fd, EPOLLIN, on_accept, c) < 0) {
		snprintf(err, errlen, "--control %s: cannot watch the socket", path);
		free(c->path);
		free(c);
		close(fd);
		return -ENOMEM;
	}
	d->ctl = c;
	return 0;
}

void memd_control_close(struct memd *d)
{
	struct memd_control *c = d->ctl;

	if (!c)
		return;
	for (int i = 0; i < MEMD_CTL_MAX_CLIENTS; i++)
		if (c->cl[i])
			drop(c, i);
	loop_del(d->loop, c->fd);
	close(c->fd);
	unlink(c->path);
	free(c->path);
	free(c);
	d->ctl = NULL;
}
