/* SPDX-License-Identifier: MIT */
/*
 * Writing an open image (store_read.c reads it).
 *
 * A whole chunk written is stored at once; partial writes go to
 * per-chunk buffers (dirty[]), which a flush stores as chunks; the map
 * takes each new key.
 */
#include "snapshot/store/store_image.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- storing what was written -------------------------------------------- */

/* Under im->lock: chunk i of the head delta is now key. */
int image_map_set(struct image *im, uint64_t i, const uint8_t *key)
{
	/* The state page first: with it, neither bit can fail to be set
	 * once the map has the key. */
	int ret = state_make(im, i);

	if (!ret)
		ret = map_put(im, i, key);
	if (ret)
		return ret;
	chunk_bit_set(im, i, BIT_OWN);
	im->npending += (uint64_t)chunk_bit_set(im, i, BIT_PENDING);
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
	struct chunk *ch = dirty_of(im, i);
	int ret;

	if (!ch)
		return 0;
	ret = store_chunk(im, i, ch->data, &ch->patch, ch->key, err);
	if (ret)
		return ret;
	ret = image_map_set(im, i, ch->key);
	if (ret)
		return snap_err_set(err, ret, "out of memory");
	dirty_take(im, i);
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

	for (uint64_t i = image_next(im, 0, NEXT_DIRTY);
	     i < im->nmap && im->ndirty && !ret;
	     i = image_next(im, i + 1, NEXT_DIRTY))
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

	if (dirty_of(im, i))
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
			if (dirty_of(im, i)) {
				chunk_put(s->cache, ch);
				return 0;
			}
		} while (memcmp(key, map_get(im, i), SNAP_KEY_LEN));
	}
	if (dirty_set(im, i, ch)) {
		chunk_put(s->cache, ch);
		return snap_err_set(err, -ENOMEM, "out of memory");
	}
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

/* Under im->lock: chunk i is now the whole chunk key, already stored. */
static int image_take_whole(struct image *im, uint64_t i,
			    const uint8_t key[SNAP_KEY_LEN], struct snap_err *err)
{
	if (memcmp(map_get(im, i), key, SNAP_KEY_LEN) &&
	    image_map_set(im, i, key))
		return snap_err_set(err, -ENOMEM, "out of memory");
	chunk_put(im->s->cache, dirty_take(im, i));
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

/*
 * The bytes of a write of len at off that fit below SNAP_IMAGE_MAX: len,
 * fewer (a short write), or -EFBIG with a message when none do.
 */
static ssize_t write_fits(size_t len, uint64_t off, struct snap_err *err)
{
	if (off >= SNAP_IMAGE_MAX)
		return snap_err_set(err, -EFBIG, "write at %llu: past the "
				    "largest image, %llu bytes",
				    (unsigned long long)off,
				    (unsigned long long)SNAP_IMAGE_MAX);
	if (len > SNAP_IMAGE_MAX - off)
		len = (size_t)(SNAP_IMAGE_MAX - off);
	return (ssize_t)(len > SSIZE_MAX ? SSIZE_MAX : len);
}

ssize_t snap_image_write(struct snap_image *h, const void *buf, size_t len,
			 uint64_t off, struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	const uint8_t *p = buf;
	size_t done = 0;
	ssize_t fits;
	int ret = 0;

	uint32_t cs = s->chunk_size;
	/* The whole chunks the write covers: [first, first + nwhole). */
	uint64_t first = off / cs + (off % cs != 0), nwhole = 0;
	uint8_t (*keys)[SNAP_KEY_LEN] = NULL;

	if (!h->write)
		return image_not_writable(im, err);
	fits = write_fits(len, off, err);
	if (fits < 0)
		return fits;
	len = (size_t)fits;
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
	if (!ret)
		ret = image_write_begin(im, err);
	/* Room first; the size moves only over what was written (below). */
	if (!ret && (ret = image_reserve(im, off + len, err)))
		snap_err_prefix(err, ret, "write at %llu",
				(unsigned long long)off);
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
		memcpy(dirty_of(im, i)->data + in, p + done, n);
		patch_mark(&dirty_of(im, i)->patch, in, n);
		done += n;
		if (im->ndirty * s->chunk_size > s->dirty_max)
			ret = image_flush(im, err);
	}
	/* What was written counts, even when the rest failed. */
	if (off + done > im->size)
		im->size = off + done;
	if (done)
		image_modified(im);
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
	free(keys);
	return ret ? ret : (ssize_t)done;
}

