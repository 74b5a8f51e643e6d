/* SPDX-License-Identifier: MIT */
/*
 * The cache of decompressed chunks. It is content-addressed, so it is
 * never stale: a key's bytes never change. Entries are reference counted;
 * eviction (least recently used first) skips entries in use and frees the
 * rest as soon as the cache is over its size.
 */
#include "snapshot/store/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- cache ----------------------------------------------------------------- */

/*
 * Chunk buffers come from slabs of SLAB_BYTES, faulted in at once (and
 * backed by huge pages where the kernel gives them): a fresh buffer
 * touched a page at a time costs a page fault per 4 KiB, and on a cold
 * read that was a third of the daemon's time. Free buffers go back to a
 * list and are reused; slabs are unmapped when the cache is freed. So the
 * memory held is the most buffers ever in use at once: the cache's bound,
 * plus those readers and writers hold.
 */
#define SLAB_BYTES	(2u << 20)

struct slab {
	struct slab *next;
	void *mem;
	size_t len;
	struct chunk hdrs[];
};

struct chunk_cache {
	pthread_mutex_t lock;
	pthread_cond_t loaded;		/* a claimed entry was done */
	struct chunk *free;		/* free buffers, by hnext */
	struct slab *slabs;
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
	pthread_cond_init(&c->loaded, NULL);
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

/* Under the lock: the entry of key, or NULL. */
static struct chunk *hash_find(struct chunk_cache *c,
			       const uint8_t key[SNAP_KEY_LEN])
{
	struct chunk *ch;

	for (ch = c->buckets[bucket_of(c, key)]; ch; ch = ch->hnext)
		if (!memcmp(ch->key, key, SNAP_KEY_LEN))
			break;
	return ch;
}

/* Under the lock: ch's buffer is free again. */
static void free_push(struct chunk_cache *c, struct chunk *ch)
{
	ch->hnext = c->free;
	c->free = ch;
}

/* Under the lock: take ch out of the cache (no reference may remain). */
static void uncache(struct chunk_cache *c, struct chunk *ch)
{
	lru_unlink(c, ch);
	hash_remove(c, ch);
	ch->cached = false;
	c->count--;
}

/* Under the lock: drop unused entries from the LRU end while over size. */
static void evict(struct chunk_cache *c)
{
	struct chunk *ch = c->tail;

	while (c->count > c->max && ch) {
		struct chunk *prev = ch->prev;

		if (ch->refs == 0) {
			uncache(c, ch);
			free_push(c, ch);
		}
		ch = prev;
	}
}

void chunk_cache_free(struct chunk_cache *c)
{
	struct slab *sl, *next;

	if (!c)
		return;
	/* Every handle is closed by now: each buffer lies in a slab. */
	for (sl = c->slabs; sl; sl = next) {
		next = sl->next;
		munmap(sl->mem, sl->len);
		free(sl);
	}
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->lock);
	free(c->buckets);
	free(c);
}

/* A new slab's buffers onto the free list (outside the lock: it faults). */
static int slab_add(struct chunk_cache *c)
{
	size_t len = SLAB_BYTES > c->chunk_size ? SLAB_BYTES : c->chunk_size;
	size_t n = len / c->chunk_size;
	struct slab *sl = calloc(1, sizeof(*sl) + n * sizeof(struct chunk));

	if (!sl)
		return -ENOMEM;
	sl->len = len;
	sl->mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sl->mem == MAP_FAILED) {
		free(sl);
		return -ENOMEM;
	}
	/* Both are hints: an older kernel faults pages in as they come. */
	madvise(sl->mem, len, MADV_HUGEPAGE);
	madvise(sl->mem, len, MADV_POPULATE_WRITE);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		sl->hdrs[i].data = (uint8_t *)sl->mem + i * c->chunk_size;
		free_push(c, &sl->hdrs[i]);
	}
	sl->next = c->slabs;
	c->slabs = sl;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Under the lock: a free buffer made a chunk with one reference, or NULL. */
static struct chunk *free_pop(struct chunk_cache *c)
{
	struct chunk *ch = c->free;
	uint8_t *data;

