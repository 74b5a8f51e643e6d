/* SPDX-License-Identifier: MIT */
/*
 * The contract of snapshot/store/meta.h, over each place a store's
 * metadata can be: a local directory (meta_dir.c), always; and a Ceph
 * RADOS pool (meta_rados.c) when the environment names a cluster
 * (CEPH_CONF, and SNAP_TEST_RADOS_POOL a pool of it:
 * tests/integration/rados.sh starts one). Each case runs on a new,
 * empty store's metadata.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "snapshot/store/meta.h"
#include "snapshot/store/meta_rados.h"
#include "snapshot/store/rados_conn.h"
#include "snapshot/store/store_int.h"
#include "tests/lib/testutil.h"

struct fx {
	bool rados;
	char *tmp;			/* dir */
	char *name;			/* rados: the store's name */
	struct rados_conn *c;
	struct snap_meta m, m2;		/* two opens of one store */
	struct snap_err err;
};

#define OK(f, call)							\
	do {								\
		int ret_ = (call);					\
		if (ret_)						\
			fail_msg("%s: %d: %s", #call, ret_, (f)->err.msg); \
	} while (0)

static int setup(void **state, bool rados)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t rnd[6];

	assert_non_null(f);
	f->rados = rados;
	if (rados) {
		assert_int_equal(getrandom(rnd, sizeof(rnd), 0), sizeof(rnd));
		assert_true(asprintf(&f->name, "rados:%s/test-meta-%02x%02x"
				     "%02x%02x%02x%02x",
				     getenv("SNAP_TEST_RADOS_POOL"), rnd[0],
				     rnd[1], rnd[2], rnd[3], rnd[4],
				     rnd[5]) > 0);
		OK(f, rados_conn_open(f->name, NULL, &f->c, &f->err));
		OK(f, meta_rados_init(f->c, &f->err));
		OK(f, meta_rados_open(f->c, &f->m, &f->err));
		OK(f, meta_rados_open(f->c, &f->m2, &f->err));
	} else {
		f->tmp = test_tmpdir();
		OK(f, meta_dir_init(f->tmp, &f->err));
		OK(f, meta_dir_open(f->tmp, &f->m, &f->err));
		OK(f, meta_dir_open(f->tmp, &f->m2, &f->err));
	}
	*state = f;
	return 0;
}

static int setup_dir(void **state)
{
	return setup(state, false);
}

static int setup_rados(void **state)
{
	return setup(state, true);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	f->m.ops->free(f->m.ctx);
	f->m2.ops->free(f->m2.ctx);
	rados_conn_put(f->c);
	if (f->tmp)
		test_rmtree(f->tmp);
	free(f->tmp);
	free(f->name);
	free(f);
	return 0;
}

#define M(f)	(&(f)->m)
#define CALL(f, op, ...) (f)->m.ops->op((f)->m.ctx, __VA_ARGS__)

/* Object name holds exactly the n bytes at want. */
static void expect_object(struct fx *f, const char *name, const void *want,
			  size_t n)
{
	uint8_t *buf;
	size_t len;

	OK(f, CALL(f, get, name, 1 << 20, &buf, &len, &f->err));
	assert_int_equal(len, n);
	assert_memory_equal(buf, want, n);
	free(buf);
}

static void test_objects(void **state)
{
	struct fx *f = *state;
	uint8_t *buf;
	size_t len;

	OK(f, CALL(f, put, "store.bin", "first", 5, META_NOREPLACE |
		   META_DURABLE, &f->err));
	expect_object(f, "store.bin", "first", 5);
	assert_int_equal(CALL(f, put, "store.bin", "again", 5, META_NOREPLACE,
			      &f->err), -EEXIST);
	expect_object(f, "store.bin", "first", 5);
	OK(f, CALL(f, put, "store.bin", "second!", 7, 0, &f->err));
	expect_object(f, "store.bin", "second!", 7);
	/* A size past max is refused, not read. */
	assert_int_equal(CALL(f, get, "store.bin", 6, &buf, &len, &f->err),
			 -EFBIG);
	assert_int_equal(CALL(f, get, "deltas/none", 64, &buf, &len, &f->err),
			 -ENOENT);
	assert_int_equal(CALL(f, del, "deltas/none", &f->err), -ENOENT);
	OK(f, CALL(f, del, "store.bin", &f->err));
	assert_int_equal(CALL(f, get, "store.bin", 64, &buf, &len, &f->err),
			 -ENOENT);
}

