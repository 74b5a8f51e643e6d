/* SPDX-License-Identifier: MIT */
/*
 * The memory store (store.h, backend.h): corrupt chunks and metadata, and a
 * writer killed at random. The fixture and the backends each case runs
 * over: tests/lib/store_fx.h.
 */
#include "tests/lib/store_fx.h"

/* ==== 6. corruption ========================================================= */

static void test_corrupt_chunk(void **state)
{
	struct fx *f = *state;
	static const unsigned victims[] = { 1, 3 };	/* random, text */
	uint8_t id[SNAP_ID_LEN], key[2][SNAP_KEY_LEN], *buf = malloc(CHUNK);
	struct model m = { 0 };
	struct snap_image *img;
	char what[96];

	img = fx_new(f, "s/c", 4 * CHUNK, id);
	model_truncate(&m, 4 * CHUNK);
	fill_random(buf, CHUNK, 80);
	img_write(f, img, &m, buf, CHUNK, CHUNK);
	snap_sha256(buf, CHUNK, key[0]);
	fill_text(buf, CHUNK, 81);
	img_write(f, img, &m, buf, CHUNK, 3 * CHUNK);
	snap_sha256(buf, CHUNK, key[1]);
	fx_close_img(f, img);
	fx_reopen(f);		/* closed and synced at store close */
	assert_int_equal(fx_stored(f), 2);
	/* Keyed by the SHA-256 of their bytes (dir: chunks/ab/<hex>). */
	assert_true(fx_has_chunk(f, key[0]));
	assert_true(fx_has_chunk(f, key[1]));
	fx_verify_clean(f, "before corruption");

	for (int v = 0; v < 2; v++) {
		size_t len = fx_chunk_len(f, key[v]);
		size_t at[] = { 0, 3, 4, 5, 7, 8, 11, 12, 15, 16, 17,
				len / 2, len - 1 };

		for (size_t i = 0; i < sizeof(at) / sizeof(*at); i++) {
			fx_flip_chunk(f, key[v], at[i], true);
			fx_reopen(f);
			snprintf(what, sizeof(what), "chunk %u, byte %zu of %zu "
				 "flipped", victims[v], at[i], len);
			img = fx_open_id(f, id, 0);
			expect_eio(f, img, id, victims[v], what);
			/* the other chunk and the holes still read */
			{
				struct model mm = { 0 };
				uint64_t other = victims[1 - v] * CHUNK;

				model_truncate(&mm, CHUNK);
				assert_int_equal(snap_image_read(img, buf, CHUNK,
								 other,
								 &f->err),
						 CHUNK);
				assert_memory_equal(buf, m.b + other, CHUNK);
				assert_int_equal(snap_image_read(img, buf, CHUNK,
								 2 * CHUNK,
								 &f->err),
						 CHUNK);
				assert_memory_equal(buf, mm.b, CHUNK);
				model_free(&mm);
			}
			fx_close_img(f, img);
			expect_verify_bad(f, 2, what);
			fx_flip_chunk(f, key[v], at[i], false);
		}
	}
	fx_reopen(f);
	fx_verify_clean(f, "repaired");
	img = fx_open_id(f, id, 0);
	expect_content(f, img, &m, "repaired");
	fx_close_img(f, img);

	/* A missing chunk is the same. */
	fx_del_chunk(f, key[0]);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	expect_eio(f, img, id, victims[0], "a deleted chunk");
	fx_close_img(f, img);
	expect_verify_bad(f, 0, "a deleted chunk");	/* checked: 1 or 2 */
	model_free(&m);
	free(buf);
}

/* Put buf under key in the cache tier's remote, in place of its value. */
static void remote_replace(struct fx *f, const uint8_t key[SNAP_KEY_LEN],
			  const void *buf, size_t len)
{
	struct snap_backend *r = &f->remote;

	assert_int_equal(r->ops->del(r->ctx, key), 0);
	assert_int_equal(r->ops->put(r->ctx, key, buf, len), 0);
}

/*
 * Through a cache tier, a chunk corrupt in the remote is EIO, and reads
 * right once the remote's object is repaired: the copy the cache kept of
 * the bad object is not served again.
 */
