/* SPDX-License-Identifier: MIT */
/*
 * The memory store (store.h, backend.h): patches: chunks stored as the
 * pages that differ from a base. The fixture and the backends each case
 * runs over: tests/lib/store_fx.h.
 */
#include "tests/lib/store_fx.h"

/* ==== 13. patches =========================================================== */

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

int main(void)
{
	struct CMUnitTest tests[] = {
		BOTH(test_patches),
		BOTH(test_patch_shapes),
		ON_DIR_ONLY(test_store_features),
		BOTH(test_hostile_patches),
		{ 0 },	/* room for the skip fx_run may add */
	};

	return fx_run("test_store_patch", tests,
		      sizeof(tests) / sizeof(*tests) - 1);
}
