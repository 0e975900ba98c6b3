/*
 * Unit tests of the QMP core (vmm/qmp/) without a guest: registries as
 * instances with a context per command, error classes, the argument
 * helpers, the QOM router (get/set/list, containers, partial paths, unknown
 * paths and properties, type errors), worker and asynchronous commands run
 * in-process, and over a real unix socket served by a real event loop:
 * replies of a long command come late and in order for their client while
 * other clients are served, events emitted from several threads reach a
 * client complete and in order, and quit/teardown answer what is in flight.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/lib/loop.h"
#include "vmm/machine.h"
#include "vmm/qmp/dispatch.h"
#include "vmm/qmp/qmp.h"

/* ---- registry with contexts ---- */

struct counter {
	int base;
	int calls;
};

static json_t *x_add(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct counter *c = ctx;
	uint64_t a, b;

	if (qmp_arg_u64(args, "a", true, &a, err, errlen) ||
	    qmp_arg_u64(args, "b", true, &b, err, errlen))
		return NULL;
	if (c)
		c->calls++;
	return json_integer((json_int_t)(a + b) + (c ? c->base : 0));
}

static json_t *x_not_active(void *ctx, json_t *args, char *err, size_t errlen)
{
	return qmp_error(err, errlen, "DeviceNotActive", "No test device has been activated");
}

/* Runs name through the dispatcher and returns the error class it ends with. */
static void dispatch_error(struct qmp_registry *reg, const char *name, char *cls, size_t clslen,
			   char *desc, size_t desclen)
{
	struct qmp_async req = { 0 };

	assert_int_equal(qmp_dispatch(reg, name, NULL, &req), QMP_DONE);
	assert_null(req.ret);
	qmp_error_split(req.err, cls, clslen);
	snprintf(desc, desclen, "%s", req.err);
}

static void test_registry_contexts(void **state)
{
	struct qmp_registry *r1, *r2;
	struct counter c1 = { 100, 0 }, c2 = { 200, 0 };
	char err[256], cls[64];

	assert_int_equal(qmp_registry_new(&r1), 0);
	assert_int_equal(qmp_registry_new(&r2), 0);
	/* one handler, two registries, each with its own object */
	assert_int_equal(qmp_register(r1, "x-add", x_add, &c1), 0);
	assert_int_equal(qmp_register(r2, "x-add", x_add, &c2), 0);
	assert_int_equal(qmp_register(r1, "x-add", x_add, &c2), -EEXIST);
	assert_int_equal(qmp_register(r1, "", x_add, NULL), -EINVAL);
	assert_int_equal(qmp_register(r1, "x-null", NULL, NULL), -EINVAL);
	assert_int_equal(qmp_register(r1, "x-not-active", x_not_active, NULL), 0);
	assert_true(qmp_has_command(r1, "x-add"));
	assert_true(qmp_has_command(r1, "qom-get"));
	assert_false(qmp_has_command(r2, "x-not-active"));

	json_t *args = json_pack("{s:i,s:i}", "a", 40, "b", 2);
	json_t *ret = qmp_execute(r1, "x-add", args, err, sizeof(err));
	assert_int_equal(json_integer_value(ret), 142);
	json_decref(ret);
	ret = qmp_execute(r2, "x-add", args, err, sizeof(err));
	assert_int_equal(json_integer_value(ret), 242);
	json_decref(ret);
	json_decref(args);
	assert_int_equal(c1.calls, 1);
	assert_int_equal(c2.calls, 1);

	args = json_pack("{s:i}", "a", 1);
	assert_null(qmp_execute(r1, "x-add", args, err, sizeof(err)));
	assert_string_equal(err, "Parameter 'b' is missing");
	json_decref(args);

	/* classes: the handler's, CommandNotFound, GenericError; execute keeps the text only */
	assert_null(qmp_execute(r1, "x-not-active", NULL, err, sizeof(err)));
	assert_string_equal(err, "No test device has been activated");
	dispatch_error(r1, "x-not-active", cls, sizeof(cls), err, sizeof(err));
	assert_string_equal(cls, "DeviceNotActive");
	assert_string_equal(err, "No test device has been activated");
	dispatch_error(r2, "x-nothing", cls, sizeof(cls), err, sizeof(err));
	assert_string_equal(cls, "CommandNotFound");
	assert_string_equal(err, "The command x-nothing has not been found");
	dispatch_error(r1, "x-add", cls, sizeof(cls), err, sizeof(err));
	assert_string_equal(cls, "GenericError");

	/* query-commands lists this registry's commands only */
	ret = qmp_execute(r2, "query-commands", NULL, err, sizeof(err));
	size_t i;
	json_t *e;
	bool add = false, not_active = false;
	json_array_foreach(ret, i, e) {
		add |= !strcmp(json_string_value(json_object_get(e, "name")), "x-add");
		not_active |= !strcmp(json_string_value(json_object_get(e, "name")), "x-not-active");
	}
	assert_true(add && !not_active);
	json_decref(ret);
	qmp_registry_free(r1);
	qmp_registry_free(r2);
}

