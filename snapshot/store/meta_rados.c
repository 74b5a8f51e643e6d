/* SPDX-License-Identifier: MIT */
/*
 * The store's metadata in a Ceph RADOS pool (meta.h, meta_rados.h):
 * objects are RADOS objects, each put or append one atomic operation
 * (RADOS applies every step of an operation or none); locks are RADOS
 * object locks with a lease (meta_rados_lock.c). Names are in
 * meta_rados_names.c.
 */
#include "snapshot/store/meta_rados.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>

/* Reads of a large object go in pieces of this size. */
#define READ_PIECE	(4u << 20)

/* A cluster that does not answer is an I/O error to the store's users,
 * as a disk that does not is. */
int meta_rados_fail(const struct meta_rados *mr, int ret, const char *what,
		    struct snap_err *err)
{
	if (ret == -ETIMEDOUT)
		return snap_err_set(err, -EIO, "%s: %s: the cluster did not "
				    "answer in %d s", mr->c->name, what,
				    RADOS_TIMEOUT_S);
	return snap_err_set(err, ret, "%s: %s: %s", mr->c->name, what,
			    strerror(-ret));
}

static void oid_of(const char *name, char *oid, size_t size)
{
	snprintf(oid, size, "m.%s", name);
}

static int mr_get(void *ctx, const char *name, size_t max, uint8_t **buf,
		     size_t *len, struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	char oid[256];
	uint64_t size;
	size_t off = 0;
	time_t mtime;
	uint8_t *b;
	int ret;

	oid_of(name, oid, sizeof(oid));
	ret = rados_stat(mr->c->io, oid, &size, &mtime);
	if (ret)
		return ret == -ENOENT ? snap_err_set(err, ret, "%s: %s",
						     name, strerror(-ret))
				      : meta_rados_fail(mr, ret, name, err);
	if (size > max)
		return snap_err_set(err, -EFBIG, "%s: %llu bytes, more than "
				    "%zu", name, (unsigned long long)size, max);
	b = malloc(size ? size : 1);
	if (!b)
		return snap_err_set(err, -ENOMEM, "%s: out of memory", name);
	/* An object shorter now than stat said (a journal rewritten
	 * shorter) ends the read where it ends. */
	while (off < size) {
		size_t n = size - off < READ_PIECE ? size - off : READ_PIECE;

		ret = rados_read(mr->c->io, oid, (char *)b + off, n, off);
		if (ret <= 0)
			break;
		off += (size_t)ret;
	}
	if (ret < 0) {
		free(b);
		return meta_rados_fail(mr, ret, name, err);
	}
	*buf = b;
	*len = off;
	return 0;
}

/* A new write operation on object name, while this open may write. */
static int write_op(struct meta_rados *mr, const char *name,
		    rados_write_op_t *op, struct snap_err *err)
{
	int ret = meta_rados_lease_check(mr, name, err);

	if (ret)
		return ret;
	*op = rados_create_write_op();
	return *op ? 0 : snap_err_set(err, -ENOMEM, "%s: out of memory", name);
}

