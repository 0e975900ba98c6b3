/*
 * The ELF64 x86-64 loader and the file reader. The image is untrusted
 * input: every header, table, note and segment bound is checked before
 * anything is copied, and a segment must land entirely inside guest RAM.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/boot/boot.h"
#include "vmm/lib/size.h"

#define IMAGE_MAX (1ULL << 30)

int read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	return read_file_as(path, "guest image", buf, len, err, errlen);
}

int read_file_as(const char *path, const char *what, uint8_t **buf, size_t *len,
		 char *err, size_t errlen)
{
	struct stat st;
	uint8_t *b;
	size_t got = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open %s %s: %s", what, path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s is not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > IMAGE_MAX) {
		snprintf(err, errlen, "%s %s is larger than 1 GiB", what, path);
		close(fd);
		return -EFBIG;
	}
	b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);

		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "cannot read %s %s: %s", what, path,
				 n < 0 ? strerror(errno) : "unexpected end of file");
			free(b);
			close(fd);
			return ret;
		}
		got += (size_t)n;
	}
	close(fd);
	*buf = b;
	*len = got;
	return 0;
}

static bool range_in(uint64_t off, uint64_t size, uint64_t total)
{
	return off <= total && size <= total - off;
}

/* The ELF header: a static x86-64 executable whose program headers lie in the file. */
static int elf_check_header(const Elf64_Ehdr *eh, size_t len, char *err, size_t errlen)
{
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
		snprintf(err, errlen, "guest image is not an ELF file or a bzImage (build it with 'make', or pass build/guest.img)");
		return -ENOEXEC;
	}
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64) {
		snprintf(err, errlen, "guest image is not a 64-bit little-endian x86-64 ELF file");
		return -ENOEXEC;
	}
	if (eh->e_type != ET_EXEC) {
		snprintf(err, errlen, "guest image is not a static executable (ELF type %u)", eh->e_type);
		return -ENOEXEC;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    !range_in(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), len)) {
		snprintf(err, errlen, "guest image is truncated or corrupt: program headers lie outside the file");
		return -ENOEXEC;
	}
	return 0;
}

/* Copies one PT_LOAD segment (number i) into guest RAM after checking it. */
static int elf_load_segment(struct guest_mem *gm, const uint8_t *buf, size_t len, int i,
			    const Elf64_Phdr *ph, char *err, size_t errlen)
{
	if (ph->p_filesz > ph->p_memsz || !range_in(ph->p_offset, ph->p_filesz, len)) {
		snprintf(err, errlen, "guest image is truncated or corrupt: segment %d "
			 "(file offset 0x%llx, %llu bytes) lies outside the file", i,
			 (unsigned long long)ph->p_offset, (unsigned long long)ph->p_filesz);
		return -ENOEXEC;
	}
	void *dst = mm_gpa_to_hva(gm, ph->p_paddr, ph->p_memsz);
	if (!dst && ph->p_paddr >= MINIVMM_KERNEL_BASE && ph->p_memsz <= MINIVMM_LOWMEM_MAX &&
	    ph->p_paddr <= MINIVMM_LOWMEM_MAX - ph->p_memsz) {
		/* would fit below the hole with more RAM: the user's --mem is the problem */
		char have[32], want[32];

		snprintf(err, errlen, "--mem %s is too small for this image: its segment %d ends at "
			 "0x%llx, so it needs at least %s (plus room to run)", size_format(gm->ram_size, SIZE_FIXED2,
			 have, sizeof(have)), i, (unsigned long long)(ph->p_paddr + ph->p_memsz),
			 size_format(ph->p_paddr + ph->p_memsz, SIZE_FIXED2, want, sizeof(want)));
		return -ERANGE;
	}
	if (!dst || ph->p_paddr < MINIVMM_KERNEL_BASE) {
		snprintf(err, errlen, "guest image segment %d at 0x%llx-0x%llx is outside guest RAM "
			 "(RAM for images is 0x%llx-0x%llx; raise --mem or relink the image)", i,
			 (unsigned long long)ph->p_paddr, (unsigned long long)(ph->p_paddr + ph->p_memsz),
			 (unsigned long long)MINIVMM_KERNEL_BASE, (unsigned long long)gm->regions[0].size);
		return -ERANGE;
	}
	memcpy(dst, buf + ph->p_offset, ph->p_filesz);
	memset((uint8_t *)dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	return 0;
}

int elf_load(struct guest_mem *gm, const uint8_t *buf, size_t len,
	     struct elf_image *img, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	uint64_t lo = UINT64_MAX, hi = 0;
	int loaded = 0, ret;

	if (len < sizeof(eh)) {
		snprintf(err, errlen, "guest image is truncated: %zu bytes is smaller than an ELF header", len);
		return -ENOEXEC;
	}
	memcpy(&eh, buf, sizeof(eh));
	ret = elf_check_header(&eh, len, err, errlen);
	if (ret)
		return ret;
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, buf + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		ret = elf_load_segment(gm, buf, len, i, &ph, err, errlen);
		if (ret)
			return ret;
		if (ph.p_paddr < lo)
			lo = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > hi)
			hi = ph.p_paddr + ph.p_memsz;
		loaded++;
	}
	if (!loaded) {
		snprintf(err, errlen, "guest image has no loadable segment");
		return -ENOEXEC;
	}
	if (eh.e_entry < lo || eh.e_entry >= hi) {
		snprintf(err, errlen, "guest image entry point 0x%llx is outside its loaded segments",
			 (unsigned long long)eh.e_entry);
		return -ENOEXEC;
	}
	img->entry = eh.e_entry;
	img->lo = lo;
	img->hi = hi;
	return 0;
}

