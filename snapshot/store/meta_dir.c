/* SPDX-License-Identifier: MIT */
/*
 * The store's metadata as files of a local directory (meta.h): objects
 * are files DIR/NAME, published by rename(2) of a temporary beside them;
 * locks are flock(2)s. Names are in meta_dir_names.c.
 */
#include "snapshot/store/meta_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "snapshot/format/io.h"
#include "snapshot/store/frame.h"

static const char *const meta_dirs[] = {
	"images", "deltas", "snapshots",
};

int meta_dir_path(const struct meta_dir *md, const char *name, char *buf,
		  size_t size, struct snap_err *err)
{
	if (snprintf(buf, size, "%s/%s", md->dir, name) >= (int)size)
		return snap_err_set(err, -ENAMETOOLONG, "%s: name too long",
				    name);
	return 0;
}

static int dir_get(void *ctx, const char *name, size_t max, uint8_t **buf,
		   size_t *len, struct snap_err *err)
{
	char path[4096];
	int ret;

	ret = meta_dir_path(ctx, name, path, sizeof(path), err);
	return ret ? ret : snap_read_file(path, name, max, buf, len, err);
}

static int dir_put(void *ctx, const char *name, const void *buf, size_t len,
		   unsigned flags, struct snap_err *err)
{
	char path[4096];
	int ret;

	ret = meta_dir_path(ctx, name, path, sizeof(path), err);
	if (ret)
		return ret;
	return frame_publish_bytes(path, buf, len,
				   (flags & META_NOREPLACE ? FRAME_NOREPLACE : 0) |
				   (flags & META_DURABLE ? FRAME_DURABLE : 0),
				   err);
}

/* Cut at off, write buf there, and with durable fsync: one append. */
static int append_fd(int fd, uint64_t at, const void *buf, size_t len,
		     bool durable)
{
	int ret;

	if (ftruncate(fd, (off_t)at))
		return -errno;
	ret = snap_io_write_all(&snap_io_posix, fd, buf, len, at);
	if (!ret && durable && fsync(fd))
		ret = -errno;
	/* What was written of a failed append is a torn tail: cut it off. */
	if (ret && ftruncate(fd, (off_t)at))
		ret = -errno;
	return ret;
}

static int dir_append(void *ctx, const char *name, uint64_t at,
		      const void *buf, size_t len, bool durable,
		      struct snap_err *err)
{
	char path[4096];
	int fd, ret;

	ret = meta_dir_path(ctx, name, path, sizeof(path), err);
	if (ret)
		return ret;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return snap_err_set(err, -errno, "%s: %m", name);
	ret = append_fd(fd, at, buf, len, durable);
	close(fd);
	if (ret)
		return snap_err_set(err, ret, "%s: %s", name, strerror(-ret));
	return 0;
}

static int dir_sync(void *ctx, const char *name, struct snap_err *err)
{
	char path[4096];
	int ret;

	ret = meta_dir_path(ctx, name, path, sizeof(path), err);
	if (ret)
		return ret;
	ret = frame_fsync_file(path);
	if (!ret)
		ret = frame_fsync_dir(path);
	if (ret)
		return snap_err_set(err, ret, "%s: fsync: %s", name,
				    strerror(-ret));
	return 0;
}

static int dir_size(void *ctx, const char *name, uint64_t *size,
		    struct snap_err *err)
{
	char path[4096];
	struct stat st;
	int ret;

	ret = meta_dir_path(ctx, name, path, sizeof(path), err);
	if (ret)
		return ret;
	if (stat(path, &st))
		return snap_err_set(err, -errno, "%s: %m", name);
	*size = (uint64_t)st.st_size;
	return 0;
}

static int dir_del(void *ctx, const char *name, struct snap_err *err)
{
	char path[4096];
	int ret;

	ret = meta_dir_path(ctx, name, path, sizeof(path), err);
	if (ret)
		return ret;
	if (unlink(path))
		return snap_err_set(err, -errno, "%s: %m", name);
	return 0;
}

/*
 * Every object of folder; a temporary a killed writer left (NAME.tmp-X)
 * is no object: it is removed when the caller holds the gc lock.
 */
static int dir_each(void *ctx, const char *folder,
		    int (*fn)(void *arg, const char *name), void *arg,
		    struct snap_err *err)
{
	struct meta_dir *md = ctx;
	char dir[4096], path[4096 + 300];
	struct dirent *e;
	DIR *d;
	int ret = 0;

