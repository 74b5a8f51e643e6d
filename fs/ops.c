/* SPDX-License-Identifier: MIT */
/*
 * The FUSE operations of snapfs: the table, and what files do. Names are
 * in names.c, directory listings in dir.c, extended attributes in xattr.c.
 * Each reply carries a negative errno back as fuse_reply_err.
 *
 * Files are served through the page cache (no direct_io), so memory.bin
 * maps private or shared, and KVM can use it as guest RAM. Every change
 * goes through this daemon, so the kernel may keep a file's pages from
 * one open to the next (keep_cache); in a store several hosts write, an
 * open that finds the file changed by another host drops them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fs/snapfs.h"

#define SNAPFS_MAX_WRITE	(1u << 20)

static void snapfs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Large requests: up to 1 MiB per read and write. */
	conn->max_write = SNAPFS_MAX_WRITE;
	conn->max_readahead = SNAPFS_MAX_WRITE;
	/* Writes come to us as they happen: what fsync makes durable is
	 * then exactly what the store holds. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
}

static void snapfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_forget(snapfs_fs(req), ino, nlookup);
	fuse_reply_none(req);
}

static void snapfs_forget_multi(fuse_req_t req, size_t count,
				struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_forget(snapfs_fs(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void snapfs_getattr(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct fs *fs = snapfs_fs(req);
	struct stat st;
	int ret;

	ret = fs_getattr(fs, fs_node(fs, ino), &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, SNAPFS_TIMEOUT);
}

/*
 * A time the store can keep: from the epoch to the year 2554. Outside
 * that it is clamped, as the kernel clamps times to what a filesystem's
 * inodes hold (timestamp_truncate).
 */
static uint64_t ns_of(const struct timespec *ts)
{
	const uint64_t max = SNAP_TIME_OMIT - 1;

	if (ts->tv_sec < 0)
		return 0;
	if ((uint64_t)ts->tv_sec > (max - 999999999u) / 1000000000u)
		return max;
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

/* What a SETATTR's bits ask of one time (FUSE_SET_ATTR_[AM]TIME...). */
static uint64_t time_asked(int to_set, int set, int now,
			   const struct timespec *ts)
{
	if (to_set & now)
		return SNAP_TIME_NOW;
	return to_set & set ? ns_of(ts) : SNAP_TIME_OMIT;
}

/* What a SETATTR of a file may set besides its size: each moves ctime. */
#define SETATTR_CHANGES							\
	(FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |	\
	 FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW |		\
	 FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)

/*
 * A file's times after a SETATTR: the atime and mtime asked, and the
 * ctime now. A chmod or chown to what the file has changes nothing else
 * but moves the ctime too, as it does on ext4 (notify_change always sets
 * it). The kernel sends FUSE_SET_ATTR_CTIME only with a writeback cache,
 * which snapfs does not use; now is what it would send.
 */
static int setattr_times(struct node *n, const struct stat *attr, int to_set,
			 struct snap_err *err)
{
	if (!(to_set & SETATTR_CHANGES))
		return 0;
	return snap_image_set_times(n->img,
				    time_asked(to_set, FUSE_SET_ATTR_ATIME,
					       FUSE_SET_ATTR_ATIME_NOW,
					       &attr->st_atim),
				    time_asked(to_set, FUSE_SET_ATTR_MTIME,
					       FUSE_SET_ATTR_MTIME_NOW,
					       &attr->st_mtim), err);
}

/*
 * Sizes and times of files change. Owners and modes are the mounting
 * user's and fixed: a change to them is EPERM, setting them to what they
 * are is allowed (cp -p, tar). Directory times follow their entries and
 * are not set.
 */
static void snapfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			   int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = snapfs_fs(req);
	struct node *n = fs_node(fs, ino);
	struct snap_err err = { .msg = "" };
	struct stat st;
	int ret;

	ret = fs_getattr(fs, n, &st);
	if (ret)
		goto out;
	if (((to_set & FUSE_SET_ATTR_MODE) &&
	     (attr->st_mode & 07777) != (st.st_mode & 07777)) ||
	    ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != st.st_uid) ||
	    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != st.st_gid)) {
		ret = -EPERM;
		goto out;
	}
	if (n->kind != SNAPFS_FILE) {
		if (to_set & FUSE_SET_ATTR_SIZE)
			ret = -EISDIR;
		goto out;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		ws_change(fs, n, true);	/* no pushed page past the end */
		ret = snap_image_truncate(n->img, (uint64_t)attr->st_size,
					  &err);
		ws_change(fs, n, false);
	}
	if (!ret)
		ret = setattr_times(n, attr, to_set, &err);
	/* Not through an open file: no close will store it for others. */
	if (!ret && !fi && (to_set & (FUSE_SET_ATTR_SIZE | SETATTR_CHANGES)))
		ret = snap_image_flush(n->img, &err);
	if (ret)
		fs_log(fs, ret, &err);
	else
		ret = fs_getattr(fs, n, &st);
