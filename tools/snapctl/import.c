/* SPDX-License-Identifier: MIT */
/*
 * snapctl import DIR STORE NAME: a snapshot directory into a memory store.
 *
 * DIR is checked first (every digest, memory.bin's too when the manifest
 * records it). The snapshot is then built under a hidden temporary name,
 * ".NAME.import-XXXXXXXX": per file an image of its size, filled in large
 * blocks (all-zero chunks skipped), synced, closed and linked; memory.bin
 * first and the manifest last, as a snapshot directory is written.
 * Renaming the temporary to NAME, never replacing one, publishes it whole.
 * A failure or a signal removes the temporary; its images are gc's to
 * free.
 */
#include "snapshot/format/io.h"
#include "tools/snapctl/snapctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/format/snapdir.h"

#define TMP_SUFFIX_LEN	(sizeof(".import-") - 1 + 8)

struct import {
	const struct snapctl_cmd *cmd;
	const char *dir, *store, *name;
	struct snap_store *s;
	char tmp[SNAP_STORE_NAME_MAX + 1];	/* the hidden name filled */
	bool tmp_made;
	bool linked[TRANSFER_NFILES];
	int fds[TRANSFER_NFILES];
	uint64_t sizes[TRANSFER_NFILES];
	uint8_t *buf;			/* TRANSFER_BLOCK bytes */
	struct progress progress;
	struct snap_err err;
};

/* Open DIR's files and take their sizes. */
static int open_files(struct import *im)
{
	char path[4096];
	struct stat st;

	for (size_t i = 0; i < TRANSFER_NFILES; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", im->dir,
			     transfer_files[i]) >= (int)sizeof(path))
			return snap_err_set(&im->err, -ENAMETOOLONG, "%s: path "
					    "too long", transfer_files[i]);
		im->fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (im->fds[i] < 0 || fstat(im->fds[i], &st))
			return snap_err_set(&im->err, -errno, "%s: %s",
					    transfer_files[i], strerror(errno));
		if (!S_ISREG(st.st_mode))
			return snap_err_set(&im->err, -EINVAL, "%s: not a "
					    "regular file", transfer_files[i]);
		im->sizes[i] = (uint64_t)st.st_size;
	}
	return 0;
}

/* The hidden name ".NAME.import-XXXXXXXX", NAME cut to fit. */
static void tmp_name(struct import *im)
{
	int keep = (int)(SNAP_STORE_NAME_MAX - 1 - TMP_SUFFIX_LEN);
	uint32_t rnd;

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)getpid() ^ (uint32_t)rand();
	snprintf(im->tmp, sizeof(im->tmp), ".%.*s.import-%08x", keep,
		 im->name, rnd);
}

static int make_tmp(struct import *im)
{
	int ret;

	for (int tries = 0; tries < 8; tries++) {
		tmp_name(im);
		ret = snap_store_mkdir(im->s, im->tmp, &im->err);
		if (ret != -EEXIST)
			break;
	}
	if (ret)
		return ret;
	im->tmp_made = true;
	return 0;
}

/*
 * Write the non-zero chunks of buf (len bytes of file at off) into img,
 * each run of them in one call. Zero chunks are skipped: a new image
 * reads zero wherever nothing was written.
 */
static int write_runs(struct import *im, struct snap_image *img,
		      size_t unit, size_t len, uint64_t off)
{
	size_t pos = 0, start, n;

	while ((n = transfer_next_run(im->buf, len, unit, &pos, &start))) {
		ssize_t w = snap_image_write(img, im->buf + start, n,
					     off + start, &im->err);

		if (w < 0)
			return (int)w;
		if ((size_t)w != n)
			return snap_err_set(&im->err, -EIO, "short write at "
					    "%llu", (unsigned long long)off +
					    start);
	}
	return 0;
}

