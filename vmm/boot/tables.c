/*
 * The machine description a Linux guest reads from memory: the e820 map
 * (guest RAM exactly, the legacy area below 1 MiB reserved, nothing in the
 * MMIO hole), the MP table that lists every vCPU and the IOAPIC (Intel
 * MultiProcessor Specification 1.4, scanned by Linux in the BIOS area), and
 * the identity page tables its 64-bit entry needs.
 */
#include <errno.h>
#include <string.h>

#include "vmm/boot/boot.h"

static void e820_add(struct e820_entry *tab, int *n, int max, uint64_t a, uint64_t size, uint32_t type)
{
	if (size == 0 || *n >= max)
		return;
	tab[*n] = (struct e820_entry){ .addr = a, .size = size, .type = type };
	(*n)++;
}

int e820_build(const struct guest_mem *gm, struct e820_entry *tab, int max)
{
	const struct mm_region *low = &gm->regions[0];
	int n = 0;

	/* mm puts low RAM at GPA 0 and at least 2 MiB of it */
	e820_add(tab, &n, max, 0, LINUX_EBDA_START, E820_RAM);
	e820_add(tab, &n, max, LINUX_EBDA_START, LINUX_DEFAULT_LOAD - LINUX_EBDA_START, E820_RESERVED);
	e820_add(tab, &n, max, LINUX_DEFAULT_LOAD, low->size - LINUX_DEFAULT_LOAD, E820_RAM);
	for (int i = 1; i < gm->nr_regions; i++)
		e820_add(tab, &n, max, gm->regions[i].gpa, gm->regions[i].size, E820_RAM);
	return n;
}

int linux_write_pagetables(struct guest_mem *gm)
{
	uint64_t *pt = mm_gpa_to_hva(gm, LINUX_PT_GPA, LINUX_PT_SIZE);

	if (!pt)
		return -EFAULT;
	memset(pt, 0, LINUX_PT_SIZE);
	pt[0] = (LINUX_PT_GPA + 0x1000) | 0x3;                       /* PML4[0] -> PDPT */
	for (uint64_t g = 0; g < 4; g++) {
		pt[512 + g] = (LINUX_PT_GPA + 0x2000 + g * 0x1000) | 0x3; /* PDPT[g] -> PD g */
		for (uint64_t j = 0; j < 512; j++)                         /* 2 MiB, present, RW */
			pt[1024 + g * 512 + j] = ((g << 30) + (j << 21)) | 0x83;
	}
	mm_note_write(gm, LINUX_PT_GPA, LINUX_PT_SIZE);
	return 0;
}

/* ---- MP table ---- */

struct mpf_intel {                 /* the floating pointer Linux scans for */
	char signature[4];         /* "_MP_" */
	uint32_t physptr;
	uint8_t length;            /* in 16-byte units */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
	char signature[4];         /* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;         /* entries */
	uint32_t lapic;
	uint16_t reserved;
	uint8_t ext_checksum, reserved2;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type, apicid, apicver, cpuflag;
	uint32_t cpufeature, featureflag, reserved[2];
} __attribute__((packed));

struct mpc_small {                 /* bus, IOAPIC, I/O and local interrupt entries: 8 bytes */
	uint8_t b[8];
} __attribute__((packed));

#define MP_PROCESSOR 0
#define MP_BUS       1
#define MP_IOAPIC    2
#define MP_INTSRC    3
#define MP_LINTSRC   4
#define MP_IOAPIC_PINS 24

static uint8_t checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *b++);
	return (uint8_t)-sum;
}

static struct mpc_small mp_small(uint8_t t, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t e,
				 uint8_t f, uint8_t g)
{
	return (struct mpc_small){ { t, a, b, c, d, e, f, g } };
}

int mptable_write(struct guest_mem *gm, int nr_cpus, uint32_t cpu_sig, uint32_t cpu_features)
{
	size_t n_small = 1 + 1 + MP_IOAPIC_PINS + 2;
	size_t len = sizeof(struct mpc_table) + (size_t)nr_cpus * sizeof(struct mpc_cpu) +
		     n_small * sizeof(struct mpc_small);
	uint64_t cfg_gpa = LINUX_MPTABLE_GPA + sizeof(struct mpf_intel);
	uint8_t *base = mm_gpa_to_hva(gm, LINUX_MPTABLE_GPA, sizeof(struct mpf_intel) + len);
	struct mpf_intel *mpf = (struct mpf_intel *)base;
	struct mpc_table *mpc = (struct mpc_table *)(base + sizeof(*mpf));
	uint8_t *p = (uint8_t *)(mpc + 1), ioapic = (uint8_t)nr_cpus;
	struct mpc_small s;

	if (!base || nr_cpus < 1 || nr_cpus > 254)
		return -EINVAL;
	memset(base, 0, sizeof(*mpf) + len);
	for (int i = 0; i < nr_cpus; i++) {
		struct mpc_cpu c = { .type = MP_PROCESSOR, .apicid = (uint8_t)i, .apicver = 0x14,
				     .cpuflag = (uint8_t)(1 | (i == 0 ? 2 : 0)),   /* enabled, BSP */
				     .cpufeature = cpu_sig, .featureflag = cpu_features };
		memcpy(p, &c, sizeof(c));
		p += sizeof(c);
	}
	s = (struct mpc_small){ { MP_BUS, 0, 'I', 'S', 'A', ' ', ' ', ' ' } };
	memcpy(p, &s, sizeof(s)), p += sizeof(s);
	s = mp_small(MP_IOAPIC, ioapic, 0x11, 1, 0, 0, 0xc0, 0xfe);        /* at 0xfec00000 */
	memcpy(p, &s, sizeof(s)), p += sizeof(s);
	/* ISA IRQ i on IOAPIC pin i, as KVM's default GSI routing wires them */
	for (uint8_t pin = 0; pin < MP_IOAPIC_PINS; pin++) {
		s = mp_small(MP_INTSRC, 0 /* INT */, 0, 0, 0 /* ISA */, pin, ioapic, pin);
		memcpy(p, &s, sizeof(s)), p += sizeof(s);
	}
	s = mp_small(MP_LINTSRC, 3 /* ExtINT */, 0, 0, 0, 0, 0xff, 0);   /* LINT0, every LAPIC */
	memcpy(p, &s, sizeof(s)), p += sizeof(s);
	s = mp_small(MP_LINTSRC, 1 /* NMI */, 0, 0, 0, 0, 0xff, 1);      /* LINT1 */
	memcpy(p, &s, sizeof(s));

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)len;
	mpc->spec = 4;
	memcpy(mpc->oem, "MINIVMM ", 8);
	memcpy(mpc->productid, "MINIVMM     ", 12);
	mpc->oemcount = (uint16_t)(nr_cpus + (int)n_small);
	mpc->lapic = (uint32_t)MINIVMM_LAPIC_BASE;
	mpc->checksum = checksum(mpc, len);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)cfg_gpa;
	mpf->length = 1;
	mpf->specification = 4;
	mpf->checksum = checksum(mpf, sizeof(*mpf));
	mm_note_write(gm, LINUX_MPTABLE_GPA, sizeof(*mpf) + len);
	return 0;
}
