/* SPDX-License-Identifier: MIT */
/*
 * Loading an image's chain of deltas, and its head delta's journal.
 *
 * A sync appends the changed entries to the head delta's journal as one
 * frame, after the backend made the chunks durable, and fsyncs it. A
 * journal much larger than the entries it holds is rewritten as one
 * frame.
 */
#include "snapshot/store/store_image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/store/frame.h"
#include "snapshot/format/manifest.h"

#define JOURNAL_COMPACT_MIN	(1u << 20)

/* Whatever snapshot a store keeps, its memory.bin fits in one image. */
_Static_assert(SNAP_IMAGE_MAX >= SNAP_MEMORY_MAX, "memory.bin fits");
_Static_assert(SNAP_IMAGE_MAX % SNAP_CHUNK_MAX == 0, "whole chunks");

/* ---- loading a chain ------------------------------------------------------ *
 *
 * The newest entry for an index wins, unless the image was cut below it
 * after it was written: every frame's size cuts what is older. So the
 * chain is read newest first (head first, each delta's frames last
 * first) with the smallest size seen so far as the limit.
 */

struct held_frame {
	uint64_t size;
	struct image_times times;
	size_t n;
	uint64_t *indexes;
	uint8_t *keys;
};

struct held {
	struct held_frame *f;
	size_t n, cap;
	bool has_parent;
	bool frozen;
	uint8_t parent[SNAP_ID_LEN];
};

static void held_clear(struct held *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->f[i].indexes);
		free(h->f[i].keys);
	}
	h->n = 0;
	h->frozen = false;
}

static int hold_frame(void *arg, const struct delta_frame *f)
{
	struct held *h = arg;
	struct held_frame *hf;

	if (h->n == 0) {
		h->has_parent = f->has_parent;
		memcpy(h->parent, f->parent, SNAP_ID_LEN);
	}
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 16;
		void *p = realloc(h->f, cap * sizeof(*h->f));

		if (!p)
			return -ENOMEM;
		h->f = p;
		h->cap = cap;
	}
	hf = &h->f[h->n];
	hf->size = f->size;
	hf->times = f->times;
	h->frozen |= f->frozen;
	hf->n = f->n;
	hf->indexes = malloc(f->n ? f->n * sizeof(uint64_t) : 1);
	hf->keys = malloc(f->n ? f->n * SNAP_KEY_LEN : 1);
	if (!hf->indexes || !hf->keys) {
		free(hf->indexes);
		free(hf->keys);
		return -ENOMEM;
	}
	if (f->n) {
		memcpy(hf->indexes, f->indexes, f->n * sizeof(uint64_t));
		memcpy(hf->keys, f->keys, f->n * SNAP_KEY_LEN);
	}
	h->n++;
	return 0;
}

/* Note delta id as the next of im's chain (from the head down). */
static int chain_add(struct image *im, const uint8_t id[SNAP_ID_LEN])
{
	if (im->nchain == im->capchain) {
		size_t cap = im->capchain ? 2 * im->capchain : 8;
		void *p = realloc(im->chain, cap * sizeof(*im->chain));

		if (!p)
			return -ENOMEM;
		im->chain = p;
		im->capchain = cap;
	}
	memcpy(im->chain[im->nchain++], id, SNAP_ID_LEN);
	return 0;
}

