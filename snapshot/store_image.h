/* SPDX-License-Identifier: MIT */
#ifndef SNAP_STORE_IMAGE_H
#define SNAP_STORE_IMAGE_H

/*
 * What the image modules share and the rest of the store does not see.
 * Images: a map from chunk index to chunk key, resolved through a chain of
 * deltas, written copy-on-write into the head delta.
 *   store_image.c    the image object: lifetime, open images, create,
 *                    open, close, stat, touch, gc's and verify's view
 *   store_io.c       reading and writing an open image, storing dirty
 *                    chunks
 *   store_journal.c  loading a chain; the head delta's journal: commit,
 *                    sync, compaction, new deltas and image files
 *   store_clone.c    clone, freeze, flatten, copy_range (adopt, share)
 *   store_ws.c       working sets: the recording, the files beside images
 *
 * Locks: s->gc_lock (shared) around every call; s->images_lock for the
 * list of open images; im->lock for an image's map and buffers. Chunk
 * loads and decompression happen outside im->lock.
 */

#include "store_int.h"

#include <string.h>

/*
 * An image's map, from chunk index to key, in pages of MAP_PAGE entries.
 * A page of zeros is NULL, so the memory a map takes follows the chunks
 * it names, and pages are shared: a copy of a whole image (image_adopt)
 * takes its source's pages, and an image copies a shared page before it
 * sets one of its entries (map_put). refs counts the images holding a
 * page; an image holding the only reference may write it in place.
 */
#define MAP_SHIFT	10
#define MAP_PAGE	(1u << MAP_SHIFT)

struct map_page {
	unsigned refs;			/* atomic */
	uint8_t keys[MAP_PAGE][SNAP_KEY_LEN];
};

static const uint8_t map_zero[SNAP_KEY_LEN];

struct image {
	struct image *next;		/* s->images */
	struct snap_store *s;
	unsigned opens;
	pthread_mutex_t lock;
	struct image_info info;
	uint64_t size, mtime_ns;
	unsigned depth;
	uint64_t nmap;			/* entries the arrays below hold */
	struct map_page **map;		/* nmap / MAP_PAGE pages, rounded up */
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
	uint64_t fetched;		/* chunks reads waited for */
	uint64_t last_miss;		/* end of the last read that missed */
	struct ws_rec *rec;		/* a working set being recorded */
	/* A copy of a prefix of another image (store_clone.c, image_adopt):
	 * its frozen delta, and the times and size that say whether d and
	 * the source are still as that copy left them. */
	bool adopted;
	bool adopt_pending;	/* its head delta is a piece behind */
	uint8_t adopt_from[SNAP_ID_LEN];
	uint64_t adopt_mtime, adopt_src_mtime, adopt_src_size;
};

struct snap_image {
	struct image *im;
	bool write;
	struct snap_image *next;	/* im->handles */
};

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

/* Under im->lock: the key of entry i (below nmap). */
static inline const uint8_t *map_get(const struct image *im, uint64_t i)
{
	const struct map_page *p = im->map[i >> MAP_SHIFT];

	return p ? p->keys[i & (MAP_PAGE - 1)] : map_zero;
}

static inline uint64_t chunks_for(const struct snap_store *s, uint64_t size)
{
	return (size + s->chunk_size - 1) / s->chunk_size;
}

static inline uint64_t count_bits(const uint8_t *b, uint64_t n)
{
	uint64_t c = 0, i = 0;

	for (; i + 64 <= n; i += 64) {
		uint64_t w;

		memcpy(&w, b + i / 8, sizeof(w));
		c += (uint64_t)__builtin_popcountll(w);
	}
	for (; i < n; i++)
		c += bit_get(b, i);
	return c;
}

/* ---- store_image.c ------------------------------------------------------- */

/* Make the arrays hold n entries (new ones zero); -EFBIG or -ENOMEM. */
int image_reserve(struct image *im, uint64_t n);

/* Under im->lock: the page of entry i is im's alone, to write; -ENOMEM. */
int map_own(struct image *im, uint64_t i);

/* Under im->lock: entry i (below nmap) is key; -ENOMEM (a page to make). */
int map_put(struct image *im, uint64_t i, const uint8_t *key);

