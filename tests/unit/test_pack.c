// SPDX-License-Identifier: MIT
/*
 * Pack files (snapshot/store/pack.c) through the directory backend: what a put
 * and a sync leave is found by the next process, deletes stay deleted,
 * full packs are sealed and mostly dead ones compacted away, a torn tail
 * loses only what no sync covered, a reader finds what a writer synced
 * after it opened, hostile indexes and records cost nothing in
 * proportion to what they declare, and puts from several threads land.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot/store/backend.h"
#include "snapshot/format/digest.h"
#include "snapshot/store/frame.h"
#include "snapshot/store/pack.h"
#include "proto/store.pb-c.h"
#include "tests/lib/testutil.h"

struct fx {
	char *tmp;		/* the chunks directory */
	struct snap_err err;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->tmp = test_tmpdir();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	test_rmtree(f->tmp);
	free(f->tmp);
	free(f);
	return 0;
}

static void open_b(struct fx *f, unsigned flags, struct snap_backend *b)
{
	if (snap_backend_dir(f->tmp, SNAP_BACKEND_PACKS | flags, b, &f->err))
		fail_msg("open: %s", f->err.msg);
}

/* Value i: its length and bytes follow from i alone. */
static size_t value(uint32_t i, uint8_t *buf, size_t max)
{
	size_t len = (i * 2654435761u) % max;
	uint64_t x = i + 1;

	for (size_t k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[k] = (uint8_t)x;
	}
	return len;
}

static void key_of(uint32_t i, uint8_t key[SNAP_KEY_LEN])
{
	snap_sha256(&i, sizeof(i), key);
}

static void put_n(struct snap_backend *b, uint32_t from, uint32_t to,
		  size_t max)
{
	uint8_t key[SNAP_KEY_LEN], *buf = malloc(max);

	assert_non_null(buf);
	for (uint32_t i = from; i < to; i++) {
		size_t len = value(i, buf, max);

		key_of(i, key);
		assert_int_equal(b->ops->put(b->ctx, key, buf, len), 0);
	}
	free(buf);
}

/* Keys from..to-1 are there with their values, or (!there) are not. */
static void expect_n(struct snap_backend *b, uint32_t from, uint32_t to,
		     size_t max, bool there)
{
	uint8_t key[SNAP_KEY_LEN], *want = malloc(max), *got = malloc(max);
	size_t len;

	assert_non_null(want);
	assert_non_null(got);
	for (uint32_t i = from; i < to; i++) {
		size_t n = value(i, want, max);
		int ret;

		key_of(i, key);
		ret = b->ops->get(b->ctx, key, got, max, &len);
		if (!there) {
			if (ret != -ENOENT)
				fail_msg("key %u: %d, expected -ENOENT", i, ret);
			continue;
		}
		if (ret)
			fail_msg("key %u: %d (%s)", i, ret, strerror(-ret));
		assert_int_equal(len, n);
		assert_memory_equal(got, want, n);
	}
	free(want);
	free(got);
}

static int count_one(void *arg, const uint8_t *key, uint64_t size)
{
	(void)key;
	(void)size;
	++*(uint64_t *)arg;
	return 0;
}

static uint64_t count(struct snap_backend *b)
{
	uint64_t n = 0;

	assert_int_equal(b->ops->each(b->ctx, count_one, &n), 0);
	return n;
}

/* Bytes of every .pack file, and how many there are. */
static uint64_t pack_bytes(struct fx *f, int *npacks)
{
	char path[4096];
	uint64_t total = 0;
	struct stat st;

	*npacks = 0;
	for (uint32_t seq = 0; seq < 64; seq++) {
		snprintf(path, sizeof(path), "%s/packs/%010u.pack", f->tmp, seq);
		if (stat(path, &st))
			continue;
		total += (uint64_t)st.st_size;
		++*npacks;
	}
	return total;
}

static void test_persist(void **state)
{
	struct fx *f = *state;
	struct snap_backend b;
	uint8_t key[SNAP_KEY_LEN];
	int n;

	open_b(f, 0, &b);
	put_n(&b, 0, 300, 9000);
	assert_int_equal(b.ops->sync(b.ctx), 0);
	b.ops->free(b.ctx);
	assert_int_equal(test_count_entries(f->tmp), 1);	/* packs/ */

	open_b(f, 0, &b);
	assert_int_equal(count(&b), 300);
	expect_n(&b, 0, 300, 9000, true);
	for (uint32_t i = 0; i < 100; i++) {
		key_of(i, key);
		assert_int_equal(b.ops->del(b.ctx, key), 0);
	}
	assert_int_equal(b.ops->sync(b.ctx), 0);
	b.ops->free(b.ctx);

	/* Deleted stays deleted, in another process too. */
	open_b(f, SNAP_BACKEND_RDONLY, &b);
	assert_int_equal(count(&b), 200);
	expect_n(&b, 0, 100, 9000, false);
	expect_n(&b, 100, 300, 9000, true);
	key_of(5, key);
	assert_int_equal(b.ops->put(b.ctx, key, "x", 1), -EROFS);
	b.ops->free(b.ctx);
	pack_bytes(f, &n);
	assert_int_equal(n, 1);		/* one per writer that put */
}

