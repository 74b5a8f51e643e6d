/* SPDX-License-Identifier: MIT */
/*
 * PCI bus 0: configuration mechanism #1, a host bridge, functions with one
 * memory BAR and MSI-X. See pci.h.
 *
 * Each function's configuration space is a byte array with a mask of the
 * bits the guest may write; the few registers with side effects (BAR0's
 * sizing, MSI-X message control) are handled after the masked write.
 */
#include "vmm/pci/pci.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CONFIG_ADDRESS_ENABLE	0x80000000u
#define HOST_BRIDGE_VENDOR	0x1b36u		/* as QEMU's generic bridges */
#define HOST_BRIDGE_DEVICE	0x0008u
#define CLASS_HOST_BRIDGE	0x060000u
#define CAP_START		0x40u
#define MSIX_CAP_LEN		12u

struct pci_func {
	struct pci_bus *bus;
	struct pci_func_desc d;
	unsigned int slot;
	uint8_t config[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE];	/* bits the guest may write */
	uint8_t cap_next;		/* where the next capability goes */
	uint8_t cap_last;		/* last capability's offset, or 0 */
	uint8_t msix_cap;		/* 0: none */
	uint8_t msix_table[PCI_MSIX_MAX * PCI_MSIX_ENTRY_SIZE];
	uint8_t msix_pba[PCI_MSIX_MAX / 8];
};

struct pci_bus {
	int vm_fd;
	pthread_mutex_t lock;
	uint32_t address;		/* 0xcf8 */
	struct pci_func *funcs[PCI_MAX_SLOTS];
	unsigned int n;
	uint32_t next_bar;
};

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static struct pci_func *func_new(struct pci_bus *bus,
				 const struct pci_func_desc *d)
{
	struct pci_func *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->bus = bus;
	f->d = *d;
	f->slot = bus->n;
	f->cap_next = CAP_START;
	put16(f->config + PCI_VENDOR_ID, d->vendor);
	put16(f->config + PCI_DEVICE_ID, d->device);
	f->config[PCI_REVISION] = d->revision;
	f->config[PCI_CLASS_PROG] = (uint8_t)d->class_code;
	put16(f->config + PCI_CLASS_PROG + 1, (uint16_t)(d->class_code >> 8));
	put16(f->config + PCI_SUBSYS_VENDOR, d->subsys_vendor);
	put16(f->config + PCI_SUBSYS_ID, d->subsys);
	/* Command: I/O, memory, bus master, INTx disable are writable. */
	put16(f->wmask + PCI_COMMAND, 0x0407);
	f->wmask[PCI_INTERRUPT_LINE] = 0xff;
	return f;
}

