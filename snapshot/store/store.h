/* SPDX-License-Identifier: MIT */
#ifndef SNAP_STORE_H
#define SNAP_STORE_H

/*
 * The memory store: every snapshot's files kept once, in content-addressed,
 * compressed chunks (docs/store.md has the layout on disk).
 *
 * A store is a directory. Its snapshots are named directories of files;
 * each file name refers to an image, and several names may refer to one
 * image (hard links). An image is a map from chunk index to chunk key plus
 * a parent: reads resolve through the chain, writes go copy-on-write into
 * the image's own delta, and a clone is constant time (the source's delta
 * is frozen and both images continue on new, empty deltas above it).
 *
 * Chunks are chunk_size bytes (a power of two fixed when the store is
 * made), keyed by their SHA-256, never stored when all-zero, compressed
 * with zstd when that saves space, and checked against their key on every
 * read: a chunk that does not match is -EIO naming the image and offset.
 *
 * Durability, as on a POSIX filesystem: snap_image_sync() returns once
 * every write to the image before it (and the image itself) survives a
 * crash of the process or the machine; snap_store_sync() does the same
 * for the names in a directory. What was not synced may be lost, never
 * torn: every update is an atomic rename or a checksummed append, and a
 * delta is marked frozen, durably, before anything shares it.
 *
 * Concurrency: within a process, every function is thread-safe; one image
 * may have many readers and writers at once (writes to the same bytes race
 * as they would on a file). Across processes, a directory store has one
 * writer and any number of readers beside it, and gc needs the store to
 * itself and says so when another process has it open. A store in RADOS
 * has any number of writers, each image one at a time (a write to an
 * image another holds is -EBUSY, naming it; the writer lets go at its
 * sync, flush or close), and a writer takes up what others wrote before
 * it writes; gc runs beside readers, keeping what each holds, but not
 * beside another writer. Every reader sees an image as of its open (or
 * its last snap_image_refresh).
 *
 * Errors: 0 or a negative errno, with one line in err (error.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "snapshot/store/backend.h"
#include "snapshot/format/error.h"

#define SNAP_ID_LEN		16
#define SNAP_CHUNK_MIN		(4u << 10)
#define SNAP_CHUNK_MAX		(4u << 20)
#define SNAP_CHUNK_DEFAULT	(64u << 10)	/* docs/store-chunks.md */
#define SNAP_STORE_NAME_MAX	255

/*
 * The largest image, in bytes: the largest memory.bin a snapshot may hold
 * (manifest.h), and a multiple of every chunk size. Creating, growing or
 * writing past it is -EFBIG; an image on disk that declares more is
 * -EBADMSG (docs/store.md, "Images and deltas").
 */
#define SNAP_IMAGE_MAX		(UINT64_C(1) << 46)	/* 64 TiB */

struct snap_store;
struct snap_image;

/* Flags of snap_store_opts. */
#define SNAP_STORE_RDONLY	(1u << 0)

struct snap_store_opts {
	unsigned flags;
	size_t cache_bytes;	/* decompressed chunks kept; 0: 256 MiB */
	size_t dirty_bytes;	/* written chunks held per image before
				   they are stored; 0: 64 MiB */
	int zstd_level;		/* 0: the default (docs/store.md) */
	unsigned fetch_threads;	/* loading chunks ahead of readers; 0: 4 */
	/*
	 * Where chunks live. NULL: the directory STORE/chunks. Otherwise the
	 * store takes b over (and frees it at close, even on failure).
	 */
	const struct snap_backend *backend;
	/*
	 * A store in RADOS (and backend NULL): keep the chunks it reads in
	 * a local cache tier in this directory (snap_backend_cache, made
	 * when missing; one process at a time), at most chunk_cache_bytes
	 * (0: 1 GiB). NULL: every read goes to the cluster.
	 */
	const char *chunk_cache_dir;
	uint64_t chunk_cache_bytes;
};

/* Make an empty store in dir (created if missing, else it must be empty). */
int snap_store_init(const char *dir, uint32_t chunk_size,
		    struct snap_err *err);

/* Open the store in dir; opts may be NULL. */
int snap_store_open(const char *dir, const struct snap_store_opts *opts,
		    struct snap_store **s, struct snap_err *err);

/*
 * Sync and close every image still open (freeing handles not closed:
 * they must not be used afterwards), free s (or NULL).
 */
void snap_store_close(struct snap_store *s);

