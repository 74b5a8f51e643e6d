/* SPDX-License-Identifier: MIT */
/*
 * snapctl export STORE NAME DIR: a snapshot of a memory store written out
 * as a plain snapshot directory, published as a snapshot writer publishes
 * one.
 *
 * The files are written into a hidden temporary sibling of DIR, read from
 * their images in large blocks; memory.bin stays sparse (all-zero pages
 * are not written, the file is cut to its size). Each file is fsynced,
 * then the temporary directory; the copy must read back with every digest
 * checked before it is renamed to DIR (never replacing anything there)
 * and the parent is fsynced. A failure or a signal removes the temporary,
 * so DIR holds a whole, checked snapshot or nothing.
 */
#include "tools/snapctl/snapctl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/format/io.h"
#include "snapshot/format/snapdir.h"

#define SPARSE_UNIT	4096	/* memory.bin's holes: whole pages */

struct export {
	const struct snapctl_cmd *cmd;
	const char *store, *name, *dir;
	struct snap_store *s;
	struct snap_image *imgs[TRANSFER_NFILES];
	uint64_t sizes[TRANSFER_NFILES];
	char parent[PATH_MAX];
	char tmp[PATH_MAX - 16];	/* the hidden sibling being filled,
					   with room for "/manifest.bin" */
	bool tmp_made;
	bool written[TRANSFER_NFILES];
	uint8_t *buf;			/* TRANSFER_BLOCK bytes */
	struct progress progress;
	struct snap_err err;
};

/* Open the images of NAME's three files and take their sizes. */
static int open_images(struct export *ex)
{
	char path[2 * SNAP_STORE_NAME_MAX + 2];
	struct snap_image_stat st;
	uint8_t id[SNAP_ID_LEN];
	unsigned nlink;
	int ret;

	for (size_t i = 0; i < TRANSFER_NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", ex->name,
			 transfer_files[i]);
		ret = snap_store_lookup(ex->s, path, id, &nlink, &ex->err);
		if (ret == -ENOENT && i == 0 &&
		    transfer_snapshot_exists(ex->s, ex->name, &ex->err) == 0)
			return snap_err_set(&ex->err, ret, "%s: no such "
					    "snapshot", ex->name);
		if (ret == -ENOENT)
			return snap_err_set(&ex->err, ret, "%s: no such file",
					    path);
		if (!ret)
			ret = snap_image_open(ex->s, id, 0, &ex->imgs[i],
					      &ex->err);
		if (ret)
			return snap_err_prefix(&ex->err, ret, "%s", path);
		snap_image_stat(ex->imgs[i], &st);
		ex->sizes[i] = st.size;
	}
	return 0;
}

/* Split DIR into parent and base; DIR must not exist. */
static int check_dir(struct export *ex, char base[NAME_MAX + 1])
{
	char copy[PATH_MAX];
	size_t n = strlen(ex->dir);
	struct stat st;

	while (n > 1 && ex->dir[n - 1] == '/')
		n--;
	if (n >= PATH_MAX)
		return snap_err_set(&ex->err, -ENAMETOOLONG, "path too long");
	memcpy(copy, ex->dir, n);
	copy[n] = '\0';
	snprintf(base, NAME_MAX + 1, "%s", basename(copy));
	memcpy(copy, ex->dir, n);
	copy[n] = '\0';
	snprintf(ex->parent, sizeof(ex->parent), "%s", dirname(copy));
	if (!strcmp(base, "/") || !strcmp(base, ".") || !strcmp(base, ".."))
		return snap_err_set(&ex->err, -EINVAL, "not a usable "
				    "directory name");
	if (lstat(ex->dir, &st) == 0)
		return snap_err_set(&ex->err, -EEXIST, "already exists");
	if (errno != ENOENT)
		return snap_err_set(&ex->err, -errno, "%s", strerror(errno));
	return 0;
}

