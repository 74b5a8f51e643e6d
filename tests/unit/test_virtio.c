/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci transport, its split virtqueues and PCI bus 0 under them,
 * driven as a guest driver drives them: configuration cycles on 0xcf8 and
 * 0xcfc, BAR accesses through pci_mmio, rings and buffers written into
 * guest RAM. There is no VM (the bus's vm_fd is -1, so KVM_SIGNAL_MSI
 * fails and nothing is delivered); interrupts show in the ISR byte and in
 * the PBA of a masked vector. Also the devices' dirty log in vmm/mem.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/mem.h"
#include "vmm/pci/pci.h"
#include "vmm/virtio/virtio.h"

#define RAM		(4ull << 20)
#define QSIZE		16u
#define BUF		0x200000ull	/* buffers here, rings below */
#define MAX_REQS	64u
#define DEV_FEATURE	5		/* a device feature offered */

/* What a driver of the virtio 1.x spec knows; virtio.c keeps its own. */
#define CAP_COMMON	1
#define CAP_NOTIFY	2
#define CAP_ISR		3
#define CAP_DEVICE	4
#define C_DFSELECT	0
#define C_DF		4
#define C_GFSELECT	8
#define C_GF		12
#define C_MSIX		16
#define C_NUMQ		18
#define C_STATUS	20
#define C_CFGGEN	21
#define C_Q_SELECT	22
#define C_Q_SIZE	24
#define C_Q_MSIX	26
#define C_Q_ENABLE	28
#define C_Q_NOFF	30
#define C_Q_DESC	32
#define C_Q_AVAIL	40
#define C_Q_USED	48
#define D_NEXT		1u
#define D_WRITE		2u
#define D_INDIRECT	4u

#define ACK		VIRTIO_STATUS_ACKNOWLEDGE
#define DRV		VIRTIO_STATUS_DRIVER
#define FOK		VIRTIO_STATUS_FEATURES_OK
#define DOK		VIRTIO_STATUS_DRIVER_OK
#define NEEDS_RESET	VIRTIO_STATUS_NEEDS_RESET

#define F_ALL	(1ull << DEV_FEATURE | 1ull << VIRTIO_F_INDIRECT_DESC | \
		 1ull << VIRTIO_F_EVENT_IDX | 1ull << VIRTIO_F_VERSION_1)