/* An append cuts what lies past its offset (a torn append), then adds. */
static void test_append(void **state)
{
	struct fx *f = *state;

	OK(f, CALL(f, put, "deltas/d", "AAAABBBBtorn", 12, 0, &f->err));
	OK(f, CALL(f, append, "deltas/d", 8, "CC", 2, false, &f->err));
	expect_object(f, "deltas/d", "AAAABBBBCC", 10);
	OK(f, CALL(f, append, "deltas/d", 10, "DD", 2, true, &f->err));
	OK(f, CALL(f, sync, "deltas/d", &f->err));
	expect_object(f, "deltas/d", "AAAABBBBCCDD", 12);
	assert_int_equal(CALL(f, append, "deltas/gone", 0, "x", 1, false,
			      &f->err), -ENOENT);
}

struct seen {
	char names[8][64];
	int n;
};

static int see(void *arg, const char *name)
{
	struct seen *s = arg;

	if (s->n < 8)
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->n++;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_each(void **state)
{
	struct fx *f = *state;
	struct seen s = { 0 };

	OK(f, CALL(f, put, "images/b", "1", 1, 0, &f->err));
	OK(f, CALL(f, put, "images/a.ref", "2", 1, 0, &f->err));
	OK(f, CALL(f, put, "deltas/c", "3", 1, 0, &f->err));
	OK(f, CALL(f, each, "images", see, &s, &f->err));
	assert_int_equal(s.n, 2);
	qsort(s.names, 2, sizeof(s.names[0]), by_name);
	assert_string_equal(s.names[0], "a.ref");
	assert_string_equal(s.names[1], "b");
}

/* An image whose ref object exists, as snap_image_create makes it. */
static void make_image(struct fx *f, uint8_t id[SNAP_ID_LEN], uint8_t seed)
{
	memset(id, seed, SNAP_ID_LEN);
	OK(f, meta_ref_write(&f->m, id, 0, &f->err));
}

static unsigned nlink_of(struct fx *f, const uint8_t id[SNAP_ID_LEN])
{
	unsigned n = 99;

	OK(f, CALL(f, nlink, id, &n, &f->err));
	return n;
}

static void test_names(void **state)
{
	struct fx *f = *state;
	uint8_t a[SNAP_ID_LEN], b[SNAP_ID_LEN], got[SNAP_ID_LEN];
	struct seen s = { 0 };
	struct stat st;
	unsigned n;

	make_image(f, a, 0xaa);
	make_image(f, b, 0xbb);
	OK(f, CALL(f, mkdir, "s1", &f->err));
	assert_int_equal(CALL(f, mkdir, "s1", &f->err), -EEXIST);
	OK(f, CALL(f, dir_stat, "s1", &st, &f->err));
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(CALL(f, dir_stat, "s2", &st, &f->err), -ENOENT);

	OK(f, CALL(f, link, "s1/m", a, &f->err));
	assert_int_equal(CALL(f, link, "s1/m", b, &f->err), -EEXIST);
	assert_int_equal(CALL(f, link, "nosnap/m", a, &f->err), -ENOENT);
	memset(got, 0xcc, sizeof(got));
	assert_int_equal(CALL(f, link, "s1/x", got, &f->err), -ENOENT);
	OK(f, CALL(f, link, "s1/copy", a, &f->err));
	OK(f, CALL(f, link, "s1/b", b, &f->err));
	OK(f, CALL(f, lookup, "s1/copy", got, &n, &f->err));
	assert_memory_equal(got, a, SNAP_ID_LEN);
	assert_int_equal(n, 2);
	assert_int_equal(nlink_of(f, b), 1);
	assert_int_equal(CALL(f, lookup, "s1/none", got, &n, &f->err),
			 -ENOENT);

	OK(f, CALL(f, list, "s1", see, &s, &f->err));
	assert_int_equal(s.n, 3);
	assert_string_equal(s.names[0], "b");
	assert_string_equal(s.names[1], "copy");
	assert_string_equal(s.names[2], "m");

	/* rename: refused over a name with noreplace; over it without;
	 * and between two names of one image, nothing changes. */
	assert_int_equal(CALL(f, rename, "s1/copy", "s1/b", true, &f->err),
			 -EEXIST);
	OK(f, CALL(f, rename, "s1/copy", "s1/m", false, &f->err));
	OK(f, CALL(f, lookup, "s1/copy", got, &n, &f->err));
	assert_int_equal(n, 2);
	OK(f, CALL(f, rename, "s1/copy", "s1/b", false, &f->err));
	OK(f, CALL(f, lookup, "s1/b", got, NULL, &f->err));
	assert_memory_equal(got, a, SNAP_ID_LEN);
	assert_int_equal(nlink_of(f, b), 0);
	assert_int_equal(CALL(f, lookup, "s1/copy", got, &n, &f->err),
			 -ENOENT);

	OK(f, CALL(f, unlink, "s1/b", &f->err));
	assert_int_equal(nlink_of(f, a), 1);
	assert_int_equal(CALL(f, unlink, "s1/b", &f->err), -ENOENT);
	assert_int_equal(CALL(f, rmdir, "s1", &f->err), -ENOTEMPTY);
}

static void test_snapshot_rename(void **state)
{
	struct fx *f = *state;
	uint8_t a[SNAP_ID_LEN], got[SNAP_ID_LEN];
	struct seen s = { 0 };
	unsigned n;

	make_image(f, a, 0x11);
	OK(f, CALL(f, mkdir, "s1", &f->err));
	OK(f, CALL(f, mkdir, "s2", &f->err));
	OK(f, CALL(f, link, "s1/memory.bin", a, &f->err));
	OK(f, CALL(f, link, "s2/state.bin", a, &f->err));
	assert_int_equal(CALL(f, rename, "s1", "s2", true, &f->err), -EEXIST);
	assert_int_equal(CALL(f, rename, "s1", "s2", false, &f->err),
			 -ENOTEMPTY);
	OK(f, CALL(f, rename, "s1", "s3", true, &f->err));
	OK(f, CALL(f, lookup, "s3/memory.bin", got, &n, &f->err));
	assert_memory_equal(got, a, SNAP_ID_LEN);
	assert_int_equal(n, 2);
	assert_int_equal(CALL(f, lookup, "s1/memory.bin", got, &n, &f->err),
			 -ENOENT);
	OK(f, CALL(f, list, NULL, see, &s, &f->err));
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "s2");
	assert_string_equal(s.names[1], "s3");
	OK(f, CALL(f, unlink, "s2/state.bin", &f->err));
	OK(f, CALL(f, rmdir, "s2", &f->err));
	assert_int_equal(CALL(f, rmdir, "s2", &f->err), -ENOENT);
	OK(f, CALL(f, sync_names, NULL, &f->err));
}

