/* SPDX-License-Identifier: MIT */
/*
 * The RADOS backend: each chunk is one object of a Ceph pool, named by
 * its key in hex, in a namespace of its own (the prefix), so that listing
 * one store's chunks never returns another store's objects.
 *
 * Chunks are immutable and content-addressed, which is what RADOS objects
 * do best: a put is one write_full (the same bytes again change nothing),
 * a get is one read operation that stats the object and reads it at once
 * (so a value larger than the caller's buffer is seen, not cut), has and
 * size are a stat, del a remove. RADOS acknowledges a write once every
 * replica has it, so sync has nothing pending.
 *
 * A librados handle serves any number of threads; the namespace is set
 * once, before any operation, and never changed. Every wait is bounded
 * (rados_conn.c sets librados' timeouts): an OSD or a monitor that went
 * away turns into -ETIMEDOUT after some seconds, never a hang.
 */
#include "snapshot/store/backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/rados_conn.h"

#define OID_LEN (2 * SNAP_KEY_LEN)
#define EACH_BATCH 64	/* stats in flight while each walks a listing */

struct rados_backend {
	struct rados_conn *c;	/* its I/O context's namespace is set */
	rados_ioctx_t io;	/* c->io */
	unsigned flags;
};

static void oid_of(const uint8_t key[SNAP_KEY_LEN], char oid[OID_LEN + 1])
{
	snap_hex(key, SNAP_KEY_LEN, oid);
}