static void put_le(uint8_t *p, unsigned int size, uint64_t v)
{
	for (unsigned int i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned int size)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- the test device ----------------------------------------------------- */

struct tdev {
	struct virtio_dev v;		/* first: ops get &v */
	struct virtq_req req;
	struct virtq_req reqs[MAX_REQS];	/* every request popped */
	unsigned int req_q[MAX_REQS];
	unsigned int n_reqs;
	int last_pop;
	unsigned int notifies, resets, driver_oks, config_writes;
	uint8_t config[8];
};

/* Pop everything, answer each with its in_len, then interrupt if asked. */
static void t_notify(struct virtio_dev *v, unsigned int q)
{
	struct tdev *d = (struct tdev *)v;
	int ret;

	d->notifies++;
	while ((ret = virtq_pop(v, q, &d->req)) == 1) {
		assert_true(d->n_reqs < MAX_REQS);
		d->req_q[d->n_reqs] = q;
		d->reqs[d->n_reqs++] = d->req;
		virtq_push(v, q, d->req.head, (uint32_t)d->req.in_len);
	}
	d->last_pop = ret;
	virtq_notify(v, q);
}

static void t_config_read(struct virtio_dev *v, uint32_t offset,
			  uint8_t *data, unsigned int size)
{
	struct tdev *d = (struct tdev *)v;

	assert_true(offset + size <= sizeof(d->config));
	memcpy(data, d->config + offset, size);
}

static void t_config_write(struct virtio_dev *v, uint32_t offset,
			   const uint8_t *data, unsigned int size)
{
	struct tdev *d = (struct tdev *)v;

	assert_true(offset + size <= sizeof(d->config));
	memcpy(d->config + offset, data, size);
	d->config_writes++;
}

static void t_reset(struct virtio_dev *v)
{
	((struct tdev *)v)->resets++;
}

static void t_driver_ok(struct virtio_dev *v)
{
	((struct tdev *)v)->driver_oks++;
}

static const struct virtio_ops t_ops = {
	.notify = t_notify,
	.config_read = t_config_read,
	.config_write = t_config_write,
	.reset = t_reset,
	.driver_ok = t_driver_ok,
};

static struct tdev *tdev_new(struct pci_bus *bus, struct mem *mem,
			     uint16_t type, uint16_t n_queues)
{
	struct snap_err err = { "" };
	struct tdev *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	d->v.name = "test";
	d->v.ops = &t_ops;
	d->v.type = type;
	d->v.n_queues = n_queues;
	d->v.config_len = sizeof(d->config);
	d->v.features = 1ull << DEV_FEATURE;
	memcpy(d->config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	if (virtio_init(&d->v, bus, mem, &err))
		fail_msg("virtio_init: %s", err.msg);
	return d;
}

/* ---- the rig: RAM, a bus, the device, and what probing found ------------- */

struct rig {
	struct mem *mem;
	bool own_mem;
	struct pci_bus *bus;
	struct tdev *d;
	unsigned int slot;
	uint64_t bar;
	uint32_t common, common_len, notify, notify_len, notify_mult;
	uint32_t isr, isr_len, device, device_len;
	unsigned int msix_cap;
};

/* A new bus with the test device on it, in mem (or new RAM if NULL). */
static struct rig *rig_new_on(struct mem *mem)
{
	struct snap_err err = { "" };
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	if (!mem) {
		assert_int_equal(mem_create(&r->mem, RAM, NULL, &err), 0);
		r->own_mem = true;
	} else {
		r->mem = mem;
	}
	assert_int_equal(pci_bus_create(&r->bus, -1, &err), 0);
	r->d = tdev_new(r->bus, r->mem, VIRTIO_ID_RNG, 2);
	r->slot = pci_func_slot(r->d->v.pci);
	return r;
}

static struct rig *rig_new(void)
{
	return rig_new_on(NULL);
}

static void rig_free(struct rig *r)
{
	pci_bus_destroy(r->bus);
	virtio_release(&r->d->v);
	free(r->d);
	if (r->own_mem)
		mem_destroy(r->mem);
	free(r);
}

static uint8_t *ram(struct rig *r, uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(r->mem, gpa, len);

	assert_non_null(p);
	return p;
}

/* Configuration mechanism #1: address at 0xcf8, data at 0xcfc-0xcff. */
static void cf8(struct rig *r, unsigned int slot, unsigned int reg)
{
	uint8_t a[4];

	put_le(a, 4, 0x80000000u | slot << 11 | (reg & 0xfc));
	pci_bus_config_io(r->bus, 0, true, a, 4);
}

static uint32_t cfg_read(struct rig *r, unsigned int slot, unsigned int reg,
			 unsigned int size)
{
	uint8_t data[4] = { 0 };

	cf8(r, slot, reg);
	pci_bus_config_io(r->bus, (uint16_t)(4 + (reg & 3)), false, data,
			  size);
	return (uint32_t)get_le(data, size);
}

static void cfg_write(struct rig *r, unsigned int slot, unsigned int reg,
		      unsigned int size, uint32_t val)
{
	uint8_t data[4];

	put_le(data, size, val);
	cf8(r, slot, reg);
	pci_bus_config_io(r->bus, (uint16_t)(4 + (reg & 3)), true, data,
			  size);
}

static uint64_t mmio_read(struct rig *r, uint64_t addr, unsigned int size)
{
	uint8_t data[8];

	memset(data, 0xcc, sizeof(data));
	if (!pci_mmio(r->bus, addr, false, data, size))
		fail_msg("MMIO read at 0x%llx not claimed",
			 (unsigned long long)addr);
	return get_le(data, size);
}

static void mmio_write(struct rig *r, uint64_t addr, unsigned int size,
		       uint64_t val)
{
	uint8_t data[8];

	put_le(data, size, val);
	if (!pci_mmio(r->bus, addr, true, data, size))
		fail_msg("MMIO write at 0x%llx not claimed",
			 (unsigned long long)addr);
}

static uint64_t common_rd(struct rig *r, unsigned int off, unsigned int size)
{
	return mmio_read(r, r->bar + r->common + off, size);
}

static void common_wr(struct rig *r, unsigned int off, unsigned int size,
		      uint64_t val)
{
	mmio_write(r, r->bar + r->common + off, size, val);
}

static uint8_t status(struct rig *r)
{
	return (uint8_t)common_rd(r, C_STATUS, 1);
}

static void set_status(struct rig *r, uint8_t s)
{
	common_wr(r, C_STATUS, 1, s);
}

/* Read (and so clear) the ISR byte. */
static uint8_t isr(struct rig *r)
{
	return (uint8_t)mmio_read(r, r->bar + r->isr, 1);
}

/*
 * What a driver does first: find the function, walk its capabilities,
 * size BAR0, enable memory decoding.
 */
static void probe(struct rig *r)
{
	unsigned int slot = r->slot, p, seen = 0;
	uint32_t bar, mask;

	assert_int_equal(cfg_read(r, slot, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_read(r, slot, PCI_DEVICE_ID, 2),
			 0x1040 + r->d->v.type);
	assert_true(cfg_read(r, slot, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (p = cfg_read(r, slot, PCI_CAP_PTR, 1); p; ) {
		unsigned int id = cfg_read(r, slot, p, 1);

		assert_true(p >= 0x40 && p < 0x100 && !(p & 3));
		assert_true(++seen < 48);
		if (id == PCI_CAP_ID_MSIX) {
			r->msix_cap = p;
		} else if (id == PCI_CAP_ID_VNDR) {
			unsigned int type = cfg_read(r, slot, p + 3, 1);
			uint32_t off = cfg_read(r, slot, p + 8, 4);
			uint32_t len = cfg_read(r, slot, p + 12, 4);

			assert_int_equal(cfg_read(r, slot, p + 4, 1), 0);
			switch (type) {
			case CAP_COMMON:
				r->common = off;
				r->common_len = len;
				break;
			case CAP_NOTIFY:
				assert_int_equal(cfg_read(r, slot, p + 2, 1),
						 20);
				r->notify = off;
				r->notify_len = len;
				r->notify_mult = cfg_read(r, slot, p + 16, 4);
				break;
			case CAP_ISR:
				r->isr = off;
				r->isr_len = len;
				break;
			case CAP_DEVICE:
				r->device = off;
				r->device_len = len;
				break;
			default:
				fail_msg("capability type %u", type);
			}
		} else {
			fail_msg("capability id 0x%x at 0x%x", id, p);
		}
		p = cfg_read(r, slot, p + 1, 1);
	}
	assert_int_equal(seen, 5);

	bar = cfg_read(r, slot, PCI_BAR0, 4);
	cfg_write(r, slot, PCI_BAR0, 4, 0xffffffff);
	mask = cfg_read(r, slot, PCI_BAR0, 4);
	assert_int_equal(mask & 0xf, 0);	/* 32-bit, not prefetchable */
	assert_int_equal(~(mask & ~0xfu) + 1, 0x8000);
	cfg_write(r, slot, PCI_BAR0, 4, bar);
	assert_int_equal(cfg_read(r, slot, PCI_BAR0, 4), bar);
	r->bar = bar & ~0xfu;
	cfg_write(r, slot, PCI_COMMAND, 2, cfg_read(r, slot, PCI_COMMAND, 2) |
		  PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/* Reset, then take features; the status read back after FEATURES_OK. */
static uint8_t negotiate(struct rig *r, uint64_t features)
{
	set_status(r, 0);
	set_status(r, ACK);
	set_status(r, ACK | DRV);
	common_wr(r, C_GFSELECT, 4, 0);
	common_wr(r, C_GF, 4, (uint32_t)features);
	common_wr(r, C_GFSELECT, 4, 1);
	common_wr(r, C_GF, 4, features >> 32);
	set_status(r, ACK | DRV | FOK);
	return status(r);
}

/* A queue as the driver sees it, its rings zeroed in guest RAM. */
struct gq {
	unsigned int q;
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx;
};

static void gq_init(struct rig *r, struct gq *g, unsigned int q,
		    uint16_t size)
{
	*g = (struct gq){ .q = q, .size = size };
	g->desc = 0x100000 + q * 0x10000ull;
	g->avail = g->desc + 0x4000;
	g->used = g->desc + 0x8000;
	memset(ram(r, g->desc, 0x10000), 0, 0x10000);
}

/* Set the queue up and enable it; true when it reads back enabled. */
static bool queue_setup(struct rig *r, const struct gq *g, uint16_t vector)
{
	common_wr(r, C_Q_SELECT, 2, g->q);
	assert_int_equal(common_rd(r, C_Q_SIZE, 2), VIRTIO_QUEUE_SIZE);
	common_wr(r, C_Q_SIZE, 2, g->size);
	common_wr(r, C_Q_MSIX, 2, vector);
	common_wr(r, C_Q_DESC, 4, (uint32_t)g->desc);
	common_wr(r, C_Q_DESC + 4, 4, g->desc >> 32);
	common_wr(r, C_Q_AVAIL, 8, g->avail);	/* one 64-bit access */
	common_wr(r, C_Q_USED, 4, (uint32_t)g->used);
	common_wr(r, C_Q_USED + 4, 4, g->used >> 32);
	common_wr(r, C_Q_ENABLE, 2, 1);
	return common_rd(r, C_Q_ENABLE, 2) == 1;
}

/* Probe, negotiate features, set up queues 0 and 1 (size QSIZE), DRIVER_OK. */
static void bring_up(struct rig *r, uint64_t features, struct gq g[2])
{
	probe(r);
	assert_int_equal(negotiate(r, features), ACK | DRV | FOK);
	for (unsigned int q = 0; q < 2; q++) {
		gq_init(r, &g[q], q, QSIZE);
		assert_true(queue_setup(r, &g[q], (uint16_t)(q + 1)));
	}
	set_status(r, ACK | DRV | FOK | DOK);
	assert_int_equal(status(r), ACK | DRV | FOK | DOK);
}

static void set_desc_in(struct rig *r, uint64_t table, uint16_t i,
			uint64_t addr, uint32_t len, uint16_t flags,
			uint16_t next)
{
	uint8_t *d = ram(r, table + 16ull * i, 16);

	put_le(d, 8, addr);
	put_le(d + 8, 4, len);
	put_le(d + 12, 2, flags);
	put_le(d + 14, 2, next);
}

static void set_desc(struct rig *r, const struct gq *g, uint16_t i,
		     uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	set_desc_in(r, g->desc, i, addr, len, flags, next);
}

/* Make head available (ring entry, then the index). */
static void give(struct rig *r, struct gq *g, uint16_t head)
{
	put_le(ram(r, g->avail + 4 + 2u * (g->avail_idx % g->size), 2), 2,
	       head);
	g->avail_idx++;
	put_le(ram(r, g->avail + 2, 2), 2, g->avail_idx);
}

static void kick(struct rig *r, unsigned int q)
{
	mmio_write(r, r->bar + r->notify + q * r->notify_mult, 2, q);
}

static uint16_t used_idx(struct rig *r, const struct gq *g)
{
	return (uint16_t)get_le(ram(r, g->used + 2, 2), 2);
}

static void used_elem(struct rig *r, const struct gq *g, uint16_t i,
		      uint32_t *id, uint32_t *len)
{
	const uint8_t *e = ram(r, g->used + 4 + 8u * (i % g->size), 8);

	*id = (uint32_t)get_le(e, 4);
	*len = (uint32_t)get_le(e + 4, 4);
}

static void set_used_event(struct rig *r, const struct gq *g, uint16_t v)
{
	put_le(ram(r, g->avail + 4 + 2u * g->size, 2), 2, v);
}

static uint16_t avail_event(struct rig *r, const struct gq *g)
{
	return (uint16_t)get_le(ram(r, g->used + 4 + 8u * g->size, 2), 2);
}

static void assert_iov(struct rig *r, const struct iovec *iov, uint64_t gpa,
		       size_t len)
{
	assert_ptr_equal(iov->iov_base, mem_host(r->mem) + gpa);
	assert_int_equal(iov->iov_len, len);
}

/* ---- probing ------------------------------------------------------------- */

static void test_probe(void **unused)
{
	struct rig *r = rig_new();
	struct tdev *blk = tdev_new(r->bus, r->mem, VIRTIO_ID_BLOCK, 1);
	uint8_t data[4];

	/* The host bridge at 00:00.0; nothing at slots 3 and up. */
	assert_int_equal(cfg_read(r, 0, PCI_VENDOR_ID, 4), 0x00081b36);
	assert_int_equal(cfg_read(r, 0, PCI_REVISION, 4) >> 8, 0x060000);
	assert_int_equal(cfg_read(r, 3, PCI_VENDOR_ID, 4), 0xffffffff);
	assert_int_equal(cfg_read(r, 31, PCI_VENDOR_ID, 2), 0xffff);
	/* The address register reads back; function 1 of a slot is absent. */
	cf8(r, 1, 0x10);
	pci_bus_config_io(r->bus, 0, false, data, 4);
	assert_int_equal(get_le(data, 4), 0x80000810);
	assert_int_equal(pci_bus_config_address(r->bus), 0x80000810);
	put_le(data, 4, 0x80000100u | 1 << 11);
	pci_bus_config_io(r->bus, 0, true, data, 4);
	pci_bus_config_io(r->bus, 4, false, data, 4);
	assert_int_equal(get_le(data, 4), 0xffffffff);
	/* Disabled configuration cycles read all ones. */
	put_le(data, 4, 1 << 11);
	pci_bus_config_io(r->bus, 0, true, data, 4);
	pci_bus_config_io(r->bus, 4, false, data, 4);
	assert_int_equal(get_le(data, 4), 0xffffffff);

	assert_int_equal(r->slot, 1);
	assert_int_equal(pci_func_slot(blk->v.pci), 2);
	assert_int_equal(cfg_read(r, 1, PCI_REVISION, 1), 1);
	assert_int_equal(cfg_read(r, 1, PCI_REVISION, 4) >> 8, 0xff0000);
	assert_int_equal(cfg_read(r, 2, PCI_REVISION, 4) >> 8, 0x018000);
	assert_int_equal(cfg_read(r, 1, PCI_SUBSYS_VENDOR, 2), 0x1af4);
	assert_int_equal(cfg_read(r, 1, PCI_SUBSYS_ID, 2), 0x1044);
	assert_int_equal(cfg_read(r, 2, PCI_DEVICE_ID, 2), 0x1042);
	assert_int_equal(cfg_read(r, 1, PCI_BAR0, 4), PCI_MMIO_BASE);
	assert_int_equal(cfg_read(r, 2, PCI_BAR0, 4), PCI_MMIO_BASE + 0x8000);

	/* Before memory decoding is on, BAR0 is not there. */
	assert_false(pci_mmio(r->bus, PCI_MMIO_BASE, false, data, 1));
	probe(r);
	assert_int_equal(r->bar, PCI_MMIO_BASE);
	assert_int_equal(r->common, 0x0000);
	assert_int_equal(r->common_len, 56);
	assert_int_equal(r->isr, 0x1000);
	assert_int_equal(r->isr_len, 1);
	assert_int_equal(r->device, 0x2000);
	assert_int_equal(r->device_len, 8);
	assert_int_equal(r->notify, 0x3000);
	assert_int_equal(r->notify_len, 8);
	assert_int_equal(r->notify_mult, 4);
	/* MSI-X: 3 vectors (2 queues and configuration), table and PBA. */
	assert_int_equal(cfg_read(r, 1, r->msix_cap + 2, 2), 2);
	assert_int_equal(cfg_read(r, 1, r->msix_cap + 4, 4), 0x4000);
	assert_int_equal(cfg_read(r, 1, r->msix_cap + 8, 4), 0x5000);
	assert_true(pci_mmio(r->bus, PCI_MMIO_BASE + 0x7fff, false, data, 1));
	assert_false(pci_mmio(r->bus, PCI_MMIO_BASE + 0x8000, false, data,
			      1));	/* slot 2: decoding still off */

	/* The vendor ID is read-only; the interrupt line is not. */
	cfg_write(r, 1, PCI_VENDOR_ID, 2, 0x1234);
	assert_int_equal(cfg_read(r, 1, PCI_VENDOR_ID, 2), 0x1af4);
	cfg_write(r, 1, PCI_INTERRUPT_LINE, 1, 0x0b);
	assert_int_equal(cfg_read(r, 1, PCI_INTERRUPT_LINE, 1), 0x0b);
	/* A byte write inside a dword reaches its byte only. */
	cfg_write(r, 1, PCI_BAR0 + 2, 1, 0x10);
	assert_int_equal(cfg_read(r, 1, PCI_BAR0, 4), 0xe0100000);

	/* The guest moves BAR0: accesses follow the register. */
	assert_false(pci_mmio(r->bus, PCI_MMIO_BASE, false, data, 1));
	r->bar = 0xe0100000;
	assert_int_equal(common_rd(r, C_NUMQ, 2), 2);
	cfg_write(r, 1, PCI_BAR0, 4, PCI_MMIO_BASE);
	r->bar = PCI_MMIO_BASE;
	assert_int_equal(common_rd(r, C_NUMQ, 2), 2);
	/* Decoding off again: unclaimed. */
	cfg_write(r, 1, PCI_COMMAND, 2, 0);
	assert_false(pci_mmio(r->bus, PCI_MMIO_BASE, false, data, 1));

	virtio_release(&blk->v);
	free(blk);
	rig_free(r);
}

/* ---- the common configuration -------------------------------------------- */

static void test_features(void **unused)
{
	struct rig *r = rig_new();

	probe(r);
	assert_int_equal(status(r), 0);
	common_wr(r, C_DFSELECT, 4, 0);
	assert_int_equal(common_rd(r, C_DF, 4), (uint32_t)F_ALL);
	common_wr(r, C_DFSELECT, 4, 1);
	assert_int_equal(common_rd(r, C_DF, 4), F_ALL >> 32);
	common_wr(r, C_DFSELECT, 4, 2);
	assert_int_equal(common_rd(r, C_DF, 4), 0);
	assert_int_equal(common_rd(r, C_DFSELECT, 4), 2);

	/* Without VERSION_1 (a legacy driver): FEATURES_OK does not stick. */
	assert_int_equal(negotiate(r, 1ull << DEV_FEATURE), ACK | DRV);
	/* A feature not offered, in either half: refused. */
	assert_int_equal(negotiate(r, F_ALL | 1ull << 30), ACK | DRV);
	assert_int_equal(negotiate(r, F_ALL | 1ull << 33), ACK | DRV);
	/* Refused, the driver may try again without a reset. */
	common_wr(r, C_GFSELECT, 4, 1);
	common_wr(r, C_GF, 4, 1);
	set_status(r, ACK | DRV | FOK);
	assert_int_equal(status(r), ACK | DRV | FOK);
	assert_true(virtio_has(&r->d->v, VIRTIO_F_VERSION_1));
	assert_true(virtio_has(&r->d->v, VIRTIO_F_EVENT_IDX));
	assert_false(virtio_has(&r->d->v, 30));

	/* A subset is fine; a reset clears what was taken. */
	assert_int_equal(negotiate(r, 1ull << VIRTIO_F_VERSION_1),
			 ACK | DRV | FOK);
	assert_false(virtio_has(&r->d->v, VIRTIO_F_EVENT_IDX));
	set_status(r, 0);
	assert_int_equal(status(r), 0);
	assert_int_equal(r->d->v.driver_features, 0);
	common_wr(r, C_GFSELECT, 4, 0);
	assert_int_equal(common_rd(r, C_GF, 4), 0);

	/* After FEATURES_OK the driver's features are fixed. */
	assert_int_equal(negotiate(r, F_ALL), ACK | DRV | FOK);
	common_wr(r, C_GFSELECT, 4, 0);
	common_wr(r, C_GF, 4, 0);
	assert_int_equal(common_rd(r, C_GF, 4), (uint32_t)F_ALL);
	common_wr(r, C_GFSELECT, 4, 1);
	assert_int_equal(common_rd(r, C_GF, 4), 1);
	assert_int_equal(r->d->v.driver_features, F_ALL);
	/* One at init, one in each negotiate, one by the driver above. */
	assert_int_equal(r->d->resets, 7);
	rig_free(r);
}

static void test_queue_setup(void **unused)
{
	struct rig *r = rig_new();
	struct tdev *d = r->d;
	struct gq g;
	uint8_t data[8];

	probe(r);
	assert_int_equal(negotiate(r, F_ALL), ACK | DRV | FOK);
	assert_int_equal(common_rd(r, C_NUMQ, 2), 2);
	assert_int_equal(common_rd(r, C_MSIX, 2), VIRTIO_NO_VECTOR);
	common_wr(r, C_MSIX, 2, 0);
	assert_int_equal(common_rd(r, C_MSIX, 2), 0);

	gq_init(r, &g, 1, 64);
	g.desc = 0x123450;			/* any 16-byte aligned gpa */
	common_wr(r, C_Q_SELECT, 2, 1);
	assert_int_equal(common_rd(r, C_Q_SELECT, 2), 1);
	assert_int_equal(common_rd(r, C_Q_NOFF, 2), 1);
	assert_true(queue_setup(r, &g, 2));
	assert_int_equal(common_rd(r, C_Q_SIZE, 2), 64);
	assert_int_equal(common_rd(r, C_Q_MSIX, 2), 2);
	assert_int_equal(common_rd(r, C_Q_DESC, 4), g.desc);
	assert_int_equal(common_rd(r, C_Q_DESC + 4, 4), 0);
	assert_int_equal(common_rd(r, C_Q_AVAIL, 8), g.avail);
	assert_int_equal(common_rd(r, C_Q_USED, 4), g.used);
	/* A running queue's setup is fixed. */
	common_wr(r, C_Q_SIZE, 2, 32);
	common_wr(r, C_Q_DESC, 4, 0x2000);
	assert_int_equal(common_rd(r, C_Q_SIZE, 2), 64);
	assert_int_equal(common_rd(r, C_Q_DESC, 4), g.desc);
	/* Queue 0 was left alone. */
	common_wr(r, C_Q_SELECT, 2, 0);
	assert_int_equal(common_rd(r, C_Q_SIZE, 2), VIRTIO_QUEUE_SIZE);
	assert_int_equal(common_rd(r, C_Q_ENABLE, 2), 0);
	assert_int_equal(common_rd(r, C_Q_MSIX, 2), VIRTIO_NO_VECTOR);
	/* A queue that does not exist: size 0, nothing sticks. */
	common_wr(r, C_Q_SELECT, 2, 2);
	assert_int_equal(common_rd(r, C_Q_SIZE, 2), 0);
	common_wr(r, C_Q_SIZE, 2, 16);
	common_wr(r, C_Q_ENABLE, 2, 1);
	assert_int_equal(common_rd(r, C_Q_ENABLE, 2), 0);
	assert_int_equal(common_rd(r, C_Q_SIZE, 2), 0);
	common_wr(r, C_Q_SELECT, 2, 0xffff);
	assert_int_equal(common_rd(r, C_Q_SIZE, 2), 0);
	assert_int_equal(status(r) & NEEDS_RESET, 0);

	/* Accesses of the wrong width or past the registers do nothing. */
	common_wr(r, C_Q_SELECT, 4, 0);
	assert_int_equal(common_rd(r, C_Q_SELECT, 2), 0xffff);
	assert_int_equal(common_rd(r, C_NUMQ, 4), 0);
	assert_int_equal(common_rd(r, 56, 4), 0);
	assert_int_equal(common_rd(r, 0xffc, 4), 0);

	/* DRIVER_OK once, however often it is written. */
	set_status(r, ACK | DRV | FOK | DOK);
	set_status(r, ACK | DRV | FOK | DOK);
	assert_int_equal(d->driver_oks, 1);

	/* Device configuration: 8 bytes, the rest reads as zero. */
	assert_int_equal(mmio_read(r, r->bar + r->device, 4), 0x44332211);
	assert_int_equal(mmio_read(r, r->bar + r->device + 4, 4), 0x88776655);
	assert_int_equal(mmio_read(r, r->bar + r->device, 8),
			 0x8877665544332211ull);
	assert_int_equal(mmio_read(r, r->bar + r->device + 6, 4), 0);
	assert_int_equal(mmio_read(r, r->bar + r->device + 0xffc, 4), 0);
	mmio_write(r, r->bar + r->device + 2, 2, 0xbeef);
	mmio_write(r, r->bar + r->device + 7, 2, 0xdead);	/* past it */
	assert_int_equal(d->config_writes, 1);
	assert_int_equal(d->config[2], 0xef);
	assert_int_equal(d->config[3], 0xbe);
	assert_int_equal(d->config[7], 0x88);
	/* The config generation moves with each change the device makes. */
	assert_int_equal(common_rd(r, C_CFGGEN, 1), 0);
	virtio_config_changed(&d->v);
	assert_int_equal(common_rd(r, C_CFGGEN, 1), 1);
	assert_int_equal(isr(r), 2);
	assert_int_equal(isr(r), 0);

	/* The unused parts of BAR0 read as zero and ignore writes. */
	assert_int_equal(mmio_read(r, r->bar + 0x6000, 4), 0);
	mmio_write(r, r->bar + 0x7ff8, 8, ~0ull);
	assert_true(pci_mmio(r->bus, r->bar + 0x7fff, false, data, 1));
	rig_free(r);
}

/* ---- requests ------------------------------------------------------------ */

/* Out buffers then in buffers, split and summed; the used ring filled. */
static void test_chains(void **unused)
{
	struct rig *r = rig_new();
	struct tdev *d = r->d;
	uint64_t dirty[(RAM / 4096 + 63) / 64] = { 0 };
	uint8_t buf[200];
	struct gq g[2];
	uint32_t id, len;

	bring_up(r, F_ALL, g);
	mem_dirty_take(r->mem, dirty);	/* start with a clean log */
	memset(dirty, 0, sizeof(dirty));

	/* head 3: out 16, out 100, in 512, in 16, in an order of its own */
	set_desc(r, &g[0], 3, BUF, 16, D_NEXT, 7);
	set_desc(r, &g[0], 7, BUF + 0x1000, 100, D_NEXT, 0);
	set_desc(r, &g[0], 0, BUF + 0x3000, 512, D_NEXT | D_WRITE, 15);
	set_desc(r, &g[0], 15, BUF + 0x5ff8, 16, D_WRITE, 9);	/* last */
	for (unsigned int i = 0; i < 116; i++)
		*ram(r, i < 16 ? BUF + i : BUF + 0x1000 + i - 16, 1) =
			(uint8_t)i;
	give(r, &g[0], 3);
	kick(r, 0);

	assert_int_equal(d->notifies, 1);
	assert_int_equal(d->n_reqs, 1);
	assert_int_equal(d->last_pop, 0);
	{
		const struct virtq_req *q = &d->reqs[0];

		assert_int_equal(q->head, 3);
		assert_int_equal(q->n_out, 2);
		assert_int_equal(q->n_in, 2);
		assert_int_equal(q->out_len, 116);
		assert_int_equal(q->in_len, 528);
		assert_iov(r, &q->out[0], BUF, 16);
		assert_iov(r, &q->out[1], BUF + 0x1000, 100);
		assert_iov(r, &q->in[0], BUF + 0x3000, 512);
		assert_iov(r, &q->in[1], BUF + 0x5ff8, 16);
		/* Reads across the out buffers, writes across the in ones. */
		assert_int_equal(virtq_req_read(q, 10, buf, sizeof(buf)), 106);
		for (unsigned int i = 0; i < 106; i++)
			assert_int_equal(buf[i], i + 10);
		memset(buf, 0xab, sizeof(buf));
		assert_int_equal(virtq_req_write(q, 500, buf, 20), 20);
		assert_int_equal(*ram(r, BUF + 0x3000 + 511, 1), 0xab);
		assert_int_equal(*ram(r, BUF + 0x5ff8 + 7, 1), 0xab);
		assert_int_equal(*ram(r, BUF + 0x5ff8 + 8, 1), 0);
		assert_int_equal(virtq_req_write(q, 520, buf, 20), 8);
		assert_int_equal(virtq_req_write(q, 528, buf, 20), 0);
		assert_int_equal(virtq_req_read(q, 116, buf, 1), 0);
	}
	assert_int_equal(used_idx(r, &g[0]), 1);
	used_elem(r, &g[0], 0, &id, &len);
	assert_int_equal(id, 3);
	assert_int_equal(len, 528);
	assert_int_equal(avail_event(r, &g[0]), 1);
	assert_int_equal(isr(r), 1);

	/*
	 * The device's writes are in the dirty log: both pages of the
	 * second in buffer, the first's, the used ring; not the out
	 * buffers, the descriptors or the available ring.
	 */
	mem_dirty_take(r->mem, dirty);
	for (uint64_t p = 0; p < RAM / 4096; p++) {
		bool want = p == (BUF + 0x3000) / 4096 ||
			    p == (BUF + 0x5000) / 4096 ||
			    p == (BUF + 0x6000) / 4096 ||
			    p == g[0].used / 4096;

		if (((dirty[p / 64] >> (p % 64)) & 1) != want)
			fail_msg("page 0x%llx: dirty %d", (unsigned long long)p,
				 !want);
	}

	/* Three at once on queue 1, one with a zero-length buffer. */
	set_desc(r, &g[1], 0, BUF, 8, 0, 0);
	set_desc(r, &g[1], 1, BUF, 0, D_WRITE, 0);
	set_desc(r, &g[1], 2, BUF + 0x100, 4, D_WRITE | D_NEXT, 3);
	set_desc(r, &g[1], 3, BUF + 0x200, 4, D_WRITE, 0);
	give(r, &g[1], 2);
	give(r, &g[1], 0);
	give(r, &g[1], 1);
	kick(r, 1);
	assert_int_equal(d->n_reqs, 4);
	assert_int_equal(d->req_q[1], 1);
	assert_int_equal(d->reqs[1].head, 2);
	assert_int_equal(d->reqs[1].n_out, 0);
	assert_int_equal(d->reqs[1].in_len, 8);
	assert_int_equal(d->reqs[2].head, 0);
	assert_int_equal(d->reqs[2].n_in, 0);
	assert_int_equal(d->reqs[2].out_len, 8);
	assert_int_equal(d->reqs[3].head, 1);
	assert_int_equal(d->reqs[3].n_in, 1);
	assert_int_equal(d->reqs[3].in_len, 0);
	assert_int_equal(used_idx(r, &g[1]), 3);
	used_elem(r, &g[1], 2, &id, &len);
	assert_int_equal(id, 1);
	assert_int_equal(len, 0);
	assert_int_equal(used_idx(r, &g[0]), 1);	/* queue 0 untouched */

	/* A kick with nothing new pops nothing; both rings wrap. */
	kick(r, 1);
	assert_int_equal(d->n_reqs, 4);
	for (unsigned int i = 0; i < 2 * QSIZE; i++) {
		give(r, &g[1], 2);
		kick(r, 1);
	}
	assert_int_equal(d->n_reqs, 4 + 2 * QSIZE);
	assert_int_equal(d->reqs[3 + 2 * QSIZE].head, 2);
	assert_int_equal(used_idx(r, &g[1]), 3 + 2 * QSIZE);
	for (uint16_t i = 0; i < QSIZE; i++) {
		used_elem(r, &g[1], i, &id, &len);
		assert_int_equal(id, 2);
		assert_int_equal(len, 8);
	}
	assert_int_equal(avail_event(r, &g[1]), 3 + 2 * QSIZE);
	assert_int_equal(status(r) & NEEDS_RESET, 0);
	rig_free(r);
}

/* The whole table as one chain; indirect tables, up to the limit. */
static void test_chain_limits(void **unused)
{
	struct rig *r = rig_new();
	struct tdev *d = r->d;
	struct gq g[2];
	uint64_t table = BUF + 0x10000;

	bring_up(r, F_ALL, g);
	for (uint16_t i = 0; i < QSIZE; i++)
		set_desc(r, &g[0], i, BUF + i, 1,
			 i + 1u < QSIZE ? D_NEXT : D_WRITE, (uint16_t)(i + 1));
	give(r, &g[0], 0);
	kick(r, 0);
	assert_int_equal(d->n_reqs, 1);
	assert_int_equal(d->reqs[0].n_out, QSIZE - 1);
	assert_int_equal(d->reqs[0].n_in, 1);

	/* An indirect table: out 10, in 20, in 30, in its own order. */
	set_desc_in(r, table, 0, BUF + 0x100, 10, D_NEXT, 2);
	set_desc_in(r, table, 2, BUF + 0x200, 20, D_NEXT | D_WRITE, 1);
	set_desc_in(r, table, 1, BUF + 0x300, 30, D_WRITE, 0);
	set_desc(r, &g[0], 5, table, 48, D_INDIRECT, 0);
	give(r, &g[0], 5);
	kick(r, 0);
	assert_int_equal(d->n_reqs, 2);
	assert_int_equal(d->reqs[1].head, 5);
	assert_int_equal(d->reqs[1].n_out, 1);
	assert_int_equal(d->reqs[1].n_in, 2);
	assert_iov(r, &d->reqs[1].out[0], BUF + 0x100, 10);
	assert_iov(r, &d->reqs[1].in[0], BUF + 0x200, 20);
	assert_iov(r, &d->reqs[1].in[1], BUF + 0x300, 30);
	assert_int_equal(d->reqs[1].in_len, 50);
	{
		uint32_t id, len;

		used_elem(r, &g[0], 1, &id, &len);
		assert_int_equal(id, 5);
		assert_int_equal(len, 50);
	}

	/* The longest chain there is: an indirect table of 256. */
	for (uint16_t i = 0; i < VIRTIO_CHAIN_MAX; i++)
		set_desc_in(r, table, i, BUF + 0x1000 + i, 1,
			    i + 1u < VIRTIO_CHAIN_MAX ? D_NEXT : D_WRITE,
			    (uint16_t)(i + 1));
	set_desc(r, &g[0], 6, table, VIRTIO_CHAIN_MAX * 16, D_INDIRECT, 0);
	give(r, &g[0], 6);
	kick(r, 0);
	assert_int_equal(d->n_reqs, 3);
	assert_int_equal(d->reqs[2].n_out, VIRTIO_CHAIN_MAX - 1);
	assert_int_equal(d->reqs[2].n_in, 1);
	assert_int_equal(d->reqs[2].out_len, VIRTIO_CHAIN_MAX - 1);
	assert_int_equal(status(r) & NEEDS_RESET, 0);
	assert_int_equal(used_idx(r, &g[0]), 3);
	rig_free(r);
}

/* ---- interrupts ---------------------------------------------------------- */

/* Serve one request (head 0: one in buffer) on queue 0; the ISR after. */
static uint8_t one_request(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, BUF, 4, D_WRITE, 0);
	give(r, g, 0);
	kick(r, 0);
	return isr(r);
}

static void test_event_idx(void **unused)
{
	struct rig *r = rig_new();
	struct gq g[2];

	bring_up(r, F_ALL, g);
	/* used_event 0: the first used entry interrupts. */
	assert_int_equal(one_request(r, &g[0]), 1);
	assert_int_equal(isr(r), 0);		/* read to clear */
	assert_int_equal(avail_event(r, &g[0]), 1);

	/* "Interrupt me when used idx passes 2": not at 2, at 3. */
	set_used_event(r, &g[0], 2);
	assert_int_equal(one_request(r, &g[0]), 0);
	assert_int_equal(used_idx(r, &g[0]), 2);
	assert_int_equal(one_request(r, &g[0]), 1);
	assert_int_equal(avail_event(r, &g[0]), 3);

	/* A batch that crosses used_event: one interrupt. */
	set_used_event(r, &g[0], 4);
	set_desc(r, &g[0], 0, BUF, 4, D_WRITE, 0);
	for (int i = 0; i < 3; i++)
		give(r, &g[0], 0);
	kick(r, 0);
	assert_int_equal(used_idx(r, &g[0]), 6);
	assert_int_equal(avail_event(r, &g[0]), 6);
	assert_int_equal(isr(r), 1);

	/* A batch that stays short of it: none. */
	set_used_event(r, &g[0], 10);
	give(r, &g[0], 0);
	give(r, &g[0], 0);
	kick(r, 0);
	assert_int_equal(used_idx(r, &g[0]), 8);
	assert_int_equal(isr(r), 0);
	/* used_event already behind (the driver is slow): none either. */
	set_used_event(r, &g[0], 5);
	assert_int_equal(one_request(r, &g[0]), 0);
	/* Exactly at it again. */
	set_used_event(r, &g[0], 9);
	assert_int_equal(one_request(r, &g[0]), 1);
	assert_int_equal(used_idx(r, &g[0]), 10);
	/* The NO_INTERRUPT flag means nothing with EVENT_IDX. */
	put_le(ram(r, g[0].avail, 2), 2, 1);
	set_used_event(r, &g[0], 10);
	assert_int_equal(one_request(r, &g[0]), 1);
	assert_int_equal(r->d->n_reqs, 11);
	rig_free(r);
}

static void test_no_event_idx(void **unused)
{
	struct rig *r = rig_new();
	struct gq g[2];

	bring_up(r, F_ALL & ~(1ull << VIRTIO_F_EVENT_IDX), g);
	assert_int_equal(one_request(r, &g[0]), 1);
	assert_int_equal(avail_event(r, &g[0]), 0);	/* never written */
	put_le(ram(r, g[0].avail, 2), 2, 1);		/* NO_INTERRUPT */
	assert_int_equal(one_request(r, &g[0]), 0);
	assert_int_equal(one_request(r, &g[0]), 0);
	put_le(ram(r, g[0].avail, 2), 2, 0);
	assert_int_equal(one_request(r, &g[0]), 1);
	/* used_event is only for EVENT_IDX */
	set_used_event(r, &g[0], 100);
	assert_int_equal(one_request(r, &g[0]), 1);
	assert_int_equal(used_idx(r, &g[0]), 5);
	assert_int_equal(avail_event(r, &g[0]), 0);
	rig_free(r);
}

static uint8_t pba(struct rig *r)
{
	return (uint8_t)mmio_read(r, r->bar + 0x5000, 1);
}

static void set_msix_control(struct rig *r, uint16_t ctl)
{
	cfg_write(r, r->slot, r->msix_cap + 2, 2, ctl);
}

/* Vector control of vector v: 1 masked, 0 not. */
static void mask_vector(struct rig *r, unsigned int v, bool masked)
{
	mmio_write(r, r->bar + 0x4000 + 16 * v + 12, 4, masked);
}

static void test_msix(void **unused)
{
	struct rig *r = rig_new();
	struct pci_func *f = r->d->v.pci;
	const uint64_t features = F_ALL & ~(1ull << VIRTIO_F_EVENT_IDX);
	struct gq g[2];

	/* Without EVENT_IDX: every used buffer interrupts. */
	bring_up(r, features, g);
	/* The table: every vector masked at first; entries read back. */
	for (unsigned int v = 0; v < 3; v++)
		assert_int_equal(mmio_read(r, r->bar + 0x4000 + 16 * v + 12, 4),
				 1);
	mmio_write(r, r->bar + 0x4010, 8, 0x00000000fee00000ull);
	mmio_write(r, r->bar + 0x4018, 4, 0x4041);
	assert_int_equal(mmio_read(r, r->bar + 0x4010, 8), 0xfee00000ull);
	assert_int_equal(mmio_read(r, r->bar + 0x4018, 8), 0x100004041ull);
	assert_int_equal(pba(r), 0);
	mmio_write(r, r->bar + 0x5000, 1, 0xff);	/* read-only */
	assert_int_equal(pba(r), 0);

	/* MSI-X on, vector 1 (queue 0's) masked: its interrupt pends. */
	set_msix_control(r, PCI_MSIX_ENABLE);
	assert_int_equal(one_request(r, &g[0]), 1);
	assert_int_equal(pba(r), 0x02);
	/* Unmasking sends it (KVM_SIGNAL_MSI fails here, harmlessly). */
	mask_vector(r, 1, false);
	assert_int_equal(pba(r), 0);
	assert_int_equal(one_request(r, &g[0]), 1);
	assert_int_equal(pba(r), 0);			/* sent at once */
	mask_vector(r, 1, true);
	assert_int_equal(one_request(r, &g[0]), 1);
	assert_int_equal(pba(r), 0x02);
	/* Other vectors pend on their own. */
	assert_int_equal(pci_msix_send(f, 2), 0);
	assert_int_equal(pba(r), 0x06);
	assert_int_equal(pci_msix_send(f, 3), -EINVAL);
	assert_int_equal(pci_msix_send(f, 0xffff), -EINVAL);
	assert_int_equal(pba(r), 0x06);
	mask_vector(r, 2, false);
	assert_int_equal(pba(r), 0x02);
	/* Writing a masked vector's entry again sends nothing. */
	mask_vector(r, 1, true);
	assert_int_equal(pba(r), 0x02);

	/* The function mask holds every vector back ... */
	mask_vector(r, 0, false);
	set_msix_control(r, PCI_MSIX_ENABLE | PCI_MSIX_MASKALL);
	assert_int_equal(cfg_read(r, r->slot, r->msix_cap + 2, 2),
			 PCI_MSIX_ENABLE | PCI_MSIX_MASKALL | 2);
	assert_int_equal(pci_msix_send(f, 0), 0);
	assert_int_equal(pci_msix_send(f, 2), 0);
	assert_int_equal(pba(r), 0x07);
	/* ... and clearing it sends what pends on unmasked vectors. */
	set_msix_control(r, PCI_MSIX_ENABLE);
	assert_int_equal(pba(r), 0x02);

	/* Enabling MSI-X sends what pends, too. */
	set_msix_control(r, 0);
	assert_int_equal(pci_msix_send(f, 0), 0);
	assert_int_equal(pba(r), 0x03);
	set_msix_control(r, PCI_MSIX_ENABLE);
	assert_int_equal(pba(r), 0x02);
	/* The table size field is read-only. */
	set_msix_control(r, PCI_MSIX_ENABLE | 0x7ff);
	assert_int_equal(cfg_read(r, r->slot, r->msix_cap + 2, 2),
			 PCI_MSIX_ENABLE | 2);

	/* A queue vector the function does not have: nothing, no crash. */
	set_status(r, 0);
	assert_int_equal(negotiate(r, features), ACK | DRV | FOK);
	gq_init(r, &g[0], 0, QSIZE);
	assert_true(queue_setup(r, &g[0], 40));
	set_status(r, ACK | DRV | FOK | DOK);
	assert_int_equal(one_request(r, &g[0]), 1);
	assert_int_equal(pba(r), 0x02);
	rig_free(r);
}

/* ---- a hostile driver ---------------------------------------------------- */

struct hostile {
	const char *name;
	uint64_t features;			/* 0: F_ALL */
	/* Break queue 0 of r: set it up (at_enable) or fill its ring. */
	void (*make)(struct rig *r, struct gq *g);
	bool at_enable;
};

static void h_desc_past_ram(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, RAM - 8, 16, 0, 0);
	give(r, g, 0);
}

static void h_desc_wraps(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, UINT64_MAX - 15, 32, 0, 0);
	give(r, g, 0);
}

static void h_in_past_ram(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, BUF, 16, D_NEXT, 1);
	set_desc(r, g, 1, RAM, 1, D_WRITE, 0);
	give(r, g, 0);
}

static void h_in_huge(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, BUF, UINT32_MAX, D_WRITE, 0);
	give(r, g, 0);
}

static void h_loop(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, BUF, 16, D_NEXT, 1);
	set_desc(r, g, 1, BUF, 16, D_NEXT, 0);
	give(r, g, 0);
}

static void h_self_loop(struct rig *r, struct gq *g)
{
	set_desc(r, g, 4, BUF, 16, D_NEXT | D_WRITE, 4);
	give(r, g, 4);
}

static void h_longer_than_queue(struct rig *r, struct gq *g)
{
	for (uint16_t i = 0; i < QSIZE; i++)
		set_desc(r, g, i, BUF, 1, D_NEXT, (uint16_t)((i + 1) % QSIZE));
	give(r, g, 0);
}

static void h_next_out_of_table(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, BUF, 16, D_NEXT, QSIZE);
	give(r, g, 0);
}