/*
 * Two opens of one store. A directory: shared opens, a gc that needs the
 * store alone, one writer. RADOS: shared opens and writers, a gc beside
 * readers but no other writer, one writer per image.
 */
static void test_locks(void **state)
{
	struct fx *f = *state;
	struct snap_meta *m = &f->m, *m2 = &f->m2;
	uint8_t a[SNAP_ID_LEN] = { 1 }, b[SNAP_ID_LEN] = { 2 };

	OK(f, m->ops->lock(m->ctx, META_LOCK_OPEN, &f->err));
	OK(f, m2->ops->lock(m2->ctx, META_LOCK_OPEN, &f->err));
	OK(f, m->ops->lock(m->ctx, META_LOCK_WRITE, &f->err));
	if (!f->rados) {
		assert_null(m->ops->lock_image);
		assert_null(m->ops->publish);
		assert_int_equal(m2->ops->lock(m2->ctx, META_LOCK_WRITE,
					       &f->err), -EBUSY);
		assert_int_equal(m->ops->lock(m->ctx, META_LOCK_GC, &f->err),
				 -EBUSY);
		assert_non_null(strstr(f->err.msg, "gc needs it alone"));
		m2->ops->unlock(m2->ctx, META_LOCK_OPEN);
		OK(f, m->ops->lock(m->ctx, META_LOCK_GC, &f->err));
		/* While gc runs, no other open. */
		assert_int_equal(m2->ops->lock(m2->ctx, META_LOCK_OPEN,
					       &f->err), -EBUSY);
		m->ops->unlock(m->ctx, META_LOCK_GC);
		OK(f, m2->ops->lock(m2->ctx, META_LOCK_OPEN, &f->err));
		m->ops->unlock(m->ctx, META_LOCK_WRITE);
		OK(f, m2->ops->lock(m2->ctx, META_LOCK_WRITE, &f->err));
		return;
	}
	/* Two writers; gc refused while the other writes. */
	OK(f, m2->ops->lock(m2->ctx, META_LOCK_WRITE, &f->err));
	assert_int_equal(m->ops->lock(m->ctx, META_LOCK_GC, &f->err), -EBUSY);
	assert_non_null(strstr(f->err.msg, "open for writing"));
	m2->ops->unlock(m2->ctx, META_LOCK_WRITE);
	/* A reader beside gc, but no writer, nor a second gc. */
	OK(f, m->ops->lock(m->ctx, META_LOCK_GC, &f->err));
	assert_int_equal(m2->ops->lock(m2->ctx, META_LOCK_WRITE, &f->err),
			 -EBUSY);
	m2->ops->unlock(m2->ctx, META_LOCK_OPEN);
	OK(f, m2->ops->lock(m2->ctx, META_LOCK_OPEN, &f->err));
	m->ops->unlock(m->ctx, META_LOCK_GC);
	OK(f, m2->ops->lock(m2->ctx, META_LOCK_WRITE, &f->err));

	/* One writer per image. */
	OK(f, m->ops->lock_image(m->ctx, a, &f->err));
	OK(f, m->ops->lock_image(m->ctx, a, &f->err));	/* held: no-op */
	assert_int_equal(m2->ops->lock_image(m2->ctx, a, &f->err), -EBUSY);
	assert_non_null(strstr(f->err.msg, "another host or process"));
	OK(f, m2->ops->lock_image(m2->ctx, b, &f->err));
	m->ops->unlock_image(m->ctx, a);
	OK(f, m2->ops->lock_image(m2->ctx, a, &f->err));
	assert_int_equal(m->ops->lock_image(m->ctx, b, &f->err), -EBUSY);
}

