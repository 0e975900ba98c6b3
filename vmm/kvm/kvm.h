/*
 * kvm: the KVM VM and its vCPUs. /dev/kvm and the capabilities minivmm
 * needs, the VM file descriptor with its in-kernel irqchip and memslots,
 * interrupt lines, irqfd and ioeventfd, the guest's device windows, and the
 * vCPU threads with their run loop. struct vm also carries what the machine
 * (vmm/machine.c) hangs off it; the machine creates and destroys it.
 *
 * Threads: set-up and teardown on the main thread; each vCPU runs on its own
 * thread ("vcpu0", ...; vcpu_start) and dispatches port and MMIO exits
 * through vm->pio and vm->mmio; a write KVM matched to an ioeventfd never
 * exits: the device worker that owns the eventfd serves it.
 * vm_request_exit() may be called from any thread; vm_pause() and
 * vm_resume() on the main thread. A paused vCPU is parked between exits,
 * holding no lock, so devices and the monitor never wait for it.
 *
 * Functions return 0 or a negative errno unless stated otherwise.
 */
#ifndef MINIVMM_KVM_KVM_H
#define MINIVMM_KVM_KVM_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mm/mm.h"
#include "vmm/boot/bootinfo.h"
#include "vmm/kvm/bus.h"
#include "vmm/lib/sandbox.h"

struct event_loop;

#define VM_VCPU_SANDBOX_MAX 8
struct kvm_stats;

enum guest_page_size { GUEST_PAGES_4K = 4096, GUEST_PAGES_2M = 2 << 20, GUEST_PAGES_1G = 1 << 30 };

/* CPUID bits hidden from the guest (--cpu-features -NAME,...). */
#define CPUID_HIDE_MAX 32
struct cpuid_hide {
	int n;
	struct { uint32_t leaf, subleaf; uint8_t reg, bit; } bits[CPUID_HIDE_MAX];  /* reg: 0 eax .. 3 edx */
};

/* How the vCPUs start: the own guest's contract (bootinfo.h) or Linux's. */
enum vcpu_entry {
	VCPU_ENTRY_OWN,       /* every vCPU in long mode at the ELF entry */
	VCPU_ENTRY_PVH,       /* BSP in 32-bit protected mode, paging off, EBX = hvm_start_info */
	VCPU_ENTRY_LINUX64,   /* BSP in long mode, RSI = zero page */
	VCPU_ENTRY_LINUX32,   /* BSP in 32-bit protected mode, ESI = zero page */
};

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
	/* What minivmm-memd should know of this VM (from --domain metadata);
	 * 0: the daemon's own default. */
	const char *name;
	uint64_t memd_floor;
	unsigned memd_weight;
	/* Linux guests */
	const char *initrd;        /* --initrd FILE or NULL */
	int bzimage_decompress;    /* enum linux_decomp_mode (vmm/boot/boot.h) */
	struct cpuid_hide cpu_hide;
};

struct vcpu {
	struct vm *vm;
	int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	struct kvm_stats *stats;
	atomic_bool started;      /* set once thread is valid: other vCPUs read both */
	/* exits by reason, counted by the vCPU thread itself */
	uint64_t exits_io, exits_mmio, exits_other;
};