static void test_error_split(void **state)
{
	char err[64], cls[16];

	qmp_error(err, sizeof(err), "DeviceNotFound", "Device '%s' not found", "x");
	qmp_error_split(err, cls, sizeof(cls));
	assert_string_equal(cls, "DeviceNotFound");
	assert_string_equal(err, "Device 'x' not found");
	snprintf(err, sizeof(err), "plain");
	qmp_error_split(err, cls, sizeof(cls));
	assert_string_equal(cls, "GenericError");
	assert_string_equal(err, "plain");
	/* a class too long for cls is cut, the description stays whole */
	qmp_error(err, sizeof(err), "AVeryLongErrorClassName", "desc");
	qmp_error_split(err, cls, sizeof(cls));
	assert_string_equal(cls, "AVeryLongErrorC");
	assert_string_equal(err, "desc");
}

static void test_arg_helpers(void **state)
{
	char err[256];
	json_t *args = json_pack("{s:I,s:i,s:s,s:b,s:f}", "big", (json_int_t)1 << 40, "neg", -1,
				 "str", "hello", "flag", 1, "real", 1.5);
	uint64_t u = 7;
	const char *s = NULL;
	bool b = false;

	assert_int_equal(qmp_arg_u64(args, "big", true, &u, err, sizeof(err)), 0);
	assert_true(u == 1ULL << 40);
	assert_int_equal(qmp_arg_u64(args, "neg", true, &u, err, sizeof(err)), -EINVAL);
	assert_int_equal(qmp_arg_u64(args, "real", true, &u, err, sizeof(err)), -EINVAL);
	assert_int_equal(qmp_arg_u64(args, "str", true, &u, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'str'"));
	u = 7;
	assert_int_equal(qmp_arg_u64(args, "absent", false, &u, err, sizeof(err)), -ENOENT);
	assert_true(u == 7);
	assert_int_equal(qmp_arg_u64(args, "absent", true, &u, err, sizeof(err)), -EINVAL);
	assert_int_equal(qmp_arg_str(args, "str", true, &s, err, sizeof(err)), 0);
	assert_string_equal(s, "hello");
	assert_int_equal(qmp_arg_str(args, "flag", true, &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(qmp_arg_bool(args, "flag", true, &b, err, sizeof(err)), 0);
	assert_true(b);

	static const char *const allowed[] = { "big", "neg", "str", "flag", "real", NULL };
	assert_int_equal(qmp_args_only(args, allowed, err, sizeof(err)), 0);
	assert_int_equal(qmp_args_only(args, allowed + 1, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "Parameter 'big' is unexpected");
	assert_int_equal(qmp_args_only(args, NULL, err, sizeof(err)), -EINVAL);
	json_decref(args);
}

/* ---- the QOM router ---- */

struct gadget {
	json_int_t level;
	bool on;
	char name[32];
};

static json_t *g_get_level(void *ctx, char *err, size_t errlen)
{
	return json_integer(((struct gadget *)ctx)->level);
}

static int g_set_level(void *ctx, json_t *v, char *err, size_t errlen)
{
	if (json_integer_value(v) > 10) {
		qmp_error(err, errlen, NULL, "level %lld is above 10", (long long)json_integer_value(v));
		return -ERANGE;
	}
	((struct gadget *)ctx)->level = json_integer_value(v);
	return 0;
}

static json_t *g_get_on(void *ctx, char *err, size_t errlen)
{
	return json_boolean(((struct gadget *)ctx)->on);
}

static int g_set_on(void *ctx, json_t *v, char *err, size_t errlen)
{
	((struct gadget *)ctx)->on = json_is_true(v);
	return 0;
}

static json_t *g_get_name(void *ctx, char *err, size_t errlen)
{
	return json_string(((struct gadget *)ctx)->name);
}

static const struct qom_prop gadget_props[] = {
	{ "level", "int", g_get_level, g_set_level },
	{ "on", "bool", g_get_on, g_set_on },
	{ "name", "string", g_get_name, NULL },
	{ NULL, NULL, NULL, NULL },
};

/* qom-get/qom-set/qom-list through the registry: the reply, or NULL with err and cls. */
static json_t *qom(struct qmp_registry *reg, const char *cmd, json_t *args, char *err,
		   char *cls)
{
	struct qmp_async req = { 0 };

	assert_int_equal(qmp_dispatch(reg, cmd, args, &req), QMP_DONE);
	json_decref(args);
	if (!req.ret) {
		qmp_error_split(req.err, cls, 64);
		strcpy(err, req.err);
	}
	return req.ret;
}

#define GET(path, prop) qom(reg, "qom-get", json_pack("{s:s,s:s}", "path", path, "property", prop), err, cls)
#define SET(path, prop, fmt, v) \
	qom(reg, "qom-set", json_pack("{s:s,s:s,s:" fmt "}", "path", path, "property", prop, "value", v), err, cls)
#define LIST(path) qom(reg, "qom-list", json_pack("{s:s}", "path", path), err, cls)

/* Whether a qom-list reply holds {"name": name, "type": type}. */
static bool listed(json_t *list, const char *name, const char *type)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e)
		if (!strcmp(json_string_value(json_object_get(e, "name")), name) &&
		    !strcmp(json_string_value(json_object_get(e, "type")), type))
			return true;
	return false;
}

static void test_qom_router(void **state)
{
	struct qmp_registry *reg;
	struct gadget g1 = { 3, false, "one" }, g2 = { 5, true, "two" };
	char err[QMP_ERR_MAX], cls[64];
	json_t *r;

	assert_int_equal(qmp_registry_new(&reg), 0);
	assert_int_equal(qmp_qom_add(reg, "/machine/peripheral/gadget0", "x-gadget", gadget_props, &g1), 0);
	assert_int_equal(qmp_qom_add(reg, "/machine/unattached/gadget1", "x-gadget", gadget_props, &g2), 0);
	assert_int_equal(qmp_qom_add(reg, "/machine/peripheral/gadget0", "x-gadget", gadget_props, &g2), -EEXIST);
	assert_int_equal(qmp_qom_add(reg, "gadget2", "x-gadget", gadget_props, &g2), -EINVAL);
	assert_int_equal(qmp_qom_add(reg, "/machine/", "x-gadget", gadget_props, &g2), -EINVAL);

	/* get: each object's own context; absolute, partial and the implicit "type" */
	r = GET("/machine/peripheral/gadget0", "level");
	assert_int_equal(json_integer_value(r), 3);
	json_decref(r);
	r = GET("gadget1", "name");
	assert_string_equal(json_string_value(r), "two");
	json_decref(r);
	r = GET("unattached/gadget1", "on");
	assert_true(json_is_true(r));
	json_decref(r);
	r = GET("gadget0", "type");
	assert_string_equal(json_string_value(r), "x-gadget");
	json_decref(r);
	r = GET("/machine/peripheral", "type");
	assert_string_equal(json_string_value(r), "container");
	json_decref(r);

	/* set, then get sees it; the other object is untouched */
	r = SET("gadget0", "level", "i", 7);
	assert_non_null(r);
	json_decref(r);
	assert_int_equal(g1.level, 7);
	assert_int_equal(g2.level, 5);
	r = SET("/machine/peripheral/gadget0", "on", "b", 1);
	json_decref(r);
	assert_true(g1.on);

	/* unknown path and property, QEMU's classes and texts */
	assert_null(GET("/machine/peripheral/nope", "level"));
	assert_string_equal(cls, "DeviceNotFound");
	assert_string_equal(err, "Device '/machine/peripheral/nope' not found");
	assert_null(GET("nope", "level"));
	assert_string_equal(cls, "DeviceNotFound");
	assert_null(LIST("/machine/peripheral/gadget"));    /* a prefix of a name is no container */
	assert_string_equal(cls, "DeviceNotFound");
	assert_null(GET("gadget0", "colour"));
	assert_string_equal(cls, "GenericError");
	assert_string_equal(err, "Property 'x-gadget.colour' not found");
	assert_null(GET("/machine", "colour"));
	assert_string_equal(err, "Property 'container.colour' not found");
	assert_null(SET("gadget0", "colour", "i", 1));
	assert_string_equal(err, "Property 'x-gadget.colour' not found");
	assert_null(SET("gadget0", "name", "s", "three"));
	assert_string_equal(err, "Property 'x-gadget.name' is not writable");
	r = qom(reg, "qom-set", json_pack("{s:s,s:s}", "path", "gadget0", "property", "level"), err, cls);
	assert_null(r);
	assert_string_equal(err, "Parameter 'value' is missing");
	r = qom(reg, "qom-get", json_pack("{s:s}", "path", "gadget0"), err, cls);
	assert_null(r);
	assert_string_equal(err, "Parameter 'property' is missing");
	r = qom(reg, "qom-get", json_pack("{s:s,s:s,s:i}", "path", "gadget0", "property", "on", "x", 1),
		err, cls);
	assert_null(r);
	assert_string_equal(err, "Parameter 'x' is unexpected");

	/* a partial path two objects end with is ambiguous */
	assert_int_equal(qmp_qom_add(reg, "/machine/unattached/gadget0", "x-gadget", gadget_props, &g2), 0);
	assert_null(GET("gadget0", "level"));
	assert_string_equal(cls, "GenericError");
	assert_string_equal(err, "Path 'gadget0' is ambiguous");

	/* type errors come before the setter; the setter's own errors pass through */
	assert_null(SET("/machine/peripheral/gadget0", "level", "s", "high"));
	assert_string_equal(err, "Invalid parameter type for 'value', expected: integer");
	assert_null(SET("/machine/peripheral/gadget0", "on", "i", 1));
	assert_string_equal(err, "Invalid parameter type for 'value', expected: boolean");
	assert_null(SET("/machine/peripheral/gadget0", "level", "i", 11));
	assert_string_equal(err, "level 11 is above 10");
	assert_int_equal(g1.level, 7);

	/* list: properties with their types, children of containers */
	r = LIST("/machine/peripheral/gadget0");
	assert_int_equal(json_array_size(r), 4);
	assert_true(listed(r, "type", "string") && listed(r, "level", "int") &&
		    listed(r, "on", "bool") && listed(r, "name", "string"));
	json_decref(r);
	r = LIST("/");
	assert_true(listed(r, "machine", "child<container>"));
	json_decref(r);
	r = LIST("/machine");
	assert_int_equal(json_array_size(r), 3);
	assert_true(listed(r, "peripheral", "child<container>") &&
		    listed(r, "unattached", "child<container>"));
	json_decref(r);
	r = LIST("/machine/unattached");
	assert_true(listed(r, "gadget0", "child<x-gadget>") && listed(r, "gadget1", "child<x-gadget>"));
	json_decref(r);
	qmp_registry_free(reg);
}

/* ---- worker and asynchronous commands ---- */

/* A gate the tests open to let a worker command finish. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	int entered;
	pthread_t main;
	bool ran_off_main;
};

static struct gate gate = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* main: the thread serving the commands, which a worker command must not run on */
static void gate_reset(pthread_t main_thread)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = false;
	gate.entered = 0;
	gate.main = main_thread;
	pthread_mutex_unlock(&gate.lock);
}

static void gate_open(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

/* Waits until n worker commands are inside x-gate. */
static void gate_wait_entered(int n)
{
	pthread_mutex_lock(&gate.lock);
	while (gate.entered < n)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

static json_t *x_gate(void *ctx, json_t *args, char *err, size_t errlen)
{
	pthread_mutex_lock(&gate.lock);
	gate.entered++;
	gate.ran_off_main = !pthread_equal(pthread_self(), gate.main);
	pthread_cond_broadcast(&gate.cond);
	while (!gate.open)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
	if (json_object_get(args, "fail"))
		return qmp_error(err, errlen, "DeviceNotActive", "the gate failed");
	return json_string("gate");
}

/* An asynchronous command completed by a thread of its own after a short wait. */
static void *x_later_thread(void *arg)
{
	struct qmp_async *req = arg;
	char err[64];

	usleep(50 * 1000);
	qmp_error(err, sizeof(err), "KVMMissingCap", "later, and failed");
	qmp_async_done(req, NULL, err);
	return NULL;
}

static int x_later(void *ctx, json_t *args, struct qmp_async *req, char *err, size_t errlen)
{
	pthread_t t;

	if (json_object_get(args, "refuse")) {
		snprintf(err, errlen, "refused at once");
		return -EINVAL;
	}
	if (pthread_create(&t, NULL, x_later_thread, req))
		return -EAGAIN;
	pthread_detach(t);
	return 0;
}

static void test_async_in_process(void **state)
{
	struct qmp_registry *reg;
	char err[256];

	assert_int_equal(qmp_registry_new(&reg), 0);
	assert_int_equal(qmp_register_worker(reg, "x-gate", x_gate, NULL), 0);
	assert_int_equal(qmp_register_async(reg, "x-later", x_later, NULL), 0);
	assert_int_equal(qmp_register_async(reg, "x-later", x_later, NULL), -EEXIST);
	gate_reset(pthread_self());
	gate_open();
	json_t *r = qmp_execute(reg, "x-gate", NULL, err, sizeof(err));
	assert_string_equal(json_string_value(r), "gate");
	json_decref(r);
	assert_null(qmp_execute(reg, "x-later", NULL, err, sizeof(err)));
	assert_string_equal(err, "later, and failed");
	json_t *args = json_pack("{s:b}", "refuse", 1);
	assert_null(qmp_execute(reg, "x-later", args, err, sizeof(err)));
	assert_string_equal(err, "refused at once");
	json_decref(args);
	qmp_registry_free(reg);
}

/* ---- over a socket ---- */

#define EMITTERS 4
#define PER_EMITTER 500

static struct vm ev_vm;
static pthread_t loop_tid;    /* the server's main thread */

static void *emitter(void *arg)
{
	long id = (long)arg;
	for (int i = 0; i < PER_EMITTER; i++)
		qmp_emit_event(ev_vm.qmp_reg, "X_TEST",
			       json_pack("{s:i,s:i}", "thread", (int)id, "seq", i));
	return NULL;
}

static void *loop_thread(void *arg)
{
	loop_run(arg);
	return NULL;
}

struct line_reader {
	int fd;
	char buf[1 << 16];
	size_t len;
};

/* Returns the next "\r\n"-terminated message parsed, or NULL on EOF. */
static json_t *read_msg(struct line_reader *r)
{
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		if (nl) {
			size_t n = (size_t)(nl - r->buf) + 1;
			json_error_t jerr;
			json_t *msg = json_loadb(r->buf, n, 0, &jerr);
			memmove(r->buf, r->buf + n, r->len - n);
			r->len -= n;
			assert_non_null(msg);
			return msg;
		}
		assert_true(r->len < sizeof(r->buf));
		ssize_t got = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
		if (got <= 0)
			return NULL;
		r->len += (size_t)got;
	}
}

/* Whether the server sent anything within ms (without consuming it). */
static bool has_data(struct line_reader *r, int ms)
{
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
	return r->len > 0 || poll(&pfd, 1, ms) > 0;
}

static void send_str(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static json_int_t msg_id(json_t *msg)
{
	return json_integer_value(json_object_get(msg, "id"));
}

static const char *msg_class(json_t *msg)
{
	return json_string_value(json_object_get(json_object_get(msg, "error"), "class"));
}

/* A negotiated client of the server at path. */
static struct line_reader *client(const char *path)
{
	struct line_reader *r = calloc(1, sizeof(*r));
	r->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	json_t *msg = read_msg(r);
	assert_non_null(json_object_get(msg, "QMP"));
	json_decref(msg);
	send_str(r->fd, "{\"execute\": \"qmp_capabilities\", \"id\": \"caps\"}\n");
	msg = read_msg(r);
	assert_non_null(json_object_get(msg, "return"));
	json_decref(msg);
	return r;
}

static void client_free(struct line_reader *r)
{
	close(r->fd);
	free(r);
}

/*
 * A client whose command runs on the worker gets nothing until it ends,
 * then its replies in order; another client is answered meanwhile; a client
 * that leaves with a command in flight costs nothing.
 */
static void check_async_ordering(const char *path)
{
	struct line_reader *a = client(path), *b = client(path), *c = client(path);
	json_t *msg;

	gate_reset(loop_tid);
	send_str(a->fd, "{\"execute\": \"x-gate\", \"id\": 1}\n"
			"{\"execute\": \"x-add\", \"arguments\": {\"a\": 1, \"b\": 1}, \"id\": 2}\n");
	gate_wait_entered(1);
	send_str(b->fd, "{\"execute\": \"x-add\", \"arguments\": {\"a\": 2, \"b\": 2}, \"id\": 3}\n");
	msg = read_msg(b);
	assert_int_equal(msg_id(msg), 3);
	assert_int_equal(json_integer_value(json_object_get(msg, "return")), 4);
	json_decref(msg);
	assert_false(has_data(a, 100));    /* neither the gate's reply nor the later add's */

	/* B's own later request waits behind its async one too */
	send_str(b->fd, "{\"execute\": \"x-later\", \"id\": 4}\n{\"execute\": \"query-version\", \"id\": 5}\n");
	msg = read_msg(b);
	assert_int_equal(msg_id(msg), 4);
	assert_string_equal(msg_class(msg), "KVMMissingCap");
	json_decref(msg);
	msg = read_msg(b);
	assert_int_equal(msg_id(msg), 5);
	json_decref(msg);

	assert_true(gate.ran_off_main);
	gate_open();
	msg = read_msg(a);
	assert_int_equal(msg_id(msg), 1);
	assert_string_equal(json_string_value(json_object_get(msg, "return")), "gate");
	json_decref(msg);
	msg = read_msg(a);
	assert_int_equal(msg_id(msg), 2);
	json_decref(msg);

	/* an error class set on the worker thread reaches the client */
	send_str(a->fd, "{\"execute\": \"x-gate\", \"arguments\": {\"fail\": 1}, \"id\": 6}\n");
	msg = read_msg(a);
	assert_int_equal(msg_id(msg), 6);
	assert_string_equal(msg_class(msg), "DeviceNotActive");
	json_decref(msg);

	/* c leaves while its command runs; a is served after it */
	gate_reset(loop_tid);
	send_str(c->fd, "{\"execute\": \"x-gate\", \"id\": 7}\n");
	gate_wait_entered(1);
	client_free(c);
	gate_open();
	send_str(a->fd, "{\"execute\": \"x-gate\", \"id\": 8}\n");
	msg = read_msg(a);
	assert_int_equal(msg_id(msg), 8);
	json_decref(msg);
	client_free(a);
	client_free(b);
}

/*
 * The published limit (README, QMP limits): while the main loop is stalled,
 * 4096 events wait for it; older ones are dropped, and the log says how
 * many once it runs again. The client gets the newest 4096 in order.
 */
#define EVENT_QUEUE 4096
#define EVENT_FLOOD (EVENT_QUEUE + 904)

static void check_event_queue_bound(const char *path, struct line_reader *r)
{
	struct line_reader *blk = client(path);
	FILE *log = tmpfile();
	int saved = dup(2), first = -1, last = -1, got = 0;
	char text[4096] = "";
	json_t *msg;

	assert_non_null(log);
	gate_reset(loop_tid);
	send_str(blk->fd, "{\"execute\": \"x-block\", \"id\": 11}\n");
	gate_wait_entered(1);               /* the main loop is inside x-block now */
	fflush(stderr);
	assert_true(dup2(fileno(log), 2) == 2);
	for (int i = 0; i < EVENT_FLOOD; i++)
		qmp_emit_event(ev_vm.qmp_reg, "X_FLOOD", json_pack("{s:i}", "seq", i));
	gate_open();
	for (;;) {
		msg = read_msg(blk);
		assert_non_null(msg);
		bool done = msg_id(msg) == 11;
		json_decref(msg);
		if (done)
			break;
	}
	while (got < EVENT_QUEUE) {
		msg = read_msg(r);
		assert_non_null(msg);
		assert_string_equal(json_string_value(json_object_get(msg, "event")), "X_FLOOD");
		int seq = (int)json_integer_value(json_object_get(json_object_get(msg, "data"), "seq"));
		if (first < 0)
			first = seq;
		else
			assert_int_equal(seq, last + 1);
		last = seq;
		got++;
		json_decref(msg);
	}
	assert_false(has_data(r, 100));     /* nothing beyond the 4096 */
	fflush(stderr);
	assert_true(dup2(saved, 2) == 2);
	close(saved);
	rewind(log);
	text[fread(text, 1, sizeof(text) - 1, log)] = 0;
	fclose(log);
	assert_int_equal(first, EVENT_FLOOD - EVENT_QUEUE);
	assert_int_equal(last, EVENT_FLOOD - 1);
	assert_non_null(strstr(text, "qmp: 904 events dropped: the main loop fell behind"));
	client_free(blk);
}

static void *open_gate_later(void *arg)
{
	usleep(200 * 1000);
	gate_open();
	return NULL;
}

static void test_server(void **state)
{
	char path[64], err[256] = "";
	snprintf(path, sizeof(path), "/tmp/minivmm-test-qmp-%d.sock", (int)getpid());
	ev_vm.loop = loop_new();
	ev_vm.mem.ram_size = 64 << 20;
	assert_non_null(ev_vm.loop);
	assert_int_equal(machine_qmp_init(&ev_vm, err, sizeof(err)), 0);
	struct counter cnt = { 0, 0 };
	assert_int_equal(qmp_register(ev_vm.qmp_reg, "x-add", x_add, &cnt), 0);
	assert_int_equal(qmp_register(ev_vm.qmp_reg, "x-not-active", x_not_active, NULL), 0);
	assert_int_equal(qmp_register_worker(ev_vm.qmp_reg, "x-gate", x_gate, NULL), 0);
	/* the same gate on the main thread: it stalls the loop */
	assert_int_equal(qmp_register(ev_vm.qmp_reg, "x-block", x_gate, NULL), 0);
	assert_int_equal(qmp_register_async(ev_vm.qmp_reg, "x-later", x_later, NULL), 0);
	assert_int_equal(qmp_server_create(&ev_vm, path, err, sizeof(err)), 0);
	assert_non_null(ev_vm.qmp);

	pthread_t lt;
	assert_int_equal(pthread_create(&lt, NULL, loop_thread, ev_vm.loop), 0);
	loop_tid = lt;
	check_async_ordering(path);

	struct line_reader *r = client(path);
	/* an error class chosen by the handler applies to that reply only */
	send_str(r->fd, "{\"execute\": \"x-not-active\"}\n{\"execute\": \"x-add\"}\n");
	json_t *msg = read_msg(r);
	assert_string_equal(msg_class(msg), "DeviceNotActive");
	json_decref(msg);
	msg = read_msg(r);
	assert_string_equal(msg_class(msg), "GenericError");
	json_decref(msg);

	pthread_t t[EMITTERS];
	for (long i = 0; i < EMITTERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, emitter, (void *)i), 0);
	int next[EMITTERS] = { 0 };
	for (int got = 0; got < EMITTERS * PER_EMITTER; got++) {
		msg = read_msg(r);
		assert_non_null(msg);
		assert_string_equal(json_string_value(json_object_get(msg, "event")), "X_TEST");
		json_t *data = json_object_get(msg, "data");
		int th = (int)json_integer_value(json_object_get(data, "thread"));
		int seq = (int)json_integer_value(json_object_get(data, "seq"));
		assert_true(th >= 0 && th < EMITTERS);
		assert_int_equal(seq, next[th]);  /* per-thread order kept, nothing lost */
		next[th]++;
		json_t *ts = json_object_get(msg, "timestamp");
		assert_true(json_integer_value(json_object_get(ts, "seconds")) > 1700000000);
		json_decref(msg);
	}
	for (int i = 0; i < EMITTERS; i++)
		pthread_join(t[i], NULL);

	check_event_queue_bound(path, r);

	/* a command in flight when quit stops the loop still gets its reply at teardown */
	struct line_reader *slow = client(path);
	gate_reset(loop_tid);
	send_str(slow->fd, "{\"execute\": \"x-gate\", \"id\": 10}\n");
	gate_wait_entered(1);
	/* quit replies first, then stops the loop (vm_request_exit) and announces SHUTDOWN */
	send_str(r->fd, "{\"execute\": \"quit\", \"id\": 9}\n");
	msg = read_msg(r);
	assert_int_equal(msg_id(msg), 9);
	assert_non_null(json_object_get(msg, "return"));
	json_decref(msg);
	pthread_join(lt, NULL);
	assert_int_equal(atomic_load(&ev_vm.exit_status), 0);
	pthread_t opener;
	assert_int_equal(pthread_create(&opener, NULL, open_gate_later, NULL), 0);
	qmp_server_destroy(&ev_vm);     /* waits for x-gate */
	pthread_join(opener, NULL);
	msg = read_msg(r);
	assert_non_null(msg);
	assert_string_equal(json_string_value(json_object_get(msg, "event")), "SHUTDOWN");
	json_decref(msg);
	assert_null(read_msg(r));  /* destroy hung up */
	bool replied = false;
	while ((msg = read_msg(slow))) {
		replied |= msg_id(msg) == 10 && json_object_get(msg, "return");
		json_decref(msg);
	}
	assert_true(replied);
	assert_null(ev_vm.qmp);
	assert_int_equal(access(path, F_OK), -1);  /* socket file removed */

	/* with no server an event is dropped, not leaked (LeakSanitizer checks) */
	qmp_emit_event(ev_vm.qmp_reg, "X_TEST", json_pack("{s:i}", "late", 1));
	client_free(r);
	client_free(slow);
	machine_qmp_fini(&ev_vm);
	loop_free(ev_vm.loop);
}

/*
 * A syntax error from a client that is already gone: the error reply's send
 * fails and closes the client, and parsing must stop there (fuzz_qmp found
 * the parser resuming in the freed client's buffer; the input is in
 * tests/fuzz/regressions/). The loop runs in this thread, so the client is
 * closed before the server reads a byte.
 */
static void test_parse_error_to_a_client_gone(void **state)
{
	struct vm v = { 0 };
	char path[64], err[256] = "";
	static const char bad[] = "{\"istt\n{\"execute\": \"qmp_capabilities\"}\n{\"exe\\u\n{";

	snprintf(path, sizeof(path), "/tmp/minivmm-test-qmp-gone-%d.sock", (int)getpid());
	v.loop = loop_new();
	v.mem.ram_size = 64 << 20;
	assert_non_null(v.loop);
	assert_int_equal(machine_qmp_init(&v, err, sizeof(err)), 0);
	assert_int_equal(qmp_server_create(&v, path, err, sizeof(err)), 0);
	for (int round = 0; round < 3; round++) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		strcpy(sa.sun_path, path);
		assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		loop_run_once(v.loop, 100);             /* accepted, greeted */
		send_str(fd, bad);
		close(fd);                              /* gone before its input is read */
		for (int i = 0; i < 5; i++)
			loop_run_once(v.loop, 20);
	}
	/* the server still serves */
	pthread_t lt;
	assert_int_equal(pthread_create(&lt, NULL, loop_thread, v.loop), 0);
	struct line_reader *r = client(path);
	send_str(r->fd, "{\"execute\": \"quit\", \"id\": 1}\n");
	json_t *msg = read_msg(r);
	assert_int_equal(msg_id(msg), 1);
	json_decref(msg);
	pthread_join(lt, NULL);
	qmp_server_destroy(&v);
	client_free(r);
	machine_qmp_fini(&v);
	loop_free(v.loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_contexts),
		cmocka_unit_test(test_error_split),
		cmocka_unit_test(test_arg_helpers),
		cmocka_unit_test(test_qom_router),
		cmocka_unit_test(test_async_in_process),
		cmocka_unit_test(test_server),
		cmocka_unit_test(test_parse_error_to_a_client_gone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
