/*
 * Guest kernel entry: boot of every vCPU, the command line, and which
 * workload each cpu runs in ring 3.
 */
#include "fillgen.h"
#include "kernel.h"
#include "wss.h"

extern struct uparams uparams;      /* lives in user data (user_lib.c) */

struct kinfo kinfo;
struct guest_counters gcount;
uint8_t kstacks[MAX_CPUS][KSTACK_SIZE] __attribute__((aligned(KSTACK_SIZE)));
static volatile uint32_t boot_done;

static bool streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

static void bad_param(const char *key, const char *val, const char *want)
{
	kprintf("guest: bad parameter %s=%s: %s\n", key, val, want);
	machine_exit(EXIT_PARAM);
}

static void parse_word(char *w, struct uparams *p, bool *have_size, bool *have_rounds)
{
	char *val = w;
	const char *key = w;

	while (*val && *val != '=')
		val++;
	if (*val)
		*val++ = '\0';
	for (const char *c = key; *c; c++)
		if (*c == '.')
			return;         /* a Linux module parameter such as virtio_mmio.device= */
	if (streq(key, "workload")) {
		if (streq(val, "fill"))
			p->workload = WL_FILL;
		else if (streq(val, "touch"))
			p->workload = WL_TOUCH;
		else if (streq(val, "idle"))
			p->workload = WL_IDLE;
		else if (streq(val, "churn"))
			p->workload = WL_CHURN;
		else if (streq(val, "wss"))
			p->workload = WL_WSS;
		else if (streq(val, "demo"))
			p->workload = WL_DEMO;
		else if (streq(val, "poweroff"))
			p->workload = WL_POWEROFF;
		else if (streq(val, "reset"))
			p->workload = WL_RESET;
		else
			bad_param(key, val, "expected fill, touch, idle, churn, wss, demo, poweroff or reset");
	} else if (streq(key, "size")) {
		if (fillgen_parse_size(val, &p->size) < 0)
			bad_param(key, val, "expected a size such as 64M, 1G, 512K");
		*have_size = true;
	} else if (streq(key, "mix")) {
		struct fillgen_mix m;

		if (fillgen_parse_mix(val, &m) < 0)
			bad_param(key, val, "expected kind:percent pairs of zero, dup, random, text summing to 100");
		for (int k = 0; k < 4; k++)
			p->mix[k] = m.pct[k];
	} else if (streq(key, "rounds")) {
		if (fillgen_parse_u64(val, &p->rounds) < 0)
			bad_param(key, val, "expected a number (0 = forever)");
		*have_rounds = true;
	} else if (streq(key, "seed")) {
		if (fillgen_parse_u64(val, &p->seed) < 0)
			bad_param(key, val, "expected a number");
	} else if (streq(key, "accesses")) {
		if (fillgen_parse_u64(val, &p->accesses) < 0 || !p->accesses)
			bad_param(key, val, "expected a positive number");
	} else if (streq(key, "pattern")) {
		if (streq(val, "random"))
			p->pattern = TOUCH_RANDOM;
		else if (streq(val, "seq"))
			p->pattern = TOUCH_SEQ;
		else
			bad_param(key, val, "expected random or seq");
	} else if (streq(key, "stride")) {
		if (fillgen_parse_size(val, &p->stride) < 0 || p->stride % 8)
			bad_param(key, val, "expected a size that is a multiple of 8 bytes");
	} else if (streq(key, "chunk")) {
		if (fillgen_parse_size(val, &p->chunk) < 0)
			bad_param(key, val, "expected a size such as 4M");
	} else if (streq(key, "pause")) {
		if (fillgen_parse_u64(val, &p->pause_ms) < 0)
			bad_param(key, val, "expected milliseconds");
	} else if (streq(key, "hot")) {
		if (wss_parse_hot(val, p) < 0)
			bad_param(key, val, "expected SIZE or SIZE,SIZE@SECONDSs,... with increasing times");
	} else if (streq(key, "verify")) {
		if (fillgen_parse_u64(val, &p->verify_s) < 0)
			bad_param(key, val, "expected seconds between full verifications (0 = only at the end)");
	} else if (streq(key, "duration")) {
		if (fillgen_parse_u64(val, &p->duration_s) < 0)
			bad_param(key, val, "expected seconds (0 = until the VMM quits)");
	} else if (streq(key, "hold")) {
		if (fillgen_parse_u64(val, &p->hold_s) < 0)
			bad_param(key, val, "expected seconds to keep the memory mapped after the measurement");
	} else if (streq(key, "showmap")) {
		if (!*val || streq(val, "1"))
			kinfo.showmap = 1;
		else if (streq(val, "0"))
			kinfo.showmap = 0;
		else
			bad_param(key, val, "expected showmap, showmap=1 or showmap=0");
	} else if (streq(key, "quiet")) {
		if (!*val || streq(val, "1"))
			p->quiet = 1;
		else if (streq(val, "0"))
			p->quiet = 0;
		else
			bad_param(key, val, "expected quiet, quiet=1 or quiet=0");
	} else {
		kprintf("guest: unknown parameter '%s' (known: workload size mix rounds seed accesses "
			"pattern stride chunk pause hot verify duration hold showmap quiet)\n", key);
		machine_exit(EXIT_PARAM);
	}
}

