/* SPDX-License-Identifier: MIT */
#ifndef SNAP_IO_H
#define SNAP_IO_H

/*
 * The file operations through which libsnap publishes a snapshot.
 *
 * snap_io_posix calls the system. Tests pass a table that fails a chosen
 * call to prove that a failed save never leaves a partial snapshot under its
 * final name. Every operation returns 0 (pwrite: bytes written, open: a file
 * descriptor) or a negative errno.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapshot/format/error.h"

struct snap_io {
	int (*mkdir)(void *ctx, const char *path, mode_t mode);
	int (*open)(void *ctx, const char *path, int flags, mode_t mode);
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len,
			  off_t off);
	int (*ftruncate)(void *ctx, int fd, off_t len);
	int (*fsync)(void *ctx, int fd);
	int (*close)(void *ctx, int fd);
	/* Rename that never replaces an existing target (-EEXIST). */
	int (*rename_noreplace)(void *ctx, const char *from, const char *to);
	int (*unlink)(void *ctx, const char *path);
	int (*rmdir)(void *ctx, const char *path);
	void *ctx;
};

extern const struct snap_io snap_io_posix;

/* pread len bytes at off, retrying short reads; -EIO at a premature end. */
int snap_io_read_all(int fd, void *buf, size_t len, uint64_t off);

/* pwrite all of buf at off, retrying short writes. */
int snap_io_write_all(const struct snap_io *io, int fd, const void *buf,
		      size_t len, uint64_t off);

/* Open path, fsync it, close it (a directory, after entries changed). */
int snap_io_fsync_path(const struct snap_io *io, const char *path);

/*
 * Read a whole regular file of at most max bytes into a new buffer.
 * Errors name the file as label ("state.bin: ...").
 */
int snap_read_file(const char *path, const char *label, size_t max,
		   uint8_t **buf, size_t *len, struct snap_err *err);

#endif
