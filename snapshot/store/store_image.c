/* SPDX-License-Identifier: MIT */
/*
 * The image object: struct image and its lifetime, the list of open
 * images, create, open, close, stat, touch, and what gc and verify ask of
 * an open image.
 *
 * An open image keeps its whole resolved map in memory (32 bytes a
 * non-zero chunk, in pages: 8 MiB for 16 GiB of them in 64 KiB chunks), so
 * a read costs one lookup however deep the chain; all-zero stretches take
 * nothing, whatever the image's size (store_image.h, struct map_dir).
 */
#include "snapshot/store/store_image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/store/frame.h"

static void image_free(struct image *im)
{
	struct snap_meta *m;

	if (!im)
		return;
	m = &im->s->meta;
	if (im->wlocked)
		m->ops->unlock_image(m->ctx, im->info.id);
	free(im->chain);
	pthread_mutex_destroy(&im->lock);
	map_free(im);
	image_record_free(im);
	free(im);
}

void image_label(const struct image *im, char *buf, size_t size)
{
	char hex[2 * SNAP_ID_LEN + 1];

	snap_id_hex(im->info.id, hex);
	snprintf(buf, size, "image %s", hex);
}

/* ---- the list of open images --------------------------------------------- */

static int by_id(const void *a, const void *b)
{
	return memcmp(a, b, SNAP_ID_LEN);
}

/*
 * Under s->images_lock: publish what this open holds, the deltas of the
 * open images' chains as loaded, for a gc elsewhere (meta.h). Nothing
 * where gc has the store alone.
 */
static int publish_held(struct snap_store *s, struct snap_err *err)
{
	struct snap_meta *m = &s->meta;
	uint8_t (*ids)[SNAP_ID_LEN] = NULL, *buf = NULL;
	size_t n = 0, k = 0, len = 0;
	int ret = 0;

	if (!m->ops->publish)
		return 0;
	for (struct image *im = s->images; im; im = im->next)
		n += im->nchain;
	if (n && !(ids = malloc(n * SNAP_ID_LEN)))
		return snap_err_set(err, -ENOMEM, "out of memory");
	n = 0;
	for (struct image *im = s->images; im; im = im->next)
		for (size_t i = 0; i < im->nchain; i++)
			memcpy(ids[n++], im->chain[i], SNAP_ID_LEN);
	if (n)
		qsort(ids, n, SNAP_ID_LEN, by_id);
	for (size_t i = 0; i < n; i++)
		if (!k || memcmp(ids[k - 1], ids[i], SNAP_ID_LEN))
			memcpy(ids[k++], ids[i], SNAP_ID_LEN);
	if (k)
		ret = meta_open_encode((const uint8_t (*)[SNAP_ID_LEN])ids, k,
				       &buf, &len);
	if (ret)
		ret = snap_err_set(err, ret, "out of memory");
	else
		ret = m->ops->publish(m->ctx, buf, len, err);
	free(buf);
	free(ids);
	return ret;
}

static struct image *find_open(struct snap_store *s,
			       const uint8_t id[SNAP_ID_LEN])
{
	for (struct image *im = s->images; im; im = im->next)
		if (!memcmp(im->info.id, id, SNAP_ID_LEN))
			return im;
	return NULL;
}

int image_get(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
	      struct image **out, struct snap_err *err)
{
	char hex[2 * SNAP_ID_LEN + 1];
	struct image *im;
	int ret;

