/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng (--rng): one queue the driver fills with empty buffers, which
 * come back full of the host kernel's randomness (getrandom). A restored
 * clone draws new bytes from the host of its own, so its kernel can reseed
 * the pool it shares with its siblings (docs/snapvm.md, "Clones").
 *
 * Served on the notifying vCPU thread, to completion, at most 64 KiB a
 * request; nothing is in flight at a snapshot.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vmm/virtio/virtio.h"
#include "vmm/dev/dev.h"

#define RNG_MAX_REQUEST	(64u << 10)

struct rng {
	struct virtio_dev v;		/* first: ops get &v */
	struct virtq_req req;
};

/* Fill the request's buffers; the bytes written. */
static uint32_t fill(const struct virtq_req *r)
{
	uint64_t total = 0;

	for (unsigned int i = 0; i < r->n_in && total < RNG_MAX_REQUEST; i++) {
		uint8_t *p = r->in[i].iov_base;
		size_t want = r->in[i].iov_len;

		if (want > RNG_MAX_REQUEST - total)
			want = RNG_MAX_REQUEST - total;
		while (want) {
			ssize_t got = getrandom(p, want, 0);

			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				return (uint32_t)total;
			p += got;
			want -= (size_t)got;
			total += (uint64_t)got;
		}
	}
	return (uint32_t)total;
}

static void rng_notify(struct virtio_dev *v, unsigned int q)
{
	struct rng *r = (struct rng *)v;

	while (virtq_pop(v, q, &r->req) == 1)
		virtq_push(v, q, r->req.head, fill(&r->req));
	virtq_notify(v, q);
}

static const struct virtio_ops rng_virtio_ops = {
	.notify = rng_notify,
};

static void rng_destroy(void *state)
{
	struct rng *r = state;

	virtio_release(&r->v);
	free(r);
}

static int rng_create(const struct dev_host *host, void **state,
		      struct snap_err *err)
{
	struct rng *r;
	int ret;

	if (!host->cfg || !host->cfg->rng)
		return DEV_ABSENT;
	r = calloc(1, sizeof(*r));
	if (!r)
		return snap_err_set(err, -ENOMEM, "out of memory");
	r->v.name = "virtio-rng";
	r->v.ops = &rng_virtio_ops;
	r->v.type = VIRTIO_ID_RNG;
	r->v.n_queues = 1;
	ret = virtio_init(&r->v, host->pci, host->mem, err);
	if (ret) {
		free(r);
		return ret;
	}
	*state = r;
	return 0;
}

static int rng_save(void *state, uint8_t **buf, size_t *len)
{
	struct rng *r = state;
	struct snap_virtio s;

	virtio_save(&r->v, &s);
	return snap_virtio_rng_encode(&s, buf, len);
}

static int rng_restore(void *state, const uint8_t *buf, size_t len,
		       struct snap_err *err)
{
	struct rng *r = state;
	struct snap_virtio s;
	int ret = snap_virtio_rng_decode(buf, len, &s, err);

	return ret ? ret : virtio_restore(&r->v, &s, err);
}

const struct dev_ops dev_virtio_rng = {
	.name = "virtio-rng",
	.feature = SNAP_FEATURE_VIRTIO_RNG,
	.create = rng_create,
	.destroy = rng_destroy,
	.save = rng_save,
	.restore = rng_restore,
};
