/* SPDX-License-Identifier: MIT */
#ifndef SNAPFS_TREE_H
#define SNAPFS_TREE_H

/*
 * Inside the tree module (tree.c: the node table; snap.c: the snapshots
 * of the store; lookup.c: what the nodes show). The rest of snapfs sees
 * only snapfs.h.
 */

#include <limits.h>
#include <pthread.h>
#include <time.h>

#include "snapfs.h"

/* What identifies one version of manifest.bin, to reuse its decoding. */
struct tree_man_key {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};

struct tree_node {
	struct tree_node *next;		/* hash chain */
	uint64_t nlookup;		/* references the kernel holds */
	uint64_t refs;			/* file nodes whose parent this is */
	enum snapfs_kind kind;
	unsigned file;			/* SNAPFS_FILE: index in snapfs_files */
	struct tree_node *parent;	/* SNAPFS_FILE: its snapshot */
	dev_t dev;			/* the backing file or directory */
	ino_t ino;
	struct timespec ctime;		/* SNAPFS_FILE: at lookup */
	char name[NAME_MAX + 1];	/* SNAPFS_SNAP: name in the store */
	/* SNAPFS_SNAP: the last decoding of its manifest.bin */
	bool man_cached;
	struct tree_man_key man_key;
	int man_ret;
	struct snapfs_meta meta;
};

struct tree {
	int store_fd;
	dev_t store_dev;
	char *store;			/* for messages */
	bool debug;
	pthread_mutex_t lock;		/* everything below, and every node */
	struct tree_node root;
	struct tree_node **buckets;
	size_t nbuckets;		/* a power of two */
	size_t count;
};

struct tree_node *tree_node_of(struct tree *t, fuse_ino_t ino);
fuse_ino_t tree_node_id(struct tree *t, const struct tree_node *n);

/* The st_ino users see for a backing file: stable across mounts. */
ino_t tree_shown_ino(const struct tree *t, dev_t dev, ino_t ino);

/*
 * With the lock held: the live node of that kind (and, for a file, that
 * parent, index and change time) backed by st, or NULL; tree_get creates
 * it when missing (NULL when out of memory) with a lookup count of zero.
 */
struct tree_node *tree_find(struct tree *t, enum snapfs_kind kind,
			    const struct tree_node *parent, unsigned file,
			    const struct stat *st);
struct tree_node *tree_get(struct tree *t, enum snapfs_kind kind,
			   struct tree_node *parent, unsigned file,
			   const struct stat *st);

/* ---- snap.c ---- */

/* stat name (relative to the store): -ENOENT unless it has that type. */
int tree_stat_at(struct tree *t, const char *name, mode_t type,
		 struct stat *st);

/*
 * Decode the manifest of the snapshot directory name (whose attributes
 * are dst) into meta, unless its node already holds that decoding. A
 * manifest that does not decode is -EBADMSG (or what libsnap said).
 */
int tree_check_snap(struct tree *t, const char *name, const struct stat *dst,
		    struct snapfs_meta *meta);

/*
 * The snapshot node n (or a file's parent) still names the same directory
 * and its manifest decodes: fill name (NAME_MAX + 1 bytes), *dst and meta
 * (unless NULL). A snapshot gone or replaced is -ENOENT, a corrupt one
 * -EIO.
 */
int tree_recheck_snap(struct tree *t, struct tree_node *n, char *name,
		      struct stat *dst, struct snapfs_meta *meta);

#endif
