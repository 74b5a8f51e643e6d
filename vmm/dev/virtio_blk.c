/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk: each --disk a PCI function with one request queue over a raw
 * image file.
 *
 * Requests are served on the vCPU thread that notifies, to completion, in
 * order: when the vCPUs are paused nothing is in flight, so a snapshot
 * needs no request list, and the disk file holds every write the guest
 * was told had completed. The guest gets a write-back cache (FLUSH): a
 * flush is an fdatasync of the file, so what the guest fsync'ed survives
 * a host crash too; Linux turns FUA into a flush after the write.
 *
 * At a snapshot each disk is copied into the snapshot directory (capture)
 * with copy_file_range: in a snapfs mount that shares the file's chunks,
 * on a local filesystem it shares extents where it can. The manifest
 * names the copy with its size and digest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/image.h"
#include "vmm/virtio/virtio.h"
#include "vmm/dev/dev.h"
#include "snapshot/format/snapdir.h"

#define BLK_SECTOR		512u
#define BLK_F_SEG_MAX		2
#define BLK_F_RO		5
#define BLK_F_BLK_SIZE		6
#define BLK_F_FLUSH		9

#define BLK_T_IN		0
#define BLK_T_OUT		1
#define BLK_T_FLUSH		4
#define BLK_T_GET_ID		8

#define BLK_S_OK		0
#define BLK_S_IOERR		1
#define BLK_S_UNSUPP		2

#define BLK_ID_BYTES		20
#define BLK_CONFIG_LEN		24	/* capacity, size_max, seg_max, geometry,
					   blk_size */
#define BLK_SEG_MAX		(VIRTIO_CHAIN_MAX - 2)

struct blk_disk {
	struct virtio_dev v;		/* first: ops get &v */
	char name[24];			/* "virtio-blk0" */
	unsigned int index;		/* in the manifest's disks */
	int fd;
	uint64_t size;			/* bytes */
	bool read_only;
	struct virtq_req req;
};

struct blk {
	struct blk_disk *disks[SNAP_MAX_DISKS];
	unsigned int n;
};

/* ---- requests ---------------------------------------------------------------- */

/* Data buffers of r: out or in buffers without header and status byte. */
static void data_iov(const struct virtq_req *r, bool write, struct iovec *iov,
		    unsigned int *n, uint64_t *len)
{
	const struct iovec *src = write ? r->out : r->in;
	unsigned int count = write ? r->n_out : r->n_in;
	uint64_t skip = write ? 16 : 0, keep;

	keep = (write ? r->out_len : r->in_len - 1) - skip;
	*n = 0;
	*len = keep;
	for (unsigned int i = 0; i < count && keep; i++) {
		uint64_t base = 0, take = src[i].iov_len;

		if (skip >= take) {
			skip -= take;
			continue;
		}
		base = skip;
		take -= skip;
		skip = 0;
		if (take > keep)
			take = keep;
		iov[(*n)++] = (struct iovec){
			(uint8_t *)src[i].iov_base + base, take };
		keep -= take;
	}
}

/* Move len bytes at off between the file and iov, all or an error. */
static int blk_rw(struct blk_disk *d, bool write, struct iovec *iov,
		  unsigned int n, uint64_t off, uint64_t len)
{
	while (len) {
		ssize_t done = write ? pwritev(d->fd, iov, (int)n, (off_t)off) :
				       preadv(d->fd, iov, (int)n, (off_t)off);

		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return done < 0 ? -errno : -EIO;
		off += (uint64_t)done;
		len -= (uint64_t)done;
		while (n && (size_t)done >= iov->iov_len) {
			done -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= (size_t)done;
		}
	}
	return 0;
}

