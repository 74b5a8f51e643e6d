/* SPDX-License-Identifier: MIT */
/*
 * Reading and writing an open image.
 *
 * A whole chunk written is stored at once; partial writes go to
 * per-chunk buffers (dirty[]), which a flush stores as chunks; the map
 * takes each new key.
 */
#include "store_image.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Key's chunk with a reference: from the cache, from a load another
 * thread has in flight, or loaded here. *missed: whether it was not
 * simply in the cache.
 */
static int chunk_get(struct snap_store *s, const uint8_t key[SNAP_KEY_LEN],
		     struct chunk **out, bool *missed, struct snap_err *err)
{
	int ret;

	ret = chunk_cache_claim(s->cache, key, false, out);
	*missed = ret != CLAIM_HIT;
	if (ret == CLAIM_BUSY)
		ret = chunk_cache_claim(s->cache, key, true, out);
	if (ret == -ENOMEM)
		return snap_err_set(err, ret, "out of memory");
	if (ret != CLAIM_MINE)
		return 0;
	ret = chunk_load(s, key, (*out)->data, &(*out)->patch, err);
	chunk_cache_done(s->cache, *out, ret == 0);
	if (ret) {
		chunk_put(s->cache, *out);
		*out = NULL;
	}
	return ret;
}

/*
 * Bytes [in, in + n) of chunk i's current content into out, with im->lock
 * held on entry and on return (dropped while loading); pi (may be NULL)
 * gets what they are made of. Returns 0, or a negative errno with
 * im->lock held.
 */
static int chunk_read_locked(struct image *im, uint64_t i, uint8_t *out,
			     size_t in, size_t n, bool direct,
			     struct chunk_patch *pi, struct snap_err *err)
{
	static const uint8_t zero[SNAP_KEY_LEN];
	struct snap_store *s = im->s;
	uint8_t key[SNAP_KEY_LEN];
	struct chunk *ch;
	char label[64];
	bool missed;
	int ret;

	if (i >= chunks_for(s, im->size)) {
		memset(out, 0, n);
		patch_whole(pi, zero);
		return 0;
	}
	if (im->dirty[i]) {
		memcpy(out, im->dirty[i]->data + in, n);
		if (pi)
			*pi = im->dirty[i]->patch;
		return 0;
	}
	memcpy(key, map_get(im, i), SNAP_KEY_LEN);
	if (!bit_get(im->seen, i)) {
		bit_set(im->seen, i);
		im->nseen++;
	}
	image_record(im, i);
	if (key_is_zero(key)) {
		memset(out, 0, n);
		patch_whole(pi, zero);
		return 0;
	}
	pthread_mutex_unlock(&im->lock);
	ch = NULL;
	missed = false;
	ret = 0;
	if (direct && n == s->chunk_size &&
	    !(ch = chunk_cache_ref(s->cache, key)))
		/* Straight into out, and not kept. */
		ret = chunk_load(s, key, out, pi, err);
	else if (!ch)
		ret = chunk_get(s, key, &ch, &missed, err);
	if (ch) {
		memcpy(out, ch->data + in, n);
		if (pi)
			*pi = ch->patch;
	}
	chunk_put(s->cache, ch);
	pthread_mutex_lock(&im->lock);
	im->fetched += missed;
	if (ret) {
		image_label(im, label, sizeof(label));
		snap_err_prefix(err, ret, "%s: offset %llu", label,
				(unsigned long long)i * s->chunk_size);
	}
	return ret;
}

/* Under im->lock: queue loads of chunks [first, end) not yet in memory. */
static uint64_t load_ahead(struct image *im, uint64_t first, uint64_t end)
{
	struct snap_store *s = im->s;
	uint64_t n = chunks_for(s, im->size), queued = 0;

	for (uint64_t j = first; j < end && j < n; j++) {
		if (im->dirty[j] || key_is_zero(map_get(im, j)) ||
		    chunk_cache_has(s->cache, map_get(im, j)))
			continue;
		if (!fetch_ahead(s->pool, map_get(im, j)))
			break;
		queued++;
	}
	return queued;
}

/* Chunks a miss may start loading past the read's end, when misses cluster
 * (the next one within CLUSTER chunks of the last). */
#define CLUSTER	64

/*
 * Under im->lock, before reading chunks [first, end): when the first is
 * not in the cache, the rest load in parallel (the fetch pool) while this
 * thread loads the first; when this miss is near the one before, as many
 * chunks again past end load too.
 */
static void read_ahead(struct image *im, uint64_t first, uint64_t end)
{
	struct snap_store *s = im->s;
	uint64_t last = im->last_miss;

	if (first >= chunks_for(s, im->size) || im->dirty[first] ||
	    key_is_zero(map_get(im, first)) ||
	    chunk_cache_has(s->cache, map_get(im, first)))
		return;
	im->last_miss = end;
	if (last && first + CLUSTER >= last && first <= last + CLUSTER)
		end += end - first;
	load_ahead(im, first + 1, end);
}