	pthread_mutex_lock(&s->images_lock);
	im = find_open(s, id);
	if (im) {
		im->opens++;
		pthread_mutex_unlock(&s->images_lock);
		*out = im;
		return 0;
	}
	im = calloc(1, sizeof(*im));
	if (!im) {
		ret = snap_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	im->s = s;
	im->opens = 1;
	pthread_mutex_init(&im->lock, NULL);
	ret = meta_image_read(&s->meta, id, &im->info, err);
	if (ret == -ENOENT) {
		snap_id_hex(id, hex);
		ret = snap_err_set(err, ret, "image %s: no such image", hex);
	}
	if (!ret && memcmp(im->info.id, id, SNAP_ID_LEN)) {
		snap_id_hex(id, hex);
		ret = snap_err_set(err, -EBADMSG, "image %s: names another "
				   "image", hex);
	}
	if (!ret)
		ret = image_load(im, err);
	/* A crash after its head was frozen, before it moved: move now
	 * (with several writers, when this one first writes). */
	if (!ret && im->head_frozen && !s->rdonly && !s->shared)
		ret = image_move_up(im, META_DURABLE, err);
	if (!ret) {
		im->next = s->images;
		s->images = im;
		ret = publish_held(s, err);
		if (ret)
			s->images = im->next;
	}
	if (!ret)
		*out = im;
	else
		image_free(im);
out:
	pthread_mutex_unlock(&s->images_lock);
	return ret;
}

/*
 * Under im->lock, with nothing of its own left to store (it did not hold
 * its writer's lock): load im again from ii, as another writer left it.
 * What it noted as read (resident, a working set's order) starts again.
 */
static int image_reload(struct image *im, const struct image_info *ii,
			struct snap_err *err)
{
	struct image fresh = { .s = im->s, .info = *ii };
	int ret;

	ret = image_load(&fresh, err);
	if (ret) {
		map_free(&fresh);
		free(fresh.chain);
		return ret;
	}
	map_free(im);
	free(im->chain);
	im->info = fresh.info;
	im->size = fresh.size;
	im->times = fresh.times;
	im->depth = fresh.depth;
	im->nmap = fresh.nmap;
	im->dirs = fresh.dirs;
	im->jbytes = fresh.jbytes;
	im->jentries = fresh.jentries;
	im->head_has_parent = fresh.head_has_parent;
	memcpy(im->head_parent, fresh.head_parent, SNAP_ID_LEN);
	im->head_start = fresh.head_start;
	im->head_floor = fresh.head_floor;
	im->head_frozen = fresh.head_frozen;
	im->chain = fresh.chain;
	im->nchain = fresh.nchain;
	im->capchain = fresh.capchain;
	im->nseen = 0;
	im->last_miss = 0;
	im->adopted = false;
	return 0;
}

/*
 * Under im->lock, where im holds nothing of its own to store: load im
 * again if another writer changed it since it was loaded here (its head,
 * or the length of its head's journal); *changed says whether it did.
 * -ENOENT when the image is gone from the store.
 */
static int image_catch_up(struct image *im, bool *changed,
			  struct snap_err *err)
{
	struct snap_meta *m = &im->s->meta;
	char name[META_NAME_MAX];
	struct image_info ii;
	uint64_t size;
	int ret;