/* Resolve im's chain from its head into im->map, and note its deltas. */
int image_load(struct image *im, struct snap_err *err)
{
	struct snap_store *s = im->s;
	uint64_t limit = UINT64_MAX, entries;
	uint8_t delta[SNAP_ID_LEN];
	struct held h = { 0 };
	char label[80];
	size_t end;
	int ret = 0;

	memcpy(delta, im->info.head, SNAP_ID_LEN);
	im->nchain = 0;
	for (im->depth = 1;; im->depth++) {
		char hex[2 * SNAP_ID_LEN + 1];

		snap_id_hex(delta, hex);
		snprintf(label, sizeof(label), "delta %s", hex);
		if (im->depth > CHAIN_MAX) {
			ret = snap_err_set(err, -EBADMSG, "%s: a chain of more "
					   "than %d deltas", label, CHAIN_MAX);
			break;
		}
		held_clear(&h);
		ret = meta_delta_read(&s->meta, delta, label, hold_frame, &h,
				      &end, err);
		if (!ret)
			ret = chain_add(im, delta);
		if (ret == -ENOMEM)
			snap_err_set(err, ret, "%s: out of memory", label);
		if (ret)
			break;
		if (im->depth == 1) {
			struct held_frame *last = &h.f[h.n - 1];

			if (last->size > SNAP_IMAGE_MAX) {
				ret = snap_err_set(err, -EBADMSG, "%s: size "
						   "%llu, at most %llu", label,
						   (unsigned long long)
						   last->size,
						   (unsigned long long)
						   SNAP_IMAGE_MAX);
				break;
			}
			im->size = last->size;
			im->times = last->times;
			im->head_start = chunks_for(s, h.f[0].size);
			im->head_floor = im->head_start;
			for (size_t k = 1; k < h.n; k++)
				if (chunks_for(s, h.f[k].size) < im->head_floor)
					im->head_floor = chunks_for(s,
								    h.f[k].size);
			im->head_has_parent = h.has_parent;
			im->head_frozen = h.frozen;
			memcpy(im->head_parent, h.parent, SNAP_ID_LEN);
			im->jbytes = end;
			/* Room in the directory of pages only: what is made
			 * below follows the entries the chain holds. */
			ret = image_reserve(im, im->size, err);
			if (ret) {
				snap_err_prefix(err, ret, "%s", label);
				break;
			}
		}
		entries = 0;
		for (size_t k = h.n; k-- > 0 && !ret;) {
			struct held_frame *f = &h.f[k];
			uint64_t n = chunks_for(s, f->size);

			if (n < limit)
				limit = n;
			for (size_t i = f->n; i-- > 0 && !ret;) {
				uint64_t idx = f->indexes[i];
				const uint8_t *key = f->keys + SNAP_KEY_LEN * i;

				entries++;
				/* marked: a newer entry for idx was taken */
				if (idx >= limit ||
				    chunk_bit(im, idx, BIT_MARK))
					continue;
				ret = chunk_bit_set(im, idx, BIT_MARK);
				if (ret >= 0)
					ret = map_put(im, idx, key);
				if (!ret && im->depth == 1)
					chunk_bit_set(im, idx, BIT_OWN);
			}
		}
		if (ret) {
			snap_err_set(err, ret, "%s: out of memory", label);
			break;
		}
		if (im->depth == 1)
			im->jentries = entries;
		if (!h.has_parent)
			break;
		memcpy(delta, h.parent, SNAP_ID_LEN);
	}
	held_clear(&h);
	free(h.f);
	bits_clear(im, BIT_MARK);
	return ret;
}

int delta_put(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
	      const uint8_t *buf, size_t len, unsigned flags,
	      struct snap_err *err)
{
	char name[META_NAME_MAX];

	meta_name(name, "deltas", id, "");
	return s->meta.ops->put(s->meta.ctx, name, buf, len, flags, err);
}

int journal_append(struct image *im, const uint8_t *buf, size_t len,
		   bool durable, struct snap_err *err)
{
	struct snap_meta *m = &im->s->meta;
	char name[META_NAME_MAX], label[64];
	int ret;

	ret = adopt_settle(im, err);
	if (ret)
		return ret;
	meta_name(name, "deltas", im->info.head, "");
	/* At the end of what was read or written: a torn append of a
	 * killed writer past it goes. */
	ret = m->ops->append(m->ctx, name, im->jbytes, buf, len, durable, err);
	if (ret) {
		image_label(im, label, sizeof(label));
		return snap_err_prefix(err, ret, "%s: journal", label);
	}
	im->jbytes += len;
	return 0;
}

/* One frame: the image's size and every entry of set bits in which. */
int journal_frame(struct image *im, enum chunk_bit which, uint64_t count,
		  const uint8_t *parent, uint8_t **buf, size_t *len)
{
	struct delta_frame f = {
		.size = im->size,
		.times = im->times,
		.has_parent = parent != NULL,
	};
	uint8_t *keys;
	size_t n = 0;
	int ret;

	if (parent)
		memcpy(f.parent, parent, SNAP_ID_LEN);
	f.indexes = malloc((size_t)(count ? count : 1) * sizeof(uint64_t));
	keys = malloc((size_t)(count ? count : 1) * SNAP_KEY_LEN);
	if (!f.indexes || !keys) {
		free(f.indexes);
		free(keys);
		return -ENOMEM;
	}
	for (uint64_t i = image_next(im, 0, NEXT_STATE);
	     i < im->nmap && n < count; i = image_next(im, i + 1, NEXT_STATE)) {
		if (!chunk_bit(im, i, which))
			continue;
		f.indexes[n] = i;
		memcpy(keys + SNAP_KEY_LEN * n, map_get(im, i), SNAP_KEY_LEN);
		n++;
	}
	f.n = n;
	f.keys = keys;
	ret = meta_delta_encode(&f, buf, len);
	free(f.indexes);
	free(keys);
	return ret;
}

