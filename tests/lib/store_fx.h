/* SPDX-License-Identifier: MIT */
#ifndef SNAP_TEST_STORE_FX_H
#define SNAP_TEST_STORE_FX_H

/*
 * What the memory store's unit tests (tests/unit/test_store*.c) share:
 * pseudo-random bytes, a model of an image's bytes, the fixture (a store
 * in a fresh temporary directory over one of the backends) and helpers on
 * images and on the chunks a backend holds.
 *
 * Most cases run over the directory backend ("/dir"), over
 * snap_backend_mem ("/mem"), over the cache tier in front of it ("/cache",
 * with room for 16 chunks, so that the cases evict) and, when
 * SNAP_TEST_RADOS is "CONF:POOL" (a Ceph cluster:
 * tests/integration/rados.sh starts one and sets it), over
 * snap_backend_rados, bare ("/rados") and behind the cache
 * ("/rados+cache"), each case in a namespace of its own, emptied at its
 * end; the metadata is in a temporary directory either way. The
 * backends other than the directory are handed to the store through a
 * thin wrapper ("held") whose free does nothing, so that its chunks
 * outlive a close and a test can reopen the store; the wrapper also
 * counts frees and can corrupt what get returns.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/frame.h"
#include "snapshot/store/store.h"
#include "proto/store.pb-c.h"	/* a frame as a build before ImageTimes wrote */
#include "snapshot/store/store_int.h"	/* meta_store_require: a feature from the future */
#include "tests/lib/testutil.h"
#include "tests/lib/fx_check.h"

#define CHUNK		(64u << 10)
#define MAX_PIECE	(3 * CHUNK + 5)

struct model {
	uint8_t *b;
	uint64_t size;
	uint64_t cap;
};

struct held {
	struct snap_backend inner;	/* snap_backend_mem */
	int frees;			/* times the store freed us */
	bool flip;			/* corrupt get of key bad ... */
	uint8_t bad[SNAP_KEY_LEN];
	size_t flip_at;			/* ... at this byte */
};

enum { ON_DIR, ON_MEM, ON_CACHE, ON_RADOS, ON_RADOS_CACHE };
/* What a case's initial state points at: the backend it runs over. */
extern int on_dir, on_mem, on_cache, on_rados, on_rados_cache;
#define CACHE_BYTES	(16 * (CHUNK + 32))

struct fx {
	bool mem;			/* chunks in held (memory or RADOS) */
	bool rados;
	bool cached;			/* held is a cache in front ... */
	struct snap_backend remote;	/* ... of this (not ours to free) */
	char *tmp;
	char *dir;			/* the store: tmp/store */
	struct held held;		/* ON_MEM: the chunks */
	struct snap_backend b;		/* what the store takes over */
	struct snap_store_opts opts;
	struct snap_store *s;
	struct snap_err err;
};

struct lines {
	int n;
	char first[512];
};

/*
 * Every case over every backend (RADOS only when SNAP_TEST_RADOS names a
 * cluster: main drops those cases otherwise), or over the directory only.
 */
