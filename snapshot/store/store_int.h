/* SPDX-License-Identifier: MIT */
#ifndef SNAP_STORE_INT_H
#define SNAP_STORE_INT_H

/*
 * What the store's modules share and nobody else sees:
 *   store.c        open, close, locks, names
 *   store_meta.c   the metadata objects (proto/store.proto), their codecs
 *   meta_dir.c     where they are kept: a local directory (meta.h)
 *   store_image.c  images (store_image.h lists the files of them)
 *   store_ws.c     working sets: recording, their files
 *   store_gc.c     stats, verify, gc
 *   store_live.c   what is live in the store, for them
 *   chunk.c        chunk codec (zstd, digest)
 *   chunk_cache.c  the cache of decompressed chunks
 *   fetch.c        the threads that load chunks ahead of readers
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "snapshot/store/backend.h"
#include "snapshot/store/meta.h"
#include "snapshot/store/store.h"

/* ---- chunk.c ------------------------------------------------------------- */

/*
 * A stored chunk: a 16-byte header, then the payload.
 *   0  4  magic "SNCK"
 *   4  1  codec: 0 raw, 1 zstd
 *   5  3  reserved, zero
 *   8  4  length of the chunk's bytes (the store's chunk size), LE
 *   12 4  reserved, zero
 */
#define CHUNK_HDR	16
#define CODEC_RAW	0
#define CODEC_ZSTD	1
#define CODEC_PATCH	2	/* docs/store.md, "Patches" */

/*
 * Pages, for patches: a chunk stored as the pages in which it differs
 * from another chunk, its base.
 */
#define STORE_PAGE		4096u
#define PATCH_PAGES_MAX		(SNAP_CHUNK_MAX / STORE_PAGE)
#define PATCH_DEPTH_MAX		4	/* bases of bases a read follows */
#define FEATURE_PATCHES		"chunk-patches"	/* store.bin */
#define FEATURE_PACKS		"chunk-packs"	/* store.bin: pack.h */

/*
 * What a chunk's bytes are made of: those of the chunk keyed base (zero:
 * all zeros) except in the pages set in pages. A chunk loaded from a
 * patch has its patch's; one loaded whole is its own base, no pages set;
 * a buffer being written adds each page it writes to. A fact about the
 * bytes, not about how they are stored: the chunk stored under a key
 * may be whole or a patch, whoever put it first. valid false: unknown.
 */
struct chunk_patch {
	bool valid;
	uint8_t base[SNAP_KEY_LEN];
	uint8_t pages[PATCH_PAGES_MAX / 8];
};

/* p (may be NULL): the bytes are base's, with no page of their own. */
static inline void patch_whole(struct chunk_patch *p, const uint8_t *base)
{
	if (!p)
		return;
	p->valid = true;
	memcpy(p->base, base, SNAP_KEY_LEN);
	memset(p->pages, 0, sizeof(p->pages));
}

/* Pages [off, off + n) of a chunk were written. */
static inline void patch_mark(struct chunk_patch *p, size_t off, size_t n)
{
	for (size_t pg = off / STORE_PAGE; n && pg <= (off + n - 1) / STORE_PAGE;
	     pg++)
		p->pages[pg / 8] |= (uint8_t)(1u << (pg % 8));
}

/* A decompressed, verified chunk, shared by reference. */
struct chunk {
	uint8_t key[SNAP_KEY_LEN];
	unsigned refs;		/* under the cache's lock */
	bool cached;		/* in the cache's table */
	bool loading;		/* claimed: its bytes are being loaded */
	struct chunk *hnext;	/* hash chain, or the free list */
	struct chunk *prev, *next; /* LRU, most recent first */
	uint8_t *data;		/* chunk_size bytes */
	struct chunk_patch patch;
};

struct chunk_cache;

int chunk_cache_new(size_t max_bytes, uint32_t chunk_size,
		    struct chunk_cache **c);
void chunk_cache_free(struct chunk_cache *c);

/* A new chunk (of the cache's chunk size) with one reference, not in the
 * cache; NULL without memory. */
struct chunk *chunk_alloc(struct chunk_cache *c);

#define CLAIM_HIT	0	/* *out: the cached chunk */
#define CLAIM_MINE	1	/* *out: a new entry for the caller to load */
#define CLAIM_BUSY	2	/* another thread loads it; *out is NULL */

