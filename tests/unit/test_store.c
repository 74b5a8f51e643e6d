/* SPDX-License-Identifier: MIT */
/*
 * The memory store (store.h, backend.h): reads and writes through the chunk
 * map, zero and duplicate chunks, clones and their chains, names, corrupt
 * chunks and metadata, gc, a writer killed at random, threads, a small
 * cache, copy_range, and the backends' own contract.
 *
 * Most cases run twice: over the directory backend ("/dir") and over
 * snap_backend_mem ("/mem"); the metadata is in a temporary directory
 * either way. The memory backend is handed to the store through a thin
 * wrapper ("held") whose free does nothing, so that its chunks outlive a
 * close and a test can reopen the store; the wrapper also counts frees and
 * can corrupt what get returns.
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

#define CHUNK		(64u << 10)
#define MAX_PIECE	(3 * CHUNK + 5)

/* ---- pseudo-random bytes ------------------------------------------------- */

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_init(uint64_t seed)
{
	return (seed + 1) * 0x9e3779b97f4a7c15ull | 1;
}

/* len bytes that depend only on seed (incompressible). */
static void fill_random(void *buf, size_t len, uint64_t seed)
{
	uint64_t x = rnd_init(seed);
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rnd(&x);

		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* len bytes of text that zstd shrinks well. */
static void fill_text(void *buf, size_t len, uint64_t seed)
{
	char line[64];
	size_t off = 0;

	for (unsigned i = 0; off < len; i++) {
		int n = snprintf(line, sizeof(line), "chunk %" PRIu64
				 " line %u\n", seed, i);
		size_t k = (size_t)n < len - off ? (size_t)n : len - off;

		memcpy((uint8_t *)buf + off, line, k);
		off += k;
	}
}

/* ---- a model of an image's bytes ------------------------------------------ */

struct model {
	uint8_t *b;
	uint64_t size;
	uint64_t cap;
};

static void model_truncate(struct model *m, uint64_t size)
{
	if (size > m->cap) {
		m->b = realloc(m->b, size);
		if (!m->b)
			abort();
		m->cap = size;
	}
	if (size > m->size)
		memset(m->b + m->size, 0, size - m->size);
	m->size = size;
}

static void model_write(struct model *m, const void *buf, size_t len,
			uint64_t off)
{
	if (off + len > m->size)
		model_truncate(m, off + len);
	memcpy(m->b + off, buf, len);
}

static void model_copy(struct model *dst, const struct model *src)
{
	dst->size = 0;
	model_truncate(dst, src->size);
	memcpy(dst->b, src->b, src->size);
}

static void model_free(struct model *m)
{
	free(m->b);
	*m = (struct model){ 0 };
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Chunks of m that are not all zero. */
static uint64_t model_chunks(const struct model *m)
{
	uint64_t n = 0;

	for (uint64_t off = 0; off < m->size; off += CHUNK) {
		uint64_t len = m->size - off < CHUNK ? m->size - off : CHUNK;

		n += !all_zero(m->b + off, len);
	}
	return n;
}

/* ---- a memory backend the store can take over and give back ------------- */

struct held {
	struct snap_backend inner;	/* snap_backend_mem */
	int frees;			/* times the store freed us */
	bool flip;			/* corrupt get of key bad ... */
	uint8_t bad[SNAP_KEY_LEN];
	size_t flip_at;			/* ... at this byte */
};

static int held_put(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		    const void *buf, size_t len)
{
	struct held *h = ctx;

	return h->inner.ops->put(h->inner.ctx, key, buf, len);
}

static int held_get(void *ctx, const uint8_t key[SNAP_KEY_LEN], void *buf,
		    size_t cap, size_t *len)
{
	struct held *h = ctx;
	int ret = h->inner.ops->get(h->inner.ctx, key, buf, cap, len);

	if (!ret && h->flip && !memcmp(key, h->bad, SNAP_KEY_LEN) &&
	    h->flip_at < *len)
		((uint8_t *)buf)[h->flip_at] ^= 0x55;
	return ret;
}

static int held_has(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	struct held *h = ctx;

	return h->inner.ops->has(h->inner.ctx, key);
}

static int held_del(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	struct held *h = ctx;

	return h->inner.ops->del(h->inner.ctx, key);
}

static int held_each(void *ctx, int (*fn)(void *arg,
					   const uint8_t key[SNAP_KEY_LEN],
					   uint64_t size),
		     void *arg)
{
	struct held *h = ctx;

	return h->inner.ops->each(h->inner.ctx, fn, arg);
}

static int held_sync(void *ctx)
{
	struct held *h = ctx;

	return h->inner.ops->sync(h->inner.ctx);
}

static void held_free(void *ctx)
{
	struct held *h = ctx;

	h->frees++;
}

static const struct snap_backend_ops held_ops = {
	.put = held_put, .get = held_get, .has = held_has, .del = held_del,
	.each = held_each, .sync = held_sync, .free = held_free,
};

/* ---- the fixture: a store in a fresh temporary directory ----------------- */

enum { ON_DIR, ON_MEM };
static int on_dir = ON_DIR, on_mem = ON_MEM;

struct fx {
	bool mem;
	char *tmp;
	char *dir;			/* the store: tmp/store */
	struct held held;		/* ON_MEM: the chunks */
	struct snap_backend b;		/* what the store takes over */
	struct snap_store_opts opts;
	struct snap_store *s;
	struct snap_err err;
};

/* Fail with the call, its errno and the store's message unless it is 0. */
#define CHECK(f, call) do {						\
		int ret_ = (call);					\
		if (ret_)						\
			fail_msg("%s: %d (%s): %s", #call, ret_,	\
				 strerror(-ret_), (f)->err.msg);	\
	} while (0)

/* Expect call to fail with want and say something. */
#define EXPECT_ERR(f, want, call) do {					\
		long ret_;						\
		(f)->err.msg[0] = '\0';					\
		ret_ = (call);						\
		if (ret_ != (want))					\
			fail_msg("%s: %ld, expected %d (%s): %s", #call,\
				 ret_, (want), strerror(-(want)),	\
				 (f)->err.msg);				\
		if (!(f)->err.msg[0])					\
			fail_msg("%s: %d without a message", #call,	\
				 (want));				\
	} while (0)

static int fx_open(struct fx *f)
{
	struct snap_store_opts o = f->opts;

	if (f->mem) {
		f->b = (struct snap_backend){ &held_ops, &f->held };
		o.backend = &f->b;
	}
	f->s = NULL;
	f->err.msg[0] = '\0';
	return snap_store_open(f->dir, &o, &f->s, &f->err);
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
	f->mem = *(int *)*state == ON_MEM;
	f->tmp = test_tmpdir();
	if (asprintf(&f->dir, "%s/store", f->tmp) < 0)
		abort();
	if (f->mem && snap_backend_mem(&f->held.inner))
		return -1;
	if (snap_store_init(f->dir, CHUNK, &f->err) || fx_open(f)) {
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
	if (f->held.inner.ops)
		f->held.inner.ops->free(f->held.inner.ctx);
	test_rmtree(f->tmp);
	free(f->dir);
	free(f->tmp);
	free(f);
	return 0;
}

/* ---- helpers on images ----------------------------------------------------- */

/* Make snapshot path's first component unless it exists. */
static void fx_mkdir_of(struct fx *f, const char *path)
{
	char snap[SNAP_STORE_NAME_MAX + 1];
	size_t n = strcspn(path, "/");
	int ret;

	assert_true(n <= SNAP_STORE_NAME_MAX);
	memcpy(snap, path, n);
	snap[n] = '\0';
	ret = snap_store_mkdir(f->s, snap, &f->err);
	if (ret && ret != -EEXIST)
		fail_msg("mkdir %s: %d: %s", snap, ret, f->err.msg);
}

/* A new image of size bytes named path, open for writing. */
static struct snap_image *fx_new(struct fx *f, const char *path,
				 uint64_t size, uint8_t id[SNAP_ID_LEN])
{
	struct snap_image *img = NULL;

	fx_mkdir_of(f, path);
	CHECK(f, snap_image_create(f->s, size, id, &f->err));
	CHECK(f, snap_store_link(f->s, path, id, &f->err));
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

static struct snap_image *fx_open_name(struct fx *f, const char *path,
				       unsigned flags)
{
	uint8_t id[SNAP_ID_LEN];
	unsigned nlink;

	CHECK(f, snap_store_lookup(f->s, path, id, &nlink, &f->err));
	return fx_open_id(f, id, flags);
}

static void fx_close_img(struct fx *f, struct snap_image *img)
{
	CHECK(f, snap_image_close(img, &f->err));
}

static void img_write(struct fx *f, struct snap_image *img, struct model *m,
		      const void *buf, size_t len, uint64_t off)
{
	ssize_t n = snap_image_write(img, buf, len, off, &f->err);

	if (n != (ssize_t)len)
		fail_msg("write %zu bytes at %" PRIu64 ": %zd: %s", len, off,
			 n, f->err.msg);
	if (m)
		model_write(m, buf, len, off);
}

/* Write len pseudo-random bytes of seed at off. */
static void img_fill(struct fx *f, struct snap_image *img, struct model *m,
		     size_t len, uint64_t off, uint64_t seed)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	fill_random(buf, len, seed);
	img_write(f, img, m, buf, len, off);
	free(buf);
}

static uint64_t img_size(struct snap_image *img)
{
	struct snap_image_stat st;

	snap_image_stat(img, &st);
	return st.size;
}

/*
 * img holds exactly m: its size, every byte (read in pieces of sizes that
 * straddle chunks every which way), and nothing at or past its end.
 */
static void expect_content(struct fx *f, struct snap_image *img,
			   const struct model *m, const char *what)
{
	static const size_t pieces[] = { 4093, 1, CHUNK, MAX_PIECE, 777,
					 2 * CHUNK - 1, 100000 };
	uint8_t *buf = malloc(MAX_PIECE + 100000);
	uint64_t size = img_size(img), off = 0;

	assert_non_null(buf);
	if (size != m->size)
		fail_msg("%s: size %" PRIu64 ", expected %" PRIu64, what,
			 size, m->size);
	for (unsigned i = 0; off < m->size; i++) {
		size_t piece = pieces[i % (sizeof(pieces) / sizeof(*pieces))];
		uint64_t want = m->size - off < piece ? m->size - off : piece;
		ssize_t n = snap_image_read(img, buf, piece, off, &f->err);

		if (n != (ssize_t)want)
			fail_msg("%s: read %zu at %" PRIu64 ": %zd, expected "
				 "%" PRIu64 ": %s", what, piece, off, n, want,
				 f->err.msg);
		if (memcmp(buf, m->b + off, want)) {
			uint64_t k = 0;

			while (buf[k] == m->b[off + k])
				k++;
			fail_msg("%s: byte %" PRIu64 " (chunk %" PRIu64
				 ") reads %#x, expected %#x", what, off + k,
				 (off + k) / CHUNK, buf[k], m->b[off + k]);
		}
		off += want;
	}
	if (snap_image_read(img, buf, 10, m->size, &f->err) != 0 ||
	    snap_image_read(img, buf, 10, m->size + 3 * CHUNK, &f->err) != 0)
		fail_msg("%s: a read at or past the end is not empty", what);
	free(buf);
}

static void fx_stats(struct fx *f, struct snap_store_stats *st)
{
	memset(st, 0xa5, sizeof(*st));
	CHECK(f, snap_store_stats(f->s, st, &f->err));
}

struct lines {
	int n;
	char first[512];
};

static void collect_line(void *arg, const char *line)
{
	struct lines *l = arg;

	if (!l->n++)
		snprintf(l->first, sizeof(l->first), "%s", line);
}

/* Verify the store: 0 and no problem reported. */
static void fx_verify_clean(struct fx *f, const char *what)
{
	struct snap_verify_stats vs;
	struct lines l = { 0 };
	int ret;

	memset(&vs, 0xa5, sizeof(vs));
	ret = snap_store_verify(f->s, &vs, collect_line, &l, &f->err);
	if (ret || vs.bad || l.n)
		fail_msg("%s: verify %d, %" PRIu64 " bad, %d lines (%s): %s",
			 what, ret, vs.bad, l.n, l.first, f->err.msg);
}

/* ---- chunks in the backend ------------------------------------------------ */

static int count_key(void *arg, const uint8_t key[SNAP_KEY_LEN],
		     uint64_t size)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/* Chunks the backend holds (dir: as a new process finds them). */
static uint64_t fx_stored(struct fx *f)
{
	uint64_t n = 0;

	if (f->mem) {
		assert_int_equal(f->held.inner.ops->each(f->held.inner.ctx,
							 count_key, &n), 0);
		return n;
	}
	return test_chunk_count(f->dir);
}

/* Whether the backend holds key. */
static bool fx_has_chunk(struct fx *f, const uint8_t key[SNAP_KEY_LEN])
{
	if (f->mem)
		return f->held.inner.ops->has(f->held.inner.ctx, key) == 1;
	return test_chunk_has(f->dir, key);
}

/* Length of key's stored value. */
static size_t fx_chunk_len(struct fx *f, const uint8_t key[SNAP_KEY_LEN])
{
	size_t len = 0;
	uint8_t *buf;

	if (f->mem) {
		buf = malloc(2 * CHUNK);
		assert_int_equal(f->held.inner.ops->get(f->held.inner.ctx, key,
							buf, 2 * CHUNK, &len),
				 0);
		free(buf);
		return len;
	}
	len = test_chunk_len(f->dir, key);
	assert_true(len > 0);
	return len;
}

/* XOR byte at of the file at path with x, in place. */
static void xor_byte(const char *path, size_t at, uint8_t x)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	if (fd < 0 || pread(fd, &b, 1, (off_t)at) != 1)
		abort();
	b ^= x;
	if (pwrite(fd, &b, 1, (off_t)at) != 1 || close(fd))
		abort();
}

/* Corrupt (on) or repair (!on) byte at of key's stored value. */
static void fx_flip_chunk(struct fx *f, const uint8_t key[SNAP_KEY_LEN],
			  size_t at, bool on)
{
	if (f->mem) {
		f->held.flip = on;
		memcpy(f->held.bad, key, SNAP_KEY_LEN);
		f->held.flip_at = at;
		return;
	}
	test_chunk_xor(f->dir, key, at, 0x55);
}

/* Remove key's chunk behind the store's back (it is opened again). */
static void fx_del_chunk(struct fx *f, const uint8_t key[SNAP_KEY_LEN])
{
	if (f->mem) {
		assert_int_equal(f->held.inner.ops->del(f->held.inner.ctx,
							key), 0);
		return;
	}
	assert_true(test_chunk_has(f->dir, key));
	fx_close(f);
	test_chunk_replace(f->dir, key, NULL, 0);
	CHECK(f, fx_open(f));
	assert_false(test_chunk_has(f->dir, key));
}

/* ==== 1. round trip ========================================================= */

static void test_roundtrip(void **state)
{
	struct fx *f = *state;
	const uint64_t size = 10 * CHUNK + 123;
	struct model m = { 0 };
	struct snap_image_stat st;
	struct timespec t0, t1;
	uint8_t id[SNAP_ID_LEN], buf[200];
	struct snap_image *img, *ro;
	ssize_t n;

	clock_gettime(CLOCK_REALTIME, &t0);
	img = fx_new(f, "s/disk", size, id);
	clock_gettime(CLOCK_REALTIME, &t1);
	snap_image_stat(img, &st);
	assert_memory_equal(st.id, id, SNAP_ID_LEN);
	assert_true(st.created_ns >= (uint64_t)t0.tv_sec * 1000000000u -
				     1000000000u);
	assert_true(st.created_ns <= (uint64_t)t1.tv_sec * 1000000000u +
				     1000000000u);
	assert_int_equal(st.depth, 1);
	assert_int_equal(st.chunks, 0);
	model_truncate(&m, size);
	expect_content(f, img, &m, "new image");

	/* Unaligned writes across one boundary and across three chunks. */
	img_fill(f, img, &m, 300, CHUNK - 100, 1);
	img_fill(f, img, &m, 2 * CHUNK + 50, 3 * CHUNK + 7, 2);
	/* A whole chunk, then small writes inside it: read-modify-write. */
	img_fill(f, img, &m, CHUNK, 6 * CHUNK, 3);
	img_fill(f, img, &m, 20, 6 * CHUNK + 10, 4);
	img_fill(f, img, &m, 1, 7 * CHUNK - 1, 5);
	/* A small write into a hole; chunks 2 and 9 stay holes. */
	img_fill(f, img, &m, 33, 8 * CHUNK + 1000, 6);
	expect_content(f, img, &m, "after writes");
	snap_image_stat(img, &st);
	assert_true(st.mtime_ns >= st.created_ns);

	/* A read across the end is short. */
	n = snap_image_read(img, buf, 100, size - 10, &f->err);
	assert_int_equal(n, 10);
	assert_memory_equal(buf, m.b + size - 10, 10);
	assert_int_equal(snap_image_read(img, buf, 0, 5, &f->err), 0);

	/* A second handle is the same image; it cannot write. */
	ro = fx_open_id(f, id, 0);
	expect_content(f, ro, &m, "second handle");
	n = snap_image_write(ro, "x", 1, 0, &f->err);
	if (n >= 0)
		fail_msg("a handle opened without SNAP_IMAGE_WRITE wrote: %zd",
			 n);

	/* Growth by a write past the end leaves a hole before it. */
	img_fill(f, img, &m, 1000, size + CHUNK + 5, 7);
	expect_content(f, img, &m, "grown by a write");
	expect_content(f, ro, &m, "grown, through the second handle");

	/* Down into a chunk with data, then up: the cut reads as zeros. */
	CHECK(f, snap_image_truncate(img, 4 * CHUNK + 555, &f->err));
	model_truncate(&m, 4 * CHUNK + 555);
	expect_content(f, img, &m, "truncated down");
	CHECK(f, snap_image_truncate(img, 9 * CHUNK, &f->err));
	model_truncate(&m, 9 * CHUNK);
	expect_content(f, img, &m, "truncated down then up");

	CHECK(f, snap_image_sync(img, &f->err));
	expect_content(f, img, &m, "synced");
	snap_image_stat(img, &st);
	assert_int_equal(st.chunks, model_chunks(&m));
	fx_close_img(f, ro);
	fx_close_img(f, img);

	fx_reopen(f);
	img = fx_open_name(f, "s/disk", SNAP_IMAGE_WRITE);
	expect_content(f, img, &m, "reopened");

	/* snap_store_close stores what an image left open wrote. */
	img_fill(f, img, &m, 3 * CHUNK, 5 * CHUNK - 3, 8);
	fx_reopen(f);
	img = fx_open_name(f, "s/disk", 0);
	expect_content(f, img, &m, "closed by snap_store_close");
	fx_close_img(f, img);
	fx_verify_clean(f, "after the round trip");
	model_free(&m);
}