struct recs {
	unsigned n;
	uint8_t first[SNAP_ID_LEN];
	unsigned ids;
};

static int rec_id(void *arg, const uint8_t id[SNAP_ID_LEN])
{
	struct recs *r = arg;

	if (r->ids++ == 0)
		memcpy(r->first, id, SNAP_ID_LEN);
	return 0;
}

static int rec_seen(void *arg, const uint8_t *buf, size_t len)
{
	struct recs *r = arg;
	struct snap_err err;

	r->n++;
	return meta_open_decode(buf, len, "record", rec_id, r, &err);
}

/*
 * Open records (RADOS): another open sees each live open's record, not
 * its own; a record goes with its open's lock, and gc's reading removes
 * it for good.
 */
static void test_records(void **state)
{
	struct fx *f = *state;
	struct snap_meta *m = &f->m, *m2 = &f->m2;
	uint8_t ids[2][SNAP_ID_LEN] = { { 7 }, { 9 } }, *buf;
	struct recs r = { 0 };
	size_t len;

	OK(f, m->ops->lock(m->ctx, META_LOCK_OPEN, &f->err));
	OK(f, m2->ops->lock(m2->ctx, META_LOCK_OPEN, &f->err));
	OK(f, m2->ops->records(m2->ctx, rec_seen, &r, &f->err));
	assert_int_equal(r.n, 0);
	assert_int_equal(meta_open_encode((const uint8_t (*)[SNAP_ID_LEN])ids,
					  2, &buf, &len), 0);
	OK(f, m->ops->publish(m->ctx, buf, len, &f->err));
	OK(f, m2->ops->publish(m2->ctx, buf, len, &f->err));
	free(buf);
	OK(f, m2->ops->records(m2->ctx, rec_seen, &r, &f->err));
	assert_int_equal(r.n, 1);		/* m's, not its own */
	assert_int_equal(r.ids, 2);
	assert_memory_equal(r.first, ids[0], SNAP_ID_LEN);
	OK(f, m->ops->publish(m->ctx, NULL, 0, &f->err));
	memset(&r, 0, sizeof(r));
	OK(f, m2->ops->records(m2->ctx, rec_seen, &r, &f->err));
	assert_int_equal(r.n, 0);

	/* An open that let go of its lock: its record is not alive. */
	assert_int_equal(meta_open_encode((const uint8_t (*)[SNAP_ID_LEN])ids,
					  1, &buf, &len), 0);
	OK(f, m->ops->publish(m->ctx, buf, len, &f->err));
	free(buf);
	m->ops->unlock(m->ctx, META_LOCK_OPEN);
	OK(f, m2->ops->records(m2->ctx, rec_seen, &r, &f->err));
	assert_int_equal(r.n, 0);
	OK(f, m->ops->lock(m->ctx, META_LOCK_OPEN, &f->err));
	OK(f, m2->ops->records(m2->ctx, rec_seen, &r, &f->err));
	assert_int_equal(r.n, 0);		/* removed, not just skipped */
}