/*
 * Under both locks: d's entries [from, n) become im's, sharing whole
 * pages (both hold at least n entries); entries of d from n to the end of
 * n's page become zero. -ENOMEM, never when d owns (map_own) the pages
 * of from and of n that the range does not cover whole.
 */
int map_share(struct image *d, const struct image *im, uint64_t from,
	      uint64_t n);

/* "image <hex id>" into buf, for messages. */
void image_label(const struct image *im, char *buf, size_t size);

/* Under s->gc_lock: a reference to image id, loaded if not yet open. */
int image_get(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
	      struct image **out, struct snap_err *err);

/* Drop an image_get() reference; the last frees the image. */
void image_put(struct image *im);

/* -EROFS with a message when the store was opened read-only, else 0. */
int store_writable(struct snap_store *s, struct snap_err *err);

/* -EBADF with a message: im's handle is not open for writing. */
int image_not_writable(struct image *im, struct snap_err *err);

/* ---- store_io.c ---------------------------------------------------------- */

/* Under im->lock: chunk i of the head delta is now key; -ENOMEM. */
int image_map_set(struct image *im, uint64_t i, const uint8_t *key);

/* Under im->lock: store dirty chunk i and put its key in the map. */
int image_flush_one(struct image *im, uint64_t i, struct snap_err *err);

/* Under im->lock: store every dirty chunk. */
int image_flush(struct image *im, struct snap_err *err);

/* Under im->lock: set the size (the arrays follow); -EFBIG or -ENOMEM. */
int image_set_size(struct image *im, uint64_t size);

/*
 * Under im->lock (not dropped): the key of chunk size / chunk_size of im
 * with its bytes from size on zeroed, stored (a patch, mostly).
 */
int image_cut_key(struct image *im, uint64_t size, uint8_t key[SNAP_KEY_LEN],
		  struct snap_err *err);

/* ---- store_journal.c ----------------------------------------------------- */

/* Before im is shared: resolve its chain from its head into im->map. */
int image_load(struct image *im, struct snap_err *err);

/*
 * Under im->lock: when the copy of pieces left the head delta behind
 * (image_adopt defers it), rewrite it as one frame of im's size and own
 * entries above its source's frozen delta.
 */
int adopt_settle(struct image *im, struct snap_err *err);

/* Under im->lock: open the head journal for appending, once. */
int journal_open(struct image *im, struct snap_err *err);

/* Encode a frame of im's size and the count entries set in which. */
int journal_frame(struct image *im, const uint8_t *which, uint64_t count,
		  const uint8_t *parent, uint8_t **buf, size_t *len);

/* Under im->lock: flush and journal what changed; durable: and fsync. */
int image_commit(struct image *im, bool durable, struct snap_err *err);

/* A new delta file: one frame, no entries; *flen (or NULL) its length. */
int delta_create(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		 const uint8_t *parent, uint64_t size, uint64_t mtime,
		 unsigned flags, size_t *flen, struct snap_err *err);

/* images/<id> pointing at head; with ref, also images/<id>.ref. */
int image_info_write(struct snap_store *s, const struct image_info *ii,
		     bool ref, unsigned flags, struct snap_err *err);

/* Under im->lock: im now writes into the delta head (journal reset). */
void head_moved(struct image *im, const uint8_t head[SNAP_ID_LEN],
		const uint8_t *parent, uint64_t jbytes, uint64_t jentries);

/* ---- store_ws.c ---------------------------------------------------------- */

/* Under im->lock: chunk i is read; a recording notes its first read. */
void image_record_read(struct image *im, uint64_t i);

static inline void image_record(struct image *im, uint64_t i)
{
	if (im->rec)
		image_record_read(im, i);
}

/* Under im->lock: chunks recorded so far. */
uint64_t image_recorded(const struct image *im);

/* Free a recording (at the image's end). */
void image_record_free(struct image *im);

/* Give image to a copy of image from's working set (none: none). */
int image_ws_copy(struct snap_store *s, const uint8_t from[SNAP_ID_LEN],
		  const uint8_t to[SNAP_ID_LEN], struct snap_err *err);

/* ---- store_clone.c ------------------------------------------------------- */

/* Under im->lock: move im onto a new, empty delta above its head. */
int image_move_up(struct image *im, unsigned flags, struct snap_err *err);

#endif
