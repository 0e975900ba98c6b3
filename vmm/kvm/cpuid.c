/*
 * CPUID: what each vCPU reports. KVM_GET_SUPPORTED_CPUID is the base (it
 * carries KVM's paravirt leaves 0x40000000/0x40000001, kvmclock and
 * friends, which Linux uses), each vCPU gets its own APIC id, and the user
 * may hide features by name (--cpu-features -xsave,-avx,...), as with
 * other VMMs' -cpu options. Whether the guest really stops using a hidden
 * feature is the hypervisor's business: nested KVM here ignores XSAVE/AVX
 * masking (README, Booting Linux).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"
#include "vmm/lib/macros.h"

enum { EAX, EBX, ECX, EDX };
#define NOSUB 0xffffffffu   /* the leaf has no subleaves */

struct cpu_feature {
	const char *name;
	uint32_t leaf, subleaf;
	uint8_t reg, bit;
};

/* Names as Linux shows them in /proc/cpuinfo. */
static const struct cpu_feature features[] = {
	{ "sse3", 1, NOSUB, ECX, 0 },   { "pclmulqdq", 1, NOSUB, ECX, 1 }, { "ssse3", 1, NOSUB, ECX, 9 },
	{ "fma", 1, NOSUB, ECX, 12 },   { "cx16", 1, NOSUB, ECX, 13 },     { "pcid", 1, NOSUB, ECX, 17 },
	{ "sse4_1", 1, NOSUB, ECX, 19 }, { "sse4_2", 1, NOSUB, ECX, 20 },  { "x2apic", 1, NOSUB, ECX, 21 },
	{ "movbe", 1, NOSUB, ECX, 22 }, { "popcnt", 1, NOSUB, ECX, 23 },
	{ "tsc_deadline_timer", 1, NOSUB, ECX, 24 }, { "aes", 1, NOSUB, ECX, 25 },
	{ "xsave", 1, NOSUB, ECX, 26 }, { "avx", 1, NOSUB, ECX, 28 },     { "f16c", 1, NOSUB, ECX, 29 },
	{ "rdrand", 1, NOSUB, ECX, 30 }, { "hypervisor", 1, NOSUB, ECX, 31 },
	{ "mce", 1, NOSUB, EDX, 7 },    { "mtrr", 1, NOSUB, EDX, 12 },     { "pge", 1, NOSUB, EDX, 13 },
	{ "pat", 1, NOSUB, EDX, 16 },   { "clflush", 1, NOSUB, EDX, 19 },  { "ht", 1, NOSUB, EDX, 28 },
	{ "fsgsbase", 7, 0, EBX, 0 },   { "bmi1", 7, 0, EBX, 3 },          { "hle", 7, 0, EBX, 4 },
	{ "avx2", 7, 0, EBX, 5 },       { "smep", 7, 0, EBX, 7 },          { "bmi2", 7, 0, EBX, 8 },
	{ "erms", 7, 0, EBX, 9 },       { "invpcid", 7, 0, EBX, 10 },      { "rtm", 7, 0, EBX, 11 },
	{ "avx512f", 7, 0, EBX, 16 },   { "avx512dq", 7, 0, EBX, 17 },     { "rdseed", 7, 0, EBX, 18 },
	{ "adx", 7, 0, EBX, 19 },       { "smap", 7, 0, EBX, 20 },         { "clflushopt", 7, 0, EBX, 23 },
	{ "clwb", 7, 0, EBX, 24 },      { "avx512cd", 7, 0, EBX, 28 },     { "sha_ni", 7, 0, EBX, 29 },
	{ "avx512bw", 7, 0, EBX, 30 },  { "avx512vl", 7, 0, EBX, 31 },
	{ "umip", 7, 0, ECX, 2 },       { "pku", 7, 0, ECX, 3 },           { "la57", 7, 0, ECX, 16 },
	{ "rdpid", 7, 0, ECX, 22 },
	{ "xsaveopt", 0xd, 1, EAX, 0 }, { "xsavec", 0xd, 1, EAX, 1 },     { "xgetbv1", 0xd, 1, EAX, 2 },
	{ "xsaves", 0xd, 1, EAX, 3 },
	{ "lahf_lm", 0x80000001, NOSUB, ECX, 0 }, { "abm", 0x80000001, NOSUB, ECX, 5 },
	{ "sse4a", 0x80000001, NOSUB, ECX, 6 },   { "3dnowprefetch", 0x80000001, NOSUB, ECX, 8 },
	{ "pdpe1gb", 0x80000001, NOSUB, EDX, 26 }, { "rdtscp", 0x80000001, NOSUB, EDX, 27 },
	{ "kvmclock", 0x40000001, NOSUB, EAX, 3 }, { "kvmclock-old", 0x40000001, NOSUB, EAX, 0 },
	{ "kvm-asyncpf", 0x40000001, NOSUB, EAX, 4 }, { "kvm-steal-time", 0x40000001, NOSUB, EAX, 5 },
	{ "kvm-pv-eoi", 0x40000001, NOSUB, EAX, 6 }, { "kvm-pv-unhalt", 0x40000001, NOSUB, EAX, 7 },
};

