/* SPDX-License-Identifier: MIT */
/*
 * The memory store's cold path and working sets (store.h, store_int.h):
 * the chunk cache's claims, the fetch pool, parallel reads from a cold
 * cache, working sets (recording, saving, clones, gc, read-only stores)
 * and working-set files written by hand to be hostile.
 *
 * Stores use the directory backend in a temporary directory, with 64 KiB
 * chunks ("/64k") or 4 KiB chunks ("/4k"). The cache cases build a cache
 * of their own, without a store.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/frame.h"
#include "snapshot/store/store.h"
#include "proto/store.pb-c.h"
#include "snapshot/store/store_int.h"
#include "tests/lib/testutil.h"
#include "tests/lib/fx_check.h"

/* ---- pseudo-random bytes ------------------------------------------------- */

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

/* len bytes that depend only on seed (incompressible). */
static void fill_random(void *buf, size_t len, uint64_t seed)
{
	uint64_t x = (seed + 1) * 0x9e3779b97f4a7c15ull | 1;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rnd(&x);

		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	usleep(ms * 1000u);
}

/* ==== 1. the chunk cache's claims ========================================= */

#define CCS	4096u		/* the chunk size of the bare caches */

static void key_of(uint8_t key[SNAP_KEY_LEN], unsigned n)
{
	memset(key, 0, SNAP_KEY_LEN);
	memcpy(key, &n, sizeof(n));
	key[SNAP_KEY_LEN - 1] = 0x5a;	/* never the zero key */
}

static struct chunk_cache *cache_new(size_t entries)
{
	struct chunk_cache *c = NULL;

	assert_int_equal(chunk_cache_new(entries * CCS, CCS, &c), 0);
	assert_non_null(c);
	return c;
}

/* Claim key (a new one), fill it with seed's bytes, done, put. */
static void cache_fill(struct chunk_cache *c, unsigned k, uint64_t seed)
{
	uint8_t key[SNAP_KEY_LEN];
	struct chunk *ch;

	key_of(key, k);
	assert_int_equal(chunk_cache_claim(c, key, false, &ch), CLAIM_MINE);
	assert_non_null(ch);
	fill_random(ch->data, CCS, seed);
	chunk_cache_done(c, ch, true);
	chunk_put(c, ch);
}

static bool cache_has(struct chunk_cache *c, unsigned k)
{
	uint8_t key[SNAP_KEY_LEN];

	key_of(key, k);
	return chunk_cache_has(c, key);
}

/* Key k is cached holding seed's bytes. */
static void expect_hit(struct chunk_cache *c, unsigned k, uint64_t seed)
{
	uint8_t key[SNAP_KEY_LEN], *want = malloc(CCS);
	struct chunk *ch;
	int ret;

	key_of(key, k);
	fill_random(want, CCS, seed);
	ret = chunk_cache_claim(c, key, false, &ch);
	if (ret != CLAIM_HIT)
		fail_msg("key %u: claim %d, expected a hit", k, ret);
	assert_non_null(ch);
	assert_memory_equal(ch->data, want, CCS);
	chunk_put(c, ch);
	free(want);
}

struct waiter {
	struct chunk_cache *c;
	unsigned k;
	atomic_int started, returned;
	int ret;
	struct chunk *ch;
	uint64_t seed;			/* CLAIM_MINE: fill with these */
};

static void *wait_claim(void *arg)
{
	struct waiter *w = arg;
	uint8_t key[SNAP_KEY_LEN];

	key_of(key, w->k);
	atomic_store(&w->started, 1);
	w->ret = chunk_cache_claim(w->c, key, true, &w->ch);
	if (w->ret == CLAIM_MINE) {	/* the load failed: load it here */
		fill_random(w->ch->data, CCS, w->seed);
		chunk_cache_done(w->c, w->ch, true);
	}
	atomic_store(&w->returned, 1);
	return NULL;
}

/* Start w's thread and see it block in the claim. */
static void start_waiter(struct waiter *w, pthread_t *t)
{
	uint64_t t0 = now_ms();

	assert_int_equal(pthread_create(t, NULL, wait_claim, w), 0);
	while (!atomic_load(&w->started) && now_ms() - t0 < 5000)
		sleep_ms(1);
	sleep_ms(100);
	if (atomic_load(&w->returned))
		fail_msg("a claim with wait of a key being loaded returned %d "
			 "before the load was done", w->ret);
}

/* A loading key: busy without wait; with wait, the loader's result. */
static void test_claim_wait(void **state)
{
	struct chunk_cache *c = cache_new(16);
	uint8_t key[SNAP_KEY_LEN], *want = malloc(CCS);
	struct waiter w = { .c = c, .k = 1 };
	struct chunk *ch, *ch2;
	pthread_t t;

	key_of(key, 1);
	assert_false(chunk_cache_has(c, key));
	assert_int_equal(chunk_cache_claim(c, key, false, &ch), CLAIM_MINE);
	assert_non_null(ch);
	assert_memory_equal(ch->key, key, SNAP_KEY_LEN);
	/* Being loaded counts as had. */
	assert_true(chunk_cache_has(c, key));
	ch2 = (struct chunk *)0x1;
	assert_int_equal(chunk_cache_claim(c, key, false, &ch2), CLAIM_BUSY);
	assert_null(ch2);

	start_waiter(&w, &t);
	fill_random(ch->data, CCS, 11);
	memcpy(want, ch->data, CCS);
	chunk_cache_done(c, ch, true);
	pthread_join(t, NULL);
	assert_int_equal(w.ret, CLAIM_HIT);
	assert_ptr_equal(w.ch, ch);	/* the one entry, shared */
	assert_memory_equal(w.ch->data, want, CCS);
	chunk_put(c, w.ch);
	chunk_put(c, ch);
	/* Done: a plain claim is a hit with the same bytes. */
	expect_hit(c, 1, 11);
	free(want);
	chunk_cache_free(c);
}

/* A failed load leaves the cache; a waiter then claims the key itself. */
static void test_claim_failed(void **state)
{
	struct chunk_cache *c = cache_new(16);
	struct waiter w = { .c = c, .k = 2, .seed = 22 };
	uint8_t key[SNAP_KEY_LEN];
	struct chunk *ch, *ch2;
	pthread_t t;

	key_of(key, 2);
	assert_int_equal(chunk_cache_claim(c, key, false, &ch), CLAIM_MINE);
	start_waiter(&w, &t);
	fill_random(ch->data, CCS, 99);	/* half loaded, then it fails */
	chunk_cache_done(c, ch, false);
	pthread_join(t, NULL);
	assert_int_equal(w.ret, CLAIM_MINE);
	assert_non_null(w.ch);
	assert_ptr_not_equal(w.ch, ch);
	chunk_put(c, w.ch);
	chunk_put(c, ch);
	expect_hit(c, 2, 22);		/* the waiter's load, not the failed */

	/* Without a waiter: a failed load leaves nothing behind. */
	key_of(key, 3);
	assert_int_equal(chunk_cache_claim(c, key, false, &ch), CLAIM_MINE);
	chunk_cache_done(c, ch, false);
	assert_false(chunk_cache_has(c, key));
	assert_int_equal(chunk_cache_claim(c, key, false, &ch2), CLAIM_MINE);
	assert_ptr_not_equal(ch2, NULL);
	chunk_cache_done(c, ch2, false);
	chunk_put(c, ch2);
	chunk_put(c, ch);
	assert_false(chunk_cache_has(c, key));
	chunk_cache_free(c);
}