/* Copy file i into img, block by block, skipping the holes of DIR's file. */
static int copy_file(struct import *im, size_t i, struct snap_image *img)
{
	bool memory = transfer_is_memory(transfer_files[i]);
	size_t unit = memory ? snap_store_chunk_size(im->s) : TRANSFER_BLOCK;
	uint64_t size = im->sizes[i], off = 0;
	int fd = im->fds[i], ret;

	while (off < size) {
		uint64_t next = off + TRANSFER_BLOCK;
		size_t len;
		off_t data;

		if (cli_interrupted())
			return snap_err_set(&im->err, -EINTR, "interrupted");
		/* Whole blocks of hole are zero already: step over them. */
		data = lseek(fd, (off_t)off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			data = (off_t)size;		/* a hole to the end */
		if (data > 0 && (uint64_t)data >= next) {
			next = (uint64_t)data / TRANSFER_BLOCK * TRANSFER_BLOCK;
			next = next < size ? next : size;
			progress_add(&im->progress, next - off);
			off = next;
			continue;
		}
		len = (size_t)(size - off < TRANSFER_BLOCK ? size - off :
			       TRANSFER_BLOCK);
		ret = snap_io_read_all(fd, im->buf, len, off);
		if (ret)
			return snap_err_set(&im->err, ret, "read at %llu: %s",
					    (unsigned long long)off,
					    ret == -EIO ? "file shrank" :
					    strerror(-ret));
		ret = write_runs(im, img, unit, len, off);
		if (ret)
			return ret;
		progress_add(&im->progress, len);
		off += len;
	}
	return 0;
}

/* File i: a new image of its size, filled, synced, named TMP/FILE. */
static int import_file(struct import *im, size_t i)
{
	char path[2 * SNAP_STORE_NAME_MAX + 2];
	uint8_t id[SNAP_ID_LEN];
	struct snap_image *img;
	int ret, ret2;

	ret = snap_image_create(im->s, im->sizes[i], id, &im->err);
	if (ret)
		return ret;
	ret = snap_image_open(im->s, id, SNAP_IMAGE_WRITE, &img, &im->err);
	if (ret)
		return ret;
	ret = copy_file(im, i, img);
	if (!ret)
		ret = snap_image_sync(img, &im->err);
	ret2 = snap_image_close(img, ret ? NULL : &im->err);
	if (ret || ret2)
		return ret ? ret : ret2;
	snprintf(path, sizeof(path), "%s/%s", im->tmp, transfer_files[i]);
	ret = snap_store_link(im->s, path, id, &im->err);
	if (ret)
		return ret;
	im->linked[i] = true;
	return 0;
}

/* Remove the temporary snapshot; a second line says when that failed. */
static void remove_tmp(struct import *im)
{
	struct snap_err err = { .msg = "" };
	char path[2 * SNAP_STORE_NAME_MAX + 2];
	int ret = 0;

	if (!im->tmp_made)
		return;
	for (size_t i = 0; i < TRANSFER_NFILES; i++) {
		if (!im->linked[i])
			continue;
		snprintf(path, sizeof(path), "%s/%s", im->tmp,
			 transfer_files[i]);
		ret = snap_store_unlink(im->s, path, &err);
		if (ret)
			break;
	}
	if (!ret)
		ret = snap_store_rmdir(im->s, im->tmp, &err);
	if (ret) {
		snap_err_prefix(&err, ret, "cannot remove the temporary "
				"snapshot %s", im->tmp);
		cli_fail(im->cmd, im->store, ret, &err);
	}
}

/* Everything after DIR was found good: 0, or a negative errno in im->err. */
static int import_into(struct import *im)
{
	int ret;

	ret = make_tmp(im);
	if (ret)
		return ret;
	for (size_t i = 0; i < TRANSFER_NFILES; i++) {
		ret = import_file(im, i);
		if (ret)
			return snap_err_prefix(&im->err, ret, "%s",
					       transfer_files[i]);
	}
	/* The files' names, then the snapshot's, made durable. */
	ret = snap_store_sync(im->s, im->tmp, &im->err);
	if (!ret)
		ret = snap_store_rename(im->s, im->tmp, im->name, true,
					&im->err);
	if (ret == -EEXIST)
		return snap_err_set(&im->err, ret, "%s: already exists",
				    im->name);
	return ret ? ret : snap_store_sync(im->s, NULL, &im->err);
}

/* Refuse an existing NAME at once rather than after copying everything. */
static int check_name_free(struct import *im)
{
	int ret;

	ret = transfer_snapshot_exists(im->s, im->name, &im->err);
	if (ret == 1)
		return snap_err_set(&im->err, -EEXIST, "%s: already exists",
				    im->name);
	return ret;
}

/* Check DIR (cli_read says what is wrong) and open its files. */
static int check_dir(struct import *im)
{
	struct snap_manifest m;
	int ret;

	ret = cli_read(im->cmd, im->dir, SNAP_MEMORY_DIGEST, &m, NULL);
	if (ret)
		return ret;
	snap_manifest_release(&m);
	ret = open_files(im);
	if (ret)
		cli_fail(im->cmd, im->dir, ret, &im->err);
	return ret;
}

static int import_store(struct import *im)
{
	uint64_t total = 0;
	double secs;
	int ret;

	if (cli_store_open(im->cmd, im->store, 0, &im->s))
		return SNAPCTL_EXIT_FAIL;
	ret = check_name_free(im);
	if (ret)
		return cli_fail(im->cmd, im->store, ret, &im->err);
	if (check_dir(im))
		return SNAPCTL_EXIT_FAIL;
	im->buf = malloc(TRANSFER_BLOCK);
	if (!im->buf) {
		cli_error("%s: out of memory", im->cmd->name);
		return SNAPCTL_EXIT_FAIL;
	}
	for (size_t i = 0; i < TRANSFER_NFILES; i++)
		total += im->sizes[i];
	cli_catch_signals();
	progress_begin(&im->progress, im->name, total);
	ret = import_into(im);
	secs = progress_end(&im->progress);
	if (ret) {
		cli_fail(im->cmd, im->store, ret, &im->err);
		remove_tmp(im);
		return SNAPCTL_EXIT_FAIL;
	}
	fputs("imported ", stdout);
	fmt_text(stdout, im->name);
	fputs(": ", stdout);
	progress_summary(stdout, total, secs);
	putchar('\n');
	return SNAPCTL_EXIT_OK;
}

int import_run(const struct snapctl_cmd *cmd, int argc, char **argv)
{
	struct import im = { .cmd = cmd, .err = { .msg = "" } };
	const char *operands[3], *why;
	int status;

	if (!cli_parse(cmd, argc, argv, NULL, 0, operands, 3, &status))
		return status;
	im.dir = operands[0];
	im.store = operands[1];
	im.name = operands[2];
	if (!cli_snapshot_name_ok(im.name, &why))
		return cli_usage(cmd, "'%s' cannot name a snapshot: %s",
				 im.name, why);
	for (size_t i = 0; i < TRANSFER_NFILES; i++)
		im.fds[i] = -1;
	status = import_store(&im);
	for (size_t i = 0; i < TRANSFER_NFILES; i++)
		if (im.fds[i] >= 0)
			close(im.fds[i]);
	free(im.buf);
	snap_store_close(im.s);
	return status;
}