static int mr_put(void *ctx, const char *name, const void *buf, size_t len,
		     unsigned flags, struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	rados_write_op_t op;
	char oid[256];
	int ret;

	ret = write_op(mr, name, &op, err);
	if (ret)
		return ret;
	oid_of(name, oid, sizeof(oid));
	if (flags & META_NOREPLACE)
		rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_write_full(op, buf, len);
	/* An acknowledged write is on the OSDs' disks: always durable. */
	ret = rados_write_op_operate(op, mr->c->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (ret == -EEXIST)
		return snap_err_set(err, ret, "%s: %s", name, strerror(-ret));
	return ret ? meta_rados_fail(mr, ret, name, err) : 0;
}

static int mr_append(void *ctx, const char *name, uint64_t at,
			const void *buf, size_t len, bool durable,
			struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	rados_write_op_t op;
	char oid[256];
	int ret;

	ret = write_op(mr, name, &op, err);
	if (ret)
		return ret;
	oid_of(name, oid, sizeof(oid));
	rados_write_op_assert_exists(op);
	rados_write_op_truncate(op, at);
	rados_write_op_write(op, buf, len, at);
	ret = rados_write_op_operate(op, mr->c->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (ret == -ENOENT)
		return snap_err_set(err, ret, "%s: %s", name, strerror(-ret));
	return ret ? meta_rados_fail(mr, ret, name, err) : 0;
}

static int mr_sync(void *ctx, const char *name, struct snap_err *err)
{
	return 0;	/* every write was durable when it returned */
}

static int mr_size(void *ctx, const char *name, uint64_t *size,
		   struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	char oid[256];
	time_t mtime;
	int ret;

	oid_of(name, oid, sizeof(oid));
	ret = rados_stat(mr->c->io, oid, size, &mtime);
	if (ret == -ENOENT)
		return snap_err_set(err, ret, "%s: %s", name, strerror(-ret));
	return ret ? meta_rados_fail(mr, ret, name, err) : 0;
}

static int mr_del(void *ctx, const char *name, struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	char oid[256];
	int ret;

	oid_of(name, oid, sizeof(oid));
	ret = rados_remove(mr->c->io, oid);
	if (ret == -ENOENT)
		return snap_err_set(err, ret, "%s: %s", name, strerror(-ret));
	return ret ? meta_rados_fail(mr, ret, name, err) : 0;
}

/* Objects of the namespace whose names start "m.FOLDER/", in no order. */
static int mr_each(void *ctx, const char *folder,
		      int (*fn)(void *arg, const char *name), void *arg,
		      struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	rados_list_ctx_t list;
	char prefix[64];
	const char *entry;
	size_t n;
	int ret;

	n = (size_t)snprintf(prefix, sizeof(prefix), "m.%s/", folder);
	ret = rados_nobjects_list_open(mr->c->io, &list);
	if (ret)
		return meta_rados_fail(mr, ret, folder, err);
	while ((ret = rados_nobjects_list_next(list, &entry, NULL,
					       NULL)) == 0) {
		if (strncmp(entry, prefix, n))
			continue;
		ret = fn(arg, entry + n);
		if (ret)
			break;
	}
	rados_nobjects_list_close(list);
	if (ret == -ENOENT)	/* the end of the list */
		return 0;
	return ret < 0 && ret != -ENOMEM ? meta_rados_fail(mr, ret, folder,
							   err) : ret;
}

/* The cluster's room, in 4 KiB blocks; objects for inodes. */
static int mr_statfs(void *ctx, struct statvfs *sv, struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	struct rados_cluster_stat_t cs;
	int ret = rados_cluster_stat(mr->c->cluster, &cs);

	if (ret)
		return meta_rados_fail(mr, ret, "cluster stat", err);
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = 4096;
	sv->f_blocks = cs.kb / 4;
	sv->f_bfree = sv->f_bavail = cs.kb_avail / 4;
	sv->f_files = cs.num_objects + (1u << 20);
	sv->f_ffree = sv->f_favail = 1u << 20;
	return 0;
}

static void mr_free(void *ctx)
{
	struct meta_rados *mr = ctx;

	meta_rados_locks_end(mr);
	rados_ioctx_destroy(mr->nio);
	rados_conn_put(mr->c);
	pthread_cond_destroy(&mr->stop_cond);
	pthread_mutex_destroy(&mr->lock);
	free(mr->held);
	free(mr);
}

static const struct snap_meta_ops rados_ops = {
	.get = mr_get,
	.put = mr_put,
	.append = mr_append,
	.sync = mr_sync,
	.del = mr_del,
	.each = mr_each,
	.mkdir = meta_rados_mkdir,
	.rmdir = meta_rados_rmdir,
	.link = meta_rados_link,
	.unlink = meta_rados_unlink,
	.lookup = meta_rados_lookup,
	.rename = meta_rados_rename,
	.list = meta_rados_list,
	.dir_stat = meta_rados_stat,
	.nlink = meta_rados_nlink,
	.sync_names = meta_rados_sync_names,
	.statfs = mr_statfs,
	.size = mr_size,
	.lock = meta_rados_lock,
	.unlock = meta_rados_unlock,
	.lock_image = meta_rados_lock_image,
	.unlock_image = meta_rados_unlock_image,
	.publish = meta_rados_publish,
	.records = meta_rados_records,
	.free = mr_free,
};

/* RADOS_LEASE_S, or what the environment says (tests of a dead host). */
static int lease_seconds(void)
{
	const char *v = getenv(RADOS_LEASE_ENV);
	char *end;
	long n;

	if (!v)
		return RADOS_LEASE_S;
	n = strtol(v, &end, 10);
	return *v && !*end && n >= 3 && n <= 3600 ? (int)n : RADOS_LEASE_S;
}

int meta_rados_open(struct rados_conn *c, struct snap_meta *m,
		    struct snap_err *err)
{
	struct meta_rados *mr = calloc(1, sizeof(*mr));
	char ns[SNAP_STORE_NAME_MAX + 1];
	uint8_t rnd[16];
	int ret;

	if (!mr)
		return snap_err_set(err, -ENOMEM, "%s: out of memory", c->name);
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		free(mr);
		return snap_err_set(err, -errno, "getrandom: %m");
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(mr->cookie + 2 * i, 3, "%02x", rnd[i]);
	ret = rados_ioctx_create2(c->cluster, rados_ioctx_get_id(c->io),
				  &mr->nio);
	if (!ret && rados_ioctx_get_namespace(c->io, ns, sizeof(ns)) >= 0)
		rados_ioctx_set_namespace(mr->nio, ns);
	else if (!ret)
		ret = -ENAMETOOLONG;
	if (ret) {
		if (mr->nio)
			rados_ioctx_destroy(mr->nio);
		free(mr);
		return snap_err_set(err, ret, "%s: %s", c->name,
				    strerror(-ret));
	}
	mr->c = rados_conn_get(c);
	mr->lease_s = lease_seconds();
	pthread_mutex_init(&mr->lock, NULL);
	pthread_cond_init(&mr->stop_cond, NULL);
	m->ops = &rados_ops;
	m->ctx = mr;
	return 0;
}

/* Whether the store's namespace holds any object. */
static int namespace_used(struct rados_conn *c)
{
	rados_list_ctx_t list;
	const char *entry;
	int ret;

	ret = rados_nobjects_list_open(c->io, &list);
	if (ret)
		return ret;
	ret = rados_nobjects_list_next(list, &entry, NULL, NULL);
	rados_nobjects_list_close(list);
	return ret == 0 ? 1 : ret == -ENOENT ? 0 : ret;
}

int meta_rados_init(struct rados_conn *c, struct snap_err *err)
{
	rados_write_op_t op;
	int ret = namespace_used(c);

	if (ret < 0)
		return snap_err_set(err, ret, "%s: listing: %s", c->name,
				    strerror(-ret));
	if (ret)
		return snap_err_set(err, -EEXIST, "%s: not empty (a store, or "
				    "other objects, in that namespace)",
				    c->name);
	op = rados_create_write_op();
	if (!op)
		return snap_err_set(err, -ENOMEM, "%s: out of memory", c->name);
	rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	ret = rados_write_op_operate(op, c->io, RADOS_NAMES_OID, NULL, 0);
	rados_release_write_op(op);
	if (ret)
		return snap_err_set(err, ret, "%s: %s: %s", c->name,
				    RADOS_NAMES_OID, strerror(-ret));
	return 0;
}