/* ==== 2. zero and duplicate chunks ========================================== */

static void test_zero_and_dup_chunks(void **state)
{
	struct fx *f = *state;
	struct snap_store_stats st, st2;
	struct snap_image_stat is;
	uint8_t id[SNAP_ID_LEN], *buf = calloc(8, CHUNK);
	struct snap_image *a, *b, *c;

	/* Zeros over a whole image store nothing. */
	a = fx_new(f, "s/zero", 8 * CHUNK, id);
	img_write(f, a, NULL, buf, 8 * CHUNK, 0);
	img_write(f, a, NULL, buf, 100, 3 * CHUNK - 50);
	CHECK(f, snap_image_sync(a, &f->err));
	fx_stats(f, &st);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.mapped_bytes, 0);
	assert_int_equal(st.unique_bytes, 0);
	assert_int_equal(st.stored_bytes, 0);
	assert_int_equal(st.logical_bytes, 8 * CHUNK);
	assert_int_equal(fx_stored(f), 0);
	snap_image_stat(a, &is);
	assert_int_equal(is.chunks, 0);

	/* One chunk's content in two images is stored once. */
	fill_random(buf, CHUNK, 20);
	b = fx_new(f, "s/b", 4 * CHUNK, id);
	img_write(f, b, NULL, buf, CHUNK, 1 * CHUNK);
	c = fx_new(f, "s/c", 4 * CHUNK, id);
	img_write(f, c, NULL, buf, CHUNK, 2 * CHUNK);
	CHECK(f, snap_image_sync(b, &f->err));
	CHECK(f, snap_image_sync(c, &f->err));
	fx_stats(f, &st);
	assert_int_equal(st.images, 3);
	assert_int_equal(st.files, 3);
	assert_int_equal(st.chunks, 1);
	assert_int_equal(st.mapped_bytes, 2 * CHUNK);
	assert_int_equal(st.unique_bytes, CHUNK);
	assert_true(st.stored_bytes >= CHUNK / 2 && st.stored_bytes < 2 * CHUNK);
	assert_int_equal(fx_stored(f), 1);
	/* and twice in one image, still once */
	img_write(f, c, NULL, buf, CHUNK, 0);
	CHECK(f, snap_image_sync(c, &f->err));
	fx_stats(f, &st);
	assert_int_equal(st.chunks, 1);
	assert_int_equal(st.mapped_bytes, 3 * CHUNK);
	assert_int_equal(fx_stored(f), 1);

	/* Text is compressed. */
	fill_text(buf, CHUNK, 21);
	img_write(f, b, NULL, buf, CHUNK, 3 * CHUNK);
	CHECK(f, snap_image_sync(b, &f->err));
	fx_stats(f, &st2);
	assert_int_equal(st2.chunks, 2);
	assert_true(st2.stored_bytes - st.stored_bytes < CHUNK / 2);

	/* A chunk overwritten with zeros leaves the map. */
	img_write(f, b, NULL, buf + CHUNK, CHUNK, 3 * CHUNK);
	CHECK(f, snap_image_sync(b, &f->err));
	fx_stats(f, &st);
	assert_int_equal(st.chunks, 1);
	assert_int_equal(st.mapped_bytes, 3 * CHUNK);
	if (fx_stored(f) != st.chunks + st.garbage_chunks)
		fail_msg("%" PRIu64 " chunks stored, stats say %" PRIu64 " used "
			 "and %" PRIu64 " garbage", fx_stored(f), st.chunks,
			 st.garbage_chunks);
	snap_image_stat(b, &is);
	assert_int_equal(is.chunks, 1);

	fx_close_img(f, a);
	fx_close_img(f, b);
	fx_close_img(f, c);

	/* The overwritten chunk is used by no image: gc frees it. */
	{
		struct snap_gc_stats gs;

		memset(&gs, 0xa5, sizeof(gs));
		CHECK(f, snap_store_gc(f->s, &gs, &f->err));
		assert_int_equal(gs.chunks, 1);
		assert_int_equal(fx_stored(f), 1);
	}
	free(buf);
}

/* ==== 3. clones ============================================================= */

static void test_clone_isolation(void **state)
{
	struct fx *f = *state;
	struct model ma = { 0 }, mb = { 0 }, mc = { 0 };
	uint8_t ida[SNAP_ID_LEN], idb[SNAP_ID_LEN], idc[SNAP_ID_LEN];
	struct snap_store_stats s0, s1;
	struct snap_image_stat st;
	struct snap_image *a, *a2, *b, *c;

	a = fx_new(f, "s/a", 8 * CHUNK, ida);
	model_truncate(&ma, 8 * CHUNK);
	img_fill(f, a, &ma, 3 * CHUNK + 99, 17, 30);
	CHECK(f, snap_image_sync(a, &f->err));
	fx_stats(f, &s0);

	/* A clone makes no chunk and two deltas. */
	CHECK(f, snap_image_clone(f->s, ida, idb, &f->err));
	assert_memory_not_equal(ida, idb, SNAP_ID_LEN);
	CHECK(f, snap_store_link(f->s, "s/b", idb, &f->err));
	fx_stats(f, &s1);
	assert_int_equal(s1.images, 2);
	assert_int_equal(s1.chunks, s0.chunks);
	assert_int_equal(s1.stored_bytes, s0.stored_bytes);
	assert_int_equal(s1.deltas, s0.deltas + 2);
	assert_int_equal(s1.mapped_bytes, 2 * s0.mapped_bytes);

	b = fx_open_id(f, idb, SNAP_IMAGE_WRITE);
	model_copy(&mb, &ma);
	expect_content(f, b, &mb, "clone");
	snap_image_stat(b, &st);
	assert_int_equal(st.depth, 2);
	assert_int_equal(st.own_chunks, 0);
	assert_int_equal(st.chunks, model_chunks(&mb));
	a2 = fx_open_id(f, ida, 0);
	snap_image_stat(a2, &st);
	assert_int_equal(st.depth, 2);
	fx_close_img(f, a2);

	/* B's writes never show in A, A's never in B. */
	img_fill(f, b, &mb, 1000, CHUNK + 5, 31);
	img_fill(f, b, &mb, CHUNK, 0, 32);
	expect_content(f, a, &ma, "source after writing the clone");
	expect_content(f, b, &mb, "clone after writing it");
	img_fill(f, a, &ma, 2 * CHUNK, 2 * CHUNK - 7, 33);
	img_fill(f, a, &ma, 10, 6 * CHUNK, 34);
	expect_content(f, b, &mb, "clone after writing the source");
	expect_content(f, a, &ma, "source after writing it");

	/* A clone of an open image holds what was written before it only. */
	img_fill(f, a, &ma, CHUNK, 4 * CHUNK, 35);
	img_fill(f, a, &ma, 77, 5 * CHUNK - 7, 36);
	CHECK(f, snap_image_clone(f->s, ida, idc, &f->err));
	CHECK(f, snap_store_link(f->s, "s/c", idc, &f->err));
	model_copy(&mc, &ma);
	img_fill(f, a, &ma, CHUNK, 4 * CHUNK - 3, 37);
	img_fill(f, a, &ma, 5, 8 * CHUNK + 3, 38);
	c = fx_open_id(f, idc, SNAP_IMAGE_WRITE);
	expect_content(f, c, &mc, "clone of an open image");
	expect_content(f, a, &ma, "source written after its clone");
	img_fill(f, c, &mc, 3 * CHUNK, 3 * CHUNK, 39);
	expect_content(f, a, &ma, "source after writing its second clone");
	expect_content(f, b, &mb, "first clone after the second");

	fx_close_img(f, a);
	fx_close_img(f, b);
	fx_close_img(f, c);
	fx_reopen(f);
	a = fx_open_name(f, "s/a", 0);
	b = fx_open_name(f, "s/b", 0);
	c = fx_open_name(f, "s/c", 0);
	expect_content(f, a, &ma, "source, reopened");
	expect_content(f, b, &mb, "clone, reopened");
	expect_content(f, c, &mc, "second clone, reopened");
	fx_close_img(f, a);
	fx_close_img(f, b);
	fx_close_img(f, c);
	fx_verify_clean(f, "after clones");
	model_free(&ma);
	model_free(&mb);
	model_free(&mc);
}

/* ==== 4. chains and flatten ================================================= */

#define LEVELS 4

/*
 * A source written and cloned again and again: every chain stays short
 * (the source is flattened when it gets deep), every clone reads what the
 * source held when it was made, and all of it reopens.
 */
static void test_chain_bound(void **state)
{
	struct fx *f = *state;
	enum { ROUNDS = 150 };
	uint8_t src[SNAP_ID_LEN], id[SNAP_ID_LEN], first[SNAP_ID_LEN];
	struct model m = { 0 }, m0 = { 0 };
	struct snap_image *img, *c;
	struct snap_image_stat st;
	unsigned deepest = 0;

	img = fx_new(f, "s/src", 4 * CHUNK, src);
	model_truncate(&m, 4 * CHUNK);
	for (int r = 0; r < ROUNDS; r++) {
		img_fill(f, img, &m, 100, (uint64_t)(r % 4) * CHUNK + r, r);
		CHECK(f, snap_image_clone(f->s, src, id, &f->err));
		if (r == 0) {
			memcpy(first, id, SNAP_ID_LEN);
			model_copy(&m0, &m);
		}
		snap_image_stat(img, &st);
		if (st.depth > deepest)
			deepest = st.depth;
	}
	if (deepest > 66)
		fail_msg("the source's chain reached %u deltas", deepest);
	CHECK(f, snap_store_link(f->s, "s/last", id, &f->err));
	CHECK(f, snap_store_link(f->s, "s/first", first, &f->err));
	c = fx_open_id(f, id, 0);
	snap_image_stat(c, &st);
	if (st.depth > 67)
		fail_msg("the last clone's chain: %u deltas", st.depth);
	expect_content(f, c, &m, "the last clone");
	fx_close_img(f, c);
	fx_close_img(f, img);
	fx_reopen(f);
	c = fx_open_id(f, first, 0);
	expect_content(f, c, &m0, "the first clone, reopened");
	fx_close_img(f, c);
	img = fx_open_id(f, src, 0);
	expect_content(f, img, &m, "the source, reopened");
	fx_close_img(f, img);
	model_free(&m);
	model_free(&m0);
}

static void test_chain_flatten(void **state)
{
	struct fx *f = *state;
	static const unsigned depth[LEVELS] = { 2, 3, 4, 4 };
	struct model m[LEVELS] = { { 0 } };
	uint8_t id[LEVELS][SNAP_ID_LEN];
	struct snap_image *img[LEVELS];
	struct snap_store_stats s0, s1;
	struct snap_image_stat st;
	char name[16], what[64];

	img[0] = fx_new(f, "s/l0", 6 * CHUNK, id[0]);
	model_truncate(&m[0], 6 * CHUNK);
	img_fill(f, img[0], &m[0], CHUNK, 0, 40);
	img_fill(f, img[0], &m[0], 100, 5 * CHUNK + 3, 41);
	/* Each level a clone of the one before, written before its clone. */
	for (int l = 1; l < LEVELS; l++) {
		CHECK(f, snap_image_clone(f->s, id[l - 1], id[l], &f->err));
		snprintf(name, sizeof(name), "s/l%d", l);
		CHECK(f, snap_store_link(f->s, name, id[l], &f->err));
		img[l] = fx_open_id(f, id[l], SNAP_IMAGE_WRITE);
		model_copy(&m[l], &m[l - 1]);
		img_fill(f, img[l], &m[l], CHUNK, (uint64_t)l * CHUNK, 42 + l);
		img_fill(f, img[l], &m[l], 100, (uint64_t)l * CHUNK - 50,
			 52 + l);
	}
	/* and each written again after all the clones */
	for (int l = 0; l < LEVELS; l++)
		img_fill(f, img[l], &m[l], 33, 5 * CHUNK + 20 * l, 60 + l);
	for (int l = 0; l < LEVELS; l++) {
		CHECK(f, snap_image_sync(img[l], &f->err));
		snprintf(what, sizeof(what), "level %d", l);
		expect_content(f, img[l], &m[l], what);
		snap_image_stat(img[l], &st);
		if (st.depth != depth[l])
			fail_msg("level %d: depth %u, expected %u", l,
				 st.depth, depth[l]);
		assert_int_equal(st.chunks, model_chunks(&m[l]));
	}
	snap_image_stat(img[3], &st);
	assert_int_equal(st.own_chunks, 3);	/* chunks 2, 3, 5 */
	for (int l = 0; l < LEVELS; l++)
		fx_close_img(f, img[l]);

	/* Flatten the deepest: same bytes, depth 1, no chunk copied. */
	fx_stats(f, &s0);
	CHECK(f, snap_image_flatten(f->s, id[3], &f->err));
	fx_stats(f, &s1);
	assert_int_equal(s1.chunks, s0.chunks);
	assert_int_equal(s1.stored_bytes, s0.stored_bytes);
	img[3] = fx_open_id(f, id[3], SNAP_IMAGE_WRITE);
	snap_image_stat(img[3], &st);
	assert_int_equal(st.depth, 1);
	assert_int_equal(st.chunks, model_chunks(&m[3]));
	assert_int_equal(st.own_chunks, st.chunks);
	expect_content(f, img[3], &m[3], "flattened");
	img_fill(f, img[3], &m[3], CHUNK, 0, 70);
	fx_close_img(f, img[3]);

	fx_reopen(f);
	for (int l = 0; l < LEVELS; l++) {
		snprintf(name, sizeof(name), "s/l%d", l);
		img[l] = fx_open_name(f, name, 0);
		snprintf(what, sizeof(what), "level %d, reopened", l);
		expect_content(f, img[l], &m[l], what);
	}
	snap_image_stat(img[3], &st);
	assert_int_equal(st.depth, 1);
	snap_image_stat(img[2], &st);
	assert_int_equal(st.depth, 4);
	for (int l = 0; l < LEVELS; l++)
		fx_close_img(f, img[l]);
	{
		struct snap_gc_stats gs;

		CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	}
	for (int l = 0; l < LEVELS; l++) {
		snprintf(name, sizeof(name), "s/l%d", l);
		img[l] = fx_open_name(f, name, 0);
		snprintf(what, sizeof(what), "level %d, after gc", l);
		expect_content(f, img[l], &m[l], what);
		fx_close_img(f, img[l]);
		model_free(&m[l]);
	}
	fx_verify_clean(f, "after flatten and gc");
}

/* ==== 5. names ============================================================== */

struct listing {
	int n, stop_at;
	char names[16][SNAP_STORE_NAME_MAX + 1];
};

static int list_one(void *arg, const char *entry)
{
	struct listing *l = arg;

	if (l->n < 16)
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", entry);
	l->n++;
	return l->n == l->stop_at ? 42 : 0;
}

static void expect_list(struct fx *f, const char *snap, const char *want)
{
	struct listing l = { 0 };
	char got[4096] = "";

	CHECK(f, snap_store_list(f->s, snap, list_one, &l, &f->err));
	for (int i = 0; i < l.n && i < 16; i++) {
		strcat(got, i ? " " : "");
		strcat(got, l.names[i]);
	}
	if (strcmp(got, want))
		fail_msg("list %s: \"%s\", expected \"%s\"",
			 snap ? snap : "(snapshots)", got, want);
}

static unsigned fx_nlink(struct fx *f, const char *path,
			 const uint8_t want[SNAP_ID_LEN])
{
	uint8_t id[SNAP_ID_LEN];
	unsigned nlink = 0;

	CHECK(f, snap_store_lookup(f->s, path, id, &nlink, &f->err));
	if (want)
		assert_memory_equal(id, want, SNAP_ID_LEN);
	return nlink;
}

