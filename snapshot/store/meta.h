/* SPDX-License-Identifier: MIT */
#ifndef SNAP_META_H
#define SNAP_META_H

/*
 * Where the store keeps everything but its chunks: a table of operations,
 * so that a local directory (meta_dir.c) and an object store serve the
 * same store logic. Chunks go through backend.h; this is the rest.
 *
 * Objects: whole values named by a short relative name, one of
 *   store.bin              StoreInfo
 *   images/<id>            ImageInfo: the image's head delta
 *   images/<id>.ref        FileRef: what names refer to
 *   images/<id>.ws         a working set (advisory)
 *   deltas/<id>            a delta's journal of DeltaFrames
 * each holding frames (frame.h); the store encodes and checks them, an
 * implementation only moves bytes.
 * - get reads the whole value into a new buffer, refusing (-EFBIG) one
 *   larger than max without reading it; -ENOENT when absent.
 * - put replaces the value atomically (readers see the old or the new
 *   one). META_NOREPLACE: -EEXIST when it exists. META_DURABLE: durable
 *   on return; without, a crash may lose it until sync.
 * - append writes buf at offset at of an existing value, cutting off
 *   first whatever lies past at (a torn append of a killed writer). A
 *   failed append leaves the value cut at at. durable: as for put.
 * - sync makes the value, and its being there, durable; size gives its
 *   length in bytes.
 * - del removes it (-ENOENT when absent); each calls fn once per object
 *   in a folder ("images" or "deltas"), with its name in the folder
 *   ("<id>", "<id>.ref"), and stops at fn's first non-zero return.
 *
 * Names: snapshot directories holding file names, each file name
 * referring to an image (by id). Paths come checked: "SNAP" or
 * "SNAP/FILE", components of at most SNAP_STORE_NAME_MAX bytes, never "."
 * or "..". Each operation is atomic and fails as its POSIX namesake does
 * (mkdir -EEXIST, rmdir -ENOTEMPTY, link -EEXIST, and -ENOENT when the
 * image has no ref object, rename -EEXIST with noreplace). nlink counts
 * the names of an image. list passes the names in one snapshot (or the
 * snapshots, for NULL), sorted. sync_names makes the names in a snapshot
 * (NULL: the snapshots themselves) durable.
 *
 * Open records: publish replaces this open's record with buf (len 0
 * removes it); records calls fn with the record of every other open
 * still alive, each as one value.
 *
 * Locks: META_LOCK_OPEN is held shared by every open store. In a place
 * with one writer (a directory), META_LOCK_WRITE is that writer's and
 * lock(META_LOCK_GC) turns the held OPEN lock exclusive (gc has the store
 * alone; unlock(META_LOCK_GC) turns it back). In a place with several
 * writers (RADOS: lock_image is not NULL), every writer holds
 * META_LOCK_WRITE shared, lock(META_LOCK_GC) takes the store's one gc
 * lock and turns the held WRITE lock exclusive (no other writer while gc
 * runs), and each writer also holds the lock of every image it changes
 * (lock_image: -EBUSY when another open holds it). Readers beside a gc
 * publish what they hold (an OpenRecord, store_meta.c) and gc reads the
 * records of every live open (records), removing those of opens that are
 * gone. lock never waits: -EBUSY when another holds it. A lock with a
 * lease (RADOS) is renewed while held and lost when its holder dies.
 *
 * Every operation fills err (when it returns an error and err is not
 * NULL) with one line naming what failed, and is safe to call from
 * several threads at once. All return 0 or a negative errno.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "snapshot/format/error.h"
#include "snapshot/store/store.h"

#define META_NOREPLACE	(1u << 0)
#define META_DURABLE	(1u << 1)

enum meta_lock {
	META_LOCK_OPEN,
	META_LOCK_GC,
	META_LOCK_WRITE,
};

struct snap_meta_ops {
	/* objects */
	int (*get)(void *ctx, const char *name, size_t max, uint8_t **buf,
		   size_t *len, struct snap_err *err);
	int (*put)(void *ctx, const char *name, const void *buf, size_t len,
		   unsigned flags, struct snap_err *err);
	int (*append)(void *ctx, const char *name, uint64_t at,
		      const void *buf, size_t len, bool durable,
		      struct snap_err *err);
	int (*sync)(void *ctx, const char *name, struct snap_err *err);
	int (*size)(void *ctx, const char *name, uint64_t *size,
		    struct snap_err *err);
	int (*del)(void *ctx, const char *name, struct snap_err *err);
	int (*each)(void *ctx, const char *folder,
		    int (*fn)(void *arg, const char *name), void *arg,
		    struct snap_err *err);

	/* names */
	int (*mkdir)(void *ctx, const char *snap, struct snap_err *err);
	int (*rmdir)(void *ctx, const char *snap, struct snap_err *err);
	int (*link)(void *ctx, const char *path, const uint8_t id[SNAP_ID_LEN],
		    struct snap_err *err);
	int (*unlink)(void *ctx, const char *path, struct snap_err *err);
	int (*lookup)(void *ctx, const char *path, uint8_t id[SNAP_ID_LEN],
		      unsigned *nlink, struct snap_err *err);
	int (*rename)(void *ctx, const char *from, const char *to,
		      bool noreplace, struct snap_err *err);
	int (*list)(void *ctx, const char *snap,
		    int (*fn)(void *arg, const char *entry), void *arg,
		    struct snap_err *err);
	int (*dir_stat)(void *ctx, const char *snap, struct stat *st,
			struct snap_err *err);
	int (*nlink)(void *ctx, const uint8_t id[SNAP_ID_LEN], unsigned *nlink,
		     struct snap_err *err);
	int (*sync_names)(void *ctx, const char *snap, struct snap_err *err);

	/* the room where it all is (statvfs(3)'s fields) */
	int (*statfs)(void *ctx, struct statvfs *sv, struct snap_err *err);

	/* locks */
	int (*lock)(void *ctx, enum meta_lock which, struct snap_err *err);
	void (*unlock)(void *ctx, enum meta_lock which);
	/* NULL: the one writer's lock covers every image */
	int (*lock_image)(void *ctx, const uint8_t id[SNAP_ID_LEN],
			  struct snap_err *err);
	void (*unlock_image)(void *ctx, const uint8_t id[SNAP_ID_LEN]);

	/* open records; NULL: gc has the store alone */
	int (*publish)(void *ctx, const void *buf, size_t len,
		       struct snap_err *err);
	int (*records)(void *ctx,
		       int (*fn)(void *arg, const uint8_t *buf, size_t len),
		       void *arg, struct snap_err *err);

	void (*free)(void *ctx);
};

struct snap_meta {
	const struct snap_meta_ops *ops;
	void *ctx;
};

/*
 * The metadata of the store in directory dir (absolute), as files:
 * DIR/NAME for each object, DIR/snapshots/SNAP/FILE for names (hard links
 * of images/<id>.ref, so that an image's link count less one is its count
 * of names), flock(2) on DIR/lock and DIR/lock.write.
 */
int meta_dir_open(const char *dir, struct snap_meta *m, struct snap_err *err);

/* Make the folders of a new store in dir (an empty directory). */
int meta_dir_init(const char *dir, struct snap_err *err);

struct rados_conn;

/* The metadata of the store c connects to (meta_rados.h), with a
 * reference to c of its own. */
int meta_rados_open(struct rados_conn *c, struct snap_meta *m,
		    struct snap_err *err);

/* Begin a new store there: its namespace must hold no object. */
int meta_rados_init(struct rados_conn *c, struct snap_err *err);

#endif
