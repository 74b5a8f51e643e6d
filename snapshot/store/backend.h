/* SPDX-License-Identifier: MIT */
#ifndef SNAP_BACKEND_H
#define SNAP_BACKEND_H

/*
 * Where the memory store keeps its chunks: a small table of operations on
 * opaque values named by 32-byte keys, so that an object store (Ceph
 * RADOS, snap_backend_rados) serves chunks without touching the rest of
 * libsnap.
 *
 * Contract of every backend:
 * - put stores len bytes under key; putting a key that exists is allowed
 *   and may keep either value (the store only puts a key's one content).
 *   A put that returned may still be lost by a crash until sync returns.
 * - get reads the value into buf (cap bytes) and sets *len; -ENOENT when
 *   absent, -EFBIG when the value is larger than cap.
 * - has returns 1 or 0; size sets *size to the value's length (-ENOENT
 *   when absent); del returns 0 or -ENOENT.
 * - each calls fn(arg, key, size) once per stored key, in no order, and
 *   stops early when fn returns non-zero (returning that value).
 * - sync makes every put and del before it durable.
 * - compact, which a backend may leave NULL, gives back the room of what
 *   del removed, when that is not immediate (gc calls it last).
 * - forget, which a backend may leave NULL, drops any copy of key it holds
 *   nearer than where the value lives (the cache tier's local copy), so
 *   that the next get reads it from there: the store calls it for a value
 *   it found bad, which a repaired remote may since hold right.
 * - Every operation is safe to call from several threads at once.
 * All return 0 (or what is said above) or a negative errno.
 */

#include <stddef.h>
#include <stdint.h>

#include "snapshot/format/error.h"

#define SNAP_KEY_LEN 32

struct snap_backend_ops {
	int (*put)(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		   const void *buf, size_t len);
	int (*get)(void *ctx, const uint8_t key[SNAP_KEY_LEN], void *buf,
		   size_t cap, size_t *len);
	int (*has)(void *ctx, const uint8_t key[SNAP_KEY_LEN]);
	int (*size)(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		    uint64_t *size);
	int (*del)(void *ctx, const uint8_t key[SNAP_KEY_LEN]);
	int (*each)(void *ctx, int (*fn)(void *arg,
					 const uint8_t key[SNAP_KEY_LEN],
					 uint64_t size),
		    void *arg);
	int (*sync)(void *ctx);
	int (*compact)(void *ctx);
	void (*forget)(void *ctx, const uint8_t key[SNAP_KEY_LEN]);
	void (*free)(void *ctx);
};

struct snap_backend {
	const struct snap_backend_ops *ops;
	void *ctx;
};

/* Flags of snap_backend_dir(). */
#define SNAP_BACKEND_PACKS	(1u << 0)	/* put into pack files */
#define SNAP_BACKEND_RDONLY	(1u << 1)	/* never put or del */

/*
 * Chunks under dir. With SNAP_BACKEND_PACKS, puts append to pack files,
 * dir/packs/<seq>.pack with an index beside each (pack.h); without, each
 * chunk is a file dir/ab/abcdef... (the key in hex, its first byte naming
 * the subdirectory), written as a temporary and renamed into place. Reads
 * find a chunk in either. sync is syncfs(2) of dir's filesystem (after the
 * packs' indexes). dir must exist.
 */
int snap_backend_dir(const char *dir, unsigned flags, struct snap_backend *b,
		     struct snap_err *err);

/*
 * Chunks in Ceph pool pool, one object each, named by the key in hex, in
 * the RADOS namespace prefix (NULL or "": the pool's default namespace),
 * which should hold nothing else: each lists that namespace, so stores in
 * namespaces of their own never list each other's objects. conf names a
 * ceph.conf (NULL: Ceph's own search, CEPH_CONF first); CEPH_ARGS is read
 * too. SNAP_BACKEND_RDONLY makes put and del fail with -EROFS.
 *
 * sync has nothing to do: RADOS acknowledges a write once it is durable.
 * No call waits forever: connecting, and an operation whose OSD or
 * monitor is gone, fail after 10 s (-ETIMEDOUT) unless conf sets
 * client_mount_timeout, rados_mon_op_timeout or rados_osd_op_timeout.
 * Errors of the constructor name the configuration or the pool.
 */
int snap_backend_rados(const char *conf, const char *pool, const char *prefix,
		       unsigned flags, struct snap_backend *b,
		       struct snap_err *err);

struct rados_conn;

/* The same over a connection already open (rados_conn.h), which it keeps
 * a reference to. */
int snap_backend_rados_conn(struct rados_conn *c, unsigned flags,
			    struct snap_backend *b, struct snap_err *err);

/*
 * A cache tier in front of remote (snap_backend_rados, say): get reads a
 * local copy in dir (made when missing) when there is one, else fetches
 * from remote and keeps a copy; the copies take at most max_bytes (each
 * its value and 32 bytes), the least recently used removed first. Each
 * copy carries the SHA-256 of its value: one that does not match is
 * dropped and fetched again, never returned. put, has, size, del, each
 * and sync are remote's (put does not fill the cache; has asks remote
 * even for a key held here, since another host may have removed it).
 * Copies left in dir by an earlier run are used, as the least recent.
 * The cache takes remote over (its free frees remote) when it returns 0,
 * and leaves it to the caller otherwise. One process at a time may use
 * dir.
 */
int snap_backend_cache(struct snap_backend *remote, const char *dir,
		       uint64_t max_bytes, struct snap_backend *b,
		       struct snap_err *err);

/* Chunks in this process's memory: for tests, lost at free. */
int snap_backend_mem(struct snap_backend *b);

#endif