/*
 * The chunk of key, with a reference for the caller. When the cache has
 * it: CLAIM_HIT. When nobody has it: a new entry, marked loading, for the
 * caller to fill and pass to chunk_cache_done(): CLAIM_MINE. When another
 * thread is loading it: with wait, its result (a hit, or, when that load
 * failed, the claim); without, CLAIM_BUSY. -ENOMEM without memory.
 * A claimed entry must be done: others may be waiting for it.
 */
int chunk_cache_claim(struct chunk_cache *c, const uint8_t key[SNAP_KEY_LEN],
		      bool wait, struct chunk **out);

/* A claimed entry was loaded (ok) or not (it leaves the cache). The
 * caller keeps its reference. */
void chunk_cache_done(struct chunk_cache *c, struct chunk *ch, bool ok);

/* Give ch (key set, one reference, not cached) to the cache, reference
 * and all; when the cache already has that key, ch is dropped. */
void chunk_cache_offer(struct chunk_cache *c, struct chunk *ch);

/* The cached chunk of key with a reference, or NULL (also while it is
 * being loaded). */
struct chunk *chunk_cache_ref(struct chunk_cache *c,
			      const uint8_t key[SNAP_KEY_LEN]);

/* Whether key is cached or being loaded. */
bool chunk_cache_has(struct chunk_cache *c, const uint8_t key[SNAP_KEY_LEN]);

/* Drop a reference (ch may be NULL). */
void chunk_put(struct chunk_cache *c, struct chunk *ch);

bool chunk_is_zero(const void *p, size_t n);
bool key_is_zero(const uint8_t key[SNAP_KEY_LEN]);
void key_hex(const uint8_t key[SNAP_KEY_LEN], char out[2 * SNAP_KEY_LEN + 1]);

struct snap_store;

/*
 * Store data (one chunk of the store's chunk size): key it, and unless
 * the backend has it, compress it (raw when zstd gains nothing) and put
 * it. With p (may be NULL) valid, at most half its pages set and its
 * base stored, only those pages are put, as a patch of the base; p
 * becomes what was stored is made of (whole: its own base, no pages).
 * All-zero data is never stored and gets the zero key. *stored is set to
 * whether a put happened.
 */
int chunk_store(struct snap_store *s, const void *data,
		struct chunk_patch *p, uint8_t key[SNAP_KEY_LEN], bool *stored);

/*
 * Fetch key into out (chunk_size bytes): get, check the header,
 * decompress (a patch: its base, then its pages), check the digest. -EIO
 * with a message on any mismatch, -ENOENT (as -EIO too, "missing") when
 * the backend has no such key. pi (may be NULL) gets what the bytes are
 * made of.
 */
int chunk_load(struct snap_store *s, const uint8_t key[SNAP_KEY_LEN],
	       void *out, struct chunk_patch *pi, struct snap_err *err);

/*
 * The base of the chunk stored under key when it is a patch: 1 and
 * *base set; 0 when it is whole (or absent); a negative errno.
 * Reads only small objects (a patch is at most half a chunk).
 */
int chunk_patch_base(struct snap_store *s, const uint8_t key[SNAP_KEY_LEN],
		     uint8_t base[SNAP_KEY_LEN]);

/* ---- fetch.c ------------------------------------------------------------- */

struct fetch_pool;

/* A pool of up to nthreads threads loading chunks into s's cache. */
int fetch_pool_new(struct snap_store *s, unsigned nthreads,
		   struct fetch_pool **p);

/* Stop the threads (jobs still queued are dropped); p may be NULL. */
void fetch_pool_free(struct fetch_pool *p);

/*
 * Load key into the cache in the background, unless it is cached or being
 * loaded. false when the job was dropped (the queue is full, or no thread
 * could start): a reader then loads the chunk itself.
 */
bool fetch_ahead(struct fetch_pool *p, const uint8_t key[SNAP_KEY_LEN]);

/* ---- store_meta.c -------------------------------------------------------- */

struct store_info {
	uint8_t id[SNAP_ID_LEN];
	uint32_t chunk_size;
	uint64_t created_ns;
	bool patches;		/* requires FEATURE_PATCHES */
	bool packs;		/* requires FEATURE_PACKS */
};

struct image_info {
	uint8_t id[SNAP_ID_LEN];
	uint8_t head[SNAP_ID_LEN];
	uint64_t created_ns;
};

/*
 * An image's times, ns since the epoch, as every delta frame records them
 * (a frame of an older build has only mtime: the others read as it).
 */
struct image_times {
	uint64_t mtime_ns;	/* its bytes or size last changed */
	uint64_t ctime_ns;	/* anything of it (names too) last changed */
	uint64_t atime_ns;	/* as last set: reads never move it */
};

