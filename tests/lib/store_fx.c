/* SPDX-License-Identifier: MIT */
/* The memory store's tests' fixture and helpers (store_fx.h). */
#include "tests/lib/store_fx.h"

int on_dir = ON_DIR, on_mem = ON_MEM, on_cache = ON_CACHE,
    on_rados = ON_RADOS, on_rados_cache = ON_RADOS_CACHE;

/* ---- pseudo-random bytes ------------------------------------------------- */

uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

uint64_t rnd_init(uint64_t seed)
{
	return (seed + 1) * 0x9e3779b97f4a7c15ull | 1;
}

/* len bytes that depend only on seed (incompressible). */
void fill_random(void *buf, size_t len, uint64_t seed)
{
	uint64_t x = rnd_init(seed);
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rnd(&x);

		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* len bytes of text that zstd shrinks well. */
void fill_text(void *buf, size_t len, uint64_t seed)
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


void model_truncate(struct model *m, uint64_t size)
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

void model_write(struct model *m, const void *buf, size_t len,
		 uint64_t off)
{
	if (off + len > m->size)
		model_truncate(m, off + len);
	memcpy(m->b + off, buf, len);
}

void model_copy(struct model *dst, const struct model *src)
{
	dst->size = 0;
	model_truncate(dst, src->size);
	memcpy(dst->b, src->b, src->size);
}

void model_free(struct model *m)
{
	free(m->b);
	*m = (struct model){ 0 };
}

bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Chunks of m that are not all zero. */
void model_key(const struct model *m, uint64_t i, uint8_t key[SNAP_KEY_LEN])
{
	snap_sha256(m->b + i * CHUNK, CHUNK, key);
}

uint64_t model_chunks(const struct model *m)
{
	uint64_t n = 0;

	for (uint64_t off = 0; off < m->size; off += CHUNK) {
		uint64_t len = m->size - off < CHUNK ? m->size - off : CHUNK;

		n += !all_zero(m->b + off, len);
	}
	return n;
}

/* ---- a memory backend the store can take over and give back ------------- */


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

static void held_forget(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	struct held *h = ctx;

	if (h->inner.ops->forget)
		h->inner.ops->forget(h->inner.ctx, key);
}

static void held_free(void *ctx)
{
	struct held *h = ctx;

	h->frees++;
}

const struct snap_backend_ops held_ops = {
	.put = held_put, .get = held_get, .has = held_has, .del = held_del,
	.each = held_each, .sync = held_sync, .forget = held_forget,
	.free = held_free,
};

/* ---- a Ceph cluster, when the environment names one ---------------------- */

/* SNAP_TEST_RADOS "CONF:POOL", split; false when unset. */
bool rados_env(char conf[4096], char pool[256])
{
	const char *e = getenv("SNAP_TEST_RADOS"), *colon;

	if (!e || !*e)
		return false;
	colon = strrchr(e, ':');
	if (!colon || colon == e || !colon[1] ||
	    (size_t)(colon - e) >= 4096 || strlen(colon + 1) >= 256) {
		fprintf(stderr, "SNAP_TEST_RADOS=%s: expected CONF:POOL\n", e);
		abort();
	}
	snprintf(conf, 4096, "%.*s", (int)(colon - e), e);
	snprintf(pool, 256, "%s", colon + 1);
	return true;
}

/* A RADOS backend on a namespace no other case (or run) uses. */
int rados_open(struct snap_backend *b, struct snap_err *err)
{
	static atomic_uint seq;
	char conf[4096], pool[256], ns[96];
	uint64_t r;

	if (!rados_env(conf, pool))
		return snap_err_set(err, -EINVAL, "SNAP_TEST_RADOS is not set");
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		abort();
	snprintf(ns, sizeof(ns), "test_store.%d.%u.%016" PRIx64, (int)getpid(),
		 atomic_fetch_add(&seq, 1), r);
	return snap_backend_rados(conf, pool, ns, 0, b, err);
}

static int del_key(void *arg, const uint8_t key[SNAP_KEY_LEN], uint64_t size)
{
	struct snap_backend *b = arg;

	return b->ops->del(b->ctx, key);
}

/* Remove what a case left in its namespace: the pool outlives the run. */
void rados_empty(struct snap_backend *b)
{
	uint64_t n = 0;

	assert_int_equal(b->ops->each(b->ctx, del_key, b), 0);
	assert_int_equal(b->ops->each(b->ctx, count_key, &n), 0);
	assert_int_equal(n, 0);
}

/* ---- the fixture: a store in a fresh temporary directory ----------------- */




int fx_open(struct fx *f)
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

void fx_close(struct fx *f)
{
	snap_store_close(f->s);
	f->s = NULL;
}

/* Close and open the store again: nothing cached survives. */
void fx_reopen(struct fx *f)
{
	fx_close(f);
	CHECK(f, fx_open(f));
}

/* Put a cache tier (in tmp/name) in front of b, in its place. */
int cache_over(struct fx *f, struct snap_backend *b, const char *name)
{
	struct snap_backend remote = *b;
	char path[4096];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", f->tmp, name);
	ret = snap_backend_cache(&remote, path, CACHE_BYTES, b, &f->err);
	if (ret)
		remote.ops->free(remote.ctx);
	else
		f->remote = remote;
	return ret;
}

int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	int on = *(int *)*state;

	f->rados = on == ON_RADOS || on == ON_RADOS_CACHE;
	f->cached = on == ON_CACHE || on == ON_RADOS_CACHE;
	f->mem = on != ON_DIR;
	f->tmp = test_tmpdir();
	if (asprintf(&f->dir, "%s/store", f->tmp) < 0)
		abort();
	if (f->rados && rados_open(&f->held.inner, &f->err)) {
		fprintf(stderr, "rados setup: %s\n", f->err.msg);
		return -1;
	}
	if (f->mem && !f->rados && snap_backend_mem(&f->held.inner))
		return -1;
	if (f->cached && cache_over(f, &f->held.inner, "cache")) {
		fprintf(stderr, "cache setup: %s\n", f->err.msg);
		return -1;
	}
	if (snap_store_init(f->dir, CHUNK, &f->err) || fx_open(f)) {
		fprintf(stderr, "store setup: %s\n", f->err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;

	fx_close(f);
	if (f->rados)
		rados_empty(&f->held.inner);
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
void fx_mkdir_of(struct fx *f, const char *path)
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
struct snap_image *fx_new(struct fx *f, const char *path,
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

struct snap_image *fx_open_id(struct fx *f,
			      const uint8_t id[SNAP_ID_LEN],
			      unsigned flags)
{
	struct snap_image *img = NULL;

	CHECK(f, snap_image_open(f->s, id, flags, &img, &f->err));
	assert_non_null(img);
	return img;
}

struct snap_image *fx_open_name(struct fx *f, const char *path,
				unsigned flags)
{
	uint8_t id[SNAP_ID_LEN];
	unsigned nlink;

	CHECK(f, snap_store_lookup(f->s, path, id, &nlink, &f->err));
	return fx_open_id(f, id, flags);
}

void fx_close_img(struct fx *f, struct snap_image *img)
{
	CHECK(f, snap_image_close(img, &f->err));
}

void img_write(struct fx *f, struct snap_image *img, struct model *m,
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
void img_fill(struct fx *f, struct snap_image *img, struct model *m,
	      size_t len, uint64_t off, uint64_t seed)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	fill_random(buf, len, seed);
	img_write(f, img, m, buf, len, off);
	free(buf);
}

uint64_t img_size(struct snap_image *img)
{
	struct snap_image_stat st;

	snap_image_stat(img, &st);
	return st.size;
}

/*
 * img holds exactly m: its size, every byte (read in pieces of sizes that
 * straddle chunks every which way), and nothing at or past its end.
 */
void expect_content(struct fx *f, struct snap_image *img,
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

void fx_stats(struct fx *f, struct snap_store_stats *st)
{
	memset(st, 0xa5, sizeof(*st));
	CHECK(f, snap_store_stats(f->s, st, &f->err));
}


void collect_line(void *arg, const char *line)
{
	struct lines *l = arg;

	if (!l->n++)
		snprintf(l->first, sizeof(l->first), "%s", line);
}

/* Verify the store: 0 and no problem reported. */
void fx_verify_clean(struct fx *f, const char *what)
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

int count_key(void *arg, const uint8_t key[SNAP_KEY_LEN], uint64_t size)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/* Chunks the backend holds (dir: as a new process finds them). */
uint64_t fx_stored(struct fx *f)
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
bool fx_has_chunk(struct fx *f, const uint8_t key[SNAP_KEY_LEN])
{
	if (f->mem)
		return f->held.inner.ops->has(f->held.inner.ctx, key) == 1;
	return test_chunk_has(f->dir, key);
}

/* Length of key's stored value. */
size_t fx_chunk_len(struct fx *f, const uint8_t key[SNAP_KEY_LEN])
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
void xor_byte(const char *path, size_t at, uint8_t x)
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
void fx_flip_chunk(struct fx *f, const uint8_t key[SNAP_KEY_LEN],
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
void fx_del_chunk(struct fx *f, const uint8_t key[SNAP_KEY_LEN])
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

/* Expect a read of chunk index at to be -EIO naming the image and offset. */
void expect_eio(struct fx *f, struct snap_image *img,
		const uint8_t id[SNAP_ID_LEN], unsigned at, const char *what)
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

/* Expect verify to find one image bad: chunks checked (0: any), a line. */
void expect_verify_bad(struct fx *f, uint64_t chunks, const char *what)
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

/* Without a cluster the RADOS cases are left out: say so, as a skip. */
static void test_rados_left_out(void **state)
{
	fprintf(stderr, "SNAP_TEST_RADOS is not set: the cases over RADOS "
		"are not run here (tests/integration/rados.sh runs them on a "
		"cluster of its own)\n");
	skip();
}

int fx_run(const char *name, struct CMUnitTest *tests, size_t n)
{
	char conf[4096], pool[256];
	bool left_out = !rados_env(conf, pool);
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		bool on_ceph = tests[i].initial_state == &on_rados ||
			       tests[i].initial_state == &on_rados_cache;

		if (!(left_out && on_ceph))
			tests[k++] = tests[i];
	}
	if (left_out)	/* the array has room: cases were dropped */
		tests[k++] = (struct CMUnitTest)
			cmocka_unit_test(test_rados_left_out);
	return _cmocka_run_group_tests(name, tests, k, NULL, NULL);
}