static void h_head_out_of_table(struct rig *r, struct gq *g)
{
	give(r, g, 300);
}

static void h_avail_ahead(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, BUF, 16, 0, 0);
	put_le(ram(r, g->avail + 2, 2), 2, QSIZE + 1);
}

static void h_avail_behind(struct rig *r, struct gq *g)
{
	put_le(ram(r, g->avail + 2, 2), 2, 0xffff);	/* -1: 65535 ahead */
}

static void h_nested_indirect(struct rig *r, struct gq *g)
{
	uint64_t t1 = BUF + 0x1000, t2 = BUF + 0x2000;

	set_desc_in(r, t2, 0, BUF, 16, 0, 0);
	set_desc_in(r, t1, 0, t2, 16, D_INDIRECT, 0);
	set_desc(r, g, 0, t1, 16, D_INDIRECT, 0);
	give(r, g, 0);
}

static void h_indirect_next(struct rig *r, struct gq *g)
{
	set_desc_in(r, BUF + 0x1000, 0, BUF, 16, 0, 0);
	set_desc(r, g, 0, BUF + 0x1000, 16, D_INDIRECT | D_NEXT, 1);
	set_desc(r, g, 1, BUF, 16, D_WRITE, 0);
	give(r, g, 0);
}

static void h_indirect_empty(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, BUF + 0x1000, 0, D_INDIRECT, 0);
	give(r, g, 0);
}

