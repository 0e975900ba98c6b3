/*
 * qmp/client: the client side of QMP (QEMU's docs/interop/qmp-spec) on a
 * unix socket, for the programs that talk to monitors: minivmm-ctl (to a
 * VM or to minivmm-memd) and minivmm-memd (to every VM it manages). Knows
 * nothing of VMs: it connects, reads the greeting, negotiates capabilities,
 * runs commands with a timeout and keeps the events that arrive meanwhile.
 *
 * Every function returns 0 or a negative errno and never exits; the
 * message for a user is in the caller's err buffer:
 *   -ECONNREFUSED, -ENOENT, ...  connect failed (err: "cannot connect to PATH: ...")
 *   -EPROTO       the server answered with an error; err holds its desc and
 *                 qmp_client_error_class() its class ("CommandNotFound", ...)
 *   -ETIMEDOUT    no reply (or greeting) in time
 *   -EPIPE        the server closed the connection
 *   -EBADMSG      the server sent malformed JSON or something not QMP
 *   -EMSGSIZE     a message larger than QMP_CLIENT_MAX_MESSAGE
 *   -EINTR        a signal interrupted the wait (the caller decides whether
 *                 to go on; nothing is lost, the reply can still be read)
 *   -ENOMEM
 * After -EPIPE, -EBADMSG or -EMSGSIZE the connection is unusable: close it.
 *
 * Threads: a client is used by one thread at a time.
 */
#ifndef MINIVMM_QMP_CLIENT_H
#define MINIVMM_QMP_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#define QMP_CLIENT_MAX_MESSAGE (16u << 20)
#define QMP_CLIENT_MAX_EVENTS  1024   /* kept events; older ones are dropped first */

struct qmp_client;

/*
 * Connects to spec ("unix:PATH" or PATH), waits up to timeout_ms for the
 * greeting and, when negotiate is set, runs qmp_capabilities. On failure
 * *out is NULL and err says what went wrong.
 */
int qmp_client_connect(const char *spec, int timeout_ms, int negotiate, struct qmp_client **out,
		       char *err, size_t errlen);
void qmp_client_close(struct qmp_client *c);

/* The greeting's "QMP" object (borrowed, valid until close). */
json_t *qmp_client_greeting(struct qmp_client *c);
/* The socket path, the descriptor (for poll) and the server's pid (SO_PEERCRED; 0 unknown). */
const char *qmp_client_path(const struct qmp_client *c);
int qmp_client_fd(const struct qmp_client *c);
pid_t qmp_client_peer_pid(const struct qmp_client *c);

/*
 * Runs one command (args stolen; NULL for none) and waits up to timeout_ms
 * (< 0: forever) for its reply, matched by id; events that arrive meanwhile
 * are kept. 0 with *ret the "return" value (a new reference).
 */
int qmp_client_execute(struct qmp_client *c, const char *cmd, json_t *args, int timeout_ms, json_t **ret,
		       char *err, size_t errlen);
/* The class of the last -EPROTO error ("GenericError" when the server gave none). */
const char *qmp_client_error_class(const struct qmp_client *c);

/*
 * Sends msg (stolen) as it is and returns the next message that is not an
 * event (events are kept): for passing a user's own command through.
 * *reply is a new reference.
 */
int qmp_client_transact(struct qmp_client *c, json_t *msg, int timeout_ms, json_t **reply, char *err,
			size_t errlen);

/*
 * The oldest kept event, or the next one to arrive within timeout_ms
 * (0: only what is already here). 0 with *ev (a new reference), -ETIMEDOUT
 * when none came.
 */
int qmp_client_next_event(struct qmp_client *c, int timeout_ms, json_t **ev, char *err, size_t errlen);

#endif
