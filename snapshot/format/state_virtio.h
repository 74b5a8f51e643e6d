/* SPDX-License-Identifier: MIT */
#ifndef SNAP_STATE_VIRTIO_H
#define SNAP_STATE_VIRTIO_H

/*
 * Payloads of the devices on PCI bus 0 in state.bin (state.proto's PCI and
 * virtio section): the host bridge, each PCI function, the virtio-pci
 * transport with its queues, and the devices built on it. Decoding checks
 * every field's range and every length; what a value means for a running
 * device (a ring inside RAM, a slot that matches) is the device's to check
 * at restore.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/format/error.h"

#define SNAP_PCI_CONFIG_SIZE	256u
#define SNAP_MSIX_MAX		64u	/* vectors of one function */
#define SNAP_MSIX_ENTRY_SIZE	16u
#define SNAP_VIRTQ_MAX		8u	/* queues of one virtio device */
#define SNAP_BLK_MAX		8u	/* virtio-blk devices (= disks) */

struct snap_pci_func {
	uint32_t slot;
	uint8_t config[SNAP_PCI_CONFIG_SIZE];
	uint8_t msix_table[SNAP_MSIX_MAX * SNAP_MSIX_ENTRY_SIZE];
	uint32_t msix_table_len;
	uint8_t msix_pba[SNAP_MSIX_MAX / 8];
	uint32_t msix_pba_len;
};

struct snap_virtq {
	uint32_t size;
	bool ready;
	uint32_t vector;
	uint64_t desc, avail, used;
	uint32_t last_avail, used_idx, signalled;
};

struct snap_virtio {
	struct snap_pci_func pci;
	uint64_t device_features, driver_features;
	uint32_t status;
	uint32_t dfselect, gfselect;
	uint32_t queue_select;
	uint32_t config_vector;
	uint32_t config_generation;
	uint32_t isr;
	struct snap_virtq queues[SNAP_VIRTQ_MAX];
	uint32_t n_queues;
};

struct snap_virtio_blk {
	struct snap_virtio dev;
	uint32_t disk;		/* index in the manifest's disks */
	uint64_t capacity;	/* 512-byte sectors */
	bool read_only;
};

/* "pci": the host bridge's configuration address. */
int snap_pci_host_encode(uint32_t config_address, uint8_t **buf,
			 size_t *len);
int snap_pci_host_decode(const uint8_t *buf, size_t len,
			 uint32_t *config_address, struct snap_err *err);

/* "virtio-blk": n devices (at most SNAP_BLK_MAX). */
int snap_virtio_blk_encode(const struct snap_virtio_blk *b, uint32_t n,
			   uint8_t **buf, size_t *len);
int snap_virtio_blk_decode(const uint8_t *buf, size_t len,
			   struct snap_virtio_blk *b, uint32_t *n,
			   struct snap_err *err);

/* "virtio-rng". */
int snap_virtio_rng_encode(const struct snap_virtio *v, uint8_t **buf,
			   size_t *len);
int snap_virtio_rng_decode(const uint8_t *buf, size_t len,
			   struct snap_virtio *v, struct snap_err *err);

/* "virtio-vsock": the transport and the guest's CID. */
#define SNAP_VSOCK_CID_MIN	3u		/* 0-2 are reserved */
#define SNAP_VSOCK_CID_MAX	0xfffffffeu	/* 2^32 - 1 is "any" */

struct snap_virtio_vsock {
	struct snap_virtio dev;
	uint64_t guest_cid;
};

int snap_virtio_vsock_encode(const struct snap_virtio_vsock *s,
			     uint8_t **buf, size_t *len);
int snap_virtio_vsock_decode(const uint8_t *buf, size_t len,
			     struct snap_virtio_vsock *s,
			     struct snap_err *err);

/*
 * For devices with payloads of their own that embed a VirtioTransport:
 * the transport to and from its encoded message.
 */
int snap_virtio_transport_encode(const struct snap_virtio *v, uint8_t **buf,
				 size_t *len);
int snap_virtio_transport_decode(const uint8_t *buf, size_t len,
				 const char *device, struct snap_virtio *v,
				 struct snap_err *err);

#endif
