/*
 * boot: getting the guest's first instruction to run: the ELF loader
 * (loader.c) and the boot state the vCPUs start on (boot.c): identity page
 * tables, the flat GDT and the boot info (bootinfo.h, the ABI shared with
 * the guest). Set-up only, on the main thread.
 */
#ifndef MINIVMM_BOOT_H
#define MINIVMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "mm/mm.h"
#include "vmm/boot/bootinfo.h"

struct vm;

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

/* Bytes of page tables needed to identity-map this memory with this leaf size. */
uint64_t boot_pagetable_size(const struct guest_mem *gm, uint64_t leaf);
/* Writes page tables, GDT and boot info for vm (image loaded, vCPUs created). */
int boot_setup(struct vm *vm, char *err, size_t errlen);

#endif