/*
 * A writer whose locks went a whole lease unrenewed (its renewals stood
 * still, as in a stopped process) writes nothing more, not even once
 * renewed again: another host may have held its locks meanwhile.
 */
static void test_lease_lapse(void **state)
{
	struct fx *f = *state;
	struct meta_rados *mr;
	struct snap_meta m3;
	uint8_t *buf;
	size_t len;

	setenv(RADOS_LEASE_ENV, "3", 1);
	OK(f, meta_rados_open(f->c, &m3, &f->err));
	unsetenv(RADOS_LEASE_ENV);
	mr = m3.ctx;
	OK(f, m3.ops->lock(m3.ctx, META_LOCK_OPEN, &f->err));
	OK(f, m3.ops->lock(m3.ctx, META_LOCK_WRITE, &f->err));
	OK(f, m3.ops->put(m3.ctx, "deltas/a", "abc", 3, 0, &f->err));
	pthread_mutex_lock(&mr->lock);		/* no renewal gets through */
	sleep(4);
	assert_int_equal(m3.ops->put(m3.ctx, "deltas/a", "x", 1, 0, &f->err),
			 -EIO);
	assert_non_null(strstr(f->err.msg, "not renewed"));
	assert_int_equal(m3.ops->append(m3.ctx, "deltas/a", 3, "d", 1, true,
					&f->err), -EIO);
	pthread_mutex_unlock(&mr->lock);
	sleep(2);				/* a renewal went through */
	assert_int_equal(m3.ops->put(m3.ctx, "deltas/a", "x", 1, 0, &f->err),
			 -EIO);
	m3.ops->free(m3.ctx);
	/* The object is as the last write before the lapse left it. */
	OK(f, f->m.ops->get(f->m.ctx, "deltas/a", 16, &buf, &len, &f->err));
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "abc", 3);
	free(buf);
}

/* A rados: name that names no pool, or more than a namespace, is
 * refused before any cluster is asked, in one line naming it. */
static void test_rados_names(void **state)
{
	static const char *const bad[] = {
		"rados:", "rados:/ns", "rados:pool/", "rados:pool/a/b",
	};
	struct rados_conn *c = NULL;
	struct snap_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err.msg[0] = '\0';
		assert_int_equal(rados_conn_open(bad[i], "/nonexistent", &c,
						 &err), -EINVAL);
		assert_null(c);
		if (!strstr(err.msg, bad[i]) || strchr(err.msg, '\n'))
			fail_msg("%s: \"%s\"", bad[i], err.msg);
	}
	assert_true(rados_is_name("rados:pool"));
	assert_false(rados_is_name("./rados:pool"));
}

#define BOTH(fn) \
	cmocka_unit_test_setup_teardown(fn, setup_dir, teardown)
#define RADOS(fn) \
	cmocka_unit_test_setup_teardown(fn, setup_rados, teardown)

int main(void)
{
	const struct CMUnitTest dir[] = {
		BOTH(test_objects), BOTH(test_append), BOTH(test_each),
		BOTH(test_names), BOTH(test_snapshot_rename),
		BOTH(test_locks),
	};
	const struct CMUnitTest rados[] = {
		RADOS(test_objects), RADOS(test_append), RADOS(test_each),
		RADOS(test_names), RADOS(test_snapshot_rename),
		RADOS(test_locks), RADOS(test_records),
		RADOS(test_lease_lapse),
	};
	const struct CMUnitTest names[] = {
		cmocka_unit_test(test_rados_names),
	};
	int ret = cmocka_run_group_tests_name("dir", dir, NULL, NULL);

	ret |= cmocka_run_group_tests_name("names", names, NULL, NULL);

	/* Only where a cluster was given (rados.sh): no skips elsewhere. */
	if (getenv("SNAP_TEST_RADOS_POOL"))
		ret |= cmocka_run_group_tests_name("rados", rados, NULL,
						   NULL);
	return ret;
}