/* ".BASE.export-XXXXXXXX" beside DIR, mode 0755. */
static int make_tmp(struct export *ex, const char *base)
{
	uint32_t rnd;
	int ret = -EEXIST;

	for (int tries = 0; tries < 8 && ret == -EEXIST; tries++) {
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint32_t)getpid() ^ (uint32_t)rand();
		if (snprintf(ex->tmp, sizeof(ex->tmp), "%s/.%.200s.export-%08x",
			     ex->parent, base, rnd) >= (int)sizeof(ex->tmp))
			return snap_err_set(&ex->err, -ENAMETOOLONG,
					    "path too long");
		ret = mkdir(ex->tmp, 0755) ? -errno : 0;
	}
	if (ret)
		return snap_err_set(&ex->err, ret, "cannot create temporary "
				    "directory %s: %s", ex->tmp,
				    strerror(-ret));
	ex->tmp_made = true;
	return 0;
}

/*
 * Write len bytes of buf at off; for memory.bin only its non-zero pages,
 * each run of them in one write.
 */
static int write_block(struct export *ex, int fd, bool sparse, size_t len,
		       uint64_t off)
{
	size_t unit = sparse ? SPARSE_UNIT : len, pos = 0, start, n;
	int ret;

	while ((n = transfer_next_run(ex->buf, len, unit, &pos, &start))) {
		ret = snap_io_write_all(&snap_io_posix, fd, ex->buf + start,
					n, off + start);
		if (ret)
			return snap_err_set(&ex->err, ret, "write: %s",
					    strerror(-ret));
	}
	return 0;
}

/* Copy image i into fd, block by block; then cut to size and fsync. */
static int copy_image(struct export *ex, size_t i, int fd)
{
	bool sparse = transfer_is_memory(transfer_files[i]);
	uint64_t size = ex->sizes[i], off = 0;
	int ret;

	while (off < size) {
		size_t len = (size_t)(size - off < TRANSFER_BLOCK ?
				      size - off : TRANSFER_BLOCK);
		ssize_t n;

		if (cli_interrupted())
			return snap_err_set(&ex->err, -EINTR, "interrupted");
		n = snap_image_read(ex->imgs[i], ex->buf, len, off, &ex->err);
		if (n < 0)
			return (int)n;
		if ((size_t)n != len)
			return snap_err_set(&ex->err, -EIO, "image ends at "
					    "%llu of %llu bytes",
					    (unsigned long long)off + (size_t)n,
					    (unsigned long long)size);
		ret = write_block(ex, fd, sparse, len, off);
		if (ret)
			return ret;
		progress_add(&ex->progress, len);
		off += len;
	}
	if (ftruncate(fd, (off_t)size))
		return snap_err_set(&ex->err, -errno, "truncate: %s",
				    strerror(errno));
	if (fsync(fd))
		return snap_err_set(&ex->err, -errno, "fsync: %s",
				    strerror(errno));
	return 0;
}

static int export_file(struct export *ex, size_t i)
{
	char path[PATH_MAX];
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", ex->tmp, transfer_files[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return snap_err_set(&ex->err, -errno, "create: %s",
				    strerror(errno));
	ex->written[i] = true;
	ret = copy_image(ex, i, fd);
	if (close(fd) && !ret)
		ret = snap_err_set(&ex->err, -errno, "close: %s",
				   strerror(errno));
	return ret;
}