/* One delta journal frame, decoded; entries point into a buffer of ours. */
struct delta_frame {
	bool has_parent;
	uint8_t parent[SNAP_ID_LEN];
	uint64_t size;
	struct image_times times;
	bool frozen;		/* shared from here on: never written again */
	size_t n;
	uint64_t *indexes;
	const uint8_t *keys;	/* 32 * n bytes */
};

/* An object's name (meta.h): "folder/<hex id>suffix". */
#define META_NAME_MAX	96
void meta_name(char buf[META_NAME_MAX], const char *folder,
	       const uint8_t id[SNAP_ID_LEN], const char *suffix);

int meta_store_write(const struct snap_meta *mt, const struct store_info *si,
		     struct snap_err *err);
int meta_store_read(const struct snap_meta *mt, struct store_info *si,
		    struct snap_err *err);
/* Add feature to store.bin's required features (durably, atomically),
 * keeping everything else it holds. */
int meta_store_require(const struct snap_meta *mt, const char *feature,
		       struct snap_err *err);
/* images/<id>. flags: META_NOREPLACE, META_DURABLE (meta.h) */
int meta_image_write(const struct snap_meta *mt, const struct image_info *ii,
		     unsigned flags, struct snap_err *err);
int meta_image_read(const struct snap_meta *mt, const uint8_t id[SNAP_ID_LEN],
		    struct image_info *ii, struct snap_err *err);
/* images/<id>.ref, never replaced. */
int meta_ref_write(const struct snap_meta *mt, const uint8_t id[SNAP_ID_LEN],
		   unsigned flags, struct snap_err *err);
/* The image a FileRef's bytes (a frame) name. */
int meta_ref_decode(const uint8_t *buf, size_t n, const char *label,
		    uint8_t id[SNAP_ID_LEN], struct snap_err *err);

/* A working set file (not durable: advisory; atomic all the same). */
int meta_ws_write(const struct snap_meta *mt, const char *name,
		  const struct snap_ws *ws, uint32_t chunk_size,
		  struct snap_err *err);

/*
 * Read one, keeping only the indexes below nchunks, each once. -EBADMSG
 * when it is not one, or of another chunk size.
 */
int meta_ws_read(const struct snap_meta *mt, const char *name,
		 const char *label, uint32_t chunk_size, uint64_t nchunks,
		 struct snap_ws *ws, struct snap_err *err);

/* A frame of a delta journal, ready to append. */
int meta_delta_encode(const struct delta_frame *f, uint8_t **buf,
		      size_t *len);

/*
 * Read the journal of delta id and call fn per frame (in order). *end gets
 * the length of its whole frames. The frame passed to fn lives until fn
 * returns.
 */
int meta_delta_read(const struct snap_meta *mt, const uint8_t id[SNAP_ID_LEN],
		    const char *label,
		    int (*fn)(void *arg, const struct delta_frame *f),
		    void *arg, size_t *end, struct snap_err *err);

/*
 * An open record (proto/store.proto, OpenRecord): the deltas an open of
 * the store holds, framed, ready to publish (meta.h).
 */
int meta_open_encode(const uint8_t (*deltas)[SNAP_ID_LEN], size_t n,
		     uint8_t **buf, size_t *len);

/* Call fn with each delta of record buf (n bytes, one frame), in order;
 * stops at fn's first non-zero return. -EBADMSG naming label when buf is
 * not a record. */
int meta_open_decode(const uint8_t *buf, size_t n, const char *label,
		     int (*fn)(void *arg, const uint8_t id[SNAP_ID_LEN]),
		     void *arg, struct snap_err *err);

/* ---- store.c ------------------------------------------------------------- */

struct image;
struct rados_conn;

struct snap_store {
	char *dir;		/* where it is: a directory, or rados:... */
	struct snap_meta meta;
	struct rados_conn *rados;	/* in RADOS: the connection */
	bool rdonly;
	/* Several processes may write it, each image by one at a time
	 * (meta.h: lock_image), and gc marks what the others hold. */
	bool shared;
	uint32_t chunk_size;
	int zstd_level;
	size_t dirty_max;
	struct snap_backend backend;
	struct chunk_cache *cache;
	struct fetch_pool *pool;
	bool patches;		/* store.bin requires FEATURE_PATCHES */
	uint64_t put_bytes;	/* atomic: chunk bytes put since open */
	pthread_mutex_t info_lock;	/* store.bin's rewrite */
	/*
	 * Readers and writers of images hold gc_lock shared for each call;
	 * gc holds it exclusively. images_lock guards the open images.
	 */
	pthread_rwlock_t gc_lock;
	pthread_mutex_t images_lock;
	struct image *images;
	/* Images made here (create, clone) that no name holds and nobody
	 * opened yet, under images_lock: gc here keeps them, as the caller
	 * is about to link or open one (a daemon's gc may run between its
	 * create and its link). */
	uint8_t (*fresh)[SNAP_ID_LEN];
	size_t nfresh, capfresh;
};

