/* SPDX-License-Identifier: MIT */
/*
 * Reading an open image: its chunks from the cache, from a load in
 * flight or loaded here, and those ahead of reads that cluster.
 */
#include "snapshot/store/store_image.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int chunk_get(struct snap_store *s, const uint8_t key[SNAP_KEY_LEN],
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

int chunk_read_locked(struct image *im, uint64_t i, uint8_t *out, size_t in,
		      size_t n, bool direct, struct chunk_patch *pi,
		      struct snap_err *err)
{
	static const uint8_t zero[SNAP_KEY_LEN];
	struct snap_store *s = im->s;
	uint8_t key[SNAP_KEY_LEN];
	struct chunk *ch = dirty_of(im, i);
	char label[64];
	bool missed;
	int ret;

	if (i >= chunks_for(s, im->size)) {
		memset(out, 0, n);
		patch_whole(pi, zero);
		return 0;
	}
	if (ch) {
		memcpy(out, ch->data + in, n);
		if (pi)
			*pi = ch->patch;
		return 0;
	}
	memcpy(key, map_get(im, i), SNAP_KEY_LEN);
	ret = chunk_bit_set(im, i, BIT_SEEN);
	if (ret < 0)
		return snap_err_set(err, ret, "out of memory");
	im->nseen += (uint64_t)ret;
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

	for (uint64_t j = image_next(im, first, NEXT_MAP); j < end && j < n;
	     j = image_next(im, j + 1, NEXT_MAP)) {
		if (dirty_of(im, j) || key_is_zero(map_get(im, j)) ||
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

	if (first >= chunks_for(s, im->size) || dirty_of(im, first) ||
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
