/* SPDX-License-Identifier: MIT */
/*
 * The memory store (store.h, backend.h): the largest image, hostile sizes,
 * and times. The fixture and the backends each case runs over:
 * tests/lib/store_fx.h.
 */
#include "tests/lib/store_fx.h"

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

int main(void)
{
	struct CMUnitTest tests[] = {
		BOTH(test_too_large),
		BOTH(test_largest_image),
		BOTH(test_times),
		cmocka_unit_test(test_err_prefix_empty),
		{ 0 },	/* room for the skip fx_run may add */
	};

	return fx_run("test_store_limits", tests,
		      sizeof(tests) / sizeof(*tests) - 1);
}
