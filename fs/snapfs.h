/* SPDX-License-Identifier: MIT */
#ifndef SNAPFS_H
#define SNAPFS_H

/*
 * snapfs: the FUSE daemon over libsnap's memory store (docs/store.md).
 *
 *   main.c   options, checks, session, daemon, signals
 *   ops.c    the table of FUSE operations, files: open, read, write,
 *            copy_file_range, fsync, setattr; statfs
 *   names.c  lookup, create, mkdir, unlink, rmdir, rename, link
 *   dir.c    opendir, readdir(plus), releasedir
 *   xattr.c  the user.snapfs.* attributes
 *   node.c   the inode table: nodes, attributes, forget
 *   workingset.c  a file's working set: recorded at one open, pushed
 *            into the page cache at the next (docs/snapfs.md)
 *   readahead.c   the mount's read-ahead (its bdi in sysfs)
 *   gc.c     garbage collection while mounted: background and asked
 *
 * The root lists the store's snapshots; each snapshot is a directory of
 * files, and each file is an image of the store. A node's fuse_ino_t is
 * its address (the root's is FUSE_ROOT_ID). A snapshot's node is bound to
 * the inode of the directory behind it, a file's node to its image, so
 * hard links share a node and renames keep nodes. The st_ino users see is
 * stable across mounts: the directory's inode number, or 64 bits of the
 * image's random id with the top bit set.
 *
 * Every function returns 0 or a negative errno; store failures keep
 * theirs (EIO for a corrupt chunk, ENOSPC, ENOENT...), and the daemon
 * logs the store's message for each EIO.
 */

#define FUSE_USE_VERSION 312

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "snapshot/store/store.h"

#define SNAPFS_NAME		"snapfs"
#define SNAPFS_TIMEOUT		1.0	/* seconds the kernel caches entries */

enum snapfs_kind {
	SNAPFS_ROOT,
	SNAPFS_SNAP,
	SNAPFS_FILE,
};

struct node {
	struct node *next;		/* hash chain, or fs->gone */
	bool gone;			/* SNAP: its directory was removed */
	enum snapfs_kind kind;
	uint64_t nlookup;
	ino_t st_ino;
	/* SNAP: the snapshot's name; FILE: the snapshot it was last
	 * looked up in (its lineage xattrs come from there). */
	char dir[SNAP_STORE_NAME_MAX + 1];
	uint8_t id[SNAP_ID_LEN];	/* FILE: the image */
	struct snap_image *img;		/* FILE: open while known */
	/* FILE: counters for user.snapfs.*, updated atomically */
	uint64_t reads;			/* READs answered */
	uint64_t pushed;		/* chunks pushed into the page cache */
	/* FILE: opens and the working set, under ws_lock */
	pthread_mutex_t ws_lock;
	unsigned opens, writers;	/* handles, and of those writable */
	unsigned changing;		/* changes under way (ws_change) */
	uint64_t record_end;		/* recording until (CLOCK_MONOTONIC ns),
					   0: not recording */
	struct push *push;		/* a push armed, running or done */
	bool push_armed;		/* armed, to start at the next READ */
};

struct fs {
	struct snap_store *store;
	struct fuse_session *se;	/* for notifications */
	bool rdonly;
	bool debug;
	unsigned ws_window;		/* seconds a recording lasts at most */
	uid_t uid;
	gid_t gid;
	pthread_mutex_t lock;		/* the table */
	struct node root;
	size_t nbuckets;
	struct node **buckets;
	struct node *gone;		/* removed snapshots still known */
	/* gc.c: gc_lock guards the rest, and one gc runs at a time */
	pthread_mutex_t gc_lock;
	pthread_cond_t gc_wake;
	pthread_t gc_tid;
	bool gc_ready, gc_started, gc_stop;
	bool gc_soon;			/* a snapshot was removed (atomic) */
	uint64_t gc_bytes;		/* -o gc_bytes: the bound's floor */
	uint64_t gc_put;		/* put bytes at the last gc */
	uint64_t gc_kept;		/* bytes the last gc kept */
	uint64_t gc_runs;
	char gc_last[256];		/* the last gc's result */
};

/* ---- node.c ---- */

int fs_create(struct snap_store *store, bool rdonly, bool debug,
	      struct fs **fs);
void fs_destroy(struct fs *fs);

/* The node of ino (the kernel only names nodes it was given), and back. */
struct node *fs_node(struct fs *fs, fuse_ino_t ino);
fuse_ino_t fs_ino(struct fs *fs, struct node *n);

