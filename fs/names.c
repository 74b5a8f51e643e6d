/* SPDX-License-Identifier: MIT */
/*
 * Operations on names. The root holds snapshots (directories); a snapshot
 * holds files. Anything else (a directory in a snapshot, a file in the
 * root, a symlink, a device) is EPERM. Names are checked by the store
 * (length, '/', "." and "..").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs/snapfs.h"

struct fs *snapfs_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* "DIR/NAME" into buf, or -ENAMETOOLONG. */
static int file_path(char *buf, size_t size, const struct node *dir,
		     const char *name)
{
	if (snprintf(buf, size, "%s/%s", dir->dir, name) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

#define PATH_BUF (2 * SNAP_STORE_NAME_MAX + 2)

static void reply_entry(fuse_req_t req, struct fs *fs, int ret,
			struct fuse_entry_param *e)
{
	if (ret)
		fuse_reply_err(req, -ret);
	else if (fuse_reply_entry(req, e))
		fs_forget(fs, e->ino, 1);	/* interrupted */
}

int fs_lookup(struct fs *fs, struct node *dir, const char *name,
		  struct fuse_entry_param *e)
{
	uint8_t id[SNAP_ID_LEN];
	struct snap_err err;
	char path[PATH_BUF];
	int ret;

	if (dir->kind == SNAPFS_ROOT)
		return fs_get_snap(fs, name, e);
	if (dir->kind != SNAPFS_SNAP)
		return -ENOTDIR;
	ret = file_path(path, sizeof(path), dir, name);
	if (!ret)
		ret = snap_store_lookup(fs->store, path, id, NULL, &err);
	if (ret == -EINVAL)
		ret = -ENOENT;	/* a name the store cannot hold is absent */
	else if (ret)
		fs_log(fs, ret, &err);
	return ret ? ret : fs_get_file(fs, dir->dir, id, e);
}

void snapfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = snapfs_fs(req);
	struct fuse_entry_param e;

	reply_entry(req, fs, fs_lookup(fs, fs_node(fs, parent), name, &e), &e);
}

void snapfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode)
{
	struct fs *fs = snapfs_fs(req);
	struct fuse_entry_param e;
	struct snap_err err;
	int ret;

	if (fs_node(fs, parent)->kind != SNAPFS_ROOT) {
		fuse_reply_err(req, EPERM);	/* snapshots hold files */
		return;
	}
	ret = snap_store_mkdir(fs->store, name, &err);
	if (ret)
		fs_log(fs, ret, &err);
	else
		ret = fs_get_snap(fs, name, &e);
	reply_entry(req, fs, ret, &e);
}

/* A new, empty image named name in dir, and its entry. */
static int new_file(struct fs *fs, struct node *dir, const char *name,
		    mode_t mode, struct fuse_entry_param *e)
{
	uint8_t id[SNAP_ID_LEN];
	struct snap_err err;
	char path[PATH_BUF];
	int ret;

	if (dir->kind != SNAPFS_SNAP || !S_ISREG(mode))
		return -EPERM;
	ret = file_path(path, sizeof(path), dir, name);
	if (ret)
		return ret;
	ret = snap_image_create(fs->store, 0, id, &err);
	if (!ret)
		ret = snap_store_link(fs->store, path, id, &err);
	if (ret) {
		fs_log(fs, ret, &err);	/* an unlinked image: gc frees it */
		return ret;
	}
	return fs_get_file(fs, dir->dir, id, e);
}

void snapfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, dev_t rdev)
{
	struct fs *fs = snapfs_fs(req);
	struct fuse_entry_param e;

	reply_entry(req, fs, new_file(fs, fs_node(fs, parent), name, mode, &e),
		    &e);
}

void snapfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		   mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = snapfs_fs(req);
	struct fuse_entry_param e;
	int ret;

	ret = new_file(fs, fs_node(fs, parent), name, S_IFREG | mode, &e);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->keep_cache = 1;
	fi->fh = snapfs_fh_of(fi);
	ws_opened(fs, fs_node(fs, e.ino), fi);
	if (fuse_reply_create(req, &e, fi)) {
		ws_released(fs, fs_node(fs, e.ino), fi);
		fs_forget(fs, e.ino, 1);
	}
}

void snapfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = snapfs_fs(req);
	struct node *dir = fs_node(fs, parent);
	struct snap_err err;
	char path[PATH_BUF];
	int ret;

	if (dir->kind != SNAPFS_SNAP) {
		fuse_reply_err(req, dir->kind == SNAPFS_ROOT ? EISDIR : ENOTDIR);
		return;
	}
	ret = file_path(path, sizeof(path), dir, name);
	if (!ret)
		ret = snap_store_unlink(fs->store, path, &err);
	if (ret)
		fs_log(fs, ret, &err);
	fuse_reply_err(req, -ret);
}

void snapfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = snapfs_fs(req);
	struct snap_err err;
	int ret;

	if (fs_node(fs, parent)->kind != SNAPFS_ROOT) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	ret = snap_store_rmdir(fs->store, name, &err);
	if (ret)
		fs_log(fs, ret, &err);
	else
		fs_snap_gone(fs, name);
	fuse_reply_err(req, -ret);
	if (!ret)
		fs_gc_soon(fs);
}

void snapfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		   fuse_ino_t newparent, const char *newname,
		   unsigned int flags)
{
	struct fs *fs = snapfs_fs(req);
	struct node *from = fs_node(fs, parent), *to = fs_node(fs, newparent);
	char pf[PATH_BUF], pt[PATH_BUF];
	struct snap_err err;
	int ret = 0;

	if (flags & ~RENAME_NOREPLACE) {
		fuse_reply_err(req, EINVAL);	/* RENAME_EXCHANGE, WHITEOUT */
		return;
	}
	if (from->kind != to->kind) {
		/* a snapshot into a snapshot, or a file into the root */
		fuse_reply_err(req, EPERM);
		return;
	}
	if (from->kind == SNAPFS_ROOT) {
		snprintf(pf, sizeof(pf), "%s", name);
		snprintf(pt, sizeof(pt), "%s", newname);
	} else {
		ret = file_path(pf, sizeof(pf), from, name);
		if (!ret)
			ret = file_path(pt, sizeof(pt), to, newname);
	}
	if (!ret)
		ret = snap_store_rename(fs->store, pf, pt,
					flags & RENAME_NOREPLACE, &err);
	if (ret) {
		fs_log(fs, ret, &err);
	} else if (from->kind == SNAPFS_ROOT && strcmp(name, newname)) {
		fs_snap_gone(fs, newname);	/* replaced, if it was there */
		fs_renamed(fs, name, newname);
	}
	fuse_reply_err(req, -ret);
}

void snapfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		 const char *newname)
{
	struct fs *fs = snapfs_fs(req);
	struct node *n = fs_node(fs, ino), *dir = fs_node(fs, newparent);
	struct fuse_entry_param e;
	struct snap_err err;
	char path[PATH_BUF];
	int ret;

	if (n->kind != SNAPFS_FILE || dir->kind != SNAPFS_SNAP) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ret = file_path(path, sizeof(path), dir, newname);
	if (!ret)
		ret = snap_store_link(fs->store, path, n->id, &err);
	if (ret)
		fs_log(fs, ret, &err);
	else
		ret = fs_get_file(fs, dir->dir, n->id, &e);
	reply_entry(req, fs, ret, &e);
}