/* 200 values of up to 1 MiB: two packs, the first sealed when full. */
static void test_seal_and_compact(void **state)
{
	struct fx *f = *state;
	struct snap_backend b;
	uint8_t key[SNAP_KEY_LEN];
	uint64_t before, after;
	int n;

	open_b(f, 0, &b);
	put_n(&b, 0, 200, 1u << 20);
	assert_int_equal(b.ops->sync(b.ctx), 0);
	before = pack_bytes(f, &n);
	assert_int_equal(n, 2);
	assert_true(before > PACK_MAX);
	for (uint32_t i = 0; i < 196; i++) {
		key_of(i, key);
		assert_int_equal(b.ops->del(b.ctx, key), 0);
	}
	assert_int_equal(b.ops->sync(b.ctx), 0);
	assert_int_equal(b.ops->compact(b.ctx), 0);
	after = pack_bytes(f, &n);
	if (after > 4ull << 20)
		fail_msg("%llu bytes of packs left for 4 values under 1 MiB",
			 (unsigned long long)after);
	expect_n(&b, 196, 200, 1u << 20, true);
	b.ops->free(b.ctx);

	open_b(f, 0, &b);
	assert_int_equal(count(&b), 4);
	expect_n(&b, 0, 196, 1u << 20, false);
	expect_n(&b, 196, 200, 1u << 20, true);
	b.ops->free(b.ctx);
}

/* A put no sync covered, cut short by a crash, is lost alone. */
static void test_torn_tail(void **state)
{
	struct fx *f = *state;
	struct snap_backend b;
	char path[4096];
	struct stat st;

	open_b(f, 0, &b);
	put_n(&b, 0, 2, 5000);
	assert_int_equal(b.ops->sync(b.ctx), 0);
	put_n(&b, 2, 4, 5000);
	b.ops->free(b.ctx);		/* no sync: 2 and 3 past the index */
	snprintf(path, sizeof(path), "%s/packs/%010u.pack", f->tmp, 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - 10), 0);

	open_b(f, SNAP_BACKEND_RDONLY, &b);
	expect_n(&b, 0, 3, 5000, true);		/* whole, read past it */
	expect_n(&b, 3, 4, 5000, false);	/* torn */
	b.ops->free(b.ctx);
	open_b(f, 0, &b);			/* seals it, writes on */
	put_n(&b, 10, 12, 5000);
	assert_int_equal(b.ops->sync(b.ctx), 0);
	b.ops->free(b.ctx);
	open_b(f, 0, &b);
	assert_int_equal(count(&b), 5);
	expect_n(&b, 0, 3, 5000, true);
	expect_n(&b, 10, 12, 5000, true);
	b.ops->free(b.ctx);
}

/* A reader open before a writer's puts finds them once synced. */
static void test_reader_follows(void **state)
{
	struct fx *f = *state;
	struct snap_backend w, r;

	open_b(f, 0, &w);
	open_b(f, SNAP_BACKEND_RDONLY, &r);
	expect_n(&r, 0, 3, 3000, false);
	put_n(&w, 0, 3, 3000);
	assert_int_equal(w.ops->sync(w.ctx), 0);
	expect_n(&r, 0, 3, 3000, true);
	put_n(&w, 3, 6, 3000);		/* past the index, whole */
	expect_n(&r, 3, 6, 3000, true);
	w.ops->free(w.ctx);
	r.ops->free(r.ctx);
}

static void write_index(struct fx *f, uint32_t seq,
			const Snapfs__Store__PackIndex *m)
{
	size_t len = protobuf_c_message_get_packed_size(&m->base);
	uint8_t *buf = malloc(len + 1);
	char path[4096];

	assert_non_null(buf);
	protobuf_c_message_pack(&m->base, buf);
	snprintf(path, sizeof(path), "%s/packs/%010u.idx", f->tmp, seq);
	if (frame_publish(path, buf, len, 0, &f->err))
		fail_msg("%s", f->err.msg);
	free(buf);
}