/*
 * The name a store goes by wherever it is mentioned (a mount's source): a
 * directory's absolute path, or a rados: name as it is. -errno when a
 * directory cannot be resolved, -ENAMETOOLONG when it does not fit.
 */
int snap_store_name(const char *name, char *out, size_t size);

uint32_t snap_store_chunk_size(const struct snap_store *s);
const char *snap_store_path(const struct snap_store *s);

/* The room where the store is (statvfs(3)): its filesystem's, or its
 * cluster's. */
int snap_store_statfs(struct snap_store *s, struct statvfs *sv,
		      struct snap_err *err);

/* ---- names ------------------------------------------------------------
 *
 * A path is "SNAPSHOT" or "SNAPSHOT/FILE": components of 1 to
 * SNAP_STORE_NAME_MAX bytes (-ENAMETOOLONG), without '/', and neither "."
 * nor ".." (-EINVAL).
 */

int snap_store_mkdir(struct snap_store *s, const char *name,
		     struct snap_err *err);
int snap_store_rmdir(struct snap_store *s, const char *name,
		     struct snap_err *err);	/* -ENOTEMPTY */

/* Make the names in snapshot name (NULL: the snapshots) durable. */
int snap_store_sync(struct snap_store *s, const char *name,
		    struct snap_err *err);

/*
 * Give image id the name path (a file in an existing snapshot; -EEXIST
 * when taken). Every name of an image counts in its nlink, however it was
 * made: this or snap_store_hardlink().
 */
int snap_store_link(struct snap_store *s, const char *path,
		    const uint8_t id[SNAP_ID_LEN], struct snap_err *err);

/* Give the image named from the further name to. */
int snap_store_hardlink(struct snap_store *s, const char *from,
			const char *to, struct snap_err *err);

/* Remove a file name. The image lives on while other names or opens hold
 * it; gc frees what nothing holds. */
int snap_store_unlink(struct snap_store *s, const char *path,
		      struct snap_err *err);

/* The image a file name refers to (and how many names it has). */
int snap_store_lookup(struct snap_store *s, const char *path,
		      uint8_t id[SNAP_ID_LEN], unsigned *nlink,
		      struct snap_err *err);

/*
 * Rename a snapshot or a file (to a path of the same depth). With
 * noreplace, -EEXIST when to exists; otherwise an existing file, or an
 * empty snapshot, is replaced atomically.
 */
int snap_store_rename(struct snap_store *s, const char *from, const char *to,
		      bool noreplace, struct snap_err *err);

/*
 * Call fn once per snapshot (name NULL) or per file of snapshot name, in
 * name order; stops when fn returns non-zero and returns that.
 */
int snap_store_list(struct snap_store *s, const char *name,
		    int (*fn)(void *arg, const char *entry), void *arg,
		    struct snap_err *err);

/* stat(2) of the directory behind a snapshot (name NULL: of the root). */
int snap_store_dir_stat(struct snap_store *s, const char *name,
			struct stat *st, struct snap_err *err);

/* How many names image id has. */
int snap_store_nlink(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		     unsigned *nlink, struct snap_err *err);

/* ---- images ------------------------------------------------------------ */

/* A new image of size bytes (at most SNAP_IMAGE_MAX), all zero. It has no
 * name: link it. */
int snap_image_create(struct snap_store *s, uint64_t size,
		      uint8_t id[SNAP_ID_LEN], struct snap_err *err);

/*
 * A new image with src's content, in constant time. src may be open and
 * being written: what was written before the call is in the clone (src is
 * synced first), nothing after it.
 */
int snap_image_clone(struct snap_store *s, const uint8_t src[SNAP_ID_LEN],
		     uint8_t id[SNAP_ID_LEN], struct snap_err *err);

/*
 * Rewrite image id's chain into one delta without a parent. No chunk is
 * copied; the map is. Afterwards reads need no parent.
 */
int snap_image_flatten(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		       struct snap_err *err);

/* Flags of snap_image_open(). */
#define SNAP_IMAGE_WRITE	(1u << 0)

/* Open image id; opening it twice gives two handles on one image. */
int snap_image_open(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		    unsigned flags, struct snap_image **img,
		    struct snap_err *err);

/*
 * Store what img wrote (not durably: that is snap_image_sync) and free the
 * handle (or NULL). Returns what storing it returned.
 */
int snap_image_close(struct snap_image *img, struct snap_err *err);

/*
 * Where several hosts write the store (RADOS): load img again if another
 * host changed the image since this process loaded it (every host sees an
 * image as of its open, and this is an open: snapfs calls it at each,
 * as NFS revalidates at open). *changed says whether it did. Elsewhere,
 * and for an image this process is writing, a no-op.
 */
