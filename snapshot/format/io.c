/* SPDX-License-Identifier: MIT */
#include "snapshot/format/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int posix_mkdir(void *ctx, const char *path, mode_t mode)
{
	return mkdir(path, mode) ? -errno : 0;
}

static int posix_open(void *ctx, const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags | O_CLOEXEC, mode);

	return fd < 0 ? -errno : fd;
}

static ssize_t posix_pwrite(void *ctx, int fd, const void *buf, size_t len,
			    off_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);

	return n < 0 ? -errno : n;
}

static int posix_ftruncate(void *ctx, int fd, off_t len)
{
	return ftruncate(fd, len) ? -errno : 0;
}

static int posix_fsync(void *ctx, int fd)
{
	return fsync(fd) ? -errno : 0;
}

static int posix_close(void *ctx, int fd)
{
	return close(fd) ? -errno : 0;
}

static int posix_rename_noreplace(void *ctx, const char *from, const char *to)
{
	struct stat st;

	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* A filesystem without RENAME_NOREPLACE: check, then rename. */
	if (lstat(to, &st) == 0)
		return -EEXIST;
	if (errno != ENOENT)
		return -errno;
	return rename(from, to) ? -errno : 0;
}

static int posix_unlink(void *ctx, const char *path)
{
	return unlink(path) ? -errno : 0;
}

static int posix_rmdir(void *ctx, const char *path)
{
	return rmdir(path) ? -errno : 0;
}

const struct snap_io snap_io_posix = {
	.mkdir = posix_mkdir,
	.open = posix_open,
	.pwrite = posix_pwrite,
	.ftruncate = posix_ftruncate,
	.fsync = posix_fsync,
	.close = posix_close,
	.rename_noreplace = posix_rename_noreplace,
	.unlink = posix_unlink,
	.rmdir = posix_rmdir,
};

int snap_io_read_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;	/* the file shrank under us */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int snap_io_write_all(const struct snap_io *io, int fd, const void *buf,
		      size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = io->pwrite(io->ctx, fd, p, len, (off_t)off);

		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int snap_io_fsync_path(const struct snap_io *io, const char *path)
{
	int fd, ret;

	fd = io->open(io->ctx, path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	ret = io->fsync(io->ctx, fd);
	io->close(io->ctx, fd);
	return ret;
}

int snap_read_file(const char *path, const char *label, size_t max,
		   uint8_t **bufp, size_t *lenp, struct snap_err *err)
{
	uint8_t *buf = NULL;
	struct stat st;
	size_t got = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return snap_err_set(err, -errno, "%s: %m", label);
	if (fstat(fd, &st)) {
		ret = snap_err_set(err, -errno, "%s: %m", label);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = snap_err_set(err, -EINVAL, "%s: not a regular file",
				   label);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		ret = snap_err_set(err, -EFBIG,
				   "%s: size %lld, at most %zu expected",
				   label, (long long)st.st_size, max);
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		ret = snap_err_set(err, -ENOMEM, "%s: out of memory", label);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = snap_err_set(err, -errno, "%s: %m", label);
			goto out;
		}
		if (n == 0)
			break;	/* shrank while reading: use what is there */
		got += (size_t)n;
	}
	*bufp = buf;
	*lenp = got;
	buf = NULL;
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}