static void test_hostile(void **state)
{
	struct fx *f = *state;
	Snapfs__Store__PackIndex m = SNAPFS__STORE__PACK_INDEX__INIT;
	enum { N = 200000 };
	struct snap_backend b;
	uint64_t *offs = calloc(N, sizeof(*offs));
	uint32_t *lens = calloc(N, sizeof(*lens));
	uint8_t *keys = calloc(N, SNAP_KEY_LEN), rec[PACK_REC_HDR];
	char path[4096];
	int fd;

	assert_true(offs && lens && keys);
	open_b(f, 0, &b);
	put_n(&b, 0, 2, 1000);
	assert_int_equal(b.ops->sync(b.ctx), 0);
	b.ops->free(b.ctx);

	/* A damaged index is refused by name. */
	snprintf(path, sizeof(path), "%s/packs/%010u.idx", f->tmp, 0);
	{
		int x = open(path, O_RDWR);
		uint8_t c;

		assert_true(x >= 0);
		assert_int_equal(pread(x, &c, 1, FRAME_HDR + 3), 1);
		c ^= 1;
		assert_int_equal(pwrite(x, &c, 1, FRAME_HDR + 3), 1);
		close(x);
	}
	assert_int_equal(snap_backend_dir(f->tmp, SNAP_BACKEND_PACKS, &b,
					  &f->err), -EBADMSG);
	if (!strstr(f->err.msg, "packs/0000000000.idx"))
		fail_msg("\"%s\" does not name the index", f->err.msg);

	/* An index listing records the pack does not have: none entered. */
	for (uint32_t i = 0; i < N; i++) {
		key_of(1000 + i, keys + (size_t)i * SNAP_KEY_LEN);
		offs[i] = (uint64_t)i << 30;
		lens[i] = PACK_VALUE_MAX;
	}
	m.keys.data = keys;
	m.keys.len = (size_t)N * SNAP_KEY_LEN;
	m.offsets = offs;
	m.n_offsets = N;
	m.lengths = lens;
	m.n_lengths = N;
	m.end = UINT64_MAX;
	write_index(f, 0, &m);
	open_b(f, SNAP_BACKEND_RDONLY, &b);
	assert_int_equal(count(&b), 0);
	expect_n(&b, 1000, 1010, 100, false);
	b.ops->free(b.ctx);

	/* Lists that disagree in length are refused. */
	m.n_lengths = N - 1;
	write_index(f, 0, &m);
	assert_int_equal(snap_backend_dir(f->tmp, SNAP_BACKEND_PACKS, &b,
					  &f->err), -EBADMSG);
	snprintf(path, sizeof(path), "%s/packs/%010u.idx", f->tmp, 0);
	assert_int_equal(unlink(path), 0);

	/* A record declaring 4 GiB past the end of a pack: the end. */
	snprintf(path, sizeof(path), "%s/packs/%010u.pack", f->tmp, 0);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	memcpy(rec, PACK_REC_MAGIC, 4);
	memcpy(rec + 4, "\xf0\xff\xff\xff\x0f\x00\x00\x00", 8);
	key_of(7, rec + 12);
	assert_int_equal(write(fd, rec, sizeof(rec)), (ssize_t)sizeof(rec));
	close(fd);
	open_b(f, SNAP_BACKEND_RDONLY, &b);
	assert_int_equal(count(&b), 2);
	expect_n(&b, 0, 2, 1000, true);
	b.ops->free(b.ctx);
	free(offs);
	free(lens);
	free(keys);
}

struct putter {
	struct snap_backend *b;
	uint32_t from, to;
};

static void *putter(void *arg)
{
	struct putter *p = arg;

	put_n(p->b, p->from, p->to, 20000);
	return NULL;
}

/* Four threads at once, overlapping by half: every key, once. */
static void test_threads(void **state)
{
	struct fx *f = *state;
	struct snap_backend b;
	struct putter p[4];
	pthread_t t[4];

	open_b(f, 0, &b);
	for (int i = 0; i < 4; i++) {
		p[i] = (struct putter){ &b, (uint32_t)i * 500,
					(uint32_t)i * 500 + 1000 };
		assert_int_equal(pthread_create(&t[i], NULL, putter, &p[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(count(&b), 2500);
	expect_n(&b, 0, 2500, 20000, true);
	assert_int_equal(b.ops->sync(b.ctx), 0);
	b.ops->free(b.ctx);
	open_b(f, SNAP_BACKEND_RDONLY, &b);
	assert_int_equal(count(&b), 2500);
	expect_n(&b, 0, 2500, 20000, true);
	b.ops->free(b.ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal_and_compact, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reader_follows, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