static void h_indirect_odd(struct rig *r, struct gq *g)
{
	set_desc_in(r, BUF + 0x1000, 0, BUF, 16, 0, 0);
	set_desc(r, g, 0, BUF + 0x1000, 24, D_INDIRECT, 0);
	give(r, g, 0);
}

static void h_indirect_past_ram(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, RAM - 16, 32, D_INDIRECT, 0);
	give(r, g, 0);
}

static void h_indirect_too_long(struct rig *r, struct gq *g)
{
	for (uint16_t i = 0; i <= VIRTIO_CHAIN_MAX; i++)
		set_desc_in(r, BUF + 0x10000, i, BUF, 1, D_NEXT,
			    (uint16_t)(i + 1));
	set_desc_in(r, BUF + 0x10000, VIRTIO_CHAIN_MAX, BUF, 1, 0, 0);
	set_desc(r, g, 0, BUF + 0x10000, (VIRTIO_CHAIN_MAX + 1) * 16,
		 D_INDIRECT, 0);
	give(r, g, 0);
}

/* A direct descriptor and then a full indirect table: 257 buffers. */
static void h_chain_over_max(struct rig *r, struct gq *g)
{
	for (uint16_t i = 0; i < VIRTIO_CHAIN_MAX; i++)
		set_desc_in(r, BUF + 0x10000, i, BUF, 1,
			    i + 1u < VIRTIO_CHAIN_MAX ? D_NEXT | D_WRITE
						     : D_WRITE,
			    (uint16_t)(i + 1));
	set_desc(r, g, 0, BUF, 1, D_NEXT, 1);
	set_desc(r, g, 1, BUF + 0x10000, VIRTIO_CHAIN_MAX * 16, D_INDIRECT,
		 0);
	give(r, g, 0);
}