	*changed = false;
	meta_name(name, "deltas", im->info.head, "");
	ret = meta_image_read(m, im->info.id, &ii, err);
	if (ret)
		return ret;	/* -ENOENT: the image itself went */
	ret = m->ops->size(m->ctx, name, &size, err);
	if (ret == -ENOENT && memcmp(ii.head, im->info.head, SNAP_ID_LEN)) {
		ret = 0;	/* it moved on, and its old head went */
		size = UINT64_MAX;
	}
	if (ret || (!memcmp(ii.head, im->info.head, SNAP_ID_LEN) &&
		    size == im->jbytes))
		return ret;
	*changed = true;
	return image_reload(im, &ii, err);
}

int image_write_begin(struct image *im, struct snap_err *err)
{
	struct snap_store *s = im->s;
	struct snap_meta *m = &s->meta;
	char label[64];
	bool changed;
	int ret;

	if (!s->shared || im->wlocked)
		return 0;
	image_label(im, label, sizeof(label));
	ret = m->ops->lock_image(m->ctx, im->info.id, err);
	if (ret == -EBUSY)
		return snap_err_set(err, ret, "%s: being written by another "
				    "host or process", label);
	if (ret)
		return snap_err_prefix(err, ret, "%s", label);
	ret = image_catch_up(im, &changed, err);
	if (ret)
		snap_err_prefix(err, ret, "%s", label);
	/* A crash after its head was frozen, before it moved: move now. */
	if (!ret && im->head_frozen)
		ret = image_move_up(im, META_DURABLE, err);
	if (ret) {
		m->ops->unlock_image(m->ctx, im->info.id);
		return ret;
	}
	im->wlocked = true;
	return 0;
}

void image_write_end(struct image *im)
{
	struct snap_meta *m = &im->s->meta;

	if (!im->wlocked || im->npending || im->ndirty || im->meta_pending ||
	    im->adopt_pending || im->unsynced || im->meta_fresh)
		return;
	m->ops->unlock_image(m->ctx, im->info.id);
	im->wlocked = false;
}

int snap_image_refresh(struct snap_image *h, bool *changed,
		       struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	char label[64];
	int ret = 0;

	*changed = false;
	if (!s->shared)
		return 0;
	pthread_rwlock_rdlock(&s->gc_lock);
	pthread_mutex_lock(&s->images_lock);
	pthread_mutex_lock(&im->lock);
	/* Written here: nothing newer is anywhere else. Gone elsewhere:
	 * it reads on as it was, as a removed file open here does. */
	if (!im->wlocked && (ret = image_catch_up(im, changed, err)) == -ENOENT)
		ret = 0;
	pthread_mutex_unlock(&im->lock);
	/* What it holds now, for a gc elsewhere. */
	if (!ret && *changed)
		ret = publish_held(s, err);
	pthread_mutex_unlock(&s->images_lock);
	pthread_rwlock_unlock(&s->gc_lock);
	if (ret) {
		image_label(im, label, sizeof(label));
		snap_err_prefix(err, ret, "%s", label);
	}
	return ret;
}

int store_writable(struct snap_store *s, struct snap_err *err)
{
	if (s->rdonly)
		return snap_err_set(err, -EROFS, "store opened read-only");
	return 0;
}

int snap_image_create(struct snap_store *s, uint64_t size,
		      uint8_t id[SNAP_ID_LEN], struct snap_err *err)
{
	struct image_info ii = { .created_ns = store_now_ns() };
	struct image_times times;
	int ret;

	times.mtime_ns = times.ctime_ns = times.atime_ns = ii.created_ns;
	ret = store_writable(s, err);
	if (ret)
		return ret;
	if (size > SNAP_IMAGE_MAX)
		return snap_err_set(err, -EFBIG, "image of %llu bytes: more "
				    "than the largest image, %llu bytes",
				    (unsigned long long)size,
				    (unsigned long long)SNAP_IMAGE_MAX);
	if (store_new_id(ii.id) || store_new_id(ii.head))
		return snap_err_set(err, -errno, "getrandom: %m");
	pthread_rwlock_rdlock(&s->gc_lock);
	/* Durable with the image's first sync (meta_fresh). */
	ret = delta_create(s, ii.head, NULL, size, &times, 0, NULL, err);
	if (!ret)
		ret = image_info_write(s, &ii, true, 0, err);
	if (!ret)
		store_fresh_add(s, ii.id);
	pthread_rwlock_unlock(&s->gc_lock);
	if (!ret)
		memcpy(id, ii.id, SNAP_ID_LEN);
	return ret;
}

int snap_image_open(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		    unsigned flags, struct snap_image **out,
		    struct snap_err *err)
{
	struct snap_image *h;
	int ret;

