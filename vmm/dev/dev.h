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

#include "vmm/ioport.h"
#include "snapshot/format/error.h"
#include "snapshot/format/manifest.h"

struct mem;
struct pci_bus;
struct snap_writer;

/* A disk of the VM: a raw image file, its size a multiple of 512. */
struct dev_disk {
	const char *path;
	bool read_only;
};

/*
 * What the user asked for, beyond the fixed devices: each device takes
 * its part, and makes nothing (a NULL state) when it has none.
 */
struct dev_config {
	struct dev_disk disks[SNAP_MAX_DISKS];
	unsigned int n_disks;
	bool rng;			/* virtio-rng */
	const char *vsock;		/* virtio-vsock host socket, or NULL */
	uint32_t vsock_cid;		/* the guest's CID */
};

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
	struct pci_bus *pci;		/* bus 0, for PCI devices */
	struct mem *mem;		/* guest RAM, for DMA */
	const struct dev_config *cfg;
};

#define DEV_ABSENT	1

struct dev_ports {
	uint16_t base;
	uint16_t len;		/* 0 ends a list */
};

struct dev_ops {
	const char *name;		/* also its name in state.bin */
	/*
	 * The manifest's required feature of a VM that has this device (a
	 * build without it must refuse the snapshot), or NULL.
	 */
	const char *feature;
	const struct dev_ports *ports;	/* claimed on the port bus */
	/*
	 * Make the device: 0, a negative errno, or DEV_ABSENT when the
	 * configuration does not ask for it (it then has no ports, no
	 * payload and no feature, and is not destroyed).
	 */
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
	/*
	 * The save is over (done or failed) and the vCPUs may run again. A
	 * device whose own threads write guest memory stops them in save,
	 * since RAM is written after the payloads and must hold what they
	 * say, and lets them go here. NULL: nothing to do.
	 */
	void (*resume)(void *state);
	/*
	 * Snapshots older than the device have no payload for it: set, such a
	 * snapshot restores with the device as created; clear, it is refused.
	 */
	bool payload_optional;
	/*
	 * Capture what lives outside RAM and state.bin (a disk) into the
	 * snapshot being written, at the same instant as the rest (vCPUs
	 * paused), and describe it in m. NULL: nothing to capture.
	 */
	int (*capture)(void *state, struct snap_writer *w,
		       struct snap_manifest *m, struct snap_err *err);
};

extern const struct dev_ops dev_uart8250;	/* COM1, ttyS0 */
extern const struct dev_ops dev_i8042;		/* no keyboard; reset line */
extern const struct dev_ops dev_post;		/* port 0x80 */
extern const struct dev_ops dev_rtc;		/* MC146818, CMOS RAM */
extern const struct dev_ops dev_pci;		/* PCI host bridge, 0xcf8 */
extern const struct dev_ops dev_virtio_blk;	/* --disk */
extern const struct dev_ops dev_virtio_rng;
extern const struct dev_ops dev_virtio_vsock;	/* --vsock */

#endif
