/*
 * bus: the port-I/O and MMIO registration tables the vCPU threads dispatch
 * exits through. It sits with the KVM code because the vCPU run loop (below
 * the devices in the dependency order) dispatches through it and the virtio
 * transport registers on it.
 *
 * Threads: register before vCPUs start (set-up, main thread); dispatch runs
 * on vCPU threads without a lock, because the table never changes later.
 */
#ifndef MINIVMM_KVM_BUS_H
#define MINIVMM_KVM_BUS_H

#include <stdbool.h>
#include <stdint.h>

/*
 * A handler serves [base, base+len). offset is relative to base; data holds
 * len bytes (1, 2, 4 or 8) in guest byte order; reads fill data.
 */
typedef void (*io_handler_fn)(void *opaque, uint64_t offset, uint8_t *data,
			      uint32_t len, bool is_write);

struct io_range {
	uint64_t base, len;
	io_handler_fn fn;
	void *opaque;
	const char *name;
};

/* Sorted, non-overlapping; registration happens before vCPUs start. */
struct io_bus {
	const char *name;
	int nr, cap;
	struct io_range *ranges;
};

/* Registers a range; -EEXIST if it overlaps an existing one, -EINVAL if empty. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    io_handler_fn fn, void *opaque, const char *name);
/* Dispatches an access; -ENOENT when nothing is registered there. */
int io_bus_dispatch(const struct io_bus *bus, uint64_t addr, uint8_t *data,
		    uint32_t len, bool is_write);
void io_bus_free(struct io_bus *bus);

#endif
