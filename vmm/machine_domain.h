/*
 * machine_domain: a libvirt domain definition (domain XML, read with
 * libxml2) as a minivmm machine configuration, for `minivmm --domain FILE`.
 *
 * The subset minivmm accepts is what it can honour: name, memory,
 * currentMemory (a balloon target from the start), vcpu, os (type hvm,
 * arch x86_64, kernel, initrd, cmdline), memoryBacking (hugepages with a
 * page size, source memfd or anonymous, allocation immediate, nosharepages),
 * devices memballoon (virtio or none, stats period, autodeflate,
 * freePageReporting), serial and console (minivmm's console is its
 * standard output), a USB controller of model none, emulator; features
 * apic and pae; cpu host-passthrough or host-model; and, in minivmm's own
 * metadata namespace (DOMAIN_XMLNS), the --mm option string and the VM's
 * floor and weight for minivmm-memd. Everything else the file asks for (a
 * disk, an interface, another architecture, ...) is refused with one line
 * naming the element and what minivmm supports: never silently ignored.
 *
 * Called once, by the program, before the machine exists; no threads.
 */
#ifndef MINIVMM_MACHINE_DOMAIN_H
#define MINIVMM_MACHINE_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mm/mm.h"

/* The namespace of minivmm's own <metadata> element. */
#define DOMAIN_XMLNS "urn:minivmm:domain:1"

struct domain_def {
	char *name;                 /* <name>, NULL when absent */
	uint64_t memory;            /* <memory>, bytes */
	uint64_t current_memory;    /* <currentMemory>, bytes; 0 when absent */
	int vcpus;                  /* <vcpu>, 0 when absent */
	char *kernel, *initrd, *cmdline;
	bool backing_set;           /* memoryBacking chose one */
	enum mm_backing backing;
	uint64_t hugepage_size;     /* with backing hugetlb */
	bool prealloc;              /* <allocation mode='immediate'/> */
	bool nosharepages;          /* no dedup of this guest's pages */
	bool balloon;               /* <memballoon model='virtio'>; false with model none */
	char balloon_opts[128];     /* --balloon string from the memballoon's attributes */
	char *mm_opts;              /* <minivmm:mm>, NULL when absent */
	uint64_t memd_floor;        /* <minivmm:memd floor=...>, bytes; 0: daemon's default */
	unsigned memd_weight;       /* <minivmm:memd weight=...>; 0: daemon's default */
	char notes[512];            /* what was accepted but is honoured differently, to tell the user */
	char mm_buf[512];           /* storage for the --mm string domain_apply() composes */
};

/* The settings the command line gave (bits), which override the file's. */
enum domain_cli {
	DOM_CLI_MEM = 1 << 0, DOM_CLI_CPUS = 1 << 1, DOM_CLI_APPEND = 1 << 2, DOM_CLI_BACKING = 1 << 3,
	DOM_CLI_HPSIZE = 1 << 4, DOM_CLI_PREALLOC = 1 << 5, DOM_CLI_MM = 1 << 6, DOM_CLI_BALLOON = 1 << 7,
	DOM_CLI_NO_BALLOON = 1 << 8, DOM_CLI_IMAGE = 1 << 9, DOM_CLI_NAME = 1 << 10,
};

struct vm_config;

/*
 * Fills cfg from d for every setting whose bit is not in cli, and says on
 * stderr (one line each) where the command line overrides the file. *name
 * gets the domain's name unless the command line named the VM. -EINVAL with
 * err when the result cannot work (no image anywhere, currentMemory without
 * a balloon). cfg's strings point into d, which must outlive cfg's use.
 */
int domain_apply(struct domain_def *d, unsigned cli, struct vm_config *cfg, const char **name,
		 char *err, size_t errlen);

/*
 * Reads the domain definition at path (or len bytes of buf, named name in
 * messages) into d. 0, or -EINVAL (malformed XML with its line and column,
 * or an element minivmm does not support, named) / -ENOENT / -ENOMEM with a
 * one-line message in err. domain_free() releases d in every case.
 */
int domain_load(const char *path, struct domain_def *d, char *err, size_t errlen);
int domain_parse(const char *buf, size_t len, const char *name, struct domain_def *d, char *err,
		 size_t errlen);
void domain_free(struct domain_def *d);

#endif
