/*
 * Unit tests of the QMP monitor core (vmm/qmp.c) without a guest: the
 * command registry and QMP_COMMAND, the argument helpers, and events emitted
 * from several threads at once reaching a client complete and in order.
 * The server runs on a real event loop and a real unix socket.
 */
#include <errno.h>
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

#include "vmm/qmp/qmp.h"
#include "vmm/lib/loop.h"
#include "vmm/machine.h"

static json_t *x_add(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	uint64_t a, b;
	if (qmp_arg_u64(args, "a", true, &a, err, errlen) ||
	    qmp_arg_u64(args, "b", true, &b, err, errlen))
		return NULL;
	return json_integer((json_int_t)(a + b));
}
QMP_COMMAND("x-test-add", x_add)

static json_t *x_not_active(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	snprintf(err, errlen, "No test device has been activated");
	qmp_set_error_class("DeviceNotActive");
	return NULL;
}
QMP_COMMAND("x-test-not-active", x_not_active)

static void test_registry(void **state)
{
	char err[256];
	struct vm vm = { 0 };

	assert_non_null(qmp_lookup("x-test-add"));     /* registered before main() */
	assert_non_null(qmp_lookup("query-status"));
	assert_null(qmp_lookup("x-nothing"));
	assert_int_equal(qmp_register("x-test-add", x_add), -EEXIST);
	assert_int_equal(qmp_register("", x_add), -EINVAL);
	assert_int_equal(qmp_register("x-null", NULL), -EINVAL);

	json_t *args = json_pack("{s:i,s:i}", "a", 40, "b", 2);
	json_t *ret = qmp_execute(&vm, "x-test-add", args, err, sizeof(err));
	assert_non_null(ret);
	assert_int_equal(json_integer_value(ret), 42);
	json_decref(ret);
	json_decref(args);

	args = json_pack("{s:i}", "a", 1);
	assert_null(qmp_execute(&vm, "x-test-add", args, err, sizeof(err)));
	assert_string_equal(err, "Parameter 'b' is missing");
	json_decref(args);
	assert_null(qmp_execute(&vm, "x-nothing", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "x-nothing"));
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

/* ---- events from threads ---- */

#define EMITTERS 4
#define PER_EMITTER 500

static struct vm ev_vm;

static void *emitter(void *arg)
{
	long id = (long)arg;
	for (int i = 0; i < PER_EMITTER; i++)
		qmp_emit_event(&ev_vm, "X_TEST", json_pack("{s:i,s:i}", "thread", (int)id, "seq", i));
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

static void send_str(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void test_events_from_threads(void **state)
{
	char path[64], err[256] = "";
	snprintf(path, sizeof(path), "/tmp/minivmm-test-qmp-%d.sock", (int)getpid());
	ev_vm.loop = loop_new();
	ev_vm.mem.ram_size = 64 << 20;
	assert_non_null(ev_vm.loop);
	assert_int_equal(qmp_server_create(&ev_vm, path, err, sizeof(err)), 0);
	assert_non_null(ev_vm.qmp);

	pthread_t lt;
	assert_int_equal(pthread_create(&lt, NULL, loop_thread, ev_vm.loop), 0);

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

	/* an error class chosen by the handler applies to that reply only */
	send_str(r->fd, "{\"execute\": \"x-test-not-active\"}\n{\"execute\": \"x-test-add\"}\n");
	msg = read_msg(r);
	assert_string_equal(json_string_value(json_object_get(json_object_get(msg, "error"), "class")),
			    "DeviceNotActive");
	json_decref(msg);
	msg = read_msg(r);
	assert_string_equal(json_string_value(json_object_get(json_object_get(msg, "error"), "class")),
			    "GenericError");
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

	/* quit replies first, then stops the loop (vm_request_exit) and announces SHUTDOWN */
	send_str(r->fd, "{\"execute\": \"quit\", \"id\": 9}\n");
	msg = read_msg(r);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 9);
	assert_non_null(json_object_get(msg, "return"));
	json_decref(msg);
	pthread_join(lt, NULL);
	assert_int_equal(atomic_load(&ev_vm.exit_status), 0);
	qmp_server_destroy(&ev_vm);
	msg = read_msg(r);
	assert_non_null(msg);
	assert_string_equal(json_string_value(json_object_get(msg, "event")), "SHUTDOWN");
	json_decref(msg);
	assert_null(read_msg(r));  /* destroy hung up */
	assert_null(ev_vm.qmp);
	assert_int_equal(access(path, F_OK), -1);  /* socket file removed */

	/* with no server an event is dropped, not leaked (LeakSanitizer checks) */
	qmp_emit_event(&ev_vm, "X_TEST", json_pack("{s:i}", "late", 1));
	close(r->fd);
	free(r);
	loop_free(ev_vm.loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_arg_helpers),
		cmocka_unit_test(test_events_from_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
