/*
 * The guest's kernel/user interface: syscall numbers and the workload
 * parameters the kernel parses from the command line and hands to ring 3.
 * Included by kernel and user files alike; plain fixed-width types only.
 */
#ifndef GUEST_UAPI_H
#define GUEST_UAPI_H

#include <stdint.h>

/* syscall = ud2 in ring 3: number in rax, arguments in rdi, rsi, rdx, r10, r8; result in rax. */
enum {
	SYS_EXIT = 0,       /* (status) never returns */
	SYS_WRITE,          /* (buf, len) console output -> len or -1 */
	SYS_MEM_ALLOC,      /* (bytes) -> user VA (2 MiB aligned, not zeroed) or 0 */
	SYS_MEM_FREE,       /* (va, bytes) a whole earlier allocation -> 0 or -1 */
	SYS_SLEEP_MS,       /* (ms) -> 0 */
	SYS_YIELD,          /* () -> 0 */
	SYS_MEMINFO,        /* () -> free guest RAM in bytes */
	SYS_NR
};

enum workload {
	WL_DEMO = 0,        /* no workload= given */
	WL_FILL,
	WL_TOUCH,
	WL_IDLE,
	WL_CHURN,
	WL_WSS,
	WL_POWEROFF,        /* kernel only: ACPI S5 through the FADT and \_S5 */
	WL_RESET,           /* kernel only: the FADT's reset register */
};

enum touch_pattern { TOUCH_RANDOM = 0, TOUCH_SEQ };

#define UPARAM_MAX_CPUS 64
#define UPARAM_WSS_STEPS 8     /* wss: steps of the hot-size schedule */

struct uparams {
	uint32_t workload;      /* enum workload */
	uint32_t ntasks;        /* cpus running this workload */
	uint64_t size;          /* bytes, multiple of 4 KiB */
	uint32_t mix[4];        /* percent zero, dup, random, text */
	uint64_t rounds;        /* 0 = forever */
	uint64_t seed;
	uint64_t accesses;      /* touch */
	uint32_t pattern;       /* touch: enum touch_pattern */
	uint32_t quiet;
	uint64_t stride;        /* touch seq: bytes between accesses */
	uint64_t chunk;         /* churn: bytes per allocation */
	uint64_t pause_ms;      /* churn: pause between rounds */
	uint64_t tsc_khz;
	uint32_t page_size;     /* bootinfo guest_page_size */
	uint32_t pad;
	uint32_t wss_steps;     /* wss: entries of wss_hot/wss_at_s in use (>= 1) */
	uint32_t pad2;
	uint64_t wss_hot[UPARAM_WSS_STEPS];  /* wss: hot bytes from wss_at_s[i] on */
	uint64_t wss_at_s[UPARAM_WSS_STEPS]; /* wss: seconds after the fill, [0] = 0, increasing */
	uint64_t verify_s;      /* wss: seconds between full verifications (0 = only at the end) */
	uint64_t duration_s;    /* wss: seconds of hot phase (0 = until the VMM quits) */
	uint64_t hold_s;        /* touch: seconds to keep its memory mapped after the measurement,
	                         * for the VMM's translation inspector (0 = exit at once) */
};

#endif
