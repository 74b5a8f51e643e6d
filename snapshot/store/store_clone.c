/* SPDX-License-Identifier: MIT */
/*
 * Clones and what they rest on: freeze, move up, flatten; and a copy of
 * a range that shares whole chunks (or adopts a whole image) instead of
 * copying bytes.
 *
 * A clone freezes the source's head: the source and the clone each get a
 * new, empty delta whose parent is that head. Only head deltas are ever
 * written, so a delta with children never changes.
 */
#include "snapshot/store/store_image.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/store/frame.h"

static int image_flatten_locked(struct image *im, struct snap_err *err);

/* A chain deeper than this is flattened before it is frozen again. */
#define CHAIN_FLATTEN	64

/*
 * Under im->lock (or before im is shared): move im onto a new, empty
 * delta above its head. flags: META_DURABLE, or the new files become
 * durable with the image's next sync.
 */
int image_move_up(struct image *im, unsigned flags, struct snap_err *err)
{
	struct snap_store *s = im->s;
	struct image_info ii = im->info;
	size_t flen;
	int ret;

	if (store_new_id(ii.head))
		return snap_err_set(err, -errno, "getrandom: %m");
	ret = delta_create(s, ii.head, im->info.head, im->size, &im->times,
			   flags, &flen, err);
	if (!ret)
		ret = image_info_write(s, &ii, false, flags, err);
	if (ret)
		return ret;
	head_moved(im, ii.head, im->info.head, flen, 0);
	bits_clear(im, BIT_OWN);
	im->depth++;
	if (!(flags & META_DURABLE))
		im->meta_fresh = true;
	return 0;
}

/*
 * Under im->lock: freeze im's content into a delta others may share
 * (*frozen) and move im above it. Everything written so far goes into
 * the head first. The head is marked frozen, durably, before anything
 * can share it: should a crash lose im's move, the image finds its head
 * frozen when opened and moves then, so a shared delta is never written.
 * A head with nothing of its own adds nothing: its parent is shared.
 */
static int image_freeze(struct image *im, uint8_t frozen[SNAP_ID_LEN],
			struct snap_err *err)
{
	struct delta_frame f = { .frozen = true };
	uint8_t *buf;
	size_t len;
	int ret;

	ret = image_commit(im, true, err);
	/* Each freeze after writes adds a delta to every later chain:
	 * bound them (a flatten costs the map, not the data). */
	if (!ret && im->depth > CHAIN_FLATTEN)
		ret = image_flatten_locked(im, err);
	if (ret)
		return ret;
	/* A head with nothing of its own is its parent, unless it cut
	 * what the parent holds. */
	if (im->head_has_parent && im->ndirty == 0 &&
	    bits_count(im, BIT_OWN) == 0 && im->head_floor >= im->head_start) {
		memcpy(frozen, im->head_parent, SNAP_ID_LEN);
		return 0;
	}
	ret = image_write_begin(im, err);
	if (ret)
		return ret;
	f.size = im->size;
	f.times = im->times;
	ret = meta_delta_encode(&f, &buf, &len);
	if (ret)
		return snap_err_set(err, ret, "out of memory");
	ret = journal_append(im, buf, len, true, err);
	free(buf);
	if (ret)
		return ret;
	memcpy(frozen, im->info.head, SNAP_ID_LEN);
	return image_move_up(im, 0, err);
}

int snap_image_clone(struct snap_store *s, const uint8_t src[SNAP_ID_LEN],
		     uint8_t id[SNAP_ID_LEN], struct snap_err *err)
{
	struct image_info ci = { .created_ns = store_now_ns() };
	struct image_times times;
	uint8_t frozen[SNAP_ID_LEN];
	struct image *im;
	char label[80];
	int ret;

	ret = store_writable(s, err);
	if (ret)
		return ret;
	if (store_new_id(ci.id) || store_new_id(ci.head))
		return snap_err_set(err, -errno, "getrandom: %m");
	pthread_rwlock_rdlock(&s->gc_lock);
	ret = image_get(s, src, &im, err);
	if (ret)
		goto out;
	pthread_mutex_lock(&im->lock);
	ret = image_freeze(im, frozen, err);
	/* The clone keeps src's content times; it changed (began) now. */
	times = im->times;
	times.ctime_ns = ci.created_ns;
	if (!ret)
		ret = delta_create(s, ci.head, frozen, im->size, &times,
				   META_DURABLE, NULL, err);
	if (!ret)
		ret = image_info_write(s, &ci, true, META_DURABLE, err);
	if (!ret)
		ret = image_ws_copy(s, src, ci.id, err);
	if (ret) {
		image_label(im, label, sizeof(label));
		snap_err_prefix(err, ret, "clone of %s", label);
	} else {
		store_fresh_add(s, ci.id);
		memcpy(id, ci.id, SNAP_ID_LEN);
	}
	pthread_mutex_unlock(&im->lock);
	image_put(im);
out:
	pthread_rwlock_unlock(&s->gc_lock);
	return ret;
}

