/*
 * The memory summary printed at exit (--stats, make run): guest RAM and
 * its host footprint, KVM's second-stage mappings by size, and the exit,
 * fault and emulation counters from KVM's binary statistics.
 */
#include <linux/kvm.h>
#include <string.h>

#include "vmm/kvm/stats.h"
#include "vmm/lib/clock.h"
#include "vmm/lib/size.h"
#include "vmm/machine.h"

static uint64_t vcpu_sum(struct vm *vm, const char *name)
{
	uint64_t sum = 0, v;

	for (int i = 0; i < vm->nr_cpus; i++)
		if (vm->vcpus[i].stats && kvm_stats_get(vm->vcpus[i].stats, name, &v) == 0)
			sum += v;
	return sum;
}

static uint64_t vm_stat(struct vm *vm, const char *name)
{
	uint64_t v = 0;

	if (vm->stats)
		kvm_stats_get(vm->stats, name, &v);
	return v;
}

void vm_print_summary(struct vm *vm, FILE *out)
{
	char a[32], b[32], c[32];
	uint64_t resident = mm_resident_bytes(&vm->mem);
	uint64_t rss = mm_process_rss(&vm->mem);
	uint64_t io = 0, mmio = 0, other = 0;
	double secs = (double)(now_ns() - vm->start_ns) / 1e9;

	for (int i = 0; i < vm->nr_cpus; i++) {
		io += vm->vcpus[i].exits_io;
		mmio += vm->vcpus[i].exits_mmio;
		other += vm->vcpus[i].exits_other;
	}
	fprintf(out, "---- minivmm memory summary ----\n");
	fprintf(out, "guest RAM:        %s (%s backing, %s host pages, %s guest pages, %d vCPU%s)\n",
		size_format(vm->mem.ram_size, SIZE_FIXED2, a, sizeof(a)), mm_backing_name(vm->mem.backing),
		size_format(vm->mem.page_size, SIZE_FIXED2, b, sizeof(b)),
		size_format(vm->cfg.guest_page_size, SIZE_FIXED2, c, sizeof(c)), vm->nr_cpus, vm->nr_cpus > 1 ? "s" : "");
	fprintf(out, "host resident:    %s of guest RAM (%.1f%%)\n", size_format(resident, SIZE_FIXED2, a, sizeof(a)),
		vm->mem.ram_size ? 100.0 * (double)resident / (double)vm->mem.ram_size : 0.0);
	fprintf(out, "VMM overhead:     %s resident besides guest RAM\n",
		size_format(rss > resident ? rss - resident : 0, SIZE_FIXED2, a, sizeof(a)));
	fprintf(out, "KVM mappings:     pages_4k=%llu pages_2m=%llu pages_1g=%llu\n",
		(unsigned long long)vm_stat(vm, "pages_4k"), (unsigned long long)vm_stat(vm, "pages_2m"),
		(unsigned long long)vm_stat(vm, "pages_1g"));
	fprintf(out, "exits:            total=%llu io=%llu mmio=%llu halt=%llu irq=%llu (userspace: io=%llu mmio=%llu other=%llu)\n",
		(unsigned long long)vcpu_sum(vm, "exits"), (unsigned long long)vcpu_sum(vm, "io_exits"),
		(unsigned long long)vcpu_sum(vm, "mmio_exits"), (unsigned long long)vcpu_sum(vm, "halt_exits"),
		(unsigned long long)vcpu_sum(vm, "irq_exits"), (unsigned long long)io,
		(unsigned long long)mmio, (unsigned long long)other);
	fprintf(out, "page faults:      pf_taken=%llu pf_fixed=%llu pf_emulate=%llu\n",
		(unsigned long long)vcpu_sum(vm, "pf_taken"), (unsigned long long)vcpu_sum(vm, "pf_fixed"),
		(unsigned long long)vcpu_sum(vm, "pf_emulate"));
	fprintf(out, "emulated:         insn_emulation=%llu insn_emulation_fail=%llu\n",
		(unsigned long long)vcpu_sum(vm, "insn_emulation"),
		(unsigned long long)vcpu_sum(vm, "insn_emulation_fail"));
	fprintf(out, "run time:         %.3f s\n", secs);
	fflush(out);
}