static unsigned count_cached(struct chunk_cache *c, unsigned from,
			     unsigned to)
{
	unsigned n = 0;

	for (unsigned k = from; k < to; k++)
		n += cache_has(c, k);
	return n;
}

/* At most max unreferenced entries, the least recently used go first. */
static void test_cache_bound(void **state)
{
	const unsigned max = 4;
	struct chunk_cache *c = cache_new(max);
	struct chunk *held[6];
	uint8_t key[SNAP_KEY_LEN];

	for (unsigned k = 0; k < 10; k++) {
		cache_fill(c, k, 100 + k);
		if (count_cached(c, 0, 10) > max)
			fail_msg("%u entries cached after %u fills, bound %u",
				 count_cached(c, 0, 10), k + 1, max);
	}
	for (unsigned k = 0; k < 6; k++)
		if (cache_has(c, k))
			fail_msg("key %u of 10 still cached, bound %u", k, max);
	for (unsigned k = 6; k < 10; k++)
		expect_hit(c, k, 100 + k);

	/* A hit makes an entry recent: 6 was used last, 7 goes next. */
	expect_hit(c, 6, 106);
	cache_fill(c, 10, 110);
	assert_false(cache_has(c, 7));
	assert_true(cache_has(c, 6));
	expect_hit(c, 10, 110);

	/* Entries in use are never evicted, even past the bound ... */
	for (unsigned k = 0; k < 6; k++) {
		key_of(key, 20 + k);
		assert_int_equal(chunk_cache_claim(c, key, false, &held[k]),
				 CLAIM_MINE);
		fill_random(held[k]->data, CCS, 200 + k);
		chunk_cache_done(c, held[k], true);
	}
	assert_int_equal(count_cached(c, 20, 26), 6);
	/* Their buffers were not handed to anyone else meanwhile. */
	{
		uint8_t *want = malloc(CCS);

		for (unsigned k = 0; k < 6; k++) {
			fill_random(want, CCS, 200 + k);
			assert_memory_equal(held[k]->data, want, CCS);
		}
		free(want);
	}
	/* ... and once let go, the cache is back within it. */
	for (unsigned k = 0; k < 6; k++)
		chunk_put(c, held[k]);
	if (count_cached(c, 0, 30) > max)
		fail_msg("%u entries cached, none in use, bound %u",
			 count_cached(c, 0, 30), max);
	expect_hit(c, 25, 205);		/* the most recent stays */
	chunk_cache_free(c);
}

/* An offer of a key already there keeps the first; a new one is taken. */
static void test_cache_offer(void **state)
{
	struct chunk_cache *c = cache_new(8);
	struct chunk *ch;

	cache_fill(c, 1, 1);
	ch = chunk_alloc(c);
	assert_non_null(ch);
	key_of(ch->key, 1);
	fill_random(ch->data, CCS, 2);	/* other bytes, to tell them apart */
	chunk_cache_offer(c, ch);
	expect_hit(c, 1, 1);

	ch = chunk_alloc(c);
	assert_non_null(ch);
	key_of(ch->key, 2);
	fill_random(ch->data, CCS, 3);
	chunk_cache_offer(c, ch);
	assert_true(cache_has(c, 2));
	expect_hit(c, 2, 3);

	/* Offered while another thread loads it: the load wins. */
	{
		uint8_t key[SNAP_KEY_LEN];
		struct chunk *mine;

		key_of(key, 3);
		assert_int_equal(chunk_cache_claim(c, key, false, &mine),
				 CLAIM_MINE);
		ch = chunk_alloc(c);
		assert_non_null(ch);
		key_of(ch->key, 3);
		fill_random(ch->data, CCS, 4);
		chunk_cache_offer(c, ch);
		fill_random(mine->data, CCS, 5);
		chunk_cache_done(c, mine, true);
		chunk_put(c, mine);
		expect_hit(c, 3, 5);
	}
	chunk_cache_free(c);
}

/* ==== the fixture: a store in a fresh temporary directory ================= */

static uint32_t cs64 = 64u << 10, cs4 = 4u << 10;

struct fx {
	uint32_t cs;
	char *tmp;
	char *dir;			/* the store: tmp/store */
	struct snap_store_opts opts;
	struct snap_store *s;
	struct snap_err err;
};

static int fx_open(struct fx *f)
{
	f->s = NULL;
	f->err.msg[0] = '\0';
	return snap_store_open(f->dir, &f->opts, &f->s, &f->err);
}

static void fx_close(struct fx *f)
{
	snap_store_close(f->s);
	f->s = NULL;
}

