/*
 * acpi_tables: writes the ACPI tables minivmm gives a guest with N vCPUs
 * into guest memory built by mm, then follows their pointers from the RSDP
 * as a kernel does and saves each table as DIR/<signature>.dat (rsdp.dat,
 * XSDT.dat, RSDT.dat, FACP.dat, FACS.dat, DSDT.dat, APIC.dat), the binary
 * form acpica-tools' `iasl -d` disassembles. Used by test_acpi.py.
 *
 *   acpi_tables CPUS DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/boot.h"

static struct guest_mem gm;
static const char *dir;

static const uint8_t *at(uint64_t gpa, uint64_t len)
{
	const uint8_t *p = mm_gpa_to_hva(&gm, gpa, len);

	if (!p) {
		fprintf(stderr, "acpi_tables: 0x%llx+%llu is not guest RAM\n", (unsigned long long)gpa,
			(unsigned long long)len);
		exit(1);
	}
	return p;
}

static void save(const char *name, const uint8_t *p, uint32_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	printf("%s 0x%llx %u\n", name, (unsigned long long)(p - at(0, 1)), len);
}

/* Saves the table at gpa under its own signature; returns it. */
static const uint8_t *save_table(uint64_t gpa)
{
	const uint8_t *t = at(gpa, 8);
	uint32_t len;
	char sig[5] = { 0 };

	memcpy(sig, t, 4);
	memcpy(&len, t + 4, 4);
	t = at(gpa, len);
	save(sig, t, len);
	return t;
}

int main(int argc, char **argv)
{
	struct mm_config cfg = { .ram_size = 64ULL << 20, .backing = MM_BACKING_ANON };
	const uint8_t *r, *x, *t;
	uint64_t rsdp, e;
	uint32_t len, n;
	char err[256];

	if (argc != 3) {
		fprintf(stderr, "usage: acpi_tables CPUS DIR\n");
		return 2;
	}
	dir = argv[2];
	if (mm_create(&gm, &cfg, err, sizeof(err)) || acpi_write_tables(&gm, atoi(argv[1]), &rsdp)) {
		fprintf(stderr, "acpi_tables: %s\n", err[0] ? err : "cannot write the tables");
		return 1;
	}
	r = at(rsdp, sizeof(struct acpi_rsdp));
	save("rsdp", r, sizeof(struct acpi_rsdp));
	save_table(((const struct acpi_rsdp *)r)->rsdt);
	x = save_table(((const struct acpi_rsdp *)r)->xsdt);
	memcpy(&len, x + 4, 4);
	n = (len - sizeof(struct acpi_header)) / 8;
	for (uint32_t i = 0; i < n; i++) {
		memcpy(&e, x + sizeof(struct acpi_header) + i * 8, 8);
		t = save_table(e);
		if (memcmp(t, "FACP", 4) == 0) {
			const struct acpi_fadt *f = (const struct acpi_fadt *)t;

			save_table(f->x_dsdt);
			save("FACS", at(f->firmware_ctrl, 64), 64);
		}
	}
	mm_destroy(&gm);
	return 0;
}