/* Everything but the temporary's removal: 0 or a negative errno. */
static int export_into(struct export *ex)
{
	struct snap_err rerr = { .msg = "" };
	struct snap_manifest m;
	int ret;

	for (size_t i = 0; i < TRANSFER_NFILES; i++) {
		ret = export_file(ex, i);
		if (ret)
			return snap_err_prefix(&ex->err, ret, "%s",
					       transfer_files[i]);
	}
	ret = snap_io_fsync_path(&snap_io_posix, ex->tmp);
	if (ret)
		return snap_err_set(&ex->err, ret, "fsync of %s: %s", ex->tmp,
				    strerror(-ret));
	/* What a restore would read must read back before it is published. */
	ret = snap_read(ex->tmp, SNAP_MEMORY_DIGEST, &m, NULL, &rerr);
	if (ret)
		return snap_err_set(&ex->err, ret, "the copy does not read "
				    "back: %s", rerr.msg[0] ? rerr.msg :
				    strerror(-ret));
	snap_manifest_release(&m);
	ret = snap_io_posix.rename_noreplace(snap_io_posix.ctx, ex->tmp,
					     ex->dir);
	if (ret == -EEXIST)
		return snap_err_set(&ex->err, ret, "already exists");
	if (ret)
		return snap_err_set(&ex->err, ret, "rename: %s",
				    strerror(-ret));
	ex->tmp_made = false;
	ret = snap_io_fsync_path(&snap_io_posix, ex->parent);
	if (ret)
		return snap_err_set(&ex->err, ret, "fsync of the parent "
				    "directory: %s", strerror(-ret));
	return 0;
}

/* Remove the temporary directory; a second line says when that failed. */
static void remove_tmp(struct export *ex)
{
	char path[PATH_MAX];

	if (!ex->tmp_made)
		return;
	for (size_t i = 0; i < TRANSFER_NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", ex->tmp,
			 transfer_files[i]);
		if (ex->written[i] && unlink(path) && errno != ENOENT)
			break;
	}
	if (rmdir(ex->tmp))
		cli_error("%s %s: cannot remove %s: %s", ex->cmd->name,
			  ex->dir, ex->tmp, strerror(errno));
}

static int export_store(struct export *ex)
{
	char base[NAME_MAX + 1];
	uint64_t total = 0;
	double secs;
	int ret;

	ret = check_dir(ex, base);
	if (ret)
		return cli_fail(ex->cmd, ex->dir, ret, &ex->err);
	if (cli_store_open(ex->cmd, ex->store, SNAP_STORE_RDONLY, &ex->s))
		return SNAPCTL_EXIT_FAIL;
	ret = open_images(ex);
	if (ret)
		return cli_fail(ex->cmd, ex->store, ret, &ex->err);
	ex->buf = malloc(TRANSFER_BLOCK);
	if (!ex->buf) {
		cli_error("%s: out of memory", ex->cmd->name);
		return SNAPCTL_EXIT_FAIL;
	}
	cli_catch_signals();
	ret = make_tmp(ex, base);
	if (ret)
		return cli_fail(ex->cmd, ex->dir, ret, &ex->err);
	for (size_t i = 0; i < TRANSFER_NFILES; i++)
		total += ex->sizes[i];
	progress_begin(&ex->progress, ex->name, total);
	ret = export_into(ex);
	secs = progress_end(&ex->progress);
	if (ret) {
		cli_fail(ex->cmd, ex->dir, ret, &ex->err);
		remove_tmp(ex);
		return SNAPCTL_EXIT_FAIL;
	}
	fputs("exported ", stdout);
	fmt_text(stdout, ex->name);
	fputs(" to ", stdout);
	fmt_text(stdout, ex->dir);
	fputs(": ", stdout);
	progress_summary(stdout, total, secs);
	putchar('\n');
	return SNAPCTL_EXIT_OK;
}

int export_run(const struct snapctl_cmd *cmd, int argc, char **argv)
{
	struct export ex = { .cmd = cmd, .err = { .msg = "" } };
	const char *operands[3], *why;
	int status;

	if (!cli_parse(cmd, argc, argv, NULL, 0, operands, 3, &status))
		return status;
	ex.store = operands[0];
	ex.name = operands[1];
	ex.dir = operands[2];
	if (!cli_snapshot_name_ok(ex.name, &why))
		return cli_usage(cmd, "'%s' cannot name a snapshot: %s",
				 ex.name, why);
	status = export_store(&ex);
	for (size_t i = 0; i < TRANSFER_NFILES; i++)
		snap_image_close(ex.imgs[i], NULL);
	free(ex.buf);
	snap_store_close(ex.s);
	return status;
}
