/* SPDX-License-Identifier: MIT */
/*
 * Chunks: the codec between a chunk's bytes and what the backend keeps,
 * and the cache of decompressed chunks.
 *
 * The cache is content-addressed, so it is never stale: a key's bytes
 * never change. Entries are reference counted; eviction (least recently
 * used first) skips entries in use and frees the rest as soon as the cache
 * is over its size.
 */
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "digest.h"

static const uint8_t chunk_magic[4] = { 'S', 'N', 'C', 'K' };

bool chunk_is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	/* Zero when the first byte is, and every byte equals the next. */
	return n == 0 || (b[0] == 0 && !memcmp(b, b + 1, n - 1));
}

bool key_is_zero(const uint8_t key[SNAP_KEY_LEN])
{
	static const uint8_t zero[SNAP_KEY_LEN];

	return !memcmp(key, zero, SNAP_KEY_LEN);
}

void key_hex(const uint8_t key[SNAP_KEY_LEN], char out[2 * SNAP_KEY_LEN + 1])
{
	snap_hex(key, SNAP_KEY_LEN, out);
}

/* ---- per-thread zstd contexts ---------------------------------------------- */

static pthread_key_t cctx_key, dctx_key, buf_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

/* A thread's scratch buffer for stored chunks: fresh ones cost a page
 * fault per page, and chunks are larger than malloc's mmap threshold. */
struct scratch {
	size_t size;
	uint8_t data[];
};

static void free_cctx(void *p)
{
	ZSTD_freeCCtx(p);
}

static void free_dctx(void *p)
{
	ZSTD_freeDCtx(p);
}

static void ctx_init(void)
{
	pthread_key_create(&cctx_key, free_cctx);
	pthread_key_create(&dctx_key, free_dctx);
	pthread_key_create(&buf_key, free);
}

/* This thread's scratch buffer of at least size bytes, or NULL. */
static uint8_t *thread_buf(size_t size)
{
	struct scratch *b;

	pthread_once(&ctx_once, ctx_init);
	b = pthread_getspecific(buf_key);
	if (b && b->size >= size)
		return b->data;
	free(b);
	pthread_setspecific(buf_key, NULL);
	b = malloc(sizeof(*b) + size);
	if (!b)
		return NULL;
	b->size = size;
	pthread_setspecific(buf_key, b);
	return b->data;
}

static ZSTD_CCtx *thread_cctx(void)
{
	ZSTD_CCtx *c;

	pthread_once(&ctx_once, ctx_init);
	c = pthread_getspecific(cctx_key);
	if (!c) {
		c = ZSTD_createCCtx();
		if (c)
			pthread_setspecific(cctx_key, c);
	}
	return c;
}

static ZSTD_DCtx *thread_dctx(void)
{
	ZSTD_DCtx *d;

	pthread_once(&ctx_once, ctx_init);
	d = pthread_getspecific(dctx_key);
	if (!d) {
		d = ZSTD_createDCtx();
		if (d)
			pthread_setspecific(dctx_key, d);
	}
	return d;
}

/* ---- codec ----------------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int chunk_store(const struct snap_backend *b, int level, uint32_t chunk_size,
		const void *data, uint8_t key[SNAP_KEY_LEN], bool *stored)
{
	size_t bound = CHUNK_HDR + ZSTD_compressBound(chunk_size);
	ZSTD_CCtx *cctx;
	uint8_t *obj;
	size_t n;
	int ret;

	*stored = false;
	if (chunk_is_zero(data, chunk_size)) {
		memset(key, 0, SNAP_KEY_LEN);
		return 0;
	}
	snap_sha256(data, chunk_size, key);
	ret = b->ops->has(b->ctx, key);
	if (ret)
		return ret < 0 ? ret : 0;

	cctx = thread_cctx();
	obj = thread_buf(bound);
	if (!cctx || !obj)
		return -ENOMEM;
	memset(obj, 0, CHUNK_HDR);
	memcpy(obj, chunk_magic, 4);
	put_le32(obj + 8, chunk_size);
	n = ZSTD_compressCCtx(cctx, obj + CHUNK_HDR, bound - CHUNK_HDR, data,
			      chunk_size, level);
	if (ZSTD_isError(n) || n >= chunk_size - chunk_size / 64) {
		obj[4] = CODEC_RAW;	/* not worth a decompression */
		memcpy(obj + CHUNK_HDR, data, chunk_size);
		n = chunk_size;
	} else {
		obj[4] = CODEC_ZSTD;
	}
	ret = b->ops->put(b->ctx, key, obj, CHUNK_HDR + n);
	if (!ret)
		*stored = true;
	return ret;
}

