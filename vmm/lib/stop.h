/*
 * stop: why a VM stopped, and the exit status minivmm returns for it.
 *
 * The guest's own exit statuses (what it writes to its exit port) are
 * passed through as 0..STOP_GUEST_MAX; everything minivmm decides itself
 * uses the statuses from 64 up, so a script can always tell "the guest said
 * so" from "minivmm stopped it". README's "Exit statuses" table lists them;
 * keep the two in agreement.
 */
#ifndef MINIVMM_LIB_STOP_H
#define MINIVMM_LIB_STOP_H

/* Largest guest status passed through; a guest value above it exits with it. */
#define STOP_GUEST_MAX 63

enum stop_reason {
	STOP_GUEST = 0,          /* the guest wrote its exit port, or the last vCPU halted */
	STOP_REQUESTED,          /* QMP quit, SIGINT or SIGTERM: status 0 */
	STOP_USAGE = 64,         /* bad command line or configuration, refused at start */
	STOP_STARTUP = 65,       /* the VM could not be set up (KVM, memory, image) */
	STOP_VCPU = 66,          /* a vCPU cannot continue: triple fault, emulation failure, KVM error */
	STOP_CHECKSUM = 67,      /* an evicted page failed its checksum: its contents are lost */
	STOP_UNRESOLVABLE = 68,  /* an evicted page could not be brought back (host out of memory) */
	STOP_INTERNAL = 69,      /* a minivmm thread failed (a bug, or a resource it needs vanished) */
};

/* The process exit status for a reason (STOP_GUEST and STOP_REQUESTED: 0;
 * use the guest's own status for STOP_GUEST where there is one). */
static inline int stop_status(enum stop_reason r)
{
	return r == STOP_GUEST || r == STOP_REQUESTED ? 0 : (int)r;
}

/* One word for logs and QMP ("guest", "checksum", ...). */
static inline const char *stop_reason_name(enum stop_reason r)
{
	switch (r) {
	case STOP_GUEST: return "guest";
	case STOP_REQUESTED: return "requested";
	case STOP_USAGE: return "usage";
	case STOP_STARTUP: return "startup";
	case STOP_VCPU: return "vcpu-failure";
	case STOP_CHECKSUM: return "checksum-mismatch";
	case STOP_UNRESOLVABLE: return "unresolvable-fault";
	case STOP_INTERNAL: return "internal-error";
	}
	return "unknown";
}

#endif