/* Close and open the store again: nothing cached survives. */
static void fx_reopen(struct fx *f)
{
	fx_close(f);
	CHECK(f, fx_open(f));
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->cs = *(uint32_t *)*state;
	f->tmp = test_tmpdir();
	if (asprintf(&f->dir, "%s/store", f->tmp) < 0)
		abort();
	if (snap_store_init(f->dir, f->cs, &f->err) || fx_open(f)) {
		fprintf(stderr, "store setup: %s\n", f->err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	fx_close(f);
	test_rmtree(f->tmp);
	free(f->dir);
	free(f->tmp);
	free(f);
	return 0;
}

/* A new image of size bytes, named path when path is not NULL, open for
 * writing. */
static struct snap_image *fx_new(struct fx *f, const char *path,
				 uint64_t size, uint8_t id[SNAP_ID_LEN])
{
	struct snap_image *img = NULL;

	CHECK(f, snap_image_create(f->s, size, id, &f->err));
	if (path) {
		int ret = snap_store_mkdir(f->s, "s", &f->err);

		if (ret && ret != -EEXIST)
			fail_msg("mkdir: %d: %s", ret, f->err.msg);
		CHECK(f, snap_store_link(f->s, path, id, &f->err));
	}
	CHECK(f, snap_image_open(f->s, id, SNAP_IMAGE_WRITE, &img, &f->err));
	assert_non_null(img);
	return img;
}

static struct snap_image *fx_open_id(struct fx *f,
				     const uint8_t id[SNAP_ID_LEN],
				     unsigned flags)
{
	struct snap_image *img = NULL;

	CHECK(f, snap_image_open(f->s, id, flags, &img, &f->err));
	assert_non_null(img);
	return img;
}

static void fx_close_img(struct fx *f, struct snap_image *img)
{
	CHECK(f, snap_image_close(img, &f->err));
}

static void img_write(struct fx *f, struct snap_image *img, const void *buf,
		      size_t len, uint64_t off)
{
	ssize_t n = snap_image_write(img, buf, len, off, &f->err);

	if (n != (ssize_t)len)
		fail_msg("write %zu bytes at %" PRIu64 ": %zd: %s", len, off,
			 n, f->err.msg);
}

static void img_read(struct fx *f, struct snap_image *img, void *buf,
		     size_t len, uint64_t off)
{
	ssize_t n = snap_image_read(img, buf, len, off, &f->err);

	if (n != (ssize_t)len)
		fail_msg("read %zu bytes at %" PRIu64 ": %zd: %s", len, off, n,
			 f->err.msg);
}

/* One byte of chunk i (recorded, cached, counted like any read). */
static void read_chunk(struct fx *f, struct snap_image *img, uint64_t i)
{
	uint8_t b;

	img_read(f, img, &b, 1, i * f->cs + 7);
}

/*
 * An image named s/<name> of nchunks chunks: chunk i random (seed + i)
 * unless bit i of holes is set (all zero). Its bytes into *data (or
 * freed), chunk keys into keys (or not). Closed; the store reopened.
 */
static void fx_make(struct fx *f, const char *name, uint64_t nchunks,
		    uint64_t holes, uint64_t seed, uint8_t id[SNAP_ID_LEN],
		    uint8_t **data, uint8_t (*keys)[SNAP_KEY_LEN])
{
	size_t size = (size_t)nchunks * f->cs;
	uint8_t *buf = calloc(1, size ? size : 1);
	struct snap_image *img;
	char path[300];

	assert_non_null(buf);
	for (uint64_t i = 0; i < nchunks; i++) {
		if (i < 64 && (holes >> i & 1))
			continue;
		fill_random(buf + i * f->cs, f->cs, seed + i);
		if (keys)
			snap_sha256(buf + i * f->cs, f->cs, keys[i]);
	}
	snprintf(path, sizeof(path), "s/%s", name);
	img = fx_new(f, path, size, id);
	img_write(f, img, buf, size, 0);
	fx_close_img(f, img);
	fx_reopen(f);
	if (data)
		*data = buf;
	else
		free(buf);
}

/*
 * Wait (5 s at most) until key is in the store's cache, loaded: then a
 * claim is a hit with want's bytes (NULL: any).
 */
static void wait_cached(struct fx *f, const uint8_t key[SNAP_KEY_LEN],
			const uint8_t *want, const char *what)
{
	uint64_t t0 = now_ms();
	struct chunk *ch;
	int ret;

	while (!chunk_cache_has(f->s->cache, key)) {
		if (now_ms() - t0 > 5000)
			fail_msg("%s: not cached after 5 s", what);
		sleep_ms(1);
	}
	ret = chunk_cache_claim(f->s->cache, key, true, &ch);
	if (ret == CLAIM_MINE) {
		chunk_cache_done(f->s->cache, ch, false);
		chunk_put(f->s->cache, ch);
		fail_msg("%s: its load failed", what);
	}
	assert_int_equal(ret, CLAIM_HIT);
	if (want && memcmp(ch->data, want, f->cs))
		fail_msg("%s: cached with other bytes", what);
	chunk_put(f->s->cache, ch);
}

/* img's read of len at off is -EIO naming the image and offset bad. */
static void expect_eio(struct fx *f, struct snap_image *img,
		       const uint8_t id[SNAP_ID_LEN], size_t len, uint64_t off,
		       uint64_t bad, const char *what)
{
	char hex[2 * SNAP_ID_LEN + 1], at[48];
	uint8_t *buf = malloc(len);
	ssize_t n;

	snap_id_hex(id, hex);
	snprintf(at, sizeof(at), "offset %" PRIu64 ":", bad);
	f->err.msg[0] = '\0';
	n = snap_image_read(img, buf, len, off, &f->err);
	if (n != -EIO)
		fail_msg("%s: read %zu at %" PRIu64 ": %zd, expected -EIO: %s",
			 what, len, off, n, f->err.msg);
	if (!strstr(f->err.msg, hex) || !strstr(f->err.msg, at))
		fail_msg("%s: \"%s\" does not name image %s and %s", what,
			 f->err.msg, hex, at);
	free(buf);
}

/* ==== 2. the fetch pool =================================================== */

static void test_fetch_ahead(void **state)
{
	struct fx *f = *state;
	uint8_t id[SNAP_ID_LEN], keys[8][SNAP_KEY_LEN], *data;
	struct snap_image_stat st;
	struct snap_image *img;
	char what[64];

	fx_make(f, "a", 8, 0, 10, id, &data, keys);
	for (int i = 0; i < 8; i++)
		assert_false(chunk_cache_has(f->s->cache, keys[i]));
	for (int i = 0; i < 8; i++)
		assert_true(fetch_ahead(f->s->pool, keys[i]));
	/* Twice is harmless: the second job finds it there or on its way. */
	assert_true(fetch_ahead(f->s->pool, keys[0]));
	for (int i = 0; i < 8; i++) {
		snprintf(what, sizeof(what), "chunk %d, fetched ahead", i);
		wait_cached(f, keys[i], data + (size_t)i * f->cs, what);
	}
	/* A reader finds them all there: no read waits for the backend. */
	img = fx_open_id(f, id, 0);
	{
		uint8_t *buf = malloc((size_t)8 * f->cs);

		img_read(f, img, buf, (size_t)8 * f->cs, 0);
		assert_memory_equal(buf, data, (size_t)8 * f->cs);
		free(buf);
	}
	snap_image_stat(img, &st);
	assert_int_equal(st.resident, 8);
	if (st.fetched)
		fail_msg("%" PRIu64 " chunks fetched by a read of chunks all "
			 "loaded ahead", st.fetched);
	fx_close_img(f, img);
	free(data);
}

/*
 * A failed load in the pool leaves nothing behind, and the reader that
 * wants the chunk reports it: -EIO naming the image and the offset.
 */
static void test_fetch_failure(void **state)
{
	struct fx *f = *state;
	uint8_t id[SNAP_ID_LEN], keys[4][SNAP_KEY_LEN], missing[SNAP_KEY_LEN];
	uint8_t *data, *buf = malloc((size_t)4 * f->cs);
	struct snap_image *img;
	size_t len4 = (size_t)4 * f->cs;

	/* One worker: its jobs run in order, so a job queued after another
	 * is done once that one is. */
	f->opts.fetch_threads = 1;
	fx_make(f, "f", 4, 0, 20, id, &data, keys);

	memset(missing, 0x77, sizeof(missing));
	assert_true(fetch_ahead(f->s->pool, missing));
	assert_true(fetch_ahead(f->s->pool, keys[0]));
	wait_cached(f, keys[0], data, "chunk 0, after a missing key");
	assert_false(chunk_cache_has(f->s->cache, missing));

	/* Chunk 1 corrupt: the pool's load fails quietly, the reader's
	 * does not. */
	test_chunk_xor(f->dir, keys[1], 40, 0x55);
	fx_reopen(f);
	assert_true(fetch_ahead(f->s->pool, keys[1]));
	assert_true(fetch_ahead(f->s->pool, keys[0]));
	wait_cached(f, keys[0], data, "chunk 0, after a corrupt one");
	assert_false(chunk_cache_has(f->s->cache, keys[1]));
	img = fx_open_id(f, id, 0);
	expect_eio(f, img, id, f->cs, f->cs, f->cs, "corrupt chunk 1 alone");
	expect_eio(f, img, id, len4, 0, f->cs, "corrupt chunk 1 of 4");
	fx_close_img(f, img);
	/* Cold, the read itself sends chunks 1-3 to the pool. */
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	expect_eio(f, img, id, len4, 0, f->cs,
		   "corrupt chunk 1 of 4, loaded ahead");
	img_read(f, img, buf, len4 - 2 * f->cs, 2 * f->cs);
	assert_memory_equal(buf, data + 2 * f->cs, len4 - 2 * f->cs);
	fx_close_img(f, img);
	test_chunk_xor(f->dir, keys[1], 40, 0x55);

	/* Chunk 2 missing, the same. */
	fx_close(f);
	test_chunk_replace(f->dir, keys[2], NULL, 0);
	CHECK(f, fx_open(f));
	assert_true(fetch_ahead(f->s->pool, keys[2]));
	assert_true(fetch_ahead(f->s->pool, keys[3]));
	wait_cached(f, keys[3], data + 3 * f->cs, "chunk 3, after a missing");
	assert_false(chunk_cache_has(f->s->cache, keys[2]));
	img = fx_open_id(f, id, 0);
	expect_eio(f, img, id, len4, 0, 2 * (uint64_t)f->cs,
		   "missing chunk 2 of 4");
	fx_close_img(f, img);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	expect_eio(f, img, id, len4 - 1, 1, 2 * (uint64_t)f->cs,
		   "missing chunk 2 of 4, cold");
	img_read(f, img, buf, 2 * f->cs, 0);	/* before it, sound */
	assert_memory_equal(buf, data, 2 * f->cs);
	fx_close_img(f, img);
	free(data);
	free(buf);
}

/* snap_image_prefetch queues the non-zero chunks not in the cache. */
static void test_prefetch(void **state)
{
	struct fx *f = *state;
	/* chunks 2, 5, 7 are holes */
	const uint64_t holes = 1u << 2 | 1u << 5 | 1u << 7;
	uint8_t id[SNAP_ID_LEN], keys[8][SNAP_KEY_LEN], *data;
	struct snap_image *img;
	uint64_t n;

	fx_make(f, "p", 8, holes, 30, id, &data, keys);
	img = fx_open_id(f, id, SNAP_IMAGE_WRITE);
	read_chunk(f, img, 3);		/* cached now */
	wait_cached(f, keys[3], data + 3 * f->cs, "chunk 3, read");
	n = snap_image_prefetch(img, 0, 8);
	if (n != 4)
		fail_msg("prefetch of 8 chunks, 3 holes, 1 cached: %" PRIu64
			 " queued, expected 4 (0, 1, 4, 6)", n);
	for (int i = 0; i < 8; i++)
		if (!(holes >> i & 1))
			wait_cached(f, keys[i], data + (size_t)i * f->cs,
				    "prefetched");
	/* All there now: nothing to queue, at any range. */
	assert_int_equal(snap_image_prefetch(img, 0, 8), 0);
	assert_int_equal(snap_image_prefetch(img, 4, UINT64_MAX), 0);
	assert_int_equal(snap_image_prefetch(img, 8, 100), 0);
	assert_int_equal(snap_image_prefetch(img, 100, 1), 0);

	/* Cold again: a range, past the end, and an overflowing count. */
	fx_close_img(f, img);
	fx_reopen(f);
	img = fx_open_id(f, id, SNAP_IMAGE_WRITE);
	assert_int_equal(snap_image_prefetch(img, 5, UINT64_MAX), 1);
	wait_cached(f, keys[6], data + 6 * f->cs, "chunk 6");
	assert_false(chunk_cache_has(f->s->cache, keys[4]));
	assert_int_equal(snap_image_prefetch(img, 1, 0), 0);
	assert_false(chunk_cache_has(f->s->cache, keys[1]));
	/* A chunk written and not yet stored is not in the backend: not
	 * queued. */
	img_write(f, img, "x", 1, 4 * (uint64_t)f->cs + 3);
	assert_int_equal(snap_image_prefetch(img, 0, 5), 3);	/* 0, 1, 3 */
	fx_close_img(f, img);
	free(data);
}

/* ==== 3. parallel reads =================================================== */

#define PAR_SIZE	(6u << 20)
#define PAR_THREADS	8

/* s/par: PAR_SIZE random bytes, with a hole of 3 chunks at 1 MiB. */
static uint8_t *par_make(struct fx *f, uint8_t id[SNAP_ID_LEN])
{
	uint8_t *data = malloc(PAR_SIZE);
	struct snap_image *img;

	assert_non_null(data);
	fill_random(data, PAR_SIZE, 77);
	memset(data + (1u << 20), 0, 3 * f->cs);
	img = fx_new(f, "s/par", PAR_SIZE, id);
	img_write(f, img, data, PAR_SIZE, 0);
	fx_close_img(f, img);
	fx_reopen(f);
	return data;
}

static void expect_range(struct fx *f, struct snap_image *img,
			 const uint8_t *data, size_t len, uint64_t off,
			 const char *what)
{
	uint8_t *buf = malloc(len);
	ssize_t n;

	memset(buf, 0xee, len);
	n = snap_image_read(img, buf, len, off, &f->err);
	if (n != (ssize_t)len)
		fail_msg("%s: read %zu at %" PRIu64 ": %zd: %s", what, len, off,
			 n, f->err.msg);
	if (memcmp(buf, data + off, len)) {
		size_t k = 0;

		while (buf[k] == data[off + k])
			k++;
		fail_msg("%s: byte %" PRIu64 " (chunk %" PRIu64 ") wrong",
			 what, off + k, (off + k) / f->cs);
	}
	free(buf);
}

static void test_parallel_read(void **state)
{
	struct fx *f = *state;
	uint8_t id[SNAP_ID_LEN], *data;
	struct snap_image *img;

	data = par_make(f, id);
	img = fx_open_id(f, id, 0);
	expect_range(f, img, data, PAR_SIZE, 0, "one read of all, cold");
	fx_close_img(f, img);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	/* Unaligned at both ends, and twice the same (warm). */
	expect_range(f, img, data, PAR_SIZE - 12345, 4321,
		     "one unaligned read, cold");
	expect_range(f, img, data, PAR_SIZE - 12345, 4321,
		     "one unaligned read, warm");
	fx_close_img(f, img);
	free(data);
}

struct par_reader {
	struct fx *f;
	struct snap_image *img;
	const uint8_t *data;
	int t;
	atomic_int *go;
	int failed;
	char msg[600];
};

static void *par_read(void *arg)
{
	struct par_reader *r = arg;
	struct snap_err err = { { 0 } };
	uint64_t x = (uint64_t)r->t * 7919 + 1;
	size_t cap = PAR_SIZE / 2 + 100000;
	uint8_t *buf = malloc(cap);

	while (!atomic_load(r->go))
		;
	/* A big overlapping range first, then pieces here and there. */
	for (int k = 0; k < 12 && !r->failed; k++) {
		uint64_t off;
		size_t len;
		ssize_t n;

		if (k == 0) {
			off = (uint64_t)r->t * (PAR_SIZE / 16) + 17;
			len = PAR_SIZE / 2;
		} else {
			off = rnd(&x) % PAR_SIZE;
			len = (size_t)(rnd(&x) % 100000) + 1;
		}
		if (len > PAR_SIZE - off)
			len = (size_t)(PAR_SIZE - off);
		n = snap_image_read(r->img, buf, len, off, &err);
		if (n != (ssize_t)len) {
			r->failed = 1;
			snprintf(r->msg, sizeof(r->msg), "thread %d: read %zu "
				 "at %" PRIu64 ": %zd: %s", r->t, len, off, n,
				 err.msg);
		} else if (memcmp(buf, r->data + off, len)) {
			r->failed = 1;
			snprintf(r->msg, sizeof(r->msg), "thread %d: read %zu "
				 "at %" PRIu64 ": wrong bytes", r->t, len, off);
		}
	}
	free(buf);
	return NULL;
}

static void test_parallel_threads(void **state)
{
	struct fx *f = *state;
	struct par_reader r[PAR_THREADS];
	struct snap_image *imgs[2];
	pthread_t t[PAR_THREADS];
	uint8_t id[SNAP_ID_LEN], *data;
	atomic_int go = 0;

	data = par_make(f, id);
	for (int round = 0; round < 2; round++) {
		/* Half the threads share a handle, half another. */
		imgs[0] = fx_open_id(f, id, 0);
		imgs[1] = fx_open_id(f, id, 0);
		atomic_store(&go, 0);
		for (int i = 0; i < PAR_THREADS; i++) {
			r[i] = (struct par_reader){ f, imgs[i % 2], data, i,
						    &go, 0, "" };
			assert_int_equal(pthread_create(&t[i], NULL, par_read,
							&r[i]), 0);
		}
		atomic_store(&go, 1);
		for (int i = 0; i < PAR_THREADS; i++)
			pthread_join(t[i], NULL);
		for (int i = 0; i < PAR_THREADS; i++)
			if (r[i].failed)
				fail_msg("round %d: %s", round, r[i].msg);
		fx_close_img(f, imgs[0]);
		fx_close_img(f, imgs[1]);
		/* The second round with a cache smaller than what is read:
		 * loads and evictions at once. */
		f->opts.cache_bytes = 16 * (size_t)f->cs;
		fx_reopen(f);
	}
	free(data);
}

/* fetched counts the chunks reads waited for: misses, not hits. */
static void test_fetched(void **state)
{
	struct fx *f = *state;
	uint8_t id[SNAP_ID_LEN], *data;
	struct snap_image_stat st;
	struct snap_image *img;
	uint64_t f1, f2;
	size_t len = 20 * (size_t)f->cs;

	fx_make(f, "c", 40, 0, 50, id, &data, NULL);
	img = fx_open_id(f, id, 0);
	snap_image_stat(img, &st);
	assert_int_equal(st.fetched, 0);
	assert_int_equal(st.resident, 0);
	expect_range(f, img, data, len, 2 * (uint64_t)f->cs, "20 chunks cold");
	snap_image_stat(img, &st);
	f1 = st.fetched;
	if (f1 < 1 || f1 > 20)
		fail_msg("%" PRIu64 " fetched by a cold read of 20 chunks", f1);
	assert_int_equal(st.resident, 20);
	expect_range(f, img, data, len, 2 * (uint64_t)f->cs, "20 chunks warm");
	expect_range(f, img, data, 100, 5 * (uint64_t)f->cs + 9, "one, warm");
	snap_image_stat(img, &st);
	if (st.fetched != f1)
		fail_msg("fetched %" PRIu64 " after reading the same chunks "
			 "again, %" PRIu64 " before", st.fetched, f1);
	assert_int_equal(st.resident, 20);
	/* A chunk not read yet is a miss again. */
	expect_range(f, img, data, 100, 30 * (uint64_t)f->cs, "chunk 30");
	snap_image_stat(img, &st);
	f2 = st.fetched;
	if (f2 != f1 + 1)
		fail_msg("fetched %" PRIu64 " after one cold chunk, %" PRIu64
			 " before", f2, f1);
	assert_int_equal(st.resident, 21);
	fx_close_img(f, img);
	free(data);
}

/* ==== 4. working sets ===================================================== */

static void ws_path(struct fx *f, const uint8_t id[SNAP_ID_LEN], char *buf,
		    size_t size)
{
	char hex[2 * SNAP_ID_LEN + 1];

	snap_id_hex(id, hex);
	snprintf(buf, size, "%s/images/%s.ws", f->dir, hex);
}

static bool ws_exists(struct fx *f, const uint8_t id[SNAP_ID_LEN])
{
	char path[4096];

	ws_path(f, id, path, sizeof(path));
	return access(path, F_OK) == 0;
}

/* ws holds exactly the n indexes of want, in order. */
static void expect_ws(const struct snap_ws *ws, const uint64_t *want,
		      uint64_t n, const char *what)
{
	char got[256] = "", *p = got;

	for (uint64_t i = 0; i < ws->n && p < got + sizeof(got) - 24; i++)
		p += sprintf(p, " %" PRIu64, ws->index[i]);
	if (ws->n != n)
		fail_msg("%s: %" PRIu64 " indexes (%s), expected %" PRIu64,
			 what, ws->n, got, n);
	for (uint64_t i = 0; i < n; i++)
		if (ws->index[i] != want[i])
			fail_msg("%s: index %" PRIu64 " is %" PRIu64
				 ", expected %" PRIu64 " (%s)", what, i,
				 ws->index[i], want[i], got);
}

/* img's working set loads as exactly want. */
static void expect_ws_load(struct fx *f, struct snap_image *img,
			   const uint64_t *want, uint64_t n, const char *what)
{
	struct snap_ws ws;

	memset(&ws, 0xa5, sizeof(ws));
	f->err.msg[0] = '\0';
	CHECK(f, snap_image_ws_load(img, &ws, &f->err));
	expect_ws(&ws, want, n, what);
	snap_ws_release(&ws);
}

static void expect_no_ws(struct fx *f, struct snap_image *img,
			 const char *what)
{
	struct snap_ws ws;
	int ret;

	f->err.msg[0] = '\0';
	ret = snap_image_ws_load(img, &ws, &f->err);
	if (ret != -ENOENT)
		fail_msg("%s: ws_load %d, expected -ENOENT: %s", what, ret,
			 f->err.msg);
	assert_int_equal(ws.n, 0);
	assert_null(ws.index);
}

static void save_ws(struct fx *f, struct snap_image *img, const uint64_t *idx,
		    uint64_t n, uint64_t recorded_ns, bool off)
{
	struct snap_ws ws = { .off = off, .recorded_ns = recorded_ns, .n = n,
			      .index = (uint64_t *)idx };

	CHECK(f, snap_image_ws_save(img, &ws, &f->err));
}

static void test_ws_save_load(void **state)
{
	struct fx *f = *state;
	static const uint64_t idx[] = { 5, 0, 2, 7, 1 };
	uint8_t id[SNAP_ID_LEN];
	struct snap_image *img;
	struct snap_ws ws;

	fx_make(f, "w", 8, 0, 60, id, NULL, NULL);
	img = fx_open_id(f, id, 0);
	expect_no_ws(f, img, "a new image");
	assert_false(ws_exists(f, id));

	save_ws(f, img, idx, 5, 1234567890123ull, false);
	assert_true(ws_exists(f, id));
	memset(&ws, 0xa5, sizeof(ws));
	CHECK(f, snap_image_ws_load(img, &ws, &f->err));
	expect_ws(&ws, idx, 5, "saved");
	assert_int_equal(ws.recorded_ns, 1234567890123ull);
	assert_false(ws.off);
	snap_ws_release(&ws);
	assert_null(ws.index);
	assert_int_equal(ws.n, 0);

	/* Replaced, off, and empty; it survives a reopen. */
	save_ws(f, img, NULL, 0, 42, true);
	fx_close_img(f, img);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	memset(&ws, 0xa5, sizeof(ws));
	CHECK(f, snap_image_ws_load(img, &ws, &f->err));
	assert_int_equal(ws.n, 0);
	assert_true(ws.off);
	assert_int_equal(ws.recorded_ns, 42);
	snap_ws_release(&ws);

	/* save(NULL) removes it; twice is fine. */
	CHECK(f, snap_image_ws_save(img, NULL, &f->err));
	assert_false(ws_exists(f, id));
	expect_no_ws(f, img, "removed");
	CHECK(f, snap_image_ws_save(img, NULL, &f->err));

	/* Shrunk: indexes past the end are left out at load. */
	fx_close_img(f, img);
	img = fx_open_id(f, id, SNAP_IMAGE_WRITE);
	save_ws(f, img, idx, 5, 1, false);
	CHECK(f, snap_image_truncate(img, 3 * (uint64_t)f->cs - 1, &f->err));
	{
		static const uint64_t left[] = { 0, 2, 1 };

		expect_ws_load(f, img, left, 3, "after a truncate to 3 chunks");
	}
	fx_close_img(f, img);
}

static void expect_rec(struct snap_image *img, bool recording,
		       uint64_t recorded, const char *what)
{
	struct snap_image_stat st;

	snap_image_stat(img, &st);
	if (st.recording != recording || st.recorded != recorded)
		fail_msg("%s: stat recording %d, recorded %" PRIu64 "; "
			 "expected %d, %" PRIu64, what, st.recording,
			 st.recorded, recording, recorded);
}

static void test_ws_record(void **state)
{
	struct fx *f = *state;
	static const uint64_t want[] = { 5, 2, 6, 7, 0, 3 };
	uint8_t id[SNAP_ID_LEN], *buf = malloc(4 * (size_t)f->cs);
	struct snap_image *img, *other;
	struct snap_ws ws;

	fx_make(f, "r", 8, 0, 70, id, NULL, NULL);
	img = fx_open_id(f, id, SNAP_IMAGE_WRITE);
	other = fx_open_id(f, id, 0);
	expect_rec(img, false, 0, "before");
	read_chunk(f, img, 1);		/* before the start: not recorded */
	CHECK(f, snap_image_record_start(img, &f->err));
	expect_rec(img, true, 0, "started");
	expect_rec(other, true, 0, "started, other handle");
	read_chunk(f, img, 5);
	read_chunk(f, img, 2);
	read_chunk(f, img, 5);
	expect_rec(img, true, 2, "two read, one twice");
	/* 6 and 7 in one read running past the end */
	img_read(f, img, buf, 2 * f->cs, 6 * (uint64_t)f->cs);
	assert_int_equal(snap_image_read(img, buf, 4 * f->cs,
					 6 * (uint64_t)f->cs + 1, &f->err),
			 2 * f->cs - 1);
	read_chunk(f, other, 0);	/* whoever reads */
	/* Grown: the new chunks are not noted. */
	memset(buf, 0x3c, f->cs);
	img_write(f, img, buf, f->cs, 9 * (uint64_t)f->cs);
	read_chunk(f, img, 9);
	read_chunk(f, img, 8);
	read_chunk(f, img, 3);
	img_read(f, img, buf, 3 * f->cs, 5 * (uint64_t)f->cs);
	expect_rec(img, true, 6, "six");
	snap_image_record_stop(img, &ws);
	expect_rec(img, false, 0, "stopped");
	expect_rec(other, false, 0, "stopped, other handle");
	expect_ws(&ws, want, 6, "recorded");
	assert_false(ws.off);

	/* Saved as recorded, loaded after a reopen. */
	CHECK(f, snap_image_ws_save(img, &ws, &f->err));
	snap_ws_release(&ws);
	fx_close_img(f, other);
	fx_close_img(f, img);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	expect_ws_load(f, img, want, 6, "recorded, saved, reopened");

	/* Nothing recording: stop gives an empty set. */
	memset(&ws, 0xa5, sizeof(ws));
	snap_image_record_stop(img, &ws);
	assert_int_equal(ws.n, 0);
	assert_null(ws.index);
	snap_image_record_stop(img, NULL);

	/* A second start drops the first recording. */
	CHECK(f, snap_image_record_start(img, &f->err));
	read_chunk(f, img, 4);
	CHECK(f, snap_image_record_start(img, &f->err));
	expect_rec(img, true, 0, "restarted");
	read_chunk(f, img, 1);
	read_chunk(f, img, 4);
	snap_image_record_stop(img, &ws);
	{
		static const uint64_t again[] = { 1, 4 };

		expect_ws(&ws, again, 2, "restarted");
	}
	snap_ws_release(&ws);

	/* A recording left running is freed with the image (ASan). */
	CHECK(f, snap_image_record_start(img, &f->err));
	read_chunk(f, img, 2);
	fx_close_img(f, img);
	free(buf);
}

/* A big recording: every chunk of a 4096-chunk image, in a shuffled order. */
static void test_ws_record_many(void **state)
{
	struct fx *f = *state;
	const uint64_t n = 4096;
	uint64_t *order = malloc(n * sizeof(*order)), x = 5;
	uint8_t id[SNAP_ID_LEN];
	struct snap_image *img;
	struct snap_ws ws;

	/* Holes read as well as any chunk; nothing stored is needed. */
	img = fx_new(f, "s/many", n * f->cs, id);
	for (uint64_t i = 0; i < n; i++)
		order[i] = i;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = rnd(&x) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	CHECK(f, snap_image_record_start(img, &f->err));
	for (uint64_t i = 0; i < n; i++) {
		read_chunk(f, img, order[i]);
		read_chunk(f, img, order[i / 2]);	/* seen before */
	}
	snap_image_record_stop(img, &ws);
	expect_ws(&ws, order, n, "4096 shuffled");
	snap_ws_release(&ws);
	fx_close_img(f, img);
	free(order);
}

static void test_ws_clone(void **state)
{
	struct fx *f = *state;
	static const uint64_t idx[] = { 3, 1 }, stale[] = { 0 }, two[] = { 2 };
	uint8_t ids[SNAP_ID_LEN], idc[SNAP_ID_LEN], idd[SNAP_ID_LEN];
	uint8_t ide[SNAP_ID_LEN], *data, *buf = malloc(4 * (size_t)f->cs);
	struct snap_image *src, *img, *dst;
	size_t size = 4 * (size_t)f->cs;

	fx_make(f, "src", 4, 0, 80, ids, &data, NULL);
	src = fx_open_id(f, ids, 0);
	save_ws(f, src, idx, 2, 7, false);

	/* A clone gets a copy. */
	CHECK(f, snap_image_clone(f->s, ids, idc, &f->err));
	CHECK(f, snap_store_link(f->s, "s/clone", idc, &f->err));
	assert_true(ws_exists(f, idc));
	img = fx_open_id(f, idc, 0);
	expect_ws_load(f, img, idx, 2, "the clone's");
	/* A copy: changing the source's leaves the clone's. */
	save_ws(f, src, two, 1, 8, false);
	expect_ws_load(f, img, idx, 2, "the clone's, source's changed");
	expect_ws_load(f, src, two, 1, "the source's, changed");
	CHECK(f, snap_image_ws_save(img, NULL, &f->err));
	expect_ws_load(f, src, two, 1, "the source's, the clone's removed");
	fx_close_img(f, img);

	/* The adopt path: copy_range of all of src into an empty image,
	 * which had a stale working set of its own. */
	save_ws(f, src, idx, 2, 9, false);
	dst = fx_new(f, "s/dst", 0, idd);
	save_ws(f, dst, stale, 1, 1, true);
	assert_int_equal(snap_image_copy_range(src, 0, dst, 0, size, &f->err),
			 (ssize_t)size);
	img_read(f, dst, buf, size, 0);
	assert_memory_equal(buf, data, size);
	expect_ws_load(f, dst, idx, 2, "adopted");
	{
		struct snap_ws ws;

		CHECK(f, snap_image_ws_load(dst, &ws, &f->err));
		assert_false(ws.off);	/* not the stale one's */
		assert_int_equal(ws.recorded_ns, 9);
		snap_ws_release(&ws);
	}
	CHECK(f, snap_image_close(dst, &f->err));

	/* A source without one: the clone and the adopter have none. */
	CHECK(f, snap_image_ws_save(src, NULL, &f->err));
	CHECK(f, snap_image_clone(f->s, ids, idc, &f->err));
	CHECK(f, snap_store_link(f->s, "s/clone2", idc, &f->err));
	img = fx_open_id(f, idc, 0);
	expect_no_ws(f, img, "a clone of a source without one");
	fx_close_img(f, img);
	dst = fx_new(f, "s/dst2", 0, ide);
	save_ws(f, dst, stale, 1, 1, false);
	assert_int_equal(snap_image_copy_range(src, 0, dst, 0, size + 99,
					       &f->err),
			 (ssize_t)size);
	expect_no_ws(f, dst, "adopted from a source without one");
	assert_false(ws_exists(f, ide));
	fx_close_img(f, dst);
	fx_close_img(f, src);

	/* And after a reopen, the adopter's content and set are there. */
	fx_reopen(f);
	dst = fx_open_id(f, idd, 0);
	img_read(f, dst, buf, size, 0);
	assert_memory_equal(buf, data, size);
	expect_ws_load(f, dst, idx, 2, "adopted, reopened");
	fx_close_img(f, dst);
	free(data);
	free(buf);
}

static void test_ws_gc(void **state)
{
	struct fx *f = *state;
	static const uint64_t idx[] = { 0 };
	uint8_t idn[SNAP_ID_LEN], idu[SNAP_ID_LEN], ido[SNAP_ID_LEN];
	uint8_t idl[SNAP_ID_LEN];
	struct snap_image *img, *open_img;
	struct snap_gc_stats gs;

	/* named; never named; never named but open; named, then not */
	img = fx_new(f, "s/named", f->cs, idn);
	save_ws(f, img, idx, 1, 1, false);
	fx_close_img(f, img);
	img = fx_new(f, NULL, f->cs, idu);
	save_ws(f, img, idx, 1, 1, false);
	fx_close_img(f, img);
	open_img = fx_new(f, NULL, f->cs, ido);
	save_ws(f, open_img, idx, 1, 1, false);
	img = fx_new(f, "s/later", f->cs, idl);
	save_ws(f, img, idx, 1, 1, false);
	fx_close_img(f, img);
	CHECK(f, snap_store_unlink(f->s, "s/later", &f->err));

	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.images, 2);
	assert_true(ws_exists(f, idn));
	assert_true(ws_exists(f, ido));
	assert_false(ws_exists(f, idu));
	assert_false(ws_exists(f, idl));
	img = fx_open_id(f, idn, 0);
	expect_ws_load(f, img, idx, 1, "named, after gc");
	fx_close_img(f, img);
	expect_ws_load(f, open_img, idx, 1, "open, after gc");

	fx_close_img(f, open_img);
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.images, 1);
	assert_false(ws_exists(f, ido));
	assert_true(ws_exists(f, idn));
}