/* wss: a quarter of size is hot unless hot= says otherwise; no step may exceed size. */
static int wss_check(struct uparams *p)
{
	if (!p->wss_steps) {
		p->wss_steps = 1;
		p->wss_hot[0] = p->size / 4;
		p->wss_at_s[0] = 0;
	}
	for (uint32_t i = 0; i < p->wss_steps; i++) {
		p->wss_hot[i] = (p->wss_hot[i] + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		if (p->wss_hot[i] > p->size || !p->wss_hot[i]) {
			kprintf("guest: bad parameter hot: step %u (%luK) is larger than size (%luK)\n", i,
				p->wss_hot[i] >> 10, p->size >> 10);
			return -1;
		}
	}
	return 0;
}

static void parse_cmdline(const char *cmd, struct uparams *p)
{
	char w[BOOTINFO_CMDLINE_MAX];
	bool have_size = false, have_rounds = false;
	size_t i = 0;

	p->workload = WL_DEMO;
	p->size = 64ULL << 20;
	p->mix[0] = p->mix[1] = p->mix[2] = p->mix[3] = 25;
	p->rounds = 1;
	p->seed = 1;
	p->accesses = 10000000;
	p->stride = 4096;
	p->pause_ms = 100;
	p->verify_s = 10;
	while (cmd[i]) {
		size_t n = 0;

		while (cmd[i] == ' ' || cmd[i] == '\t' || cmd[i] == '\n')
			i++;
		while (cmd[i] && cmd[i] != ' ' && cmd[i] != '\t' && cmd[i] != '\n' && n + 1 < sizeof(w))
			w[n++] = cmd[i++];
		w[n] = '\0';
		if (n)
			parse_word(w, p, &have_size, &have_rounds);
	}
	if (p->workload == WL_DEMO) {
		if (!have_size)
			p->size = 16ULL << 20;
		if (!have_rounds)
			p->rounds = 1;
	}
	if (p->workload == WL_CHURN && !have_rounds)
		p->rounds = 0;
	p->size = (p->size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (!p->chunk)
		p->chunk = p->size < (16ULL << 20) ? p->size : (16ULL << 20);
	if (p->chunk > p->size) {
		kprintf("guest: bad parameter chunk: larger than size\n");
		machine_exit(EXIT_PARAM);
	}
	if (p->workload == WL_WSS && wss_check(p) < 0)
		machine_exit(EXIT_PARAM);
	if (p->workload == WL_TOUCH && p->stride > p->size) {
		kprintf("guest: bad parameter stride: larger than size\n");
		machine_exit(EXIT_PARAM);
	}
}

static const char *page_name(uint32_t ps)
{
	return ps >= SZ_1G ? "1G" : ps >= SZ_2M ? "2M" : "4K";
}

static __attribute__((noreturn)) void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

__attribute__((noreturn)) void kmain(const struct bootinfo *bi, uint64_t idx)
{
	uint32_t cpu = (uint32_t)idx;

	if (cpu == 0) {
		if (bi->magic != BOOTINFO_MAGIC || bi->version != BOOTINFO_VERSION) {
			kprintf("guest: bad boot info at %p (magic 0x%lx version %u)\n", (const void *)bi,
				bi->magic, bi->version);
			machine_exit(EXIT_FAULT);
		}
		kinfo.nr_cpus = bi->nr_cpus;
		kinfo.page_size = bi->guest_page_size;
		kinfo.ram_size = bi->ram_size;
		kinfo.tsc_khz = bi->tsc_khz;
		kinfo.boot_cr3 = bi->pml4_gpa;
		kinfo.kernel_start = bi->kernel_start;
		kinfo.kernel_end = bi->kernel_end;
		cpu_init_tables();
		cpu_init_this(0);
		kprintf("minivmm-guest: cpus=%u mem=%luM page=%s cmdline=\"%s\"\n", kinfo.nr_cpus,
			kinfo.ram_size >> 20, page_name(kinfo.page_size), bi->cmdline);
		if (kinfo.nr_cpus > MAX_CPUS) {
			kprintf("guest: only %d cpus are used\n", MAX_CPUS);
			kinfo.nr_cpus = MAX_CPUS;
		}
		if (!kinfo.tsc_khz)
			kprintf("guest: TSC frequency unknown, timings assume 1 GHz\n");
		parse_cmdline(bi->cmdline, &uparams);
		/* ring-0 work only, before any memory is set up: the other cpus
		 * wait for boot_done until the VMM stops the machine */
		if (uparams.workload == WL_POWEROFF || uparams.workload == WL_RESET)
			acpi_leave(uparams.workload == WL_RESET);
		uparams.tsc_khz = kinfo.tsc_khz ? kinfo.tsc_khz : 1000000;
		uparams.page_size = kinfo.page_size;
		uparams.ntasks = uparams.workload == WL_FILL ? kinfo.nr_cpus : 1;
		if (pmem_init(bi) < 0 || task_global_init() < 0) {
			kprintf("guest: no usable RAM in the boot memory map\n");
			machine_exit(EXIT_NOMEM);
		}
		drivers_init(bi);
		if (drivers_present() || uparams.workload == WL_IDLE || uparams.workload == WL_CHURN)
			lapic_timer_start(50);
		__atomic_store_n(&boot_done, 1, __ATOMIC_RELEASE);
	} else {
		if (cpu >= MAX_CPUS)
			halt_forever();
		while (!__atomic_load_n(&boot_done, __ATOMIC_ACQUIRE))
			cpu_relax();
		cpu_init_this(cpu);
	}
	kprintf("cpu %u: up\n", cpu);
	if (cpu >= uparams.ntasks || cpu >= kinfo.nr_cpus)
		halt_forever();
	if (uparams.workload == WL_IDLE) {
		for (;;)
			idle_wait();
	}
	{
		int status = task_run(cpu, cpu);

		if (cpu == 0)
			machine_exit(status);
	}
	halt_forever();
}