out:
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, SNAPFS_TIMEOUT);
}

static void snapfs_open(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct fs *fs = snapfs_fs(req);
	struct node *n = fs_node(fs, ino);
	struct snap_err err = { .msg = "" };
	bool changed;
	int ret = 0;

	if (n->kind != SNAPFS_FILE) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY && fs->rdonly) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* Close-to-open, as NFS: what another host wrote and closed is
	 * what this open reads. */
	ret = snap_image_refresh(n->img, &changed, &err);
	if (ret) {
		fs_log(fs, ret, &err);
		fuse_reply_err(req, -ret);
		return;
	}
	if (changed)	/* the kernel's size: asked again at once */
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
	ws_opened(fs, n, fi);
	if (fi->flags & O_TRUNC) {
		ret = snap_image_truncate(n->img, 0, &err);
		if (ret) {
			fs_log(fs, ret, &err);
			fuse_reply_err(req, -ret);
			ws_released(fs, n, fi);
			return;
		}
	}
	fi->keep_cache = !(fi->flags & O_TRUNC) && !changed;
	fi->fh = snapfs_fh_of(fi);
	if (fuse_reply_open(req, fi))	/* interrupted: no release comes */
		ws_released(fs, n, fi);
}

/*
 * A worker thread's read buffer, kept from one request to the next: a
 * fresh megabyte faults in 256 pages every time.
 */
static pthread_key_t readbuf_key;
static pthread_once_t readbuf_once = PTHREAD_ONCE_INIT;

struct readbuf {
	size_t size;
	char data[];
};

static void readbuf_init(void)
{
	pthread_key_create(&readbuf_key, free);
}

static char *readbuf(size_t size)
{
	struct readbuf *b;

	pthread_once(&readbuf_once, readbuf_init);
	b = pthread_getspecific(readbuf_key);
	if (b && b->size >= size)
		return b->data;
	free(b);
	b = malloc(sizeof(*b) + (size < SNAPFS_MAX_WRITE ? SNAPFS_MAX_WRITE
							 : size));
	pthread_setspecific(readbuf_key, b);
	if (!b)
		return NULL;
	b->size = size < SNAPFS_MAX_WRITE ? SNAPFS_MAX_WRITE : size;
	return b->data;
}

static void snapfs_read(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = snapfs_fs(req);
	struct node *node = fs_node(fs, ino);
	struct snap_err err = { .msg = "" };
	ssize_t n;
	char *buf;

	__atomic_add_fetch(&node->reads, 1, __ATOMIC_RELAXED);
	ws_read(fs, node);
	buf = readbuf(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = snap_image_read(node->img, buf, size, (uint64_t)off, &err);
	if (n < 0) {
		fs_log(fs, (int)n, &err);
		fuse_reply_err(req, (int)-n);
	} else {
		fuse_reply_buf(req, buf, (size_t)n);
	}
}

static void snapfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
			 size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = snapfs_fs(req);
	struct snap_err err = { .msg = "" };
	ssize_t n;

	n = snap_image_write(fs_node(fs, ino)->img, buf, size, (uint64_t)off,
			     &err);
	if (n < 0) {
		fs_log(fs, (int)n, &err);
		fuse_reply_err(req, (int)-n);
	} else {
		fuse_reply_write(req, (size_t)n);
	}
}

static void snapfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
			 struct fuse_file_info *fi)
{
	struct fs *fs = snapfs_fs(req);
	struct node *n = fs_node(fs, ino);
	struct snap_err err = { .msg = "" };
	int ret = 0;