#define BOTH(fn)							\
	{ #fn "/dir", fn, fx_setup, fx_teardown, &on_dir },		\
	{ #fn "/mem", fn, fx_setup, fx_teardown, &on_mem },		\
	{ #fn "/cache", fn, fx_setup, fx_teardown, &on_cache },		\
	{ #fn "/rados", fn, fx_setup, fx_teardown, &on_rados },		\
	{ #fn "/rados+cache", fn, fx_setup, fx_teardown, &on_rados_cache }
#define ON_DIR_ONLY(fn)	{ #fn, fn, fx_setup, fx_teardown, &on_dir }
#define ON_MEM_ONLY(fn)	{ #fn, fn, fx_setup, fx_teardown, &on_mem }
#define ON_CACHE_ONLY(fn)						\
	{ #fn "/cache", fn, fx_setup, fx_teardown, &on_cache },		\
	{ #fn "/rados+cache", fn, fx_setup, fx_teardown, &on_rados_cache }

uint64_t rnd_init(uint64_t seed);

/* len bytes that depend only on seed (incompressible). */
void fill_random(void *buf, size_t len, uint64_t seed);

/* len bytes of text that zstd shrinks well. */
void fill_text(void *buf, size_t len, uint64_t seed);

void model_truncate(struct model *m, uint64_t size);

void model_write(struct model *m, const void *buf, size_t len,
		 uint64_t off);

void model_copy(struct model *dst, const struct model *src);

void model_free(struct model *m);

/* Chunks of m that are not all zero. */
uint64_t model_chunks(const struct model *m);

int fx_open(struct fx *f);

void fx_close(struct fx *f);

/* Close and open the store again: nothing cached survives. */
void fx_reopen(struct fx *f);

int fx_setup(void **state);

int fx_teardown(void **state);

/* Make snapshot path's first component unless it exists. */
void fx_mkdir_of(struct fx *f, const char *path);

/* A new image of size bytes named path, open for writing. */
struct snap_image *fx_new(struct fx *f, const char *path,
			  uint64_t size, uint8_t id[SNAP_ID_LEN]);

struct snap_image *fx_open_id(struct fx *f,
			      const uint8_t id[SNAP_ID_LEN],
			      unsigned flags);

struct snap_image *fx_open_name(struct fx *f, const char *path,
				unsigned flags);

void fx_close_img(struct fx *f, struct snap_image *img);

void img_write(struct fx *f, struct snap_image *img, struct model *m,
	       const void *buf, size_t len, uint64_t off);

/* Write len pseudo-random bytes of seed at off. */
void img_fill(struct fx *f, struct snap_image *img, struct model *m,
	      size_t len, uint64_t off, uint64_t seed);

uint64_t img_size(struct snap_image *img);

/*
 * img holds exactly m: its size, every byte (read in pieces of sizes that
 * straddle chunks every which way), and nothing at or past its end.
 */
void expect_content(struct fx *f, struct snap_image *img,
		    const struct model *m, const char *what);

void fx_stats(struct fx *f, struct snap_store_stats *st);

/* Verify the store: 0 and no problem reported. */
void fx_verify_clean(struct fx *f, const char *what);

/* Chunks the backend holds (dir: as a new process finds them). */
uint64_t fx_stored(struct fx *f);

/* Whether the backend holds key. */
bool fx_has_chunk(struct fx *f, const uint8_t key[SNAP_KEY_LEN]);

/* Length of key's stored value. */
size_t fx_chunk_len(struct fx *f, const uint8_t key[SNAP_KEY_LEN]);

/* Corrupt (on) or repair (!on) byte at of key's stored value. */
void fx_flip_chunk(struct fx *f, const uint8_t key[SNAP_KEY_LEN],
		   size_t at, bool on);

/* Remove key's chunk behind the store's back (it is opened again). */
void fx_del_chunk(struct fx *f, const uint8_t key[SNAP_KEY_LEN]);

uint64_t rnd(uint64_t *x);

/* The wrapper a backend other than the directory is handed in (held). */
extern const struct snap_backend_ops held_ops;
/* SNAP_TEST_RADOS "CONF:POOL", split; false when unset. */
bool rados_env(char conf[4096], char pool[256]);
/* A RADOS backend on a namespace no other case (or run) uses. */
int rados_open(struct snap_backend *b, struct snap_err *err);
/* Remove what a case left in its namespace: the pool outlives the run. */
void rados_empty(struct snap_backend *b);
/* b behind a cache tier in a new directory of f's, name in f->tmp. */
int cache_over(struct fx *f, struct snap_backend *b, const char *name);
/* Whether n bytes at p are all zero. */
bool all_zero(const uint8_t *p, size_t n);
/* Expect a read of chunk index at to be -EIO naming the image and offset. */
void expect_eio(struct fx *f, struct snap_image *img,
		const uint8_t id[SNAP_ID_LEN], unsigned at, const char *what);
/* Expect verify to find one image bad: chunks checked (0: any), a line. */
void expect_verify_bad(struct fx *f, uint64_t chunks, const char *what);
/* An each() callback counting keys into a uint64_t. */
int count_key(void *arg, const uint8_t key[SNAP_KEY_LEN], uint64_t size);
/* The content key of chunk i of m. */
void model_key(const struct model *m, uint64_t i, uint8_t key[SNAP_KEY_LEN]);
/* Flip byte at of the file at path (xor with x). */
void xor_byte(const char *path, size_t at, uint8_t x);
/* A verify report's line, counted in a struct lines (the first kept). */
void collect_line(void *arg, const char *line);

/* Run a file's cases, less those over RADOS when no cluster was given
 * (then one case says so, as a skip). */
int fx_run(const char *name, struct CMUnitTest *tests, size_t n);

#endif
