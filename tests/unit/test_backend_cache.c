/* SPDX-License-Identifier: MIT */
/*
 * The cache tier (snap_backend_cache): in front of a memory backend that
 * counts its gets (the "remote"), over a local directory. The backend
 * contract; a second read served locally; the bound on the local bytes
 * held after every read, least recently used evicted first; a corrupt,
 * cut or lost local copy fetched again and repaired, never returned;
 * copies kept across a restart, trimmed to a smaller bound; has and size
 * from the remote, whatever is here; a value too
 * large to keep; threads reading at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/backend.h"
#include "tests/lib/testutil.h"

#define VAL	1000			/* bytes of each value */
#define COPY	(VAL + 32)		/* what its local copy takes */
#define KEYS	16

/* ---- a remote that counts its gets, and that the cache cannot free ------- */

struct remote {
	struct snap_backend mem;
	atomic_int gets;
};

static int r_put(void *ctx, const uint8_t *key, const void *buf, size_t len)
{
	struct remote *r = ctx;

	return r->mem.ops->put(r->mem.ctx, key, buf, len);
}

static int r_get(void *ctx, const uint8_t *key, void *buf, size_t cap,
		 size_t *len)
{
	struct remote *r = ctx;

	atomic_fetch_add(&r->gets, 1);
	return r->mem.ops->get(r->mem.ctx, key, buf, cap, len);
}

static int r_has(void *ctx, const uint8_t *key)
{
	struct remote *r = ctx;

	return r->mem.ops->has(r->mem.ctx, key);
}

static int r_size(void *ctx, const uint8_t *key, uint64_t *size)
{
	struct remote *r = ctx;

	return r->mem.ops->size(r->mem.ctx, key, size);
}

static int r_del(void *ctx, const uint8_t *key)
{
	struct remote *r = ctx;

	return r->mem.ops->del(r->mem.ctx, key);
}

static int r_each(void *ctx, int (*fn)(void *, const uint8_t *, uint64_t),
		  void *arg)
{
	struct remote *r = ctx;

	return r->mem.ops->each(r->mem.ctx, fn, arg);
}

static int r_sync(void *ctx)
{
	return 0;
}

static void r_free(void *ctx)
{
}

static const struct snap_backend_ops remote_ops = {
	.put = r_put, .get = r_get, .has = r_has, .size = r_size,
	.del = r_del, .each = r_each, .sync = r_sync, .free = r_free,
};

/* ---- the fixture --------------------------------------------------------- */

struct fx {
	char *tmp, *dir;
	struct remote remote;
	struct snap_backend c;		/* the cache */
	uint8_t key[KEYS][SNAP_KEY_LEN];
	uint8_t val[KEYS][VAL];
	struct snap_err err;
};

static void cache_open(struct fx *f, uint64_t max)
{
	struct snap_backend r = { &remote_ops, &f->remote };

	if (snap_backend_cache(&r, f->dir, max, &f->c, &f->err))
		fail_msg("snap_backend_cache: %s", f->err.msg);
}

static void cache_close(struct fx *f)
{
	f->c.ops->free(f->c.ctx);
	f->c.ops = NULL;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || snap_backend_mem(&f->remote.mem))
		return -1;
	f->tmp = test_tmpdir();
	if (asprintf(&f->dir, "%s/cache", f->tmp) < 0)
		return -1;
	for (int i = 0; i < KEYS; i++) {
		for (int j = 0; j < VAL; j++)
			f->val[i][j] = (uint8_t)(i * 31 + j * 7 + j / 13);
		snap_sha256(f->val[i], VAL, f->key[i]);
		if (f->remote.mem.ops->put(f->remote.mem.ctx, f->key[i],
					   f->val[i], VAL))
			return -1;
	}
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	if (f->c.ops)
		cache_close(f);
	f->remote.mem.ops->free(f->remote.mem.ctx);
	test_rmtree(f->tmp);
	free(f->dir);
	free(f->tmp);
	free(f);
	return 0;
}

/* Read key i through the cache; it must be its value. */
static void get_ok(struct fx *f, int i)
{
	uint8_t buf[2 * VAL];
	size_t len = 0;

	assert_int_equal(f->c.ops->get(f->c.ctx, f->key[i], buf, sizeof(buf),
				       &len), 0);
	assert_int_equal(len, VAL);
	assert_memory_equal(buf, f->val[i], VAL);
}

/* Remote gets that reading key i costs: 0 (a hit) or 1 (a fetch). */
static int fetches(struct fx *f, int i)
{
	int before = atomic_load(&f->remote.gets);

	get_ok(f, i);
	return atomic_load(&f->remote.gets) - before;
}