static void test_names(void **state)
{
	struct fx *f = *state;
	uint8_t x[SNAP_ID_LEN], y[SNAP_ID_LEN], got[SNAP_ID_LEN];
	char long_name[SNAP_STORE_NAME_MAX + 2], path[2 * SNAP_STORE_NAME_MAX + 8];
	char hex[2 * SNAP_ID_LEN + 1], want_hex[2 * SNAP_ID_LEN + 1];
	struct snap_store_stats st;
	struct listing l = { .stop_at = 2 };
	unsigned nlink;

	CHECK(f, snap_store_mkdir(f->s, "snap", &f->err));
	EXPECT_ERR(f, -EEXIST, snap_store_mkdir(f->s, "snap", &f->err));
	CHECK(f, snap_image_create(f->s, CHUNK, x, &f->err));
	CHECK(f, snap_image_create(f->s, CHUNK, y, &f->err));
	assert_memory_not_equal(x, y, SNAP_ID_LEN);
	snap_id_hex(x, hex);
	snap_hex(x, SNAP_ID_LEN, want_hex);
	assert_string_equal(hex, want_hex);

	/* A name, then a second one: a hard link. */
	CHECK(f, snap_store_link(f->s, "snap/f", x, &f->err));
	assert_int_equal(fx_nlink(f, "snap/f", x), 1);
	CHECK(f, snap_store_link(f->s, "snap/g", x, &f->err));
	assert_int_equal(fx_nlink(f, "snap/f", x), 2);
	assert_int_equal(fx_nlink(f, "snap/g", x), 2);
	EXPECT_ERR(f, -EEXIST, snap_store_link(f->s, "snap/f", y, &f->err));
	assert_int_equal(fx_nlink(f, "snap/f", x), 2);
	EXPECT_ERR(f, -ENOENT, snap_store_link(f->s, "none/f", y, &f->err));
	EXPECT_ERR(f, -ENOENT, snap_store_lookup(f->s, "snap/none", got,
						 &nlink, &f->err));
	EXPECT_ERR(f, -ENOENT, snap_store_unlink(f->s, "snap/none", &f->err));
	{
		uint8_t nobody[SNAP_ID_LEN];

		memset(nobody, 0x5a, sizeof(nobody));
		EXPECT_ERR(f, -ENOENT, snap_store_link(f->s, "snap/n", nobody,
						       &f->err));
	}
	/* snap_store_hardlink: a further name, counted the same. */
	CHECK(f, snap_store_hardlink(f->s, "snap/g", "snap/k", &f->err));
	assert_int_equal(fx_nlink(f, "snap/k", x), 3);
	assert_int_equal(fx_nlink(f, "snap/f", x), 3);
	EXPECT_ERR(f, -EEXIST, snap_store_hardlink(f->s, "snap/k", "snap/f",
						   &f->err));
	EXPECT_ERR(f, -ENOENT, snap_store_hardlink(f->s, "snap/none",
						   "snap/j", &f->err));
	EXPECT_ERR(f, -ENOENT, snap_store_hardlink(f->s, "snap/f", "none/j",
						   &f->err));
	EXPECT_ERR(f, -EINVAL, snap_store_hardlink(f->s, "snap/f", "snap/..",
						   &f->err));
	EXPECT_ERR(f, -EINVAL, snap_store_hardlink(f->s, "snap", "snap2",
						   &f->err));
	CHECK(f, snap_store_unlink(f->s, "snap/k", &f->err));
	assert_int_equal(fx_nlink(f, "snap/f", x), 2);
	CHECK(f, snap_store_mkdir(f->s, "other", &f->err));
	CHECK(f, snap_store_link(f->s, "other/f", x, &f->err));
	assert_int_equal(fx_nlink(f, "snap/g", x), 3);
	CHECK(f, snap_store_unlink(f->s, "other/f", &f->err));
	assert_int_equal(fx_nlink(f, "snap/g", x), 2);

	/* Invalid names, everywhere a name goes. */
	memset(long_name, 'n', SNAP_STORE_NAME_MAX + 1);
	long_name[SNAP_STORE_NAME_MAX + 1] = '\0';
	{
		static const char *const bad_snaps[] = {
			"", ".", "..", "a/b/c", "/snap",
		};
		static const char *const bad_paths[] = {
			"snap/", "snap/.", "snap/..", "snap/a/b", "/f", "",
			"a/b/c", "snap//f", "../snap/f",
		};

		for (size_t i = 0; i < 5; i++) {
			EXPECT_ERR(f, -EINVAL, snap_store_mkdir(f->s,
					bad_snaps[i], &f->err));
			EXPECT_ERR(f, -EINVAL, snap_store_rmdir(f->s,
					bad_snaps[i], &f->err));
		}
		for (size_t i = 0; i < 9; i++) {
			EXPECT_ERR(f, -EINVAL, snap_store_link(f->s,
					bad_paths[i], y, &f->err));
			EXPECT_ERR(f, -EINVAL, snap_store_lookup(f->s,
					bad_paths[i], got, &nlink, &f->err));
			EXPECT_ERR(f, -EINVAL, snap_store_unlink(f->s,
					bad_paths[i], &f->err));
			EXPECT_ERR(f, -EINVAL, snap_store_rename(f->s,
					"snap/f", bad_paths[i], false,
					&f->err));
		}
	}
	EXPECT_ERR(f, -ENAMETOOLONG, snap_store_mkdir(f->s, long_name,
						      &f->err));
	snprintf(path, sizeof(path), "snap/%s", long_name);
	EXPECT_ERR(f, -ENAMETOOLONG, snap_store_link(f->s, path, y, &f->err));
	/* 255 bytes is a name */
	long_name[SNAP_STORE_NAME_MAX] = '\0';
	CHECK(f, snap_store_mkdir(f->s, long_name, &f->err));
	snprintf(path, sizeof(path), "%s/%s", long_name, long_name);
	CHECK(f, snap_store_link(f->s, path, y, &f->err));
	assert_int_equal(fx_nlink(f, path, y), 1);
	CHECK(f, snap_store_unlink(f->s, path, &f->err));
	CHECK(f, snap_store_rmdir(f->s, long_name, &f->err));

	/* Renames: a snapshot, a file, across snapshots. */
	CHECK(f, snap_store_rename(f->s, "snap", "snap2", false, &f->err));
	EXPECT_ERR(f, -ENOENT, snap_store_lookup(f->s, "snap/f", got, &nlink,
						 &f->err));
	assert_int_equal(fx_nlink(f, "snap2/f", x), 2);
	CHECK(f, snap_store_rename(f->s, "snap2/f", "snap2/h", true, &f->err));
	EXPECT_ERR(f, -ENOENT, snap_store_lookup(f->s, "snap2/f", got, &nlink,
						 &f->err));
	assert_int_equal(fx_nlink(f, "snap2/h", x), 2);
	CHECK(f, snap_store_rename(f->s, "snap2/h", "other/h", false,
				   &f->err));
	assert_int_equal(fx_nlink(f, "other/h", x), 2);
	EXPECT_ERR(f, -EINVAL, snap_store_rename(f->s, "snap2", "other/x",
						 false, &f->err));
	EXPECT_ERR(f, -ENOENT, snap_store_rename(f->s, "snap2/none",
						 "snap2/x", false, &f->err));

	/* noreplace refuses; without it a file is replaced. */
	CHECK(f, snap_store_link(f->s, "snap2/y", y, &f->err));
	EXPECT_ERR(f, -EEXIST, snap_store_rename(f->s, "snap2/g", "snap2/y",
						 true, &f->err));
	assert_int_equal(fx_nlink(f, "snap2/y", y), 1);
	assert_int_equal(fx_nlink(f, "snap2/g", x), 2);
	CHECK(f, snap_store_rename(f->s, "snap2/g", "snap2/y", false,
				   &f->err));
	assert_int_equal(fx_nlink(f, "snap2/y", x), 2);
	EXPECT_ERR(f, -ENOENT, snap_store_lookup(f->s, "snap2/g", got, &nlink,
						 &f->err));

	/* A snapshot: noreplace refuses; an empty one is replaced, a full
	 * one is not; a full one is not removed. */
	CHECK(f, snap_store_mkdir(f->s, "empty", &f->err));
	EXPECT_ERR(f, -EEXIST, snap_store_rename(f->s, "other", "empty", true,
						 &f->err));
	{
		long ret = snap_store_rename(f->s, "empty", "other", false,
					     &f->err);

		if (ret != -ENOTEMPTY && ret != -EEXIST)
			fail_msg("rename onto a full snapshot: %ld: %s", ret,
				 f->err.msg);
	}
	assert_int_equal(fx_nlink(f, "other/h", x), 2);
	CHECK(f, snap_store_rename(f->s, "other", "empty", false, &f->err));
	assert_int_equal(fx_nlink(f, "empty/h", x), 2);
	EXPECT_ERR(f, -ENOTEMPTY, snap_store_rmdir(f->s, "empty", &f->err));
	EXPECT_ERR(f, -ENOENT, snap_store_rmdir(f->s, "other", &f->err));

	/* Listings in byte order, and fn stops them. */
	CHECK(f, snap_store_mkdir(f->s, "B", &f->err));
	CHECK(f, snap_store_mkdir(f->s, "a", &f->err));
	CHECK(f, snap_store_mkdir(f->s, ".hidden name", &f->err));
	for (const char *const *n = (const char *const[]){ "z", "m", "a1", "a",
			"M", "x.tmp-0badf00d", NULL }; *n; n++) {
		snprintf(path, sizeof(path), "a/%s", *n);
		CHECK(f, snap_store_link(f->s, path, y, &f->err));
	}
	expect_list(f, NULL, ".hidden name B a empty snap2");
	expect_list(f, "a", "M a a1 m x.tmp-0badf00d z");
	expect_list(f, "B", "");
	assert_int_equal(snap_store_list(f->s, "a", list_one, &l, &f->err), 42);
	assert_int_equal(l.n, 2);
	EXPECT_ERR(f, -ENOENT, snap_store_list(f->s, "none", list_one, &l,
					       &f->err));
	fx_stats(f, &st);
	assert_int_equal(st.snapshots, 5);
	assert_int_equal(st.files, 8);
	assert_int_equal(st.images, 2);
	assert_int_equal(fx_nlink(f, "a/z", y), 6);

	/* All of it survives a reopen. */
	fx_reopen(f);
	expect_list(f, NULL, ".hidden name B a empty snap2");
	expect_list(f, "a", "M a a1 m x.tmp-0badf00d z");
	assert_int_equal(fx_nlink(f, "empty/h", x), 2);
	assert_int_equal(fx_nlink(f, "a/M", y), 6);

	/* Emptied, a snapshot goes. */
	CHECK(f, snap_store_unlink(f->s, "empty/h", &f->err));
	assert_int_equal(fx_nlink(f, "snap2/y", x), 1);
	CHECK(f, snap_store_rmdir(f->s, "empty", &f->err));
	expect_list(f, NULL, ".hidden name B a snap2");
	fx_verify_clean(f, "after names");
}

/* ==== 6. corruption ========================================================= */

/* Expect a read of chunk index at to be -EIO naming the image and offset. */
static void expect_eio(struct fx *f, struct snap_image *img,
		       const uint8_t id[SNAP_ID_LEN], unsigned at,
		       const char *what)
{
	char hex[2 * SNAP_ID_LEN + 1], dec[32], hx[32];
	uint8_t *buf = malloc(2 * CHUNK);
	ssize_t n;

	snap_id_hex(id, hex);
	snprintf(dec, sizeof(dec), "%" PRIu64, (uint64_t)at * CHUNK);
	snprintf(hx, sizeof(hx), "%#" PRIx64, (uint64_t)at * CHUNK);
	f->err.msg[0] = '\0';
	n = snap_image_read(img, buf, CHUNK, (uint64_t)at * CHUNK, &f->err);
	if (n != -EIO)
		fail_msg("%s: read of the chunk: %zd, expected -EIO: %s", what,
			 n, f->err.msg);
	if (!strstr(f->err.msg, hex) ||
	    (!strstr(f->err.msg, dec) && !strstr(f->err.msg, hx)))
		fail_msg("%s: \"%s\" does not name image %s and offset %s",
			 what, f->err.msg, hex, dec);
	/* A read that starts in a sound chunk is not short: -EIO too. */
	n = snap_image_read(img, buf, CHUNK + 10, (uint64_t)at * CHUNK - CHUNK,
			    &f->err);
	if (n != -EIO)
		fail_msg("%s: read across the chunk: %zd, expected -EIO", what,
			 n);
	free(buf);
}

static void expect_verify_bad(struct fx *f, uint64_t chunks,
			      const char *what)
{
	struct snap_verify_stats vs;
	struct lines l = { 0 };
	int ret;

	memset(&vs, 0xa5, sizeof(vs));
	ret = snap_store_verify(f->s, &vs, collect_line, &l, &f->err);
	if (ret != -EBADMSG || vs.bad != 1 || (chunks && vs.chunks != chunks) ||
	    vs.images != 1 || l.n < 1)
		fail_msg("%s: verify %d, %" PRIu64 " of %" PRIu64 " chunks bad,"
			 " %" PRIu64 " images, %d lines, expected -EBADMSG, 1 "
			 "of %" PRIu64 ", 1, 1 or more", what, ret, vs.bad,
			 vs.chunks, vs.images, l.n, chunks);
}

static void test_corrupt_chunk(void **state)
{
	struct fx *f = *state;
	static const unsigned victims[] = { 1, 3 };	/* random, text */
	uint8_t id[SNAP_ID_LEN], key[2][SNAP_KEY_LEN], *buf = malloc(CHUNK);
	struct model m = { 0 };
	struct snap_image *img;
	char what[96];

	img = fx_new(f, "s/c", 4 * CHUNK, id);
	model_truncate(&m, 4 * CHUNK);
	fill_random(buf, CHUNK, 80);
	img_write(f, img, &m, buf, CHUNK, CHUNK);
	snap_sha256(buf, CHUNK, key[0]);
	fill_text(buf, CHUNK, 81);
	img_write(f, img, &m, buf, CHUNK, 3 * CHUNK);
	snap_sha256(buf, CHUNK, key[1]);
	fx_close_img(f, img);
	fx_reopen(f);		/* closed and synced at store close */
	assert_int_equal(fx_stored(f), 2);
	/* Keyed by the SHA-256 of their bytes (dir: chunks/ab/<hex>). */
	assert_true(fx_has_chunk(f, key[0]));
	assert_true(fx_has_chunk(f, key[1]));
	fx_verify_clean(f, "before corruption");

	for (int v = 0; v < 2; v++) {
		size_t len = fx_chunk_len(f, key[v]);
		size_t at[] = { 0, 3, 4, 5, 7, 8, 11, 12, 15, 16, 17,
				len / 2, len - 1 };

		for (size_t i = 0; i < sizeof(at) / sizeof(*at); i++) {
			fx_flip_chunk(f, key[v], at[i], true);
			fx_reopen(f);
			snprintf(what, sizeof(what), "chunk %u, byte %zu of %zu "
				 "flipped", victims[v], at[i], len);
			img = fx_open_id(f, id, 0);
			expect_eio(f, img, id, victims[v], what);
			/* the other chunk and the holes still read */
			{
				struct model mm = { 0 };
				uint64_t other = victims[1 - v] * CHUNK;

				model_truncate(&mm, CHUNK);
				assert_int_equal(snap_image_read(img, buf, CHUNK,
								 other,
								 &f->err),
						 CHUNK);
				assert_memory_equal(buf, m.b + other, CHUNK);
				assert_int_equal(snap_image_read(img, buf, CHUNK,
								 2 * CHUNK,
								 &f->err),
						 CHUNK);
				assert_memory_equal(buf, mm.b, CHUNK);
				model_free(&mm);
			}
			fx_close_img(f, img);
			expect_verify_bad(f, 2, what);
			fx_flip_chunk(f, key[v], at[i], false);
		}
	}
	fx_reopen(f);
	fx_verify_clean(f, "repaired");
	img = fx_open_id(f, id, 0);
	expect_content(f, img, &m, "repaired");
	fx_close_img(f, img);

	/* A missing chunk is the same. */
	fx_del_chunk(f, key[0]);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	expect_eio(f, img, id, victims[0], "a deleted chunk");
	fx_close_img(f, img);
	expect_verify_bad(f, 0, "a deleted chunk");	/* checked: 1 or 2 */
	model_free(&m);
	free(buf);
}

struct meta_file {
	char path[4096];
};

/* Every file under the store but its chunks. */
static void list_meta(const char *dir, const char *rel,
		      struct meta_file *files, int *n, int max)
{
	char path[4096], sub[4096];
	struct dirent *e;
	struct stat st;
	DIR *d;

	snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "", rel);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    (!*rel && !strcmp(e->d_name, "chunks")))
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "",
			 e->d_name);
		if (snprintf(path, sizeof(path), "%s/%s", dir, sub) >=
		    (int)sizeof(path))
			abort();
		assert_int_equal(lstat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			list_meta(dir, sub, files, n, max);
		} else if (S_ISREG(st.st_mode) && st.st_size > 0) {
			assert_true(*n < max);
			snprintf(files[(*n)++].path, sizeof(files[0].path),
				 "%s", sub);
		}
	}
	closedir(d);
}