enum vm_state { VM_RUNNING, VM_SHUTTING_DOWN };

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
	int entry_mode;           /* enum vcpu_entry */
	uint64_t entry_arg;       /* Linux: GPA of the zero page (RSI/ESI) or hvm_start_info (EBX) */

	int nr_cpus;
	struct vcpu *vcpus;

	atomic_int state;         /* enum vm_state */
	atomic_int exit_status;
	unsigned stop_grace_s;    /* >0: a stop not finished after this long ends the process */
	sem_t stop_sem;           /* posted by vm_request_exit for the stop watchdog */
	atomic_bool watchdog;     /* the stop watchdog runs (vm_start, stop_grace_s > 0); read
	                           * by any thread that stops the VM, mm's among them */
	atomic_int vcpus_running;
	uint64_t start_ns;        /* process start, for boot-time figures */

	/* QMP stop/cont: vCPUs park outside KVM_RUN while pause_req is set */
	pthread_mutex_t pause_lock;  /* guards vcpus_parked and paused */
	pthread_cond_t pause_cond;   /* a vCPU parked or left; pause_req or state changed */
	atomic_bool pause_req;
	int vcpus_parked;
	bool paused;                 /* every running vCPU parked (vm_pause done) */

	/* devices the guest is told about */
	int nr_devs;
	struct bootinfo_dev devs[BOOTINFO_MAX_DEV];
	char cmdline[BOOTINFO_CMDLINE_MAX];

	/* subsystems that hang off the VM; NULL when not configured */
	struct balloon *balloon;
	struct mm_manager *mgr;
	struct qmp_registry *qmp_reg;  /* the monitor's commands; exists without --qmp too */
	struct qmp_server *qmp;
	struct uart *uart;
	struct i8042 *i8042;
	struct acpi_pm *acpi_pm;
	int sig_fd;               /* signalfd for SIGINT/SIGTERM, main thread */

	/* What vCPU threads may call besides their own list: the devices whose
	 * register handlers run on them add theirs (vm_sandbox_vcpu_add) during
	 * set-up; NULL-terminated. */
	const struct sb_list *vcpu_sandbox[VM_VCPU_SANDBOX_MAX + 1];
	int nr_vcpu_sandbox;
};

/* ---- the VM (kvm.c) ---- */

/* Opens /dev/kvm, checks the API version and capabilities against vm->cfg
 * (vCPU count, 1 GiB guest pages) and creates the VM with the in-kernel
 * irqchip. err gets a one-line message saying what to do. */
int kvm_vm_init(struct vm *vm, char *err, size_t errlen);
/* Gives vm->mem's RAM regions to KVM (one memslot per region, slot = region
 * index) and opens the VM's binary statistics. */
int kvm_vm_set_memory(struct vm *vm, char *err, size_t errlen);
/* Turns KVM's dirty logging of every RAM memslot on or off (the memory
 * manager's scanner thread, through the machine's mm ops). */
int kvm_vm_dirty_log(struct vm *vm, bool on);
/* Takes and clears the dirty bitmap of RAM region `region` (one bit per
 * 4 KiB page of that region; KVM write-protects the pages again). */
int kvm_vm_dirty_fetch(struct vm *vm, int region, uint64_t *bitmap);
/* The in-kernel PIT (i8254) Linux calibrates and ticks with. */
int kvm_vm_create_pit(struct vm *vm);
/* Destroys the vCPUs and closes the VM and /dev/kvm. */
void kvm_vm_close(struct vm *vm);

/* Starts the stop watchdog (with stop_grace_s) and every vCPU thread; each
 * confines itself (sandbox.h) before it runs. */
int vm_start(struct vm *vm);
/* Asks the VM to stop with this exit status (first caller wins); any thread. */
void vm_request_exit(struct vm *vm, int status);
/* Joins vCPU threads. */
void vm_join(struct vm *vm);
/* Kicks every vCPU out of KVM_RUN and waits until all are parked (QMP
 * `stop`). 0, also when already paused; -ESHUTDOWN when the VM is stopping;
 * -ETIMEDOUT when a vCPU did not park within 5 s (then none stays parked). */
int vm_pause(struct vm *vm);
/* Lets parked vCPUs run again (QMP `cont`); nothing when not paused. */
void vm_resume(struct vm *vm);
/* Whether the VM is paused by vm_pause(). */
bool vm_paused(struct vm *vm);

