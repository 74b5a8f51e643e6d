/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_IOPORT_H
#define SNAPVM_IOPORT_H

/*
 * The I/O port bus: a table of port ranges, each with the device handler
 * that owns it. Ranges are registered while the VM is built, before any
 * vCPU runs; after that the table is only read, from every vCPU thread,
 * without a lock.
 *
 * A port nobody claims reads as all ones and ignores writes; both are
 * counted per port, for ioport_report (--debug).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * A device's handler. offset is the port minus its range's base; data
 * holds size (1, 2 or 4) bytes: the value written, or room for the value
 * read. Handlers serialise against their own other threads themselves.
 */
typedef void (*ioport_fn)(void *opaque, uint16_t offset, bool is_write,
			  uint8_t *data, unsigned int size);

struct ioport_bus;

int ioport_bus_create(struct ioport_bus **out);
void ioport_bus_destroy(struct ioport_bus *bus);	/* bus may be NULL */

/* Claim [base, base + len) for name. -EBUSY when it overlaps a claim. */
int ioport_register(struct ioport_bus *bus, uint16_t base, uint16_t len,
		    const char *name, ioport_fn fn, void *opaque);

/* One access from a vCPU. */
void ioport_access(struct ioport_bus *bus, uint16_t port, bool is_write,
		   uint8_t *data, unsigned int size);

/*
 * One line per unclaimed port the guest used:
 * "snapvm: unclaimed port 0x80: 12 writes".
 */
void ioport_report(const struct ioport_bus *bus, FILE *f);

#endif