/*
 * Under im->lock: mark (BIT_MARK) every non-zero entry of im's map;
 * *count gets how many. -ENOMEM with the marks cleared.
 */
static int mark_nonzero(struct image *im, uint64_t *count)
{
	uint64_t n = chunks_for(im->s, im->size);

	*count = 0;
	for (uint64_t i = image_next(im, 0, NEXT_MAP); i < n;
	     i = image_next(im, i + 1, NEXT_MAP)) {
		if (key_is_zero(map_get(im, i)))
			continue;
		if (chunk_bit_set(im, i, BIT_MARK) < 0) {
			bits_clear(im, BIT_MARK);
			return -ENOMEM;
		}
		(*count)++;
	}
	return 0;
}

/*
 * Under im->lock: write im's resolved map as one parentless delta and
 * move im onto it (durably: its old head may be shared by nothing else,
 * but its parents are still others').
 */
static int image_flatten_locked(struct image *im, struct snap_err *err)
{
	struct snap_store *s = im->s;
	uint8_t *buf = NULL;
	struct image_info ii;
	uint64_t count;
	size_t len;
	int ret;

	ret = image_write_begin(im, err);
	if (!ret)
		ret = image_commit(im, true, err);
	if (ret)
		return ret;
	if (mark_nonzero(im, &count))
		return snap_err_set(err, -ENOMEM, "out of memory");
	ii = im->info;
	if (store_new_id(ii.head)) {
		ret = snap_err_set(err, -errno, "getrandom: %m");
		goto out;
	}
	ret = journal_frame(im, BIT_MARK, count, NULL, &buf, &len);
	if (ret) {
		ret = snap_err_set(err, ret, "out of memory");
		goto out;
	}
	ret = delta_put(s, ii.head, buf, len, META_NOREPLACE | META_DURABLE,
			err);
	if (!ret)
		ret = image_info_write(s, &ii, false, META_DURABLE, err);
	if (ret)
		goto out;
	head_moved(im, ii.head, NULL, len, count);
	/* The new head sets every non-zero entry: they are its own. */
	bits_move(im, BIT_MARK, BIT_OWN);
	im->depth = 1;
out:
	bits_clear(im, BIT_MARK);
	free(buf);
	return ret;
}

int snap_image_flatten(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		       struct snap_err *err)
{
	struct image *im;
	int ret;

	ret = store_writable(s, err);
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&s->gc_lock);
	ret = image_get(s, id, &im, err);
	if (!ret) {
		pthread_mutex_lock(&im->lock);
		ret = image_flatten_locked(im, err);
		pthread_mutex_unlock(&im->lock);
		image_put(im);
	}
	pthread_rwlock_unlock(&s->gc_lock);
	return ret;
}

/* Lock two images in a fixed order (one lock when they are the same). */
static void lock_two(struct image *a, struct image *b)
{
	if (a == b) {
		pthread_mutex_lock(&a->lock);
	} else if (a < b) {
		pthread_mutex_lock(&a->lock);
		pthread_mutex_lock(&b->lock);
	} else {
		pthread_mutex_lock(&b->lock);
		pthread_mutex_lock(&a->lock);
	}
}

static void unlock_two(struct image *a, struct image *b)
{
	pthread_mutex_unlock(&a->lock);
	if (a != b)
		pthread_mutex_unlock(&b->lock);
}

/* Under both locks: does d have nothing of its own, and no size? */
static bool image_empty(const struct image *d)
{
	return d->size == 0 && d->ndirty == 0 && bits_count(d, BIT_OWN) == 0;
}

/* A piece of a copy smaller than this many chunks is not adopted. */
#define ADOPT_MIN_CHUNKS	64

/*
 * Under both locks: is d what image_adopt() left it, unchanged since, and
 * im unchanged too? Then the next piece of the same copy adopts as well.
 */
static bool adopt_continues(const struct image *im, const struct image *d)
{
	return d->adopted && d->times.mtime_ns == d->adopt_mtime &&
	       d->head_has_parent &&
	       !memcmp(d->head_parent, d->adopt_from, SNAP_ID_LEN) &&
	       d->ndirty == 0 && d->npending == 0 && !d->meta_pending &&
	       im->head_has_parent &&
	       !memcmp(im->head_parent, d->adopt_from, SNAP_ID_LEN) &&
	       im->times.mtime_ns == d->adopt_src_mtime && im->ndirty == 0 &&
	       im->size == d->adopt_src_size && bits_count(im, BIT_OWN) == 0;
}

