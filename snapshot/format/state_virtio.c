/* SPDX-License-Identifier: MIT */
/*
 * Payload codecs of the PCI and virtio devices (state_virtio.h). With
 * state.c, the only file that sees the protobuf-c state types.
 */
#include "snapshot/format/state_virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/state.pb-c.h"

#define FAIL(dev, ...) snap_err_set(err, -EINVAL, "state.bin: " dev ": " \
				    __VA_ARGS__)

static ProtobufCBinaryData bin(const void *p, size_t n)
{
	return (ProtobufCBinaryData){ .len = n, .data = (uint8_t *)p };
}

/* Pack any message into a new buffer. */
static int pack(const ProtobufCMessage *pb, uint8_t **bufp, size_t *lenp)
{
	size_t len = protobuf_c_message_get_packed_size(pb);
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(pb, buf);
	*bufp = buf;
	*lenp = len;
	return 0;
}

/* ---- the transport -------------------------------------------------------- */

/* The message for v, pointing into v and into the caller's arrays. */
static void transport_build(const struct snap_virtio *v,
			    Snapfs__State__VirtioTransport *t,
			    Snapfs__State__PciFunction *f,
			    Snapfs__State__VirtQueue *q,
			    Snapfs__State__VirtQueue **qp)
{
	snapfs__state__pci_function__init(f);
	f->slot = v->pci.slot;
	f->config = bin(v->pci.config, SNAP_PCI_CONFIG_SIZE);
	f->msix_table = bin(v->pci.msix_table, v->pci.msix_table_len);
	f->msix_pba = bin(v->pci.msix_pba, v->pci.msix_pba_len);
	snapfs__state__virtio_transport__init(t);
	t->pci = f;
	t->device_features = v->device_features;
	t->driver_features = v->driver_features;
	t->status = v->status;
	t->device_feature_select = v->dfselect;
	t->driver_feature_select = v->gfselect;
	t->queue_select = v->queue_select;
	t->config_msix_vector = v->config_vector;
	t->config_generation = v->config_generation;
	t->isr = v->isr;
	for (uint32_t i = 0; i < v->n_queues; i++) {
		const struct snap_virtq *s = &v->queues[i];

		snapfs__state__virt_queue__init(&q[i]);
		q[i].size = s->size;
		q[i].ready = s->ready;
		q[i].msix_vector = s->vector;
		q[i].desc = s->desc;
		q[i].avail = s->avail;
		q[i].used = s->used;
		q[i].last_avail = s->last_avail;
		q[i].used_idx = s->used_idx;
		q[i].signalled = s->signalled;
		qp[i] = &q[i];
	}
	t->n_queues = v->n_queues;
	t->queues = qp;
}

static int check16(const char *dev, const char *field, uint32_t v,
		   struct snap_err *err)
{
	if (v > UINT16_MAX)
		return snap_err_set(err, -EINVAL, "state.bin: %s: %s: %u, at "
				    "most 65535 expected", dev, field, v);
	return 0;
}

static int check8(const char *dev, const char *field, uint32_t v,
		  struct snap_err *err)
{
	if (v > UINT8_MAX)
		return snap_err_set(err, -EINVAL, "state.bin: %s: %s: %u, at "
				    "most 255 expected", dev, field, v);
	return 0;
}

static int transport_from(const Snapfs__State__VirtioTransport *t,
			  const char *dev, struct snap_virtio *v,
			  struct snap_err *err)
{
	const Snapfs__State__PciFunction *f = t->pci;
	int ret;