/*
 * Calls fn on every note of every PT_NOTE segment until it returns nonzero.
 * Notes are untrusted: each header, name and descriptor is bounded by its
 * segment, which is bounded by the file.
 */
static int elf_each_note(const uint8_t *buf, size_t len,
			 int (*fn)(const char *name, uint32_t namesz, uint32_t type,
				   const uint8_t *desc, uint32_t descsz, void *arg), void *arg)
{
	Elf64_Ehdr eh;

	if (len < sizeof(eh))
		return -ENOEXEC;
	memcpy(&eh, buf, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    !range_in(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), len))
		return -ENOEXEC;
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		uint64_t off, end;

		memcpy(&ph, buf + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_NOTE)
			continue;
		if (!range_in(ph.p_offset, ph.p_filesz, len))
			return -ENOEXEC;
		for (off = ph.p_offset, end = ph.p_offset + ph.p_filesz; end - off >= sizeof(Elf64_Nhdr);) {
			Elf64_Nhdr nh;
			uint64_t name, desc, next;
			int r;

			memcpy(&nh, buf + off, sizeof(nh));
			name = off + sizeof(nh);
			desc = name + (((uint64_t)nh.n_namesz + 3) & ~3ULL);
			next = desc + (((uint64_t)nh.n_descsz + 3) & ~3ULL);
			if (next > end || desc + nh.n_descsz > end)
				return -ENOEXEC;
			r = fn((const char *)buf + name, nh.n_namesz, nh.n_type, buf + desc, nh.n_descsz, arg);
			if (r)
				return r;
			off = next;
		}
	}
	return 0;
}

static bool note_named(const char *name, uint32_t namesz, const char *want)
{
	size_t n = strlen(want) + 1;

	return namesz == n && memcmp(name, want, n) == 0;
}

static int pvh_note(const char *name, uint32_t namesz, uint32_t type, const uint8_t *desc,
		    uint32_t descsz, void *arg)
{
	uint64_t *entry = arg;

	if (!note_named(name, namesz, "Xen") || type != XEN_ELFNOTE_PHYS32_ENTRY)
		return 0;
	/* a 32-bit address, stored as 4 or 8 bytes (Linux uses _ASM_PTR) */
	if (descsz != 4 && descsz != 8)
		return -ENOEXEC;
	*entry = 0;
	memcpy(entry, desc, descsz);
	return *entry <= UINT32_MAX ? 1 : -ENOEXEC;
}

int elf_pvh_entry(const uint8_t *buf, size_t len, uint64_t *entry)
{
	return elf_each_note(buf, len, pvh_note, entry);
}

static int linux_note(const char *name, uint32_t namesz, uint32_t type, const uint8_t *desc,
		      uint32_t descsz, void *arg)
{
	(void)type; (void)desc; (void)descsz; (void)arg;
	return note_named(name, namesz, "Linux") || note_named(name, namesz, "Xen");
}

bool elf_is_linux(const uint8_t *buf, size_t len)
{
	return elf_each_note(buf, len, linux_note, NULL) == 1;
}