/*
 * Under im->lock: make every page with an entry in [from, to) a truncate
 * zeroes im's own, with its state, so that zeroing them cannot fail.
 */
static int cut_prepare(struct image *im, uint64_t from, uint64_t to)
{
	for (uint64_t i = image_next(im, from, NEXT_MAP); i < to;
	     i = image_next(im, i + 1, NEXT_MAP)) {
		if (key_is_zero(map_get(im, i)))
			continue;
		if (map_own(im, i) || state_make(im, i))
			return -ENOMEM;
		i |= MAP_PAGE - 1;	/* the rest of the page is ready */
	}
	return 0;
}

/*
 * Under im->lock, after cut_prepare(): chunks [from, to) are cut off
 * (they read as zeros if the image grows again). Cannot fail.
 */
static void cut_chunks(struct image *im, uint64_t from, uint64_t to)
{
	for (uint64_t i = image_next(im, from, NEXT_MAP | NEXT_DIRTY); i < to;
	     i = image_next(im, i + 1, NEXT_MAP | NEXT_DIRTY)) {
		chunk_put(im->s->cache, dirty_take(im, i));
		if (!key_is_zero(map_get(im, i)))
			image_map_set(im, i, map_zero);
	}
}

/*
 * Under im->lock: everything a truncate to size may fail at, done before
 * anything changes: room, the buffer of the chunk it cuts inside (its
 * current bytes: nothing lost should the truncate go no further), the
 * pages it zeroes made im's own. The lock drops while that chunk loads;
 * from the last step on it is held.
 */
static int truncate_prepare(struct image *im, uint64_t size,
			    struct snap_err *err)
{
	struct snap_store *s = im->s;
	uint64_t i = size / s->chunk_size;
	int ret;

	ret = image_reserve(im, size, err);
	if (!ret && size < im->size && size % s->chunk_size &&
	    (dirty_of(im, i) || !key_is_zero(map_get(im, i))))
		ret = dirty_get(im, i, false, err);
	if (!ret && size < im->size &&
	    cut_prepare(im, chunks_for(s, size), chunks_for(s, im->size)))
		ret = snap_err_set(err, -ENOMEM, "out of memory");
	return ret;
}

/* Under im->lock, after truncate_prepare(): the truncate, which cannot
 * fail. */
static void truncate_apply(struct image *im, uint64_t size)
{
	struct snap_store *s = im->s;
	size_t in = (size_t)(size % s->chunk_size);
	struct chunk *ch;

	if (size < im->size) {
		if (chunks_for(s, size) < im->head_floor)
			im->head_floor = chunks_for(s, size);
		cut_chunks(im, chunks_for(s, size), chunks_for(s, im->size));
		ch = in ? dirty_of(im, size / s->chunk_size) : NULL;
		if (ch) {
			memset(ch->data + in, 0, s->chunk_size - in);
			patch_mark(&ch->patch, in, s->chunk_size - in);
		}
	}
	im->size = size;
	image_modified(im);
}

int snap_image_truncate(struct snap_image *h, uint64_t size,
			struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	int ret;

	if (!h->write)
		return image_not_writable(im, err);
	pthread_rwlock_rdlock(&s->gc_lock);
	pthread_mutex_lock(&im->lock);
	ret = image_write_begin(im, err);
	if (!ret && (ret = truncate_prepare(im, size, err)))
		snap_err_prefix(err, ret, "truncate to %llu",
				(unsigned long long)size);
	else if (!ret)
		truncate_apply(im, size);
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
	return ret;
}