/*
 * Open the store, both names, read both images whole. Returns 0 when all of
 * it worked and the bytes are right, a negative errno (with a message) when
 * something refused, 1 (saying so in wrong) on wrong bytes.
 */
static int read_all_names(struct fx *f, const char *const names[2],
			  struct model m[2], const char *what, char *wrong)
{
	uint8_t *buf = malloc(m[0].size + m[1].size);
	int ret = fx_open(f);

	for (int i = 0; !ret && i < 2; i++) {
		struct snap_image *img = NULL;
		uint8_t id[SNAP_ID_LEN];
		unsigned nlink;
		ssize_t n = 0;

		ret = snap_store_lookup(f->s, names[i], id, &nlink, &f->err);
		if (!ret)
			ret = snap_image_open(f->s, id, 0, &img, &f->err);
		if (!ret) {
			struct snap_image_stat st;

			snap_image_stat(img, &st);
			n = snap_image_read(img, buf, m[i].size, 0, &f->err);
			if (n >= 0 && (st.size != m[i].size ||
				       n != (ssize_t)m[i].size ||
				       memcmp(buf, m[i].b, m[i].size))) {
				snprintf(wrong, SNAP_ERR_MAX, "%s: %s: wrong "
					 "content (size %" PRIu64 ", read %zd)",
					 what, names[i], st.size, n);
				n = 1;
			}
			ret = (int)(n < 0 ? n : n == 1);
			snap_image_close(img, NULL);
		}
	}
	if (ret < 0 && !f->err.msg[0])
		fail_msg("%s: %d without a message", what, ret);
	free(buf);
	fx_close(f);
	return ret;
}

/*
 * Flip bytes of every metadata file (store.bin, images, deltas, names):
 * the store refuses cleanly or reads the right bytes; never wrong bytes,
 * never a crash (ASan).
 */
static void test_corrupt_meta(void **state)
{
	struct fx *f = *state;
	static const char *const names[2] = { "s/m", "s/n" };
	struct model m[2] = { { 0 } };
	uint8_t id[2][SNAP_ID_LEN];
	struct meta_file files[64];
	struct snap_image *a, *b;
	int n = 0, refused = 0, silent = 0, wrong = 0;
	char what[4200], msg[SNAP_ERR_MAX], report[8192] = "";
	char first_wrong[SNAP_ERR_MAX] = "";
	char *store_dir = f->dir;
	const uint64_t c = SNAP_CHUNK_MIN;	/* small chunks read fast */

	/* A store of its own, with two images, three deltas, a clone. */
	fx_close(f);
	if (asprintf(&f->dir, "%s/meta", f->tmp) < 0)
		abort();
	CHECK(f, snap_store_init(f->dir, SNAP_CHUNK_MIN, &f->err));
	CHECK(f, fx_open(f));
	a = fx_new(f, names[0], 4 * c, id[0]);
	model_truncate(&m[0], 4 * c);
	img_fill(f, a, &m[0], c, 0, 90);
	CHECK(f, snap_image_sync(a, &f->err));
	img_fill(f, a, &m[0], 100, 2 * c + 5, 91);
	CHECK(f, snap_image_sync(a, &f->err));
	CHECK(f, snap_image_clone(f->s, id[0], id[1], &f->err));
	CHECK(f, snap_store_link(f->s, names[1], id[1], &f->err));
	b = fx_open_id(f, id[1], SNAP_IMAGE_WRITE);
	model_copy(&m[1], &m[0]);
	img_fill(f, b, &m[1], 10, c + 7, 92);
	CHECK(f, snap_image_sync(b, &f->err));
	img_fill(f, a, &m[0], 10, 3 * c + 7, 93);
	CHECK(f, snap_image_sync(a, &f->err));
	fx_close_img(f, a);
	fx_close_img(f, b);
	fx_close(f);

	list_meta(f->dir, "", files, &n, 64);
	assert_true(n >= 6);	/* store.bin, 2 images, 3 deltas, ... */
	f->opts.flags = SNAP_STORE_RDONLY;
	assert_int_equal(read_all_names(f, names, m, "intact", msg), 0);
	for (int i = 0; i < n; i++) {
		size_t len, first = 0, last = 0, nwrong = 0;
		char path[8192];
		uint8_t *orig;

		if (snprintf(path, sizeof(path), "%s/%s", f->dir,
			     files[i].path) >= (int)sizeof(path))
			abort();
		orig = test_read_file(path, &len);
		for (size_t at = 0; at < len; at++) {
			int ret;

			xor_byte(path, at, 0x5a);
			if (snprintf(what, sizeof(what), "%s: byte %zu of "
				     "%zu flipped", files[i].path, at, len) < 0)
				abort();
			ret = read_all_names(f, names, m, what, msg);
			xor_byte(path, at, 0x5a);
			refused += ret < 0;
			silent += ret == 0;
			if (ret == 1 && !first_wrong[0])
				memcpy(first_wrong, msg, sizeof(msg));
			if (ret == 1 && !nwrong++)
				first = at;
			if (ret == 1)
				last = at;
		}
		if (nwrong) {
			char line[4400], frames[96] = "";

			/* where its frames start (proto/store.proto) */
			for (size_t o = 0; o + 40 <= len;
			     o += 40 + (orig[o + 4] | orig[o + 5] << 8 |
					orig[o + 6] << 16 |
					(size_t)orig[o + 7] << 24)) {
				snprintf(line, sizeof(line), "%s%zu",
					 *frames ? "," : "", o);
				strncat(frames, line, sizeof(frames) -
					strlen(frames) - 1);
			}
			if (snprintf(line, sizeof(line), "\n  %s (%zu bytes, "
				     "frames at %s): %zu flips read wrong, "
				     "bytes %zu..%zu", files[i].path, len,
				     frames, nwrong, first, last) < 0)
				abort();
			strncat(report, line, sizeof(report) -
				strlen(report) - 1);
			wrong += (int)nwrong;
		}
		test_write_file(path, orig, len);
		free(orig);
	}
	print_message("# %d metadata files, %d flips refused, %d read right, "
		      "%d read wrong\n", n, refused, silent, wrong);
	if (wrong)
		fail_msg("%d flips read wrong bytes without an error (the "
			 "first: %s):%s", wrong, first_wrong, report);
	assert_true(refused > 0);
	f->opts.flags = 0;
	CHECK(f, fx_open(f));
	fx_verify_clean(f, "metadata restored");
	fx_close(f);
	free(f->dir);
	f->dir = store_dir;
	CHECK(f, fx_open(f));
	model_free(&m[0]);
	model_free(&m[1]);
}

/* ==== 7. gc ================================================================= */

static void test_gc(void **state)
{
	struct fx *f = *state;
	struct model mx = { 0 }, my = { 0 }, mz = { 0 }, mp = { 0 };
	uint8_t idx[SNAP_ID_LEN], idy[SNAP_ID_LEN], idz[SNAP_ID_LEN];
	uint8_t idp[SNAP_ID_LEN], idq[SNAP_ID_LEN];
	struct snap_store_stats st;
	struct snap_gc_stats gs;
	struct snap_image *img, *zr;

	/* x: U1 S, y: U2 S, z: U3, p: U4 and its clone q */
	img = fx_new(f, "s/x", 2 * CHUNK, idx);
	img_fill(f, img, &mx, CHUNK, 0, 101);
	img_fill(f, img, &mx, CHUNK, CHUNK, 100);
	fx_close_img(f, img);
	img = fx_new(f, "s/y", 2 * CHUNK, idy);
	img_fill(f, img, &my, CHUNK, 0, 102);
	img_fill(f, img, &my, CHUNK, CHUNK, 100);
	fx_close_img(f, img);
	img = fx_new(f, "s/z", CHUNK, idz);
	img_fill(f, img, &mz, CHUNK, 0, 103);
	fx_close_img(f, img);
	img = fx_new(f, "s/p", CHUNK, idp);
	img_fill(f, img, &mp, CHUNK, 0, 104);
	fx_close_img(f, img);
	CHECK(f, snap_image_clone(f->s, idp, idq, &f->err));
	CHECK(f, snap_store_link(f->s, "s/q", idq, &f->err));
	fx_reopen(f);
	fx_stats(f, &st);
	assert_int_equal(st.chunks, 5);
	assert_int_equal(fx_stored(f), 5);

	/* Nothing unnamed yet: gc frees nothing. */
	memset(&gs, 0xa5, sizeof(gs));
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.chunks, 0);
	assert_int_equal(gs.images, 0);
	assert_int_equal(gs.deltas, 0);
	assert_int_equal(gs.bytes, 0);

	zr = fx_open_id(f, idz, 0);
	CHECK(f, snap_store_unlink(f->s, "s/x", &f->err));
	CHECK(f, snap_store_unlink(f->s, "s/z", &f->err));
	CHECK(f, snap_store_unlink(f->s, "s/p", &f->err));
	fx_stats(f, &st);
	assert_int_equal(st.files, 2);
	assert_int_equal(st.images, 2);
	assert_int_equal(st.chunks, 3);	/* U2 S U4 */

	/* x goes with U1; z is open; p's chunk is q's. */
	memset(&gs, 0xa5, sizeof(gs));
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.chunks, 1);
	assert_true(gs.bytes > 0 && gs.bytes < 2 * CHUNK);
	assert_int_equal(gs.images, 2);
	assert_int_equal(gs.deltas, 2);
	assert_int_equal(fx_stored(f), 4);
	img = fx_open_id(f, idy, 0);
	expect_content(f, img, &my, "y, its chunk shared with a freed image");
	fx_close_img(f, img);
	img = fx_open_name(f, "s/q", 0);
	expect_content(f, img, &mp, "q, clone of a freed image");
	fx_close_img(f, img);
	expect_content(f, zr, &mz, "z, unlinked but open, after gc");
	fx_verify_clean(f, "after gc");
	EXPECT_ERR(f, -ENOENT, snap_image_open(f->s, idx, 0, &img, &f->err));

	/* Closed, z goes too. */
	fx_close_img(f, zr);
	memset(&gs, 0xa5, sizeof(gs));
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.chunks, 1);
	assert_int_equal(gs.images, 1);
	assert_int_equal(gs.deltas, 1);
	assert_int_equal(fx_stored(f), 3);
	fx_stats(f, &st);
	assert_int_equal(st.chunks, 3);
	assert_int_equal(st.garbage_chunks, 0);
	assert_int_equal(st.garbage_bytes, 0);
	memset(&gs, 0xa5, sizeof(gs));
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.chunks + gs.images + gs.deltas + gs.bytes, 0);

	fx_reopen(f);
	img = fx_open_name(f, "s/y", 0);
	expect_content(f, img, &my, "y, reopened after gc");
	fx_close_img(f, img);
	img = fx_open_name(f, "s/q", 0);
	expect_content(f, img, &mp, "q, reopened after gc");
	fx_close_img(f, img);
	fx_verify_clean(f, "reopened after gc");
	model_free(&mx);
	model_free(&my);
	model_free(&mz);
	model_free(&mp);
}

/* One writer process, readers beside it; gc wants the store alone. */
static void test_processes(void **state)
{
	struct fx *f = *state;
	struct snap_gc_stats gs;
	int to_child[2], to_parent[2], status;
	char c;
	pid_t pid;

	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct snap_store_opts ro = { .flags = SNAP_STORE_RDONLY };
		struct snap_store *s = NULL;
		uint8_t id[SNAP_ID_LEN];
		int ret;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* A second writer is refused, a reader is not. */
		ret = snap_store_open(f->dir, NULL, &s, NULL);
		c = ret < 0 ? 'r' : 'W';
		if (!ret)
			snap_store_close(s);
		if (write(to_parent[1], &c, 1) != 1)
			_exit(1);
		ret = snap_store_open(f->dir, &ro, &s, NULL);
		c = ret ? 'R' : 'o';
		if (!ret && snap_image_create(s, CHUNK, id, NULL) >= 0)
			c = 'C';	/* created in a read-only store */
		if (write(to_parent[1], &c, 1) != 1 ||
		    read(to_child[0], &c, 1) != 1)
			_exit(1);
		snap_store_close(s);
		_exit(0);
	}
	assert_int_equal(read(to_parent[0], &c, 1), 1);
	if (c != 'r')
		fail_msg("a second process opened the store for writing");
	assert_int_equal(read(to_parent[0], &c, 1), 1);
	if (c != 'o')
		fail_msg("a reader beside the writer: %s", c == 'R' ?
			 "refused" : "created an image");
	EXPECT_ERR(f, -EBUSY, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(write(to_child[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
}

/* ==== 8. a writer killed at random ========================================= */

#define CRASH_SIZE	(2u << 20)
#define CRASH_RUNS	10

enum { REC_START = 1, REC_DURABLE = 2 };

struct rec {
	uint32_t kind;
	uint32_t seq;		/* of the write; DURABLE: every write to it */
	uint64_t off;
	uint32_t len;
	uint32_t seed;
};

static void put_rec(int fd, const struct rec *r)
{
	if (write(fd, r, sizeof(*r)) != (ssize_t)sizeof(*r))
		_exit(20);
}

/* The child: write at random, sync now and then, say what is durable. */
static void crash_child(const char *dir, int fd, uint64_t seed)
{
	struct snap_store *s = NULL;
	struct snap_image *img = NULL;
	uint8_t id[SNAP_ID_LEN], *buf = malloc(2 * CHUNK);
	uint64_t x = rnd_init(seed);
	unsigned nlink;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!buf || snap_store_open(dir, NULL, &s, NULL) ||
	    snap_store_lookup(s, "s/img", id, &nlink, NULL) ||
	    snap_image_open(s, id, SNAP_IMAGE_WRITE, &img, NULL))
		_exit(10);
	for (uint32_t seq = 1; seq < 1000000; seq++) {
		struct rec r = { REC_START, seq, 0, 0, (uint32_t)rnd(&x) };
		uint64_t v = rnd(&x);

		if (v & 1) {
			r.off = (v >> 8) % (CRASH_SIZE / CHUNK) * CHUNK;
			r.len = CHUNK * (1 + (v >> 40) % 2);
		} else {
			r.off = (v >> 8) % CRASH_SIZE;
			r.len = 1 + (v >> 40) % (2 * CHUNK);
		}
		if (r.len > CRASH_SIZE - r.off)
			r.len = CRASH_SIZE - r.off;
		put_rec(fd, &r);
		fill_random(buf, r.len, r.seed);
		if (snap_image_write(img, buf, r.len, r.off, NULL) !=
		    (ssize_t)r.len)
			_exit(11);
		if (rnd(&x) % 4 == 0) {
			if (snap_image_sync(img, NULL))
				_exit(12);
			r.kind = REC_DURABLE;
			put_rec(fd, &r);
		}
	}
	pause();
	_exit(13);
}

/* Read records from fd into *recs until the deadline (or EOF: -1). */
static void drain(int fd, struct rec **recs, size_t *n, size_t *cap,
		  int timeout_ms)
{
	struct timespec t0, t;
	struct pollfd p = { fd, POLLIN, 0 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left = timeout_ms;
		ssize_t k;

		if (timeout_ms >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			left = timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 +
						 (t.tv_nsec - t0.tv_nsec) /
						 1000000);
			if (left <= 0)
				return;
		}
		if (poll(&p, 1, left) <= 0)
			continue;
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 1024;
			*recs = realloc(*recs, *cap * sizeof(**recs));
			assert_non_null(*recs);
		}
		k = read(fd, &(*recs)[*n], sizeof(**recs));
		if (k == 0)
			return;
		assert_int_equal(k, sizeof(**recs));
		(*n)++;
	}
}