	if (flags & SNAP_IMAGE_WRITE) {
		ret = store_writable(s, err);
		if (ret)
			return ret;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return snap_err_set(err, -ENOMEM, "out of memory");
	pthread_rwlock_rdlock(&s->gc_lock);
	ret = image_get(s, id, &h->im, err);
	pthread_rwlock_unlock(&s->gc_lock);
	if (ret) {
		free(h);
		return ret;
	}
	/* Open, it is live; closed without a name, it is garbage again. */
	store_fresh_drop(s, id);
	h->write = flags & SNAP_IMAGE_WRITE;
	pthread_mutex_lock(&s->images_lock);
	h->next = h->im->handles;
	h->im->handles = h;
	pthread_mutex_unlock(&s->images_lock);
	*out = h;
	return 0;
}

/* Drop an image_get() reference; the last frees the image. */
void image_put(struct image *im)
{
	struct snap_store *s = im->s;
	struct image **pp;

	pthread_mutex_lock(&s->images_lock);
	if (--im->opens == 0) {
		for (pp = &s->images; *pp != im; pp = &(*pp)->next)
			;
		*pp = im->next;
		/* A record left too large only keeps more from gc. */
		publish_held(s, NULL);
	} else {
		im = NULL;
	}
	pthread_mutex_unlock(&s->images_lock);
	image_free(im);
}

int snap_image_close(struct snap_image *h, struct snap_err *err)
{
	struct snap_image **pp;
	struct image *im;
	struct snap_store *s;
	int ret = 0;

	if (!h)
		return 0;
	im = h->im;
	s = im->s;
	pthread_rwlock_rdlock(&s->gc_lock);
	if (h->write) {
		pthread_mutex_lock(&im->lock);
		ret = image_commit(im, false, err);
		pthread_mutex_unlock(&im->lock);
	}
	pthread_mutex_lock(&s->images_lock);
	for (pp = &im->handles; *pp != h; pp = &(*pp)->next)
		;
	*pp = h->next;
	pthread_mutex_unlock(&s->images_lock);
	image_put(im);
	pthread_rwlock_unlock(&s->gc_lock);
	free(h);
	return ret;
}

void image_close_all(struct snap_store *s)
{
	struct image *im, *next;

	for (im = s->images; im; im = next) {
		next = im->next;
		if (!s->rdonly)
			image_commit(im, true, NULL);
		while (im->handles) {
			struct snap_image *h = im->handles;

			im->handles = h->next;
			free(h);
		}
		image_free(im);
	}
	s->images = NULL;
}

int image_not_writable(struct image *im, struct snap_err *err)
{
	char label[64];

	image_label(im, label, sizeof(label));
	return snap_err_set(err, -EBADF, "%s: not open for writing", label);
}

uint64_t snap_image_size(struct snap_image *h)
{
	uint64_t size;

	pthread_mutex_lock(&h->im->lock);
	size = h->im->size;
	pthread_mutex_unlock(&h->im->lock);
	return size;
}

void snap_image_stat(struct snap_image *h, struct snap_image_stat *st)
{
	struct image *im = h->im;
	uint64_t n;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&im->lock);
	memcpy(st->id, im->info.id, SNAP_ID_LEN);
	st->size = im->size;
	st->created_ns = im->info.created_ns;
	st->mtime_ns = im->times.mtime_ns;
	st->ctime_ns = im->times.ctime_ns;
	st->atime_ns = im->times.atime_ns;
	st->depth = im->depth;
	st->resident = im->nseen;
	st->fetched = im->fetched;
	st->recording = im->rec != NULL;
	st->recorded = im->rec ? image_recorded(im) : 0;
	n = chunks_for(im->s, im->size);
	for (uint64_t i = image_next(im, 0, NEXT_MAP | NEXT_DIRTY); i < n;
	     i = image_next(im, i + 1, NEXT_MAP | NEXT_DIRTY)) {
		bool dirty = dirty_of(im, i) != NULL;
		bool set = dirty || !key_is_zero(map_get(im, i));

		st->chunks += set;
		st->own_chunks += set && (dirty || chunk_bit(im, i, BIT_OWN));
	}
	pthread_mutex_unlock(&im->lock);
}

int snap_image_set_times(struct snap_image *h, uint64_t atime_ns,
			 uint64_t mtime_ns, struct snap_err *err)
{
	struct image *im = h->im;
	int ret;

	if (!h->write)
		return image_not_writable(im, err);
	pthread_mutex_lock(&im->lock);
	ret = image_write_begin(im, err);
	if (ret) {
		pthread_mutex_unlock(&im->lock);
		return ret;
	}
	image_changed(im);
	/* "now" is the ctime just taken: one instant for all three. */
	if (atime_ns == SNAP_TIME_NOW)
		atime_ns = im->times.ctime_ns;
	if (mtime_ns == SNAP_TIME_NOW)
		mtime_ns = im->times.ctime_ns;
	if (atime_ns != SNAP_TIME_OMIT)
		im->times.atime_ns = atime_ns;
	if (mtime_ns != SNAP_TIME_OMIT)
		im->times.mtime_ns = mtime_ns;
	pthread_mutex_unlock(&im->lock);
	return 0;
}

int snap_image_touch(struct snap_image *h, uint64_t mtime_ns,
		     struct snap_err *err)
{
	return snap_image_set_times(h, SNAP_TIME_OMIT, mtime_ns, err);
}

void image_names_changed(struct snap_store *s, const uint8_t id[SNAP_ID_LEN])
{
	struct image *im;

	pthread_mutex_lock(&s->images_lock);
	im = find_open(s, id);
	if (im) {
		pthread_mutex_lock(&im->lock);
		/* With several writers, only in an image being written
		 * here: no name change takes an image's lock. */
		if (!im->s->shared || im->wlocked)
			image_changed(im);
		pthread_mutex_unlock(&im->lock);
	}
	pthread_mutex_unlock(&s->images_lock);
}

int image_mark_open(struct snap_store *s,
		    int (*image)(void *arg, const uint8_t id[SNAP_ID_LEN],
				 const uint8_t head[SNAP_ID_LEN]),
		    int (*key)(void *arg, const uint8_t k[SNAP_KEY_LEN]),
		    void *arg)
{
	int ret = 0;

	pthread_mutex_lock(&s->images_lock);
	for (struct image *im = s->images; im && !ret; im = im->next) {
		pthread_mutex_lock(&im->lock);
		ret = image(arg, im->info.id, im->info.head);
		for (uint64_t i = image_next(im, 0, NEXT_MAP);
		     i < im->nmap && !ret; i = image_next(im, i + 1, NEXT_MAP))
			if (!key_is_zero(map_get(im, i)))
				ret = key(arg, map_get(im, i));
		pthread_mutex_unlock(&im->lock);
	}
	/* Images made here and not named yet: their files say their head. */
	for (size_t i = 0; i < s->nfresh && !ret; i++) {
		struct image_info ii;
		struct snap_err e;

		if (meta_image_read(&s->meta, s->fresh[i], &ii, &e) == 0)
			ret = image(arg, ii.id, ii.head);
	}
	pthread_mutex_unlock(&s->images_lock);
	return ret;
}

int image_map_each(struct snap_image *h,
		   int (*fn)(void *arg, uint64_t index,
			     const uint8_t key[SNAP_KEY_LEN]),
		   void *arg)
{
	struct image *im = h->im;
	uint8_t key[SNAP_KEY_LEN];
	uint64_t n;
	int ret = 0;

	pthread_mutex_lock(&im->lock);
	n = chunks_for(im->s, im->size);
	for (uint64_t i = image_next(im, 0, NEXT_MAP); i < n && !ret;
	     i = image_next(im, i + 1, NEXT_MAP)) {
		if (key_is_zero(map_get(im, i)))
			continue;
		memcpy(key, map_get(im, i), SNAP_KEY_LEN);
		/* fn may take its time (verify loads the chunk) */
		pthread_mutex_unlock(&im->lock);
		ret = fn(arg, i, key);
		pthread_mutex_lock(&im->lock);
		n = chunks_for(im->s, im->size);
	}
	pthread_mutex_unlock(&im->lock);
	return ret;
}

struct snap_store *image_store(struct snap_image *h)
{
	return h->im->s;
}
