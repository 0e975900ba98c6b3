/*
 * Fixtures the fuzz targets share: a VM without KVM (vm_fd -1, so
 * interrupts fail quietly and queue notifications are served inline on the
 * calling thread) with real guest RAM from mm, the real memory manager and
 * the real virtio-balloon device behind its virtio-mmio transport; and a
 * byte reader that turns a fuzz input into operands.
 */
#ifndef MINIVMM_FUZZ_COMMON_H
#define MINIVMM_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

/* Consumes a fuzz input front to back; reads past the end yield zeros. */
struct fz_in {
	const uint8_t *p;
	size_t len, off;
};

static inline bool fz_more(const struct fz_in *in)
{
	return in->off < in->len;
}

static inline uint8_t fz_u8(struct fz_in *in)
{
	return in->off < in->len ? in->p[in->off++] : 0;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
	return (uint16_t)(fz_u8(in) | fz_u8(in) << 8);
}

static inline uint32_t fz_u32(struct fz_in *in)
{
	return (uint32_t)fz_u16(in) | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(struct fz_in *in)
{
	return (uint64_t)fz_u32(in) | (uint64_t)fz_u32(in) << 32;
}

/* Up to n bytes of what is left: *p points into the input, returns the count. */
size_t fz_bytes(struct fz_in *in, size_t n, const uint8_t **p);

/*
 * A VM of ram bytes (anonymous 4 KiB backing, not preallocated) with the
 * memory manager and, when balloon_opts is not NULL, the balloon device
 * (created as the machine creates it). With loop, an event loop and the
 * VM's QMP registry with the machine's, the manager's and the balloon's
 * commands registered as the machine registers them. Aborts on failure:
 * a fixture that cannot be built is not a finding.
 */
struct vm *fz_vm_new(uint64_t ram, const char *balloon_opts, bool loop);
void fz_vm_free(struct vm *vm);

/* Silences minivmm's log lines (a fuzzer provokes thousands), unless
 * MINIVMM_FUZZ_LOG gives a level. */
void fz_quiet(void);
/* With MINIVMM_FUZZ_LOG set: prints what a step returned, to study an input. */
void fz_say(const char *what, int ret, const char *err);

#endif