/*
 * Rewrite the head journal as one frame of its entries, atomically. Where
 * other processes may read the head as of their open (s->shared), into a
 * new delta that the image moves onto: the old one stays theirs until gc
 * finds nobody holds it.
 */
static int journal_compact(struct image *im, struct snap_err *err)
{
	struct snap_store *s = im->s;
	uint64_t own = bits_count(im, BIT_OWN);
	uint64_t start = im->head_start, floor = im->head_floor;
	const uint8_t *parent = im->head_has_parent ? im->head_parent : NULL;
	struct image_info ii = im->info;
	uint8_t *buf;
	size_t len;
	int ret;

	ret = journal_frame(im, BIT_OWN, own, parent, &buf, &len);
	if (ret)
		return snap_err_set(err, ret, "out of memory");
	if (!s->shared) {
		ret = delta_put(s, im->info.head, buf, len, META_DURABLE, err);
		free(buf);
		if (ret)
			return ret;
		im->jbytes = len;
		im->jentries = own;
		return 0;
	}
	if (store_new_id(ii.head))
		ret = snap_err_set(err, -errno, "getrandom: %m");
	else
		ret = delta_put(s, ii.head, buf, len,
				META_NOREPLACE | META_DURABLE, err);
	free(buf);
	if (!ret)
		ret = image_info_write(s, &ii, false, META_DURABLE, err);
	if (ret)
		return ret;
	head_moved(im, ii.head, parent, len, own);
	im->head_start = start;
	im->head_floor = floor;
	return 0;
}

/* Under im->lock: make the image's own metadata files durable. */
static int meta_sync(struct image *im, struct snap_err *err)
{
	struct snap_meta *m = &im->s->meta;
	char name[3][META_NAME_MAX], label[64];
	int ret = 0;

	meta_name(name[0], "deltas", im->info.head, "");
	meta_name(name[1], "images", im->info.id, "");
	meta_name(name[2], "images", im->info.id, ".ref");
	for (int i = 0; i < 3 && !ret; i++)
		ret = m->ops->sync(m->ctx, name[i], err);
	if (ret) {
		image_label(im, label, sizeof(label));
		return snap_err_prefix(err, ret, "%s", label);
	}
	im->meta_fresh = false;
	return 0;
}

int adopt_settle(struct image *im, struct snap_err *err)
{
	uint64_t count;
	char label[64];
	uint8_t *buf;
	size_t len;
	int ret;

	if (!im->adopt_pending)
		return 0;
	count = bits_count(im, BIT_OWN);
	ret = journal_frame(im, BIT_OWN, count, im->adopt_from, &buf, &len);
	if (ret)
		return snap_err_set(err, ret, "out of memory");
	ret = delta_put(im->s, im->info.head, buf, len, 0, err);
	free(buf);
	if (ret) {
		image_label(im, label, sizeof(label));
		return snap_err_prefix(err, ret, "%s", label);
	}
	head_moved(im, im->info.head, im->adopt_from, len, count);
	bits_clear(im, BIT_PENDING);
	im->npending = 0;
	im->meta_pending = false;
	im->meta_fresh = true;
	im->adopt_pending = false;
	return 0;
}

/*
 * Under im->lock: flush, and append a frame of what changed. durable:
 * the chunks are made durable before the frame, and the frame before the
 * return, with whatever earlier appends were not.
 */
