/*
 * ctl: what minivmm-ctl's two halves share: the VM commands
 * (minivmm-ctl.c) and minivmm-memd's (ctl_memd.c). Program code: failures
 * end the process with a message (die), which a command line may do.
 */
#ifndef MINIVMM_CTL_CTL_H
#define MINIVMM_CTL_CTL_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "vmm/qmp/client.h"

#define CTL_REPLY_TIMEOUT_MS 30000

struct ctl {
	struct qmp_client *qc;
	const char *path;
	bool watch;                /* print events as they pass */
	bool daemon;               /* the socket is minivmm-memd's, not a VM's */
	long count;                /* watch: refreshes before exiting, 0 = until Ctrl-C */
	long cpu;                  /* translate: the vCPU (--cpu) */
	bool have_cpu;
	bool gpa;                  /* translate: the address is guest-physical (--gpa) */
};

extern volatile sig_atomic_t ctl_interrupted;

void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Ends the program with the user's words for a transport failure r. */
void ctl_die_io(struct ctl *c, const char *what, int r, const char *err) __attribute__((noreturn));
/* Runs name(args stolen): the "return" value (new ref), or NULL with the
 * server's error (or "interrupted") in err; transport failures end the program. */
json_t *ctl_cmd(struct ctl *c, const char *name, json_t *args, char *err, size_t errlen);
/* ctl_cmd, ending the program on an error reply. */
json_t *ctl_must(struct ctl *c, const char *name, json_t *args);
/* SIGINT/SIGTERM set ctl_interrupted (and interrupt waits) instead of killing. */
void ctl_catch_interrupt(void);
/* Waits a second, printing every event that arrives meanwhile. */
void ctl_wait_second(struct ctl *c);
void ctl_print_events(struct ctl *c);
void ctl_print_time(void);
/* A JSON value as an indented "key value" tree, sizes with units. */
void ctl_print_tree(const char *key, json_t *v, int depth);

/* minivmm-memd commands (ctl_memd.c); each returns the exit status. */
int ctl_memd_host(struct ctl *c);
int ctl_memd_vms(struct ctl *c);
int ctl_memd_watch(struct ctl *c);
void ctl_memd_print_event(json_t *ev);

#endif
