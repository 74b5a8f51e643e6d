/* SPDX-License-Identifier: MIT */
/*
 * Images: a map from chunk index to chunk key, resolved through a chain of
 * deltas, written copy-on-write into the head delta.
 *
 * An open image keeps its whole resolved map in memory (32 bytes a chunk:
 * 8 MiB for 16 GiB in 64 KiB chunks), so a read costs one lookup however
 * deep the chain. A whole chunk written is stored at once; partial writes
 * go to per-chunk buffers (dirty[]), which a flush stores as chunks; the
 * map takes each new key. A sync appends the changed entries
 * to the head delta's journal as one frame, after the backend made the
 * chunks durable, and fsyncs it. A journal much larger than the entries it
 * holds is rewritten as one frame.
 *
 * A clone freezes the source's head: the source and the clone each get a
 * new, empty delta whose parent is that head. Only head deltas are ever
 * written, so a delta with children never changes.
 *
 * Locks: s->gc_lock (shared) around every call; s->images_lock for the
 * list of open images; im->lock for an image's map and buffers. Chunk
 * loads and decompression happen outside im->lock.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "manifest.h"

#define JOURNAL_COMPACT_MIN	(1u << 20)

struct image {
	struct image *next;		/* s->images */
	struct snap_store *s;
	unsigned opens;
	pthread_mutex_t lock;
	struct image_info info;
	uint64_t size, mtime_ns;
	unsigned depth;
	uint64_t nmap;			/* entries the arrays below hold */
	uint8_t (*map)[SNAP_KEY_LEN];
	uint8_t *own;			/* bit: set by the head delta */
	uint8_t *pending;		/* bit: changed since the last frame */
	uint8_t *seen;			/* bit: read since open */
	struct chunk **dirty;		/* written, not yet stored */
	uint64_t npending, ndirty, nseen;
	bool meta_pending;		/* size or mtime changed */
	int jfd;			/* head journal, append, or -1 */
	uint64_t jbytes;		/* its whole frames */
	uint64_t jentries;		/* entries in them */
	bool unsynced;			/* appended without fsync */
	bool head_has_parent;
	uint8_t head_parent[SNAP_ID_LEN];
	struct snap_image *handles;	/* under s->images_lock */
	/* Its info, ref and head delta may not be durable yet: the next
	 * durable commit fsyncs them (a create, a clone, an adopt). */
	bool meta_fresh;
	bool head_frozen;		/* a frozen frame seen in the head */
};

struct snap_image {
	struct image *im;
	bool write;
	struct snap_image *next;	/* im->handles */
};

static int image_move_up(struct image *im, unsigned flags,
			 struct snap_err *err);
static int image_flatten_locked(struct image *im, struct snap_err *err);

/* A chain deeper than this is flattened before it is frozen again. */
#define CHAIN_FLATTEN	64

static inline bool bit_get(const uint8_t *b, uint64_t i)
{
	return b[i / 8] & (1u << (i % 8));
}

