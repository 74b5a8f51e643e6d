/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_DEV_H
#define SNAPVM_DEV_H

/*
 * A device model: one file each in vmm/dev/, listed in order in the device
 * table of devices.c. Each owns its state: it creates it, serves its ports,
 * and saves it to and restores it from its own payload in state.bin, which
 * it encodes itself (libsnap's codecs); the snapshot code only moves the
 * payloads, by the device's name.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../ioport.h"
#include "error.h"

/*
 * What a device may ask of its VM, and nothing more (devices.c fills it
 * from vm.h; tests give their own). Callable from any thread.
 */
struct dev_host {
	void *vm;
	/* Drive ISA interrupt line irq to level 0 or 1. */
	int (*irq_line)(void *vm, unsigned int irq, int level);
	/* End the VM with status; why is the line snapvm prints. */
	void (*request_exit)(void *vm, int status, const char *why);
};

struct dev_ports {
	uint16_t base;
	uint16_t len;		/* 0 ends a list */
};

struct dev_ops {
	const char *name;		/* also its name in state.bin */
	const struct dev_ports *ports;	/* claimed on the port bus */
	int (*create)(const struct dev_host *host, void **state,
		      struct snap_err *err);
	void (*destroy)(void *state);
	ioport_fn io;			/* gets the state as opaque */
	/*
	 * Save into a new buffer (the caller frees it) and restore from one;
	 * called while the vCPUs are paused. NULL save: no state to keep.
	 */
	int (*save)(void *state, uint8_t **buf, size_t *len);
	int (*restore)(void *state, const uint8_t *buf, size_t len,
		       struct snap_err *err);
};

extern const struct dev_ops dev_uart8250;	/* COM1, ttyS0 */
extern const struct dev_ops dev_i8042;		/* reset line only */
extern const struct dev_ops dev_post;		/* port 0x80 */

#endif