	ret = meta_dir_path(md, folder, dir, sizeof(dir), err);
	if (ret)
		return ret;
	d = opendir(dir);
	if (!d)
		return snap_err_set(err, -errno, "%s: %m", folder);
	while (!ret && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (strstr(e->d_name, ".tmp-")) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (md->gc_held)
				unlink(path);
			continue;
		}
		ret = fn(arg, e->d_name);
	}
	closedir(d);
	return ret;
}

static int dir_statfs(void *ctx, struct statvfs *sv, struct snap_err *err)
{
	struct meta_dir *md = ctx;

	if (statvfs(md->dir, sv))
		return snap_err_set(err, -errno, "%s: statvfs: %m", md->dir);
	return 0;
}

/* ---- locks ------------------------------------------------------------- */

static int take_lock(struct meta_dir *md, const char *name, int op, int *fd,
		     struct snap_err *err)
{
	char path[4096];

	if (*fd < 0) {
		snprintf(path, sizeof(path), "%s/%s", md->dir, name);
		*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (*fd < 0 && errno == EROFS)
			*fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*fd < 0)
			return snap_err_set(err, -errno, "%s: %m", name);
	}
	if (flock(*fd, op | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return snap_err_set(err, -errno, "%s: flock: %m", name);
	return snap_err_set(err, -EBUSY, "%s: held by another process", name);
}

static int dir_lock(void *ctx, enum meta_lock which, struct snap_err *err)
{
	struct meta_dir *md = ctx;
	int ret;

	switch (which) {
	case META_LOCK_OPEN:
		return take_lock(md, "lock", LOCK_SH, &md->lock_fd, err);
	case META_LOCK_GC:
		if (md->lock_fd < 0)
			return snap_err_set(err, -EINVAL, "gc lock: store not "
					    "open");
		ret = take_lock(md, "lock", LOCK_EX, &md->lock_fd, err);
		if (ret == -EBUSY)
			snap_err_set(err, ret, "another process has the store "
				     "open (a mounted snapfs?); gc needs it "
				     "alone");
		md->gc_held = !ret;
		/* Linux drops the shared lock before it tries the
		 * exclusive one: a refusal leaves none, so take it back. */
		if (ret)
			flock(md->lock_fd, LOCK_SH);
		return ret;
	case META_LOCK_WRITE:
		return take_lock(md, "lock.write", LOCK_EX, &md->write_fd, err);
	}
	return -EINVAL;
}

static void dir_unlock(void *ctx, enum meta_lock which)
{
	struct meta_dir *md = ctx;
	int *fd = which == META_LOCK_WRITE ? &md->write_fd : &md->lock_fd;

	if (which == META_LOCK_GC) {
		md->gc_held = false;
		flock(md->lock_fd, LOCK_SH);
		return;
	}
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void dir_free(void *ctx)
{
	struct meta_dir *md = ctx;

	if (md->write_fd >= 0)
		close(md->write_fd);
	if (md->lock_fd >= 0)
		close(md->lock_fd);
	free(md->dir);
	free(md);
}

static const struct snap_meta_ops dir_ops = {
	.get = dir_get,
	.put = dir_put,
	.append = dir_append,
	.sync = dir_sync,
	.size = dir_size,
	.del = dir_del,
	.each = dir_each,
	.mkdir = meta_dir_mkdir,
	.rmdir = meta_dir_rmdir,
	.link = meta_dir_link,
	.unlink = meta_dir_unlink,
	.lookup = meta_dir_lookup,
	.rename = meta_dir_rename,
	.list = meta_dir_list,
	.dir_stat = meta_dir_stat,
	.nlink = meta_dir_nlink,
	.sync_names = meta_dir_sync_names,
	.statfs = dir_statfs,
	.lock = dir_lock,
	.unlock = dir_unlock,
	.free = dir_free,
};

int meta_dir_open(const char *dir, struct snap_meta *m, struct snap_err *err)
{
	struct meta_dir *md = calloc(1, sizeof(*md));

	if (!md || !(md->dir = strdup(dir))) {
		free(md);
		return snap_err_set(err, -ENOMEM, "%s: out of memory", dir);
	}
	md->lock_fd = md->write_fd = -1;
	m->ops = &dir_ops;
	m->ctx = md;
	return 0;
}

int meta_dir_init(const char *dir, struct snap_err *err)
{
	char path[4096];

	for (size_t i = 0; i < sizeof(meta_dirs) / sizeof(*meta_dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, meta_dirs[i]);
		if (mkdir(path, 0755))
			return snap_err_set(err, -errno, "%s: %m", path);
	}
	return 0;
}