static void test_ws_rdonly(void **state)
{
	struct fx *f = *state;
	static const uint64_t idx[] = { 1, 0 };
	uint8_t id[SNAP_ID_LEN];
	struct snap_image *img;
	struct snap_ws ws = { .n = 2, .index = (uint64_t *)idx };

	img = fx_new(f, "s/ro", 2 * (uint64_t)f->cs, id);
	save_ws(f, img, idx, 2, 5, false);
	fx_close_img(f, img);
	f->opts.flags = SNAP_STORE_RDONLY;
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	expect_ws_load(f, img, idx, 2, "read-only store");
	EXPECT_ERR(f, -EROFS, snap_image_ws_save(img, &ws, &f->err));
	EXPECT_ERR(f, -EROFS, snap_image_ws_save(img, NULL, &f->err));
	assert_true(ws_exists(f, id));
	expect_ws_load(f, img, idx, 2, "read-only store, after refusals");
	fx_close_img(f, img);
	f->opts.flags = 0;
	fx_reopen(f);
}

/* ==== 5. hostile working-set files ======================================= */

/* Publish payload as id's working set file; its path into path. */
static void ws_put_raw(struct fx *f, const uint8_t id[SNAP_ID_LEN],
		       const void *payload, size_t len, char *path,
		       size_t size)
{
	ws_path(f, id, path, size);
	CHECK(f, frame_publish(path, payload, len, 0, &f->err));
}