static ssize_t image_read(struct snap_image *h, void *buf, size_t len,
			  uint64_t off, bool direct, struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	uint8_t *p = buf;
	size_t done = 0;
	int ret = 0;

	pthread_rwlock_rdlock(&s->gc_lock);
	pthread_mutex_lock(&im->lock);
	if (!direct && len > s->chunk_size && off < im->size)
		read_ahead(im, off / s->chunk_size,
			   (off + len - 1) / s->chunk_size + 1);
	while (done < len && off + done < im->size) {
		uint64_t pos = off + done, i = pos / s->chunk_size;
		size_t in = (size_t)(pos % s->chunk_size);
		size_t n = s->chunk_size - in;

		if (n > len - done)
			n = len - done;
		if (n > im->size - pos)
			n = (size_t)(im->size - pos);
		ret = chunk_read_locked(im, i, p + done, in, n, direct, NULL,
					err);
		if (ret)
			break;
		done += n;
	}
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
	return ret ? ret : (ssize_t)done;
}

ssize_t snap_image_read(struct snap_image *h, void *buf, size_t len,
			uint64_t off, struct snap_err *err)
{
	return image_read(h, buf, len, off, false, err);
}

ssize_t snap_image_read_direct(struct snap_image *h, void *buf, size_t len,
			       uint64_t off, struct snap_err *err)
{
	return image_read(h, buf, len, off, true, err);
}

uint64_t snap_image_prefetch(struct snap_image *h, uint64_t index,
			     uint64_t count)
{
	struct image *im = h->im;
	uint64_t queued;

	pthread_mutex_lock(&im->lock);
	queued = load_ahead(im, index, index + count < index ? UINT64_MAX
							     : index + count);
	pthread_mutex_unlock(&im->lock);
	return queued;
}

/* ---- storing what was written -------------------------------------------- */

/* Under im->lock: chunk i of the head delta is now key. */
int image_map_set(struct image *im, uint64_t i, const uint8_t *key)
{
	int ret = map_put(im, i, key);

	if (ret)
		return ret;
	bit_set(im->own, i);
	if (!bit_get(im->pending, i)) {
		bit_set(im->pending, i);
		im->npending++;
	}
	return 0;
}

/* ret, with a message naming im and chunk i: storing it failed. */
static int store_chunk_err(struct image *im, uint64_t i, int ret,
			   struct snap_err *err)
{
	char label[64];

	image_label(im, label, sizeof(label));
	return snap_err_set(err, ret, "%s: offset %llu: storing a chunk: %s",
			    label, (unsigned long long)i * im->s->chunk_size,
			    strerror(-ret));
}

/*
 * Store data as chunk i of im (key it; a patch of p's base when p, may be
 * NULL, makes that worth it); the message names im and i.
 */
static int store_chunk(struct image *im, uint64_t i, const uint8_t *data,
		       struct chunk_patch *p, uint8_t key[SNAP_KEY_LEN],
		       struct snap_err *err)
{
	bool stored;
	int ret;

	ret = chunk_store(im->s, data, p, key, &stored);
	return ret ? store_chunk_err(im, i, ret, err) : 0;
}

int image_flush_one(struct image *im, uint64_t i, struct snap_err *err)
{
	struct snap_store *s = im->s;
	struct chunk *ch = im->dirty[i];
	int ret;

	if (!ch)
		return 0;
	ret = store_chunk(im, i, ch->data, &ch->patch, ch->key, err);
	if (ret)
		return ret;
	ret = image_map_set(im, i, ch->key);
	if (ret)
		return snap_err_set(err, ret, "out of memory");
	im->dirty[i] = NULL;
	im->ndirty--;
	if (key_is_zero(ch->key))
		chunk_put(s->cache, ch);
	else	/* what was just written is likely read next */
		chunk_cache_offer(s->cache, ch);
	return 0;
}

/* Under im->lock: store every dirty chunk. */
int image_flush(struct image *im, struct snap_err *err)
{
	int ret = 0;

	for (uint64_t i = 0; i < im->nmap && im->ndirty && !ret; i++)
		ret = image_flush_one(im, i, err);
	return ret;
}

/* Under im->lock: a dirty buffer for chunk i holding its current bytes. */
static int dirty_get(struct image *im, uint64_t i, bool whole,
		     struct snap_err *err)
{
	struct snap_store *s = im->s;
	struct chunk *ch;
	int ret;