static void test_crash(void **state)
{
	struct fx *f = *state;
	uint64_t x = rnd_init(2024), durable_total = 0, started_total = 0;
	uint64_t checked_total = 0;

	for (int run = 0; run < CRASH_RUNS; run++) {
		struct fx g = { .err = { "" } };
		uint32_t *last = calloc(CRASH_SIZE, sizeof(*last));
		uint8_t id[SNAP_ID_LEN], *img_bytes = malloc(CRASH_SIZE);
		uint8_t *data = malloc(2 * CHUNK);
		struct rec *recs = NULL;
		size_t n = 0, cap = 0, checked = 0;
		uint32_t durable = 0, nstart = 0;
		struct snap_image *img;
		int fds[2], status, delay = 3 + (int)(rnd(&x) % 300);
		char what[64];
		pid_t pid;

		assert_true(last && img_bytes && data);
		g.tmp = f->tmp;
		if (asprintf(&g.dir, "%s/crash%d", f->tmp, run) < 0)
			abort();
		CHECK(&g, snap_store_init(g.dir, CHUNK, &g.err));
		CHECK(&g, fx_open(&g));
		img = fx_new(&g, "s/img", CRASH_SIZE, id);
		fx_close_img(&g, img);
		fx_close(&g);

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(g.dir, fds[1], rnd(&x));
		}
		close(fds[1]);
		drain(fds[0], &recs, &n, &cap, delay);
		kill(pid, SIGKILL);
		drain(fds[0], &recs, &n, &cap, -1);
		close(fds[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("run %d: the writer ended on its own (status "
				 "%#x)", run, status);

		/* Which write last touched each byte, which are durable. */
		for (size_t i = 0; i < n; i++) {
			if (recs[i].kind == REC_DURABLE) {
				durable = recs[i].seq;
				continue;
			}
			assert_int_equal(recs[i].seq, ++nstart);
			for (uint64_t b = recs[i].off;
			     b < recs[i].off + recs[i].len; b++)
				last[b] = recs[i].seq;
		}

		/* Reopened: durable bytes are there, unwritten ones zero. */
		CHECK(&g, fx_open(&g));
		img = fx_open_name(&g, "s/img", SNAP_IMAGE_WRITE);
		assert_int_equal(img_size(img), CRASH_SIZE);
		{
			ssize_t k = snap_image_read(img, img_bytes, CRASH_SIZE,
						    0, &g.err);

			if (k != CRASH_SIZE)
				fail_msg("run %d: read after the crash: %zd: %s",
					 run, k, g.err.msg);
		}
		for (uint64_t b = 0; b < CRASH_SIZE; b++)
			if (!last[b] && img_bytes[b])
				fail_msg("run %d: byte %" PRIu64 " never "
					 "written, reads %#x", run, b,
					 img_bytes[b]);
		for (size_t i = 0; i < n; i++) {
			const struct rec *r = &recs[i];

			if (r->kind != REC_START || r->seq > durable)
				continue;
			fill_random(data, r->len, r->seed);
			for (uint64_t b = r->off; b < r->off + r->len; b++) {
				if (last[b] != r->seq)
					continue;
				checked++;
				if (img_bytes[b] != data[b - r->off])
					fail_msg("run %d (killed after %d ms, "
						 "%u writes, %u durable): byte "
						 "%" PRIu64 " of durable write "
						 "%u reads %#x, expected %#x",
						 run, delay, nstart, durable, b,
						 r->seq, img_bytes[b],
						 data[b - r->off]);
			}
		}
		durable_total += durable;
		started_total += nstart;
		checked_total += checked;
		snprintf(what, sizeof(what), "run %d, after the crash", run);
		fx_verify_clean(&g, what);

		/* The store takes writes again after the crash. */
		fill_random(data, CHUNK + 10, 999);
		img_write(&g, img, NULL, data, CHUNK + 10, CHUNK - 5);
		CHECK(&g, snap_image_sync(img, &g.err));
		fx_close_img(&g, img);
		fx_close(&g);
		CHECK(&g, fx_open(&g));
		img = fx_open_name(&g, "s/img", 0);
		assert_int_equal(snap_image_read(img, img_bytes, CHUNK + 10,
						 CHUNK - 5, &g.err),
				 CHUNK + 10);
		assert_memory_equal(img_bytes, data, CHUNK + 10);
		fx_close_img(&g, img);
		snprintf(what, sizeof(what), "run %d, written after the crash",
			 run);
		fx_verify_clean(&g, what);
		fx_close(&g);
		test_rmtree(g.dir);
		free(g.dir);
		free(recs);
		free(last);
		free(img_bytes);
		free(data);
	}
	print_message("# %d kills: %" PRIu64 " writes started, %" PRIu64
		      " durable, %" PRIu64 " durable bytes checked\n",
		      CRASH_RUNS, started_total, durable_total, checked_total);
	assert_true(durable_total > 0 && checked_total > 0);
}

/* ==== 9. threads ============================================================ */

#define FIXED_CHUNKS	8
#define CONC_CHUNKS	16

struct conc {
	struct snap_image *img[4];	/* each reader's handle */
	struct snap_image *w;
	const uint8_t *fixed;		/* chunks 0..7, never written */
	atomic_bool stop;
	atomic_int failed;
	atomic_long reads, writes;
	char msg[256];
	pthread_mutex_t lock;
};

static void conc_fail(struct conc *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void conc_fail(struct conc *c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->lock);
	if (!c->failed++) {
		va_start(ap, fmt);
		vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&c->lock);
}

struct reader {
	struct conc *c;
	int i;
};

static void *conc_reader(void *arg)
{
	struct reader *r = arg;
	struct conc *c = r->c;
	uint8_t *buf = malloc(2 * CHUNK);
	uint64_t x = rnd_init(200 + r->i);
	struct snap_err err;

	while (!c->stop && !c->failed) {
		uint64_t off = rnd(&x) % (FIXED_CHUNKS * CHUNK);
		size_t len = 1 + rnd(&x) % (2 * CHUNK);
		ssize_t n;

		if (len > FIXED_CHUNKS * CHUNK - off)
			len = FIXED_CHUNKS * CHUNK - off;
		n = snap_image_read(c->img[r->i], buf, len, off, &err);
		if (n != (ssize_t)len)
			conc_fail(c, "reader %d: read %zu at %" PRIu64 ": %zd: "
				  "%s", r->i, len, off, n, err.msg);
		else if (memcmp(buf, c->fixed + off, len))
			conc_fail(c, "reader %d: wrong bytes in %zu at %" PRIu64,
				  r->i, len, off);
		c->reads++;
	}
	free(buf);
	return NULL;
}

static void *conc_writer(void *arg)
{
	struct conc *c = arg;
	const uint64_t base = FIXED_CHUNKS * CHUNK;
	const size_t span = (CONC_CHUNKS - FIXED_CHUNKS) * CHUNK;
	uint8_t *mine = calloc(1, span), *buf = malloc(span);
	uint64_t x = rnd_init(300);
	struct snap_err err;

	while (!c->stop && !c->failed) {
		uint64_t off = rnd(&x) % span;
		size_t len = 1 + rnd(&x) % (2 * CHUNK);
		ssize_t n;

		if (len > span - off)
			len = span - off;
		fill_random(mine + off, len, rnd(&x));
		n = snap_image_write(c->w, mine + off, len, base + off, &err);
		if (n != (ssize_t)len)
			conc_fail(c, "writer: write %zu at %" PRIu64 ": %zd: %s",
				  len, base + off, n, err.msg);
		n = snap_image_read(c->w, buf, span, base, &err);
		if (n != (ssize_t)span || memcmp(buf, mine, span))
			conc_fail(c, "writer: its region reads wrong (%zd)", n);
		if (++c->writes % 16 == 0 && snap_image_sync(c->w, &err))
			conc_fail(c, "writer: sync: %s", err.msg);
	}
	free(buf);
	free(mine);
	return NULL;
}

static void test_threads(void **state)
{
	struct fx *f = *state;
	struct conc c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct model m = { 0 };
	struct reader r[4];
	pthread_t t[5];
	uint8_t id[SNAP_ID_LEN];

	f->opts.cache_bytes = 4 * CHUNK;
	fx_reopen(f);
	c.w = fx_new(f, "s/t", CONC_CHUNKS * CHUNK, id);
	img_fill(f, c.w, &m, FIXED_CHUNKS * CHUNK, 0, 400);
	CHECK(f, snap_image_sync(c.w, &f->err));
	c.fixed = m.b;
	/* Two readers share the writer's handle, two have their own. */
	c.img[0] = c.img[1] = c.w;
	c.img[2] = fx_open_id(f, id, 0);
	c.img[3] = fx_open_id(f, id, 0);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct reader){ &c, i };
		assert_int_equal(pthread_create(&t[i], NULL, conc_reader,
						&r[i]), 0);
	}
	assert_int_equal(pthread_create(&t[4], NULL, conc_writer, &c), 0);
	usleep(1200 * 1000);
	c.stop = true;
	for (int i = 0; i < 5; i++)
		pthread_join(t[i], NULL);
	if (c.failed)
		fail_msg("%d failures, the first: %s", c.failed, c.msg);
	print_message("# %ld reads, %ld writes\n", (long)c.reads,
		      (long)c.writes);
	assert_true(c.reads > 0 && c.writes > 0);
	fx_close_img(f, c.img[2]);
	fx_close_img(f, c.img[3]);
	fx_close_img(f, c.w);
	model_free(&m);
}

/* ==== 10. a small cache ===================================================== */

static void test_small_cache(void **state)
{
	struct fx *f = *state;
	const uint64_t size = 64 * CHUNK;
	struct snap_image_stat st;
	struct model m = { 0 };
	struct snap_image *img;
	uint8_t id[SNAP_ID_LEN], *buf = malloc(10000);
	uint64_t r1;

	f->opts.cache_bytes = 2 * CHUNK;
	f->opts.dirty_bytes = 2 * CHUNK;
	fx_reopen(f);
	img = fx_new(f, "s/big", size, id);
	/* More than dirty_bytes written before a sync. */
	for (uint64_t off = 0; off < size; off += 3 * CHUNK + 1)
		img_fill(f, img, &m, off + 3 * CHUNK + 1 > size ?
			 size - off : 3 * CHUNK + 1, off, 500 + off);
	expect_content(f, img, &m, "written past the dirty bound");
	fx_close_img(f, img);
	fx_reopen(f);

	img = fx_open_id(f, id, 0);
	snap_image_stat(img, &st);
	assert_int_equal(st.resident, 0);
	for (uint64_t off = 0; off < size; off += 10000) {
		size_t len = size - off < 10000 ? size - off : 10000;

		assert_int_equal(snap_image_read(img, buf, len, off, &f->err),
				 len);
		if (memcmp(buf, m.b + off, len))
			fail_msg("sequential read at %" PRIu64 " wrong", off);
	}
	snap_image_stat(img, &st);
	r1 = st.resident;
	if (r1 < 64)
		fail_msg("resident %" PRIu64 " after reading 64 chunks", r1);
	expect_content(f, img, &m, "read again with a small cache");
	/* resident counts distinct chunks: reading them again adds none */
	snap_image_stat(img, &st);
	if (st.resident != r1)
		fail_msg("resident %" PRIu64 " after reading the same 64 chunks "
			 "again, %" PRIu64 " before", st.resident, r1);
	fx_close_img(f, img);
	model_free(&m);
	free(buf);
}

/* ==== 11. copy_range ======================================================== */

static void copy(struct fx *f, struct snap_image *src, struct model *ms,
		 uint64_t soff, struct snap_image *dst, struct model *md,
		 uint64_t doff, size_t len, ssize_t want)
{
	ssize_t n = snap_image_copy_range(src, soff, dst, doff, len, &f->err);

	if (n != want)
		fail_msg("copy_range %" PRIu64 " -> %" PRIu64 ", %zu: %zd, "
			 "expected %zd: %s", soff, doff, len, n, want,
			 f->err.msg);
	model_write(md, ms->b + soff, (size_t)want, doff);
}

static void test_copy_range(void **state)
{
	struct fx *f = *state;
	const uint64_t ssize = 8 * CHUNK + 500;
	struct model ms = { 0 }, md = { 0 };
	uint8_t ids[SNAP_ID_LEN], idd[SNAP_ID_LEN];
	struct snap_store_stats s0, s1;
	struct snap_image_stat st;
	struct snap_image *src, *srw, *dst;

	srw = fx_new(f, "s/src", ssize, ids);
	img_fill(f, srw, &ms, ssize, 0, 600);
	dst = fx_new(f, "s/dst", 8 * CHUNK, idd);
	model_truncate(&md, 8 * CHUNK);
	img_fill(f, dst, &md, CHUNK, 7 * CHUNK, 601);
	CHECK(f, snap_image_sync(srw, &f->err));
	CHECK(f, snap_image_sync(dst, &f->err));
	fx_stats(f, &s0);
	src = fx_open_id(f, ids, 0);	/* a reader can be a source */

	/* Aligned, and running to src's end: shared, no new chunk. */
	copy(f, src, &ms, 2 * CHUNK, dst, &md, 4 * CHUNK, 3 * CHUNK, 3 * CHUNK);
	copy(f, src, &ms, 7 * CHUNK, dst, &md, 9 * CHUNK, CHUNK + 500,
	     CHUNK + 500);
	expect_content(f, dst, &md, "aligned copies");
	CHECK(f, snap_image_sync(dst, &f->err));
	fx_stats(f, &s1);
	assert_int_equal(s1.chunks, s0.chunks);
	assert_int_equal(s1.stored_bytes, s0.stored_bytes);
	snap_image_stat(dst, &st);
	assert_int_equal(st.chunks, model_chunks(&md));

	/* Unaligned: bytes. */
	copy(f, src, &ms, 100, dst, &md, 5000, 2 * CHUNK + 17, 2 * CHUNK + 17);
	copy(f, src, &ms, CHUNK, dst, &md, 6 * CHUNK, CHUNK / 2, CHUNK / 2);
	expect_content(f, dst, &md, "unaligned copies");

	/* Short at src's end; dst's bytes past the copy stay. */
	img_fill(f, dst, &md, 1000, 2 * CHUNK + 1000, 602);
	copy(f, src, &ms, 6 * CHUNK, dst, &md, 0, 4 * CHUNK, 2 * CHUNK + 500);
	copy(f, src, &ms, ssize, dst, &md, 0, CHUNK, 0);
	expect_content(f, dst, &md, "a copy cut short by src's end");

	/* Isolated both ways. */
	img_fill(f, srw, &ms, CHUNK, 2 * CHUNK, 603);
	img_fill(f, srw, &ms, 10, 7 * CHUNK + 3, 604);
	expect_content(f, dst, &md, "copy after writing its source");
	img_fill(f, dst, &md, CHUNK, 4 * CHUNK, 605);
	img_fill(f, dst, &md, 10, 9 * CHUNK + 3, 606);
	expect_content(f, src, &ms, "source after writing the copy");
	expect_content(f, srw, &ms, "source, its writer's handle");

	/* A read-only handle is no destination. */
	{
		ssize_t n = snap_image_copy_range(dst, 0, src, 0, CHUNK,
						  &f->err);

		if (n >= 0)
			fail_msg("copy_range into a read-only handle: %zd", n);
	}

	fx_close_img(f, src);
	fx_close_img(f, srw);
	fx_close_img(f, dst);
	fx_reopen(f);
	src = fx_open_name(f, "s/src", 0);
	dst = fx_open_name(f, "s/dst", 0);
	expect_content(f, src, &ms, "source, reopened");
	expect_content(f, dst, &md, "copy, reopened");
	fx_close_img(f, src);
	fx_close_img(f, dst);
	fx_verify_clean(f, "after copies");
	model_free(&ms);
	model_free(&md);
}

/* ==== the store itself, and the backends ====================================== */

static void test_init_open(void **state)
{
	struct fx *f = *state;
	static const uint32_t bad[] = { 0, 1000, SNAP_CHUNK_MIN / 2,
					SNAP_CHUNK_MAX * 2, 96u << 10 };
	struct snap_store *s = NULL;
	struct snap_image *img = NULL;
	struct model m = { 0 };
	char path[4096];
	uint8_t id[SNAP_ID_LEN];

	assert_string_equal(snap_store_path(f->s), f->dir);
	assert_int_equal(snap_store_chunk_size(f->s), CHUNK);
	/* Not into a store, nor any other non-empty directory. */
	f->err.msg[0] = '\0';
	assert_true(snap_store_init(f->dir, CHUNK, &f->err) < 0);
	assert_true(f->err.msg[0] != '\0');
	snprintf(path, sizeof(path), "%s/new", f->tmp);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		EXPECT_ERR(f, -EINVAL, snap_store_init(path, bad[i], &f->err));
	CHECK(f, snap_store_init(path, SNAP_CHUNK_MAX, &f->err));
	CHECK(f, snap_store_open(path, NULL, &s, &f->err));
	assert_int_equal(snap_store_chunk_size(s), SNAP_CHUNK_MAX);
	snap_store_close(s);
	snap_store_close(NULL);
	test_rmtree(path);
	CHECK(f, snap_store_init(path, SNAP_CHUNK_MIN, &f->err));
	test_rmtree(path);

	/* Not a store: refused. */
	EXPECT_ERR(f, -ENOENT, snap_store_open(path, NULL, &s, &f->err));
	assert_int_equal(mkdir(path, 0755), 0);
	f->err.msg[0] = '\0';
	assert_true(snap_store_open(path, NULL, &s, &f->err) < 0);
	assert_true(f->err.msg[0] != '\0');

	/* Read-only: reads, no writes. */
	img = fx_new(f, "s/r", CHUNK, id);
	img_fill(f, img, &m, 100, 5, 700);
	model_truncate(&m, CHUNK);
	fx_close_img(f, img);
	fx_close(f);
	f->opts.flags = SNAP_STORE_RDONLY;
	CHECK(f, fx_open(f));
	f->err.msg[0] = '\0';
	assert_true(snap_image_create(f->s, CHUNK, id, &f->err) < 0);
	assert_true(snap_store_mkdir(f->s, "t", &f->err) < 0);
	assert_true(snap_image_open(f->s, id, SNAP_IMAGE_WRITE, &img,
				    &f->err) < 0);
	img = fx_open_name(f, "s/r", 0);
	expect_content(f, img, &m, "read-only store");
	fx_close_img(f, img);
	snap_image_close(NULL, NULL);
	model_free(&m);
}

