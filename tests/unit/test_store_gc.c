/* SPDX-License-Identifier: MIT */
/*
 * The memory store (store.h, backend.h): gc, threads, and a small cache.
 * The fixture and the backends each case runs over: tests/lib/store_fx.h.
 */
#include "tests/lib/store_fx.h"

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
	struct CMUnitTest tests[] = {
		BOTH(test_gc),
		BOTH(test_gc_shadowed),
		ON_DIR_ONLY(test_processes),
		BOTH(test_threads),
		BOTH(test_small_cache),
		{ 0 },	/* room for the skip fx_run may add */
	};

	return fx_run("test_store_gc", tests,
		      sizeof(tests) / sizeof(*tests) - 1);
}