static inline void bit_set(uint8_t *b, uint64_t i)
{
	b[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* Clear a bitmap of n bits (NULL while n is 0). */
static inline void bits_clear(uint8_t *b, uint64_t n)
{
	if (n)
		memset(b, 0, (size_t)(n / 8));
}

static uint64_t chunks_for(const struct snap_store *s, uint64_t size)
{
	return (size + s->chunk_size - 1) / s->chunk_size;
}

static void *grow(void *p, size_t old, size_t new)
{
	uint8_t *q = realloc(p, new ? new : 1);

	if (q && new > old)
		memset(q + old, 0, new - old);
	return q;
}

/* Make the arrays hold n entries; new entries are zero. */
static int image_reserve(struct image *im, uint64_t n)
{
	uint64_t cap = im->nmap;
	void *p;

	if (n <= cap)
		return 0;
	if (n > (UINT64_C(1) << 40))
		return -EFBIG;
	cap = cap ? cap : 16;
	while (cap < n)
		cap *= 2;
	/* cap is a power of two of at least 16: whole bitmap bytes. */
#define GROW(field, bytes_per_8)					\
	do {								\
		p = grow(im->field, (size_t)(im->nmap / 8 * (bytes_per_8)), \
			 (size_t)(cap / 8 * (bytes_per_8)));		\
		if (!p)							\
			return -ENOMEM;					\
		im->field = p;						\
	} while (0)
	GROW(map, 8 * SNAP_KEY_LEN);
	GROW(dirty, 8 * sizeof(struct chunk *));
	GROW(own, 1);
	GROW(pending, 1);
	GROW(seen, 1);
#undef GROW
	im->nmap = cap;
	return 0;
}

static void image_free(struct image *im)
{
	if (!im)
		return;
	for (uint64_t i = 0; i < im->nmap && im->dirty; i++)
		chunk_put(im->s->cache, im->dirty[i]);
	if (im->jfd >= 0)
		close(im->jfd);
	pthread_mutex_destroy(&im->lock);
	free(im->map);
	free(im->own);
	free(im->pending);
	free(im->seen);
	free(im->dirty);
	free(im);
}

static void image_label(const struct image *im, char *buf, size_t size)
{
	char hex[2 * SNAP_ID_LEN + 1];

	snap_id_hex(im->info.id, hex);
	snprintf(buf, size, "image %s", hex);
}

/* ---- loading a chain --------------------------------------------------------- *
 *
 * The newest entry for an index wins, unless the image was cut below it
 * after it was written: every frame's size cuts what is older. So the
 * chain is read newest first (head first, each delta's frames last
 * first) with the smallest size seen so far as the limit.
 */

struct held_frame {
	uint64_t size, mtime_ns;
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
	hf->mtime_ns = f->mtime_ns;
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

/* Resolve im's chain from its head into im->map. */
static int image_load(struct image *im, struct snap_err *err)
{
	struct snap_store *s = im->s;
	uint64_t limit = UINT64_MAX, entries;
	uint8_t delta[SNAP_ID_LEN], *set = NULL;
	struct held h = { 0 };
	char path[4096], label[80];
	size_t end;
	int ret = 0;

	memcpy(delta, im->info.head, SNAP_ID_LEN);
	for (im->depth = 1;; im->depth++) {
		char hex[2 * SNAP_ID_LEN + 1];

		snap_id_hex(delta, hex);
		snprintf(label, sizeof(label), "delta %s", hex);
		if (im->depth > CHAIN_MAX) {
			ret = snap_err_set(err, -EBADMSG, "%s: a chain of more "
					   "than %d deltas", label, CHAIN_MAX);
			break;
		}
		store_id_path(s, "deltas", delta, path, sizeof(path));
		held_clear(&h);
		ret = meta_delta_read(path, label, hold_frame, &h, &end, err);
		if (ret == -ENOMEM)
			snap_err_set(err, ret, "%s: out of memory", label);
		if (ret)
			break;
		if (im->depth == 1) {
			struct held_frame *last = &h.f[h.n - 1];

			if (last->size > SNAP_MEMORY_MAX) {
				ret = snap_err_set(err, -EBADMSG, "%s: size "
						   "%llu, at most %llu", label,
						   (unsigned long long)
						   last->size,
						   (unsigned long long)
						   SNAP_MEMORY_MAX);
				break;
			}
			im->size = last->size;
			im->mtime_ns = last->mtime_ns;
			im->head_has_parent = h.has_parent;
			im->head_frozen = h.frozen;
			memcpy(im->head_parent, h.parent, SNAP_ID_LEN);
			im->jbytes = end;
			ret = image_reserve(im, chunks_for(s, im->size));
			set = calloc(1, (size_t)(im->nmap / 8 + 1));
			if (ret || !set) {
				ret = snap_err_set(err, -ENOMEM, "%s: size %llu: "
						   "out of memory", label,
						   (unsigned long long)
						   im->size);
				break;
			}
		}
		entries = 0;
		for (size_t k = h.n; k-- > 0;) {
			struct held_frame *f = &h.f[k];
			uint64_t n = chunks_for(s, f->size);

			if (n < limit)
				limit = n;
			for (size_t i = f->n; i-- > 0;) {
				uint64_t idx = f->indexes[i];

				entries++;
				if (idx >= limit || bit_get(set, idx))
					continue;
				bit_set(set, idx);
				memcpy(im->map[idx], f->keys + SNAP_KEY_LEN * i,
				       SNAP_KEY_LEN);
				if (im->depth == 1)
					bit_set(im->own, idx);
			}
		}
		if (im->depth == 1)
			im->jentries = entries;
		if (!h.has_parent)
			break;
		memcpy(delta, h.parent, SNAP_ID_LEN);
	}
	held_clear(&h);
	free(h.f);
	free(set);
	return ret;
}

/* ---- the list of open images ------------------------------------------------------ */

static struct image *find_open(struct snap_store *s,
			       const uint8_t id[SNAP_ID_LEN])
{
	for (struct image *im = s->images; im; im = im->next)
		if (!memcmp(im->info.id, id, SNAP_ID_LEN))
			return im;
	return NULL;
}

static int image_get(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		     struct image **out, struct snap_err *err)
{
	char path[4096], hex[2 * SNAP_ID_LEN + 1];
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
	im->jfd = -1;
	im->opens = 1;
	pthread_mutex_init(&im->lock, NULL);
	store_id_path(s, "images", id, path, sizeof(path));
	ret = meta_image_read(path, &im->info, err);
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
	/* A crash after its head was frozen, before it moved: move now. */
	if (!ret && im->head_frozen && !s->rdonly)
		ret = image_move_up(im, FRAME_DURABLE, err);
	if (!ret) {
		im->next = s->images;
		s->images = im;
		*out = im;
	} else {
		image_free(im);
	}
out:
	pthread_mutex_unlock(&s->images_lock);
	return ret;
}

/* ---- storing what was written ------------------------------------------------------ */

/* Under im->lock: chunk i of the head delta is now key. */
static void map_set(struct image *im, uint64_t i, const uint8_t *key)
{
	memcpy(im->map[i], key, SNAP_KEY_LEN);
	bit_set(im->own, i);
	if (!bit_get(im->pending, i)) {
		bit_set(im->pending, i);
		im->npending++;
	}
}

/* Under im->lock: store dirty chunk i and put its key in the map. */
static int flush_one(struct image *im, uint64_t i, struct snap_err *err)
{
	struct snap_store *s = im->s;
	struct chunk *ch = im->dirty[i];
	char label[64];
	bool stored;
	int ret;

	if (!ch)
		return 0;
	ret = chunk_store(&s->backend, s->zstd_level, s->chunk_size, ch->data,
			  ch->key, &stored);
	if (ret) {
		image_label(im, label, sizeof(label));
		return snap_err_set(err, ret, "%s: offset %llu: storing a "
				    "chunk: %s", label,
				    (unsigned long long)i * s->chunk_size,
				    strerror(-ret));
	}
	map_set(im, i, ch->key);
	im->dirty[i] = NULL;
	im->ndirty--;
	if (key_is_zero(ch->key))
		chunk_put(s->cache, ch);
	else	/* what was just written is likely read next */
		chunk_put(s->cache, chunk_cache_add(s->cache, ch));
	return 0;
}

/* Under im->lock: store every dirty chunk. */
static int image_flush(struct image *im, struct snap_err *err)
{
	int ret = 0;

	for (uint64_t i = 0; i < im->nmap && im->ndirty && !ret; i++)
		ret = flush_one(im, i, err);
	return ret;
}

static int journal_open(struct image *im, struct snap_err *err)
{
	char path[4096], label[64];

	if (im->jfd >= 0)
		return 0;
	store_id_path(im->s, "deltas", im->info.head, path, sizeof(path));
	im->jfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	/* Drop a torn append of a killed writer before adding to it. */
	if (im->jfd < 0 || ftruncate(im->jfd, (off_t)im->jbytes)) {
		int ret = -errno;

		image_label(im, label, sizeof(label));
		if (im->jfd >= 0)
			close(im->jfd);
		im->jfd = -1;
		return snap_err_set(err, ret, "%s: journal: %s", label,
				    strerror(-ret));
	}
	return 0;
}

/* One frame: the image's size and every entry of set bits in which. */
static int frame_of(struct image *im, const uint8_t *which, uint64_t count,
		    const uint8_t *parent, uint8_t **buf, size_t *len)
{
	struct delta_frame f = {
		.size = im->size,
		.mtime_ns = im->mtime_ns,
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
	for (uint64_t i = 0; i < im->nmap && n < count; i++) {
		if (!which || !bit_get(which, i))
			continue;
		f.indexes[n] = i;
		memcpy(keys + SNAP_KEY_LEN * n, im->map[i], SNAP_KEY_LEN);
		n++;
	}
	f.n = n;
	f.keys = keys;
	ret = meta_delta_encode(&f, buf, len);
	free(f.indexes);
	free(keys);
	return ret;
}

static uint64_t count_bits(const uint8_t *b, uint64_t n)
{
	uint64_t c = 0;

	for (uint64_t i = 0; i < n; i++)
		c += bit_get(b, i);
	return c;
}

/* Rewrite the head journal as one frame of its entries (atomic rename). */
static int journal_compact(struct image *im, struct snap_err *err)
{
	uint64_t own = count_bits(im->own, im->nmap);
	char path[4096];
	uint8_t *buf;
	size_t len;
	int ret;

	store_id_path(im->s, "deltas", im->info.head, path, sizeof(path));
	ret = frame_of(im, im->own, own,
		       im->head_has_parent ? im->head_parent : NULL, &buf,
		       &len);
	if (ret)
		return snap_err_set(err, ret, "out of memory");
	ret = frame_publish(path, buf + FRAME_HDR, len - FRAME_HDR,
			    FRAME_DURABLE, err);
	free(buf);
	if (ret)
		return ret;
	if (im->jfd >= 0)
		close(im->jfd);
	im->jfd = -1;
	im->jbytes = len;
	im->jentries = own;
	return 0;
}

/* Under im->lock: make the image's own metadata files durable. */
static int meta_sync(struct image *im, struct snap_err *err)
{
	struct snap_store *s = im->s;
	char path[4096], label[64];
	int ret;

	store_id_path(s, "deltas", im->info.head, path, sizeof(path));
	ret = frame_fsync_file(path);
	if (!ret)
		ret = frame_fsync_dir(path);
	store_id_path(s, "images", im->info.id, path, sizeof(path));
	if (!ret)
		ret = frame_fsync_file(path);
	store_ref_path(s, im->info.id, path, sizeof(path));
	if (!ret)
		ret = frame_fsync_file(path);
	if (!ret)
		ret = frame_fsync_dir(path);
	if (ret) {
		image_label(im, label, sizeof(label));
		return snap_err_set(err, ret, "%s: fsync: %s", label,
				    strerror(-ret));
	}
	im->meta_fresh = false;
	return 0;
}

/*
 * Under im->lock: flush, and append a frame of what changed. durable:
 * the chunks are made durable before the frame, and the frame before the
 * return, with whatever earlier appends were not.
 */
static int image_commit(struct image *im, bool durable, struct snap_err *err)
{
	struct snap_store *s = im->s;
	bool append;
	char label[64];
	uint8_t *buf;
	size_t len;
	int ret;

	ret = image_flush(im, err);
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
		ret = journal_open(im, err);
		if (ret)
			return ret;
		ret = frame_of(im, im->pending, im->npending, NULL, &buf,
			       &len);
		if (ret)
			return snap_err_set(err, ret, "%s: out of memory",
					    label);
		if (write(im->jfd, buf, len) != (ssize_t)len) {
			ret = errno ? -errno : -ENOSPC;
			/* A short append is a torn tail: cut it off. */
			if (ftruncate(im->jfd, (off_t)im->jbytes))
				ret = -errno;
			free(buf);
			return snap_err_set(err, ret, "%s: journal: %s", label,
					    strerror(-ret));
		}
		free(buf);
		im->jbytes += len;
		im->jentries += im->npending;
		bits_clear(im->pending, im->nmap);
		im->npending = 0;
		im->meta_pending = false;
		im->unsynced = true;
	}
	if (!durable)
		return 0;
	if (fsync(im->jfd))
		return snap_err_set(err, -errno, "%s: journal: fsync: %m",
				    label);
	im->unsynced = false;
	if (im->jbytes > JOURNAL_COMPACT_MIN &&
	    im->jentries > 4 * count_bits(im->own, im->nmap))
		ret = journal_compact(im, err);
	return ret;
}

/* ---- the public face ---------------------------------------------------------- */

/* A new delta file: one frame, no entries; *flen gets its length. */
static int delta_create(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
			const uint8_t *parent, uint64_t size, uint64_t mtime,
			unsigned flags, size_t *flen, struct snap_err *err)
{
	struct delta_frame f = { .size = size, .mtime_ns = mtime };
	char path[4096];
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
	store_id_path(s, "deltas", id, path, sizeof(path));
	ret = frame_publish(path, buf + FRAME_HDR, len - FRAME_HDR,
			    FRAME_NOREPLACE | flags, err);
	free(buf);
	if (flen)
		*flen = len;
	return ret;
}

/* images/<id> pointing at head; with ref, also images/<id>.ref. */
static int info_write(struct snap_store *s, const struct image_info *ii,
		      bool ref, unsigned flags, struct snap_err *err)
{
	char path[4096];
	int ret;

	store_id_path(s, "images", ii->id, path, sizeof(path));
	ret = meta_image_write(path, ii, flags, err);
	if (ret || !ref)
		return ret;
	store_ref_path(s, ii->id, path, sizeof(path));
	return meta_ref_write(path, ii->id, flags, err);
}

static int store_writable(struct snap_store *s, struct snap_err *err)
{
	if (s->rdonly)
		return snap_err_set(err, -EROFS, "store opened read-only");
	return 0;
}

int snap_image_create(struct snap_store *s, uint64_t size,
		      uint8_t id[SNAP_ID_LEN], struct snap_err *err)
{
	struct image_info ii = { .created_ns = store_now_ns() };
	int ret;

	ret = store_writable(s, err);
	if (ret)
		return ret;
	if (size > (UINT64_C(1) << 40) * s->chunk_size)
		return snap_err_set(err, -EFBIG, "image of %llu bytes: too "
				    "large", (unsigned long long)size);
	if (store_new_id(ii.id) || store_new_id(ii.head))
		return snap_err_set(err, -errno, "getrandom: %m");
	pthread_rwlock_rdlock(&s->gc_lock);
	/* Durable with the image's first sync (meta_fresh). */
	ret = delta_create(s, ii.head, NULL, size, ii.created_ns, 0, NULL, err);
	if (!ret)
		ret = info_write(s, &ii, true, 0, err);
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
	h->write = flags & SNAP_IMAGE_WRITE;
	pthread_mutex_lock(&s->images_lock);
	h->next = h->im->handles;
	h->im->handles = h;
	pthread_mutex_unlock(&s->images_lock);
	*out = h;
	return 0;
}

/* Drop an image_get() reference; the last frees the image. */
static void image_put(struct image *im)
{
	struct snap_store *s = im->s;
	struct image **pp;

	pthread_mutex_lock(&s->images_lock);
	if (--im->opens == 0) {
		for (pp = &s->images; *pp != im; pp = &(*pp)->next)
			;
		*pp = im->next;
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

/*
 * Bytes [in, in + n) of chunk i's current content into out, with im->lock
 * held on entry and on return (dropped while loading). Returns 0, or a
 * negative errno with im->lock held.
 */
static int chunk_read_locked(struct image *im, uint64_t i, uint8_t *out,
			     size_t in, size_t n, struct snap_err *err)
{
	struct snap_store *s = im->s;
	uint8_t key[SNAP_KEY_LEN];
	struct chunk *ch;
	char label[64];
	int ret;

	if (i >= chunks_for(s, im->size)) {
		memset(out, 0, n);
		return 0;
	}
	if (im->dirty[i]) {
		memcpy(out, im->dirty[i]->data + in, n);
		return 0;
	}
	memcpy(key, im->map[i], SNAP_KEY_LEN);
	if (!bit_get(im->seen, i)) {
		bit_set(im->seen, i);
		im->nseen++;
	}
	if (key_is_zero(key)) {
		memset(out, 0, n);
		return 0;
	}
	pthread_mutex_unlock(&im->lock);
	ch = chunk_cache_get(s->cache, key);
	ret = 0;
	if (!ch) {
		ch = chunk_alloc(s->cache);
		if (!ch)
			ret = snap_err_set(err, -ENOMEM, "out of memory");
		else
			ret = chunk_load(&s->backend, s->chunk_size, key,
					 ch->data, err);
		if (!ret) {
			memcpy(ch->key, key, SNAP_KEY_LEN);
			ch = chunk_cache_add(s->cache, ch);
		} else {
			chunk_put(s->cache, ch);
			ch = NULL;
		}
	}
	if (ch)
		memcpy(out, ch->data + in, n);
	chunk_put(s->cache, ch);
	pthread_mutex_lock(&im->lock);
	if (ret) {
		image_label(im, label, sizeof(label));
		snap_err_prefix(err, ret, "%s: offset %llu", label,
				(unsigned long long)i * s->chunk_size);
	}
	return ret;
}

ssize_t snap_image_read(struct snap_image *h, void *buf, size_t len,
			uint64_t off, struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	uint8_t *p = buf;
	size_t done = 0;
	int ret = 0;

	pthread_rwlock_rdlock(&s->gc_lock);
	pthread_mutex_lock(&im->lock);
	while (done < len && off + done < im->size) {
		uint64_t pos = off + done, i = pos / s->chunk_size;
		size_t in = (size_t)(pos % s->chunk_size);
		size_t n = s->chunk_size - in;

		if (n > len - done)
			n = len - done;
		if (n > im->size - pos)
			n = (size_t)(im->size - pos);
		ret = chunk_read_locked(im, i, p + done, in, n, err);
		if (ret)
			break;
		done += n;
	}
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
	return ret ? ret : (ssize_t)done;
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
			memcpy(key, im->map[i], SNAP_KEY_LEN);
			ret = chunk_read_locked(im, i, ch->data, 0,
						s->chunk_size, err);
			if (ret) {
				chunk_put(s->cache, ch);
				return ret;
			}
			if (im->dirty[i]) {
				chunk_put(s->cache, ch);
				return 0;
			}
		} while (memcmp(key, im->map[i], SNAP_KEY_LEN));
	}
	im->dirty[i] = ch;
	im->ndirty++;
	return 0;
}

/* Under im->lock: set the size (the arrays follow). */
static int set_size(struct image *im, uint64_t size)
{
	int ret = image_reserve(im, chunks_for(im->s, size));

	if (!ret) {
		im->size = size;
		im->meta_pending = true;
	}
	return ret;
}

/* Under im->lock: chunk i is now data (a whole chunk), stored at once. */
static int store_whole(struct image *im, uint64_t i, const uint8_t *data,
		       struct snap_err *err)
{
	struct snap_store *s = im->s;
	uint8_t key[SNAP_KEY_LEN];
	char label[64];
	bool stored;
	int ret;

	if (im->dirty[i]) {
		chunk_put(s->cache, im->dirty[i]);
		im->dirty[i] = NULL;
		im->ndirty--;
	}
	ret = chunk_store(&s->backend, s->zstd_level, s->chunk_size, data, key,
			  &stored);
	if (ret) {
		image_label(im, label, sizeof(label));
		return snap_err_set(err, ret, "%s: offset %llu: storing a "
				    "chunk: %s", label,
				    (unsigned long long)i * s->chunk_size,
				    strerror(-ret));
	}
	if (memcmp(im->map[i], key, SNAP_KEY_LEN))
		map_set(im, i, key);
	return 0;
}

static int not_writable(struct image *im, struct snap_err *err)
{
	char label[64];

	image_label(im, label, sizeof(label));
	return snap_err_set(err, -EBADF, "%s: not open for writing", label);
}

ssize_t snap_image_write(struct snap_image *h, const void *buf, size_t len,
			 uint64_t off, struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	const uint8_t *p = buf;
	size_t done = 0;
	int ret = 0;

	if (!h->write)
		return not_writable(im, err);
	if (off + len < off)
		return snap_err_set(err, -EFBIG, "write past 2^64");
	pthread_rwlock_rdlock(&s->gc_lock);
	pthread_mutex_lock(&im->lock);
	if (off + len > im->size)
		ret = set_size(im, off + len);
	if (ret)
		ret = snap_err_set(err, ret, "write at %llu: %s",
				   (unsigned long long)off, strerror(-ret));
	while (!ret && done < len) {
		uint64_t pos = off + done, i = pos / s->chunk_size;
		size_t in = (size_t)(pos % s->chunk_size);
		size_t n = s->chunk_size - in;

		if (n > len - done)
			n = len - done;
		/* A whole chunk is stored straight from the caller's buffer:
		 * no copy, no buffer to fault in. */
		if (n == s->chunk_size) {
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
		done += n;
		if (im->ndirty * s->chunk_size > s->dirty_max)
			ret = image_flush(im, err);
	}
	im->mtime_ns = store_now_ns();
	im->meta_pending = true;
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
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
		return not_writable(im, err);
	pthread_rwlock_rdlock(&s->gc_lock);
	pthread_mutex_lock(&im->lock);
	n_new = chunks_for(s, size);
	n_old = chunks_for(s, im->size);
	/* What is cut off reads as zeros if the image grows again. */
	for (i = n_new; i < n_old; i++) {
		if (im->dirty[i]) {
			chunk_put(s->cache, im->dirty[i]);
			im->dirty[i] = NULL;
			im->ndirty--;
		}
		if (!key_is_zero(im->map[i])) {
			static const uint8_t zero[SNAP_KEY_LEN];

			map_set(im, i, zero);
		}
	}
	if (size < im->size && size % s->chunk_size) {
		size_t in = (size_t)(size % s->chunk_size);

		i = size / s->chunk_size;
		if (im->dirty[i] || !key_is_zero(im->map[i])) {
			ret = dirty_get(im, i, false, err);
			if (!ret)
				memset(im->dirty[i]->data + in, 0,
				       s->chunk_size - in);
		}
	}
	if (!ret)
		ret = set_size(im, size);
	if (ret)
		snap_err_prefix(err, ret, "truncate to %llu",
				(unsigned long long)size);
	im->mtime_ns = store_now_ns();
	im->meta_pending = true;
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
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
	pthread_mutex_unlock(&im->lock);
	pthread_rwlock_unlock(&s->gc_lock);
	return ret;
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
	st->mtime_ns = im->mtime_ns;
	st->depth = im->depth;
	st->resident = im->nseen;
	n = chunks_for(im->s, im->size);
	for (uint64_t i = 0; i < n; i++) {
		bool set = im->dirty[i] || !key_is_zero(im->map[i]);

		st->chunks += set;
		st->own_chunks += set && (im->dirty[i] || bit_get(im->own, i));
	}
	pthread_mutex_unlock(&im->lock);
}

/*
 * Under im->lock: im now writes into head, a delta file of jbytes bytes
 * holding jentries entries, whose parent is parent (NULL: none).
 */
static void head_moved(struct image *im, const uint8_t head[SNAP_ID_LEN],
		       const uint8_t *parent, uint64_t jbytes,
		       uint64_t jentries)
{
	im->head_has_parent = parent != NULL;
	if (parent)
		memcpy(im->head_parent, parent, SNAP_ID_LEN);
	memcpy(im->info.head, head, SNAP_ID_LEN);
	if (im->jfd >= 0)
		close(im->jfd);
	im->jfd = -1;
	im->jbytes = jbytes;
	im->jentries = jentries;
	im->unsynced = false;
	im->head_frozen = false;
}

/*
 * Under im->lock (or before im is shared): move im onto a new, empty
 * delta above its head. flags: FRAME_DURABLE, or the new files become
 * durable with the image's next sync.
 */
static int image_move_up(struct image *im, unsigned flags,
			 struct snap_err *err)
{
	struct snap_store *s = im->s;
	struct image_info ii = im->info;
	size_t flen;
	int ret;

	if (store_new_id(ii.head))
		return snap_err_set(err, -errno, "getrandom: %m");
	ret = delta_create(s, ii.head, im->info.head, im->size, im->mtime_ns,
			   flags, &flen, err);
	if (!ret)
		ret = info_write(s, &ii, false, flags, err);
	if (ret)
		return ret;
	head_moved(im, ii.head, im->info.head, flen, 0);
	bits_clear(im->own, im->nmap);
	im->depth++;
	if (!(flags & FRAME_DURABLE))
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
	char label[64];
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
	if (im->head_has_parent && im->ndirty == 0 &&
	    count_bits(im->own, im->nmap) == 0) {
		memcpy(frozen, im->head_parent, SNAP_ID_LEN);
		return 0;
	}
	f.size = im->size;
	f.mtime_ns = im->mtime_ns;
	ret = journal_open(im, err);
	if (ret)
		return ret;
	ret = meta_delta_encode(&f, &buf, &len);
	if (ret)
		return snap_err_set(err, ret, "out of memory");
	if (write(im->jfd, buf, len) != (ssize_t)len || fsync(im->jfd)) {
		ret = errno ? -errno : -ENOSPC;
		if (ftruncate(im->jfd, (off_t)im->jbytes))
			ret = -errno;
		free(buf);
		image_label(im, label, sizeof(label));
		return snap_err_set(err, ret, "%s: journal: %s", label,
				    strerror(-ret));
	}
	free(buf);
	im->jbytes += len;
	memcpy(frozen, im->info.head, SNAP_ID_LEN);
	return image_move_up(im, 0, err);
}

int snap_image_touch(struct snap_image *h, uint64_t mtime_ns,
		     struct snap_err *err)
{
	struct image *im = h->im;

	if (!h->write)
		return not_writable(im, err);
	pthread_mutex_lock(&im->lock);
	im->mtime_ns = mtime_ns;
	im->meta_pending = true;
	pthread_mutex_unlock(&im->lock);
	return 0;
}

int snap_image_clone(struct snap_store *s, const uint8_t src[SNAP_ID_LEN],
		     uint8_t id[SNAP_ID_LEN], struct snap_err *err)
{
	struct image_info ci = { .created_ns = store_now_ns() };
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
	if (!ret)
		ret = delta_create(s, ci.head, frozen, im->size, im->mtime_ns,
				   FRAME_DURABLE, NULL, err);
	if (!ret)
		ret = info_write(s, &ci, true, FRAME_DURABLE, err);
	if (ret) {
		image_label(im, label, sizeof(label));
		snap_err_prefix(err, ret, "clone of %s", label);
	} else {
		memcpy(id, ci.id, SNAP_ID_LEN);
	}
	pthread_mutex_unlock(&im->lock);
	image_put(im);
out:
	pthread_rwlock_unlock(&s->gc_lock);
	return ret;
}

/*
 * Under im->lock: write im's resolved map as one parentless delta and
 * move im onto it (durably: its old head may be shared by nothing else,
 * but its parents are still others').
 */
static int image_flatten_locked(struct image *im, struct snap_err *err)
{
	struct snap_store *s = im->s;
	uint8_t *nonzero, *buf = NULL;
	struct image_info ii;
	uint64_t n, count = 0;
	char path[4096];
	size_t len;
	int ret;

	ret = image_commit(im, true, err);
	if (ret)
		return ret;
	n = chunks_for(s, im->size);
	nonzero = calloc(1, (size_t)(im->nmap / 8 + 1));
	if (!nonzero)
		return snap_err_set(err, -ENOMEM, "out of memory");
	for (uint64_t i = 0; i < n; i++)
		if (!key_is_zero(im->map[i])) {
			bit_set(nonzero, i);
			count++;
		}
	ii = im->info;
	if (store_new_id(ii.head)) {
		ret = snap_err_set(err, -errno, "getrandom: %m");
		goto out;
	}
	ret = frame_of(im, nonzero, count, NULL, &buf, &len);
	if (ret) {
		ret = snap_err_set(err, ret, "out of memory");
		goto out;
	}
	store_id_path(s, "deltas", ii.head, path, sizeof(path));
	ret = frame_publish(path, buf + FRAME_HDR, len - FRAME_HDR,
			    FRAME_NOREPLACE | FRAME_DURABLE, err);
	if (!ret)
		ret = info_write(s, &ii, false, FRAME_DURABLE, err);
	if (ret)
		goto out;
	head_moved(im, ii.head, NULL, len, count);
	if (im->nmap)
		memcpy(im->own, nonzero, (size_t)(im->nmap / 8));
	im->depth = 1;
out:
	free(nonzero);
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
	return d->size == 0 && d->ndirty == 0 &&
	       count_bits(d->own, d->nmap) == 0;
}

/*
 * Under both locks: make the empty image d a clone of im, keeping d's id
 * and names. The cp of a whole file in constant time.
 */
static int image_adopt(struct image *im, struct image *d,
		       struct snap_err *err)
{
	struct snap_store *s = im->s;
	struct image_info di = d->info;
	uint8_t frozen[SNAP_ID_LEN];
	size_t flen;
	int ret;

	ret = image_reserve(d, chunks_for(s, im->size));
	if (ret)
		return snap_err_set(err, ret, "%s", strerror(-ret));
	ret = image_freeze(im, frozen, err);
	if (ret)
		return ret;
	if (store_new_id(di.head))
		return snap_err_set(err, -errno, "getrandom: %m");
	d->mtime_ns = store_now_ns();
	/* Durable with d's next sync, as a copied file is. */
	ret = delta_create(s, di.head, frozen, im->size, d->mtime_ns, 0, &flen,
			   err);
	if (!ret)
		ret = info_write(s, &di, false, 0, err);
	if (ret)
		return ret;
	d->meta_fresh = true;
	head_moved(d, di.head, frozen, flen, 0);
	d->meta_pending = false;
	bits_clear(d->pending, d->nmap);
	d->npending = 0;
	memcpy(d->map, im->map, (size_t)chunks_for(s, im->size) * SNAP_KEY_LEN);
	d->size = im->size;
	d->depth = im->depth;
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

	if (count > (im->size - ps) / cs)
		count = (im->size - ps) / cs;
	*n = 0;
	if (pd + count * cs > d->size) {
		ret = set_size(d, pd + count * cs);
		if (ret)
			return snap_err_set(err, ret, "copy: %s",
					    strerror(-ret));
	}
	for (uint64_t k = 0; k < count; k++, i++, j++) {
		ret = flush_one(im, i, err);
		if (ret)
			return ret;
		if (d->dirty[j]) {
			chunk_put(s->cache, d->dirty[j]);
			d->dirty[j] = NULL;
			d->ndirty--;
		}
		if (memcmp(d->map[j], im->map[i], SNAP_KEY_LEN))
			map_set(d, j, im->map[i]);
		*n += cs;
	}
	d->mtime_ns = store_now_ns();
	d->meta_pending = true;
	return 0;
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
		return not_writable(d, err);
	while (done < len) {
		uint64_t ps = soff + done, pd = doff + done;

		pthread_rwlock_rdlock(&s->gc_lock);
		lock_two(im, d);
		if (ps >= im->size) {
			n = 0;
		} else if (im != d && ps == 0 && pd == 0 &&
			   len >= im->size && image_empty(d)) {
			ret = image_adopt(im, d, err);
			n = (size_t)im->size;
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
		for (uint64_t i = 0; i < im->nmap && !ret; i++)
			if (!key_is_zero(im->map[i]))
				ret = key(arg, im->map[i]);
		pthread_mutex_unlock(&im->lock);
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
	for (uint64_t i = 0; i < n && !ret; i++) {
		if (key_is_zero(im->map[i]))
			continue;
		memcpy(key, im->map[i], SNAP_KEY_LEN);
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
