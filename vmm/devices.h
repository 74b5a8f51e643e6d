/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_DEVICES_H
#define SNAPVM_DEVICES_H

/*
 * A VM's devices, made from the device table (devices.c) in its order:
 * each created, its ports claimed on the bus; saved and restored as named
 * payloads of a snapshot state.
 */

#include "error.h"
#include "state.h"

struct vm;
struct ioport_bus;
struct devices;

int devices_create(struct devices **out, struct vm *vm,
		   struct ioport_bus *bus, struct snap_err *err);

/* Destroy in reverse order. d may be NULL. */
void devices_destroy(struct devices *d);

/* Add each device's payload to s (vCPUs paused). */
int devices_save(struct devices *d, struct snap_state *s,
		 struct snap_err *err);

/*
 * Restore each device from its payload in s (vCPUs paused). A device with
 * state whose payload is missing is an error naming it.
 */
int devices_restore(struct devices *d, const struct snap_state *s,
		    struct snap_err *err);

#endif
