/*
 * bus: the port-I/O and MMIO registration table: a sorted array of
 * non-overlapping ranges, searched by bisection on every exit. Ranges are
 * registered before vCPUs start and never change afterwards, so lookups
 * take no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/kvm/bus.h"
#include "vmm/lib/log.h"

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    io_handler_fn fn, void *opaque, const char *name)
{
	int i;

	if (!len || base + len < base || !fn)
		return -EINVAL;
	/* first range that ends after base */
	for (i = 0; i < bus->nr && bus->ranges[i].base + bus->ranges[i].len <= base; i++)
		;
	if (i < bus->nr && bus->ranges[i].base < base + len) {
		log_err("bus", "%s: %s [0x%llx, 0x%llx) overlaps %s", bus->name, name,
			(unsigned long long)base, (unsigned long long)(base + len),
			bus->ranges[i].name);
		return -EEXIST;
	}
	if (bus->nr == bus->cap) {
		int cap = bus->cap ? bus->cap * 2 : 8;
		struct io_range *r = realloc(bus->ranges, (size_t)cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		bus->ranges = r;
		bus->cap = cap;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (size_t)(bus->nr - i) * sizeof(*bus->ranges));
	bus->ranges[i] = (struct io_range){ base, len, fn, opaque, name };
	bus->nr++;
	return 0;
}

int io_bus_dispatch(const struct io_bus *bus, uint64_t addr, uint8_t *data,
		    uint32_t len, bool is_write)
{
	int lo = 0, hi = bus->nr - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		const struct io_range *r = &bus->ranges[mid];

		if (addr < r->base) {
			hi = mid - 1;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			/* an access straddling the end of a range is not ours to split */
			if (addr - r->base + len > r->len)
				return -ENOENT;
			r->fn(r->opaque, addr - r->base, data, len, is_write);
			return 0;
		}
	}
	return -ENOENT;
}

void io_bus_free(struct io_bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nr = bus->cap = 0;
}
