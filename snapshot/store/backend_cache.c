/* SPDX-License-Identifier: MIT */
/*
 * The cache tier: a backend in front of another (a remote one, RADOS),
 * keeping the values it fetched in a bounded local directory, so that a
 * popular snapshot crosses the network once per host.
 *
 * Local copies are files of a directory backend (one file a key), each
 * the SHA-256 of the value followed by the value. The key cannot check a
 * value here (it is the digest of the decompressed chunk, which only the
 * store decodes), so the copy carries its own digest: a copy that does
 * not match it, or is cut short, is dropped and fetched again, never
 * returned. The store still checks every chunk against its key.
 *
 * The cache cannot tell a value that was bad when fetched (a corrupt
 * object, one replaced since): the store can, and calls forget, which
 * drops the copy, so that its next read fetches the remote's value again.
 *
 * Puts and dels go to the remote (write-through); a put does not fill the
 * cache (a host rarely reads back at once what it just wrote, and a read
 * fills it). What the remote holds is the truth: has, size and each ask
 * it.
 *
 * Recency is kept in memory: a list, most recently used first, and a hash
 * table of its entries, under one lock; file I/O happens outside it. A
 * fetch that takes the total past max_bytes removes the least recently
 * used copies. Copies found at start are indexed as the oldest. Races
 * between threads on one key (an eviction removing a file another thread
 * just wrote) can only lose a copy: the next read fetches it again.
 */
#include "snapshot/store/backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snapshot/format/digest.h"

#define DIGEST_LEN 32

struct entry {
	uint8_t key[SNAP_KEY_LEN];
	uint64_t bytes;			/* of the local copy */
	struct entry *hnext;		/* hash chain */
	struct entry *prev, *next;	/* recency: prev is more recent */
};

struct cache_backend {
	struct snap_backend remote, local;
	uint64_t max_bytes;
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t nbuckets, n;
	struct entry *head, *tail;	/* most and least recently used */
	uint64_t bytes;
};

/* ---- the index ----------------------------------------------------------- */

static struct entry **idx_slot(struct cache_backend *c,
			       const uint8_t key[SNAP_KEY_LEN])
{
	struct entry **pp;
	uint64_t h;

	memcpy(&h, key, sizeof(h));	/* a SHA-256: already uniform */
	for (pp = &c->buckets[h % c->nbuckets]; *pp; pp = &(*pp)->hnext)
		if (!memcmp((*pp)->key, key, SNAP_KEY_LEN))
			break;
	return pp;
}

static void lru_unlink(struct cache_backend *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct cache_backend *c, struct entry *e, bool front)
{
	if (front) {
		e->next = c->head;
		if (c->head)
			c->head->prev = e;
		c->head = e;
		if (!c->tail)
			c->tail = e;
		return;
	}
	e->prev = c->tail;
	if (c->tail)
		c->tail->next = e;
	c->tail = e;
	if (!c->head)
		c->head = e;
}

/* Double the table when chains grow past two on average. */
static void idx_grow(struct cache_backend *c)
{
	size_t nb = c->nbuckets * 2;
	struct entry **b = calloc(nb, sizeof(*b));

	if (!b)
		return;		/* longer chains, still correct */
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			uint64_t h;

			next = e->hnext;
			memcpy(&h, e->key, sizeof(h));
			e->hnext = b[h % nb];
			b[h % nb] = e;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = nb;
}

/* Index key (bytes); when known already, only its recency changes. */
static int idx_add(struct cache_backend *c, const uint8_t key[SNAP_KEY_LEN],
		   uint64_t bytes, bool recent)
{
	struct entry **pp = idx_slot(c, key), *e = *pp;

	if (e) {
		lru_unlink(c, e);
		lru_push(c, e, recent);
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, SNAP_KEY_LEN);
	e->bytes = bytes;
	*pp = e;
	lru_push(c, e, recent);
	c->bytes += bytes;
	if (++c->n > 2 * c->nbuckets)
		idx_grow(c);
	return 0;
}

static void idx_del(struct cache_backend *c, struct entry **pp)
{
	struct entry *e = *pp;

	*pp = e->hnext;
	lru_unlink(c, e);
	c->bytes -= e->bytes;
	c->n--;
	free(e);
}

