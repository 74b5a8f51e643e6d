/* SPDX-License-Identifier: MIT */
#ifndef SNAP_META_RADOS_H
#define SNAP_META_RADOS_H

/*
 * What meta_rados.c and meta_rados_names.c share. In the store's
 * namespace of its pool:
 *   m.NAME     each object of meta.h ("m.store.bin", "m.images/<id>", ...)
 *   names      the names, as the omap of one object, so that every
 *              change of names is one atomic operation:
 *                d:SNAP         a snapshot (value: its inode number, LE)
 *                t:SNAP         its mtime (ns, LE): when its names changed
 *                n:SNAP/FILE    a file name (value: the image's id)
 *                r:<id>:SNAP/FILE  the same name, found by image (nlink)
 *   lock       the store's locks (RADOS object locks with a lease):
 *                open          shared by every open
 *                write         shared by every writer, exclusive for gc
 *                gc            exclusive for gc
 *                image.<id>    exclusive for the writer of an image
 *              and in its omap the open records (meta.h):
 *                o.<cookie>    an OpenRecord frame
 */

#include <pthread.h>
#include <stdbool.h>

#include "snapshot/store/meta.h"
#include "snapshot/store/rados_conn.h"

#define RADOS_NAMES_OID		"names"
#define RADOS_LOCK_OID		"lock"
#define RADOS_LEASE_S		30	/* a dead host's locks go after this */
#define RADOS_LEASE_ENV		"SNAP_RADOS_LEASE_S"	/* another, 3-3600 */

struct meta_rados {
	struct rados_conn *c;
	rados_ioctx_t nio;	/* the names object's, under lock */
	char cookie[40];	/* this open's locks */
	int lease_s;		/* their lease */
	pthread_mutex_t lock;	/* names' read-modify-writes, lock state */
	bool open_held, gc_held, write_held, lease_lost;
	uint8_t (*held)[SNAP_ID_LEN];	/* images locked */
	size_t nheld, capheld;
	int64_t renewed_at;	/* CLOCK_MONOTONIC s: every lock held was
				   asked for or renewed since */
	bool lapsed;		/* once a lease went unrenewed: for good */
	bool writer;		/* took "write" (and has not let go) */
	pthread_t lease;	/* renews held locks */
	pthread_cond_t stop_cond;
	bool lease_running, stopping;
};

/* The locks and open records (meta_rados_lock.c). */
int meta_rados_lock(void *ctx, enum meta_lock which, struct snap_err *err);
void meta_rados_unlock(void *ctx, enum meta_lock which);
int meta_rados_lock_image(void *ctx, const uint8_t id[SNAP_ID_LEN],
			  struct snap_err *err);
void meta_rados_unlock_image(void *ctx, const uint8_t id[SNAP_ID_LEN]);
int meta_rados_publish(void *ctx, const void *buf, size_t len,
		       struct snap_err *err);
int meta_rados_records(void *ctx,
		       int (*fn)(void *arg, const uint8_t *buf, size_t len),
		       void *arg, struct snap_err *err);
/*
 * 0 while this open's locks are surely its own; once they went a whole
 * lease unrenewed (the cluster did not answer, the process stood still),
 * another host may have held them, and changed what this open knows:
 * -EIO naming what, and nothing of the store's is written through this
 * open any more, even if the locks are had again.
 */
int meta_rados_lease_check(struct meta_rados *mr, const char *what,
			   struct snap_err *err);

/* Stop renewing, and let go of every lock and this open's record. */
void meta_rados_locks_end(struct meta_rados *mr);

/* Make err's message for ret, naming the store and what failed. */
int meta_rados_fail(const struct meta_rados *mr, int ret, const char *what,
		    struct snap_err *err);

int meta_rados_mkdir(void *ctx, const char *snap, struct snap_err *err);
int meta_rados_rmdir(void *ctx, const char *snap, struct snap_err *err);
int meta_rados_link(void *ctx, const char *path,
		    const uint8_t id[SNAP_ID_LEN], struct snap_err *err);
int meta_rados_unlink(void *ctx, const char *path, struct snap_err *err);
int meta_rados_lookup(void *ctx, const char *path, uint8_t id[SNAP_ID_LEN],
		      unsigned *nlink, struct snap_err *err);
int meta_rados_rename(void *ctx, const char *from, const char *to,
		      bool noreplace, struct snap_err *err);
int meta_rados_list(void *ctx, const char *snap,
		    int (*fn)(void *arg, const char *entry), void *arg,
		    struct snap_err *err);
int meta_rados_stat(void *ctx, const char *snap, struct stat *st,
		    struct snap_err *err);
int meta_rados_nlink(void *ctx, const uint8_t id[SNAP_ID_LEN],
		     unsigned *nlink, struct snap_err *err);
int meta_rados_sync_names(void *ctx, const char *snap,
			  struct snap_err *err);

/* ---- the names object's omap (meta_rados_omap.c) ---------------------- */

#define RETRIES		32	/* changes of others in between, at most */
#define LIST_PAGE	256
#define DIR_FILES_MAX	65536	/* files a snapshot's rename moves */
#define VAL_MAX		SNAP_ID_LEN
#define KEY_MAX		(2 * SNAP_STORE_NAME_MAX + 2 * SNAP_ID_LEN + 8)

/* A key's value as read. */
struct val {
	bool has;
	size_t len;
	uint8_t v[VAL_MAX];
};

/* Keys set and removed by one operation. */
struct batch {
	size_t n, cap;
	char **keys;
	uint8_t (*vals)[VAL_MAX];
	size_t *vlens;
};

void batch_free(struct batch *b);
/* Set the key fmt makes to val (len bytes), or remove it (val NULL). */
int batch_add(struct batch *b, const void *val, size_t len,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
uint64_t le64(const uint8_t *p);
void now_le(uint8_t out[8]);

/* Under mr->lock: the values of n keys, and the object's version. */
int names_get(struct meta_rados *mr, const char *const *keys, size_t n,
	      struct val *vals, uint64_t *version);

/*
 * Under mr->lock: fn with each key beginning with prefix (less it) and
 * its value, in order, up to max keys (-E2BIG past them); *version (may
 * be NULL) gets the object's version at the first page.
 */
int names_each(struct meta_rados *mr, const char *prefix, size_t max,
	       int (*fn)(void *arg, const char *key, const uint8_t *v,
			 size_t vl),
	       void *arg, uint64_t *version);

/* Under mr->lock: the count of names of image id. */
int names_of(struct meta_rados *mr, const uint8_t id[SNAP_ID_LEN],
	     unsigned *n);

/* "SNAP" of "SNAP/FILE", into buf. */
void snap_of(const char *path, char *buf, size_t size);

/*
 * Run change until it is applied at the version it read, at most RETRIES
 * times; change fills b and *version, or answers a negative errno.
 */
int names_change(struct meta_rados *mr, const char *what,
		 int (*change)(struct meta_rados *mr, void *arg,
			       struct batch *b, uint64_t *version),
		 void *arg, struct snap_err *err);

#endif
