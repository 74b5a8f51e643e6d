/* SPDX-License-Identifier: MIT */
#ifndef SNAPFS_H
#define SNAPFS_H

/*
 * snapfs: the FUSE daemon, first cut: read-only over a STORE directory of
 * plain snapshot directories (manifest.bin, state.bin, memory.bin).
 *
 *   main.c   options, checks, session, daemon, signals
 *   ops.c    the table of FUSE operations and the file ops
 *   dir.c    opendir, readdir(plus), releasedir
 *   xattr.c  the user.snapfs.* attributes
 *   tree.c   the inode table: nodes, forget
 *   snap.c   which directories of the store are snapshots, listings
 *   lookup.c lookup, attributes, backing files, manifest facts
 *
 * The tree has three kinds of node: the root (FUSE_ROOT_ID), one directory
 * per snapshot of the store whose manifest.bin decodes, and the three files
 * of a snapshot. A node's fuse_ino_t is its address (the root's is
 * FUSE_ROOT_ID); the st_ino shown to users is stable across mounts: the
 * backing file's inode number (mixed with its device when it lives on
 * another filesystem than the store). A node is bound to the identity of
 * its backing file or directory (device, inode, and for files the change
 * time), so a snapshot replaced under the same name gets new nodes and the
 * kernel never serves it from the page cache of the old one.
 *
 * Every function returns 0 or a negative errno: -ENOENT when the name or
 * the backing file is gone (or was replaced), -EIO when the snapshot's
 * manifest.bin no longer decodes, -EROFS for any change.
 */

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "manifest.h"

#define SNAPFS_NAME		"snapfs"
#define SNAPFS_TIMEOUT		1.0	/* seconds the kernel caches entries */

/* ---- the files of a snapshot directory (tree.c) ---- */

struct snapfs_file {
	const char *name;
	bool whole_blocks;	/* report st_blocks covering st_size (cp) */
};

#define SNAPFS_NFILES	3
extern const struct snapfs_file snapfs_files[SNAPFS_NFILES];

/* ---- the tree (tree.c) ---- */

enum snapfs_kind {
	SNAPFS_ROOT,
	SNAPFS_SNAP,
	SNAPFS_FILE,
};

/* What the xattrs show of a snapshot: from its manifest. */
struct snapfs_meta {
	uint8_t id[SNAP_ID_LEN];
	bool has_parent;
	uint8_t parent_id[SNAP_ID_LEN];
};

struct tree;

/*
 * A table over the store directory open as store_fd (not taken over),
 * named store in messages; debug logs every snapshot that is skipped.
 */
int tree_create(int store_fd, const char *store, bool debug, struct tree **t);

/* Free every node still known; t may be NULL. */
void tree_destroy(struct tree *t);

/* Kind of the node ino, and for SNAPFS_FILE its index in snapfs_files. */
enum snapfs_kind tree_kind(struct tree *t, fuse_ino_t ino, unsigned *file);

/*
 * Look name up in the directory parent: on success the node's lookup
 * count went up by one and e is ready for fuse_reply_entry. A snapshot
 * whose manifest.bin does not decode is -ENOENT in the root; a file of
 * such a snapshot is -EIO.
 */
int tree_lookup(struct tree *t, fuse_ino_t parent, const char *name,
		struct fuse_entry_param *e);

/* The kernel dropped n references to ino. */
void tree_forget(struct tree *t, fuse_ino_t ino, uint64_t n);

/* Attributes of ino, fresh from the backing file. */
int tree_getattr(struct tree *t, fuse_ino_t ino, struct stat *st);

/*
 * Open the backing file of the file node ino read-only into *fd. *same is
 * false when the file changed since the lookup (the page cache must go).
 */
int tree_open(struct tree *t, fuse_ino_t ino, int *fd, bool *same);

/*
 * The manifest facts of the snapshot ino belongs to (a snapshot or one of
 * its files) and, in *st, the backing file's attributes as stored. The
 * root has none: -ENODATA.
 */
int tree_meta(struct tree *t, fuse_ino_t ino, struct snapfs_meta *meta,
	      struct stat *st);

/* One entry of a directory listing. */
struct tree_dirent {
	char name[256];
	ino_t ino;	/* as shown in st_ino */
	mode_t type;	/* S_IFDIR or S_IFREG */
};

/*
 * List the directory ino (without "." and ".."): the valid snapshots of
 * the store, or the files of a snapshot. *ents is a new array (free it).
 */
int tree_list(struct tree *t, fuse_ino_t ino, struct tree_dirent **ents,
	      size_t *n);

/* Statistics of the filesystem holding the store. */
int tree_statfs(struct tree *t, struct statvfs *sv);

/* ---- the operations (ops.c, dir.c, xattr.c) ---- */

/* The tree of the session a request belongs to. */
struct tree *snapfs_tree(fuse_req_t req);

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

#endif
