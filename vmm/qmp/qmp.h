/*
 * qmp: the QMP command registry (QEMU Machine Protocol, QEMU's
 * docs/interop/qmp-spec) that every subsystem extends at run time with its
 * own context pointer, the QOM router (qom-get / qom-set / qom-list over
 * per-object property tables), asynchronous commands, events and the
 * argument helpers. This is the one vmm/qmp/ header command providers
 * include; the socket server is in server.h, run by the machine.
 *
 * A registry is an instance: the machine owns one per VM and hands it to
 * the subsystems it assembles; a unit test makes its own. Nothing here is
 * process-wide, and nothing here knows what a VM is.
 *
 * Contract for command providers (balloon/, mm/, the machine, ...):
 *   - The subsystem that owns an object registers its commands with that
 *     object as ctx: qmp_register(reg, "query-balloon", fn, balloon). Names
 *     are QEMU's where QEMU has the command, minivmm's own otherwise. One
 *     name has one owner: a second registration is refused (-EEXIST).
 *   - Handlers (qmp_cmd_fn) run on the main thread, one at a time; vCPUs and
 *     device workers run concurrently. args is a borrowed JSON object (an
 *     empty object when the client sent no "arguments"), never NULL.
 *   - A handler returns a new reference to the "return" value (json_object()
 *     when there is nothing to say), or NULL with a one-line message in err,
 *     which the client receives as {"error": {"class": "GenericError",
 *     "desc": err}}; qmp_error() picks another class.
 *   - Work that takes long must not run on the main thread: register it with
 *     qmp_register_worker() (the handler runs on the registry's worker
 *     thread) or qmp_register_async() (the handler starts the work and
 *     completes the request later from any thread). The reply then goes out
 *     when the work ends, with the client's "id"; other clients are served
 *     meanwhile, and the same client's later commands wait, so each client
 *     sees its replies in the order it sent the commands.
 *   - Objects with QOM properties register a property table with
 *     qmp_qom_add(); the router owns qom-get, qom-set and qom-list.
 *   - Events go through qmp_emit_event() from any thread.
 *
 * Threads: registration, qmp_qom_add() and qmp_execute() on the main thread
 * (or before any server runs); qmp_emit_event() and qmp_async_done() from
 * any thread; qmp_registry_free() after the server is gone.
 */
#ifndef MINIVMM_QMP_QMP_H
#define MINIVMM_QMP_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qmp_registry;
/* One asynchronous command in flight, from its start to qmp_async_done(). */
struct qmp_async;

/* A command handler: the "return" value as a new reference, or NULL with err filled. */
typedef json_t *(*qmp_cmd_fn)(void *ctx, json_t *args, char *err, size_t errlen);

/*
 * An asynchronous command's start, on the main thread. Either it fails at
 * once (returns a negative errno with err filled; req is not taken), or it
 * returns 0 having taken req, and then calls qmp_async_done(req, ...)
 * exactly once, from any thread, when the work is finished. args is
 * borrowed for the duration of the call only.
 */
typedef int (*qmp_async_fn)(void *ctx, json_t *args, struct qmp_async *req,
			    char *err, size_t errlen);

/* ---- the registry ---- */

/* A registry that already holds the protocol's own commands (qmp_capabilities,
 * query-version, query-commands) and the QOM router's (qom-get, qom-set,
 * qom-list). 0 or -ENOMEM. */
int qmp_registry_new(struct qmp_registry **out);
/* Stops the worker thread (waiting for the command it runs) and frees the
 * registry. NULL is fine. */
void qmp_registry_free(struct qmp_registry *reg);

/* Adds a command served on the main thread. 0, -EEXIST if the name is taken,
 * -EINVAL on an empty name or NULL fn, -ENOMEM. ctx may be NULL. */
