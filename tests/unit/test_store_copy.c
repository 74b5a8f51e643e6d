/* SPDX-License-Identifier: MIT */
/*
 * The memory store (store.h, backend.h): copy_range, opening the store, and
 * the backends' own contract. The fixture and the backends each case runs
 * over: tests/lib/store_fx.h.
 */
#include "tests/lib/store_fx.h"

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

/*
 * RADOS: the contract in a namespace of its own, which a second backend
 * on another namespace of the same pool never lists nor reads; a missing
 * pool and a missing configuration are refused by name.
 */
static void rados_contract(struct fx *f)
{
	struct snap_backend b, other;
	char conf[4096], pool[256];
	uint8_t key[SNAP_KEY_LEN];
	uint64_t n = 0;
	size_t len;
	int one = 1;

	assert_true(rados_env(conf, pool));
	CHECK(f, rados_open(&b, &f->err));
	if (f->cached)
		CHECK(f, cache_over(f, &b, "cache2"));
	CHECK(f, rados_open(&other, &f->err));
	backend_contract(&b);
	snap_sha256(&one, sizeof(one), key);
	assert_int_equal(b.ops->has(b.ctx, key), 1);
	assert_int_equal(other.ops->has(other.ctx, key), 0);
	assert_int_equal(other.ops->get(other.ctx, key, &one, sizeof(one),
					&len), -ENOENT);
	assert_int_equal(other.ops->each(other.ctx, count_key, &n), 0);
	assert_int_equal(n, 0);
	rados_empty(&b);
	b.ops->free(b.ctx);
	other.ops->free(other.ctx);

	EXPECT_ERR(f, -ENOENT, snap_backend_rados(conf, "snap-no-such-pool",
						  "x", 0, &b, &f->err));
	assert_non_null(strstr(f->err.msg, "snap-no-such-pool"));
	EXPECT_ERR(f, -ENOENT, snap_backend_rados("/nonexistent/ceph.conf",
						  pool, "x", 0, &b, &f->err));
	assert_non_null(strstr(f->err.msg, "/nonexistent/ceph.conf"));
}

/* For every backend, and the directory's two layouts. */
static void test_backend_contract(void **state)
{
	struct fx *f = *state;
	struct snap_backend b;
	char path[4096], file[8192], hex[2 * SNAP_KEY_LEN + 1];
	uint8_t key[SNAP_KEY_LEN];
	int one = 1;

	if (f->rados) {
		rados_contract(f);
		return;
	}
	if (f->mem) {
		assert_int_equal(snap_backend_mem(&b), 0);
		if (f->cached)
			CHECK(f, cache_over(f, &b, "cache2"));
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

int main(void)
{
	struct CMUnitTest tests[] = {
		BOTH(test_init_open),
		ON_MEM_ONLY(test_backend_ownership),
		BOTH(test_backend_contract),
		BOTH(test_copy_range),
		BOTH(test_copy_pieces),
		BOTH(test_copy_after_cut),
		BOTH(test_gc_fresh),
		{ 0 },	/* room for the skip fx_run may add */
	};

	return fx_run("test_store_copy", tests,
		      sizeof(tests) / sizeof(*tests) - 1);
}