static void test_cache_repaired(void **state)
{
	struct fx *f = *state;
	uint8_t id[SNAP_ID_LEN], key[SNAP_KEY_LEN], *buf = malloc(CHUNK);
	uint8_t *obj = malloc(2 * CHUNK), *bad = malloc(2 * CHUNK);
	struct model m = { 0 };
	struct snap_image *img;
	size_t len;

	img = fx_new(f, "s/r", 2 * CHUNK, id);
	model_truncate(&m, 2 * CHUNK);
	fill_random(buf, CHUNK, 90);
	img_write(f, img, &m, buf, CHUNK, CHUNK);
	snap_sha256(buf, CHUNK, key);
	fx_close_img(f, img);
	fx_reopen(f);
	assert_int_equal(f->remote.ops->get(f->remote.ctx, key, obj, 2 * CHUNK,
					    &len), 0);
	memcpy(bad, obj, len);
	bad[len / 2] ^= 0x55;
	remote_replace(f, key, bad, len);
	img = fx_open_id(f, id, 0);
	expect_eio(f, img, id, 1, "corrupt in the remote");
	fx_close_img(f, img);

	remote_replace(f, key, obj, len);
	fx_reopen(f);
	img = fx_open_id(f, id, 0);
	expect_content(f, img, &m, "repaired in the remote");
	fx_close_img(f, img);
	fx_verify_clean(f, "repaired in the remote");
	model_free(&m);
	free(bad);
	free(obj);
	free(buf);
}

struct meta_file {
	char path[4096];
};

/* Every file under the store but its chunks. */
static void list_meta(const char *dir, const char *rel,
		      struct meta_file *files, int *n, int max)
{
	char path[4096], sub[4096];
	struct dirent *e;
	struct stat st;
	DIR *d;

	snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "", rel);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    (!*rel && !strcmp(e->d_name, "chunks")))
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "",
			 e->d_name);
		if (snprintf(path, sizeof(path), "%s/%s", dir, sub) >=
		    (int)sizeof(path))
			abort();
		assert_int_equal(lstat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			list_meta(dir, sub, files, n, max);
		} else if (S_ISREG(st.st_mode) && st.st_size > 0) {
			assert_true(*n < max);
			snprintf(files[(*n)++].path, sizeof(files[0].path),
				 "%s", sub);
		}
	}
	closedir(d);
}

/*
 * Open the store, both names, read both images whole. Returns 0 when all of
 * it worked and the bytes are right, a negative errno (with a message) when
 * something refused, 1 (saying so in wrong) on wrong bytes.
 */
static int read_all_names(struct fx *f, const char *const names[2],
			  struct model m[2], const char *what, char *wrong)
{
	uint8_t *buf = malloc(m[0].size + m[1].size);
	int ret = fx_open(f);

	for (int i = 0; !ret && i < 2; i++) {
		struct snap_image *img = NULL;
		uint8_t id[SNAP_ID_LEN];
		unsigned nlink;
		ssize_t n = 0;

		ret = snap_store_lookup(f->s, names[i], id, &nlink, &f->err);
		if (!ret)
			ret = snap_image_open(f->s, id, 0, &img, &f->err);
		if (!ret) {
			struct snap_image_stat st;

			snap_image_stat(img, &st);
			n = snap_image_read(img, buf, m[i].size, 0, &f->err);
			if (n >= 0 && (st.size != m[i].size ||
				       n != (ssize_t)m[i].size ||
				       memcmp(buf, m[i].b, m[i].size))) {
				snprintf(wrong, SNAP_ERR_MAX, "%s: %s: wrong "
					 "content (size %" PRIu64 ", read %zd)",
					 what, names[i], st.size, n);
				n = 1;
			}
			ret = (int)(n < 0 ? n : n == 1);
			snap_image_close(img, NULL);
		}
	}
	if (ret < 0 && !f->err.msg[0])
		fail_msg("%s: %d without a message", what, ret);
	free(buf);
	fx_close(f);
	return ret;
}

/*
 * Flip bytes of every metadata file (store.bin, images, deltas, names):
 * the store refuses cleanly or reads the right bytes; never wrong bytes,
 * never a crash (ASan).
 */
