/* SPDX-License-Identifier: MIT */
/*
 * The in-memory backend: chunks in a hash table of this process, for tests
 * and as the smallest example of the backend contract (backend.h).
 */
#include "snapshot/store/backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MEM_BUCKETS 4096

struct mem_value {
	uint8_t key[SNAP_KEY_LEN];
	struct mem_value *next;
	size_t len;
	uint8_t data[];
};

struct mem_backend {
	pthread_mutex_t lock;
	struct mem_value *buckets[MEM_BUCKETS];
};

static struct mem_value **mem_find(struct mem_backend *m,
				   const uint8_t key[SNAP_KEY_LEN])
{
	uint32_t h;
	struct mem_value **pp;

	memcpy(&h, key, sizeof(h));
	for (pp = &m->buckets[h % MEM_BUCKETS]; *pp; pp = &(*pp)->next)
		if (!memcmp((*pp)->key, key, SNAP_KEY_LEN))
			break;
	return pp;
}

static int mem_put(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		   const void *buf, size_t len)
{
	struct mem_backend *m = ctx;
	struct mem_value *v = malloc(sizeof(*v) + len), **pp;

	if (!v)
		return -ENOMEM;
	memcpy(v->key, key, SNAP_KEY_LEN);
	memcpy(v->data, buf, len);
	v->len = len;
	pthread_mutex_lock(&m->lock);
	pp = mem_find(m, key);
	if (*pp) {
		v->next = (*pp)->next;
		free(*pp);
	} else {
		v->next = NULL;
	}
	*pp = v;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_get(void *ctx, const uint8_t key[SNAP_KEY_LEN], void *buf,
		   size_t cap, size_t *len)
{
	struct mem_backend *m = ctx;
	struct mem_value *v;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	v = *mem_find(m, key);
	if (!v)
		ret = -ENOENT;
	else if (v->len > cap)
		ret = -EFBIG;
	else {
		memcpy(buf, v->data, v->len);
		*len = v->len;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int mem_has(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	struct mem_backend *m = ctx;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = *mem_find(m, key) != NULL;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int mem_size(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		    uint64_t *size)
{
	struct mem_backend *m = ctx;
	struct mem_value *v;

	pthread_mutex_lock(&m->lock);
	v = *mem_find(m, key);
	if (v)
		*size = v->len;
	pthread_mutex_unlock(&m->lock);
	return v ? 0 : -ENOENT;
}

static int mem_del(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	struct mem_backend *m = ctx;
	struct mem_value **pp, *v;

	pthread_mutex_lock(&m->lock);
	pp = mem_find(m, key);
	v = *pp;
	if (v)
		*pp = v->next;
	pthread_mutex_unlock(&m->lock);
	free(v);
	return v ? 0 : -ENOENT;
}

static int mem_each(void *ctx,
		    int (*fn)(void *, const uint8_t *, uint64_t), void *arg)
{
	struct mem_backend *m = ctx;
	uint8_t (*keys)[SNAP_KEY_LEN] = NULL;
	uint64_t *sizes = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	/* Collect first: fn may call back into the backend (del). */
	pthread_mutex_lock(&m->lock);
	for (int b = 0; b < MEM_BUCKETS && !ret; b++) {
		for (struct mem_value *v = m->buckets[b]; v; v = v->next) {
			if (n == cap) {
				size_t c = cap ? 2 * cap : 256;
				void *k = realloc(keys, c * sizeof(*keys));
				void *s = k ? realloc(sizes, c * sizeof(*sizes))
					    : NULL;

				if (k)
					keys = k;
				if (!k || !s) {
					ret = -ENOMEM;
					break;
				}
				sizes = s;
				cap = c;
			}
			memcpy(keys[n], v->key, SNAP_KEY_LEN);
			sizes[n++] = v->len;
		}
	}
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < n && !ret; i++)
		ret = fn(arg, keys[i], sizes[i]);
	free(keys);
	free(sizes);
	return ret;
}

static int mem_sync(void *ctx)
{
	return 0;
}

static void mem_free(void *ctx)
{
	struct mem_backend *m = ctx;

	if (!m)
		return;
	for (int b = 0; b < MEM_BUCKETS; b++) {
		struct mem_value *v = m->buckets[b], *next;

		for (; v; v = next) {
			next = v->next;
			free(v);
		}
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static const struct snap_backend_ops mem_ops = {
	.put = mem_put,
	.get = mem_get,
	.has = mem_has,
	.size = mem_size,
	.del = mem_del,
	.each = mem_each,
	.sync = mem_sync,
	.free = mem_free,
};

int snap_backend_mem(struct snap_backend *b)
{
	struct mem_backend *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	b->ops = &mem_ops;
	b->ctx = m;
	return 0;
}