static void h_indirect_unoffered(struct rig *r, struct gq *g)
{
	set_desc_in(r, BUF + 0x1000, 0, BUF, 16, 0, 0);
	set_desc(r, g, 0, BUF + 0x1000, 16, D_INDIRECT, 0);
	give(r, g, 0);
}

static void h_read_after_write(struct rig *r, struct gq *g)
{
	set_desc(r, g, 0, BUF, 16, D_WRITE | D_NEXT, 1);
	set_desc(r, g, 1, BUF + 16, 16, 0, 0);
	give(r, g, 0);
}

static void h_read_after_write_indirect(struct rig *r, struct gq *g)
{
	set_desc_in(r, BUF + 0x1000, 0, BUF, 16, D_WRITE | D_NEXT, 1);
	set_desc_in(r, BUF + 0x1000, 1, BUF + 16, 16, 0, 0);
	set_desc(r, g, 0, BUF + 0x1000, 32, D_INDIRECT, 0);
	give(r, g, 0);
}

static void h_write_then_indirect_read(struct rig *r, struct gq *g)
{
	set_desc_in(r, BUF + 0x1000, 0, BUF + 16, 16, 0, 0);
	set_desc(r, g, 0, BUF, 16, D_WRITE | D_NEXT, 1);
	set_desc(r, g, 1, BUF + 0x1000, 16, D_INDIRECT, 0);
	give(r, g, 0);
}