static void test_corrupt_meta(void **state)
{
	struct fx *f = *state;
	static const char *const names[2] = { "s/m", "s/n" };
	struct model m[2] = { { 0 } };
	uint8_t id[2][SNAP_ID_LEN];
	struct meta_file files[64];
	struct snap_image *a, *b;
	int n = 0, refused = 0, silent = 0, wrong = 0;
	char what[4200], msg[SNAP_ERR_MAX], report[8192] = "";
	char first_wrong[SNAP_ERR_MAX] = "";
	char *store_dir = f->dir;
	const uint64_t c = SNAP_CHUNK_MIN;	/* small chunks read fast */

	/* A store of its own, with two images, three deltas, a clone. */
	fx_close(f);
	if (asprintf(&f->dir, "%s/meta", f->tmp) < 0)
		abort();
	CHECK(f, snap_store_init(f->dir, SNAP_CHUNK_MIN, &f->err));
	CHECK(f, fx_open(f));
	a = fx_new(f, names[0], 4 * c, id[0]);
	model_truncate(&m[0], 4 * c);
	img_fill(f, a, &m[0], c, 0, 90);
	CHECK(f, snap_image_sync(a, &f->err));
	img_fill(f, a, &m[0], 100, 2 * c + 5, 91);
	CHECK(f, snap_image_sync(a, &f->err));
	CHECK(f, snap_image_clone(f->s, id[0], id[1], &f->err));
	CHECK(f, snap_store_link(f->s, names[1], id[1], &f->err));
	b = fx_open_id(f, id[1], SNAP_IMAGE_WRITE);
	model_copy(&m[1], &m[0]);
	img_fill(f, b, &m[1], 10, c + 7, 92);
	CHECK(f, snap_image_sync(b, &f->err));
	img_fill(f, a, &m[0], 10, 3 * c + 7, 93);
	CHECK(f, snap_image_sync(a, &f->err));
	fx_close_img(f, a);
	fx_close_img(f, b);
	fx_close(f);

	list_meta(f->dir, "", files, &n, 64);
	assert_true(n >= 6);	/* store.bin, 2 images, 3 deltas, ... */
	f->opts.flags = SNAP_STORE_RDONLY;
	assert_int_equal(read_all_names(f, names, m, "intact", msg), 0);
	for (int i = 0; i < n; i++) {
		size_t len, first = 0, last = 0, nwrong = 0;
		char path[8192];
		uint8_t *orig;

		if (snprintf(path, sizeof(path), "%s/%s", f->dir,
			     files[i].path) >= (int)sizeof(path))
			abort();
		orig = test_read_file(path, &len);
		for (size_t at = 0; at < len; at++) {
			int ret;

			xor_byte(path, at, 0x5a);
			if (snprintf(what, sizeof(what), "%s: byte %zu of "
				     "%zu flipped", files[i].path, at, len) < 0)
				abort();
			ret = read_all_names(f, names, m, what, msg);
			xor_byte(path, at, 0x5a);
			refused += ret < 0;
			silent += ret == 0;
			if (ret == 1 && !first_wrong[0])
				memcpy(first_wrong, msg, sizeof(msg));
			if (ret == 1 && !nwrong++)
				first = at;
			if (ret == 1)
				last = at;
		}
		if (nwrong) {
			char line[4400], frames[96] = "";

			/* where its frames start (proto/store.proto) */
			for (size_t o = 0; o + 40 <= len;
			     o += 40 + (orig[o + 4] | orig[o + 5] << 8 |
					orig[o + 6] << 16 |
					(size_t)orig[o + 7] << 24)) {
				snprintf(line, sizeof(line), "%s%zu",
					 *frames ? "," : "", o);
				strncat(frames, line, sizeof(frames) -
					strlen(frames) - 1);
			}
			if (snprintf(line, sizeof(line), "\n  %s (%zu bytes, "
				     "frames at %s): %zu flips read wrong, "
				     "bytes %zu..%zu", files[i].path, len,
				     frames, nwrong, first, last) < 0)
				abort();
			strncat(report, line, sizeof(report) -
				strlen(report) - 1);
			wrong += (int)nwrong;
		}
		test_write_file(path, orig, len);
		free(orig);
	}
	print_message("# %d metadata files, %d flips refused, %d read right, "
		      "%d read wrong\n", n, refused, silent, wrong);
	if (wrong)
		fail_msg("%d flips read wrong bytes without an error (the "
			 "first: %s):%s", wrong, first_wrong, report);
	assert_true(refused > 0);
	f->opts.flags = 0;
	CHECK(f, fx_open(f));
	fx_verify_clean(f, "metadata restored");
	fx_close(f);
	free(f->dir);
	f->dir = store_dir;
	CHECK(f, fx_open(f));
	model_free(&m[0]);
	model_free(&m[1]);
}
/* ==== 8. a writer killed at random ========================================= */

