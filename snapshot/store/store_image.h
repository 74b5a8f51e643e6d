/* SPDX-License-Identifier: MIT */
#ifndef SNAP_STORE_IMAGE_H
#define SNAP_STORE_IMAGE_H

/*
 * What the image modules share and the rest of the store does not see.
 * Images: a map from chunk index to chunk key, resolved through a chain of
 * deltas, written copy-on-write into the head delta.
 *   store_image.c    the image object: lifetime, open images, create,
 *                    open, close, stat, touch, gc's and verify's view
 *   store_map.c      its map and its state of each chunk, in pages
 *   store_read.c     reading an open image, loading ahead
 *   store_io.c       writing an open image, storing dirty chunks,
 *                    truncate
 *   store_journal.c  loading a chain; the head delta's journal: commit,
 *                    sync, compaction, new deltas and image files
 *   store_clone.c    clone, freeze, flatten, copy_range (adopt, share)
 *   store_ws.c       working sets: the recording, the files beside images
 *
 * Locks: s->gc_lock (shared) around every call; s->images_lock for the
 * list of open images; im->lock for an image's map and buffers. Chunk
 * loads and decompression happen outside im->lock.
 */

#include "snapshot/store/store_int.h"

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

/* The bits an image keeps for each of its chunks. */
enum chunk_bit {
	BIT_OWN,	/* set by the head delta */
	BIT_PENDING,	/* changed since the last frame */
	BIT_SEEN,	/* read since open */
	BIT_REC,	/* noted by the working set being recorded */
	BIT_MARK,	/* scratch of one call under im->lock, clear after */
	BIT_KINDS
};

/*
 * The image's own state of one page's chunks (the map's pages may be
 * shared; this never is): made when one of its bits is first set, and its
 * array of written buffers only while it holds one.
 */
struct chunk_state {
	uint8_t bits[BIT_KINDS][MAP_PAGE / 8];
	unsigned ndirty;
	struct chunk **dirty;		/* MAP_PAGE buffers, or NULL */
};

/*
 * Pages are found through directories of DIR_PAGES, each NULL until one
 * of its pages is made: what an open image takes follows what it holds
 * and what was done to it, never its size, so an image that declares
 * 64 TiB and holds one chunk takes one directory and one page, and a walk
 * over it (image_next) skips the rest a directory at a time.
 */
#define DIR_SHIFT	9
#define DIR_PAGES	(1u << DIR_SHIFT)
/* A directory covers 1 << DIR_SPAN_SHIFT entries. */
#define DIR_SPAN_SHIFT	(MAP_SHIFT + DIR_SHIFT)

struct map_dir {
	struct map_page *map[DIR_PAGES];
	struct chunk_state *st[DIR_PAGES];
};

struct image {
	struct image *next;		/* s->images */
	struct snap_store *s;
	unsigned opens;
	pthread_mutex_t lock;
	struct image_info info;
	uint64_t size;
	struct image_times times;
	unsigned depth;
	uint64_t nmap;			/* entries dirs cover */
	struct map_dir **dirs;		/* nmap >> DIR_SPAN_SHIFT */
	uint64_t npending, ndirty, nseen;
	bool meta_pending;		/* size or times changed */
	uint64_t jbytes;		/* its whole frames */
	uint64_t jentries;		/* entries in them */
	bool unsynced;			/* appended without fsync */
	bool head_has_parent;
	uint8_t head_parent[SNAP_ID_LEN];
	/* Chunks the image had when its head delta began, and the fewest
	 * since: a head cut below its start hides what its parent holds
	 * there, so a clone may never skip it for the parent. */
	uint64_t head_start, head_floor;
	struct snap_image *handles;	/* under s->images_lock */
	/* The deltas of its chain as it was loaded, head first: what this
	 * open holds, for a gc elsewhere (s->shared). */
	uint8_t (*chain)[SNAP_ID_LEN];
	size_t nchain, capchain;
	/* s->shared: it holds its writer's lock (image_write_begin). */
	bool wlocked;
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

/* Under im->lock: the directory of entry i (below nmap), or NULL. */
static inline struct map_dir *dir_of(const struct image *im, uint64_t i)
{
	return im->dirs[i >> DIR_SPAN_SHIFT];
}

/* Under im->lock: the key of entry i (below nmap). */
static inline const uint8_t *map_get(const struct image *im, uint64_t i)
{
	const struct map_dir *d = dir_of(im, i);
	const struct map_page *p;

	p = d ? d->map[(i >> MAP_SHIFT) & (DIR_PAGES - 1)] : NULL;
	return p ? p->keys[i & (MAP_PAGE - 1)] : map_zero;
}

/* Under im->lock: the state of entry i's page (below nmap), or NULL. */
static inline struct chunk_state *state_of(const struct image *im,
					   uint64_t i)
{
	const struct map_dir *d = dir_of(im, i);

	return d ? d->st[(i >> MAP_SHIFT) & (DIR_PAGES - 1)] : NULL;
}

/* Under im->lock: bit b of chunk i (below nmap). */
static inline bool chunk_bit(const struct image *im, uint64_t i,
			     enum chunk_bit b)
{
	const struct chunk_state *st = state_of(im, i);