/* The store frees the backend it was given: at close, and on failure. */
static void test_backend_ownership(void **state)
{
	struct fx *f = *state;
	struct snap_store_opts o = { 0 };
	struct snap_backend b;
	struct snap_store *s = NULL;
	struct snap_image *img;
	uint8_t id[SNAP_ID_LEN];
	char path[4096];

	assert_int_equal(f->held.frees, 0);
	fx_close(f);
	assert_int_equal(f->held.frees, 1);
	snprintf(path, sizeof(path), "%s/none", f->tmp);
	f->b = (struct snap_backend){ &held_ops, &f->held };
	o.backend = &f->b;
	assert_true(snap_store_open(path, &o, &s, &f->err) < 0);
	assert_int_equal(f->held.frees, 2);
	/* snap_backend_mem itself (LeakSanitizer sees it is freed). */
	assert_int_equal(snap_backend_mem(&b), 0);
	o.backend = &b;
	CHECK(f, snap_store_open(f->dir, &o, &f->s, &f->err));
	img = fx_new(f, "s/m", 2 * CHUNK, id);
	img_fill(f, img, NULL, CHUNK + 10, 0, 800);
	fx_close_img(f, img);
	fx_close(f);	/* before b goes out of scope */
}

struct each_count {
	int n, stop_at;
	uint64_t bytes;
};

static int each_one(void *arg, const uint8_t key[SNAP_KEY_LEN],
		    uint64_t size)
{
	struct each_count *c = arg;

	c->n++;
	c->bytes += size;
	return c->n == c->stop_at ? 7 : 0;
}

/* backend.h's contract for b. */
static void backend_contract(struct snap_backend *b)
{
	uint8_t key[3][SNAP_KEY_LEN], buf[300], out[300];
	struct each_count c = { 0 };
	size_t len = 0;

	for (int i = 0; i < 3; i++)
		snap_sha256(&i, sizeof(i), key[i]);
	fill_random(buf, sizeof(buf), 900);
	assert_int_equal(b->ops->put(b->ctx, key[0], buf, 100), 0);
	assert_int_equal(b->ops->put(b->ctx, key[0], buf, 100), 0);
	assert_int_equal(b->ops->put(b->ctx, key[1], buf + 1, 200), 0);
	assert_int_equal(b->ops->put(b->ctx, key[2], buf, 0), 0);
	assert_int_equal(b->ops->has(b->ctx, key[0]), 1);
	assert_int_equal(b->ops->has(b->ctx, key[2]), 1);
	assert_int_equal(b->ops->get(b->ctx, key[1], out, 200, &len), 0);
	assert_int_equal(len, 200);
	assert_memory_equal(out, buf + 1, 200);
	assert_int_equal(b->ops->get(b->ctx, key[1], out, 199, &len), -EFBIG);
	assert_int_equal(b->ops->get(b->ctx, key[2], out, 10, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(b->ops->each(b->ctx, each_one, &c), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.bytes, 300);
	c = (struct each_count){ .stop_at = 2 };
	assert_int_equal(b->ops->each(b->ctx, each_one, &c), 7);
	assert_int_equal(c.n, 2);
	assert_int_equal(b->ops->sync(b->ctx), 0);
	assert_int_equal(b->ops->del(b->ctx, key[0]), 0);
	assert_int_equal(b->ops->del(b->ctx, key[0]), -ENOENT);
	assert_int_equal(b->ops->has(b->ctx, key[0]), 0);
	assert_int_equal(b->ops->get(b->ctx, key[0], buf, sizeof(buf), &len),
			 -ENOENT);
	c = (struct each_count){ 0 };
	assert_int_equal(b->ops->each(b->ctx, each_one, &c), 0);
	assert_int_equal(c.n, 2);
	if (b->ops->compact)
		assert_int_equal(b->ops->compact(b->ctx), 0);
	assert_int_equal(b->ops->get(b->ctx, key[1], out, 200, &len), 0);
	assert_memory_equal(out, buf + 1, 200);
}

/* For both backends, and the directory's two layouts. */
static void test_backend_contract(void **state)
{
	struct fx *f = *state;
	struct snap_backend b;
	char path[4096], file[8192], hex[2 * SNAP_KEY_LEN + 1];
	uint8_t key[SNAP_KEY_LEN];
	int one = 1;

	if (f->mem) {
		assert_int_equal(snap_backend_mem(&b), 0);
		backend_contract(&b);
		b.ops->free(b.ctx);
		return;
	}
	snprintf(path, sizeof(path), "%s/chunks2", f->tmp);
	EXPECT_ERR(f, -ENOENT, snap_backend_dir(path, 0, &b, &f->err));
	assert_int_equal(mkdir(path, 0755), 0);
	CHECK(f, snap_backend_dir(path, 0, &b, &f->err));
	backend_contract(&b);
	b.ops->free(b.ctx);
	snap_sha256(&one, sizeof(one), key);
	snap_hex(key, SNAP_KEY_LEN, hex);
	snprintf(file, sizeof(file), "%s/%.2s/%s", path, hex, hex);
	assert_int_equal(access(file, F_OK), 0);	/* a file each */

	snprintf(path, sizeof(path), "%s/chunks3", f->tmp);
	assert_int_equal(mkdir(path, 0755), 0);
	CHECK(f, snap_backend_dir(path, SNAP_BACKEND_PACKS, &b, &f->err));
	backend_contract(&b);
	b.ops->free(b.ctx);
	snprintf(file, sizeof(file), "%s/%.2s", path, hex);
	assert_int_equal(access(file, F_OK), -1);	/* in packs */
	assert_int_equal(test_count_entries(path), 1);
}

/*
 * A whole-file copy the kernel splits into pieces (at 4 GiB - 4 KiB, not
 * a chunk boundary) adopts piece by piece: every piece leaves the copy
 * exactly the bytes copied so far (the cut chunk's tail reads as zeros
 * when the file grows), costs at most the one chunk it cuts, and a
 * source written between pieces is copied as it is at each piece.
 */
/*
 * Another handle on the store (read-only, as another process would open
 * it) sees image id as len bytes of m.
 */
static void expect_on_disk(struct fx *f, const uint8_t id[SNAP_ID_LEN],
			   const struct model *m, uint64_t len)
{
	struct snap_store_opts o = { .flags = SNAP_STORE_RDONLY };
	struct model part = { 0 };
	struct snap_store *s2;
	struct snap_image *img;

	CHECK(f, snap_store_open(f->dir, &o, &s2, &f->err));
	CHECK(f, snap_image_open(s2, id, 0, &img, &f->err));
	model_truncate(&part, len);
	memcpy(part.b, m->b, (size_t)len);
	expect_content(f, img, &part, "on disk, between pieces");
	snap_image_close(img, NULL);
	snap_store_close(s2);
	model_free(&part);
}

static void test_copy_pieces(void **state)
{
	struct fx *f = *state;
	const uint64_t size = 300 * CHUNK + 1234;
	const size_t piece = 100 * CHUNK - 4096;
	struct model ms = { 0 }, md = { 0 }, me = { 0 };
	uint8_t sid[SNAP_ID_LEN], did[SNAP_ID_LEN], eid[SNAP_ID_LEN];
	struct snap_image *src, *dst, *e;
	struct snap_image_stat st;
	uint64_t off;

	src = fx_new(f, "c/src", size, sid);
	model_truncate(&ms, size);
	for (uint64_t i = 0; i < 300; i += 3)
		img_fill(f, src, &ms, CHUNK + 777, i * CHUNK + 5, 1500 + i);
	CHECK(f, snap_image_sync(src, &f->err));

	/* Piece by piece, as cp would: each piece adopts. */
	dst = fx_new(f, "c/dst", 0, did);
	for (off = 0; off < size; off += piece) {
		size_t len = size - off < piece ? (size_t)(size - off) : piece;

		copy(f, src, &ms, off, dst, &md, off, len, (ssize_t)len);
		snap_image_stat(dst, &st);
		assert_int_equal(st.size, off + len);
		if (st.own_chunks > 1)
			fail_msg("piece at %" PRIu64 ": %" PRIu64 " chunks of "
				 "its own, expected at most the one it cut",
				 off, st.own_chunks);
		/* What a crash would leave (the files as they are): the
		 * copy cut short at the first piece, exactly. */
		if (!f->mem && off == piece)
			expect_on_disk(f, did, &md, piece);
	}
	expect_content(f, dst, &md, "copied in pieces");
	snap_image_stat(dst, &st);
	assert_int_equal(st.own_chunks, 0);

	/* Cut short after one piece, then grown: zeros past the piece. */
	e = fx_new(f, "c/short", 0, eid);
	copy(f, src, &ms, 0, e, &me, 0, piece, (ssize_t)piece);
	CHECK(f, snap_image_truncate(e, size, &f->err));
	model_truncate(&me, size);
	expect_content(f, e, &me, "one piece, then grown");
	fx_close_img(f, e);

	/* The source written between pieces: each piece copies what is. */
	model_free(&md);
	fx_close_img(f, dst);
	CHECK(f, snap_store_unlink(f->s, "c/dst", &f->err));
	dst = fx_new(f, "c/dst2", 0, did);
	copy(f, src, &ms, 0, dst, &md, 0, piece, (ssize_t)piece);
	img_fill(f, src, &ms, 3 * CHUNK, piece + 10, 1600);
	img_fill(f, src, &ms, 100, 10, 1601);
	copy(f, src, &ms, piece, dst, &md, piece, piece, (ssize_t)piece);
	/* md: the first piece as it was before the writes */
	snap_image_stat(dst, &st);
	assert_int_equal(st.size, 2 * (uint64_t)piece);
	fx_close_img(f, dst);
	fx_close_img(f, src);
	fx_reopen(f);
	dst = fx_open_name(f, "c/dst2", 0);
	expect_content(f, dst, &md, "the source written between pieces");
	fx_close_img(f, dst);
	e = fx_open_name(f, "c/short", 0);
	expect_content(f, e, &me, "one piece, grown, reopened");
	fx_close_img(f, e);
	fx_verify_clean(f, "after the pieces");
	model_free(&ms);
	model_free(&md);
	model_free(&me);
}

/*
 * A copy taken after its source cut what the frozen delta below its head
 * holds, then read from the store afresh, keeps the cut. (A head with no
 * entries of its own was frozen as its parent, the cut with it, and the
 * source's old bytes showed through the copy after a reopen; snapfsx
 * found it.)
 */
static void test_copy_after_cut(void **state)
{
	struct fx *f = *state;
	const uint64_t size = 16 * CHUNK;
	struct model ms = { 0 }, m2 = { 0 }, mg = { 0 };
	uint8_t sid[SNAP_ID_LEN], id2[SNAP_ID_LEN], gid[SNAP_ID_LEN];
	struct snap_image *src, *c2, *g;

	src = fx_new(f, "k/f", size, sid);
	model_truncate(&ms, size);
	img_fill(f, src, &ms, size, 0, 4242);
	CHECK(f, snap_image_sync(src, &f->err));
	c2 = fx_new(f, "k/f2", 0, id2);		/* freezes src's head */
	copy(f, src, &ms, 0, c2, &m2, 0, size, (ssize_t)size);
	fx_close_img(f, c2);
	CHECK(f, snap_image_truncate(src, 0, &f->err));
	model_truncate(&ms, 0);
	fx_close_img(f, src);
	fx_reopen(f);

	src = fx_open_name(f, "k/f", SNAP_IMAGE_WRITE);
	CHECK(f, snap_image_truncate(src, size, &f->err));
	model_truncate(&ms, size);
	g = fx_new(f, "k/g", 0, gid);
	copy(f, src, &ms, 0, g, &mg, 0, size, (ssize_t)size);
	expect_content(f, g, &mg, "the copy as made");
	fx_close_img(f, g);
	fx_close_img(f, src);
	fx_reopen(f);

	g = fx_open_name(f, "k/g", 0);
	expect_content(f, g, &mg, "the copy read again: zeros");
	fx_close_img(f, g);
	c2 = fx_open_name(f, "k/f2", 0);
	expect_content(f, c2, &m2, "the first copy, untouched");
	fx_close_img(f, c2);
	fx_verify_clean(f, "after the copies");
	model_free(&ms);
	model_free(&m2);
	model_free(&mg);
}

/*
 * gc in the process that made an image and has not named it yet (a
 * daemon between its create and its link, or a clone and its link)
 * keeps it; once named and then unnamed, gc frees it.
 */
static void test_gc_fresh(void **state)
{
	struct fx *f = *state;
	struct model m = { 0 };
	uint8_t a[SNAP_ID_LEN], b[SNAP_ID_LEN], c[SNAP_ID_LEN];
	struct snap_gc_stats gs;
	struct snap_image *img;

	img = fx_new(f, "g/a", 4 * CHUNK, a);
	model_truncate(&m, 4 * CHUNK);
	img_fill(f, img, &m, 4 * CHUNK, 0, 1700);
	fx_close_img(f, img);
	CHECK(f, snap_image_create(f->s, 3 * CHUNK, b, &f->err));
	CHECK(f, snap_image_clone(f->s, a, c, &f->err));
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.images, 0);
	CHECK(f, snap_store_link(f->s, "g/b", b, &f->err));
	CHECK(f, snap_store_link(f->s, "g/c", c, &f->err));
	img = fx_open_name(f, "g/c", 0);
	expect_content(f, img, &m, "a clone gc ran before its link");
	fx_close_img(f, img);
	img = fx_open_name(f, "g/b", 0);
	assert_int_equal(img_size(img), 3 * CHUNK);
	fx_close_img(f, img);
	CHECK(f, snap_store_unlink(f->s, "g/b", &f->err));
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.images, 1);
	fx_verify_clean(f, "after the fresh images");
	model_free(&m);
}

/* ==== 13. patches =========================================================== */

/* The content key of chunk i of m. */
static void model_key(const struct model *m, uint64_t i,
		      uint8_t key[SNAP_KEY_LEN])
{
	snap_sha256(m->b + i * CHUNK, CHUNK, key);
}