int image_commit(struct image *im, bool durable, struct snap_err *err)
{
	struct snap_store *s = im->s;
	bool append;
	char label[64];
	uint8_t *buf;
	size_t len;
	int ret;

	ret = image_flush(im, err);
	if (!ret)
		ret = adopt_settle(im, err);
	if (ret)
		return ret;
	append = im->npending || im->meta_pending;
	if (durable && im->meta_fresh) {
		ret = meta_sync(im, err);
		if (ret)
			return ret;
	}
	if (!append && !(durable && im->unsynced))
		return 0;
	image_label(im, label, sizeof(label));
	if (durable) {	/* the chunks before the frame naming them */
		ret = s->backend.ops->sync(s->backend.ctx);
		if (ret)
			return snap_err_set(err, ret, "%s: syncing chunks: %s",
					    label, strerror(-ret));
	}
	if (append) {
		ret = adopt_settle(im, err);
		if (ret)
			return ret;
		ret = journal_frame(im, BIT_PENDING, im->npending, NULL, &buf,
				    &len);
		if (ret)
			return snap_err_set(err, ret, "%s: out of memory",
					    label);
		ret = journal_append(im, buf, len, durable, err);
		free(buf);
		if (ret)
			return ret;
		im->jentries += im->npending;
		bits_clear(im, BIT_PENDING);
		im->npending = 0;
		im->meta_pending = false;
		im->unsynced = true;
	}
	if (!durable)
		return 0;
	if (!append) {	/* earlier appends, not durable then */
		char name[META_NAME_MAX];

		meta_name(name, "deltas", im->info.head, "");
		ret = s->meta.ops->sync(s->meta.ctx, name, err);
		if (ret)
			return snap_err_prefix(err, ret, "%s: journal", label);
	}
	im->unsynced = false;
	if (im->jbytes > JOURNAL_COMPACT_MIN &&
	    im->jentries > 4 * bits_count(im, BIT_OWN))
		ret = journal_compact(im, err);
	return ret;
}

int snap_image_sync(struct snap_image *h, struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	int ret;

	if (!h->write)
		return 0;
	pthread_rwlock_rdlock(&s->gc_lock);
	pthread_mutex_lock(&im->lock);
	ret = image_commit(im, true, err);
	if (!ret)
		image_write_end(im);
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
	return ret;
}

int snap_image_flush(struct snap_image *h, struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	int ret;

	if (!h->write || !s->shared)
		return 0;
	pthread_rwlock_rdlock(&s->gc_lock);
	pthread_mutex_lock(&im->lock);
	/* Durable costs nothing more there: every write is, once done. */
	ret = image_commit(im, true, err);
	if (!ret)
		image_write_end(im);
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
	return ret;
}

/* A new delta file: one frame, no entries; *flen gets its length. */
int delta_create(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		 const uint8_t *parent, uint64_t size,
		 const struct image_times *times, unsigned flags, size_t *flen,
		 struct snap_err *err)
{
	struct delta_frame f = { .size = size, .times = *times };
	uint8_t *buf;
	size_t len;
	int ret;

	if (parent) {
		f.has_parent = true;
		memcpy(f.parent, parent, SNAP_ID_LEN);
	}
	ret = meta_delta_encode(&f, &buf, &len);
	if (ret)
		return snap_err_set(err, ret, "out of memory");
	ret = delta_put(s, id, buf, len, META_NOREPLACE | flags, err);
	free(buf);
	if (flen)
		*flen = len;
	return ret;
}

/* images/<id> pointing at head; with ref, also images/<id>.ref. */
int image_info_write(struct snap_store *s, const struct image_info *ii,
		     bool ref, unsigned flags, struct snap_err *err)
{
	int ret;

	ret = meta_image_write(&s->meta, ii, flags, err);
	if (ret || !ref)
		return ret;
	return meta_ref_write(&s->meta, ii->id, flags, err);
}

/*
 * Under im->lock: im now writes into head, a delta file of jbytes bytes
 * holding jentries entries, whose parent is parent (NULL: none).
 */
void head_moved(struct image *im, const uint8_t head[SNAP_ID_LEN],
		const uint8_t *parent, uint64_t jbytes, uint64_t jentries)
{
	im->head_has_parent = parent != NULL;
	if (parent)
		memcpy(im->head_parent, parent, SNAP_ID_LEN);
	memcpy(im->info.head, head, SNAP_ID_LEN);
	im->head_start = im->head_floor = chunks_for(im->s, im->size);
	im->jbytes = jbytes;
	im->jentries = jentries;
	im->unsynced = false;
	im->head_frozen = false;
}