/* A WorkingSet of chunk size cs and n indexes as id's file. */
static size_t ws_put(struct fx *f, const uint8_t id[SNAP_ID_LEN],
		     uint32_t cs, const uint64_t *idx, size_t n)
{
	Snapfs__Store__WorkingSet m = SNAPFS__STORE__WORKING_SET__INIT;
	char path[4096];
	uint8_t *buf;
	size_t len;

	m.chunk_size = cs;
	m.n_indexes = n;
	m.indexes = (uint64_t *)idx;
	m.recorded_unix_ns = 17;
	len = protobuf_c_message_get_packed_size(&m.base);
	buf = malloc(len ? len : 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(&m.base, buf), len);
	ws_put_raw(f, id, buf, len, path, sizeof(path));
	free(buf);
	return len + FRAME_HDR;
}

/* Loading img's working set is -EBADMSG naming the image; no crash. */
static void expect_bad(struct fx *f, struct snap_image *img,
		       const uint8_t id[SNAP_ID_LEN], const char *what)
{
	char hex[2 * SNAP_ID_LEN + 1];
	struct snap_ws ws;
	int ret;

	snap_id_hex(id, hex);
	f->err.msg[0] = '\0';
	memset(&ws, 0xa5, sizeof(ws));
	ret = snap_image_ws_load(img, &ws, &f->err);
	if (ret != -EBADMSG)
		fail_msg("%s: ws_load %d, expected -EBADMSG: %s", what, ret,
			 f->err.msg);
	if (!strstr(f->err.msg, hex))
		fail_msg("%s: \"%s\" does not name image %s", what,
			 f->err.msg, hex);
	assert_int_equal(ws.n, 0);
	assert_null(ws.index);
}

