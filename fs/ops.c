/* SPDX-License-Identifier: MIT */
/*
 * The FUSE operations of snapfs: the table, the node and file operations,
 * and every change refused with EROFS. Directory listings are in dir.c,
 * extended attributes in xattr.c; the tree (tree.c, lookup.c) does the
 * work, and each reply carries its negative errno back as fuse_reply_err.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "snapfs.h"

struct tree *snapfs_tree(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void snapfs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Reads reply from the backing file's descriptor: let them splice. */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/* Nothing here is ever written through the page cache. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void snapfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int ret;

	ret = tree_lookup(snapfs_tree(req), parent, name, &e);
	if (ret)
		fuse_reply_err(req, -ret);
	else if (fuse_reply_entry(req, &e))
		tree_forget(snapfs_tree(req), e.ino, 1);	/* interrupted */
}

static void snapfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	tree_forget(snapfs_tree(req), ino, nlookup);
	fuse_reply_none(req);
}

static void snapfs_forget_multi(fuse_req_t req, size_t count,
				struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		tree_forget(snapfs_tree(req), forgets[i].ino,
			    forgets[i].nlookup);
	fuse_reply_none(req);
}

static void snapfs_getattr(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct stat st;
	int ret;

	ret = tree_getattr(snapfs_tree(req), ino, &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, SNAPFS_TIMEOUT);
}

static void snapfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct stat st;
	int ret;

	ret = tree_getattr(snapfs_tree(req), ino, &st);
	if (!ret && (mask & W_OK))
		ret = -EROFS;
	fuse_reply_err(req, -ret);
}

static void snapfs_open(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	bool same;
	int fd, ret;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	ret = tree_open(snapfs_tree(req), ino, &fd, &same);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = (uint64_t)fd;
	/* Snapshots do not change: keep the pages of earlier opens unless
	 * this file was changed behind our back. No direct_io: memory.bin
	 * must be mmap-able, private or shared. */
	fi->keep_cache = same;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi))
		close(fd);	/* interrupted: no release will come */
}

static void snapfs_read(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void snapfs_release(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void snapfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int ret;

	ret = tree_statfs(snapfs_tree(req), &sv);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_statfs(req, &sv);
}

/* ---- every change: the store is read-only in this cut ---- */

static void erofs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			  int to_set, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			  const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname,
			 unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		       const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
			size_t size, off_t off, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   const char *value, size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			    off_t offset, off_t length,
			    struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
				  off_t off_in, struct fuse_file_info *fi_in,
				  fuse_ino_t ino_out, off_t off_out,
				  struct fuse_file_info *fi_out, size_t len,
				  int flags)
{
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops snapfs_ops = {
	.init		 = snapfs_init,
	.lookup		 = snapfs_lookup,
	.forget		 = snapfs_forget,
	.forget_multi	 = snapfs_forget_multi,
	.getattr	 = snapfs_getattr,
	.access		 = snapfs_access,
	.open		 = snapfs_open,
	.read		 = snapfs_read,
	.release	 = snapfs_release,
	.opendir	 = snapfs_opendir,
	.readdir	 = snapfs_readdir,
	.readdirplus	 = snapfs_readdirplus,
	.releasedir	 = snapfs_releasedir,
	.statfs		 = snapfs_statfs,
	.getxattr	 = snapfs_getxattr,
	.listxattr	 = snapfs_listxattr,

	.setattr	 = erofs_setattr,
	.mknod		 = erofs_mknod,
	.mkdir		 = erofs_mkdir,
	.unlink		 = erofs_remove,
	.rmdir		 = erofs_remove,
	.symlink	 = erofs_symlink,
	.rename		 = erofs_rename,
	.link		 = erofs_link,
	.write		 = erofs_write,
	.create		 = erofs_create,
	.setxattr	 = erofs_setxattr,
	.removexattr	 = erofs_removexattr,
	.fallocate	 = erofs_fallocate,
	.copy_file_range = erofs_copy_file_range,
};
