/* SPDX-License-Identifier: MIT */
/*
 * Names of a store in a local directory (meta.h): a snapshot is a
 * directory DIR/snapshots/SNAP, a file name a hard link of
 * DIR/images/<id>.ref in it, so mkdir, rename and link are as atomic as
 * the filesystem makes them, and an image's link count less one is its
 * count of names.
 */
#include "snapshot/store/meta_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/format/io.h"
#include "snapshot/store/frame.h"
#include "snapshot/store/store_int.h"

/* "DIR/snapshots/PATH" (PATH checked; NULL: the snapshots' directory). */
static int name_path(const struct meta_dir *md, const char *path, char *buf,
		     size_t size, struct snap_err *err)
{
	if (snprintf(buf, size, "%s/snapshots%s%s", md->dir, path ? "/" : "",
		     path ? path : "") >= (int)size)
		return snap_err_set(err, -ENAMETOOLONG, "'%s': name too long",
				    path);
	return 0;
}

static void ref_path(const struct meta_dir *md, const uint8_t id[SNAP_ID_LEN],
		     char *buf, size_t size)
{
	char name[META_NAME_MAX];

	meta_name(name, "images", id, ".ref");
	snprintf(buf, size, "%s/%s", md->dir, name);
}

int meta_dir_mkdir(void *ctx, const char *snap, struct snap_err *err)
{
	char p[4096];
	int ret = name_path(ctx, snap, p, sizeof(p), err);

	if (!ret && mkdir(p, 0755))
		ret = snap_err_set(err, -errno, "%s: %m", snap);
	return ret;
}

int meta_dir_rmdir(void *ctx, const char *snap, struct snap_err *err)
{
	char p[4096];
	int ret = name_path(ctx, snap, p, sizeof(p), err);

	if (!ret && rmdir(p))
		ret = snap_err_set(err, -errno, "%s: %m", snap);
	return ret;
}

int meta_dir_link(void *ctx, const char *path, const uint8_t id[SNAP_ID_LEN],
		  struct snap_err *err)
{
	char p[4096], ref[4096];
	int ret = name_path(ctx, path, p, sizeof(p), err);

	if (ret)
		return ret;
	ref_path(ctx, id, ref, sizeof(ref));
	if (link(ref, p)) {
		char hex[2 * SNAP_ID_LEN + 1];

		snap_id_hex(id, hex);
		if (errno == ENOENT && access(ref, F_OK))
			return snap_err_set(err, -ENOENT, "%s: no image %s",
					    path, hex);
		return snap_err_set(err, -errno, "%s: %m", path);
	}
	return 0;
}

int meta_dir_unlink(void *ctx, const char *path, struct snap_err *err)
{
	char p[4096];
	int ret = name_path(ctx, path, p, sizeof(p), err);

	if (!ret && unlink(p))
		ret = snap_err_set(err, -errno, "%s: %m", path);
	return ret;
}

int meta_dir_lookup(void *ctx, const char *path, uint8_t id[SNAP_ID_LEN],
		    unsigned *nlink, struct snap_err *err)
{
	struct stat st;
	char p[4096];
	uint8_t *buf;
	size_t n;
	int ret;

	ret = name_path(ctx, path, p, sizeof(p), err);
	if (ret)
		return ret;
	if (stat(p, &st))
		return snap_err_set(err, -errno, "%s: %m", path);
	if (!S_ISREG(st.st_mode))
		return snap_err_set(err, -EISDIR, "%s: not a file", path);
	ret = snap_read_file(p, path, FRAME_HDR + FRAME_MAX, &buf, &n, err);
	if (ret)
		return ret;
	ret = meta_ref_decode(buf, n, p, id, err);
	free(buf);
	if (ret)
		return ret;
	if (nlink)	/* less the image's own images/<id>.ref */
		*nlink = st.st_nlink > 1 ? (unsigned)st.st_nlink - 1 : 1;
	return 0;
}

int meta_dir_rename(void *ctx, const char *from, const char *to,
		    bool noreplace, struct snap_err *err)
{
	char pf[4096], pt[4096];
	int ret;

	ret = name_path(ctx, from, pf, sizeof(pf), err);
	if (!ret)
		ret = name_path(ctx, to, pt, sizeof(pt), err);
	if (ret)
		return ret;
	if (renameat2(AT_FDCWD, pf, AT_FDCWD, pt,
		      noreplace ? RENAME_NOREPLACE : 0))
		return snap_err_set(err, -errno, "%s -> %s: %m", from, to);
	return 0;
}

static int visible(const struct dirent *e)
{
	return strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
}

int meta_dir_list(void *ctx, const char *snap,
		  int (*fn)(void *arg, const char *entry), void *arg,
		  struct snap_err *err)
{
	struct dirent **list;
	char p[4096];
	int n, ret;

	ret = name_path(ctx, snap, p, sizeof(p), err);
	if (ret)
		return ret;
	n = scandir(p, &list, visible, alphasort);
	if (n < 0)
		return snap_err_set(err, -errno, "%s: %m", snap ? snap : p);
	for (int i = 0; i < n; i++) {
		if (!ret)
			ret = fn(arg, list[i]->d_name);
		free(list[i]);
	}
	free(list);
	return ret;
}

int meta_dir_stat(void *ctx, const char *snap, struct stat *st,
		  struct snap_err *err)
{
	char p[4096];
	int ret = name_path(ctx, snap, p, sizeof(p), err);

	if (ret)
		return ret;
	if (stat(p, st))
		return snap_err_set(err, -errno, "%s: %m", snap ? snap : p);
	if (!S_ISDIR(st->st_mode))
		return snap_err_set(err, -ENOTDIR, "%s: not a snapshot", snap);
	return 0;
}

int meta_dir_nlink(void *ctx, const uint8_t id[SNAP_ID_LEN], unsigned *nlink,
		   struct snap_err *err)
{
	struct stat st;
	char ref[4096];

	ref_path(ctx, id, ref, sizeof(ref));
	if (stat(ref, &st))
		return snap_err_set(err, -errno, "%s: %m", ref);
	*nlink = st.st_nlink > 1 ? (unsigned)st.st_nlink - 1 : 0;
	return 0;
}

int meta_dir_sync_names(void *ctx, const char *snap, struct snap_err *err)
{
	char p[4096];
	int fd, ret;

	ret = name_path(ctx, snap, p, sizeof(p), err);
	if (ret)
		return ret;
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return snap_err_set(err, -errno, "%s: %m", snap ? snap : p);
	ret = fsync(fd) ? -errno : 0;
	close(fd);
	if (ret)
		return snap_err_set(err, ret, "%s: fsync: %s", snap ? snap : p,
				    strerror(-ret));
	return 0;
}