static void enable_bad(struct rig *r, struct gq *g)
{
	assert_false(queue_setup(r, g, 1));
}

static void h_enable_desc_past_ram(struct rig *r, struct gq *g)
{
	g->desc = RAM - 16 * QSIZE + 16;
	enable_bad(r, g);
}

static void h_enable_avail_past_ram(struct rig *r, struct gq *g)
{
	g->avail = RAM - 2 * QSIZE - 4;
	enable_bad(r, g);
}

static void h_enable_used_past_ram(struct rig *r, struct gq *g)
{
	g->used = RAM - 8 * QSIZE - 4;
	enable_bad(r, g);
}

static void h_enable_far(struct rig *r, struct gq *g)
{
	g->desc = 0xfffffffffffff000ull;
	enable_bad(r, g);
}

static void h_enable_size_12(struct rig *r, struct gq *g)
{
	g->size = 12;
	enable_bad(r, g);
}

static void h_enable_size_0(struct rig *r, struct gq *g)
{
	g->size = 0;
	enable_bad(r, g);
}

static void h_enable_size_512(struct rig *r, struct gq *g)
{
	g->size = 512;
	enable_bad(r, g);
}

static void h_enable_misaligned(struct rig *r, struct gq *g)
{
	g->desc += 8;
	enable_bad(r, g);
}

