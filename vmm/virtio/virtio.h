/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_VIRTIO_H
#define SNAPVM_VIRTIO_H

/*
 * The modern virtio-pci transport (virtio 1.x, no legacy interface) and
 * split virtqueues with the event index, shared by every virtio device.
 *
 * A device embeds a struct virtio_dev, fills in its ops and features, and
 * calls virtio_init, which registers one PCI function (vendor 0x1af4,
 * device 0x1040 + type) with BAR0 laid out as:
 *
 *   0x0000 common configuration     0x3000 notifications, 4 bytes a queue
 *   0x1000 ISR status               0x4000 MSI-X table (a vector a queue,
 *   0x2000 device configuration            one for configuration changes)
 *                                   0x5000 MSI-X PBA
 *
 * Every access and every callback runs under the device's lock (v->lock),
 * which a device's own threads take too; ops are called with it held.
 * Guest memory is hostile: a descriptor outside RAM, a chain longer than
 * the queue or looping, an index beyond the queue's size marks the device
 * broken (DEVICE_NEEDS_RESET, a configuration interrupt) and it stops
 * serving until the guest resets it, as the spec asks; snapvm goes on.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "snapshot/format/error.h"
#include "snapshot/format/state_virtio.h"

struct mem;
struct pci_bus;
struct pci_func;

#define VIRTIO_QUEUE_MAX	SNAP_VIRTQ_MAX	/* queues of one device */
#define VIRTIO_QUEUE_SIZE	256u		/* the size each queue offers */
#define VIRTIO_CHAIN_MAX	VIRTIO_QUEUE_SIZE

/* Feature bits (the transport's; devices add their own). */
#define VIRTIO_F_INDIRECT_DESC	28
#define VIRTIO_F_EVENT_IDX	29
#define VIRTIO_F_VERSION_1	32

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE	0x01
#define VIRTIO_STATUS_DRIVER		0x02
#define VIRTIO_STATUS_DRIVER_OK		0x04
#define VIRTIO_STATUS_FEATURES_OK	0x08
#define VIRTIO_STATUS_NEEDS_RESET	0x40
#define VIRTIO_STATUS_FAILED		0x80

#define VIRTIO_NO_VECTOR	0xffffu

/* Device types (virtio 1.2, 5). */
#define VIRTIO_ID_BLOCK		2
#define VIRTIO_ID_RNG		4
#define VIRTIO_ID_VSOCK		19

struct virtq {
	uint16_t size;			/* chosen by the driver, <= offered */
	bool ready;
	uint16_t vector;		/* MSI-X vector or VIRTIO_NO_VECTOR */
	uint64_t desc, avail, used;	/* guest physical addresses */
	uint16_t last_avail;		/* next available entry to take */
	uint16_t used_idx;		/* next used entry to fill */
	uint16_t signalled;		/* used_idx at the last interrupt */
};

/*
 * One request: a descriptor chain taken from a queue, its driver-written
 * buffers (out) first, then the device-writable ones (in), each as host
 * memory. in[] is marked dirty for snapshots as it is mapped.
 */
struct virtq_req {
	uint16_t head;
	unsigned int n_out, n_in;
	struct iovec out[VIRTIO_CHAIN_MAX];
	struct iovec in[VIRTIO_CHAIN_MAX];
	uint64_t in_len, out_len;	/* total bytes */
};

struct virtio_dev;

struct virtio_ops {
	/* The driver notified queue q (DRIVER_OK set, queue ready). */
	void (*notify)(struct virtio_dev *v, unsigned int q);
	/* Device configuration space, offset and size within config_len. */
	void (*config_read)(struct virtio_dev *v, uint32_t offset,
			    uint8_t *data, unsigned int size);
	void (*config_write)(struct virtio_dev *v, uint32_t offset,
			     const uint8_t *data, unsigned int size);
	/* The driver reset the device (status 0); queues are cleared after. */
	void (*reset)(struct virtio_dev *v);
	/* DRIVER_OK was just set. */
	void (*driver_ok)(struct virtio_dev *v);
};

struct virtio_dev {
	pthread_mutex_t lock;
	const char *name;		/* "virtio-blk0": errors, state */
	const struct virtio_ops *ops;
	struct mem *mem;
	struct pci_func *pci;
	uint16_t type;			/* VIRTIO_ID_* */
	uint16_t n_queues;
	uint32_t config_len;		/* device configuration bytes */
	uint64_t features;		/* offered */
	/* Transport registers and queues: the saved state. */
	uint64_t driver_features;
	uint32_t dfselect, gfselect;
	uint16_t queue_select;
	uint16_t config_vector;
	uint8_t status;
	uint8_t config_generation;
	uint8_t isr;
	struct virtq vq[VIRTIO_QUEUE_MAX];
};

/*
 * Register v (its name, ops, type, n_queues, config_len and features set;
 * VERSION_1 and EVENT_IDX are added) on bus as a new PCI function.
 */
int virtio_init(struct virtio_dev *v, struct pci_bus *bus, struct mem *mem,
		struct snap_err *err);
void virtio_release(struct virtio_dev *v);

/* Has the driver accepted feature bit? */
bool virtio_has(const struct virtio_dev *v, unsigned int bit);

/*
 * Take the next available request of queue q into r: 1 when there was
 * one, 0 when the queue is empty or not running, -EINVAL when the chain
 * is malformed (the device is then marked broken).
 */
int virtq_pop(struct virtio_dev *v, unsigned int q, struct virtq_req *r);

/* Return request head with len bytes written into its in buffers. */
void virtq_push(struct virtio_dev *v, unsigned int q, uint16_t head,
		uint32_t len);

/*
 * Interrupt the driver for queue q if it wants one (the event index or
 * NO_INTERRUPT flag). Call after a batch of virtq_push.
 */
void virtq_notify(struct virtio_dev *v, unsigned int q);

/* Is there a request waiting on q (for devices that poll)? */
bool virtq_has_avail(struct virtio_dev *v, unsigned int q);

/* Tell the driver its device configuration changed. */
void virtio_config_changed(struct virtio_dev *v);

/*
 * Copy between a request's buffers and flat memory: bytes out of the out
 * buffers from offset, or into the in buffers at offset. Return the count
 * copied (less at the end of the buffers).
 */
size_t virtq_req_read(const struct virtq_req *r, size_t offset, void *buf,
		      size_t len);
size_t virtq_req_write(const struct virtq_req *r, size_t offset,
		       const void *buf, size_t len);

/*
 * Save the transport (PCI function, registers, queues) into s, and put it
 * back, checking it against this device: the features the driver took
 * must be offered here, queue sizes and rings must be valid. One line and
 * -EINVAL when they are not. Under v->lock (they take it).
 */
void virtio_save(struct virtio_dev *v, struct snap_virtio *s);
int virtio_restore(struct virtio_dev *v, const struct snap_virtio *s,
		   struct snap_err *err);

#endif