static int hide_one(const char *name, size_t len, struct cpuid_hide *h, char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(features); i++) {
		const struct cpu_feature *f = &features[i];

		if (strlen(f->name) != len || strncmp(f->name, name, len) != 0)
			continue;
		if (h->n >= CPUID_HIDE_MAX) {
			snprintf(err, errlen, "--cpu-features: at most %d features can be hidden", CPUID_HIDE_MAX);
			return -E2BIG;
		}
		h->bits[h->n].leaf = f->leaf;
		h->bits[h->n].subleaf = f->subleaf;
		h->bits[h->n].reg = f->reg;
		h->bits[h->n].bit = f->bit;
		h->n++;
		return 0;
	}
	snprintf(err, errlen, "--cpu-features: unknown feature '%.*s' (known: xsave, xsaveopt, xsavec, "
		 "xsaves, avx, avx2, avx512f, x2apic, cx16, pcid, rdrand, kvmclock, ... as in /proc/cpuinfo)",
		 (int)len, name);
	return -EINVAL;
}

int cpuid_hide_parse(const char *spec, struct cpuid_hide *h, char *err, size_t errlen)
{
	const char *p = spec;

	memset(h, 0, sizeof(*h));
	while (*p) {
		size_t len = strcspn(p, ",");
		int ret;

		if (p[0] != '-' || len < 2) {
			snprintf(err, errlen, "--cpu-features: '%.*s' is not valid: give -NAME to hide a feature, "
				 "e.g. --cpu-features -xsave,-avx", (int)len, p);
			return -EINVAL;
		}
		ret = hide_one(p + 1, len - 1, h, err, errlen);
		if (ret)
			return ret;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* KVM's supported CPUID table, or NULL; the caller frees it. */
static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	int n = 128;
	struct kvm_cpuid2 *c;

	for (;;) {
		c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = (uint32_t)n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG || n > 4096)
			return NULL;
		n *= 2;
	}
}

bool kvm_has_1g_pages(int kvm_fd)
{
	struct kvm_cpuid2 *c = supported_cpuid(kvm_fd);
	bool has = false;

	for (uint32_t i = 0; c && i < c->nent; i++)
		if (c->entries[i].function == 0x80000001)
			has = c->entries[i].edx & (1u << 26);   /* PDPE1GB */
	free(c);
	return has;
}

int kvm_cpuid_leaf1(int kvm_fd, uint32_t *sig, uint32_t *edx)
{
	struct kvm_cpuid2 *c = supported_cpuid(kvm_fd);
	int ret = -ENOENT;

	for (uint32_t i = 0; c && i < c->nent; i++)
		if (c->entries[i].function == 1) {
			*sig = c->entries[i].eax;
			*edx = c->entries[i].edx;
			ret = 0;
		}
	free(c);
	return ret;
}

static void cpuid_apply_hide(struct kvm_cpuid_entry2 *e, const struct cpuid_hide *h)
{
	for (int i = 0; i < h->n; i++) {
		uint32_t *regs[4] = { &e->eax, &e->ebx, &e->ecx, &e->edx };

		if (e->function == h->bits[i].leaf &&
		    (h->bits[i].subleaf == NOSUB || e->index == h->bits[i].subleaf))
			*regs[h->bits[i].reg] &= ~(1u << h->bits[i].bit);
	}
}

int vcpu_set_cpuid(struct vcpu *cpu)
{
	struct kvm_cpuid2 *c = supported_cpuid(cpu->vm->kvm_fd);
	int ret = 0;

	if (!c)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		/* each vCPU reports its own APIC id */
		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffffu) | ((uint32_t)cpu->index << 24);
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = (uint32_t)cpu->index;
		cpuid_apply_hide(e, &cpu->vm->cfg.cpu_hide);
	}
	if (ioctl(cpu->fd, KVM_SET_CPUID2, c) < 0) {
		ret = -errno;
		log_err("vcpu", "cpu %d: KVM_SET_CPUID2: %s", cpu->index, strerror(errno));
	}
	free(c);
	return ret;
}
