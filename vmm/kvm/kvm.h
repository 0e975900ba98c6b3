/*
 * vmm: the KVM core. One VM, its vCPU threads, the port-I/O and MMIO
 * registration tables, the main event loop, and the helpers devices use to
 * talk to KVM (interrupt lines, irqfd, ioeventfd).
 *
 * Library functions return 0 or a negative errno; only startup code in
 * main.c exits. Log lines start with the subsystem name.
 */
#ifndef MINIVMM_VMM_H
#define MINIVMM_VMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bootinfo.h"
#include "../mm/mm.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MINIVMM_VERSION "0.1.0"

/* ---- logging ---- */

extern int vmm_log_level;   /* 0 errors (default), 1 info (-v), 2 debug (-vv) */
void vmm_log(int level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define log_err(sub, ...)   vmm_log(0, sub, __VA_ARGS__)
#define log_info(sub, ...)  vmm_log(1, sub, __VA_ARGS__)
#define log_debug(sub, ...) vmm_log(2, sub, __VA_ARGS__)

/* ---- sizes ---- */

/* Parses "512M", "4G", "1024K", "65536" into bytes. -EINVAL on garbage or overflow. */
int parse_size(const char *s, uint64_t *out);
/* Formats bytes as "1.50 GiB" etc. into buf; returns buf. */
const char *fmt_size(uint64_t bytes, char *buf, size_t len);
/* Monotonic time in nanoseconds. */
uint64_t now_ns(void);

/* ---- I/O and MMIO registration table ---- */

/*
 * A handler serves [base, base+len). offset is relative to base; data holds
 * len bytes (1, 2, 4 or 8) in guest byte order; reads fill data.
 */
typedef void (*io_handler_fn)(void *opaque, uint64_t offset, uint8_t *data,
			      uint32_t len, bool is_write);

struct io_range {
	uint64_t base, len;
	io_handler_fn fn;
	void *opaque;
	const char *name;
};

/* Sorted, non-overlapping; registration happens before vCPUs start. */
struct io_bus {
	const char *name;
	int nr, cap;
	struct io_range *ranges;
};

/* Registers a range; -EEXIST if it overlaps an existing one, -EINVAL if empty. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    io_handler_fn fn, void *opaque, const char *name);
/* Dispatches an access; -ENOENT when nothing is registered there. */
int io_bus_dispatch(const struct io_bus *bus, uint64_t addr, uint8_t *data,
		    uint32_t len, bool is_write);
void io_bus_free(struct io_bus *bus);

/* ---- event loop (main thread) ---- */

typedef void (*loop_fn)(void *opaque, uint32_t events);
struct event_loop;

struct event_loop *loop_new(void);
void loop_free(struct event_loop *lp);
/* Watches fd for events (EPOLLIN...); fn runs on the main thread. */
int loop_add(struct event_loop *lp, int fd, uint32_t events, loop_fn fn, void *opaque);
int loop_del(struct event_loop *lp, int fd);
/* A periodic (period_ns > 0) timer; returns its fd (>= 0) or -errno.
 * loop_timer_set() re-arms it (0 disarms). */
int loop_add_timer(struct event_loop *lp, uint64_t period_ns, loop_fn fn, void *opaque);
int loop_timer_set(int timer_fd, uint64_t period_ns);
/* loop_del() on a fd from loop_add_timer() also closes it (the loop owns timer
 * fds); timer callbacks need not read the timerfd. Handlers may remove any
 * handler, themselves included. Register and remove on the main thread or
 * before loop_run(). */
/* Runs until loop_stop(); thread-safe stop through an eventfd, sticky: a stop
 * requested before loop_run() makes it return at once. */
int loop_run(struct event_loop *lp);
void loop_stop(struct event_loop *lp);

/* ---- the VM ---- */

enum guest_page_size { GUEST_PAGES_4K = 4096, GUEST_PAGES_2M = 2 << 20, GUEST_PAGES_1G = 1 << 30 };

struct vm_config {
	const char *image;
	const uint8_t *image_buf;  /* the image file, read before anything else */
	size_t image_len;
	struct mm_config mem;
	int nr_cpus;
	uint64_t guest_page_size;
	const char *append;        /* guest command line */
	bool stats;                /* print the memory/KVM summary at exit */
	const char *qmp_path;      /* unix socket path or NULL */
	const char *balloon_opts;  /* --balloon option string or NULL */
	const char *mm_opts;       /* --mm option string or NULL */
	bool no_balloon;
};

struct vcpu {
	struct vm *vm;
	int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	struct kvm_stats *stats;
	bool started;
	/* exits by reason, counted by the vCPU thread itself */
	uint64_t exits_io, exits_mmio, exits_other;
};

enum vm_state { VM_RUNNING, VM_SHUTTING_DOWN };

struct vm_device_ops;

struct vm {
	struct vm_config cfg;
	int kvm_fd;
	int vm_fd;
	int run_mmap_size;
	int max_vcpus;
	struct guest_mem mem;
	struct io_bus pio, mmio;
	struct event_loop *loop;
	struct kvm_stats *stats;
	uint64_t tsc_khz;
	uint64_t pml4_gpa;
	uint64_t kernel_start, kernel_end;
	uint64_t entry;

	int nr_cpus;
	struct vcpu *vcpus;

	atomic_int state;         /* enum vm_state */
	atomic_int exit_status;
	atomic_int vcpus_running;
	uint64_t start_ns;        /* process start, for boot-time figures */

	/* devices the guest is told about */
	int nr_devs;
	struct bootinfo_dev devs[BOOTINFO_MAX_DEV];
	char cmdline[BOOTINFO_CMDLINE_MAX];

	/* subsystems that hang off the VM; NULL when not configured */
	struct balloon *balloon;
	struct mm_manager *mgr;
	struct qmp_server *qmp;
	struct uart *uart;
	int sig_fd;               /* signalfd for SIGINT/SIGTERM, main thread */
};

/* Opens /dev/kvm, checks the API and capabilities, creates the VM with the
 * in-kernel irqchip, guest RAM and memslots. err gets a one-line message. */
int vm_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen);
/* Loads the image, builds page tables and boot info, creates vCPUs. */
int vm_load(struct vm *vm, char *err, size_t errlen);
/* Starts every vCPU thread. */
int vm_start(struct vm *vm);
/* Asks the VM to stop with this exit status (first caller wins); any thread. */
void vm_request_exit(struct vm *vm, int status);
/* Joins vCPU threads. */
void vm_join(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Sets an IOAPIC input line (KVM_IRQ_LINE). */
int vm_set_irq(struct vm *vm, uint32_t gsi, int level);
/* Binds an eventfd to a GSI (KVM_IRQFD, edge). */
int vm_irqfd(struct vm *vm, int efd, uint32_t gsi);
/* Binds an eventfd to an MMIO write of len bytes at addr with datamatch
 * (KVM_IOEVENTFD); datamatch < 0 matches any value. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, int64_t datamatch, int efd);
/* Allocates an MMIO window and an interrupt line for a device and lists it
 * in the boot info (and on the guest command line as virtio_mmio.device=). */
int vm_add_device(struct vm *vm, uint32_t device_id, uint64_t *base, uint32_t *gsi);

/* ---- loader (loader.c) ---- */

struct elf_image {
	uint64_t entry;
	uint64_t lo, hi;          /* lowest / highest GPA written */
};
/* Loads an ELF64 x86-64 image from a buffer into guest RAM; every header and
 * segment bound is checked. err gets a one-line message. */
int elf_load(struct guest_mem *gm, const uint8_t *buf, size_t len,
	     struct elf_image *img, char *err, size_t errlen);
/* Reads a whole file (image) into memory. */
int read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen);