#define CRASH_SIZE	(2u << 20)
#define CRASH_RUNS	10

enum { REC_START = 1, REC_DURABLE = 2 };

struct rec {
	uint32_t kind;
	uint32_t seq;		/* of the write; DURABLE: every write to it */
	uint64_t off;
	uint32_t len;
	uint32_t seed;
};

static void put_rec(int fd, const struct rec *r)
{
	if (write(fd, r, sizeof(*r)) != (ssize_t)sizeof(*r))
		_exit(20);
}

/* The child: write at random, sync now and then, say what is durable. */
static void crash_child(const char *dir, int fd, uint64_t seed)
{
	struct snap_store *s = NULL;
	struct snap_image *img = NULL;
	uint8_t id[SNAP_ID_LEN], *buf = malloc(2 * CHUNK);
	uint64_t x = rnd_init(seed);
	unsigned nlink;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!buf || snap_store_open(dir, NULL, &s, NULL) ||
	    snap_store_lookup(s, "s/img", id, &nlink, NULL) ||
	    snap_image_open(s, id, SNAP_IMAGE_WRITE, &img, NULL))
		_exit(10);
	for (uint32_t seq = 1; seq < 1000000; seq++) {
		struct rec r = { REC_START, seq, 0, 0, (uint32_t)rnd(&x) };
		uint64_t v = rnd(&x);

		if (v & 1) {
			r.off = (v >> 8) % (CRASH_SIZE / CHUNK) * CHUNK;
			r.len = CHUNK * (1 + (v >> 40) % 2);
		} else {
			r.off = (v >> 8) % CRASH_SIZE;
			r.len = 1 + (v >> 40) % (2 * CHUNK);
		}
		if (r.len > CRASH_SIZE - r.off)
			r.len = CRASH_SIZE - r.off;
		put_rec(fd, &r);
		fill_random(buf, r.len, r.seed);
		if (snap_image_write(img, buf, r.len, r.off, NULL) !=
		    (ssize_t)r.len)
			_exit(11);
		if (rnd(&x) % 4 == 0) {
			if (snap_image_sync(img, NULL))
				_exit(12);
			r.kind = REC_DURABLE;
			put_rec(fd, &r);
		}
	}
	pause();
	_exit(13);
}

/* Read records from fd into *recs until the deadline (or EOF: -1). */
static void drain(int fd, struct rec **recs, size_t *n, size_t *cap,
		  int timeout_ms)
{
	struct timespec t0, t;
	struct pollfd p = { fd, POLLIN, 0 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left = timeout_ms;
		ssize_t k;

		if (timeout_ms >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			left = timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 +
						 (t.tv_nsec - t0.tv_nsec) /
						 1000000);
			if (left <= 0)
				return;
		}
		if (poll(&p, 1, left) <= 0)
			continue;
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 1024;
			*recs = realloc(*recs, *cap * sizeof(**recs));
			assert_non_null(*recs);
		}
		k = read(fd, &(*recs)[*n], sizeof(**recs));
		if (k == 0)
			return;
		assert_int_equal(k, sizeof(**recs));
		(*n)++;
	}
}

