/*
 * server: the QMP monitor on a unix socket, for the code that runs one (the
 * machine, vmm/machine_qmp.c). It knows nothing of VMs: handlers receive
 * the context pointer given at open, and `quit` calls back on_quit once its
 * reply is out. Command providers never include this header; they use
 * qmp.h.
 *
 * Threads: everything here runs on the thread serving the event loop (the
 * main thread), except qmp_server_emit(), which any thread may call while
 * the server is alive (the caller keeps it alive, see machine_qmp.c).
 */
#ifndef MINIVMM_QMP_SERVER_H
#define MINIVMM_QMP_SERVER_H

#include <jansson.h>
#include <stddef.h>

struct event_loop;
struct qmp_server;
struct vm;

/*
 * Listens on spec ("unix:PATH" or a plain PATH) and serves clients from loop.
 * The socket file is created mode 0600; a stale socket file at PATH is
 * replaced only when nothing listens on it. 0 with *out set, or -errno with
 * a one-line message in err.
 */
int qmp_server_open(struct qmp_server **out, struct event_loop *loop, const char *spec,
		    struct vm *ctx, void (*on_quit)(struct vm *ctx), char *err, size_t errlen);
/* Sends queued events, flushes pending replies (briefly, best effort),
 * disconnects every client, stops watching its descriptors and removes the
 * socket file. Events queued afterwards are never sent. */
void qmp_server_shutdown(struct qmp_server *srv);
/* Frees the server (after qmp_server_shutdown) with anything still queued. */
void qmp_server_free(struct qmp_server *srv);
/* Queues an event for every negotiated client (any thread); data is stolen. */
void qmp_server_emit(struct qmp_server *srv, const char *name, json_t *data);
/* Makes the server call on_quit right after the reply to the command being
 * executed went out, as QEMU quits after answering `quit`. */
void qmp_server_quit_after_reply(struct qmp_server *srv);

/* ---- internal to vmm/qmp/ ---- */

/* The class the last failing handler set with qmp_set_error_class(), or NULL. */
const char *qmp_last_error_class(void);

#endif