static void test_ws_hostile(void **state)
{
	struct fx *f = *state;
	static const uint64_t past[] = { 7, 1, 4, 100, 3, UINT64_MAX,
					 1ull << 40 };
	static const uint64_t rep[] = { 2, 2, 1, 2, 1, 0, 2 };
	static const uint64_t ok[] = { 2, 1 };
	uint8_t id[SNAP_ID_LEN], *file, *copy;
	struct snap_image *img;
	char path[4096];
	size_t len;

	fx_make(f, "h", 4, 0, 90, id, NULL, NULL);
	img = fx_open_id(f, id, 0);

	ws_put(f, id, f->cs, past, 7);
	{
		static const uint64_t want[] = { 1, 3 };

		expect_ws_load(f, img, want, 2, "indexes past the image");
	}
	ws_put(f, id, f->cs, rep, 7);
	{
		static const uint64_t want[] = { 2, 1, 0 };

		expect_ws_load(f, img, want, 3, "repeated indexes");
	}
	ws_put(f, id, f->cs * 2, ok, 2);
	expect_bad(f, img, id, "twice the chunk size");
	ws_put(f, id, 0, ok, 2);
	expect_bad(f, img, id, "no chunk size");

	/* Every truncation and every bit flip of a sound file. */
	len = ws_put(f, id, f->cs, ok, 2);
	ws_path(f, id, path, sizeof(path));
	file = test_read_file(path, &len);
	copy = malloc(len);
	for (size_t cut = 0; cut < len; cut++) {
		char what[64];

		test_write_file(path, file, cut);
		snprintf(what, sizeof(what), "cut to %zu of %zu", cut, len);
		expect_bad(f, img, id, what);
	}
	for (size_t at = 0; at < len; at++)
		for (int bit = 0; bit < 8; bit += 3) {
			char what[64];

			memcpy(copy, file, len);
			copy[at] ^= (uint8_t)(1u << bit);
			test_write_file(path, copy, len);
			snprintf(what, sizeof(what), "byte %zu of %zu, bit %d",
				 at, len, bit);
			expect_bad(f, img, id, what);
		}
	/* A second frame after the first. */
	test_write_file(path, file, len);
	{
		FILE *fp = fopen(path, "ab");

		assert_non_null(fp);
		assert_int_equal(fwrite(file, 1, len, fp), len);
		fclose(fp);
	}
	expect_bad(f, img, id, "two frames");
	test_write_file(path, file, len);
	expect_ws_load(f, img, ok, 2, "sound again");
	free(copy);
	free(file);

	/* Framed well, but not a WorkingSet. */
	{
		static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
		/* chunk_size, then indexes packed: a length of 2^40 bytes */
		uint8_t huge[] = { 0x08, 0, 0, 0, 0x12,
				   0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 1, 2 };
		/* indexes unpacked, one tag each: 2, 2, 1 */
		uint8_t loose[] = { 0x08, 0, 0, 0, 0x10, 2, 0x10, 2, 0x10, 1 };
		uint32_t cs = f->cs;

		/* chunk_size as a 3-byte varint: 4096 and 65536 both fit */
		huge[1] = loose[1] = (uint8_t)(0x80 | (cs & 0x7f));
		huge[2] = loose[2] = (uint8_t)(0x80 | ((cs >> 7) & 0x7f));
		huge[3] = loose[3] = (uint8_t)(cs >> 14);
		ws_put_raw(f, id, junk, sizeof(junk), path, sizeof(path));
		expect_bad(f, img, id, "junk payload");
		ws_put_raw(f, id, huge, sizeof(huge), path, sizeof(path));
		expect_bad(f, img, id, "a packed field declaring 2^40 bytes");
		ws_put_raw(f, id, loose, sizeof(loose), path, sizeof(path));
		expect_ws_load(f, img, ok, 2, "unpacked indexes");
	}
	fx_close_img(f, img);
}

