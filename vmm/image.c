/* SPDX-License-Identifier: MIT */
#include "vmm/image.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COPY_CHUNK	(1u << 20)	/* the read/write fallback's buffer */

static int write_all(int fd, const uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* [off, off + len) of src into dst at the same offset, through a buffer. */
static int copy_rw(int src, int dst, uint64_t off, uint64_t len)
{
	uint8_t *buf = malloc(COPY_CHUNK);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (len && !ret) {
		size_t want = len < COPY_CHUNK ? len : COPY_CHUNK;
		ssize_t n = pread(src, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;	/* src is shorter */
			break;
		}
		ret = write_all(dst, buf, (uint64_t)n, off);
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	free(buf);
	return ret;
}

/* copy_file_range cannot serve these files: fall back to read and write. */
static bool cfr_unsupported(int err)
{
	return err == EXDEV || err == EINVAL || err == EOPNOTSUPP ||
	       err == ENOSYS || err == EBADF;
}

static int copy_range(int src, int dst, uint64_t off, uint64_t len)
{
	while (len) {
		loff_t in = (loff_t)off, out = (loff_t)off;
		ssize_t n = copy_file_range(src, &in, dst, &out, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && cfr_unsupported(errno))
			return copy_rw(src, dst, off, len);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;		/* src is shorter than size */
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

int64_t image_copy_file(int src, int dst, uint64_t size)
{
	uint64_t off = 0, copied = 0;

	while (off < size) {
		off_t data = lseek(src, (off_t)off, SEEK_DATA), hole;
		int ret;

		if (data < 0 && errno == ENXIO)
			break;				/* only a hole left */
		if (data < 0)
			return -errno;
		if ((uint64_t)data >= size)
			break;
		hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if ((uint64_t)hole > size)
			hole = (off_t)size;
		ret = copy_range(src, dst, (uint64_t)data,
				 (uint64_t)(hole - data));
		if (ret)
			return ret;
		copied += (uint64_t)(hole - data);
		off = (uint64_t)hole;
	}
	return (int64_t)copied;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (unsigned int i = 0; i < IMAGE_PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Which pages a write takes: page i of ram, with its argument. */
typedef bool (*page_wanted)(const uint8_t *ram, uint64_t i, const void *arg);

/* Write each run of pages that wanted selects, at its own offset. */
static int64_t write_runs(const uint8_t *ram, uint64_t size, int dst,
			  page_wanted wanted, const void *arg)
{
	uint64_t pages = size / IMAGE_PAGE, written = 0, i = 0;

	while (i < pages) {
		uint64_t start;
		int ret;

		while (i < pages && !wanted(ram, i, arg))
			i++;
		start = i;
		while (i < pages && wanted(ram, i, arg))
			i++;
		if (i == start)
			break;
		ret = write_all(dst, ram + start * IMAGE_PAGE,
				(i - start) * IMAGE_PAGE, start * IMAGE_PAGE);
		if (ret)
			return ret;
		written += (i - start) * IMAGE_PAGE;
	}
	return (int64_t)written;
}

static bool page_nonzero(const uint8_t *ram, uint64_t i, const void *arg)
{
	return !page_is_zero(ram + i * IMAGE_PAGE);
}

static bool page_in_bitmap(const uint8_t *ram, uint64_t i, const void *arg)
{
	const uint64_t *bitmap = arg;

	return bitmap[i / 64] >> (i % 64) & 1;
}

int64_t image_write_nonzero(const uint8_t *ram, uint64_t size, int dst)
{
	return write_runs(ram, size, dst, page_nonzero, NULL);
}

int64_t image_write_pages(const uint8_t *ram, uint64_t size,
			  const uint64_t *bitmap, int dst)
{
	return write_runs(ram, size, dst, page_in_bitmap, bitmap);
}