	memset(v, 0, sizeof(*v));
	if (!f)
		return snap_err_set(err, -EINVAL, "state.bin: %s: pci: missing",
				    dev);
	if (f->config.len != SNAP_PCI_CONFIG_SIZE)
		return snap_err_set(err, -EINVAL, "state.bin: %s: pci.config: "
				    "%zu bytes, %u expected", dev,
				    f->config.len, SNAP_PCI_CONFIG_SIZE);
	if (f->msix_table.len > sizeof(v->pci.msix_table) ||
	    f->msix_table.len % SNAP_MSIX_ENTRY_SIZE ||
	    f->msix_pba.len != (f->msix_table.len / SNAP_MSIX_ENTRY_SIZE +
				7) / 8)
		return snap_err_set(err, -EINVAL, "state.bin: %s: pci: MSI-X "
				    "table of %zu bytes with a PBA of %zu",
				    dev, f->msix_table.len, f->msix_pba.len);
	if (f->slot >= 32)
		return snap_err_set(err, -EINVAL, "state.bin: %s: pci.slot: "
				    "%u, at most 31 expected", dev, f->slot);
	v->pci.slot = f->slot;
	memcpy(v->pci.config, f->config.data, SNAP_PCI_CONFIG_SIZE);
	if (f->msix_table.len)
		memcpy(v->pci.msix_table, f->msix_table.data,
		       f->msix_table.len);
	if (f->msix_pba.len)
		memcpy(v->pci.msix_pba, f->msix_pba.data, f->msix_pba.len);
	v->pci.msix_table_len = (uint32_t)f->msix_table.len;
	v->pci.msix_pba_len = (uint32_t)f->msix_pba.len;
	if (t->n_queues > SNAP_VIRTQ_MAX)
		return snap_err_set(err, -EINVAL, "state.bin: %s: queues: %zu, "
				    "at most %u expected", dev, t->n_queues,
				    SNAP_VIRTQ_MAX);
	ret = check8(dev, "status", t->status, err);
	if (!ret)
		ret = check16(dev, "queue_select", t->queue_select, err);
	if (!ret)
		ret = check16(dev, "config_msix_vector",
			      t->config_msix_vector, err);
	if (!ret)
		ret = check8(dev, "config_generation", t->config_generation,
			     err);
	if (!ret)
		ret = check8(dev, "isr", t->isr, err);
	for (size_t i = 0; !ret && i < t->n_queues; i++) {
		const Snapfs__State__VirtQueue *q = t->queues[i];

		ret = check16(dev, "queue size", q->size, err);
		if (!ret)
			ret = check16(dev, "queue msix_vector", q->msix_vector,
				      err);
		if (!ret)
			ret = check16(dev, "queue last_avail", q->last_avail,
				      err);
		if (!ret)
			ret = check16(dev, "queue used_idx", q->used_idx, err);
		if (!ret)
			ret = check16(dev, "queue signalled", q->signalled,
				      err);
		if (ret)
			break;
		v->queues[i] = (struct snap_virtq){
			.size = q->size, .ready = q->ready,
			.vector = q->msix_vector, .desc = q->desc,
			.avail = q->avail, .used = q->used,
			.last_avail = q->last_avail, .used_idx = q->used_idx,
			.signalled = q->signalled,
		};
	}
	if (ret)
		return ret;
	v->n_queues = (uint32_t)t->n_queues;
	v->device_features = t->device_features;
	v->driver_features = t->driver_features;
	v->status = t->status;
	v->dfselect = t->device_feature_select;
	v->gfselect = t->driver_feature_select;
	v->queue_select = t->queue_select;
	v->config_vector = t->config_msix_vector;
	v->config_generation = t->config_generation;
	v->isr = t->isr;
	return 0;
}

int snap_virtio_transport_encode(const struct snap_virtio *v, uint8_t **buf,
				 size_t *len)
{
	Snapfs__State__VirtioTransport t;
	Snapfs__State__PciFunction f;
	Snapfs__State__VirtQueue q[SNAP_VIRTQ_MAX], *qp[SNAP_VIRTQ_MAX];

	if (v->n_queues > SNAP_VIRTQ_MAX)
		return -EINVAL;
	transport_build(v, &t, &f, q, qp);
	return pack(&t.base, buf, len);
}

