/* SPDX-License-Identifier: MIT */
#include "snapshot/store/frame.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "snapshot/format/digest.h"
#include "snapshot/format/io.h"

static const uint8_t frame_magic[4] = { 'S', 'N', 'F', 'R' };

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int frame_encode(const void *payload, size_t len, uint8_t **out,
		 size_t *outlen)
{
	uint8_t *buf;

	if (len > FRAME_MAX)
		return -EFBIG;
	buf = malloc(FRAME_HDR + len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, frame_magic, 4);
	put_le32(buf + 4, (uint32_t)len);
	put_le32(buf + 8, ~(uint32_t)len);
	snap_sha256(payload, len, buf + 12);
	if (len)
		memcpy(buf + FRAME_HDR, payload, len);
	*out = buf;
	*outlen = FRAME_HDR + len;
	return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

int frame_each(const uint8_t *buf, size_t len, const char *label,
	       int (*fn)(void *arg, const uint8_t *p, size_t n), void *arg,
	       size_t *end, struct snap_err *err)
{
	size_t off = 0;
	int ret;

	while (off < len) {
		const uint8_t *h = buf + off;
		uint8_t digest[SNAP_DIGEST_LEN];
		uint32_t n;

		if (all_zero(h, len - off))
			break;	/* extended by a crash, never written */
		if (len - off < FRAME_HDR)
			break;	/* a header cut short */
		n = get_le32(h + 4);
		if (memcmp(h, frame_magic, 4) || n > FRAME_MAX ||
		    get_le32(h + 8) != ~n)
			return snap_err_set(err, -EBADMSG,
					    "%s: offset %zu: not a frame",
					    label, off);
		if (n > len - off - FRAME_HDR)
			break;	/* a payload cut short */
		snap_sha256(h + FRAME_HDR, n, digest);
		if (memcmp(digest, h + 12, SNAP_DIGEST_LEN))
			return snap_err_set(err, -EBADMSG,
					    "%s: offset %zu: frame digest "
					    "mismatch", label, off);
		ret = fn(arg, h + FRAME_HDR, n);
		if (ret)
			return ret;
		off += FRAME_HDR + n;
	}
	if (end)
		*end = off;
	return 0;
}

int frame_fsync_dir(const char *path)
{
	char *copy = strdup(path);
	int ret;

	if (!copy)
		return -ENOMEM;
	ret = snap_io_fsync_path(&snap_io_posix, dirname(copy));
	free(copy);
	return ret;
}

int frame_fsync_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

int frame_publish_bytes(const char *path, const void *buf, size_t n,
			unsigned flags, struct snap_err *err)
{
	char tmp[4096];
	uint32_t rnd;
	int fd, ret;

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		return snap_err_set(err, -errno, "%s: getrandom: %m", path);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%08x", path, rnd) >=
	    (int)sizeof(tmp))
		return snap_err_set(err, -ENAMETOOLONG, "%s: name too long",
				    path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return snap_err_set(err, -errno, "%s: %m", tmp);
	ret = snap_io_write_all(&snap_io_posix, fd, buf, n, 0);
	if (!ret && (flags & FRAME_DURABLE) && fsync(fd))
		ret = -errno;
	close(fd);
	if (ret) {
		snap_err_set(err, ret, "%s: %s", tmp, strerror(-ret));
		goto out_unlink;
	}
	if (flags & FRAME_NOREPLACE)
		ret = snap_io_posix.rename_noreplace(NULL, tmp, path);
	else
		ret = rename(tmp, path) ? -errno : 0;
	if (ret) {
		snap_err_set(err, ret, "%s: %s", path, strerror(-ret));
		goto out_unlink;
	}
	if (flags & FRAME_DURABLE)
		ret = frame_fsync_dir(path);
	if (ret)
		snap_err_set(err, ret, "%s: fsync of its directory: %s", path,
			     strerror(-ret));
	return ret;
out_unlink:
	unlink(tmp);
	return ret;
}

int frame_publish(const char *path, const void *payload, size_t len,
		  unsigned flags, struct snap_err *err)
{
	uint8_t *buf;
	size_t n;
	int ret;

	ret = frame_encode(payload, len, &buf, &n);
	if (ret)
		return snap_err_set(err, ret, "%s: %s", path, strerror(-ret));
	ret = frame_publish_bytes(path, buf, n, flags, err);
	free(buf);
	return ret;
}

struct one {
	uint8_t *p;
	size_t n;
	int count;
};

static int take_one(void *arg, const uint8_t *p, size_t n)
{
	struct one *o = arg;

	if (o->count++)
		return -EBADMSG;
	o->p = malloc(n ? n : 1);
	if (!o->p)
		return -ENOMEM;
	memcpy(o->p, p, n);
	o->n = n;
	return 0;
}

int frame_decode_one(const uint8_t *buf, size_t n, const char *label,
		     uint8_t **payload, size_t *len, struct snap_err *err)
{
	struct one o = { 0 };
	size_t end;
	int ret;

	ret = frame_each(buf, n, label, take_one, &o, &end, err);
	if (ret == -EBADMSG && o.count > 1)
		ret = snap_err_set(err, ret, "%s: more than one frame", label);
	else if (!ret && (o.count != 1 || end != n))
		ret = snap_err_set(err, -EBADMSG, "%s: %s", label,
				   o.count ? "bytes after its frame"
					   : "no whole frame");
	else if (ret == -ENOMEM)
		ret = snap_err_set(err, ret, "%s: out of memory", label);
	if (ret) {
		free(o.p);
		return ret;
	}
	*payload = o.p;
	*len = o.n;
	return 0;
}

int frame_read_one(const char *path, const char *label, uint8_t **payload,
		   size_t *len, struct snap_err *err)
{
	uint8_t *buf;
	size_t n;
	int ret;

	ret = snap_read_file(path, label, FRAME_HDR + FRAME_MAX, &buf, &n,
			     err);
	if (ret)
		return ret;
	ret = frame_decode_one(buf, n, label, payload, len, err);
	free(buf);
	return ret;
}