int snap_image_refresh(struct snap_image *img, bool *changed,
		       struct snap_err *err);

/* Read up to len bytes at off: the bytes read, short only at the end. */
ssize_t snap_image_read(struct snap_image *img, void *buf, size_t len,
			uint64_t off, struct snap_err *err);

/*
 * snap_image_read for a reader that will not come back for the same
 * bytes (a push into the page cache): whole chunks not in the cache are
 * loaded (and checked) straight into buf, and not kept in the cache.
 */
ssize_t snap_image_read_direct(struct snap_image *img, void *buf, size_t len,
			       uint64_t off, struct snap_err *err);

/* img's size in bytes. */
uint64_t snap_image_size(struct snap_image *img);

/*
 * Write len bytes at off, growing the image when they end past it. A
 * write that would end past SNAP_IMAGE_MAX is short, ending there; one at
 * or past it is -EFBIG.
 */
ssize_t snap_image_write(struct snap_image *img, const void *buf, size_t len,
			 uint64_t off, struct snap_err *err);

/*
 * Set img's size: bytes cut off read as zeros if it grows again. -EFBIG
 * past SNAP_IMAGE_MAX. A truncate that fails changes nothing, its
 * modification and change times included.
 */
int snap_image_truncate(struct snap_image *img, uint64_t size,
			struct snap_err *err);

/* Make every write before it durable. */
int snap_image_sync(struct snap_image *img, struct snap_err *err);

/*
 * At a close of the file (as NFS does): where several hosts write the
 * store (RADOS), store what img wrote, so that every open elsewhere from
 * now on sees it, and let go of the image's writer lock. Elsewhere a
 * no-op: one process writes a directory store, and it shows what it
 * wrote to other processes at its syncs.
 */
int snap_image_flush(struct snap_image *img, struct snap_err *err);

/*
 * Copy src's bytes [soff, soff+len) into dst at doff, growing dst as a
 * write would. Whole chunks at chunk-aligned offsets in both are shared
 * (copy-on-write: one key per chunk, no data); the rest is copied. When
 * dst is empty and the range is all of src from 0, dst becomes a clone
 * of src in constant time (snap_image_clone, keeping dst's id and names).
 * Returns the bytes copied (short only at src's end).
 */
ssize_t snap_image_copy_range(struct snap_image *src, uint64_t soff,
			      struct snap_image *dst, uint64_t doff,
			      size_t len, struct snap_err *err);

struct snap_image_stat {
	uint8_t id[SNAP_ID_LEN];
	uint64_t size;
	uint64_t created_ns;
	uint64_t mtime_ns;	/* its bytes or size last changed */
	uint64_t ctime_ns;	/* anything of it last changed (below) */
	uint64_t atime_ns;	/* as last set; reads leave it */
	unsigned depth;		/* deltas in the chain, 1 without parent */
	uint64_t chunks;	/* non-zero chunks in the image's map */
	uint64_t own_chunks;	/* of which its own delta set */
	uint64_t resident;	/* distinct chunks read since it was opened */
	uint64_t fetched;	/* chunks its reads waited for the backend */
	bool recording;		/* a working set is being recorded */
	uint64_t recorded;	/* chunks in it so far */
};

void snap_image_stat(struct snap_image *img, struct snap_image_stat *st);

/*
 * An image keeps three times, as a local file does (ns since the epoch):
 * a write, a truncate or a copy into it sets its mtime and ctime to now;
 * setting a time, and a name given to it, taken from it or renamed
 * (snap_store_link, _hardlink, _unlink, _rename) set its ctime to now.
 * Reads never move atime: a journal frame per read would make every read
 * a write. A name change moves the ctime of an image open in this
 * process only; a closed one is not loaded for it (in RADOS, of one this
 * process is writing: a name change takes no image's lock). Each change is durable
 * with the image's next sync, as its writes are; a call that fails
 * changes no time.
 */

/* Values of snap_image_set_times()'s times, as utimensat(2)'s UTIME_*. */
#define SNAP_TIME_NOW	UINT64_MAX		/* now */
#define SNAP_TIME_OMIT	(UINT64_MAX - 1)	/* left as it is */

/*
 * Set the access and modification times; the change time becomes now
 * whatever they are (both SNAP_TIME_OMIT: only it moves).
 */
int snap_image_set_times(struct snap_image *img, uint64_t atime_ns,
			 uint64_t mtime_ns, struct snap_err *err);