	if (im->dirty[i])
		return 0;
	ch = chunk_alloc(s->cache);
	if (!ch)
		return snap_err_set(err, -ENOMEM, "out of memory");
	if (whole) {
		/* about to be overwritten entirely */
	} else {
		uint8_t key[SNAP_KEY_LEN];

		/* The lock drops while loading: start again if the chunk
		 * changed meanwhile. */
		do {
			memcpy(key, map_get(im, i), SNAP_KEY_LEN);
			ret = chunk_read_locked(im, i, ch->data, 0,
						s->chunk_size, false,
						&ch->patch, err);
			if (ret) {
				chunk_put(s->cache, ch);
				return ret;
			}
			if (im->dirty[i]) {
				chunk_put(s->cache, ch);
				return 0;
			}
		} while (memcmp(key, map_get(im, i), SNAP_KEY_LEN));
	}
	im->dirty[i] = ch;
	im->ndirty++;
	return 0;
}

int image_cut_key(struct image *im, uint64_t size, uint8_t key[SNAP_KEY_LEN],
		  struct snap_err *err)
{
	struct snap_store *s = im->s;
	uint64_t i = size / s->chunk_size;
	size_t in = (size_t)(size % s->chunk_size);
	struct chunk *ch, *src;
	bool missed;
	int ret;

	ret = image_flush_one(im, i, err);
	if (ret)
		return ret;
	if (key_is_zero(map_get(im, i))) {
		memset(key, 0, SNAP_KEY_LEN);
		return 0;
	}
	ch = chunk_alloc(s->cache);
	if (!ch)
		return snap_err_set(err, -ENOMEM, "out of memory");
	ret = chunk_get(s, map_get(im, i), &src, &missed, err);
	if (ret) {
		chunk_put(s->cache, ch);
		return ret;
	}
	memcpy(ch->data, src->data, in);
	memset(ch->data + in, 0, s->chunk_size - in);
	ch->patch = src->patch;
	if (!ch->patch.valid)
		patch_whole(&ch->patch, src->key);
	patch_mark(&ch->patch, in, s->chunk_size - in);
	chunk_put(s->cache, src);
	ret = store_chunk(im, i, ch->data, &ch->patch, key, err);
	memcpy(ch->key, key, SNAP_KEY_LEN);
	if (ret || key_is_zero(key))
		chunk_put(s->cache, ch);
	else
		chunk_cache_offer(s->cache, ch);
	return ret;
}

/* Under im->lock: set the size (the arrays follow). */
int image_set_size(struct image *im, uint64_t size)
{
	int ret = image_reserve(im, chunks_for(im->s, size));

	if (!ret) {
		im->size = size;
		im->meta_pending = true;
	}
	return ret;
}

