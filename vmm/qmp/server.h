/*
 * server: the QMP monitor on a unix socket, for the code that runs one (the
 * machine, vmm/machine_qmp.c). It knows nothing of VMs: it serves the
 * commands of the registry it is given, sends the events emitted through
 * that registry, and `quit` calls back on_quit once its reply is out.
 * Command providers never include this header; they use qmp.h.
 *
 * Threads: everything here runs on the thread serving the event loop (the
 * main thread). Asynchronous commands complete from other threads through
 * the registry; their replies are sent by the main loop.
 */
#ifndef MINIVMM_QMP_SERVER_H
#define MINIVMM_QMP_SERVER_H

#include <jansson.h>
#include <stddef.h>

#include "vmm/lib/sandbox.h"

struct event_loop;
struct qmp_registry;
struct qmp_server;
struct sockaddr_un;

/* The calls of the thread serving the monitor (sandbox.h): accepting and
 * serving clients, the completion and event eventfds, and the teardown's
 * flush (poll) and socket file removal (unlink). */
extern const struct sb_list qmp_sandbox_server;

/*
 * Listens on spec ("unix:PATH" or a plain PATH) and serves reg's commands
 * to clients from loop; events emitted through reg go to its clients from
 * now until qmp_server_shutdown(). The socket file is created mode 0600; a
 * stale socket file at PATH is replaced only when nothing listens on it.
 * 0 with *out set, or -errno with a one-line message in err.
 */
int qmp_server_open(struct qmp_server **out, struct event_loop *loop, const char *spec,
		    struct qmp_registry *reg, void (*on_quit)(void *opaque), void *opaque,
		    char *err, size_t errlen);
/* Waits for the commands in flight and sends their replies (starting no new
 * ones), sends queued events, flushes pending replies (briefly, best
 * effort), disconnects every client, stops watching its descriptors and
 * removes the socket file. Events emitted afterwards are dropped. */
void qmp_server_shutdown(struct qmp_server *srv);
/* Frees the server (after qmp_server_shutdown) with anything still queued. */
void qmp_server_free(struct qmp_server *srv);
/* Makes the server call on_quit right after the reply to the command being
 * executed went out, as QEMU quits after answering `quit`. */
void qmp_server_quit_after_reply(struct qmp_server *srv);

/* ---- internal to vmm/qmp/ (socket.c) ---- */

/* The socket address of spec ("unix:PATH" or PATH). 0 or -errno with err. */
int qmp_socket_parse(const char *spec, struct sockaddr_un *sa, char *err, size_t errlen);
/* Binds and listens on sa (mode 0600), replacing a stale socket file; *fd
 * is the listening socket (set as soon as it exists, also on failure).
 * 0 or -errno with err. */
int qmp_socket_listen(const struct sockaddr_un *sa, int *fd, char *err, size_t errlen);

#endif