/* snap_image_set_times(img, SNAP_TIME_OMIT, mtime_ns, err). */
int snap_image_touch(struct snap_image *img, uint64_t mtime_ns,
		     struct snap_err *err);

/* The bytes the distinct chunks of img's map take in the backend. */
int snap_image_stored_bytes(struct snap_image *img, uint64_t *bytes,
			    struct snap_err *err);

/*
 * Load chunks [index, index + count) of img into the store's cache in the
 * background, in order, as far as the fetch queue takes them; all-zero
 * and cached chunks are skipped. Returns how many were queued.
 */
uint64_t snap_image_prefetch(struct snap_image *img, uint64_t index,
			     uint64_t count);

/* ---- working sets -----------------------------------------------------
 *
 * An image's working set: the chunks read first after some open, in the
 * order they were first read, kept beside the image (docs/store.md) and
 * carried by its clones. snapfs records one while a restored VM starts
 * and pushes it into the page cache when the image is next opened.
 */

struct snap_ws {
	bool off;		/* turned off: neither recorded nor used */
	uint64_t recorded_ns;
	uint64_t n;
	uint64_t *index;	/* chunk indexes, first read first */
};

/* Free ws's indexes (the struct itself is the caller's). */
void snap_ws_release(struct snap_ws *ws);

/*
 * img's working set into ws (indexes past the image's end, and repeats,
 * left out). -ENOENT when it has none.
 */
int snap_image_ws_load(struct snap_image *img, struct snap_ws *ws,
		       struct snap_err *err);

/* Replace img's working set with ws (atomic; ws NULL: remove it). */
int snap_image_ws_save(struct snap_image *img, const struct snap_ws *ws,
		       struct snap_err *err);

/*
 * Start recording the chunks read from img from now on, each once, in
 * order (any earlier recording is dropped).
 */
int snap_image_record_start(struct snap_image *img, struct snap_err *err);

/* Stop recording; ws (may be NULL) gets what was recorded. */
void snap_image_record_stop(struct snap_image *img, struct snap_ws *ws);

/* ---- the whole store ----------------------------------------------------- */

struct snap_store_stats {
	uint64_t snapshots;
	uint64_t files;		/* names */
	uint64_t images;	/* distinct images the names refer to */
	uint64_t logical_bytes;	/* sum of the images' sizes */
	uint64_t mapped_bytes;	/* non-zero chunks in their maps * chunk */
	uint64_t chunks;	/* distinct chunks those maps use */
	uint64_t unique_bytes;	/* chunks * chunk size */
	uint64_t stored_bytes;	/* what those chunks take in the backend */
	uint64_t garbage_chunks; /* stored but used by no image */
	uint64_t garbage_bytes;
	uint64_t deltas;
	uint64_t meta_bytes;	/* deltas and images: their bytes */
};

int snap_store_stats(struct snap_store *s, struct snap_store_stats *st,
		     struct snap_err *err);

struct snap_gc_stats {
	uint64_t chunks;	/* freed */
	uint64_t bytes;
	uint64_t deltas;
	uint64_t images;
	uint64_t kept_chunks;	/* what is left */
	uint64_t kept_bytes;
};

/*
 * Bytes of chunks this handle has put into the backend since it opened:
 * what gc may have to free one day, so a daemon can bound its garbage.
 */
uint64_t snap_store_put_bytes(struct snap_store *s);

/*
 * Free every chunk, delta and image that no name and no open image holds
 * (in RADOS: of any open of the store, on any host). -EBUSY (saying so)
 * when another process has the store open (a directory) or open for
 * writing (RADOS), or another gc runs.
 */
int snap_store_gc(struct snap_store *s, struct snap_gc_stats *st,
		  struct snap_err *err);

struct snap_verify_stats {
	uint64_t chunks;	/* checked */
	uint64_t bad;		/* missing, corrupt or unreadable */
	uint64_t images;
};

/*
 * Check every name, image, delta and every chunk they use (decompress,
 * digest). report gets one line per problem (NULL: none). Returns 0 when
 * all is well, -EBADMSG when something is not, another errno when the check
 * itself could not run.
 */
int snap_store_verify(struct snap_store *s, struct snap_verify_stats *st,
		      void (*report)(void *arg, const char *line), void *arg,
		      struct snap_err *err);

/* Hex of an id, 33 bytes with the terminator. */
void snap_id_hex(const uint8_t id[SNAP_ID_LEN], char out[2 * SNAP_ID_LEN + 1]);

#endif