/* Sets an IOAPIC input line (KVM_IRQ_LINE). */
int vm_set_irq(struct vm *vm, uint32_t gsi, int level);
/* Binds an eventfd to a GSI (KVM_IRQFD, edge). */
int vm_irqfd(struct vm *vm, int efd, uint32_t gsi);
/* Binds an eventfd to an MMIO write of len bytes at addr with datamatch
 * (KVM_IOEVENTFD); datamatch < 0 matches any value. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, int64_t datamatch, int efd);
/* Undoes vm_ioeventfd (same arguments). */
int vm_ioeventfd_remove(struct vm *vm, uint64_t addr, uint32_t len, int64_t datamatch, int efd);
/* Allocates an MMIO window and an interrupt line for a device and lists it
 * in the boot info (and on the guest command line as virtio_mmio.device=). */
int vm_add_device(struct vm *vm, uint32_t device_id, uint64_t *base, uint32_t *gsi);

/* ---- seccomp allow-lists (kvm.c, vcpu.c; vmm/lib/sandbox.h) ---- */

/* vm_request_exit() from any thread: kicks vCPUs (tgkill), wakes the loop. */
extern const struct sb_list kvm_sandbox_stop;
/* vm_set_irq() from a device's thread (KVM_IRQ_LINE). */
extern const struct sb_list kvm_sandbox_irq;
/* Dirty logging and VM statistics, for the memory manager's scanner. */
extern const struct sb_list kvm_sandbox_dirty;
/* The main thread after set-up: pause/resume, interrupts, the VM's
 * teardown (ioeventfd removal, closing descriptors). */
extern const struct sb_list kvm_sandbox_main;
/* Adds a list the vCPU threads need (a device's register handlers); during
 * set-up, before vm_start(). 0 or -ENOSPC. */
int vm_sandbox_vcpu_add(struct vm *vm, const struct sb_list *l);

/* ---- CPUID (cpuid.c) ---- */

/* Whether KVM's vCPUs can map 1 GiB pages (CPUID PDPE1GB). */
bool kvm_has_1g_pages(int kvm_fd);
/* Parses "-NAME,-NAME,..." (feature names as in /proc/cpuinfo) into h. */
int cpuid_hide_parse(const char *spec, struct cpuid_hide *h, char *err, size_t errlen);
/* KVM_GET_SUPPORTED_CPUID with this vCPU's APIC id and the hidden bits,
 * KVM's paravirt leaves (0x40000000...) included, set on the vCPU. */
int vcpu_set_cpuid(struct vcpu *cpu);
/* CPUID leaf 1 EAX (signature) and EDX (features) the guest will see. */
int kvm_cpuid_leaf1(int kvm_fd, uint32_t *sig, uint32_t *edx);

/* ---- Linux entry states (vcpu_linux.c) ---- */

/* The boot vCPU's registers for vm->entry_mode (PVH, 64-bit or 32-bit
 * Linux entry); application processors wait for INIT/SIPI. */
int vcpu_setup_regs_linux(struct vcpu *cpu);

/* ---- vCPUs (vcpu.c) ---- */

/* Creates the vCPU, maps its kvm_run, sets CPUID; registers come later. */
int vcpu_create(struct vm *vm, struct vcpu *cpu, int index);
/* Puts the vCPU in 64-bit long mode at the image entry (bootinfo.h contract). */
int vcpu_setup_regs(struct vcpu *cpu);
/* Starts the vCPU thread. */
int vcpu_start(struct vcpu *cpu);
void vcpu_destroy(struct vcpu *cpu);
void vcpu_dump(struct vcpu *cpu, FILE *out);
/* Reads the registers that decide how the vCPU translates addresses. KVM
 * serialises vCPU ioctls with KVM_RUN, so the vCPU must not be in KVM_RUN:
 * call it with the VM paused (vm_pause), or before the vCPU started, or
 * from the vCPU's own thread; otherwise it waits for the next exit. */
int vcpu_get_paging(struct vcpu *cpu, uint64_t *cr0, uint64_t *cr3, uint64_t *cr4, uint64_t *efer);

#endif