int chunk_load(const struct snap_backend *b, uint32_t chunk_size,
	       const uint8_t key[SNAP_KEY_LEN], void *out,
	       struct snap_err *err)
{
	size_t cap = CHUNK_HDR + ZSTD_compressBound(chunk_size);
	uint8_t digest[SNAP_DIGEST_LEN];
	char hex[2 * SNAP_KEY_LEN + 1];
	const char *why = NULL;
	uint8_t *obj;
	size_t len;
	int ret;

	key_hex(key, hex);
	obj = thread_buf(cap);
	if (!obj)
		return snap_err_set(err, -ENOMEM, "chunk %.16s: out of memory",
				    hex);
	ret = b->ops->get(b->ctx, key, obj, cap, &len);
	if (ret == -ENOENT) {
		why = "missing";
	} else if (ret == -EFBIG) {
		why = "larger than any chunk";
	} else if (ret) {
		return snap_err_set(err, -EIO, "chunk %.16s: %s", hex,
				    strerror(-ret));
	} else if (len < CHUNK_HDR || memcmp(obj, chunk_magic, 4)) {
		why = "not a chunk";
	} else if (obj[5] | obj[6] | obj[7] | obj[12] | obj[13] | obj[14] |
		   obj[15]) {
		why = "reserved header bytes set";
	} else if (get_le32(obj + 8) != chunk_size) {
		why = "size differs from the store's chunk size";
	} else if (obj[4] == CODEC_RAW) {
		if (len - CHUNK_HDR != chunk_size)
			why = "raw payload of the wrong size";
		else
			memcpy(out, obj + CHUNK_HDR, chunk_size);
	} else if (obj[4] == CODEC_ZSTD) {
		ZSTD_DCtx *d = thread_dctx();
		size_t n = d ? ZSTD_decompressDCtx(d, out, chunk_size,
						   obj + CHUNK_HDR,
						   len - CHUNK_HDR)
			     : 0;

		if (!d)
			why = "out of memory";
		else if (ZSTD_isError(n))
			why = ZSTD_getErrorName(n);
		else if (n != chunk_size)
			why = "decompressed to the wrong size";
	} else {
		why = "unknown codec";
	}
	if (!why) {
		snap_sha256(out, chunk_size, digest);
		if (memcmp(digest, key, SNAP_KEY_LEN))
			why = "content does not match its key";
	}
	if (why)
		return snap_err_set(err, -EIO, "chunk %.16s: %s", hex, why);
	return 0;
}

/* ---- cache ----------------------------------------------------------------- */

/* Buffers kept for reuse: a fresh chunk-sized one faults in every page. */
#define POOL_MAX 32

struct chunk_cache {
	pthread_mutex_t lock;
	struct chunk *pool;		/* free buffers, by hnext */
	size_t npool;
	uint32_t chunk_size;
	size_t max, count;
	size_t nbuckets;
	struct chunk **buckets;
	struct chunk *head, *tail;	/* LRU, head most recent */
};

static size_t bucket_of(const struct chunk_cache *c,
			const uint8_t key[SNAP_KEY_LEN])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));	/* a digest: already uniform */
	return (size_t)(h & (c->nbuckets - 1));
}

int chunk_cache_new(size_t max_bytes, uint32_t chunk_size,
		    struct chunk_cache **out)
{
	struct chunk_cache *c = calloc(1, sizeof(*c));
	size_t n = 64;