/* ---- boot setup (boot.c): page tables, GDT, boot info ---- */
#define BOOT_GDT_GPA 0x8000ULL   /* the flat GDT the vCPUs start with */

/* Bytes of page tables needed to identity-map this memory with this leaf size. */
uint64_t boot_pagetable_size(const struct guest_mem *gm, uint64_t leaf);
int boot_setup(struct vm *vm, char *err, size_t errlen);

/* ---- vCPU (vcpu.c) ---- */
/* Whether KVM's vCPUs can map 1 GiB pages (CPUID PDPE1GB). */
bool kvm_has_1g_pages(int kvm_fd);
/* Creates the vCPU, maps its kvm_run, sets CPUID; registers come later. */
int vcpu_create(struct vm *vm, struct vcpu *cpu, int index);
/* Puts the vCPU in 64-bit long mode at the image entry (bootinfo.h contract). */
int vcpu_setup_regs(struct vcpu *cpu);
/* Starts the vCPU thread. */
int vcpu_start(struct vcpu *cpu);
void vcpu_destroy(struct vcpu *cpu);
void vcpu_dump(struct vcpu *cpu, FILE *out);

/* ---- devices ---- */
int uart_init(struct vm *vm);
void uart_destroy(struct vm *vm);

/* ---- summary (stats.c) ---- */
void vm_print_summary(struct vm *vm, FILE *out);

#endif
