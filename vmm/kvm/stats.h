/*
 * stats: KVM binary statistics (KVM_GET_STATS_FD) of a VM or a vCPU file
 * descriptor: exits, faults, and the second-stage mappings by page size
 * (pages_4k, pages_2m, pages_1g). Any thread may read; values are read
 * from the kernel on every call.
 */
#ifndef MINIVMM_KVM_STATS_H
#define MINIVMM_KVM_STATS_H

#include <stdint.h>

struct kvm_stats;

/* Opens the statistics of a VM or vCPU file descriptor. NULL + errno on failure. */
struct kvm_stats *kvm_stats_open(int vm_or_vcpu_fd);
void kvm_stats_close(struct kvm_stats *st);

/* Reads the current value of a named statistic (first element for arrays,
 * the sum of all buckets for histograms, i.e. the number of events recorded).
 * Returns -ENOENT if the kernel does not export it. */
int kvm_stats_get(struct kvm_stats *st, const char *name, uint64_t *val);

/* Iterates all statistics in the kernel's order with one read of the data
 * block: cb(name, value, opaque) for each, values as kvm_stats_get() gives them. */
int kvm_stats_foreach(struct kvm_stats *st,
		      void (*cb)(const char *name, uint64_t val, void *opaque), void *opaque);

#endif