int pci_bus_create(struct pci_bus **out, int vm_fd, struct snap_err *err)
{
	struct pci_bus *bus = calloc(1, sizeof(*bus));
	struct pci_func_desc bridge = {
		.name = "host bridge",
		.vendor = HOST_BRIDGE_VENDOR,
		.device = HOST_BRIDGE_DEVICE,
		.subsys_vendor = HOST_BRIDGE_VENDOR,
		.class_code = CLASS_HOST_BRIDGE,
	};

	if (!bus)
		return snap_err_set(err, -ENOMEM, "out of memory");
	bus->vm_fd = vm_fd;
	bus->next_bar = PCI_MMIO_BASE;
	pthread_mutex_init(&bus->lock, NULL);
	bus->funcs[0] = func_new(bus, &bridge);
	if (!bus->funcs[0]) {
		pci_bus_destroy(bus);
		return snap_err_set(err, -ENOMEM, "out of memory");
	}
	memset(bus->funcs[0]->wmask, 0, PCI_CONFIG_SIZE);	/* nothing to set */
	bus->n = 1;
	*out = bus;
	return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	if (!bus)
		return;
	for (unsigned int i = 0; i < bus->n; i++)
		free(bus->funcs[i]);
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

int pci_add_cap(struct pci_func *f, const uint8_t *cap, unsigned int len)
{
	unsigned int at = f->cap_next;

	if (len < 2 || at + len > PCI_CONFIG_SIZE)
		return -ENOSPC;
	memcpy(f->config + at, cap, len);
	f->config[at + 1] = 0;
	if (f->cap_last)
		f->config[f->cap_last + 1] = (uint8_t)at;
	else
		f->config[PCI_CAP_PTR] = (uint8_t)at;
	put16(f->config + PCI_STATUS,
	      get16(f->config + PCI_STATUS) | PCI_STATUS_CAP_LIST);
	f->cap_last = (uint8_t)at;
	f->cap_next = (uint8_t)((at + len + 3) & ~3u);
	return (int)at;
}


int pci_register(struct pci_bus *bus, const struct pci_func_desc *d,
		 struct pci_func **out, struct snap_err *err)
{
	uint32_t size = d->bar_size, base;
	struct pci_func *f;

	if (size < 4096 || (size & (size - 1)))
		return snap_err_set(err, -EINVAL, "%s: BAR of %u bytes",
				    d->name, size);
	if (d->msix_vectors > PCI_MSIX_MAX ||
	    (d->msix_vectors &&
	     (d->msix_table + d->msix_vectors * PCI_MSIX_ENTRY_SIZE > size ||
	      d->msix_pba + PCI_MSIX_MAX / 8 > size)))
		return snap_err_set(err, -EINVAL, "%s: MSI-X does not fit its "
				    "BAR", d->name);
	base = (bus->next_bar + size - 1) & ~(size - 1);
	if (bus->n == PCI_MAX_SLOTS || base >= PCI_MMIO_END ||
	    PCI_MMIO_END - base < size)
		return snap_err_set(err, -ENOSPC, "%s: no room on PCI bus 0",
				    d->name);
	f = func_new(bus, d);
	if (!f)
		return snap_err_set(err, -ENOMEM, "out of memory");
	put32(f->config + PCI_BAR0, base);	/* 32-bit memory BAR */
	put32(f->wmask + PCI_BAR0, ~(size - 1));
	if (d->msix_vectors) {
		uint8_t cap[MSIX_CAP_LEN] = { PCI_CAP_ID_MSIX };
		int at;

		put16(cap + 2, (uint16_t)(d->msix_vectors - 1));
		put32(cap + 4, d->msix_table);		/* BIR 0 */
		put32(cap + 8, d->msix_pba);
		at = pci_add_cap(f, cap, sizeof(cap));
		if (at < 0) {
			free(f);
			return snap_err_set(err, -ENOSPC, "%s: no room for "
					    "MSI-X", d->name);
		}
		f->msix_cap = (uint8_t)at;
		put16(f->wmask + at + 2, PCI_MSIX_ENABLE | PCI_MSIX_MASKALL);
		for (unsigned int v = 0; v < d->msix_vectors; v++)
			f->msix_table[v * PCI_MSIX_ENTRY_SIZE + 12] =
				PCI_MSIX_VECTOR_MASKED;
	}
	bus->funcs[bus->n++] = f;
	bus->next_bar = base + size;
	*out = f;
	return 0;
}

unsigned int pci_func_slot(const struct pci_func *f)
{
	return f->slot;
}

/* ---- configuration cycles ------------------------------------------------ */

static bool msix_enabled(const struct pci_func *f);
static void send_pending_locked(struct pci_func *f);

static void config_write(struct pci_func *f, unsigned int reg,
			 const uint8_t *data, unsigned int size)
{
	bool msix_was = msix_enabled(f);

	for (unsigned int i = 0; i < size && reg + i < PCI_CONFIG_SIZE; i++) {
		uint8_t m = f->wmask[reg + i];

		f->config[reg + i] = (uint8_t)((f->config[reg + i] & ~m) |
					       (data[i] & m));
	}
	/*
	 * BAR0's low bits read as zero whatever is written: sizing (all ones
	 * written) reads back the size mask, as the mask already gives.
	 * MSI-X enabled, or its function mask cleared: what pends is sent.
	 */
	if (!msix_was && msix_enabled(f))
		send_pending_locked(f);
}

static void config_access(struct pci_bus *bus, unsigned int offset,
			  bool is_write, uint8_t *data, unsigned int size)
{
	uint32_t a = bus->address;
	unsigned int bus_nr = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f;
	unsigned int fn = (a >> 8) & 7, reg = (a & 0xfc) + offset;
	struct pci_func *f = NULL;

	if ((a & CONFIG_ADDRESS_ENABLE) && bus_nr == 0 && fn == 0 &&
	    slot < bus->n)
		f = bus->funcs[slot];
	if (!f) {
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	if (is_write)
		config_write(f, reg, data, size);
	else
		for (unsigned int i = 0; i < size; i++)
			data[i] = reg + i < PCI_CONFIG_SIZE ?
				  f->config[reg + i] : 0;
}

void pci_bus_config_io(void *opaque, uint16_t offset, bool is_write,
		       uint8_t *data, unsigned int size)
{
	struct pci_bus *bus = opaque;

	pthread_mutex_lock(&bus->lock);
	if (offset < 4) {
		/*
		 * 0xcf8 takes whole dwords; the byte at 0xcfb is the old
		 * mechanism #2 probe Linux writes first, and is ignored.
		 */
		if (offset == 0 && size == 4) {
			if (is_write)
				bus->address = get32(data) & 0x80fffffcu;
			else
				put32(data, bus->address);
		} else if (!is_write) {
			memset(data, 0xff, size);
		}
	} else if (offset - 4 + size <= 4) {
		config_access(bus, offset - 4u, is_write, data, size);
	} else if (!is_write) {
		memset(data, 0xff, size);
	}
	pthread_mutex_unlock(&bus->lock);
}

uint32_t pci_bus_config_address(struct pci_bus *bus)
{
	uint32_t a;

	pthread_mutex_lock(&bus->lock);
	a = bus->address;
	pthread_mutex_unlock(&bus->lock);
	return a;
}

void pci_bus_set_config_address(struct pci_bus *bus, uint32_t address)
{
	pthread_mutex_lock(&bus->lock);
	bus->address = address & 0x80fffffcu;
	pthread_mutex_unlock(&bus->lock);
}

/* ---- MSI-X ---------------------------------------------------------------- */

static bool msix_enabled(const struct pci_func *f)
{
	uint16_t ctl = get16(f->config + f->msix_cap + 2);

	return f->msix_cap && (ctl & PCI_MSIX_ENABLE) &&
	       !(ctl & PCI_MSIX_MASKALL);
}

static void send_locked(struct pci_func *f, uint16_t v)
{
	const uint8_t *e = f->msix_table + v * PCI_MSIX_ENTRY_SIZE;
	struct kvm_msi msi = {
		.address_lo = get32(e),
		.address_hi = get32(e + 4),
		.data = get32(e + 8),
	};

	if (!msix_enabled(f) || (get32(e + 12) & PCI_MSIX_VECTOR_MASKED)) {
		f->msix_pba[v / 8] |= (uint8_t)(1u << (v % 8));
		return;
	}
	f->msix_pba[v / 8] &= (uint8_t)~(1u << (v % 8));
	/* A message the guest did not aim at a LAPIC is dropped by KVM. */
	ioctl(f->bus->vm_fd, KVM_SIGNAL_MSI, &msi);
}

static void send_pending_locked(struct pci_func *f)
{
	for (uint16_t v = 0; v < f->d.msix_vectors; v++)
		if (f->msix_pba[v / 8] & (1u << (v % 8)))
			send_locked(f, v);
}

int pci_msix_send(struct pci_func *f, uint16_t v)
{
	if (v >= f->d.msix_vectors)
		return -EINVAL;
	pthread_mutex_lock(&f->bus->lock);
	send_locked(f, v);
	pthread_mutex_unlock(&f->bus->lock);
	return 0;
}

/* A table or PBA access; true when addr (BAR offset) was one. */
static bool msix_access(struct pci_func *f, uint64_t off, bool is_write,
			uint8_t *data, unsigned int size)
{
	uint64_t table_len = f->d.msix_vectors * PCI_MSIX_ENTRY_SIZE;

	if (!f->msix_cap)
		return false;
	if (off >= f->d.msix_table && off - f->d.msix_table < table_len) {
		uint64_t at = off - f->d.msix_table;

		if (at + size > table_len)
			size = (unsigned int)(table_len - at);
		if (!is_write) {
			memcpy(data, f->msix_table + at, size);
		} else {
			uint16_t v = (uint16_t)(at / PCI_MSIX_ENTRY_SIZE);
			bool was = get32(f->msix_table + v * 16 + 12) &
				   PCI_MSIX_VECTOR_MASKED;

			memcpy(f->msix_table + at, data, size);
			if (was && !(get32(f->msix_table + v * 16 + 12) &
				     PCI_MSIX_VECTOR_MASKED) &&
			    (f->msix_pba[v / 8] & (1u << (v % 8))))
				send_locked(f, v);
		}
		return true;
	}
	if (off >= f->d.msix_pba && off - f->d.msix_pba < PCI_MSIX_MAX / 8) {
		uint64_t at = off - f->d.msix_pba;

		if (!is_write)
			for (unsigned int i = 0; i < size; i++)
				data[i] = at + i < sizeof(f->msix_pba) ?
					  f->msix_pba[at + i] : 0;
		return true;	/* the PBA is read-only */
	}
	return false;
}

/* ---- MMIO ----------------------------------------------------------------- */

bool pci_mmio(struct pci_bus *bus, uint64_t addr, bool is_write,
	      uint8_t *data, unsigned int size)
{
	struct pci_func *hit = NULL;
	uint64_t off = 0;

	pthread_mutex_lock(&bus->lock);
	for (unsigned int i = 1; i < bus->n; i++) {
		struct pci_func *f = bus->funcs[i];
		uint64_t base = get32(f->config + PCI_BAR0) & ~0xfu;

		if (!(get16(f->config + PCI_COMMAND) & PCI_COMMAND_MEMORY))
			continue;
		if (addr >= base && addr - base < f->d.bar_size) {
			hit = f;
			off = addr - base;
			break;
		}
	}
	if (hit && msix_access(hit, off, is_write, data, size)) {
		pthread_mutex_unlock(&bus->lock);
		return true;
	}
	pthread_mutex_unlock(&bus->lock);
	if (!hit)
		return false;
	hit->d.bar_fn(hit->d.opaque, off, is_write, data, size);
	return true;
}

/* ---- save and restore ----------------------------------------------------- */

void pci_func_save(struct pci_func *f, struct snap_pci_func *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&f->bus->lock);
	s->slot = f->slot;
	memcpy(s->config, f->config, PCI_CONFIG_SIZE);
	s->msix_table_len = f->d.msix_vectors * PCI_MSIX_ENTRY_SIZE;
	memcpy(s->msix_table, f->msix_table, s->msix_table_len);
	s->msix_pba_len = (f->d.msix_vectors + 7u) / 8u;
	memcpy(s->msix_pba, f->msix_pba, s->msix_pba_len);
	pthread_mutex_unlock(&f->bus->lock);
}

int pci_func_restore(struct pci_func *f, const struct snap_pci_func *s,
		     struct snap_err *err)
{
	const char *name = f->d.name;

	if (s->slot != f->slot)
		return snap_err_set(err, -EINVAL, "%s: PCI slot %u, %u "
				    "expected", name, s->slot, f->slot);
	/* What the guest cannot write must be what this build presents. */
	for (unsigned int i = 0; i < PCI_CONFIG_SIZE; i++)
		if ((s->config[i] ^ f->config[i]) & ~f->wmask[i] &&
		    i != PCI_STATUS)
			return snap_err_set(err, -EINVAL, "%s: PCI "
					    "configuration byte 0x%x is 0x%x, "
					    "0x%x expected", name, i,
					    s->config[i], f->config[i]);
	if (s->msix_table_len != f->d.msix_vectors * PCI_MSIX_ENTRY_SIZE ||
	    s->msix_pba_len != (f->d.msix_vectors + 7u) / 8u)
		return snap_err_set(err, -EINVAL, "%s: %u MSI-X table bytes, "
				    "%u expected", name, s->msix_table_len,
				    f->d.msix_vectors * PCI_MSIX_ENTRY_SIZE);
	pthread_mutex_lock(&f->bus->lock);
	memcpy(f->config, s->config, PCI_CONFIG_SIZE);
	memcpy(f->msix_table, s->msix_table, s->msix_table_len);
	memcpy(f->msix_pba, s->msix_pba, s->msix_pba_len);
	pthread_mutex_unlock(&f->bus->lock);
	return 0;
}