	if (!ch)
		return NULL;
	c->free = ch->hnext;
	data = ch->data;
	memset(ch, 0, sizeof(*ch));
	ch->data = data;
	ch->refs = 1;
	return ch;
}

struct chunk *chunk_alloc(struct chunk_cache *c)
{
	struct chunk *ch;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		ch = free_pop(c);
		pthread_mutex_unlock(&c->lock);
		if (ch || slab_add(c))
			return ch;
	}
}

int chunk_cache_claim(struct chunk_cache *c, const uint8_t key[SNAP_KEY_LEN],
		      bool wait, struct chunk **out)
{
	struct chunk *ch, *fresh = NULL;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		ch = hash_find(c, key);
		if (ch && !ch->loading) {
			ch->refs++;
			lru_unlink(c, ch);
			lru_push(c, ch);
			break;
		}
		if (ch && !wait) {
			ch = NULL;
			break;
		}
		if (ch) {	/* another thread loads it: its result */
			pthread_cond_wait(&c->loaded, &c->lock);
			continue;
		}
		if (!fresh) {
			fresh = free_pop(c);
			if (!fresh) {
				pthread_mutex_unlock(&c->lock);
				fresh = chunk_alloc(c);
				if (!fresh)
					return -ENOMEM;
				pthread_mutex_lock(&c->lock);
				continue;	/* someone may have claimed it */
			}
		}
		memcpy(fresh->key, key, SNAP_KEY_LEN);
		fresh->cached = true;
		fresh->loading = true;
		fresh->hnext = c->buckets[bucket_of(c, key)];
		c->buckets[bucket_of(c, key)] = fresh;
		lru_push(c, fresh);
		c->count++;
		evict(c);
		pthread_mutex_unlock(&c->lock);
		*out = fresh;
		return CLAIM_MINE;
	}
	if (fresh)
		free_push(c, fresh);
	pthread_mutex_unlock(&c->lock);
	*out = ch;
	return ch ? CLAIM_HIT : CLAIM_BUSY;
}

void chunk_cache_done(struct chunk_cache *c, struct chunk *ch, bool ok)
{
	pthread_mutex_lock(&c->lock);
	ch->loading = false;
	if (!ok)	/* waiters find nothing and load it themselves */
		uncache(c, ch);
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->lock);
}

void chunk_cache_offer(struct chunk_cache *c, struct chunk *ch)
{
	struct chunk *old;
	size_t b;

	pthread_mutex_lock(&c->lock);
	b = bucket_of(c, ch->key);
	old = hash_find(c, ch->key);
	if (old) {	/* the same bytes: keep the one there */
		pthread_mutex_unlock(&c->lock);
		chunk_put(c, ch);
		return;
	}
	ch->cached = true;
	ch->hnext = c->buckets[b];
	c->buckets[b] = ch;
	lru_push(c, ch);
	c->count++;
	ch->refs--;
	evict(c);
	pthread_mutex_unlock(&c->lock);
}

void chunk_put(struct chunk_cache *c, struct chunk *ch)
{
	if (!ch)
		return;
	pthread_mutex_lock(&c->lock);
	if (--ch->refs == 0) {
		if (!ch->cached)
			free_push(c, ch);
		else if (c->count > c->max)
			evict(c);
	}
	pthread_mutex_unlock(&c->lock);
}

struct chunk *chunk_cache_ref(struct chunk_cache *c,
			      const uint8_t key[SNAP_KEY_LEN])
{
	struct chunk *ch;

	pthread_mutex_lock(&c->lock);
	ch = hash_find(c, key);
	if (ch && ch->loading)
		ch = NULL;
	if (ch) {
		ch->refs++;
		lru_unlink(c, ch);
		lru_push(c, ch);
	}
	pthread_mutex_unlock(&c->lock);
	return ch;
}

bool chunk_cache_has(struct chunk_cache *c, const uint8_t key[SNAP_KEY_LEN])
{
	bool has;

	pthread_mutex_lock(&c->lock);
	has = hash_find(c, key) != NULL;
	pthread_mutex_unlock(&c->lock);
	return has;
}