/*
 * Take entries off the old end until the total fits max_bytes; their
 * keys go to out (the caller removes the files, outside the lock).
 */
static size_t idx_evict(struct cache_backend *c,
			uint8_t (*out)[SNAP_KEY_LEN], size_t max)
{
	size_t n = 0;

	while (c->bytes > c->max_bytes && c->tail && n < max) {
		memcpy(out[n++], c->tail->key, SNAP_KEY_LEN);
		idx_del(c, idx_slot(c, c->tail->key));
	}
	return n;
}

/* ---- local copies -------------------------------------------------------- */

/* Remove key's local copy and its entry: it was found bad or gone. */
static void local_drop(struct cache_backend *c,
		       const uint8_t key[SNAP_KEY_LEN])
{
	struct entry **pp;

	pthread_mutex_lock(&c->lock);
	pp = idx_slot(c, key);
	if (*pp)
		idx_del(c, pp);
	pthread_mutex_unlock(&c->lock);
	c->local.ops->del(c->local.ctx, key);
}

/*
 * Read key's local copy into buf: 0, -EFBIG (larger than cap), or
 * -EBADMSG / -ENOENT / another error, after which the copy is unusable.
 */
static int local_read(struct cache_backend *c,
		      const uint8_t key[SNAP_KEY_LEN], void *buf, size_t cap,
		      size_t *len)
{
	uint8_t *tmp = malloc(cap + DIGEST_LEN), digest[DIGEST_LEN];
	size_t got = 0;
	int ret;

	if (!tmp)
		return -ENOMEM;
	ret = c->local.ops->get(c->local.ctx, key, tmp, cap + DIGEST_LEN, &got);
	if (!ret && got < DIGEST_LEN)
		ret = -EBADMSG;
	if (!ret) {
		snap_sha256(tmp + DIGEST_LEN, got - DIGEST_LEN, digest);
		if (memcmp(digest, tmp, DIGEST_LEN))
			ret = -EBADMSG;
	}
	if (!ret) {
		*len = got - DIGEST_LEN;
		memcpy(buf, tmp + DIGEST_LEN, *len);
	}
	free(tmp);
	return ret;
}

/* Keep a copy of what was fetched, then evict what no longer fits. */
static void local_keep(struct cache_backend *c,
		       const uint8_t key[SNAP_KEY_LEN], const void *buf,
		       size_t len)
{
	uint8_t victims[16][SNAP_KEY_LEN], *tmp;
	size_t n;
	int ret;

	if (len + DIGEST_LEN > c->max_bytes)
		return;		/* it would evict everything, itself too */
	tmp = malloc(len + DIGEST_LEN);
	if (!tmp)
		return;		/* a cache: a copy not kept is only slower */
	snap_sha256(buf, len, tmp);
	memcpy(tmp + DIGEST_LEN, buf, len);
	ret = c->local.ops->put(c->local.ctx, key, tmp, len + DIGEST_LEN);
	free(tmp);
	if (ret)
		return;
	pthread_mutex_lock(&c->lock);
	ret = idx_add(c, key, len + DIGEST_LEN, true);
	pthread_mutex_unlock(&c->lock);
	if (ret) {
		c->local.ops->del(c->local.ctx, key);
		return;
	}
	do {
		pthread_mutex_lock(&c->lock);
		n = idx_evict(c, victims, 16);
		pthread_mutex_unlock(&c->lock);
		for (size_t i = 0; i < n; i++)
			c->local.ops->del(c->local.ctx, victims[i]);
	} while (n == 16);
}

/* ---- the backend --------------------------------------------------------- */

static int cache_get(void *ctx, const uint8_t key[SNAP_KEY_LEN], void *buf,
		     size_t cap, size_t *len)
{
	struct cache_backend *c = ctx;
	struct entry *e;
	int ret;

	pthread_mutex_lock(&c->lock);
	e = *idx_slot(c, key);
	if (e) {
		lru_unlink(c, e);
		lru_push(c, e, true);
	}
	pthread_mutex_unlock(&c->lock);
	if (e) {
		ret = local_read(c, key, buf, cap, len);
		if (!ret || ret == -EFBIG || ret == -ENOMEM)
			return ret;
		local_drop(c, key);	/* bad or gone: fetch it again */
	}
	ret = c->remote.ops->get(c->remote.ctx, key, buf, cap, len);
	if (!ret)
		local_keep(c, key, buf, *len);
	return ret;
}