int snap_virtio_transport_decode(const uint8_t *buf, size_t len,
				 const char *device, struct snap_virtio *v,
				 struct snap_err *err)
{
	Snapfs__State__VirtioTransport *t;
	int ret;

	t = snapfs__state__virtio_transport__unpack(NULL, len, buf);
	if (!t)
		return snap_err_set(err, -EBADMSG, "state.bin: %s: not a valid "
				    "transport", device);
	ret = transport_from(t, device, v, err);
	snapfs__state__virtio_transport__free_unpacked(t, NULL);
	return ret;
}

/* ---- the host bridge ------------------------------------------------------ */

int snap_pci_host_encode(uint32_t config_address, uint8_t **buf, size_t *len)
{
	Snapfs__State__PciHost pb = SNAPFS__STATE__PCI_HOST__INIT;

	pb.config_address = config_address;
	return pack(&pb.base, buf, len);
}

int snap_pci_host_decode(const uint8_t *buf, size_t len,
			 uint32_t *config_address, struct snap_err *err)
{
	Snapfs__State__PciHost *pb;

	pb = snapfs__state__pci_host__unpack(NULL, len, buf);
	if (!pb)
		return snap_err_set(err, -EBADMSG, "state.bin: pci: not a valid "
				    "payload");
	*config_address = pb->config_address;
	snapfs__state__pci_host__free_unpacked(pb, NULL);
	return 0;
}

/* ---- virtio-blk ------------------------------------------------------------ */

int snap_virtio_blk_encode(const struct snap_virtio_blk *b, uint32_t n,
			   uint8_t **buf, size_t *len)
{
	Snapfs__State__VirtioBlkSet set = SNAPFS__STATE__VIRTIO_BLK_SET__INIT;
	Snapfs__State__VirtioBlk blk[SNAP_BLK_MAX], *blkp[SNAP_BLK_MAX];
	Snapfs__State__VirtioTransport t[SNAP_BLK_MAX];
	Snapfs__State__PciFunction f[SNAP_BLK_MAX];
	Snapfs__State__VirtQueue q[SNAP_BLK_MAX][SNAP_VIRTQ_MAX];
	Snapfs__State__VirtQueue *qp[SNAP_BLK_MAX][SNAP_VIRTQ_MAX];

	if (n > SNAP_BLK_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (b[i].dev.n_queues > SNAP_VIRTQ_MAX)
			return -EINVAL;
		transport_build(&b[i].dev, &t[i], &f[i], q[i], qp[i]);
		snapfs__state__virtio_blk__init(&blk[i]);
		blk[i].transport = &t[i];
		blk[i].disk = b[i].disk;
		blk[i].capacity = b[i].capacity;
		blk[i].read_only = b[i].read_only;
		blkp[i] = &blk[i];
	}
	set.n_disks = n;
	set.disks = blkp;
	return pack(&set.base, buf, len);
}

int snap_virtio_blk_decode(const uint8_t *buf, size_t len,
			   struct snap_virtio_blk *b, uint32_t *n,
			   struct snap_err *err)
{
	Snapfs__State__VirtioBlkSet *set;
	int ret = 0;

	set = snapfs__state__virtio_blk_set__unpack(NULL, len, buf);
	if (!set)
		return snap_err_set(err, -EBADMSG, "state.bin: virtio-blk: not "
				    "a valid payload");
	if (set->n_disks > SNAP_BLK_MAX)
		ret = FAIL("virtio-blk", "%zu devices, at most %u expected",
			   set->n_disks, SNAP_BLK_MAX);
	for (size_t i = 0; !ret && i < set->n_disks; i++) {
		const Snapfs__State__VirtioBlk *d = set->disks[i];

		memset(&b[i], 0, sizeof(b[i]));
		if (!d->transport)
			ret = FAIL("virtio-blk", "device %zu: transport "
				   "missing", i);
		else
			ret = transport_from(d->transport, "virtio-blk",
					     &b[i].dev, err);
		if (!ret && d->disk >= SNAP_BLK_MAX)
			ret = FAIL("virtio-blk", "device %zu: disk %u, at most "
				   "%u expected", i, d->disk, SNAP_BLK_MAX - 1);
		if (ret)
			break;
		b[i].disk = d->disk;
		b[i].capacity = d->capacity;
		b[i].read_only = d->read_only;
	}
	if (!ret)
		*n = (uint32_t)set->n_disks;
	snapfs__state__virtio_blk_set__free_unpacked(set, NULL);
	return ret;
}