/* Under im->lock: chunk i is now the whole chunk key, already stored. */
static int image_take_whole(struct image *im, uint64_t i,
			    const uint8_t key[SNAP_KEY_LEN], struct snap_err *err)
{
	if (im->dirty[i]) {
		chunk_put(im->s->cache, im->dirty[i]);
		im->dirty[i] = NULL;
		im->ndirty--;
	}
	if (memcmp(map_get(im, i), key, SNAP_KEY_LEN) &&
	    image_map_set(im, i, key))
		return snap_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

/* Under im->lock: chunk i is now data (a whole chunk), stored at once. */
static int store_whole(struct image *im, uint64_t i, const uint8_t *data,
		       struct snap_err *err)
{
	uint8_t key[SNAP_KEY_LEN];
	int ret;

	ret = store_chunk(im, i, data, NULL, key, err);
	return ret ? ret : image_take_whole(im, i, key, err);
}

/* ---- whole chunks keyed and stored in parallel ----------------------------- */

/* Threads a write of many whole chunks keys and stores them on. */
#define WHOLE_THREADS_MAX	8

struct whole_job {
	struct snap_store *s;
	const uint8_t *data;		/* the first chunk's bytes */
	uint8_t (*keys)[SNAP_KEY_LEN];
	uint64_t count;
	uint64_t next;			/* the next chunk to take */
	int ret;			/* the first error */
};

static void *whole_worker(void *arg)
{
	struct whole_job *j = arg;
	uint32_t cs = j->s->chunk_size;
	uint64_t k;
	bool stored;
	int ret;

	while ((k = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) <
	       j->count) {
		ret = chunk_store(j->s, j->data + k * cs, NULL, j->keys[k],
				  &stored);
		if (ret) {
			int zero = 0;

			__atomic_compare_exchange_n(&j->ret, &zero, ret, false,
						    __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

static unsigned whole_threads(uint64_t count)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n > WHOLE_THREADS_MAX)
		n = WHOLE_THREADS_MAX;
	if (n < 1)
		n = 1;
	return (uint64_t)n < count ? (unsigned)n : (unsigned)count;
}

/*
 * Key and store count whole chunks at data into keys, on as many threads
 * as there are CPUs (the caller's one of them). Without im->lock: the
 * hashing and compression of a large write is most of its time, and
 * other readers and writers of the image go on meanwhile.
 */
static int store_wholes(struct snap_store *s, const uint8_t *data,
			uint64_t count, uint8_t (*keys)[SNAP_KEY_LEN])
{
	struct whole_job j = { s, data, keys, count, 0, 0 };
	pthread_t t[WHOLE_THREADS_MAX];
	unsigned n = whole_threads(count), started = 0;

	while (started + 1 < n &&
	       !pthread_create(&t[started], NULL, whole_worker, &j))
		started++;
	whole_worker(&j);
	while (started)
		pthread_join(t[--started], NULL);
	return j.ret;
}

ssize_t snap_image_write(struct snap_image *h, const void *buf, size_t len,
			 uint64_t off, struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	const uint8_t *p = buf;
	size_t done = 0;
	int ret = 0;

	uint32_t cs = s->chunk_size;
	/* The whole chunks the write covers: [first, first + nwhole). */
	uint64_t first = off / cs + (off % cs != 0), nwhole = 0;
	uint8_t (*keys)[SNAP_KEY_LEN] = NULL;

	if (!h->write)
		return image_not_writable(im, err);
	if (off + len < off)
		return snap_err_set(err, -EFBIG, "write past 2^64");
	if ((off + len) / cs > first)
		nwhole = (off + len) / cs - first;
	pthread_rwlock_rdlock(&s->gc_lock);
	/* Several whole chunks are keyed and stored first, in parallel,
	 * straight from the caller's buffer; the map takes their keys
	 * below, in order with the rest of the write. */
	if (nwhole >= 2) {
		keys = malloc(nwhole * SNAP_KEY_LEN);
		if (!keys)
			ret = snap_err_set(err, -ENOMEM, "out of memory");
		else if ((ret = store_wholes(s, p + (first * cs - off), nwhole,
					     keys)))
			ret = store_chunk_err(im, first, ret, err);
	}
	pthread_mutex_lock(&im->lock);
	if (!ret && off + len > im->size) {
		ret = image_set_size(im, off + len);
		if (ret)
			ret = snap_err_set(err, ret, "write at %llu: %s",
					   (unsigned long long)off,
					   strerror(-ret));
	}
	while (!ret && done < len) {
		uint64_t pos = off + done, i = pos / cs;
		size_t in = (size_t)(pos % cs);
		size_t n = cs - in;

		if (n > len - done)
			n = len - done;
		if (keys && i >= first && i < first + nwhole) {
			ret = image_take_whole(im, i, keys[i - first], err);
			if (ret)
				break;
			done += n;
			continue;
		}
		/* A whole chunk is stored straight from the caller's buffer:
		 * no copy, no buffer to fault in. */
		if (n == cs) {
			ret = store_whole(im, i, p + done, err);
			if (ret)
				break;
			done += n;
			continue;
		}
		ret = dirty_get(im, i, false, err);
		if (ret)
			break;
		memcpy(im->dirty[i]->data + in, p + done, n);
		patch_mark(&im->dirty[i]->patch, in, n);
		done += n;
		if (im->ndirty * s->chunk_size > s->dirty_max)
			ret = image_flush(im, err);
	}
	im->mtime_ns = store_now_ns();
	im->meta_pending = true;
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
	free(keys);
	return ret ? ret : (ssize_t)done;
}

int snap_image_truncate(struct snap_image *h, uint64_t size,
			struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	uint64_t i, n_new, n_old;
	int ret = 0;

	if (!h->write)
		return image_not_writable(im, err);
	pthread_rwlock_rdlock(&s->gc_lock);
	pthread_mutex_lock(&im->lock);
	n_new = chunks_for(s, size);
	n_old = chunks_for(s, im->size);
	/* What is cut off reads as zeros if the image grows again. */
	for (i = n_new; i < n_old && !ret; i++) {
		if (im->dirty[i]) {
			chunk_put(s->cache, im->dirty[i]);
			im->dirty[i] = NULL;
			im->ndirty--;
		}
		if (!key_is_zero(map_get(im, i)) &&
		    image_map_set(im, i, map_zero))
			ret = snap_err_set(err, -ENOMEM, "out of memory");
	}
	if (size < im->size && size % s->chunk_size) {
		size_t in = (size_t)(size % s->chunk_size);

		i = size / s->chunk_size;
		if (im->dirty[i] || !key_is_zero(map_get(im, i))) {
			ret = dirty_get(im, i, false, err);
			if (!ret) {
				memset(im->dirty[i]->data + in, 0,
				       s->chunk_size - in);
				patch_mark(&im->dirty[i]->patch, in,
					   s->chunk_size - in);
			}
		}
	}
	if (!ret)
		ret = image_set_size(im, size);
	if (ret)
		snap_err_prefix(err, ret, "truncate to %llu",
				(unsigned long long)size);
	im->mtime_ns = store_now_ns();
	im->meta_pending = true;
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
	return ret;
}
