/* SPDX-License-Identifier: MIT */
/*
 * One store in RADOS, opened twice as two hosts would: one writer per
 * image (the second gets -EBUSY, and each takes up what the other
 * wrote), a reader taking up a writer's changes at a refresh, gc beside
 * a reader (what the reader holds as of its open
 * stays readable; freed once it closes) and gc refused beside another
 * writer. Runs where the environment names a cluster (CEPH_CONF, and
 * SNAP_TEST_RADOS_POOL a pool of it: tests/integration/snapfs_rados.sh
 * starts one); elsewhere it says so and skips.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <cmocka.h>

#include "snapshot/store/store.h"

#define CHUNK	SNAP_CHUNK_DEFAULT
#define NCHUNK	8

struct fx {
	char *name;
	struct snap_store *a, *b;
	struct snap_err err;
};

#define OK(f, call)							\
	do {								\
		int ret_ = (int)(call);					\
		if (ret_ < 0)						\
			fail_msg("%s: %d: %s", #call, ret_, (f)->err.msg); \
	} while (0)

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t rnd[6];

	assert_non_null(f);
	assert_int_equal(getrandom(rnd, sizeof(rnd), 0), sizeof(rnd));
	assert_true(asprintf(&f->name, "rados:%s/test-hosts-%02x%02x%02x%02x"
			     "%02x%02x", getenv("SNAP_TEST_RADOS_POOL"),
			     rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
			     rnd[5]) > 0);
	OK(f, snap_store_init(f->name, CHUNK, &f->err));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	snap_store_close(f->a);
	snap_store_close(f->b);
	free(f->name);
	free(f);
	return 0;
}

static struct snap_store *open_as(struct fx *f, unsigned flags)
{
	struct snap_store_opts o = { .flags = flags };
	struct snap_store *s = NULL;

	OK(f, snap_store_open(f->name, &o, &s, &f->err));
	return s;
}

/* A chunk of bytes that depend only on seed. */
static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

static void write_chunk(struct fx *f, struct snap_image *img, uint64_t i,
			uint64_t seed)
{
	static uint8_t buf[CHUNK];

	fill(buf, CHUNK, seed);
	assert_int_equal(snap_image_write(img, buf, CHUNK, i * CHUNK, &f->err),
			 CHUNK);
}

/* Whether chunk i of img holds seed's bytes. */
static bool chunk_is(struct fx *f, struct snap_image *img, uint64_t i,
		     uint64_t seed)
{
	static uint8_t want[CHUNK], got[CHUNK];

	fill(want, CHUNK, seed);
	if (snap_image_read(img, got, CHUNK, i * CHUNK, &f->err) != CHUNK) {
		print_message("# chunk %llu: %s\n", (unsigned long long)i,
			      f->err.msg);
		return false;
	}
	return !memcmp(want, got, CHUNK);
}

/* A new image named "s/NAME" in s, open for writing. */
static struct snap_image *make(struct fx *f, struct snap_store *s,
			       const char *name)
{
	uint8_t id[SNAP_ID_LEN];
	struct snap_image *img;
	char path[64];

	snprintf(path, sizeof(path), "s/%s", name);
	if (snap_store_mkdir(s, "s", &f->err) && f->err.msg[0] &&
	    !strstr(f->err.msg, "exists"))
		fail_msg("mkdir s: %s", f->err.msg);
	OK(f, snap_image_create(s, NCHUNK * CHUNK, id, &f->err));
	OK(f, snap_store_link(s, path, id, &f->err));
	OK(f, snap_store_sync(s, "s", &f->err));
	OK(f, snap_image_open(s, id, SNAP_IMAGE_WRITE, &img, &f->err));
	return img;
}

static struct snap_image *open_name(struct fx *f, struct snap_store *s,
				    const char *path, unsigned flags)
{
	uint8_t id[SNAP_ID_LEN];
	struct snap_image *img;

	OK(f, snap_store_lookup(s, path, id, NULL, &f->err));
	OK(f, snap_image_open(s, id, flags, &img, &f->err));
	return img;
}

/*
 * Two writers: while A holds an image's changes unsynced, B's write to
 * it is -EBUSY naming another host; once A synced, B writes and sees
 * A's bytes, and A, writing again, sees B's. Other images are free.
 */
static void test_one_writer_per_image(void **state)
{
	struct fx *f = *state;
	struct snap_image *xa, *xb, *y, *r;

	f->a = open_as(f, 0);
	f->b = open_as(f, 0);
	xa = make(f, f->a, "x");
	write_chunk(f, xa, 0, 1);
	xb = open_name(f, f->b, "s/x", SNAP_IMAGE_WRITE);
	f->err.msg[0] = '\0';
	assert_int_equal(snap_image_write(xb, "b", 1, CHUNK, &f->err), -EBUSY);
	assert_non_null(strstr(f->err.msg, "being written by another host"));
	assert_int_equal(snap_image_truncate(xb, CHUNK, &f->err), -EBUSY);
	/* Another image is B's to write meanwhile. */
	y = make(f, f->b, "y");
	write_chunk(f, y, 3, 30);
	OK(f, snap_image_sync(y, &f->err));
	OK(f, snap_image_close(y, &f->err));

	OK(f, snap_image_sync(xa, &f->err));
	write_chunk(f, xb, 1, 2);
	assert_true(chunk_is(f, xb, 0, 1));	/* A's, taken up */
	OK(f, snap_image_sync(xb, &f->err));
	write_chunk(f, xa, 2, 3);
	assert_true(chunk_is(f, xa, 1, 2));	/* B's, taken up */
	OK(f, snap_image_sync(xa, &f->err));
	OK(f, snap_image_close(xa, &f->err));
	OK(f, snap_image_close(xb, &f->err));

	/* A third open reads what both wrote. */
	snap_store_close(f->a);
	f->a = open_as(f, SNAP_STORE_RDONLY);
	r = open_name(f, f->a, "s/x", 0);
	assert_true(chunk_is(f, r, 0, 1));
	assert_true(chunk_is(f, r, 1, 2));
	assert_true(chunk_is(f, r, 2, 3));
	OK(f, snap_image_close(r, &f->err));
	r = open_name(f, f->a, "s/y", 0);
	assert_true(chunk_is(f, r, 3, 30));
	OK(f, snap_image_close(r, &f->err));
}