/*
 * has and size ask the remote even for a key held here: the store puts
 * a chunk only when has says it is absent, and a copy here says nothing
 * of whether another host's gc removed the chunk from the remote since.
 */
static int cache_has(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	struct cache_backend *c = ctx;

	return c->remote.ops->has(c->remote.ctx, key);
}

static int cache_size(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		      uint64_t *size)
{
	struct cache_backend *c = ctx;

	return c->remote.ops->size(c->remote.ctx, key, size);
}

static int cache_put(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		     const void *buf, size_t len)
{
	struct cache_backend *c = ctx;

	return c->remote.ops->put(c->remote.ctx, key, buf, len);
}

static int cache_del(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	struct cache_backend *c = ctx;

	/* The copy first: a get between the two must not find it. */
	local_drop(c, key);
	return c->remote.ops->del(c->remote.ctx, key);
}

static int cache_each(void *ctx,
		      int (*fn)(void *, const uint8_t *, uint64_t), void *arg)
{
	struct cache_backend *c = ctx;

	return c->remote.ops->each(c->remote.ctx, fn, arg);
}

static int cache_sync(void *ctx)
{
	struct cache_backend *c = ctx;

	return c->remote.ops->sync(c->remote.ctx);
}

static int cache_compact(void *ctx)
{
	struct cache_backend *c = ctx;

	if (!c->remote.ops->compact)
		return 0;
	return c->remote.ops->compact(c->remote.ctx);
}

/* Everything but the remote, which a failed constructor leaves alone. */
static void cache_release(struct cache_backend *c)
{
	while (c->head)
		idx_del(c, idx_slot(c, c->head->key));
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	if (c->local.ops)
		c->local.ops->free(c->local.ctx);
	free(c);
}

static void cache_free(void *ctx)
{
	struct cache_backend *c = ctx;
	struct snap_backend remote;

	if (!c)
		return;
	remote = c->remote;
	cache_release(c);
	remote.ops->free(remote.ctx);
}

static void cache_forget(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	local_drop(ctx, key);
}

static const struct snap_backend_ops cache_ops = {
	.put = cache_put,
	.get = cache_get,
	.has = cache_has,
	.size = cache_size,
	.del = cache_del,
	.each = cache_each,
	.sync = cache_sync,
	.compact = cache_compact,
	.forget = cache_forget,
	.free = cache_free,
};

static int index_found(void *arg, const uint8_t key[SNAP_KEY_LEN],
		       uint64_t size)
{
	return idx_add(arg, key, size, false);
}

int snap_backend_cache(struct snap_backend *remote, const char *dir,
		       uint64_t max_bytes, struct snap_backend *b,
		       struct snap_err *err)
{
	struct cache_backend *c = calloc(1, sizeof(*c));
	uint8_t victims[16][SNAP_KEY_LEN];
	size_t n;
	int ret;

	if (!c)
		return snap_err_set(err, -ENOMEM, "cache %s: out of memory", dir);
	c->remote = *remote;
	c->max_bytes = max_bytes;
	c->nbuckets = 1024;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	pthread_mutex_init(&c->lock, NULL);
	ret = c->buckets ? 0 : -ENOMEM;
	if (!ret && mkdir(dir, 0700) && errno != EEXIST)
		ret = snap_err_set(err, -errno, "%s", strerror(errno));
	if (!ret)
		ret = snap_backend_dir(dir, 0, &c->local, err);
	if (!ret)
		ret = c->local.ops->each(c->local.ctx, index_found, c);
	if (ret) {
		snap_err_prefix(err, ret, "cache %s", dir);
		goto out_free;
	}
	/* A smaller bound than the last run's: trim at once. */
	while ((n = idx_evict(c, victims, 16)))
		for (size_t i = 0; i < n; i++)
			c->local.ops->del(c->local.ctx, victims[i]);
	b->ops = &cache_ops;
	b->ctx = c;
	return 0;

out_free:
	cache_release(c);
	return ret;
}