/* Whether store.bin requires the feature patches need. */
static bool fx_requires_patches(struct fx *f)
{
	char path[4096], buf[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/store.bin", f->dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	return memmem(buf, (size_t)n, "chunk-patches", 13) != NULL;
}

/*
 * A write of a page or less costs about a page: the chunk is stored as a
 * patch of the chunk it changed. Patches of patches stay one base deep,
 * a chunk rewritten for the most part is stored whole, gc keeps the base
 * of every live patch and frees it with the last, and a damaged base is
 * EIO naming the image and the offset.
 */
static void test_patches(void **state)
{
	struct fx *f = *state;
	struct model ma = { 0 }, mb = { 0 };
	uint8_t a[SNAP_ID_LEN], b[SNAP_ID_LEN], k[SNAP_KEY_LEN];
	uint8_t base2[SNAP_KEY_LEN];
	struct snap_store_stats s0, s1;
	struct snap_gc_stats gs;
	struct snap_image *img;

	img = fx_new(f, "p/a", 8 * CHUNK, a);
	model_truncate(&ma, 8 * CHUNK);
	img_fill(f, img, &ma, 8 * CHUNK, 0, 1300);
	CHECK(f, snap_image_sync(img, &f->err));
	model_key(&ma, 2, base2);
	assert_true(fx_chunk_len(f, base2) > CHUNK);	/* random: raw */
	assert_false(fx_requires_patches(f));
	fx_stats(f, &s0);

	/* A page, and 100 bytes inside one page: about a page each. */
	img_fill(f, img, &ma, 4096, 2 * CHUNK + 8192, 1301);
	img_fill(f, img, &ma, 100, 5 * CHUNK + 10, 1302);
	CHECK(f, snap_image_sync(img, &f->err));
	model_key(&ma, 2, k);
	assert_true(fx_chunk_len(f, k) < 4096 + 256);
	model_key(&ma, 5, k);
	assert_true(fx_chunk_len(f, k) < 4096 + 256);
	fx_stats(f, &s1);
	assert_true(s1.stored_bytes - s0.stored_bytes < 2 * (4096 + 256));
	assert_true(fx_requires_patches(f));
	fx_close_img(f, img);
	fx_reopen(f);	/* an empty cache: bases come from the backend */
	img = fx_open_name(f, "p/a", 0);
	expect_content(f, img, &ma, "patched, reopened");
	fx_close_img(f, img);
	fx_verify_clean(f, "patched");

	/* A clone's page over the patched chunk: a patch of the same base
	 * with both pages, not of the patch. */
	CHECK(f, snap_image_clone(f->s, a, b, &f->err));
	CHECK(f, snap_store_link(f->s, "p/b", b, &f->err));
	model_copy(&mb, &ma);
	img = fx_open_id(f, b, SNAP_IMAGE_WRITE);
	img_fill(f, img, &mb, 4096, 2 * CHUNK, 1303);
	/* Most of chunk 3 rewritten: whole. */
	img_fill(f, img, &mb, CHUNK - 8192, 3 * CHUNK + 4096, 1304);
	CHECK(f, snap_image_sync(img, &f->err));
	model_key(&mb, 2, k);
	assert_true(fx_chunk_len(f, k) < 2 * (4096 + 256));
	fx_flip_chunk(f, base2, 16 + 5 * 4096, true);
	fx_close_img(f, img);
	fx_reopen(f);
	img = fx_open_id(f, b, 0);
	expect_eio(f, img, b, 2, "the base of a patch damaged");
	fx_close_img(f, img);
	fx_flip_chunk(f, base2, 16 + 5 * 4096, false);
	model_key(&mb, 3, k);
	assert_true(fx_chunk_len(f, k) > CHUNK);

	/* Only b's patch holds the base now; gc keeps it. */
	CHECK(f, snap_store_unlink(f->s, "p/a", &f->err));
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_true(fx_has_chunk(f, base2));
	fx_reopen(f);
	img = fx_open_name(f, "p/b", SNAP_IMAGE_WRITE);
	expect_content(f, img, &mb, "the clone after gc");
	fx_verify_clean(f, "the clone after gc");

	/* Rewritten whole and flattened (a's delta, which b's chain holds,
	 * has a patch of it too), the patches go, and their base. */
	img_fill(f, img, &mb, CHUNK, 2 * CHUNK, 1305);
	fx_close_img(f, img);
	CHECK(f, snap_image_flatten(f->s, b, &f->err));
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_false(fx_has_chunk(f, base2));
	img = fx_open_name(f, "p/b", 0);
	expect_content(f, img, &mb, "rewritten, after gc");
	fx_close_img(f, img);
	fx_verify_clean(f, "rewritten, after gc");
	model_free(&ma);
	model_free(&mb);
}

/*
 * A store that requires a feature this build does not know is refused by
 * name; one that requires patches (what this build writes) opens. An
 * older build is this one without "chunk-patches" in its list.
 */
static void test_store_features(void **state)
{
	struct fx *f = *state;
	struct snap_meta m;

	fx_close(f);
	CHECK(f, meta_dir_open(f->dir, &m, &f->err));
	CHECK(f, meta_store_require(&m, FEATURE_PATCHES, &f->err));
	CHECK(f, fx_open(f));
	assert_true(fx_requires_patches(f));
	fx_close(f);
	CHECK(f, meta_store_require(&m, "chunk-patches-v2", &f->err));
	m.ops->free(m.ctx);
	assert_int_equal(fx_open(f), -ENOTSUP);
	if (!strstr(f->err.msg, "'chunk-patches-v2'"))
		fail_msg("\"%s\" does not name the feature", f->err.msg);
}

/* Store buf as key's value in place of what the backend holds. */
static void fx_put_raw(struct fx *f, const uint8_t key[SNAP_KEY_LEN],
		       const void *buf, size_t len)
{
	if (f->mem) {
		f->held.inner.ops->del(f->held.inner.ctx, key);
		assert_int_equal(f->held.inner.ops->put(f->held.inner.ctx, key,
							buf, len), 0);
		return;
	}
	fx_close(f);
	test_chunk_replace(f->dir, key, buf, len);
	CHECK(f, fx_open(f));
}

/* A patch object: header, base, a bitmap of 16 pages, raw pages. */
static size_t make_patch(uint8_t *obj, const uint8_t base[SNAP_KEY_LEN],
			 uint16_t mask, uint8_t page_codec)
{
	size_t n = 16 + SNAP_KEY_LEN + 2;

	memset(obj, 0, n);
	memcpy(obj, "SNCK", 4);
	obj[4] = 2;
	obj[5] = page_codec;
	obj[8] = (uint8_t)CHUNK;
	obj[9] = (uint8_t)(CHUNK >> 8);
	obj[10] = (uint8_t)(CHUNK >> 16);
	memcpy(obj + 16, base, SNAP_KEY_LEN);
	obj[48] = (uint8_t)mask;
	obj[49] = (uint8_t)(mask >> 8);
	for (unsigned i = 0; i < 16; i++)
		if (mask >> i & 1) {
			memset(obj + n, 0x5a, 4096);
			n += 4096;
		}
	return n;
}

/*
 * Hostile patches, each stored in place of a chunk an image maps: a read
 * of that chunk is EIO naming the image, the offset and what is wrong,
 * never a crash or bytes from elsewhere; verify counts it.
 */
static void test_hostile_patches(void **state)
{
	struct fx *f = *state;
	struct model m = { 0 };
	uint8_t id[SNAP_ID_LEN], k[SNAP_KEY_LEN], b[SNAP_KEY_LEN];
	uint8_t deep[4][SNAP_KEY_LEN];
	uint8_t *obj = malloc(2 * CHUNK);
	struct snap_image *img;
	const struct {
		const char *what, *says;
		int base;		/* 0 a real chunk, 1 itself, 2 none */
		uint16_t mask;
		uint8_t codec;
		size_t cut;		/* bytes cut off the end */
	} cases[] = {
		{ "no page", "bad page bitmap", 0, 0, 0, 0 },
		{ "more than half the pages", "bad page bitmap", 0, 0x1ff, 0,
		  0 },
		{ "a patch of itself", "patch of itself", 1, 1, 0, 0 },
		{ "a missing base", "its base is unreadable", 2, 1, 0, 0 },
		{ "pages of an unknown codec", "unknown codec", 0, 1, 7, 0 },
		{ "pages cut short", "raw payload of the wrong size", 0, 3, 0,
		  100 },
		{ "a header cut short", "shorter than its header", 0, 1, 0,
		  4096 + 10 },
	};

	assert_non_null(obj);
	img = fx_new(f, "h/a", 3 * CHUNK, id);
	model_truncate(&m, 3 * CHUNK);
	img_fill(f, img, &m, 2 * CHUNK, 0, 1800);
	fx_close_img(f, img);
	model_key(&m, 0, b);
	model_key(&m, 1, k);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		size_t n;

		memset(deep[0], 0xee, SNAP_KEY_LEN);
		n = make_patch(obj, cases[i].base == 0 ? b :
				    cases[i].base == 1 ? k : deep[0],
			       cases[i].mask, cases[i].codec);
		fx_put_raw(f, k, obj, n - cases[i].cut);
		fx_reopen(f);
		img = fx_open_id(f, id, 0);
		expect_eio(f, img, id, 1, cases[i].what);
		if (!strstr(f->err.msg, cases[i].says))
			fail_msg("%s: \"%s\" does not say \"%s\"",
				 cases[i].what, f->err.msg, cases[i].says);
		fx_close_img(f, img);
		expect_verify_bad(f, 2, cases[i].what);
	}

	/* Bases of bases in a loop: a read follows at most 4, then EIO. */
	for (int d = 0; d < 4; d++)
		memset(deep[d], 0x10 + d, SNAP_KEY_LEN);
	fx_put_raw(f, k, obj, make_patch(obj, deep[0], 1, 0));
	for (int d = 0; d < 3; d++)
		fx_put_raw(f, deep[d], obj, make_patch(obj, deep[d + 1], 1, 0));
	fx_put_raw(f, deep[3], obj, make_patch(obj, deep[0], 1, 0));
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	expect_eio(f, img, id, 1, "patches of patches in a loop");
	fx_close_img(f, img);
	model_free(&m);
	free(obj);
}

/*
 * Writes of every shape (a few bytes, a page, runs of pages across chunk
 * boundaries, whole chunks), with clones, flattens, syncs and reopens
 * between them, against a model of each image.
 */
static void test_patch_shapes(void **state)
{
	struct fx *f = *state;
	enum { N = 3, SIZE = 12 * CHUNK, OPS = 400 };
	struct model m[N] = { { 0 } };
	uint8_t id[N][SNAP_ID_LEN];
	struct snap_image *img[N];
	uint64_t x = rnd_init(1400);
	char name[16], what[64];

	img[0] = fx_new(f, "w/0", SIZE, id[0]);
	model_truncate(&m[0], SIZE);
	img_fill(f, img[0], &m[0], SIZE / 2, CHUNK, 1401);
	for (int i = 1; i < N; i++) {
		CHECK(f, snap_image_sync(img[0], &f->err));
		CHECK(f, snap_image_clone(f->s, id[0], id[i], &f->err));
		snprintf(name, sizeof(name), "w/%d", i);
		CHECK(f, snap_store_link(f->s, name, id[i], &f->err));
		img[i] = fx_open_id(f, id[i], SNAP_IMAGE_WRITE);
		model_copy(&m[i], &m[0]);
	}
	for (int op = 0; op < OPS; op++) {
		int i = (int)(rnd(&x) % N);
		uint64_t r = rnd(&x) % 100, len, off;

		if (r < 30)		/* a few bytes */
			len = 1 + rnd(&x) % 300;
		else if (r < 60)	/* a page, page-aligned */
			len = 4096;
		else if (r < 85)	/* a run of pages */
			len = 4096 * (2 + rnd(&x) % 24);
		else if (r < 95)	/* whole chunks */
			len = CHUNK * (1 + rnd(&x) % 2);
		else
			len = 0;
		if (len) {
			off = rnd(&x) % (SIZE - len);
			if (len % 4096 == 0)
				off -= off % (len % CHUNK ? 4096 : CHUNK);
			img_fill(f, img[i], &m[i], (size_t)len, off, op);
		} else if (rnd(&x) % 2) {
			snap_image_close(img[i], NULL);
			CHECK(f, snap_image_flatten(f->s, id[i], &f->err));
			img[i] = fx_open_id(f, id[i], SNAP_IMAGE_WRITE);
		} else {
			int j = (int)((i + 1) % N);

			/* j becomes a clone of i */
			CHECK(f, snap_image_sync(img[i], &f->err));
			snap_image_close(img[j], NULL);
			snprintf(name, sizeof(name), "w/%d", j);
			CHECK(f, snap_store_unlink(f->s, name, &f->err));
			CHECK(f, snap_image_clone(f->s, id[i], id[j],
						  &f->err));
			CHECK(f, snap_store_link(f->s, name, id[j], &f->err));
			img[j] = fx_open_id(f, id[j], SNAP_IMAGE_WRITE);
			model_free(&m[j]);
			model_copy(&m[j], &m[i]);
		}
		if (op % 97 == 96) {
			struct snap_gc_stats gs;

			for (int k = 0; k < N; k++)
				fx_close_img(f, img[k]);
			fx_reopen(f);
			CHECK(f, snap_store_gc(f->s, &gs, &f->err));
			for (int k = 0; k < N; k++)
				img[k] = fx_open_id(f, id[k],
						    SNAP_IMAGE_WRITE);
		}
	}
	for (int i = 0; i < N; i++)
		fx_close_img(f, img[i]);
	fx_reopen(f);
	for (int i = 0; i < N; i++) {
		img[i] = fx_open_id(f, id[i], 0);
		snprintf(what, sizeof(what), "image %d after %d ops", i, OPS);
		expect_content(f, img[i], &m[i], what);
		fx_close_img(f, img[i]);
		model_free(&m[i]);
	}
	fx_verify_clean(f, "after the shapes");
}

/* ==== the largest image ================================================= */

/* Bytes of every delta journal in the store: what commits have appended. */
static uint64_t fx_delta_bytes(struct fx *f)
{
	uint64_t bytes = 0;
	char path[4096];
	struct dirent *e;
	struct stat st;
	DIR *d;

	snprintf(path, sizeof(path), "%s/deltas", f->dir);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/deltas/%s", f->dir, e->d_name);
		assert_int_equal(stat(path, &st), 0);
		bytes += (uint64_t)st.st_size;
	}
	closedir(d);
	return bytes;
}

/* img's size and times are still st's, and nothing was journaled since
 * the store held journal bytes (close commits what is pending). */
static void expect_untouched(struct fx *f, struct snap_image *img,
			     const struct snap_image_stat *st,
			     uint64_t journal, const char *what)
{
	struct snap_image_stat now;

	snap_image_stat(img, &now);
	if (now.size != st->size || now.mtime_ns != st->mtime_ns ||
	    now.ctime_ns != st->ctime_ns || now.atime_ns != st->atime_ns)
		fail_msg("%s: size %" PRIu64 ", times %" PRIu64 " %" PRIu64
			 " %" PRIu64 "; expected %" PRIu64 ", %" PRIu64
			 " %" PRIu64 " %" PRIu64, what, now.size, now.mtime_ns,
			 now.ctime_ns, now.atime_ns, st->size, st->mtime_ns,
			 st->ctime_ns, st->atime_ns);
	CHECK(f, snap_image_sync(img, &f->err));
	if (fx_delta_bytes(f) != journal)
		fail_msg("%s: a frame was journaled (%" PRIu64 " bytes of "
			 "deltas, %" PRIu64 " before)", what, fx_delta_bytes(f),
			 journal);
}

/* The message in f->err contains want. */
static void expect_says(struct fx *f, const char *want, const char *what)
{
	if (!strstr(f->err.msg, want))
		fail_msg("%s: \"%s\" does not say \"%s\"", what, f->err.msg,
			 want);
}

/*
 * A truncate, write or copy past the largest image is EFBIG with a line
 * that says so, and a truncate that fails (EFBIG, or EIO in the chunk it
 * cuts inside) changes nothing: size, mtime, map, journal.
 */
static void test_too_large(void **state)
{
	struct fx *f = *state;
	const uint64_t huge = 999999999999999ull, size = 3 * CHUNK + 100;
	uint8_t id[SNAP_ID_LEN], id2[SNAP_ID_LEN], key[SNAP_KEY_LEN];
	struct snap_image_stat st;
	struct snap_image *img, *dst;
	struct model m = { 0 };
	uint8_t buf[100] = { 1 };
	uint64_t journal;

	img = fx_new(f, "big/a", size, id);
	model_truncate(&m, size);
	img_fill(f, img, &m, size, 0, 2900);
	CHECK(f, snap_image_sync(img, &f->err));
	snap_image_stat(img, &st);
	journal = fx_delta_bytes(f);

	EXPECT_ERR(f, -EFBIG, snap_image_truncate(img, huge, &f->err));
	expect_says(f, "truncate to 999999999999999: size 999999999999999: "
		    "more than the largest image, 70368744177664 bytes",
		    "huge truncate");
	expect_untouched(f, img, &st, journal, "huge truncate");
	EXPECT_ERR(f, -EFBIG, snap_image_truncate(img, SNAP_IMAGE_MAX + 1,
						  &f->err));
	expect_untouched(f, img, &st, journal, "truncate to the limit + 1");

	/* At or past the limit a write is EFBIG; across it, short. */
	EXPECT_ERR(f, -EFBIG, snap_image_write(img, buf, sizeof(buf),
					       SNAP_IMAGE_MAX, &f->err));
	expect_says(f, "write at 70368744177664: past the largest image",
		    "write at the limit");
	expect_untouched(f, img, &st, journal, "write at the limit");
	assert_int_equal(snap_image_write(img, buf, sizeof(buf),
					  SNAP_IMAGE_MAX - 10, &f->err), 10);
	assert_int_equal(img_size(img), SNAP_IMAGE_MAX);

	/* A copy to the limit is EFBIG; to its last chunk, shared. */
	dst = fx_new(f, "big/b", 0, id2);
	EXPECT_ERR(f, -EFBIG, snap_image_copy_range(img, 0, dst,
						    SNAP_IMAGE_MAX, CHUNK,
						    &f->err));
	assert_int_equal(img_size(dst), 0);
	assert_int_equal(snap_image_copy_range(img, 0, dst,
					       SNAP_IMAGE_MAX - CHUNK,
					       2 * CHUNK, &f->err), CHUNK);
	assert_int_equal(img_size(dst), SNAP_IMAGE_MAX);
	fx_close_img(f, dst);
	CHECK(f, snap_image_truncate(img, size, &f->err));
	expect_content(f, img, &m, "after the limit");

	/* A chunk that cannot be read where the truncate cuts: EIO, and
	 * the chunks past it are still there. */
	CHECK(f, snap_image_sync(img, &f->err));
	fx_close_img(f, img);
	model_key(&m, 1, key);
	fx_flip_chunk(f, key, CHUNK_HDR + 10, true);
	fx_reopen(f);
	img = fx_open_id(f, id, SNAP_IMAGE_WRITE);
	snap_image_stat(img, &st);
	journal = fx_delta_bytes(f);
	EXPECT_ERR(f, -EIO, snap_image_truncate(img, CHUNK + 100, &f->err));
	expect_says(f, "truncate to 65636: ", "truncate into a bad chunk");
	expect_untouched(f, img, &st, journal, "truncate into a bad chunk");
	fx_flip_chunk(f, key, CHUNK_HDR + 10, false);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	expect_content(f, img, &m, "after the failed truncate");
	fx_close_img(f, img);
	model_free(&m);
}

/* A message left empty by a callee still makes a line with a prefix. */
static void test_err_prefix_empty(void **state)
{
	struct snap_err err = { .msg = "" };

	assert_int_equal(snap_err_prefix(&err, -EFBIG, "truncate to %d", 7),
			 -EFBIG);
	assert_string_equal(err.msg, "truncate to 7: File too large");
	assert_int_equal(snap_err_prefix(&err, -EFBIG, "a"), -EFBIG);
	assert_string_equal(err.msg, "a: truncate to 7: File too large");
}