/*
 * A reader sees an image as of its open; a refresh (snapfs: each open)
 * takes up what a writer on another host stored since, and says so.
 */
static void test_refresh(void **state)
{
	struct fx *f = *state;
	struct snap_image *xa, *xb;
	bool changed = true;

	f->a = open_as(f, 0);
	f->b = open_as(f, SNAP_STORE_RDONLY);
	xa = make(f, f->a, "x");
	write_chunk(f, xa, 0, 1);
	OK(f, snap_image_sync(xa, &f->err));
	xb = open_name(f, f->b, "s/x", 0);
	assert_true(chunk_is(f, xb, 0, 1));
	OK(f, snap_image_refresh(xb, &changed, &f->err));
	assert_false(changed);
	write_chunk(f, xa, 0, 2);
	write_chunk(f, xa, NCHUNK, 3);		/* and it grows */
	OK(f, snap_image_flush(xa, &f->err));
	assert_true(chunk_is(f, xb, 0, 1));	/* as of its open */
	assert_int_equal(snap_image_size(xb), NCHUNK * CHUNK);
	OK(f, snap_image_refresh(xb, &changed, &f->err));
	assert_true(changed);
	assert_true(chunk_is(f, xb, 0, 2));
	assert_true(chunk_is(f, xb, NCHUNK, 3));
	assert_int_equal(snap_image_size(xb), (NCHUNK + 1) * CHUNK);
	OK(f, snap_image_close(xa, &f->err));
	OK(f, snap_image_close(xb, &f->err));
}

/*
 * gc beside a reader: B opened x, then A rewrote every chunk of it and
 * removed its name. A's gc keeps what B holds, and B reads x as it was
 * at its open; once B closes it, the next gc frees it all. (Without the
 * records, the first gc frees the first 8 chunks under B.)
 */
static void test_gc_beside_reader(void **state)
{
	struct fx *f = *state;
	struct snap_gc_stats st;
	struct snap_image *xa, *xb;

	f->a = open_as(f, 0);
	xa = make(f, f->a, "x");
	for (uint64_t i = 0; i < NCHUNK; i++)
		write_chunk(f, xa, i, 100 + i);
	OK(f, snap_image_sync(xa, &f->err));
	f->b = open_as(f, SNAP_STORE_RDONLY);
	xb = open_name(f, f->b, "s/x", 0);
	for (uint64_t i = 0; i < NCHUNK; i++)
		write_chunk(f, xa, i, 200 + i);
	OK(f, snap_image_sync(xa, &f->err));
	OK(f, snap_image_close(xa, &f->err));
	OK(f, snap_store_unlink(f->a, "s/x", &f->err));

	/* The image's files go (B reads through its deltas), what they
	 * hold stays. */
	OK(f, snap_store_gc(f->a, &st, &f->err));
	assert_int_equal(st.images, 1);
	assert_int_equal(st.deltas, 0);
	assert_int_equal(st.chunks, 0);
	for (uint64_t i = 0; i < NCHUNK; i++)
		assert_true(chunk_is(f, xb, i, 100 + i));
	OK(f, snap_image_close(xb, &f->err));
	OK(f, snap_store_gc(f->a, &st, &f->err));
	assert_int_equal(st.chunks, 2 * NCHUNK);
	assert_true(st.deltas >= 1);
}

/* gc beside another writer is refused, in one line saying why; alone
 * again, it runs. */
static void test_gc_refused_beside_writer(void **state)
{
	struct fx *f = *state;
	struct snap_gc_stats st;

	f->a = open_as(f, 0);
	f->b = open_as(f, 0);
	f->err.msg[0] = '\0';
	assert_int_equal(snap_store_gc(f->a, &st, &f->err), -EBUSY);
	assert_non_null(strstr(f->err.msg, "open for writing"));
	assert_null(strchr(f->err.msg, '\n'));
	snap_store_close(f->b);
	f->b = open_as(f, SNAP_STORE_RDONLY);
	OK(f, snap_store_gc(f->a, &st, &f->err));
	/* A writer waits out a gc; after it, both write. */
	snap_store_close(f->b);
	f->b = open_as(f, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_writer_per_image,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_beside_reader, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gc_refused_beside_writer,
						setup, teardown),
	};

	if (!getenv("SNAP_TEST_RADOS_POOL")) {
		printf("1..0 # SKIP no cluster given (SNAP_TEST_RADOS_POOL): "
		       "tests/integration/snapfs_rados.sh runs these on its "
		       "own\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