	if (!c)
		return -ENOMEM;
	c->chunk_size = chunk_size;
	c->max = max_bytes / chunk_size;
	if (c->max < 2)
		c->max = 2;
	while (n < c->max * 2)
		n *= 2;
	c->nbuckets = n;
	c->buckets = calloc(n, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

static void lru_unlink(struct chunk_cache *c, struct chunk *ch)
{
	if (ch->prev)
		ch->prev->next = ch->next;
	else
		c->head = ch->next;
	if (ch->next)
		ch->next->prev = ch->prev;
	else
		c->tail = ch->prev;
	ch->prev = ch->next = NULL;
}

static void lru_push(struct chunk_cache *c, struct chunk *ch)
{
	ch->prev = NULL;
	ch->next = c->head;
	if (c->head)
		c->head->prev = ch;
	c->head = ch;
	if (!c->tail)
		c->tail = ch;
}

static void hash_remove(struct chunk_cache *c, struct chunk *ch)
{
	struct chunk **pp = &c->buckets[bucket_of(c, ch->key)];

	while (*pp != ch)
		pp = &(*pp)->hnext;
	*pp = ch->hnext;
	ch->hnext = NULL;
}

/* Under the lock: keep ch's buffer for reuse, or free it. */
static void pool_release(struct chunk_cache *c, struct chunk *ch)
{
	if (c->npool < POOL_MAX) {
		ch->hnext = c->pool;
		c->pool = ch;
		c->npool++;
	} else {
		free(ch);
	}
}

/* Under the lock: drop unused entries from the LRU end while over size. */
static void evict(struct chunk_cache *c)
{
	struct chunk *ch = c->tail;

	while (c->count > c->max && ch) {
		struct chunk *prev = ch->prev;

		if (ch->refs == 0) {
			lru_unlink(c, ch);
			hash_remove(c, ch);
			c->count--;
			pool_release(c, ch);
		}
		ch = prev;
	}
}

void chunk_cache_free(struct chunk_cache *c)
{
	struct chunk *ch, *next;

	if (!c)
		return;
	for (ch = c->head; ch; ch = next) {
		next = ch->next;
		free(ch);	/* every handle is closed by now */
	}
	for (ch = c->pool; ch; ch = next) {
		next = ch->hnext;
		free(ch);
	}
	pthread_mutex_destroy(&c->lock);
	free(c->buckets);
	free(c);
}

struct chunk *chunk_alloc(struct chunk_cache *c)
{
	struct chunk *ch;

	pthread_mutex_lock(&c->lock);
	ch = c->pool;
	if (ch) {
		c->pool = ch->hnext;
		c->npool--;
	}
	pthread_mutex_unlock(&c->lock);
	if (!ch)
		ch = malloc(sizeof(*ch) + c->chunk_size);
	if (ch) {
		memset(ch, 0, sizeof(*ch));
		ch->refs = 1;
	}
	return ch;
}

struct chunk *chunk_cache_get(struct chunk_cache *c,
			      const uint8_t key[SNAP_KEY_LEN])
{
	struct chunk *ch;

	pthread_mutex_lock(&c->lock);
	for (ch = c->buckets[bucket_of(c, key)]; ch; ch = ch->hnext)
		if (!memcmp(ch->key, key, SNAP_KEY_LEN))
			break;
	if (ch) {
		ch->refs++;
		lru_unlink(c, ch);
		lru_push(c, ch);
	}
	pthread_mutex_unlock(&c->lock);
	return ch;
}

struct chunk *chunk_cache_add(struct chunk_cache *c, struct chunk *ch)
{
	struct chunk *old;
	size_t b;

	pthread_mutex_lock(&c->lock);
	b = bucket_of(c, ch->key);
	for (old = c->buckets[b]; old; old = old->hnext)
		if (!memcmp(old->key, ch->key, SNAP_KEY_LEN))
			break;
	if (old) {
		old->refs++;
		lru_unlink(c, old);
		lru_push(c, old);
		pthread_mutex_unlock(&c->lock);
		chunk_put(c, ch);
		return old;
	}
	ch->cached = true;
	ch->hnext = c->buckets[b];
	c->buckets[b] = ch;
	lru_push(c, ch);
	c->count++;
	evict(c);
	pthread_mutex_unlock(&c->lock);
	return ch;
}

void chunk_put(struct chunk_cache *c, struct chunk *ch)
{
	bool gone;

	if (!ch)
		return;
	pthread_mutex_lock(&c->lock);
	gone = --ch->refs == 0 && !ch->cached;
	if (ch->cached && ch->refs == 0 && c->count > c->max)
		evict(c);
	if (gone)
		pool_release(c, ch);
	pthread_mutex_unlock(&c->lock);
}
