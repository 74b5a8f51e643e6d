/* SPDX-License-Identifier: MIT */
/*
 * The modern virtio-pci transport and split virtqueues. See virtio.h.
 */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/mem.h"
#include "vmm/pci/pci.h"

#define VIRTIO_PCI_VENDOR	0x1af4u
#define VIRTIO_PCI_DEVICE_BASE	0x1040u

#define BAR_SIZE		0x8000u
#define BAR_COMMON		0x0000u
#define BAR_ISR			0x1000u
#define BAR_DEVICE		0x2000u
#define BAR_NOTIFY		0x3000u
#define BAR_MSIX_TABLE		0x4000u
#define BAR_MSIX_PBA		0x5000u
#define REGION_SIZE		0x1000u
#define NOTIFY_MULTIPLIER	4u

/* virtio_pci_cap.cfg_type */
#define CAP_COMMON		1
#define CAP_NOTIFY		2
#define CAP_ISR			3
#define CAP_DEVICE		4

/* Common configuration registers. */
#define COMMON_DFSELECT		0
#define COMMON_DF		4
#define COMMON_GFSELECT		8
#define COMMON_GF		12
#define COMMON_MSIX		16
#define COMMON_NUMQ		18
#define COMMON_STATUS		20
#define COMMON_CFGGEN		21
#define COMMON_Q_SELECT		22
#define COMMON_Q_SIZE		24
#define COMMON_Q_MSIX		26
#define COMMON_Q_ENABLE		28
#define COMMON_Q_NOFF		30
#define COMMON_Q_DESCLO		32
#define COMMON_Q_DESCHI		36
#define COMMON_Q_AVAILLO	40
#define COMMON_Q_AVAILHI	44
#define COMMON_Q_USEDLO		48
#define COMMON_Q_USEDHI		52
#define COMMON_LEN		56

/* Split ring layout. */
#define DESC_SIZE		16u
#define DESC_F_NEXT		1u
#define DESC_F_WRITE		2u
#define DESC_F_INDIRECT		4u
#define AVAIL_F_NO_INTERRUPT	1u
#define USED_F_NO_NOTIFY	1u

#define ISR_QUEUE		1u
#define ISR_CONFIG		2u

static uint16_t le16(const void *p)
{
	const uint8_t *b = p;

	return (uint16_t)(b[0] | b[1] << 8);
}

static uint32_t le32(const void *p)
{
	const uint8_t *b = p;

	return (uint32_t)le16(b) | (uint32_t)le16(b + 2) << 16;
}

static uint64_t le64(const void *p)
{
	const uint8_t *b = p;

	return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32;
}

static void put_le(uint8_t *data, unsigned int size, uint64_t v)
{
	for (unsigned int i = 0; i < size; i++)
		data[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *data, unsigned int size)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < size; i++)
		v |= (uint64_t)data[i] << (8 * i);
	return v;
}

bool virtio_has(const struct virtio_dev *v, unsigned int bit)
{
	return (v->driver_features >> bit) & 1;
}

/* ---- interrupts ------------------------------------------------------------ */

static void send_vector(struct virtio_dev *v, uint16_t vector, uint8_t why)
{
	v->isr |= why;
	if (vector != VIRTIO_NO_VECTOR)
		pci_msix_send(v->pci, vector);
}

void virtio_config_changed(struct virtio_dev *v)
{
	v->config_generation++;
	send_vector(v, v->config_vector, ISR_CONFIG);
}

