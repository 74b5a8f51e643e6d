/* SPDX-License-Identifier: MIT */
/*
 * The fetch pool: a few threads that load chunks into the cache ahead of
 * the readers that will want them, so that the chunks of one read, the
 * neighbours of a read that clusters with the one before, and a recorded
 * working set come off the backend in parallel rather than one after
 * another.
 *
 * A job is a key. Its worker claims the key in the cache without waiting
 * (chunk_cache_claim): a chunk already there, or being loaded by a reader,
 * is nobody's job twice. A failed load is dropped quietly: the reader
 * that wants the chunk loads it again itself and reports the error with
 * the image and the offset. The queue is bounded; a job that finds it
 * full is dropped too (a reader loads the chunk itself), so the pool
 * never holds more than its queue and one chunk a worker beyond the
 * cache's bound.
 *
 * Threads start at the first job and stop when the pool is freed.
 */
#include "snapshot/store/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_QUEUE	256

struct fetch_pool {
	struct snap_store *s;
	pthread_mutex_t lock;
	pthread_cond_t work;
	bool stop;
	unsigned nthreads, started;
	pthread_t *threads;
	uint8_t (*queue)[SNAP_KEY_LEN];	/* a ring of FETCH_QUEUE keys */
	size_t head, len;
};

int fetch_pool_new(struct snap_store *s, unsigned nthreads,
		   struct fetch_pool **out)
{
	struct fetch_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->threads = calloc(nthreads, sizeof(*p->threads));
	p->queue = calloc(FETCH_QUEUE, sizeof(*p->queue));
	if (!p->threads || !p->queue) {
		free(p->threads);
		free(p->queue);
		free(p);
		return -ENOMEM;
	}
	p->s = s;
	p->nthreads = nthreads;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	*out = p;
	return 0;
}

/* Load key into the cache unless it is there or on its way. */
static void fetch_one(struct snap_store *s, const uint8_t key[SNAP_KEY_LEN])
{
	struct snap_err err;
	struct chunk *ch;
	int ret;

	ret = chunk_cache_claim(s->cache, key, false, &ch);
	if (ret == CLAIM_MINE) {
		ret = chunk_load(s, key, ch->data, &ch->patch, &err);
		chunk_cache_done(s->cache, ch, ret == 0);
	}
	chunk_put(s->cache, ch);
}

static void *worker(void *arg)
{
	struct fetch_pool *p = arg;
	uint8_t key[SNAP_KEY_LEN];

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->len && !p->stop)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop)
			break;
		memcpy(key, p->queue[p->head], SNAP_KEY_LEN);
		p->head = (p->head + 1) % FETCH_QUEUE;
		p->len--;
		pthread_mutex_unlock(&p->lock);
		fetch_one(p->s, key);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

bool fetch_ahead(struct fetch_pool *p, const uint8_t key[SNAP_KEY_LEN])
{
	bool queued = false;

	pthread_mutex_lock(&p->lock);
	/* One more thread while jobs wait for one, up to the bound. */
	if (p->started < p->nthreads && p->len >= p->started &&
	    !pthread_create(&p->threads[p->started], NULL, worker, p))
		p->started++;
	if (p->started && p->len < FETCH_QUEUE) {
		memcpy(p->queue[(p->head + p->len) % FETCH_QUEUE], key,
		       SNAP_KEY_LEN);
		p->len++;
		queued = true;
		pthread_cond_signal(&p->work);
	}
	pthread_mutex_unlock(&p->lock);
	return queued;
}

void fetch_pool_free(struct fetch_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p->queue);
	free(p);
}