/* Serve one request; the byte count written into its in buffers. */
static uint32_t serve(struct blk_disk *d, const struct virtq_req *r)
{
	struct iovec iov[VIRTIO_CHAIN_MAX];
	uint8_t hdr[16], status = BLK_S_OK;
	uint64_t sector, len, off;
	uint32_t type, written = 0;
	unsigned int n;

	if (virtq_req_read(r, 0, hdr, sizeof(hdr)) != sizeof(hdr) ||
	    r->in_len == 0)
		return 0;	/* no room for a status: nothing to answer */
	type = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 |
	       (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	sector = 0;
	for (int i = 7; i >= 0; i--)
		sector = sector << 8 | hdr[8 + i];
	switch (type) {
	case BLK_T_IN:
	case BLK_T_OUT:
		data_iov(r, type == BLK_T_OUT, iov, &n, &len);
		if (type == BLK_T_OUT && d->read_only) {
			status = BLK_S_IOERR;
			break;
		}
		if (len % BLK_SECTOR || sector > d->size / BLK_SECTOR ||
		    len > d->size - sector * BLK_SECTOR) {
			status = BLK_S_IOERR;
			break;
		}
		off = sector * BLK_SECTOR;
		if (blk_rw(d, type == BLK_T_OUT, iov, n, off, len))
			status = BLK_S_IOERR;
		else if (type == BLK_T_IN)
			written = (uint32_t)len;
		break;
	case BLK_T_FLUSH:
		if (!d->read_only && fdatasync(d->fd))
			status = BLK_S_IOERR;
		break;
	case BLK_T_GET_ID: {
		char id[BLK_ID_BYTES + 1];

		snprintf(id, sizeof(id), "snapvm-disk%u", d->index);
		written = (uint32_t)virtq_req_write(r, 0, id, BLK_ID_BYTES);
		break;
	}
	default:
		status = BLK_S_UNSUPP;
		break;
	}
	virtq_req_write(r, r->in_len - 1, &status, 1);
	return written + 1;
}

static void blk_notify(struct virtio_dev *v, unsigned int q)
{
	struct blk_disk *d = (struct blk_disk *)v;

	while (virtq_pop(v, q, &d->req) == 1)
		virtq_push(v, q, d->req.head, serve(d, &d->req));
	virtq_notify(v, q);
}

static void put_le(uint8_t *p, unsigned int n, uint64_t v)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void blk_config_read(struct virtio_dev *v, uint32_t offset,
			    uint8_t *data, unsigned int size)
{
	struct blk_disk *d = (struct blk_disk *)v;
	uint8_t cfg[BLK_CONFIG_LEN] = { 0 };

	put_le(cfg, 8, d->size / BLK_SECTOR);		/* capacity */
	put_le(cfg + 12, 4, BLK_SEG_MAX);		/* seg_max */
	put_le(cfg + 20, 4, BLK_SECTOR);		/* blk_size */
	memcpy(data, cfg + offset, size);
}

static const struct virtio_ops blk_virtio_ops = {
	.notify = blk_notify,
	.config_read = blk_config_read,
};

/* ---- the device ---------------------------------------------------------------- */

static void disk_free(struct blk_disk *d)
{
	if (!d)
		return;
	if (d->fd >= 0)
		close(d->fd);
	virtio_release(&d->v);
	free(d);
}

static int disk_open(struct blk_disk *d, const struct dev_disk *cfg,
		     struct snap_err *err)
{
	struct stat st;

	d->fd = open(cfg->path, (cfg->read_only ? O_RDONLY : O_RDWR) |
		     O_CLOEXEC);
	if (d->fd < 0)
		return snap_err_set(err, -errno, "--disk %s: %m", cfg->path);
	if (fstat(d->fd, &st))
		return snap_err_set(err, -errno, "--disk %s: %m", cfg->path);
	if (!S_ISREG(st.st_mode))
		return snap_err_set(err, -EINVAL, "--disk %s: not a regular "
				    "file", cfg->path);
	if (st.st_size == 0 || st.st_size % BLK_SECTOR ||
	    (uint64_t)st.st_size > SNAP_DISK_MAX)
		return snap_err_set(err, -EINVAL, "--disk %s: %lld bytes, a "
				    "multiple of 512 up to 16 TiB expected",
				    cfg->path, (long long)st.st_size);
	d->size = (uint64_t)st.st_size;
	d->read_only = cfg->read_only;
	return 0;
}

static void blk_destroy(void *state)
{
	struct blk *b = state;

	for (unsigned int i = 0; i < b->n; i++)
		disk_free(b->disks[i]);
	free(b);
}

static int blk_create(const struct dev_host *host, void **state,
		      struct snap_err *err)
{
	const struct dev_config *cfg = host->cfg;
	struct blk *b;
	int ret = 0;

	if (!cfg || !cfg->n_disks)
		return DEV_ABSENT;
	b = calloc(1, sizeof(*b));
	if (!b)
		return snap_err_set(err, -ENOMEM, "out of memory");
	for (; b->n < cfg->n_disks; b->n++) {
		struct blk_disk *d = calloc(1, sizeof(*d));

		if (!d) {
			ret = snap_err_set(err, -ENOMEM, "out of memory");
			break;
		}
		d->fd = -1;
		d->index = b->n;
		snprintf(d->name, sizeof(d->name), "virtio-blk%u", b->n);
		d->v.name = d->name;
		d->v.ops = &blk_virtio_ops;
		d->v.type = VIRTIO_ID_BLOCK;
		d->v.n_queues = 1;
		d->v.config_len = BLK_CONFIG_LEN;
		ret = disk_open(d, &cfg->disks[b->n], err);
		d->v.features = 1ull << BLK_F_SEG_MAX | 1ull << BLK_F_BLK_SIZE |
				1ull << BLK_F_FLUSH |
				(d->read_only ? 1ull << BLK_F_RO : 0);
		if (!ret)
			ret = virtio_init(&d->v, host->pci, host->mem, err);
		if (ret) {
			disk_free(d);
			break;
		}
		b->disks[b->n] = d;
	}
	if (ret) {
		blk_destroy(b);
		return ret;
	}
	*state = b;
	return 0;
}

static int blk_save(void *state, uint8_t **buf, size_t *len)
{
	struct blk *b = state;
	struct snap_virtio_blk *s = calloc(b->n, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	for (unsigned int i = 0; i < b->n; i++) {
		virtio_save(&b->disks[i]->v, &s[i].dev);
		s[i].disk = b->disks[i]->index;
		s[i].capacity = b->disks[i]->size / BLK_SECTOR;
		s[i].read_only = b->disks[i]->read_only;
	}
	ret = snap_virtio_blk_encode(s, b->n, buf, len);
	free(s);
	return ret;
}

static int blk_restore(void *state, const uint8_t *buf, size_t len,
		       struct snap_err *err)
{
	struct blk *b = state;
	struct snap_virtio_blk *s = calloc(SNAP_BLK_MAX, sizeof(*s));
	uint32_t n;
	int ret;

	if (!s)
		return snap_err_set(err, -ENOMEM, "out of memory");
	ret = snap_virtio_blk_decode(buf, len, s, &n, err);
	if (!ret && n != b->n)
		ret = snap_err_set(err, -EINVAL, "state.bin: virtio-blk: %u "
				   "disks, the manifest has %u", n, b->n);
	for (unsigned int i = 0; !ret && i < n; i++) {
		struct blk_disk *d = b->disks[i];

		if (s[i].disk != d->index ||
		    s[i].capacity != d->size / BLK_SECTOR ||
		    s[i].read_only != d->read_only)
			ret = snap_err_set(err, -EINVAL, "state.bin: %s: disk "
					   "%u of %llu sectors%s, but disk %u "
					   "has %llu%s", d->name, s[i].disk,
					   (unsigned long long)s[i].capacity,
					   s[i].read_only ? " (read-only)" : "",
					   d->index, (unsigned long long)
					   (d->size / BLK_SECTOR),
					   d->read_only ? " (read-only)" : "");
		else
			ret = virtio_restore(&d->v, &s[i].dev, err);
	}
	free(s);
	return ret;
}

/* Copy each disk into the snapshot being written (vCPUs paused). */
static int blk_capture(void *state, struct snap_writer *w,
		       struct snap_manifest *m, struct snap_err *err)
{
	struct blk *b = state;

	for (unsigned int i = 0; i < b->n; i++) {
		struct blk_disk *d = b->disks[i];
		struct snap_disk *md = &m->disks[i];
		int64_t copied;
		int fd, ret;

		snprintf(md->file, sizeof(md->file), "disk%u.img", i);
		md->size = d->size;
		md->read_only = d->read_only;
		ret = snap_writer_disk(w, md->file, &fd, err);
		if (ret)
			return ret;
		if (ftruncate(fd, (off_t)d->size))
			return snap_err_set(err, -errno, "%s: cannot size to "
					    "%llu bytes: %m", md->file,
					    (unsigned long long)d->size);
		copied = image_copy_file(d->fd, fd, d->size);
		if (copied < 0)
			return snap_err_set(err, (int)copied, "%s: copying %s: "
					    "%s", md->file, d->name,
					    strerror((int)-copied));
	}
	m->n_disks = b->n;
	return 0;
}

const struct dev_ops dev_virtio_blk = {
	.name = "virtio-blk",
	.feature = SNAP_FEATURE_VIRTIO_BLK,
	.create = blk_create,
	.destroy = blk_destroy,
	.save = blk_save,
	.restore = blk_restore,
	.capture = blk_capture,
};