/* Path of image id's head delta. */
static void fx_head_path(struct fx *f, const uint8_t id[SNAP_ID_LEN],
			 char *path, size_t size)
{
	char hex[2 * SNAP_ID_LEN + 1];
	struct image_info ii;
	struct snap_meta m;

	CHECK(f, meta_dir_open(f->dir, &m, &f->err));
	CHECK(f, meta_image_read(&m, id, &ii, &f->err));
	m.ops->free(m.ctx);
	snap_id_hex(ii.head, hex);
	snprintf(path, size, "%s/deltas/%s", f->dir, hex);
}

/* Append frame df to image id's head delta, as a hostile writer would. */
static void fx_append_frame(struct fx *f, const uint8_t id[SNAP_ID_LEN],
			    const struct delta_frame *df)
{
	char path[4096];
	uint8_t *buf;
	size_t len;
	int fd;

	fx_head_path(f, id, path, sizeof(path));
	assert_int_equal(meta_delta_encode(df, &buf, &len), 0);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	free(buf);
}

/* img's map and state take exactly these pages and directories. */
static void expect_mem(struct snap_image *img, uint64_t dirs, uint64_t map,
		       uint64_t state, const char *what)
{
	struct image_mem mem;

	image_mem(img, &mem);
	if (mem.dirs != dirs || mem.map_pages != map ||
	    mem.state_pages != state || mem.dirty_arrays)
		fail_msg("%s: %" PRIu64 " directories, %" PRIu64 " map pages,"
			 " %" PRIu64 " state pages, %" PRIu64 " dirty arrays;"
			 " expected %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", 0",
			 what, mem.dirs, mem.map_pages, mem.state_pages,
			 mem.dirty_arrays, dirs, map, state);
}

/*
 * Create and open agree on the largest image: exactly SNAP_IMAGE_MAX is
 * made and opens, a chunk more is neither. What an open image of that
 * size takes follows what it holds, not its size: one chunk written at
 * its end, or declared by a crafted journal (with an entry far past it),
 * loads into one directory and one page, reads back, and verifies.
 */
static void test_largest_image(void **state)
{
	struct fx *f = *state;
	const uint64_t last = SNAP_IMAGE_MAX / CHUNK - 1;
	uint8_t id[SNAP_ID_LEN], id2[SNAP_ID_LEN], key[SNAP_KEY_LEN];
	uint64_t far = UINT64_C(1) << 60;
	struct delta_frame df = { .size = SNAP_IMAGE_MAX, .n = 1 };
	struct snap_image_stat st;
	struct snap_image *img;
	uint8_t *buf = malloc(CHUNK), *back = malloc(CHUNK);

	assert_non_null(buf);
	assert_non_null(back);
	EXPECT_ERR(f, -EFBIG, snap_image_create(f->s, SNAP_IMAGE_MAX + CHUNK,
						id, &f->err));
	expect_says(f, "more than the largest image", "create past the limit");
	EXPECT_ERR(f, -EFBIG, snap_image_create(f->s, SNAP_IMAGE_MAX + 1, id,
						&f->err));
	img = fx_new(f, "max/a", SNAP_IMAGE_MAX, id);
	expect_mem(img, 0, 0, 0, "a new image of the largest size");
	fill_random(buf, CHUNK, 3000);
	assert_int_equal(snap_image_write(img, buf, CHUNK, last * CHUNK,
					  &f->err), CHUNK);
	fx_close_img(f, img);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	/* one page of the map, one of the head delta's own bits */
	expect_mem(img, 1, 1, 1, "the largest image, one chunk");
	snap_image_stat(img, &st);
	assert_int_equal(st.size, SNAP_IMAGE_MAX);
	assert_int_equal(st.chunks, 1);
	assert_int_equal(snap_image_read(img, back, CHUNK, last * CHUNK,
					 &f->err), CHUNK);
	assert_memory_equal(back, buf, CHUNK);
	assert_int_equal(snap_image_read(img, back, CHUNK, SNAP_IMAGE_MAX / 2,
					 &f->err), CHUNK);
	assert_true(all_zero(back, CHUNK));
	fx_close_img(f, img);
	fx_verify_clean(f, "the largest image");

	/* A journal that declares the largest size with one small entry,
	 * and another far past it, as a crafted delta would. */
	img = fx_new(f, "max/b", CHUNK, id2);
	fx_close_img(f, img);
	snap_sha256(buf, CHUNK, key);
	df.indexes = &far;
	df.keys = key;
	fx_append_frame(f, id2, &df);
	df.indexes = (uint64_t[]){ last };
	fx_append_frame(f, id2, &df);
	fx_reopen(f);
	img = fx_open_id(f, id2, 0);
	expect_mem(img, 1, 1, 1, "a journal declaring the largest size");
	assert_int_equal(snap_image_read(img, back, CHUNK, last * CHUNK,
					 &f->err), CHUNK);
	assert_memory_equal(back, buf, CHUNK);
	fx_close_img(f, img);
	fx_verify_clean(f, "a journal declaring the largest size");

	/* One chunk more than the largest: refused by name, not loaded. */
	df.size = SNAP_IMAGE_MAX + CHUNK;
	df.n = 0;
	fx_append_frame(f, id2, &df);
	fx_reopen(f);
	img = NULL;
	EXPECT_ERR(f, -EBADMSG, snap_image_open(f->s, id2, 0, &img, &f->err));
	expect_says(f, "size 70368744243200, at most 70368744177664",
		    "a journal past the limit");

	/* Growing to the largest size and back takes nothing either. */
	img = fx_open_id(f, id, SNAP_IMAGE_WRITE);
	CHECK(f, snap_image_truncate(img, CHUNK, &f->err));
	CHECK(f, snap_image_truncate(img, SNAP_IMAGE_MAX, &f->err));
	assert_int_equal(snap_image_read(img, back, CHUNK, last * CHUNK,
					 &f->err), CHUNK);
	assert_true(all_zero(back, CHUNK));
	expect_mem(img, 1, 1, 1, "truncated to a chunk and grown back");
	fx_close_img(f, img);
	free(buf);
	free(back);
}

/* ---- times ------------------------------------------------------------- */

static void fx_times(struct snap_image *img, uint64_t t[3])
{
	struct snap_image_stat st;

	snap_image_stat(img, &st);
	t[0] = st.atime_ns;
	t[1] = st.mtime_ns;
	t[2] = st.ctime_ns;
}

/* img's atime and mtime are a and m, its ctime is past was's. */
static void expect_times(struct snap_image *img, uint64_t a, uint64_t m,
			 const uint64_t was[3], const char *what)
{
	uint64_t t[3];

	fx_times(img, t);
	if (t[0] != a || t[1] != m || t[2] <= was[2])
		fail_msg("%s: atime %" PRIu64 " mtime %" PRIu64 " ctime %"
			 PRIu64 "; expected %" PRIu64 " %" PRIu64 " and a "
			 "ctime past %" PRIu64, what, t[0], t[1], t[2], a, m,
			 was[2]);
}

/* Append to image id's head a frame of size and mtime, without times, as
 * every build before ImageTimes wrote them. */
static void fx_append_old_frame(struct fx *f, const uint8_t id[SNAP_ID_LEN],
				uint64_t size, uint64_t mtime_ns)
{
	Snapfs__Store__DeltaFrame m = SNAPFS__STORE__DELTA_FRAME__INIT;
	uint8_t payload[64], *buf;
	char path[4096];
	size_t len;
	int fd;

	m.size = size;
	m.mtime_unix_ns = mtime_ns;
	assert_true(protobuf_c_message_get_packed_size(&m.base) <=
		    sizeof(payload));
	len = protobuf_c_message_pack(&m.base, payload);
	assert_int_equal(frame_encode(payload, len, &buf, &len), 0);
	fx_head_path(f, id, path, sizeof(path));
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	free(buf);
}

static void test_times(void **state)
{
	struct fx *f = *state;
	uint8_t id[SNAP_ID_LEN], other[SNAP_ID_LEN], clone[SNAP_ID_LEN];
	struct snap_image *img, *o;
	uint64_t t[3], was[3], journal;
	struct snap_image_stat st;
	char buf[16];

	/* Made: all three are its creation time. */
	img = fx_new(f, "t/a", 0, id);
	snap_image_stat(img, &st);
	assert_int_equal(st.atime_ns, st.created_ns);
	assert_int_equal(st.mtime_ns, st.created_ns);
	assert_true(st.ctime_ns >= st.created_ns);

	/* Set: atime and mtime as asked, each alone too; ctime now. */
	fx_times(img, was);
	CHECK(f, snap_image_set_times(img, 111, 222, &f->err));
	expect_times(img, 111, 222, was, "set both");
	fx_times(img, was);
	CHECK(f, snap_image_set_times(img, SNAP_TIME_OMIT, 333, &f->err));
	expect_times(img, 111, 333, was, "set mtime, atime omitted");
	fx_times(img, was);
	CHECK(f, snap_image_set_times(img, SNAP_TIME_NOW, SNAP_TIME_OMIT,
				      &f->err));
	fx_times(img, t);
	expect_times(img, t[2], 333, was, "atime now, mtime omitted");
	fx_times(img, was);
	CHECK(f, snap_image_set_times(img, SNAP_TIME_OMIT, SNAP_TIME_OMIT,
				      &f->err));
	expect_times(img, was[0], 333, was, "both omitted: ctime alone");
	CHECK(f, snap_image_set_times(img, 0, 444, &f->err));	/* the epoch */

	/* A write and a truncate: mtime and ctime, atime kept; a read:
	 * nothing. */
	fx_times(img, was);
	assert_int_equal(snap_image_write(img, "data", 4, 0, &f->err), 4);
	fx_times(img, t);
	if (t[0] != 0 || t[1] <= 444 || t[2] != t[1] || t[2] <= was[2])
		fail_msg("a write: times %" PRIu64 " %" PRIu64 " %" PRIu64,
			 t[0], t[1], t[2]);
	fx_times(img, was);
	CHECK(f, snap_image_truncate(img, 2, &f->err));
	fx_times(img, t);
	if (t[0] != 0 || t[1] <= was[1] || t[2] != t[1])
		fail_msg("a truncate: times %" PRIu64 " %" PRIu64 " %" PRIu64,
			 t[0], t[1], t[2]);
	fx_times(img, was);
	assert_int_equal(snap_image_read(img, buf, sizeof(buf), 0, &f->err), 2);
	fx_times(img, t);
	assert_memory_equal(t, was, sizeof(t));

	/* A truncate that fails moves none (and journals nothing). */
	CHECK(f, snap_image_sync(img, &f->err));
	snap_image_stat(img, &st);
	journal = fx_delta_bytes(f);
	EXPECT_ERR(f, -EFBIG, snap_image_truncate(img, SNAP_IMAGE_MAX + 1,
						  &f->err));
	expect_untouched(f, img, &st, journal, "a truncate past the limit");

	/* Names given, taken and moved: ctime, each time, of an image open
	 * here; failures move nothing. */
	fx_times(img, was);
	CHECK(f, snap_store_hardlink(f->s, "t/a", "t/b", &f->err));
	expect_times(img, 0, was[1], was, "a hard link");
	fx_times(img, was);
	CHECK(f, snap_store_unlink(f->s, "t/b", &f->err));
	expect_times(img, 0, was[1], was, "an unlink of the other name");
	fx_times(img, was);
	CHECK(f, snap_store_rename(f->s, "t/a", "t/c", false, &f->err));
	expect_times(img, 0, was[1], was, "a rename");
	o = fx_new(f, "t/d", 0, other);
	CHECK(f, snap_store_hardlink(f->s, "t/d", "t/keep", &f->err));
	fx_times(img, was);
	EXPECT_ERR(f, -EEXIST, snap_store_rename(f->s, "t/c", "t/d", true,
						 &f->err));
	EXPECT_ERR(f, -ENOENT, snap_store_unlink(f->s, "t/none", &f->err));
	fx_times(img, t);
	assert_memory_equal(t, was, sizeof(t));
	fx_times(o, was);
	CHECK(f, snap_store_rename(f->s, "t/c", "t/d", false, &f->err));
	expect_times(o, was[0], was[1], was, "replaced, kept by another name");
	fx_close_img(f, o);

	/* A clone keeps atime and mtime; its ctime is its making. */
	fx_times(img, was);
	CHECK(f, snap_image_clone(f->s, id, clone, &f->err));
	CHECK(f, snap_store_link(f->s, "t/clone", clone, &f->err));
	o = fx_open_id(f, clone, 0);
	expect_times(o, 0, was[1], was, "a clone");
	fx_close_img(f, o);

	/* Durable with the image, through a close and a reopen. */
	fx_times(img, was);
	CHECK(f, snap_image_sync(img, &f->err));
	fx_close_img(f, img);
	fx_reopen(f);
	img = fx_open_id(f, id, SNAP_IMAGE_WRITE);
	fx_times(img, t);
	assert_memory_equal(t, was, sizeof(t));
	fx_close_img(f, img);

	/* A frame of an older build: ctime and atime read as its mtime. */
	fx_append_old_frame(f, id, 2, 555);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	fx_times(img, t);
	if (t[0] != 555 || t[1] != 555 || t[2] != 555)
		fail_msg("an old frame: times %" PRIu64 " %" PRIu64 " %" PRIu64
			 ", expected 555 each", t[0], t[1], t[2]);
	fx_close_img(f, img);
	fx_verify_clean(f, "times");
}

/* Every case over both backends, or over the directory only. */
#define BOTH(fn)							\
	{ #fn "/dir", fn, fx_setup, fx_teardown, &on_dir },		\
	{ #fn "/mem", fn, fx_setup, fx_teardown, &on_mem }
#define ON_DIR_ONLY(fn)	{ #fn, fn, fx_setup, fx_teardown, &on_dir }
#define ON_MEM_ONLY(fn)	{ #fn, fn, fx_setup, fx_teardown, &on_mem }

/*
 * A VM's snapshots: each a clone of the live image, which goes on over
 * a new delta; the oldest removed. What a frozen delta above shadows in
 * the live image's chain is garbage once no other chain reads it; what
 * only the live image's own (not frozen) head shadows is kept, since a
 * crash before that head is durable would read it again.
 */
static void test_gc_shadowed(void **state)
{
	struct fx *f = *state;
	struct model m = { 0 };
	uint8_t id[SNAP_ID_LEN], s1[SNAP_ID_LEN], s2[SNAP_ID_LEN];
	uint8_t old[4][SNAP_KEY_LEN], k0[SNAP_KEY_LEN];
	struct snap_gc_stats gs;
	struct snap_image *img;

	img = fx_new(f, "v/live", 4 * CHUNK, id);
	img_fill(f, img, &m, 4 * CHUNK, 0, 301);
	for (int i = 0; i < 4; i++)
		model_key(&m, i, old[i]);
	CHECK(f, snap_image_clone(f->s, id, s1, &f->err));	/* freezes */
	CHECK(f, snap_store_link(f->s, "v/s1", s1, &f->err));
	img_fill(f, img, &m, 4 * CHUNK, 0, 302);	/* all rewritten */
	CHECK(f, snap_image_sync(img, &f->err));
	model_key(&m, 0, k0);
	CHECK(f, snap_image_clone(f->s, id, s2, &f->err));
	CHECK(f, snap_store_link(f->s, "v/s2", s2, &f->err));
	img_fill(f, img, &m, CHUNK, 0, 303);		/* in the head only */
	CHECK(f, snap_image_sync(img, &f->err));

	/* s1 still reads the first chunks: nothing to free. */
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.chunks, 0);
	CHECK(f, snap_store_unlink(f->s, "v/s1", &f->err));
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.chunks, 4);		/* shadowed by s2's delta */
	for (int i = 0; i < 4; i++)
		assert_false(fx_has_chunk(f, old[i]));
	expect_content(f, img, &m, "the live image after gc");

	/* s2 removed: its chunk 0 is shadowed by the live head alone. */
	CHECK(f, snap_store_unlink(f->s, "v/s2", &f->err));
	CHECK(f, snap_store_gc(f->s, &gs, &f->err));
	assert_int_equal(gs.chunks, 0);
	assert_true(fx_has_chunk(f, k0));
	fx_close_img(f, img);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	expect_content(f, img, &m, "the live image, reopened");
	fx_close_img(f, img);
	fx_verify_clean(f, "after gc of shadowed chunks");
	model_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_init_open),
		ON_MEM_ONLY(test_backend_ownership),
		BOTH(test_backend_contract),
		BOTH(test_roundtrip),
		BOTH(test_zero_and_dup_chunks),
		BOTH(test_clone_isolation),
		BOTH(test_chain_flatten),
		BOTH(test_chain_bound),
		BOTH(test_names),
		BOTH(test_corrupt_chunk),
		ON_DIR_ONLY(test_corrupt_meta),
		BOTH(test_gc),
		BOTH(test_gc_shadowed),
		ON_DIR_ONLY(test_processes),
		ON_DIR_ONLY(test_crash),
		BOTH(test_threads),
		BOTH(test_small_cache),
		BOTH(test_copy_range),
		BOTH(test_copy_pieces),
		BOTH(test_copy_after_cut),
		BOTH(test_gc_fresh),
		BOTH(test_patches),
		BOTH(test_patch_shapes),
		ON_DIR_ONLY(test_store_features),
		BOTH(test_hostile_patches),
		BOTH(test_too_large),
		BOTH(test_largest_image),
		BOTH(test_times),
		cmocka_unit_test(test_err_prefix_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
