/* SPDX-License-Identifier: MIT */
/*
 * The memory store (store.h, backend.h): reads and writes through the chunk
 * map, zero and duplicate chunks, clones and their chains, names. The
 * fixture and the backends each case runs over: tests/lib/store_fx.h.
 */
#include "tests/lib/store_fx.h"

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

int main(void)
{
	struct CMUnitTest tests[] = {
		BOTH(test_roundtrip),
		BOTH(test_zero_and_dup_chunks),
		BOTH(test_clone_isolation),
		BOTH(test_chain_flatten),
		BOTH(test_chain_bound),
		BOTH(test_names),
		{ 0 },	/* room for the skip fx_run may add */
	};

	return fx_run("test_store", tests,
		      sizeof(tests) / sizeof(*tests) - 1);
}