static void test_crash(void **state)
{
	struct fx *f = *state;
	uint64_t x = rnd_init(2024), durable_total = 0, started_total = 0;
	uint64_t checked_total = 0;

	for (int run = 0; run < CRASH_RUNS; run++) {
		struct fx g = { .err = { "" } };
		uint32_t *last = calloc(CRASH_SIZE, sizeof(*last));
		uint8_t id[SNAP_ID_LEN], *img_bytes = malloc(CRASH_SIZE);
		uint8_t *data = malloc(2 * CHUNK);
		struct rec *recs = NULL;
		size_t n = 0, cap = 0, checked = 0;
		uint32_t durable = 0, nstart = 0;
		struct snap_image *img;
		int fds[2], status, delay = 3 + (int)(rnd(&x) % 300);
		char what[64];
		pid_t pid;

		assert_true(last && img_bytes && data);
		g.tmp = f->tmp;
		if (asprintf(&g.dir, "%s/crash%d", f->tmp, run) < 0)
			abort();
		CHECK(&g, snap_store_init(g.dir, CHUNK, &g.err));
		CHECK(&g, fx_open(&g));
		img = fx_new(&g, "s/img", CRASH_SIZE, id);
		fx_close_img(&g, img);
		fx_close(&g);

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(g.dir, fds[1], rnd(&x));
		}
		close(fds[1]);
		drain(fds[0], &recs, &n, &cap, delay);
		kill(pid, SIGKILL);
		drain(fds[0], &recs, &n, &cap, -1);
		close(fds[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("run %d: the writer ended on its own (status "
				 "%#x)", run, status);

		/* Which write last touched each byte, which are durable. */
		for (size_t i = 0; i < n; i++) {
			if (recs[i].kind == REC_DURABLE) {
				durable = recs[i].seq;
				continue;
			}
			assert_int_equal(recs[i].seq, ++nstart);
			for (uint64_t b = recs[i].off;
			     b < recs[i].off + recs[i].len; b++)
				last[b] = recs[i].seq;
		}

		/* Reopened: durable bytes are there, unwritten ones zero. */
		CHECK(&g, fx_open(&g));
		img = fx_open_name(&g, "s/img", SNAP_IMAGE_WRITE);
		assert_int_equal(img_size(img), CRASH_SIZE);
		{
			ssize_t k = snap_image_read(img, img_bytes, CRASH_SIZE,
						    0, &g.err);

			if (k != CRASH_SIZE)
				fail_msg("run %d: read after the crash: %zd: %s",
					 run, k, g.err.msg);
		}
		for (uint64_t b = 0; b < CRASH_SIZE; b++)
			if (!last[b] && img_bytes[b])
				fail_msg("run %d: byte %" PRIu64 " never "
					 "written, reads %#x", run, b,
					 img_bytes[b]);
		for (size_t i = 0; i < n; i++) {
			const struct rec *r = &recs[i];

			if (r->kind != REC_START || r->seq > durable)
				continue;
			fill_random(data, r->len, r->seed);
			for (uint64_t b = r->off; b < r->off + r->len; b++) {
				if (last[b] != r->seq)
					continue;
				checked++;
				if (img_bytes[b] != data[b - r->off])
					fail_msg("run %d (killed after %d ms, "
						 "%u writes, %u durable): byte "
						 "%" PRIu64 " of durable write "
						 "%u reads %#x, expected %#x",
						 run, delay, nstart, durable, b,
						 r->seq, img_bytes[b],
						 data[b - r->off]);
			}
		}
		durable_total += durable;
		started_total += nstart;
		checked_total += checked;
		snprintf(what, sizeof(what), "run %d, after the crash", run);
		fx_verify_clean(&g, what);

		/* The store takes writes again after the crash. */
		fill_random(data, CHUNK + 10, 999);
		img_write(&g, img, NULL, data, CHUNK + 10, CHUNK - 5);
		CHECK(&g, snap_image_sync(img, &g.err));
		fx_close_img(&g, img);
		fx_close(&g);
		CHECK(&g, fx_open(&g));
		img = fx_open_name(&g, "s/img", 0);
		assert_int_equal(snap_image_read(img, img_bytes, CHUNK + 10,
						 CHUNK - 5, &g.err),
				 CHUNK + 10);
		assert_memory_equal(img_bytes, data, CHUNK + 10);
		fx_close_img(&g, img);
		snprintf(what, sizeof(what), "run %d, written after the crash",
			 run);
		fx_verify_clean(&g, what);
		fx_close(&g);
		test_rmtree(g.dir);
		free(g.dir);
		free(recs);
		free(last);
		free(img_bytes);
		free(data);
	}
	print_message("# %d kills: %" PRIu64 " writes started, %" PRIu64
		      " durable, %" PRIu64 " durable bytes checked\n",
		      CRASH_RUNS, started_total, durable_total, checked_total);
	assert_true(durable_total > 0 && checked_total > 0);
}

int main(void)
{
	struct CMUnitTest tests[] = {
		BOTH(test_corrupt_chunk),
		ON_CACHE_ONLY(test_cache_repaired),
		ON_DIR_ONLY(test_corrupt_meta),
		ON_DIR_ONLY(test_crash),
		{ 0 },	/* room for the skip fx_run may add */
	};

	return fx_run("test_store_faults", tests,
		      sizeof(tests) / sizeof(*tests) - 1);
}