/* ---- virtio-rng -------------------------------------------------------------- */

int snap_virtio_rng_encode(const struct snap_virtio *v, uint8_t **buf,
			   size_t *len)
{
	Snapfs__State__VirtioRng rng = SNAPFS__STATE__VIRTIO_RNG__INIT;
	Snapfs__State__VirtioTransport t;
	Snapfs__State__PciFunction f;
	Snapfs__State__VirtQueue q[SNAP_VIRTQ_MAX], *qp[SNAP_VIRTQ_MAX];

	if (v->n_queues > SNAP_VIRTQ_MAX)
		return -EINVAL;
	transport_build(v, &t, &f, q, qp);
	rng.transport = &t;
	return pack(&rng.base, buf, len);
}

int snap_virtio_rng_decode(const uint8_t *buf, size_t len,
			   struct snap_virtio *v, struct snap_err *err)
{
	Snapfs__State__VirtioRng *rng;
	int ret;

	rng = snapfs__state__virtio_rng__unpack(NULL, len, buf);
	if (!rng)
		return snap_err_set(err, -EBADMSG, "state.bin: virtio-rng: not "
				    "a valid payload");
	if (!rng->transport)
		ret = FAIL("virtio-rng", "transport missing");
	else
		ret = transport_from(rng->transport, "virtio-rng", v, err);
	snapfs__state__virtio_rng__free_unpacked(rng, NULL);
	return ret;
}

/* ---- virtio-vsock ------------------------------------------------------------ */

int snap_virtio_vsock_encode(const struct snap_virtio_vsock *s,
			     uint8_t **buf, size_t *len)
{
	Snapfs__State__VirtioVsock vs = SNAPFS__STATE__VIRTIO_VSOCK__INIT;
	Snapfs__State__VirtioTransport t;
	Snapfs__State__PciFunction f;
	Snapfs__State__VirtQueue q[SNAP_VIRTQ_MAX], *qp[SNAP_VIRTQ_MAX];

	if (s->dev.n_queues > SNAP_VIRTQ_MAX)
		return -EINVAL;
	transport_build(&s->dev, &t, &f, q, qp);
	vs.transport = &t;
	vs.guest_cid = s->guest_cid;
	return pack(&vs.base, buf, len);
}

int snap_virtio_vsock_decode(const uint8_t *buf, size_t len,
			     struct snap_virtio_vsock *s,
			     struct snap_err *err)
{
	Snapfs__State__VirtioVsock *vs;
	int ret;

	vs = snapfs__state__virtio_vsock__unpack(NULL, len, buf);
	if (!vs)
		return snap_err_set(err, -EBADMSG, "state.bin: virtio-vsock: "
				    "not a valid payload");
	if (!vs->transport)
		ret = FAIL("virtio-vsock", "transport missing");
	else
		ret = transport_from(vs->transport, "virtio-vsock", &s->dev,
				     err);
	if (!ret && (vs->guest_cid < SNAP_VSOCK_CID_MIN ||
		     vs->guest_cid > SNAP_VSOCK_CID_MAX))
		ret = FAIL("virtio-vsock", "guest_cid %llu, 3 to %u expected",
			   (unsigned long long)vs->guest_cid,
			   SNAP_VSOCK_CID_MAX);
	if (!ret)
		s->guest_cid = vs->guest_cid;
	snapfs__state__virtio_vsock__free_unpacked(vs, NULL);
	return ret;
}
