/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_PCI_H
#define SNAPVM_PCI_H

/*
 * PCI bus 0 with configuration mechanism #1 (ports 0xcf8 address, 0xcfc-0xcff
 * data), as a BIOS leaves it: a host bridge at 00:00.0, then one function
 * per device at slots 1, 2, ... in the order they register, each with one
 * 32-bit memory BAR already placed in the 32-bit hole (PCI_MMIO_BASE up)
 * and, when it asks, an MSI-X capability whose table and PBA live in that
 * BAR. A guest may move a BAR (the MMIO dispatch follows the registers) and
 * must enable memory decoding before the device sees an access.
 *
 * Interrupts are MSI-X only, sent with KVM_SIGNAL_MSI from any thread; the
 * functions have no INTx pin, so no MP table entry is needed for them.
 *
 * Locking: one bus lock serialises configuration cycles, BAR lookups and
 * MSI-X table accesses. A device's BAR handler runs without it (devices
 * lock themselves), on the vCPU thread that made the access.
 */

#include <stdbool.h>
#include <stdint.h>

#include "snapshot/format/error.h"
#include "snapshot/format/state_virtio.h"

#define PCI_CONFIG_SIZE		SNAP_PCI_CONFIG_SIZE
#define PCI_MAX_SLOTS		32u
#define PCI_MMIO_BASE		0xe0000000u	/* BARs from here ... */
#define PCI_MMIO_END		0xfe000000u	/* ... to below the IOAPIC */
#define PCI_MSIX_MAX		SNAP_MSIX_MAX	/* vectors of one function */

/* Offsets in the configuration space header and capabilities. */
#define PCI_VENDOR_ID		0x00
#define PCI_DEVICE_ID		0x02
#define PCI_COMMAND		0x04
#define PCI_STATUS		0x06
#define PCI_REVISION		0x08
#define PCI_CLASS_PROG		0x09
#define PCI_HEADER_TYPE		0x0e
#define PCI_BAR0		0x10
#define PCI_SUBSYS_VENDOR	0x2c
#define PCI_SUBSYS_ID		0x2e
#define PCI_CAP_PTR		0x34
#define PCI_INTERRUPT_LINE	0x3c
#define PCI_COMMAND_MEMORY	0x0002
#define PCI_COMMAND_MASTER	0x0004
#define PCI_STATUS_CAP_LIST	0x0010
#define PCI_CAP_ID_MSIX		0x11
#define PCI_CAP_ID_VNDR		0x09
#define PCI_MSIX_ENABLE		0x8000	/* message control */
#define PCI_MSIX_MASKALL	0x4000
#define PCI_MSIX_ENTRY_SIZE	16u
#define PCI_MSIX_VECTOR_MASKED	1u	/* vector control */

struct pci_bus;
struct pci_func;

/*
 * A function's BAR accesses: offset into the BAR, size 1, 2, 4 or 8 bytes
 * (data: the value written, or room for the value read, little endian).
 * MSI-X table and PBA accesses never reach it.
 */
typedef void (*pci_bar_fn)(void *opaque, uint64_t offset, bool is_write,
			   uint8_t *data, unsigned int size);

/* What a device asks for. */
struct pci_func_desc {
	const char *name;		/* for errors */
	uint16_t vendor, device;
	uint16_t subsys_vendor, subsys;
	uint32_t class_code;		/* class << 16 | subclass << 8 | prog */
	uint8_t revision;
	uint32_t bar_size;		/* BAR0, a power of two, >= 4 KiB */
	pci_bar_fn bar_fn;
	void *opaque;
	/* MSI-X: vectors (0: none), table and PBA offsets in BAR0. */
	uint16_t msix_vectors;
	uint32_t msix_table, msix_pba;
};

/* Config mechanism #1 on ports; the device bus with its MMIO window. */
int pci_bus_create(struct pci_bus **out, int vm_fd, struct snap_err *err);
void pci_bus_destroy(struct pci_bus *bus);	/* bus may be NULL */

/* The handler of ports 0xcf8-0xcff (struct dev_ops' io shape). */
void pci_bus_config_io(void *bus, uint16_t offset, bool is_write,
		       uint8_t *data, unsigned int size);

/* The address latched at 0xcf8 (the host bridge's saved state). */
uint32_t pci_bus_config_address(struct pci_bus *bus);
void pci_bus_set_config_address(struct pci_bus *bus, uint32_t address);

/*
 * Add a function at the next free slot, BAR0 placed after the last one.
 * The function lives as long as the bus.
 */
int pci_register(struct pci_bus *bus, const struct pci_func_desc *d,
		 struct pci_func **out, struct snap_err *err);

/*
 * Append a vendor-specific capability of len bytes (cap[0] and cap[1], ID
 * and next pointer, are filled here) to f's list; before any guest runs.
 * Returns its offset in configuration space, or -ENOSPC.
 */
int pci_add_cap(struct pci_func *f, const uint8_t *cap, unsigned int len);

/*
 * One MMIO access from a vCPU: true when a function's BAR took it (else
 * the caller treats the address as unclaimed).
 */
bool pci_mmio(struct pci_bus *bus, uint64_t addr, bool is_write,
	      uint8_t *data, unsigned int size);

/*
 * Send MSI-X vector v of f, when MSI-X is enabled and neither the function
 * nor the vector is masked; otherwise its bit is set in the PBA and it is
 * sent when the guest enables or unmasks it. Any thread. -EINVAL for a
 * vector out of range, else 0.
 */
int pci_msix_send(struct pci_func *f, uint16_t v);

/* Slot number of f (its device number on bus 0). */
unsigned int pci_func_slot(const struct pci_func *f);

/*
 * Save f's configuration space and MSI-X table and PBA (the layouts of the
 * PCI spec) into s; restore them, first checking the slot and that the
 * read-only parts (IDs, class, BAR size, capability list, vector count) are
 * this build's: otherwise one line and -EINVAL.
 */
void pci_func_save(struct pci_func *f, struct snap_pci_func *s);
int pci_func_restore(struct pci_func *f, const struct snap_pci_func *s,
		     struct snap_err *err);

#endif
