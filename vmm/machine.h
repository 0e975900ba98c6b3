/*
 * machine: one VM assembled from a config: guest RAM and the KVM VM, the
 * built-in devices (exit port, UART), the memory manager, the balloon, the
 * QMP monitor, the loaded image and boot state; its run and its teardown.
 * The programs (vmm/main.c) use this header; nothing below the machine does.
 *
 * Threads: every function here runs on the main thread.
 */
#ifndef MINIVMM_MACHINE_H
#define MINIVMM_MACHINE_H

#include <stddef.h>
#include <stdio.h>

#include "vmm/kvm/kvm.h"

/* ---- assembly (machine.c) ---- */

/* Builds every part of the VM from cfg in order (VM and RAM, the QMP command
 * registry, memory manager, balloon unless cfg->no_balloon, each registering
 * its commands, the QMP monitor when cfg->qmp_path, image and boot state,
 * manager threads). On failure err holds a one-line message (or
 * is empty: strerror of the result); call machine_destroy() either way. */
int machine_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen);
/* Starts the vCPUs, confines the main thread to main_sandbox (NULL-terminated
 * allow-lists, vmm/lib/sandbox.h; NULL: no filter), serves the main loop
 * until the VM stops, joins the vCPUs. 0, or -errno when the vCPUs could
 * not start or the filter not be installed (message printed). */
int machine_run(struct vm *vm, const struct sb_list *const *main_sandbox);
/* Tears down whatever machine_create built, in reverse order. */
void machine_destroy(struct vm *vm);

/* The steps machine_create() takes, for tests that build a VM by hand. */
/* The KVM VM with guest RAM, its memslots, the event loop and the built-in
 * devices (exit port, UART). */
int vm_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen);
/* Loads the image, creates vCPUs, builds page tables and boot info. */
int vm_load(struct vm *vm, char *err, size_t errlen);
void vm_destroy(struct vm *vm);

/* ---- the VM's QMP monitor (machine_qmp.c) ---- */

/* Creates vm->qmp_reg with the commands about the whole VM (query-status,
 * stop, cont, quit, ...), before the subsystems register theirs. 0 or -errno
 * with err. */
int machine_qmp_init(struct vm *vm, char *err, size_t errlen);
/* Frees vm->qmp_reg; after the server and the subsystems are gone. */
void machine_qmp_fini(struct vm *vm);

/*
 * Starts the monitor for vm's registry on a unix socket. spec is "unix:PATH" or a plain
 * PATH. The socket file is created mode 0600; a stale socket file at PATH is
 * replaced only when nothing listens on it. The server is served by
 * vm->loop and stored in vm->qmp. 0 or -errno with a one-line message in err.
 */
int qmp_server_create(struct vm *vm, const char *spec, char *err, size_t errlen);
/* Waits for commands in flight (a reclaim pass) and answers them, sends
 * queued events, flushes pending replies (briefly, best effort),
 * disconnects every client, removes the socket file and clears vm->qmp.
 * Call it after the threads that emit events stopped and before vm->loop is
 * freed. Safe when no server was created. */
void qmp_server_destroy(struct vm *vm);

/* ---- summary (machine_stats.c) ---- */

/* The memory and KVM statistics summary printed at exit (--stats). */
void vm_print_summary(struct vm *vm, FILE *out);

#endif