static void h_enable_misaligned_used(struct rig *r, struct gq *g)
{
	g->used += 2;
	enable_bad(r, g);
}

static const struct hostile hostile[] = {
	{ "descriptor past the end of RAM", 0, h_desc_past_ram, false },
	{ "descriptor wrapping around", 0, h_desc_wraps, false },
	{ "in buffer past the end of RAM", 0, h_in_past_ram, false },
	{ "in buffer of 4 GiB", 0, h_in_huge, false },
	{ "next loop", 0, h_loop, false },
	{ "next to itself", 0, h_self_loop, false },
	{ "chain longer than the queue", 0, h_longer_than_queue, false },
	{ "next out of the table", 0, h_next_out_of_table, false },
	{ "head out of the table", 0, h_head_out_of_table, false },
	{ "avail idx more than size ahead", 0, h_avail_ahead, false },
	{ "avail idx behind", 0, h_avail_behind, false },
	{ "indirect in indirect", 0, h_nested_indirect, false },
	{ "indirect with next", 0, h_indirect_next, false },
	{ "indirect of 0 bytes", 0, h_indirect_empty, false },
	{ "indirect of 24 bytes", 0, h_indirect_odd, false },
	{ "indirect past the end of RAM", 0, h_indirect_past_ram, false },
	{ "indirect table of 257", 0, h_indirect_too_long, false },
	{ "chain of 257", 0, h_chain_over_max, false },
	{ "indirect not negotiated",
	  F_ALL & ~(1ull << VIRTIO_F_INDIRECT_DESC), h_indirect_unoffered,
	  false },
	{ "readable after writable", 0, h_read_after_write, false },
	{ "readable after writable, indirect", 0,
	  h_read_after_write_indirect, false },
	{ "writable, then indirect readable", 0, h_write_then_indirect_read,
	  false },
	{ "enable: descriptors past RAM", 0, h_enable_desc_past_ram, true },
	{ "enable: avail ring past RAM", 0, h_enable_avail_past_ram, true },
	{ "enable: used ring past RAM", 0, h_enable_used_past_ram, true },
	{ "enable: descriptors far away", 0, h_enable_far, true },
	{ "enable: size 12", 0, h_enable_size_12, true },
	{ "enable: size 0", 0, h_enable_size_0, true },
	{ "enable: size 512", 0, h_enable_size_512, true },
	{ "enable: descriptors misaligned", 0, h_enable_misaligned, true },
	{ "enable: used ring misaligned", 0, h_enable_misaligned_used, true },
};

/*
 * Each hostile ring: NEEDS_RESET and a configuration interrupt, nothing
 * popped or used, no more notifications served; after a reset the device
 * serves a good request again.
 */
static void test_hostile(void **unused)
{
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const struct hostile *h = &hostile[i];
		struct rig *r = rig_new();
		struct tdev *d = r->d;
		struct gq g[2];

		probe(r);
		assert_int_equal(negotiate(r, h->features ? h->features
							  : F_ALL),
				 ACK | DRV | FOK);
		gq_init(r, &g[0], 0, QSIZE);
		gq_init(r, &g[1], 1, QSIZE);
		assert_true(queue_setup(r, &g[1], 2));
		if (h->at_enable)
			h->make(r, &g[0]);
		else
			assert_true(queue_setup(r, &g[0], 1));
		set_status(r, ACK | DRV | FOK | DOK);
		if (!h->at_enable)
			h->make(r, &g[0]);
		kick(r, 0);

		if (!(status(r) & NEEDS_RESET))
			fail_msg("%s: status 0x%x", h->name, status(r));
		assert_int_equal(d->n_reqs, 0);
		assert_int_equal(used_idx(r, &g[0]), 0);
		assert_int_equal(isr(r), 2);	/* a configuration change */
		if (h->at_enable) {
			assert_int_equal(d->notifies, 0);
			common_wr(r, C_Q_SELECT, 2, 0);
			assert_int_equal(common_rd(r, C_Q_ENABLE, 2), 0);
		} else {
			assert_int_equal(d->notifies, 1);
			assert_int_equal(d->last_pop, -EINVAL);
		}
		/* Broken: no queue is served, whatever the driver writes. */
		set_status(r, ACK | DRV | FOK | DOK);
		assert_int_equal(status(r),
				 ACK | DRV | FOK | DOK | NEEDS_RESET);
		set_desc(r, &g[1], 0, BUF, 16, D_WRITE, 0);
		give(r, &g[1], 0);
		kick(r, 1);
		kick(r, 0);
		assert_int_equal(d->n_reqs, 0);
		assert_int_equal(d->notifies, h->at_enable ? 0 : 1);
		assert_int_equal(isr(r), 0);	/* reported once */

		/* A reset, and the device works again. */
		set_status(r, 0);
		assert_int_equal(status(r), 0);
		assert_int_equal(negotiate(r, F_ALL), ACK | DRV | FOK);
		gq_init(r, &g[0], 0, QSIZE);
		assert_true(queue_setup(r, &g[0], 1));
		set_status(r, ACK | DRV | FOK | DOK);
		set_desc(r, &g[0], 0, BUF, 16, D_NEXT, 1);
		set_desc(r, &g[0], 1, BUF + 16, 16, D_WRITE, 0);
		give(r, &g[0], 0);
		kick(r, 0);
		if (d->n_reqs != 1)
			fail_msg("%s: %u requests after the reset", h->name,
				 d->n_reqs);
		assert_int_equal(d->reqs[0].n_out, 1);
		assert_int_equal(d->reqs[0].in_len, 16);
		assert_int_equal(used_idx(r, &g[0]), 1);
		assert_int_equal(status(r), ACK | DRV | FOK | DOK);
		rig_free(r);
	}
}

/* ---- save and restore ---------------------------------------------------- */

static void test_save_restore(void **unused)
{
	struct rig *r = rig_new(), *r2;
	struct snap_virtio s, s2, s3;
	struct snap_err err = { "" };
	struct gq g[2];
	uint8_t *buf;
	size_t len;

	bring_up(r, F_ALL, g);
	set_desc(r, &g[0], 0, BUF, 16, D_WRITE, 0);
	for (int i = 0; i < 3; i++)
		give(r, &g[0], 0);
	kick(r, 0);
	set_used_event(r, &g[0], 100);
	give(r, &g[0], 0);
	kick(r, 0);
	set_msix_control(r, PCI_MSIX_ENABLE);
	mask_vector(r, 0, false);
	assert_int_equal(pci_msix_send(r->d->v.pci, 1), 0);	/* pends */
	common_wr(r, C_MSIX, 2, 0);
	common_wr(r, C_DFSELECT, 4, 1);
	common_wr(r, C_GFSELECT, 4, 1);
	common_wr(r, C_Q_SELECT, 2, 1);
	virtio_config_changed(&r->d->v);

	virtio_save(&r->d->v, &s);
	assert_int_equal(s.pci.slot, 1);
	assert_int_equal(s.pci.msix_table_len, 48);
	assert_int_equal(s.pci.msix_pba_len, 1);
	assert_int_equal(s.pci.msix_pba[0], 0x02);
	assert_int_equal(s.device_features, F_ALL);
	assert_int_equal(s.driver_features, F_ALL);
	assert_int_equal(s.status, ACK | DRV | FOK | DOK);
	assert_int_equal(s.dfselect, 1);
	assert_int_equal(s.gfselect, 1);
	assert_int_equal(s.queue_select, 1);
	assert_int_equal(s.config_vector, 0);
	assert_int_equal(s.config_generation, 1);
	assert_int_equal(s.isr, 3);
	assert_int_equal(s.n_queues, 2);
	assert_int_equal(s.queues[0].size, QSIZE);
	assert_true(s.queues[0].ready);
	assert_int_equal(s.queues[0].vector, 1);
	assert_int_equal(s.queues[0].desc, g[0].desc);
	assert_int_equal(s.queues[0].avail, g[0].avail);
	assert_int_equal(s.queues[0].used, g[0].used);
	assert_int_equal(s.queues[0].last_avail, 4);
	assert_int_equal(s.queues[0].used_idx, 4);
	assert_int_equal(s.queues[0].signalled, 4);
	assert_int_equal(s.queues[1].vector, 2);

	/* Through the codec, into a fresh device on a fresh bus. */
	assert_int_equal(snap_virtio_transport_encode(&s, &buf, &len), 0);
	assert_int_equal(snap_virtio_transport_decode(buf, len, "test", &s2,
						      &err), 0);
	free(buf);
	assert_memory_equal(&s, &s2, sizeof(s));
	r2 = rig_new_on(r->mem);
	if (virtio_restore(&r2->d->v, &s2, &err))
		fail_msg("restore: %s", err.msg);
	virtio_save(&r2->d->v, &s3);
	assert_memory_equal(&s, &s3, sizeof(s));
	assert_int_equal(r2->d->resets, 1);	/* init only: no reset */
	assert_int_equal(r2->d->driver_oks, 0);

	/* It carries on where the first stopped: BAR0, queues, MSI-X. */
	r2->bar = r->bar;
	r2->common = r->common;
	r2->notify = r->notify;
	r2->notify_mult = r->notify_mult;
	r2->isr = r->isr;
	r2->msix_cap = r->msix_cap;
	assert_int_equal(status(r2), ACK | DRV | FOK | DOK);
	assert_int_equal(pba(r2), 0x02);
	assert_int_equal(isr(r2), 3);
	set_used_event(r2, &g[0], 4);
	give(r, &g[0], 0);
	kick(r2, 0);
	assert_int_equal(r2->d->n_reqs, 1);
	assert_int_equal(r2->d->reqs[0].head, 0);
	assert_int_equal(r->d->n_reqs, 4);
	assert_int_equal(used_idx(r2, &g[0]), 5);
	assert_int_equal(avail_event(r2, &g[0]), 5);
	assert_int_equal(isr(r2), 1);
	assert_int_equal(pba(r2), 0x02);	/* vector 1 still masked */
	mask_vector(r2, 1, false);
	assert_int_equal(pba(r2), 0);
	rig_free(r2);
	rig_free(r);
}