/*
 * Under both locks: may the piece [off, off + len) of a copy from im into
 * d at the same offset make d a copy of im's first off + len bytes?
 * When d is empty and the piece starts at 0 (the whole file, or the first
 * piece of one the kernel split), or continues the copy the piece before
 * adopted.
 */
static bool adopt_fits(const struct image *im, const struct image *d,
		       uint64_t off, size_t len)
{
	if (im == d)
		return false;
	if (off == 0 && image_empty(d))
		return len >= im->size ||
		       len / im->s->chunk_size >= ADOPT_MIN_CHUNKS;
	return off > 0 && off == d->size && adopt_continues(im, d);
}

/*
 * Under both locks: make d a copy of the first size bytes of im, keeping
 * d's id and names: d moves onto a new delta above im's frozen head, cut
 * at size (the chunk size cuts, stored again with its tail zeroed, is the
 * new delta's one entry). Nothing proportional to the size is written, so
 * every piece of a whole-file copy the kernel split is constant time, and
 * a copy cut short leaves d exactly the bytes copied so far.
 */
static int image_adopt(struct image *im, struct image *d, uint64_t size,
		       struct snap_err *err)
{
	struct snap_store *s = im->s;
	struct image_info di = d->info;
	uint32_t cs = s->chunk_size;
	uint64_t from = d->size / cs, n = chunks_for(s, size), cut = size / cs;
	uint64_t end;
	struct delta_frame f = { .has_parent = true, .size = size };
	uint8_t frozen[SNAP_ID_LEN], tail[SNAP_KEY_LEN];
	bool first = !d->adopted || d->size == 0;
	uint8_t *buf;
	size_t len;
	int ret;

	ret = image_reserve(d, im->size, err);
	if (ret)
		return ret;
	if (first)
		ret = image_freeze(im, frozen, err);
	else
		memcpy(frozen, d->adopt_from, SNAP_ID_LEN);
	if (!ret && size < im->size && size % cs) {
		ret = image_cut_key(im, size, tail, err);
		f.n = !key_is_zero(tail) || !key_is_zero(map_get(im, cut));
	}
	if (ret)
		return ret;
	/* What the map and the bits of d take below, made d's own now so
	 * that nothing fails once the files are written. */
	end = f.n ? cut : n;
	if (map_share_prepare(d, im, from, end) ||
	    (f.n && (map_own(d, cut) || state_make(d, cut))))
		return snap_err_set(err, -ENOMEM, "out of memory");
	f.times.mtime_ns = store_now_ns();
	f.times.ctime_ns = f.times.mtime_ns;
	f.times.atime_ns = d->times.atime_ns;
	if (first) {
		/* Durable with d's next sync, as a copied file is. */
		if (store_new_id(di.head))
			return snap_err_set(err, -errno, "getrandom: %m");
		memcpy(f.parent, frozen, SNAP_ID_LEN);
		f.indexes = &cut;
		f.keys = tail;
		ret = meta_delta_encode(&f, &buf, &len);
		if (ret)
			return snap_err_set(err, ret, "out of memory");
		ret = delta_put(s, di.head, buf, len, META_NOREPLACE, err);
		free(buf);
		if (!ret)
			ret = image_info_write(s, &di, false, 0, err);
		if (!ret)
			ret = image_ws_copy(s, im->info.id, di.id, err);
		if (ret)
			return ret;
		d->meta_fresh = true;
		head_moved(d, di.head, frozen, len, f.n);
		bits_clear(d, BIT_PENDING);
		d->npending = 0;
	} else {
		/*
		 * A later piece touches no file: d's head delta (its own:
		 * nothing froze it since) stays the last piece's, a copy cut
		 * short there, until adopt_settle() rewrites it at d's next
		 * commit. An appended frame could not do: a size once
		 * journaled cuts what the parent holds above it.
		 */
		if (from < d->nmap)	/* the chunk the last piece cut */
			chunk_bit_clear(d, from, BIT_OWN);
		d->adopt_pending = true;
	}
	d->meta_pending = false;
	/* Neither fails: the pages they write are d's own (above). */
	map_share(d, im, from, end);
	if (f.n) {
		map_put(d, cut, tail);
		chunk_bit_set(d, cut, BIT_OWN);
	}
	d->size = size;
	d->head_start = d->head_floor = chunks_for(s, size);
	d->times = f.times;
	d->depth = im->depth;
	d->adopted = true;
	memcpy(d->adopt_from, frozen, SNAP_ID_LEN);
	d->adopt_mtime = d->times.mtime_ns;
	d->adopt_src_mtime = im->times.mtime_ns;
	d->adopt_src_size = im->size;
	return 0;
}