/* 100k indexes on a 4-chunk image: at most 4 kept, memory as the file. */
static void test_ws_huge(void **state)
{
	struct fx *f = *state;
	const size_t n = 100000;
	uint64_t *idx = malloc(n * sizeof(*idx));
	uint8_t id[SNAP_ID_LEN];
	struct snap_image *img;
	struct snap_ws ws;
	size_t flen;

	fx_make(f, "big", 4, 0, 95, id, NULL, NULL);
	img = fx_open_id(f, id, 0);
	for (size_t i = 0; i < n; i++)
		idx[i] = (i + 4) % 6;	/* 4 5 0 1 2 3 4 5 ... */
	flen = ws_put(f, id, f->cs, idx, n);
	CHECK(f, snap_image_ws_load(img, &ws, &f->err));
	{
		static const uint64_t want[] = { 0, 1, 2, 3 };

		expect_ws(&ws, want, 4, "100k indexes, 4 chunks");
	}
	if (malloc_usable_size(ws.index) > 8 * flen + 4096)
		fail_msg("%zu bytes for 4 indexes from a file of %zu",
			 malloc_usable_size(ws.index), flen);
	snap_ws_release(&ws);

	/* All far past the end: each 10 bytes in the file, none kept. */
	for (size_t i = 0; i < n; i++)
		idx[i] = UINT64_MAX - i;
	ws_put(f, id, f->cs, idx, n);
	CHECK(f, snap_image_ws_load(img, &ws, &f->err));
	assert_int_equal(ws.n, 0);
	snap_ws_release(&ws);
	fx_close_img(f, img);
	free(idx);
}

#define BOTH(fn)							\
	{ #fn "/64k", fn, fx_setup, fx_teardown, &cs64 },		\
	{ #fn "/4k", fn, fx_setup, fx_teardown, &cs4 }
#define ONE(fn)	{ #fn, fn, fx_setup, fx_teardown, &cs64 }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_claim_wait),
		cmocka_unit_test(test_claim_failed),
		cmocka_unit_test(test_cache_bound),
		cmocka_unit_test(test_cache_offer),
		BOTH(test_fetch_ahead),
		BOTH(test_fetch_failure),
		BOTH(test_prefetch),
		BOTH(test_parallel_read),
		BOTH(test_parallel_threads),
		BOTH(test_fetched),
		BOTH(test_ws_save_load),
		BOTH(test_ws_record),
		ONE(test_ws_record_many),
		BOTH(test_ws_clone),
		ONE(test_ws_gc),
		ONE(test_ws_rdonly),
		BOTH(test_ws_hostile),
		ONE(test_ws_huge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