static int add_size(void *arg, const uint8_t key[SNAP_KEY_LEN], uint64_t size)
{
	*(uint64_t *)arg += size;
	return 0;
}

/* Bytes of the local copies, as a new process finds them in the dir. */
static uint64_t local_bytes(struct fx *f)
{
	struct snap_backend d;
	uint64_t n = 0;

	if (snap_backend_dir(f->dir, SNAP_BACKEND_RDONLY, &d, &f->err))
		fail_msg("%s", f->err.msg);
	assert_int_equal(d.ops->each(d.ctx, add_size, &n), 0);
	d.ops->free(d.ctx);
	return n;
}

/* The local copy of key i: dir/ab/abcd... */
static void copy_path(struct fx *f, int i, char *path, size_t cap)
{
	char hex[2 * SNAP_KEY_LEN + 1];

	snap_hex(f->key[i], SNAP_KEY_LEN, hex);
	snprintf(path, cap, "%s/%.2s/%s", f->dir, hex, hex);
}

/* ---- cases --------------------------------------------------------------- */

static void test_contract(void **state)
{
	struct fx *f = *state;
	uint8_t buf[VAL], key[SNAP_KEY_LEN];
	uint64_t size = 0, n = 0;
	size_t len;
	int one = 1;

	cache_open(f, 4 * COPY);
	snap_sha256(&one, sizeof(one), key);
	assert_int_equal(f->c.ops->put(f->c.ctx, key, "abc", 3), 0);
	assert_int_equal(f->c.ops->has(f->c.ctx, key), 1);
	assert_int_equal(f->c.ops->size(f->c.ctx, key, &size), 0);
	assert_int_equal(size, 3);
	assert_int_equal(local_bytes(f), 0);	/* a put does not fill it */
	assert_int_equal(f->c.ops->get(f->c.ctx, key, buf, 2, &len), -EFBIG);
	assert_int_equal(f->c.ops->get(f->c.ctx, key, buf, 3, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(local_bytes(f), 3 + 32);
	assert_int_equal(f->c.ops->get(f->c.ctx, key, buf, 2, &len), -EFBIG);
	assert_int_equal(f->c.ops->each(f->c.ctx, add_size, &n), 0);
	assert_int_equal(n, KEYS * VAL + 3);
	assert_int_equal(f->c.ops->sync(f->c.ctx), 0);
	assert_int_equal(f->c.ops->del(f->c.ctx, key), 0);
	assert_int_equal(f->c.ops->del(f->c.ctx, key), -ENOENT);
	assert_int_equal(f->c.ops->has(f->c.ctx, key), 0);
	assert_int_equal(f->c.ops->get(f->c.ctx, key, buf, VAL, &len), -ENOENT);
	assert_int_equal(local_bytes(f), 0);	/* the copy went too */
}

/* Room for 4 copies: hits, the bound, least recently used out first. */
static void test_bound_lru(void **state)
{
	struct fx *f = *state;

	cache_open(f, 4 * COPY + COPY / 2);
	for (int i = 0; i < 4; i++)
		assert_int_equal(fetches(f, i), 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(fetches(f, i), 0);
	assert_int_equal(local_bytes(f), 4 * COPY);
	assert_int_equal(fetches(f, 0), 0);	/* 0 is now the newest */
	assert_int_equal(fetches(f, 4), 1);	/* evicts 1, the oldest */
	assert_int_equal(local_bytes(f), 4 * COPY);
	assert_int_equal(fetches(f, 0), 0);
	assert_int_equal(fetches(f, 2), 0);
	assert_int_equal(fetches(f, 1), 1);	/* it was evicted */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < KEYS; i++) {
			get_ok(f, (i * 7 + round) % KEYS);
			assert_true(local_bytes(f) <= 4 * COPY + COPY / 2);
		}
	}
	assert_int_equal(local_bytes(f), 4 * COPY);
}

/* XOR byte at of key i's copy, or cut the copy to at bytes. */
static void damage(struct fx *f, int i, size_t at, int cut)
{
	char path[4096];
	uint8_t b;
	int fd;

	copy_path(f, i, path, sizeof(path));
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	if (cut) {
		assert_int_equal(ftruncate(fd, (off_t)at), 0);
	} else {
		assert_int_equal(pread(fd, &b, 1, (off_t)at), 1);
		b ^= 0x40;
		assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
	}
	close(fd);
}

/* A bad copy is never returned: fetched again, and the copy repaired. */
static void test_corrupt_copy(void **state)
{
	struct fx *f = *state;
	char path[4096];

	cache_open(f, 8 * COPY);
	assert_int_equal(fetches(f, 0), 1);
	damage(f, 0, 32 + 500, 0);		/* in the value */
	assert_int_equal(fetches(f, 0), 1);
	assert_int_equal(fetches(f, 0), 0);	/* repaired */
	damage(f, 0, 3, 0);			/* in its digest */
	assert_int_equal(fetches(f, 0), 1);
	damage(f, 0, 40, 1);			/* cut short */
	assert_int_equal(fetches(f, 0), 1);
	damage(f, 0, 10, 1);			/* shorter than a digest */
	assert_int_equal(fetches(f, 0), 1);
	copy_path(f, 0, path, sizeof(path));
	assert_int_equal(unlink(path), 0);	/* lost */
	assert_int_equal(fetches(f, 0), 1);
	assert_int_equal(fetches(f, 0), 0);
	assert_int_equal(local_bytes(f), COPY);
}

/* Copies outlive the process; a smaller bound trims them at once. */
static void test_restart(void **state)
{
	struct fx *f = *state;

	cache_open(f, 8 * COPY);
	for (int i = 0; i < 6; i++)
		get_ok(f, i);
	cache_close(f);
	cache_open(f, 8 * COPY);
	for (int i = 0; i < 6; i++)
		assert_int_equal(fetches(f, i), 0);
	cache_close(f);
	cache_open(f, 3 * COPY);
	assert_int_equal(local_bytes(f), 3 * COPY);
	cache_close(f);
	cache_open(f, 8 * COPY);
	int hits = 0;

	for (int i = 0; i < 6; i++)
		hits += !fetches(f, i);
	assert_int_equal(hits, 3);
}

/*
 * A chunk another host's gc removed from the remote: has and size say so
 * although a copy is here (the store would otherwise never put it
 * again); the copy's bytes, still right, are what a get returns.
 */
static void test_remote_truth(void **state)
{
	struct fx *f = *state;
	uint64_t size;

	cache_open(f, 8 * COPY);
	assert_int_equal(fetches(f, 0), 1);
	assert_int_equal(f->remote.mem.ops->del(f->remote.mem.ctx, f->key[0]),
			 0);
	assert_int_equal(f->c.ops->has(f->c.ctx, f->key[0]), 0);
	assert_int_equal(f->c.ops->size(f->c.ctx, f->key[0], &size), -ENOENT);
	assert_int_equal(fetches(f, 0), 0);
}

/* A value larger than the whole cache is served, not kept. */
static void test_too_large(void **state)
{
	struct fx *f = *state;

	cache_open(f, COPY - 1);
	assert_int_equal(fetches(f, 0), 1);
	assert_int_equal(fetches(f, 0), 1);
	assert_int_equal(local_bytes(f), 0);
}

static void test_bad_dir(void **state)
{
	struct fx *f = *state;
	struct snap_backend r = { &remote_ops, &f->remote }, c;
	char path[4096];

	snprintf(path, sizeof(path), "%s/no/such/dir", f->tmp);
	f->err.msg[0] = '\0';
	assert_int_equal(snap_backend_cache(&r, path, COPY, &c, &f->err),
			 -ENOENT);
	assert_non_null(strstr(f->err.msg, path));
	assert_non_null(r.ops);			/* still the caller's */
}

struct reader {
	struct fx *f;
	unsigned seed;
	int bad;
};

static void *reader(void *arg)
{
	struct reader *r = arg;
	uint8_t buf[VAL];
	size_t len;

	for (int n = 0; n < 400; n++) {
		int i = (int)(rand_r(&r->seed) % KEYS);

		if (r->f->c.ops->get(r->f->c.ctx, r->f->key[i], buf, VAL,
				     &len) || len != VAL ||
		    memcmp(buf, r->f->val[i], VAL))
			r->bad++;
	}
	return NULL;
}

/* Threads read at once through a cache with room for a quarter. */
static void test_threads(void **state)
{
	struct fx *f = *state;
	struct reader r[4];
	pthread_t t[4];

	cache_open(f, KEYS / 4 * COPY);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct reader){ f, (unsigned)i + 1, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, reader, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(r[i].bad, 0);
	}
	assert_true(local_bytes(f) <= KEYS / 4 * COPY);
	for (int i = 0; i < KEYS; i++)
		get_ok(f, i);
}

#define CASE(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_contract),
		CASE(test_bound_lru),
		CASE(test_corrupt_copy),
		CASE(test_restart),
		CASE(test_remote_truth),
		CASE(test_too_large),
		CASE(test_bad_dir),
		CASE(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