/*
 * Under both locks: share whole chunks of im from ps into d at pd, as many
 * as the range holds; *n gets the bytes shared.
 */
static int share_chunks(struct image *im, uint64_t ps, struct image *d,
			uint64_t pd, size_t len, size_t *n,
			struct snap_err *err)
{
	struct snap_store *s = im->s;
	uint32_t cs = s->chunk_size;
	uint64_t count = len / cs, i = ps / cs, j = pd / cs;
	int ret;

	*n = 0;
	if (pd >= SNAP_IMAGE_MAX)
		return snap_err_set(err, -EFBIG, "copy to %llu: past the "
				    "largest image, %llu bytes",
				    (unsigned long long)pd,
				    (unsigned long long)SNAP_IMAGE_MAX);
	if (count > (im->size - ps) / cs)
		count = (im->size - ps) / cs;
	if (count > (SNAP_IMAGE_MAX - pd) / cs)
		count = (SNAP_IMAGE_MAX - pd) / cs;
	ret = image_reserve(d, pd + count * cs, err);
	if (ret)
		return snap_err_prefix(err, ret, "copy to %llu",
				       (unsigned long long)pd);
	for (uint64_t k = 0; k < count && !ret; k++, i++, j++) {
		ret = image_flush_one(im, i, err);
		if (ret)
			break;
		if (memcmp(map_get(d, j), map_get(im, i), SNAP_KEY_LEN) &&
		    image_map_set(d, j, map_get(im, i))) {
			ret = snap_err_set(err, -ENOMEM, "out of memory");
			break;
		}
		chunk_put(s->cache, dirty_take(d, j));
		*n += cs;
	}
	/* What was shared counts, even when the rest failed. */
	if (pd + *n > d->size)
		d->size = pd + *n;
	if (*n)
		image_modified(d);
	return ret;
}

ssize_t snap_image_copy_range(struct snap_image *src, uint64_t soff,
			      struct snap_image *dst, uint64_t doff,
			      size_t len, struct snap_err *err)
{
	struct image *im = src->im, *d = dst->im;
	struct snap_store *s = im->s;
	uint32_t cs = s->chunk_size;
	uint8_t *tmp = NULL;
	size_t done = 0, n;
	ssize_t ret = 0;

	if (!dst->write)
		return image_not_writable(d, err);
	while (done < len) {
		uint64_t ps = soff + done, pd = doff + done;

		/* At the largest image's end a copy is short, as a write is
		 * (the next one is -EFBIG). */
		if (pd >= SNAP_IMAGE_MAX && done)
			break;
		pthread_rwlock_rdlock(&s->gc_lock);
		lock_two(im, d);
		ret = image_write_begin(d, err);
		if (ret)
			n = 0;
		else if (ps >= im->size) {
			n = 0;
		} else if (ps == pd && adopt_fits(im, d, ps, len - done)) {
			uint64_t end = len - done >= im->size - ps ?
				       im->size : ps + (len - done);

			ret = image_adopt(im, d, end, err);
			n = (size_t)(end - ps);
		} else if (ps % cs == 0 && pd % cs == 0 && len - done >= cs &&
			   im->size - ps >= cs) {
			ret = share_chunks(im, ps, d, pd, len - done, &n, err);
		} else {
			n = SIZE_MAX;	/* bytes to copy */
		}
		unlock_two(im, d);
		pthread_rwlock_unlock(&s->gc_lock);
		if (ret || n == 0)
			break;
		if (n != SIZE_MAX) {
			done += n;
			continue;
		}
		/* Unaligned: copy up to the next boundary of either side. */
		n = cs - (size_t)(ps % cs);
		if (n > cs - pd % cs)
			n = cs - (size_t)(pd % cs);
		if (n > len - done)
			n = len - done;
		if (!tmp && !(tmp = malloc(cs))) {
			ret = snap_err_set(err, -ENOMEM, "out of memory");
			break;
		}
		ret = snap_image_read(src, tmp, n, ps, err);
		if (ret <= 0)
			break;
		ret = snap_image_write(dst, tmp, (size_t)ret, pd, err);
		if (ret < 0)
			break;
		done += (size_t)ret;
		ret = 0;
	}
	free(tmp);
	return ret < 0 ? ret : (ssize_t)done;
}