/* A lower-case hex digit's value, or -1. */
static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Whether name is a key's object name (64 lower-case hex digits). */
static int oid_key(const char *name, uint8_t key[SNAP_KEY_LEN])
{
	if (strlen(name) != OID_LEN)
		return 0;
	for (int i = 0; i < SNAP_KEY_LEN; i++) {
		int hi = nibble(name[2 * i]), lo = nibble(name[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return 0;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return 1;
}

static int rados_put(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		     const void *buf, size_t len)
{
	struct rados_backend *r = ctx;
	char oid[OID_LEN + 1];

	if (r->flags & SNAP_BACKEND_RDONLY)
		return -EROFS;
	oid_of(key, oid);
	/* write_full of zero bytes still makes the (empty) object. */
	return rados_write_full(r->io, oid, buf, len);
}

static int rados_get(void *ctx, const uint8_t key[SNAP_KEY_LEN], void *buf,
		     size_t cap, size_t *len)
{
	struct rados_backend *r = ctx;
	rados_read_op_t op = rados_create_read_op();
	int stat_rv = 0, read_rv = 0, ret;
	char oid[OID_LEN + 1];
	size_t got = 0;
	uint64_t size = 0;

	if (!op)
		return -ENOMEM;
	oid_of(key, oid);
	/* One round trip: the size, and up to cap bytes, of one version. */
	rados_read_op_stat(op, &size, NULL, &stat_rv);
	rados_read_op_read(op, 0, cap, buf, &got, &read_rv);
	ret = rados_read_op_operate(op, r->io, oid, 0);
	rados_release_read_op(op);
	if (!ret)
		ret = stat_rv;
	if (ret)
		return ret < 0 ? ret : -EIO;
	/* Before read_rv: a larger object fails its read with -ERANGE. */
	if (size > cap)
		return -EFBIG;
	if (read_rv)
		return read_rv < 0 ? read_rv : -EIO;
	if (got != size)
		return -EIO;
	*len = got;
	return 0;
}

static int rados_size(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		      uint64_t *size)
{
	struct rados_backend *r = ctx;
	char oid[OID_LEN + 1];

	oid_of(key, oid);
	return rados_stat(r->io, oid, size, NULL);
}

static int rados_has(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	uint64_t size;
	int ret = rados_size(ctx, key, &size);

	if (ret == -ENOENT)
		return 0;
	return ret ? ret : 1;
}

static int rados_del(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	struct rados_backend *r = ctx;
	char oid[OID_LEN + 1];

	if (r->flags & SNAP_BACKEND_RDONLY)
		return -EROFS;
	oid_of(key, oid);
	return rados_remove(r->io, oid);
}

struct key_list {
	uint8_t (*keys)[SNAP_KEY_LEN];
	size_t n, cap;
};

static int key_list_add(struct key_list *l, const uint8_t key[SNAP_KEY_LEN])
{
	if (l->n == l->cap) {
		size_t c = l->cap ? 2 * l->cap : 1024;
		void *k = realloc(l->keys, c * sizeof(*l->keys));

		if (!k)
			return -ENOMEM;
		l->keys = k;
		l->cap = c;
	}
	memcpy(l->keys[l->n++], key, SNAP_KEY_LEN);
	return 0;
}

/* The keys of every object of our namespace (others' are not listed). */
static int rados_list(struct rados_backend *r, struct key_list *l)
{
	rados_list_ctx_t lc;
	const char *name;
	uint8_t key[SNAP_KEY_LEN];
	int ret;

	ret = rados_nobjects_list_open(r->io, &lc);
	if (ret)
		return ret;
	while (!(ret = rados_nobjects_list_next(lc, &name, NULL, NULL))) {
		if (!oid_key(name, key))
			continue;	/* not a chunk: not ours to count */
		ret = key_list_add(l, key);
		if (ret)
			break;
	}
	rados_nobjects_list_close(lc);
	return ret == -ENOENT ? 0 : ret;
}

/*
 * Stat keys[0..n) at once (aio): a listing gives names only, and one
 * round trip a chunk in turn made gc's sweep wait on the network per
 * chunk. sizes[i] is UINT64_MAX for a key removed since the listing.
 */
static int rados_stat_batch(struct rados_backend *r,
			    uint8_t (*keys)[SNAP_KEY_LEN], size_t n,
			    uint64_t *sizes)
{
	rados_completion_t comp[EACH_BATCH];
	char oid[OID_LEN + 1];
	size_t started = 0;
	int ret = 0, rv;

	for (; started < n; started++) {
		oid_of(keys[started], oid);
		ret = rados_aio_create_completion2(NULL, NULL, &comp[started]);
		if (ret)
			break;
		ret = rados_aio_stat(r->io, oid, comp[started],
				     &sizes[started], NULL);
		if (ret) {
			rados_aio_release(comp[started]);
			break;
		}
	}
	for (size_t i = 0; i < started; i++) {
		rados_aio_wait_for_complete(comp[i]);
		rv = rados_aio_get_return_value(comp[i]);
		rados_aio_release(comp[i]);
		if (rv == -ENOENT)
			sizes[i] = UINT64_MAX;
		else if (rv < 0 && !ret)
			ret = rv;
	}
	return ret;
}

static int rados_each(void *ctx,
		      int (*fn)(void *, const uint8_t *, uint64_t), void *arg)
{
	struct rados_backend *r = ctx;
	uint64_t sizes[EACH_BATCH];
	struct key_list l = { 0 };
	int ret;

	/* List first: fn may call back into the backend (del). */
	ret = rados_list(r, &l);
	for (size_t i = 0; i < l.n && !ret; i += EACH_BATCH) {
		size_t n = l.n - i < EACH_BATCH ? l.n - i : EACH_BATCH;

		ret = rados_stat_batch(r, l.keys + i, n, sizes);
		for (size_t j = 0; j < n && !ret; j++)
			if (sizes[j] != UINT64_MAX)
				ret = fn(arg, l.keys[i + j], sizes[j]);
	}
	free(l.keys);
	return ret;
}

static int rados_sync(void *ctx)
{
	/* Every put and del returned after the OSDs committed it. */
	return 0;
}

static void rados_free(void *ctx)
{
	struct rados_backend *r = ctx;

	if (!r)
		return;
	rados_conn_put(r->c);
	free(r);
}

static const struct snap_backend_ops rados_ops = {
	.put = rados_put,
	.get = rados_get,
	.has = rados_has,
	.size = rados_size,
	.del = rados_del,
	.each = rados_each,
	.sync = rados_sync,
	.free = rados_free,
};

int snap_backend_rados_conn(struct rados_conn *c, unsigned flags,
			    struct snap_backend *b, struct snap_err *err)
{
	struct rados_backend *r = calloc(1, sizeof(*r));

	if (!r)
		return snap_err_set(err, -ENOMEM, "%s: out of memory", c->name);
	r->c = rados_conn_get(c);
	r->io = c->io;
	r->flags = flags;
	b->ops = &rados_ops;
	b->ctx = r;
	return 0;
}

int snap_backend_rados(const char *conf, const char *pool, const char *prefix,
		       unsigned flags, struct snap_backend *b,
		       struct snap_err *err)
{
	struct rados_conn *c;
	char *name;
	int ret;

	if (!pool || !*pool)
		return snap_err_set(err, -EINVAL, "rados: no pool named");
	if (asprintf(&name, "%s%s%s%s", RADOS_SCHEME, pool,
		     prefix && *prefix ? "/" : "", prefix ? prefix : "") < 0)
		return snap_err_set(err, -ENOMEM, "rados: out of memory");
	ret = rados_conn_open(name, conf, &c, err);
	free(name);
	if (ret)
		return ret;
	ret = snap_backend_rados_conn(c, flags, b, err);
	rados_conn_put(c);
	return ret;
}