/*
 * The node of the snapshot name, or of image id (found in snapshot dir),
 * with its lookup count up by one; e (may be NULL) filled for a reply.
 */
/*
 * Snapshot directory name was removed (or replaced by a rename): its node,
 * which the kernel may still hold, is never found again, so that a new
 * directory given the same inode number by the store gets a node (and a
 * FUSE inode) of its own, not the dead one.
 */
void fs_snap_gone(struct fs *fs, const char *name);

int fs_get_snap(struct fs *fs, const char *name, struct fuse_entry_param *e);
int fs_get_file(struct fs *fs, const char *dir, const uint8_t id[SNAP_ID_LEN],
		struct fuse_entry_param *e);

/* The kernel dropped n references to ino. */
void fs_forget(struct fs *fs, fuse_ino_t ino, uint64_t n);

/* Attributes of a node, fresh from the store. */
int fs_getattr(struct fs *fs, struct node *n, struct stat *st);

/* A snapshot's node was renamed (from, to: names). */
void fs_renamed(struct fs *fs, const char *from, const char *to);

/* Log the store's message of a failure the kernel only sees as errno. */
void fs_log(struct fs *fs, int ret, const struct snap_err *err);

/* fi->fh of a file open for writing: FUSE_FLUSH carries no flags. */
#define SNAPFS_FH_WRITE	1

static inline uint64_t snapfs_fh_of(const struct fuse_file_info *fi)
{
	return (fi->flags & O_ACCMODE) != O_RDONLY ? SNAPFS_FH_WRITE : 0;
}

/* ---- workingset.c ---- */

/*
 * The kernel opened (or created) n's file with fi; it was released. An
 * open for reading starts a recording or a push; one for writing (or
 * truncating) stops a push first.
 */
void ws_opened(struct fs *fs, struct node *n, const struct fuse_file_info *fi);
void ws_released(struct fs *fs, struct node *n,
		 const struct fuse_file_info *fi);

/* A READ of n comes: an armed push starts, a recording past its window
 * ends. */
void ws_read(struct fs *fs, struct node *n);

/*
 * n's content changes other than through a write handle (a truncate):
 * before (begin), stop pushing and wait until nothing is pushed any
 * more, and start no push until it is over (!begin).
 */
void ws_change(struct fs *fs, struct node *n, bool begin);

/* The session ends: stop every push (before the session is freed). */
void fs_stop_pushes(struct fs *fs);

/* n is freed: stop, and save a recording. */
void ws_node_gone(struct fs *fs, struct node *n);

/* user.snapfs.workingset: its value, and what setting it does. */
int ws_describe(struct fs *fs, struct node *n, char *buf, size_t size);
int ws_control(struct fs *fs, struct node *n, const char *value, size_t len);

/* ---- gc.c ---- */

/* Start the background gc (bytes: the bound's floor; 0: none). */
int fs_gc_start(struct fs *fs, uint64_t bytes);

/* Stop it (before the store closes); fs may be NULL. */
void fs_gc_stop(struct fs *fs);

/* One gc now (user.snapfs.gc set); its result, and what it said. */
int fs_gc_now(struct fs *fs);
/* A snapshot was removed: the background gc runs at its next poll. */
void fs_gc_soon(struct fs *fs);
int fs_gc_describe(struct fs *fs, char *buf, size_t size);

/* ---- readahead.c ---- */

/*
 * Set the read-ahead of the mount at mountpoint (its bdi's read_ahead_kb)
 * to kb. One line on stderr when it cannot be.
 */
int fs_set_readahead(const char *mountpoint, unsigned kb);

/* ---- names.c: the operations on names ---- */

/* Look name up in dir; on success the node's lookup count went up. */
int fs_lookup(struct fs *fs, struct node *dir, const char *name,
	      struct fuse_entry_param *e);

void snapfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void snapfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode);
void snapfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, dev_t rdev);
void snapfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		   mode_t mode, struct fuse_file_info *fi);
void snapfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void snapfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void snapfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		   fuse_ino_t newparent, const char *newname,
		   unsigned int flags);
void snapfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		 const char *newname);

/* ---- dir.c, xattr.c ---- */

struct fs *snapfs_fs(fuse_req_t req);

extern const struct fuse_lowlevel_ops snapfs_ops;

void snapfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void snapfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void snapfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi);
void snapfs_releasedir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi);

void snapfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		     size_t size);
void snapfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void snapfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		     const char *value, size_t size, int flags);
void snapfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