/* The guest broke the rules: stop serving until it resets the device. */
static void broken(struct virtio_dev *v, unsigned int q, const char *why)
{
	if (v->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	fprintf(stderr, "snapvm: %s: queue %u: %s; the device needs a "
		"reset\n", v->name, q, why);
	v->status |= VIRTIO_STATUS_NEEDS_RESET;
	send_vector(v, v->config_vector, ISR_CONFIG);
}

static bool running(const struct virtio_dev *v, unsigned int q)
{
	return q < v->n_queues && v->vq[q].ready &&
	       (v->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(v->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* ---- queues ----------------------------------------------------------------- */

/* The ring pointers, checked when the queue was enabled. */
static uint8_t *avail_ring(struct virtio_dev *v, struct virtq *vq)
{
	return mem_ptr(v->mem, vq->avail, 6u + 2u * vq->size);
}

static uint8_t *used_ring(struct virtio_dev *v, struct virtq *vq)
{
	return mem_ptr_write(v->mem, vq->used, 6u + 8u * vq->size);
}

bool virtq_has_avail(struct virtio_dev *v, unsigned int q)
{
	uint8_t *avail;

	if (!running(v, q))
		return false;
	avail = avail_ring(v, &v->vq[q]);
	return avail && __atomic_load_n((uint16_t *)(avail + 2),
					__ATOMIC_ACQUIRE) !=
			v->vq[q].last_avail;
}

/* Append descriptor d (16 bytes of guest memory) to r. */
static int add_buffer(struct virtio_dev *v, struct virtq_req *r,
		      const uint8_t *d, bool *seen_in)
{
	uint64_t addr = le64(d);
	uint32_t len = le32(d + 8);
	uint16_t flags = le16(d + 12);
	void *p;

	if (r->n_in + r->n_out == VIRTIO_CHAIN_MAX)
		return -EINVAL;
	if (flags & DESC_F_WRITE) {
		p = len ? mem_ptr_write(v->mem, addr, len) : NULL;
		if (len && !p)
			return -EFAULT;
		r->in[r->n_in++] = (struct iovec){ p, len };
		r->in_len += len;
		*seen_in = true;
	} else {
		if (*seen_in)	/* a readable buffer after a writable one */
			return -EINVAL;
		p = len ? mem_ptr(v->mem, addr, len) : NULL;
		if (len && !p)
			return -EFAULT;
		r->out[r->n_out++] = (struct iovec){ p, len };
		r->out_len += len;
	}
	return 0;
}

/* Walk the chain from head in table (n descriptors), direct or indirect. */
static int walk(struct virtio_dev *v, struct virtq_req *r,
		const uint8_t *table, uint32_t n, uint16_t head, bool top,
		bool *seen_in)
{
	uint16_t i = head;

	for (uint32_t steps = 0;; steps++) {
		const uint8_t *d;
		uint16_t flags;
		int ret;

		if (i >= n || steps >= n)	/* out of the table, a loop */
			return -EINVAL;
		d = table + (size_t)i * DESC_SIZE;
		flags = le16(d + 12);
		if (flags & DESC_F_INDIRECT) {
			uint64_t addr = le64(d);
			uint32_t len = le32(d + 8);
			const uint8_t *sub;

			if (!top || !virtio_has(v, VIRTIO_F_INDIRECT_DESC) ||
			    (flags & DESC_F_NEXT) || !len ||
			    len % DESC_SIZE || len / DESC_SIZE > VIRTIO_CHAIN_MAX)
				return -EINVAL;
			sub = mem_ptr(v->mem, addr, len);
			if (!sub)
				return -EFAULT;
			return walk(v, r, sub, len / DESC_SIZE, 0, false,
				    seen_in);
		}
		ret = add_buffer(v, r, d, seen_in);
		if (ret)
			return ret;
		if (!(flags & DESC_F_NEXT))
			return 0;
		i = le16(d + 14);
	}
}

int virtq_pop(struct virtio_dev *v, unsigned int q, struct virtq_req *r)
{
	struct virtq *vq = &v->vq[q];
	const uint8_t *avail, *table;
	uint16_t idx, head;
	bool seen_in = false;
	int ret;

	if (!running(v, q))
		return 0;
	avail = avail_ring(v, vq);
	table = mem_ptr(v->mem, vq->desc, (uint64_t)vq->size * DESC_SIZE);
	if (!avail || !table) {
		broken(v, q, "ring outside RAM");
		return -EINVAL;
	}
	idx = __atomic_load_n((const uint16_t *)(avail + 2), __ATOMIC_ACQUIRE);
	if (idx == vq->last_avail)
		return 0;
	if ((uint16_t)(idx - vq->last_avail) > vq->size) {
		broken(v, q, "available index ran past the ring");
		return -EINVAL;
	}
	head = le16(avail + 4 + 2u * (vq->last_avail % vq->size));
	r->head = head;
	r->n_out = r->n_in = 0;
	r->in_len = r->out_len = 0;
	ret = walk(v, r, table, vq->size, head, true, &seen_in);
	if (ret) {
		broken(v, q, ret == -EFAULT ? "buffer outside RAM" :
		       "malformed descriptor chain");
		return -EINVAL;
	}
	vq->last_avail++;
	if (virtio_has(v, VIRTIO_F_EVENT_IDX)) {
		/* avail_event: notify us again once the driver passes it. */
		uint8_t *used = used_ring(v, vq);

		if (used)
			__atomic_store_n((uint16_t *)(used + 4 + 8u * vq->size),
					 vq->last_avail, __ATOMIC_RELEASE);
		/*
		 * avail_event must be visible before the caller's next read of
		 * the available index: a store may pass a later load, and then
		 * the driver reads the old avail_event while we read the old
		 * index, sees no need to notify, and the queue stalls for good.
		 */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	return 1;
}

void virtq_push(struct virtio_dev *v, unsigned int q, uint16_t head,
		uint32_t len)
{
	struct virtq *vq = &v->vq[q];
	uint8_t *used = used_ring(v, vq), *e;

	if (!used || !vq->ready)
		return;
	e = used + 4 + 8u * (vq->used_idx % vq->size);
	put_le(e, 4, head);
	put_le(e + 4, 4, len);
	vq->used_idx++;
	__atomic_store_n((uint16_t *)(used + 2), vq->used_idx,
			 __ATOMIC_RELEASE);
}

void virtq_notify(struct virtio_dev *v, unsigned int q)
{
	struct virtq *vq = &v->vq[q];
	const uint8_t *avail = avail_ring(v, vq);
	uint16_t old = vq->signalled, now = vq->used_idx;
	bool need;

	if (!avail || old == now)
		return;
	/* Our used index must be visible before we read the driver's wish. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (virtio_has(v, VIRTIO_F_EVENT_IDX)) {
		uint16_t event = le16(avail + 4 + 2u * vq->size);

		need = (uint16_t)(now - event - 1) < (uint16_t)(now - old);
	} else {
		need = !(le16(avail) & AVAIL_F_NO_INTERRUPT);
	}
	vq->signalled = now;
	if (need)
		send_vector(v, vq->vector, ISR_QUEUE);
}

static size_t iov_copy(const struct iovec *iov, unsigned int n, size_t offset,
		       void *buf, size_t len, bool to_iov)
{
	size_t done = 0;

	for (unsigned int i = 0; i < n && done < len; i++) {
		size_t take;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - offset;
		if (take > len - done)
			take = len - done;
		if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + offset,
			       (const uint8_t *)buf + done, take);
		else
			memcpy((uint8_t *)buf + done,
			       (const uint8_t *)iov[i].iov_base + offset, take);
		done += take;
		offset = 0;
	}
	return done;
}

size_t virtq_req_read(const struct virtq_req *r, size_t offset, void *buf,
		      size_t len)
{
	return iov_copy(r->out, r->n_out, offset, buf, len, false);
}

size_t virtq_req_write(const struct virtq_req *r, size_t offset,
		       const void *buf, size_t len)
{
	return iov_copy(r->in, r->n_in, offset, (void *)buf, len, true);
}

/* ---- the common configuration ---------------------------------------------- */

static void reset(struct virtio_dev *v)
{
	if (v->ops->reset)
		v->ops->reset(v);
	v->driver_features = 0;
	v->dfselect = v->gfselect = 0;
	v->queue_select = 0;
	v->config_vector = VIRTIO_NO_VECTOR;
	v->status = 0;
	v->isr = 0;
	for (unsigned int q = 0; q < VIRTIO_QUEUE_MAX; q++)
		v->vq[q] = (struct virtq){ .size = VIRTIO_QUEUE_SIZE,
					   .vector = VIRTIO_NO_VECTOR };
}

/* Can the queue's rings be used: a power-of-two size, rings in RAM? */
static bool rings_ok(struct virtio_dev *v, const struct virtq *vq)
{
	uint16_t n = vq->size;

	return n && n <= VIRTIO_QUEUE_SIZE && !(n & (n - 1)) &&
	       !(vq->desc & 15) && !(vq->avail & 1) && !(vq->used & 3) &&
	       mem_ptr(v->mem, vq->desc, (uint64_t)n * DESC_SIZE) &&
	       mem_ptr(v->mem, vq->avail, 6u + 2u * n) &&
	       mem_ptr(v->mem, vq->used, 6u + 8u * n);
}

static uint64_t common_read(struct virtio_dev *v, uint32_t off)
{
	struct virtq *vq = v->queue_select < v->n_queues ?
			   &v->vq[v->queue_select] : NULL;

	switch (off) {
	case COMMON_DFSELECT: return v->dfselect;
	case COMMON_DF:
		return v->dfselect < 2 ? (uint32_t)(v->features >>
						    (32 * v->dfselect)) : 0;
	case COMMON_GFSELECT: return v->gfselect;
	case COMMON_GF:
		return v->gfselect < 2 ? (uint32_t)(v->driver_features >>
						    (32 * v->gfselect)) : 0;
	case COMMON_MSIX: return v->config_vector;
	case COMMON_NUMQ: return v->n_queues;
	case COMMON_STATUS: return v->status;
	case COMMON_CFGGEN: return v->config_generation;
	case COMMON_Q_SELECT: return v->queue_select;
	}
	if (!vq)
		return 0;
	switch (off) {
	case COMMON_Q_SIZE: return vq->size;
	case COMMON_Q_MSIX: return vq->vector;
	case COMMON_Q_ENABLE: return vq->ready;
	case COMMON_Q_NOFF: return v->queue_select;
	case COMMON_Q_DESCLO: return (uint32_t)vq->desc;
	case COMMON_Q_DESCHI: return vq->desc >> 32;
	case COMMON_Q_AVAILLO: return (uint32_t)vq->avail;
	case COMMON_Q_AVAILHI: return vq->avail >> 32;
	case COMMON_Q_USEDLO: return (uint32_t)vq->used;
	case COMMON_Q_USEDHI: return vq->used >> 32;
	}
	return 0;
}

static void set_lo(uint64_t *r, uint64_t v)
{
	*r = (*r & ~0xffffffffull) | (uint32_t)v;
}

static void set_hi(uint64_t *r, uint64_t v)
{
	*r = (*r & 0xffffffffull) | (uint64_t)(uint32_t)v << 32;
}

static void set_status(struct virtio_dev *v, uint8_t status)
{
	uint8_t was = v->status;

	if (status == 0) {
		reset(v);
		return;
	}
	/* FEATURES_OK only sticks when the driver took what we offered. */
	if ((status & VIRTIO_STATUS_FEATURES_OK) &&
	    !(was & VIRTIO_STATUS_FEATURES_OK) &&
	    ((v->driver_features & ~v->features) ||
	     !virtio_has(v, VIRTIO_F_VERSION_1)))
		status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	v->status = (uint8_t)(status | (was & VIRTIO_STATUS_NEEDS_RESET));
	if ((status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(was & VIRTIO_STATUS_DRIVER_OK) && v->ops->driver_ok)
		v->ops->driver_ok(v);
}

/*
 * A vector the function does not have reads back as NO_VECTOR, which
 * tells the driver to try with fewer (virtio 1.2, 4.1.5.1.2).
 */
static uint16_t vector_or_none(const struct virtio_dev *v, uint64_t val)
{
	return val < (uint64_t)v->n_queues + 1 ? (uint16_t)val :
	       VIRTIO_NO_VECTOR;
}

static void common_write(struct virtio_dev *v, uint32_t off, uint64_t val)
{
	struct virtq *vq = v->queue_select < v->n_queues ?
			   &v->vq[v->queue_select] : NULL;
	bool live = v->status & VIRTIO_STATUS_FEATURES_OK;

	switch (off) {
	case COMMON_DFSELECT: v->dfselect = (uint32_t)val; return;
	case COMMON_GFSELECT: v->gfselect = (uint32_t)val; return;
	case COMMON_GF:
		if (!live && v->gfselect < 2) {
			uint64_t mask = 0xffffffffull << (32 * v->gfselect);

			v->driver_features = (v->driver_features & ~mask) |
					     ((val << (32 * v->gfselect)) &
					      mask);
		}
		return;
	case COMMON_MSIX: v->config_vector = vector_or_none(v, val); return;
	case COMMON_STATUS: set_status(v, (uint8_t)val); return;
	case COMMON_Q_SELECT: v->queue_select = (uint16_t)val; return;
	}
	if (!vq || vq->ready)	/* a running queue's setup is fixed */
		return;
	switch (off) {
	case COMMON_Q_SIZE: vq->size = (uint16_t)val; break;
	case COMMON_Q_MSIX: vq->vector = vector_or_none(v, val); break;
	case COMMON_Q_DESCLO: set_lo(&vq->desc, val); break;
	case COMMON_Q_DESCHI: set_hi(&vq->desc, val); break;
	case COMMON_Q_AVAILLO: set_lo(&vq->avail, val); break;
	case COMMON_Q_AVAILHI: set_hi(&vq->avail, val); break;
	case COMMON_Q_USEDLO: set_lo(&vq->used, val); break;
	case COMMON_Q_USEDHI: set_hi(&vq->used, val); break;
	case COMMON_Q_ENABLE:
		if (val == 1) {
			if (!rings_ok(v, vq)) {
				broken(v, v->queue_select, "bad size or ring "
				       "address at enable");
				return;
			}
			vq->ready = true;
			vq->last_avail = vq->used_idx = vq->signalled = 0;
		}
		break;
	}
}

/* A register access must be naturally aligned and within the register. */
static unsigned int reg_width(uint32_t off)
{
	if (off >= COMMON_Q_DESCLO && off < COMMON_LEN)
		return 4;
	if (off == COMMON_STATUS || off == COMMON_CFGGEN)
		return 1;
	if (off < COMMON_MSIX)
		return 4;
	return 2;
}

static void bar_access(void *opaque, uint64_t off, bool is_write,
		       uint8_t *data, unsigned int size)
{
	struct virtio_dev *v = opaque;
	uint32_t region = (uint32_t)(off / REGION_SIZE) * REGION_SIZE;
	uint32_t at = (uint32_t)(off - region);

	pthread_mutex_lock(&v->lock);
	if (!is_write)
		memset(data, 0, size);
	switch (region) {
	case BAR_COMMON:
		if (at >= COMMON_LEN)
			break;
		if (size == 8 && at >= COMMON_Q_DESCLO && !(at & 7)) {
			/* a 64-bit access to a queue address pair */
			if (is_write) {
				common_write(v, at, get_le(data, 4));
				common_write(v, at + 4, get_le(data + 4, 4));
			} else {
				put_le(data, 4, common_read(v, at));
				put_le(data + 4, 4, common_read(v, at + 4));
			}
		} else if (size == reg_width(at)) {
			if (is_write)
				common_write(v, at, get_le(data, size));
			else
				put_le(data, size, common_read(v, at));
		}
		break;
	case BAR_ISR:
		if (!is_write && at == 0) {
			data[0] = v->isr;	/* read to clear */
			v->isr = 0;
		}
		break;
	case BAR_DEVICE:
		if (at + size > v->config_len)
			break;
		if (is_write && v->ops->config_write)
			v->ops->config_write(v, at, data, size);
		else if (!is_write && v->ops->config_read)
			v->ops->config_read(v, at, data, size);
		break;
	case BAR_NOTIFY:
		if (is_write && at % NOTIFY_MULTIPLIER == 0 &&
		    at / NOTIFY_MULTIPLIER < v->n_queues) {
			unsigned int q = at / NOTIFY_MULTIPLIER;

			if (running(v, q))
				v->ops->notify(v, q);
		}
		break;
	}
	pthread_mutex_unlock(&v->lock);
}

/* ---- registration ------------------------------------------------------------ */

static int add_cap(struct virtio_dev *v, uint8_t type, uint32_t offset,
		   uint32_t len, bool notify)
{
	uint8_t cap[20] = { PCI_CAP_ID_VNDR, 0, notify ? 20 : 16, type, 0 };

	put_le(cap + 8, 4, offset);
	put_le(cap + 12, 4, len);
	if (notify)
		put_le(cap + 16, 4, NOTIFY_MULTIPLIER);
	return pci_add_cap(v->pci, cap, notify ? 20 : 16);
}

int virtio_init(struct virtio_dev *v, struct pci_bus *bus, struct mem *mem,
		struct snap_err *err)
{
	struct pci_func_desc d = {
		.name = v->name,
		.vendor = VIRTIO_PCI_VENDOR,
		.device = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + v->type),
		.subsys_vendor = VIRTIO_PCI_VENDOR,
		.subsys = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + v->type),
		.class_code = v->type == VIRTIO_ID_BLOCK ? 0x018000u :
			      0xff0000u,
		.revision = 1,			/* modern only */
		.bar_size = BAR_SIZE,
		.bar_fn = bar_access,
		.opaque = v,
		.msix_vectors = (uint16_t)(v->n_queues + 1),
		.msix_table = BAR_MSIX_TABLE,
		.msix_pba = BAR_MSIX_PBA,
	};
	int ret;

	if (!v->n_queues || v->n_queues > VIRTIO_QUEUE_MAX ||
	    v->config_len > REGION_SIZE)
		return snap_err_set(err, -EINVAL, "%s: %u queues, %u config "
				    "bytes", v->name, v->n_queues,
				    v->config_len);
	v->mem = mem;
	v->features |= 1ull << VIRTIO_F_VERSION_1 |
		       1ull << VIRTIO_F_EVENT_IDX |
		       1ull << VIRTIO_F_INDIRECT_DESC;
	pthread_mutex_init(&v->lock, NULL);
	reset(v);
	ret = pci_register(bus, &d, &v->pci, err);
	if (ret)
		return ret;
	if (add_cap(v, CAP_COMMON, BAR_COMMON, COMMON_LEN, false) < 0 ||
	    add_cap(v, CAP_NOTIFY, BAR_NOTIFY,
		    NOTIFY_MULTIPLIER * v->n_queues, true) < 0 ||
	    add_cap(v, CAP_ISR, BAR_ISR, 1, false) < 0 ||
	    (v->config_len &&
	     add_cap(v, CAP_DEVICE, BAR_DEVICE, v->config_len, false) < 0))
		return snap_err_set(err, -ENOSPC, "%s: no room for its PCI "
				    "capabilities", v->name);
	return 0;
}

void virtio_release(struct virtio_dev *v)
{
	pthread_mutex_destroy(&v->lock);
}

/* ---- save and restore --------------------------------------------------------- */

void virtio_save(struct virtio_dev *v, struct snap_virtio *s)
{
	memset(s, 0, sizeof(*s));
	pci_func_save(v->pci, &s->pci);
	pthread_mutex_lock(&v->lock);
	s->device_features = v->features;
	s->driver_features = v->driver_features;
	s->status = v->status;
	s->dfselect = v->dfselect;
	s->gfselect = v->gfselect;
	s->queue_select = v->queue_select;
	s->config_vector = v->config_vector;
	s->config_generation = v->config_generation;
	s->isr = v->isr;
	s->n_queues = v->n_queues;
	for (unsigned int q = 0; q < v->n_queues; q++) {
		const struct virtq *vq = &v->vq[q];

		s->queues[q] = (struct snap_virtq){
			.size = vq->size, .ready = vq->ready,
			.vector = vq->vector, .desc = vq->desc,
			.avail = vq->avail, .used = vq->used,
			.last_avail = vq->last_avail,
			.used_idx = vq->used_idx, .signalled = vq->signalled,
		};
	}
	pthread_mutex_unlock(&v->lock);
}

int virtio_restore(struct virtio_dev *v, const struct snap_virtio *s,
		   struct snap_err *err)
{
	int ret;

	if (s->driver_features & ~v->features)
		return snap_err_set(err, -EINVAL, "%s: the driver took "
				    "features 0x%llx this build does not "
				    "offer", v->name, (unsigned long long)
				    (s->driver_features & ~v->features));
	if (s->n_queues != v->n_queues)
		return snap_err_set(err, -EINVAL, "%s: %u queues, %u expected",
				    v->name, s->n_queues, v->n_queues);
	for (unsigned int q = 0; q < s->n_queues; q++) {
		const struct snap_virtq *sq = &s->queues[q];
		struct virtq vq = {
			.size = (uint16_t)sq->size, .ready = sq->ready,
			.desc = sq->desc, .avail = sq->avail, .used = sq->used,
		};

		if (sq->size > VIRTIO_QUEUE_SIZE ||
		    (sq->ready && !rings_ok(v, &vq)))
			return snap_err_set(err, -EINVAL, "%s: queue %u: size "
					    "%u or rings outside RAM", v->name,
					    q, sq->size);
	}
	ret = pci_func_restore(v->pci, &s->pci, err);	/* names v->name */
	if (ret)
		return ret;
	pthread_mutex_lock(&v->lock);
	v->driver_features = s->driver_features;
	v->status = (uint8_t)s->status;
	v->dfselect = s->dfselect;
	v->gfselect = s->gfselect;
	v->queue_select = (uint16_t)s->queue_select;
	v->config_vector = (uint16_t)s->config_vector;
	v->config_generation = (uint8_t)s->config_generation;
	v->isr = (uint8_t)s->isr;
	for (unsigned int q = 0; q < s->n_queues; q++) {
		const struct snap_virtq *sq = &s->queues[q];

		v->vq[q] = (struct virtq){
			.size = (uint16_t)sq->size, .ready = sq->ready,
			.vector = (uint16_t)sq->vector, .desc = sq->desc,
			.avail = sq->avail, .used = sq->used,
			.last_avail = (uint16_t)sq->last_avail,
			.used_idx = (uint16_t)sq->used_idx,
			.signalled = (uint16_t)sq->signalled,
		};
	}
	pthread_mutex_unlock(&v->lock);
	return 0;
}