int qmp_register(struct qmp_registry *reg, const char *name, qmp_cmd_fn fn, void *ctx);
/* Adds a command whose handler runs on the registry's worker thread (one
 * thread, commands in arrival order), for work that blocks for long; the
 * handler must be safe to run concurrently with the main thread. Same
 * results as qmp_register(). */
int qmp_register_worker(struct qmp_registry *reg, const char *name, qmp_cmd_fn fn, void *ctx);
/* Adds a command that completes through qmp_async_done(). Same results. */
int qmp_register_async(struct qmp_registry *reg, const char *name, qmp_async_fn fn, void *ctx);
/* Completes an asynchronous command: ret (stolen) is the "return" value, or
 * NULL with err (a message, possibly from qmp_error()) for an error reply.
 * Any thread; req must not be used afterwards. */
void qmp_async_done(struct qmp_async *req, json_t *ret, const char *err);

/* Whether a command is registered under name. */
bool qmp_has_command(struct qmp_registry *reg, const char *name);

/*
 * Runs a command in-process as a client would and waits for it, also for
 * worker and asynchronous commands (so not from a thread that an async
 * command needs to complete): the return value (new reference) or NULL with
 * the error's description in err (its class is not kept). args may be NULL.
 */
json_t *qmp_execute(struct qmp_registry *reg, const char *name, json_t *args,
		    char *err, size_t errlen);

/* Broadcasts {"event": name, "data": data, "timestamp": {...}} to every client
 * past capabilities negotiation of the server serving reg. data is stolen
 * (NULL: no "data" member). Any thread; the main loop sends it. Dropped
 * silently when no server is attached. */
void qmp_emit_event(struct qmp_registry *reg, const char *name, json_t *data);

/* ---- errors ---- */

/* Fills err for an error reply of class cls (QEMU's, e.g. "DeviceNotActive",
 * "DeviceNotFound"; NULL: GenericError) and returns NULL, so a handler can
 * `return qmp_error(err, errlen, "DeviceNotActive", "No balloon ...")`. */
json_t *qmp_error(char *err, size_t errlen, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Separates what qmp_error() put in err: copies the class to cls
 * ("GenericError" when none was given) and leaves only the description in err. */
void qmp_error_split(char *err, char *cls, size_t clslen);

/* ---- the QOM router ---- */

/* One property of a QOM object. */
struct qom_prop {
	const char *name;          /* QEMU's name, e.g. "guest-stats" */
	/* QEMU's type name, shown by qom-list. "int", "uint8".."uint64",
	 * "int8".."int64", "bool" and "string" values are type-checked by
	 * qom-set before set is called; other types are the setter's to check. */
	const char *type;
	/* The value as a new reference, or NULL with err filled. Main thread. */
	json_t *(*get)(void *ctx, char *err, size_t errlen);
	/* Sets the value (borrowed): 0, or -errno with err filled. NULL: the
	 * property is read-only. Main thread. */
	int (*set)(void *ctx, json_t *value, char *err, size_t errlen);
};

/*
 * Makes the object at path (absolute, e.g. "/machine/peripheral/balloon0")
 * visible to qom-get / qom-set / qom-list with the properties in props (an
 * array ended by an entry with a NULL name; it must outlive the registry)
 * and ctx handed to their get/set. type is its QOM type name (as in QEMU's
 * error texts, e.g. "virtio-balloon-device"). The containers above it
 * ("/machine", "/machine/peripheral") exist implicitly; a partial path
 * ("balloon0") finds the one object whose path ends with it, as in QEMU.
 * 0, -EEXIST, -EINVAL (path not absolute), -ENOMEM.
 */
int qmp_qom_add(struct qmp_registry *reg, const char *path, const char *type,
		const struct qom_prop *props, void *ctx);

/* ---- argument helpers ---- */

/* Each returns 0 when the argument was read, -ENOENT when it is absent and
 * optional (out untouched), -EINVAL with a QEMU-style message in err when it
 * is missing but required or of the wrong type. */
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