struct bad_restore {
	const char *msg;
	void (*mutate)(struct snap_virtio *s);
};

static void br_features(struct snap_virtio *s)
{
	s->driver_features |= 1ull << 30;
}

static void br_queues(struct snap_virtio *s) { s->n_queues = 3; }
static void br_one_queue(struct snap_virtio *s) { s->n_queues = 1; }
static void br_size(struct snap_virtio *s)
{
	s->queues[0].size = 512;
	s->queues[0].ready = false;
}

static void br_size12(struct snap_virtio *s) { s->queues[0].size = 12; }
static void br_used(struct snap_virtio *s) { s->queues[1].used = RAM - 8; }
static void br_desc(struct snap_virtio *s) { s->queues[1].desc = 1ull << 40; }
static void br_slot(struct snap_virtio *s) { s->pci.slot = 5; }
static void br_vendor(struct snap_virtio *s) { s->pci.config[0] ^= 1; }
static void br_bar_low(struct snap_virtio *s) { s->pci.config[PCI_BAR0] |= 8; }
static void br_msix(struct snap_virtio *s) { s->pci.msix_table_len = 32; }

static const struct bad_restore bad_restores[] = {
	{ "test: the driver took features 0x40000000 this build does not "
	  "offer", br_features },
	{ "test: 3 queues, 2 expected", br_queues },
	{ "test: 1 queues, 2 expected", br_one_queue },
	{ "test: queue 0: size 512 or rings outside RAM", br_size },
	{ "test: queue 0: size 12 or rings outside RAM", br_size12 },
	{ "test: queue 1: size 16 or rings outside RAM", br_used },
	{ "test: queue 1: size 16 or rings outside RAM", br_desc },
	{ "test: PCI slot 5, 1 expected", br_slot },
	{ "test: PCI configuration byte 0x0 is 0xf5, 0xf4 expected",
	  br_vendor },
	{ "test: PCI configuration byte 0x10 is 0x8, 0x0 expected",
	  br_bar_low },
	{ "test: 32 MSI-X table bytes, 48 expected", br_msix },
};

/* Refusals: one line, naming the device once, and nothing changed. */
static void test_restore_refusals(void **unused)
{
	struct rig *r = rig_new(), *r2 = rig_new_on(r->mem);
	struct snap_virtio s, before, after;
	struct gq g[2];

	bring_up(r, F_ALL, g);
	virtio_save(&r->d->v, &s);
	virtio_save(&r2->d->v, &before);
	for (size_t i = 0; i < sizeof(bad_restores) / sizeof(bad_restores[0]);
	     i++) {
		struct snap_err err = { "" };
		struct snap_virtio bad = s;

		bad_restores[i].mutate(&bad);
		assert_int_equal(virtio_restore(&r2->d->v, &bad, &err),
				 -EINVAL);
		if (strcmp(err.msg, bad_restores[i].msg))
			fail_msg("case %zu: \"%s\", \"%s\" expected", i,
				 err.msg, bad_restores[i].msg);
		virtio_save(&r2->d->v, &after);
		assert_memory_equal(&before, &after, sizeof(before));
	}
	/* A queue that is not ready may hold anything up to the size. */
	s.queues[1].ready = false;
	s.queues[1].desc = 1ull << 40;
	assert_int_equal(virtio_restore(&r2->d->v, &s, NULL), 0);
	rig_free(r2);
	rig_free(r);
}

/* ---- the devices' dirty log ---------------------------------------------- */

static bool bit(const uint64_t *b, uint64_t p)
{
	return (b[p / 64] >> (p % 64)) & 1;
}

static void test_dirty_log(void **unused)
{
	struct snap_err err = { "" };
	uint64_t bitmap[(RAM / 4096 + 63) / 64];
	struct mem *m;
	uint8_t *p;

	assert_int_equal(mem_create(&m, RAM, NULL, &err), 0);
	memset(bitmap, 0, sizeof(bitmap));
	mem_dirty_take(m, bitmap);
	for (size_t w = 0; w < sizeof(bitmap) / 8; w++)
		assert_int_equal(bitmap[w], 0);

	/* Two bytes across a page boundary, one byte, the last byte. */
	p = mem_ptr_write(m, 0x1fff, 2);
	assert_ptr_equal(p, mem_host(m) + 0x1fff);
	assert_non_null(mem_ptr_write(m, 0x40000, 1));
	assert_non_null(mem_ptr_write(m, 0x40fff, 1));	/* same page */
	assert_non_null(mem_ptr_write(m, RAM - 1, 1));
	assert_non_null(mem_ptr_write(m, 0x80000, 3 * 4096));
	/* What is not a write, or not in RAM, marks nothing. */
	assert_non_null(mem_ptr(m, 0x100000, 4096));
	assert_null(mem_ptr_write(m, RAM - 1, 2));
	assert_null(mem_ptr_write(m, RAM, 1));
	assert_null(mem_ptr_write(m, 0x3000, 0));
	assert_null(mem_ptr_write(m, UINT64_MAX, 2));

	bitmap[0] = 1ull << 63;	/* ORed in: what was there stays */
	mem_dirty_take(m, bitmap);
	for (uint64_t pg = 0; pg < RAM / 4096; pg++) {
		bool want = pg == 1 || pg == 2 || pg == 0x40 ||
			    pg == RAM / 4096 - 1 || pg == 63 ||
			    (pg >= 0x80 && pg < 0x83);

		if (bit(bitmap, pg) != want)
			fail_msg("page 0x%llx: %d", (unsigned long long)pg,
				 !want);
	}
	/* Taken means cleared. */
	memset(bitmap, 0, sizeof(bitmap));
	mem_dirty_take(m, bitmap);
	for (size_t w = 0; w < sizeof(bitmap) / 8; w++)
		assert_int_equal(bitmap[w], 0);
	mem_destroy(m);
}

/* Above the 32-bit hole, pages count by their offset in the backing. */
static void test_dirty_log_high(void **unused)
{
	const uint64_t size = MEM_HOLE_START + (8ull << 20);
	const uint64_t pages = size / 4096, hole = MEM_HOLE_START / 4096;
	struct snap_err err = { "" };
	uint64_t *bitmap = calloc((pages + 63) / 64, 8);
	struct mem *m;

	assert_non_null(bitmap);
	assert_int_equal(mem_create(&m, size, NULL, &err), 0);
	assert_non_null(mem_ptr_write(m, MEM_HIGH_START + 2 * 4096 + 5, 1));
	assert_non_null(mem_ptr_write(m, MEM_HOLE_START - 1, 1));
	assert_non_null(mem_ptr_write(m, MEM_HIGH_START + (8ull << 20) - 1,
				      1));
	assert_null(mem_ptr_write(m, MEM_HOLE_START, 1));
	assert_null(mem_ptr_write(m, MEM_HOLE_START - 1, 2));
	mem_dirty_take(m, bitmap);
	for (uint64_t pg = 0; pg < pages; pg++) {
		bool want = pg == hole + 2 || pg == hole - 1 ||
			    pg == pages - 1;

		if (bit(bitmap, pg) != want)
			fail_msg("page 0x%llx: %d", (unsigned long long)pg,
				 !want);
	}
	mem_destroy(m);
	free(bitmap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_queue_setup),
		cmocka_unit_test(test_chains),
		cmocka_unit_test(test_chain_limits),
		cmocka_unit_test(test_event_idx),
		cmocka_unit_test(test_no_event_idx),
		cmocka_unit_test(test_msix),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_save_restore),
		cmocka_unit_test(test_restore_refusals),
		cmocka_unit_test(test_dirty_log),
		cmocka_unit_test(test_dirty_log_high),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
