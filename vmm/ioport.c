/* SPDX-License-Identifier: MIT */
#include "vmm/ioport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IOPORT_MAX_RANGES	64
#define IOPORT_COUNT		65536

struct ioport_range {
	uint32_t base;
	uint32_t end;		/* exclusive */
	const char *name;
	ioport_fn fn;
	void *opaque;
};

struct ioport_bus {
	struct ioport_range ranges[IOPORT_MAX_RANGES];	/* sorted by base */
	unsigned int n;
	uint32_t *reads;	/* unclaimed accesses, per port */
	uint32_t *writes;
};

int ioport_bus_create(struct ioport_bus **out)
{
	struct ioport_bus *bus = calloc(1, sizeof(*bus));

	if (!bus)
		return -ENOMEM;
	bus->reads = calloc(IOPORT_COUNT, sizeof(*bus->reads));
	bus->writes = calloc(IOPORT_COUNT, sizeof(*bus->writes));
	if (!bus->reads || !bus->writes) {
		ioport_bus_destroy(bus);
		return -ENOMEM;
	}
	*out = bus;
	return 0;
}

void ioport_bus_destroy(struct ioport_bus *bus)
{
	if (!bus)
		return;
	free(bus->reads);
	free(bus->writes);
	free(bus);
}

int ioport_register(struct ioport_bus *bus, uint16_t base, uint16_t len,
		    const char *name, ioport_fn fn, void *opaque)
{
	uint32_t end = (uint32_t)base + len;
	unsigned int i;

	if (len == 0 || end > IOPORT_COUNT)
		return -EINVAL;
	if (bus->n == IOPORT_MAX_RANGES)
		return -ENOSPC;
	for (i = 0; i < bus->n && bus->ranges[i].base < base; i++)
		;
	if ((i > 0 && bus->ranges[i - 1].end > base) ||
	    (i < bus->n && bus->ranges[i].base < end))
		return -EBUSY;
	memmove(&bus->ranges[i + 1], &bus->ranges[i],
		(bus->n - i) * sizeof(bus->ranges[0]));
	bus->ranges[i] = (struct ioport_range){ base, end, name, fn, opaque };
	bus->n++;
	return 0;
}

static const struct ioport_range *lookup(const struct ioport_bus *bus,
					 uint16_t port)
{
	unsigned int lo = 0, hi = bus->n;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct ioport_range *r = &bus->ranges[mid];

		if (port < r->base)
			hi = mid;
		else if (port >= r->end)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

void ioport_access(struct ioport_bus *bus, uint16_t port, bool is_write,
		   uint8_t *data, unsigned int size)
{
	const struct ioport_range *r = lookup(bus, port);

	if (r) {
		r->fn(r->opaque, (uint16_t)(port - r->base), is_write, data,
		      size);
		return;
	}
	if (is_write) {
		__atomic_fetch_add(&bus->writes[port], 1, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_add(&bus->reads[port], 1, __ATOMIC_RELAXED);
		memset(data, 0xff, size);
	}
}

void ioport_report(const struct ioport_bus *bus, FILE *f)
{
	for (unsigned int port = 0; port < IOPORT_COUNT; port++) {
		uint32_t r = __atomic_load_n(&bus->reads[port], __ATOMIC_RELAXED);
		uint32_t w = __atomic_load_n(&bus->writes[port], __ATOMIC_RELAXED);

		if (r && w)
			fprintf(f, "snapvm: unclaimed port 0x%x: %u read%s, "
				"%u write%s\n", port, r, r == 1 ? "" : "s", w,
				w == 1 ? "" : "s");
		else if (r)
			fprintf(f, "snapvm: unclaimed port 0x%x: %u read%s\n",
				port, r, r == 1 ? "" : "s");
		else if (w)
			fprintf(f, "snapvm: unclaimed port 0x%x: %u write%s\n",
				port, w, w == 1 ? "" : "s");
	}
}