	return st && bit_get(st->bits[b], i & (MAP_PAGE - 1));
}

/* Under im->lock: chunk i's written buffer (below nmap), or NULL. */
static inline struct chunk *dirty_of(const struct image *im, uint64_t i)
{
	const struct chunk_state *st = state_of(im, i);

	return st && st->dirty ? st->dirty[i & (MAP_PAGE - 1)] : NULL;
}

/*
 * Under im->lock: im's bytes or size changed now. Its times move as a
 * local file's do, and ride on the next frame (image_commit).
 */
static inline void image_modified(struct image *im)
{
	im->times.mtime_ns = store_now_ns();
	im->times.ctime_ns = im->times.mtime_ns;
	im->meta_pending = true;
}

/* Under im->lock: something else of im changed now (a time, a name). */
static inline void image_changed(struct image *im)
{
	im->times.ctime_ns = store_now_ns();
	im->meta_pending = true;
}

static inline uint64_t chunks_for(const struct snap_store *s, uint64_t size)
{
	return (size + s->chunk_size - 1) / s->chunk_size;
}

/* ---- store_map.c --------------------------------------------------------- */

/*
 * Make room for an image of size bytes (new entries zero): -EFBIG past
 * SNAP_IMAGE_MAX, or -ENOMEM, with a message either way. Nothing the
 * image shows changes.
 */
int image_reserve(struct image *im, uint64_t size, struct snap_err *err);

/* What image_next() looks for in a page. */
#define NEXT_MAP	(1u << 0)	/* a map page: some key may be set */
#define NEXT_STATE	(1u << 1)	/* a state page: bits may be set */
#define NEXT_DIRTY	(1u << 2)	/* a written buffer */

/*
 * Under im->lock: the first entry from i on whose page has what (a mask
 * of NEXT_*), or nmap. Walks skip what is not there with it:
 *	for (i = image_next(im, 0, w); i < n; i = image_next(im, i + 1, w))
 */
uint64_t image_next(const struct image *im, uint64_t i, unsigned what);

/* Under im->lock: entry i's state page exists (made zero); -ENOMEM. */
int state_make(struct image *im, uint64_t i);

/*
 * Under im->lock: set bit b of chunk i: 1 when it was clear, 0 when it
 * was set, -ENOMEM (never once state_make(im, i) succeeded).
 */
int chunk_bit_set(struct image *im, uint64_t i, enum chunk_bit b);

void chunk_bit_clear(struct image *im, uint64_t i, enum chunk_bit b);

/* Under im->lock: clear bit b of every chunk. */
void bits_clear(struct image *im, enum chunk_bit b);

/* Under im->lock: how many chunks have bit b set. */
uint64_t bits_count(const struct image *im, enum chunk_bit b);

/* Under im->lock: bit to of every chunk becomes its bit from, which
 * becomes clear. */
void bits_move(struct image *im, enum chunk_bit from, enum chunk_bit to);

/* Under im->lock: ch becomes chunk i's written buffer (there was none);
 * -ENOMEM. */
int dirty_set(struct image *im, uint64_t i, struct chunk *ch);

/* Under im->lock: chunk i's written buffer, which it no longer has (the
 * caller takes the reference), or NULL. */
struct chunk *dirty_take(struct image *im, uint64_t i);

/* Under im->lock: the page of entry i is im's alone, to write; -ENOMEM. */
int map_own(struct image *im, uint64_t i);

/* Under im->lock: entry i (below nmap) is key; -ENOMEM (a page to make). */
int map_put(struct image *im, uint64_t i, const uint8_t *key);

/*
 * Under both locks: make what map_share(d, im, from, n) writes d's own
 * (the pages it sets entries of one by one, the directories it puts whole
 * pages in), so that it cannot fail; -ENOMEM.
 */
int map_share_prepare(struct image *d, const struct image *im,
		      uint64_t from, uint64_t n);

/*
 * Under both locks: d's entries [from, n) become im's, sharing whole
 * pages (both hold at least n entries); entries of d from n to the end of
 * n's page become zero. -ENOMEM, never after map_share_prepare().
 */
int map_share(struct image *d, const struct image *im, uint64_t from,
	      uint64_t n);

/* Free the map and the state (the image's end). */
void map_free(struct image *im);

/* ---- store_image.c ------------------------------------------------------- */

/* "image <hex id>" into buf, for messages. */
void image_label(const struct image *im, char *buf, size_t size);

/* Under s->gc_lock: a reference to image id, loaded if not yet open. */
int image_get(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
	      struct image **out, struct snap_err *err);

/* Drop an image_get() reference; the last frees the image. */
void image_put(struct image *im);

/*
 * Under im->lock, before im changes: where several processes write the
 * store (s->shared), take im's writer lock (-EBUSY when another holds it)
 * and load im again if another writer changed it since it was loaded
 * here. Held until everything im changed is stored and synced
 * (image_write_end) or im is closed. 0 at once elsewhere, where the
 * store's writer lock covers every image.
 */
int image_write_begin(struct image *im, struct snap_err *err);

/* Under im->lock: let go of im's writer lock if nothing it changed is
 * left to store or sync. */
void image_write_end(struct image *im);

/* -EROFS with a message when the store was opened read-only, else 0. */
int store_writable(struct snap_store *s, struct snap_err *err);

/* -EBADF with a message: im's handle is not open for writing. */
int image_not_writable(struct image *im, struct snap_err *err);

/* ---- store_read.c -------------------------------------------------------- */

/*
 * Key's chunk with a reference: from the cache, from a load another
 * thread has in flight, or loaded here. *missed: whether it was not
 * simply in the cache.
 */
int chunk_get(struct snap_store *s, const uint8_t key[SNAP_KEY_LEN],
	      struct chunk **out, bool *missed, struct snap_err *err);

/*
 * Bytes [in, in + n) of chunk i's current content into out, with im->lock
 * held on entry and on return (dropped while loading); pi (may be NULL)
 * gets what they are made of. Returns 0, or a negative errno with
 * im->lock held.
 */
int chunk_read_locked(struct image *im, uint64_t i, uint8_t *out, size_t in,
		      size_t n, bool direct, struct chunk_patch *pi,
		      struct snap_err *err);

/* ---- store_io.c ---------------------------------------------------------- */

/* Under im->lock: chunk i of the head delta is now key; -ENOMEM. */
int image_map_set(struct image *im, uint64_t i, const uint8_t *key);

/* Under im->lock: store dirty chunk i and put its key in the map. */
int image_flush_one(struct image *im, uint64_t i, struct snap_err *err);

/* Under im->lock: store every dirty chunk. */
int image_flush(struct image *im, struct snap_err *err);

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

/*
 * Under im->lock: append buf (whole frames) to the head delta's journal,
 * at the end of what was read or written of it (settling an adoption
 * first); durable: and make the journal durable.
 */
int journal_append(struct image *im, const uint8_t *buf, size_t len,
		   bool durable, struct snap_err *err);

/* Publish delta id's journal as buf (whole frames; flags of meta.h). */
int delta_put(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
	      const uint8_t *buf, size_t len, unsigned flags,
	      struct snap_err *err);

/* Encode a frame of im's size and the count entries with bit which set. */
int journal_frame(struct image *im, enum chunk_bit which, uint64_t count,
		  const uint8_t *parent, uint8_t **buf, size_t *len);

/* Under im->lock: flush and journal what changed; durable: and fsync. */
int image_commit(struct image *im, bool durable, struct snap_err *err);

/* A new delta file: one frame, no entries; *flen (or NULL) its length. */
int delta_create(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		 const uint8_t *parent, uint64_t size,
		 const struct image_times *times, unsigned flags, size_t *flen,
		 struct snap_err *err);

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