	if (n->kind == SNAPFS_FILE && !fs->rdonly)
		ret = snap_image_sync(n->img, &err);
	if (ret)
		fs_log(fs, ret, &err);
	fuse_reply_err(req, -ret);
}

/* Names become durable here, as on a local filesystem. */
static void snapfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			    struct fuse_file_info *fi)
{
	struct fs *fs = snapfs_fs(req);
	struct node *n = fs_node(fs, ino);
	struct snap_err err = { .msg = "" };
	int ret;

	ret = snap_store_sync(fs->store, n->kind == SNAPFS_SNAP ? n->dir : NULL,
			      &err);
	if (ret)
		fs_log(fs, ret, &err);
	fuse_reply_err(req, -ret);
}

/* A close: what it wrote is for every host's next open (snap_image_flush). */
static void snapfs_flush(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct fs *fs = snapfs_fs(req);
	struct node *n = fs_node(fs, ino);
	struct snap_err err = { .msg = "" };
	int ret = 0;

	if (n->kind == SNAPFS_FILE && fi->fh == SNAPFS_FH_WRITE)
		ret = snap_image_flush(n->img, &err);
	if (ret)
		fs_log(fs, ret, &err);
	fuse_reply_err(req, -ret);
}

static void snapfs_release(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct fs *fs = snapfs_fs(req);

	ws_released(fs, fs_node(fs, ino), fi);
	fuse_reply_err(req, 0);
}

/*
 * The constant-time clone: whole chunks are shared, and a whole file
 * copied into an empty one makes it a clone (snap_image_copy_range).
 */
static void snapfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
				   off_t off_in, struct fuse_file_info *fi_in,
				   fuse_ino_t ino_out, off_t off_out,
				   struct fuse_file_info *fi_out, size_t len,
				   int flags)
{
	struct fs *fs = snapfs_fs(req);
	struct node *in = fs_node(fs, ino_in), *out = fs_node(fs, ino_out);
	struct snap_err err = { .msg = "" };
	ssize_t n;

	if (in->kind != SNAPFS_FILE || out->kind != SNAPFS_FILE) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	n = snap_image_copy_range(in->img, (uint64_t)off_in, out->img,
				  (uint64_t)off_out, len, &err);
	if (n < 0) {
		fs_log(fs, (int)n, &err);
		fuse_reply_err(req, (int)-n);
	} else {
		fuse_reply_write(req, (size_t)n);
	}
}

static void snapfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = snapfs_fs(req);
	struct statvfs sv;
	struct snap_err err;
	int ret;

	ret = snap_store_statfs(fs->store, &sv, &err);
	if (ret) {
		fs_log(fs, ret, &err);
		fuse_reply_err(req, -ret);
		return;
	}
	sv.f_namemax = SNAP_STORE_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

static void eperm_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			  const char *name)
{
	fuse_reply_err(req, EPERM);
}

const struct fuse_lowlevel_ops snapfs_ops = {
	.init		 = snapfs_init,
	.lookup		 = snapfs_lookup,
	.forget		 = snapfs_forget,
	.forget_multi	 = snapfs_forget_multi,
	.getattr	 = snapfs_getattr,
	.setattr	 = snapfs_setattr,
	.mknod		 = snapfs_mknod,
	.mkdir		 = snapfs_mkdir,
	.unlink		 = snapfs_unlink,
	.rmdir		 = snapfs_rmdir,
	.symlink	 = eperm_symlink,
	.rename		 = snapfs_rename,
	.link		 = snapfs_link,
	.open		 = snapfs_open,
	.read		 = snapfs_read,
	.write		 = snapfs_write,
	.flush		 = snapfs_flush,
	.release	 = snapfs_release,
	.fsync		 = snapfs_fsync,
	.opendir	 = snapfs_opendir,
	.readdir	 = snapfs_readdir,
	.readdirplus	 = snapfs_readdirplus,
	.releasedir	 = snapfs_releasedir,
	.fsyncdir	 = snapfs_fsyncdir,
	.statfs		 = snapfs_statfs,
	.setxattr	 = snapfs_setxattr,
	.getxattr	 = snapfs_getxattr,
	.listxattr	 = snapfs_listxattr,
	.removexattr	 = snapfs_removexattr,
	.create		 = snapfs_create,
	.copy_file_range = snapfs_copy_file_range,
};