/* An image made here, not named yet: gc spares it until it is. */
void store_fresh_add(struct snap_store *s, const uint8_t id[SNAP_ID_LEN]);

/* It has a name now, or was opened (then open or garbage, as any). */
void store_fresh_drop(struct snap_store *s, const uint8_t id[SNAP_ID_LEN]);

int store_new_id(uint8_t id[SNAP_ID_LEN]);
uint64_t store_now_ns(void);

/* ---- store_image.c ------------------------------------------------------- */

/* Sync and free every open image (at close). */
void image_close_all(struct snap_store *s);

/*
 * Image id gained, lost or changed a name: when it is open here, its
 * ctime moves, riding on its next frame. A closed one is left alone, not
 * loaded for a time nobody holds it to look at (snapfs keeps open every
 * file the kernel knows, and the kernel knows those it changes names of).
 */
void image_names_changed(struct snap_store *s, const uint8_t id[SNAP_ID_LEN]);

/*
 * For gc: call image() with the id and head of each image open in this
 * process and key() with every non-zero key of its map (some not yet
 * journaled).
 */
int image_mark_open(struct snap_store *s,
		    int (*image)(void *arg, const uint8_t id[SNAP_ID_LEN],
				 const uint8_t head[SNAP_ID_LEN]),
		    int (*key)(void *arg, const uint8_t k[SNAP_KEY_LEN]),
		    void *arg);

/* Call fn with every non-zero chunk of an open image's map, by index. */
int image_map_each(struct snap_image *h,
		   int (*fn)(void *arg, uint64_t index,
			     const uint8_t key[SNAP_KEY_LEN]),
		   void *arg);

/* The store an image handle belongs to. */
struct snap_store *image_store(struct snap_image *h);

/* What an open image's map and state hold in memory, counted (tests;
 * store_map.c). */
struct image_mem {
	uint64_t dirs;		/* directories of pages */
	uint64_t map_pages;
	uint64_t state_pages;
	uint64_t dirty_arrays;	/* pages' arrays of written buffers */
};

void image_mem(struct snap_image *h, struct image_mem *m);

#define CHAIN_MAX	4096

/* ---- store_live.c -------------------------------------------------------- */

/* A set of keys (open addressing), each with a value. */
struct keyset {
	size_t n, cap;			/* cap a power of two */
	uint8_t (*keys)[SNAP_KEY_LEN];	/* zero: empty slot */
	uint64_t *vals;
};

void keyset_free(struct keyset *ks);
bool keyset_has(const struct keyset *ks, const uint8_t *key);
/* Add key (once); *val (may be NULL) gets its value slot. */
int keyset_add(struct keyset *ks, const uint8_t *key, uint64_t **val);
/* Add the base of each patch among ks's keys, and their bases in turn. */
int keyset_add_bases(struct snap_store *s, struct keyset *ks);

/* What is live in store s, once live_mark has marked it. */
struct live {
	struct snap_store *s;
	struct keyset keys;		/* chunks */
	struct keyset deltas;		/* ids, zero-padded to a key */
	struct keyset images;
	struct snap_err *err;
	void (*report)(void *arg, const char *line);
	void *arg;
	uint64_t problems;
};

/*
 * Mark everything live: images with names, images open here, their
 * chains and their keys. Problems (an unreadable image or delta) are
 * reported and counted, and what they hold stays unmarked.
 */
int live_mark(struct live *l);
/* Mark what other opens of the store hold (gc, after live_mark). */
int live_mark_held(struct live *l);
/* Free l->deltas and the deltas read into it. */
void live_free_deltas(struct keyset *ks);
/* An id, zero-padded to a key (for a keyset). */
void live_id_key(const uint8_t id[SNAP_ID_LEN], uint8_t key[SNAP_KEY_LEN]);
/* n bytes from 2n lower-case hex digits: 0, or -1. */
int live_unhex(const char *s, uint8_t *out, size_t n);

#endif
