/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_DEVICES_H
#define SNAPVM_DEVICES_H

/*
 * A VM's devices, made from the device table (devices.c) in its order:
 * each created, its ports claimed on the bus; saved and restored as named
 * payloads of a snapshot state.
 */

#include <stdbool.h>
#include <stdint.h>

#include "snapshot/format/error.h"
#include "snapshot/format/manifest.h"
#include "snapshot/format/state.h"

struct vm;
struct ioport_bus;
struct devices;
struct dev_config;
struct snap_writer;

/*
 * Make every device cfg asks for (cfg may be NULL: the fixed ones only),
 * with PCI bus 0 for those that live on it.
 */
int devices_create(struct devices **out, struct vm *vm,
		   struct ioport_bus *bus, const struct dev_config *cfg,
		   struct snap_err *err);

/* Destroy in reverse order. d may be NULL. */
void devices_destroy(struct devices *d);

/* Add each device's payload to s (vCPUs paused). */
int devices_save(struct devices *d, struct snap_state *s,
		 struct snap_err *err);

/*
 * Restore each device from its payload in s (vCPUs paused). A device with
 * state whose payload is missing is an error naming it (unless the device
 * is newer than such snapshots: payload_optional), as is a payload of a
 * device this VM was not given.
 */
int devices_restore(struct devices *d, const struct snap_state *s,
		    struct snap_err *err);

/*
 * After devices_save, whether the save went on to succeed or not, before
 * the vCPUs run again: devices stopped for the save go on.
 */
void devices_resume(struct devices *d);

/*
 * At a save (vCPUs paused): name each present device's required feature
 * in m, and let devices with files of their own (disks) put them into the
 * snapshot being written and into m.
 */
int devices_capture(struct devices *d, struct snap_writer *w,
		    struct snap_manifest *m, struct snap_err *err);

/* An MMIO access from a vCPU; false when no device claims addr. */
bool devices_mmio(struct devices *d, uint64_t addr, bool is_write,
		  uint8_t *data, unsigned int size);

#endif
