/*
 * qmp: the QMP command registry (QEMU Machine Protocol, QEMU's
 * docs/interop/qmp-spec) every subsystem extends from its own file, the
 * argument helpers and event emission. This is the one vmm/qmp/ header
 * command providers include; the socket server is in server.h, run by the
 * machine (vmm/machine_qmp.c).
 *
 * Contract for command providers (balloon/, mm/, ...):
 *   - Write a handler of type qmp_cmd_fn and register it at load time with
 *     QMP_COMMAND("name", fn) at file scope; qmp.c needs no edit. Names are
 *     QEMU's where QEMU has the command (balloon, query-balloon, qom-get,
 *     qom-set, ...), minivmm's own otherwise (query-memory-manager, ...).
 *     One name has one owner: a second registration of a name is refused
 *     with a log line, so exactly one file registers qom-get/qom-set and
 *     dispatches on "path" itself.
 *   - Handlers run on the main thread, one at a time, after the client
 *     negotiated capabilities; vCPUs may be running concurrently.
 *   - args is a borrowed JSON object (an empty object when the client sent no
 *     "arguments"); never NULL. Do not keep or decref it.
 *   - Return a new reference to the "return" value (json_object() when there
 *     is nothing to say), or NULL with a one-line message in err, which the
 *     client receives as {"error": {"class": "GenericError", "desc": err}}
 *     (another class with qmp_set_error_class()).
 *   - Events go through qmp_emit_event() from any thread.
 *
 * Link note: registration runs from a constructor in the object file that
 * holds QMP_COMMAND, so that object must be linked into the program (it is
 * when the program references any other symbol in it, or when the library
 * is linked with --whole-archive).
 */
#ifndef MINIVMM_QMP_QMP_H
#define MINIVMM_QMP_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct qmp_server;

/* A command handler: the "return" value as a new reference, or NULL with err filled. */
typedef json_t *(*qmp_cmd_fn)(struct vm *vm, json_t *args, char *err, size_t errlen);

/* Adds a command to the registry. 0, -EEXIST if the name is taken, -EINVAL on
 * an empty name or NULL fn, -ENOSPC when the registry is full. Call it before
 * the server starts or from the main thread. */
int qmp_register(const char *name, qmp_cmd_fn fn);

/* Registers fn under name when the program is loaded (constructor), as kvmtool's
 * init macros do; use it once per command at file scope. */
#define QMP_CAT_(a, b) a##b
#define QMP_CAT(a, b) QMP_CAT_(a, b)
#define QMP_COMMAND(name, fn)                                                   \
	static void __attribute__((constructor)) QMP_CAT(qmp_ctor_, __COUNTER__)(void) \
	{                                                                       \
		qmp_register(name, fn);                                         \
	}

/* Called by a handler just before it returns NULL: the client sees this error
 * class (a string literal such as QEMU's "DeviceNotActive") instead of
 * GenericError. Main thread only; reset before every command. */
void qmp_set_error_class(const char *cls);

/* Looks a command up by name; NULL when nothing is registered under it. */
qmp_cmd_fn qmp_lookup(const char *name);

/* Runs a registered command in-process as a client would (main thread only):
 * the return value (new reference) or NULL with err filled. For tests and
 * for minivmm's own tooling. */
json_t *qmp_execute(struct vm *vm, const char *name, json_t *args, char *err, size_t errlen);

/* Broadcasts {"event": name, "data": data, "timestamp": {...}} to every client
 * past capabilities negotiation. data is stolen (NULL means no "data" member).
 * Callable from any thread: the event is queued and sent by the main loop.
 * Dropped silently when no server runs. Defined by the machine
 * (vmm/machine_qmp.c), which knows which server serves vm. */
void qmp_emit_event(struct vm *vm, const char *name, json_t *data);

/* Argument helpers for handlers. Each returns 0 when the argument was read,
 * -ENOENT when it is absent and optional (out untouched), -EINVAL with a
 * QEMU-style message in err when it is missing but required or of the
 * wrong type. */
int qmp_arg_u64(json_t *args, const char *key, bool required, uint64_t *out,
		char *err, size_t errlen);
int qmp_arg_str(json_t *args, const char *key, bool required, const char **out,
		char *err, size_t errlen);
int qmp_arg_bool(json_t *args, const char *key, bool required, bool *out,
		 char *err, size_t errlen);
/* -EINVAL with "Parameter 'x' is unexpected" when args holds a key not in
 * the NULL-terminated list allowed (allowed may be NULL: no arguments). */
int qmp_args_only(json_t *args, const char *const *allowed, char *err, size_t errlen);

#endif
