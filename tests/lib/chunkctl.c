/* SPDX-License-Identifier: MIT */
/*
 * chunkctl: drive one chunk backend from a script, one command a line on
 * stdin, one answer a line on stdout, so that a test can stop a Ceph OSD
 * between two commands of the same client.
 *
 *   chunkctl rados CONF POOL NAMESPACE [CACHE_DIR CACHE_BYTES]
 *   chunkctl dir PATH
 *
 * With CACHE_DIR, the RADOS backend is behind the cache tier
 * (snap_backend_cache) in CACHE_DIR, holding at most CACHE_BYTES.
 *
 *   put N    put N chunks of 64 KiB (random bytes made from their index)
 *   get N    read them back and compare
 *   count    list every chunk with its size ("ok count N MS")
 *   empty    delete every chunk the backend lists
 *   store DIR    open the memory store in DIR (made when missing) over
 *                the backend, which it takes over, with room for one
 *                chunk in its cache, so that reads reach the backend
 *   swrite N     write an image of N chunks into it (and sync)
 *   sread        read that image whole and compare
 *   quit
 *
 * Answers: "ok CMD N p50_us MAX_us" (the median and the slowest call),
 * or "err CMD ERRNO-NAME MS" (the first failure and how long it took);
 * a store's failure adds its message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/backend.h"
#include "snapshot/store/store.h"

#define CHUNK (64u << 10)

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void fill(uint8_t *buf, unsigned idx)
{
	uint64_t x = (idx + 1) * 0x9e3779b97f4a7c15ull | 1;

	for (size_t i = 0; i < CHUNK; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		memcpy(buf + i, &x, 8);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* put or get chunk idx; 0 or a negative errno (-EBADMSG: wrong bytes). */
static int one(struct snap_backend *b, int put, unsigned idx, uint8_t *want,
	       uint8_t *got)
{
	uint8_t key[SNAP_KEY_LEN];
	size_t len = 0;
	int ret;

	fill(want, idx);
	snap_sha256(want, CHUNK, key);
	if (put)
		return b->ops->put(b->ctx, key, want, CHUNK);
	ret = b->ops->get(b->ctx, key, got, CHUNK, &len);
	if (!ret && (len != CHUNK || memcmp(got, want, CHUNK)))
		ret = -EBADMSG;
	return ret;
}

static void run(struct snap_backend *b, const char *cmd, unsigned n)
{
	uint8_t *want = malloc(CHUNK), *got = malloc(CHUNK);
	uint64_t *t = calloc(n ? n : 1, sizeof(*t)), t0;
	int put = !strcmp(cmd, "put"), ret = 0;

	if (!want || !got || !t) {
		printf("err %s ENOMEM 0\n", cmd);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		t0 = now_us();
		ret = one(b, put, i, want, got);
		t[i] = now_us() - t0;
		if (ret) {
			printf("err %s %s %llu\n", cmd, strerrorname_np(-ret),
			       (unsigned long long)(t[i] / 1000));
			goto out;
		}
	}
	qsort(t, n, sizeof(*t), cmp_u64);
	printf("ok %s %u %llu %llu\n", cmd, n,
	       (unsigned long long)(n ? t[n / 2] : 0),
	       (unsigned long long)(n ? t[n - 1] : 0));
out:
	free(want);
	free(got);
	free(t);
}

static int del_key(void *arg, const uint8_t key[SNAP_KEY_LEN], uint64_t size)
{
	struct snap_backend *b = arg;

	return b->ops->del(b->ctx, key);
}

/* ---- a store over the backend ---------------------------------------------- */

struct st {
	struct snap_store *s;
	uint8_t id[SNAP_ID_LEN];
	unsigned chunks;		/* in the image; 0: none written */
};

static void st_open(struct st *st, struct snap_backend *b, const char *dir)
{
	struct snap_store_opts o = { .cache_bytes = CHUNK, .backend = b };
	struct snap_err err = { "" };
	int ret = 0;

	if (access(dir, F_OK))
		ret = snap_store_init(dir, CHUNK, &err);
	if (!ret)
		ret = snap_store_open(dir, &o, &st->s, &err);
	if (ret) {
		/* A failed open freed b too: nothing is left to drive. */
		printf("err store %s 0 %s\n", strerrorname_np(-ret), err.msg);
		exit(1);
	}
	printf("ok store\n");
}

/* The image's write or read, in 1 MiB pieces; 0 or a negative errno. */
static int st_io(struct st *st, int write, uint8_t *buf, uint8_t *want,
		 struct snap_err *err)
{
	struct snap_image *img = NULL;
	uint64_t size = (uint64_t)st->chunks * CHUNK;
	int ret = snap_image_open(st->s, st->id, write ? SNAP_IMAGE_WRITE : 0,
				  &img, err);

	for (uint64_t off = 0; !ret && off < size; off += 16 * CHUNK) {
		size_t len = size - off < 16 * CHUNK ? size - off : 16 * CHUNK;
		ssize_t n;

		for (size_t c = 0; c < len; c += CHUNK)
			fill(want + c, (unsigned)((off + c) / CHUNK) + 1000);
		n = write ? snap_image_write(img, want, len, off, err)
			  : snap_image_read(img, buf, len, off, err);
		if (n < 0)
			ret = (int)n;
		else if ((size_t)n != len || (!write && memcmp(buf, want, len)))
			ret = snap_err_set(err, -EBADMSG, "wrong bytes at %llu",
					   (unsigned long long)off);
	}
	if (!ret && write)
		ret = snap_image_sync(img, err);
	if (img && snap_image_close(img, ret ? NULL : err) && !ret)
		ret = -EIO;
	return ret;
}

static void st_run(struct st *st, const char *cmd, unsigned n)
{
	uint8_t *buf = malloc(16 * CHUNK), *want = malloc(16 * CHUNK);
	struct snap_err err = { "" };
	uint64_t t0 = now_us();
	int write = !strcmp(cmd, "swrite"), ret = -ENOMEM;

	if (!st->s || (!write && !st->chunks))
		ret = snap_err_set(&err, -EINVAL, "no store or no image");
	else if (buf && want && write)
		ret = snap_image_create(st->s, 0, st->id, &err);
	else if (buf && want)
		ret = 0;
	if (!ret && write)
		st->chunks = n;
	if (!ret)
		ret = st_io(st, write, buf, want, &err);
	if (ret)
		printf("err %s %s %llu %s\n", cmd, strerrorname_np(-ret),
		       (unsigned long long)((now_us() - t0) / 1000), err.msg);
	else
		printf("ok %s %u %llu\n", cmd, st->chunks,
		       (unsigned long long)((now_us() - t0) / 1000));
	free(buf);
	free(want);
}

static int count_key(void *arg, const uint8_t key[SNAP_KEY_LEN],
		     uint64_t size)
{
	(*(unsigned *)arg)++;
	return 0;
}

static void count(struct snap_backend *b)
{
	uint64_t t0 = now_us();
	unsigned n = 0;
	int ret = b->ops->each(b->ctx, count_key, &n);

	if (ret)
		printf("err count %s 0\n", strerrorname_np(-ret));
	else
		printf("ok count %u %llu\n", n,
		       (unsigned long long)((now_us() - t0) / 1000));
}

static int open_rados(int argc, char **argv, struct snap_backend *b,
		      struct snap_err *err)
{
	struct snap_backend r;
	int ret;

	ret = snap_backend_rados(argv[2], argv[3], argv[4], 0, &r, err);
	if (ret || argc == 5) {
		*b = r;
		return ret;
	}
	ret = snap_backend_cache(&r, argv[5], strtoull(argv[6], NULL, 0), b,
				 err);
	if (ret)
		r.ops->free(r.ctx);
	return ret;
}

static int open_backend(int argc, char **argv, struct snap_backend *b,
			struct snap_err *err)
{
	if ((argc == 5 || argc == 7) && !strcmp(argv[1], "rados"))
		return open_rados(argc, argv, b, err);
	if (argc == 3 && !strcmp(argv[1], "dir"))
		return snap_backend_dir(argv[2], SNAP_BACKEND_PACKS, b, err);
	fprintf(stderr, "usage: chunkctl rados CONF POOL NAMESPACE "
		"[CACHE_DIR CACHE_BYTES] | chunkctl dir PATH\n");
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct snap_err err = { "" };
	struct snap_backend b;
	char line[4200], cmd[16], arg[4096];
	struct st st = { 0 };
	unsigned n;
	int ret;

	if (open_backend(argc, argv, &b, &err)) {
		if (err.msg[0])
			fprintf(stderr, "chunkctl: %s\n", err.msg);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		n = 0;
		arg[0] = '\0';
		if (sscanf(line, "%15s %4095s", cmd, arg) < 1)
			continue;
		n = (unsigned)strtoul(arg, NULL, 0);
		if (!strcmp(cmd, "quit"))
			break;
		if (!strcmp(cmd, "store") && !st.s) {
			st_open(&st, &b, arg);
		} else if (!strcmp(cmd, "swrite") || !strcmp(cmd, "sread")) {
			st_run(&st, cmd, n);
		} else if (!strcmp(cmd, "put") || !strcmp(cmd, "get")) {
			run(&b, cmd, n);
		} else if (!strcmp(cmd, "count")) {
			count(&b);
		} else if (!strcmp(cmd, "empty")) {
			ret = b.ops->each(b.ctx, del_key, &b);
			if (!ret)
				ret = b.ops->sync(b.ctx);
			printf(ret ? "err empty %s 0\n" : "ok empty%s\n",
			       ret ? strerrorname_np(-ret) : "");
		} else {
			printf("err %s unknown 0\n", cmd);
		}
	}
	if (st.s)
		snap_store_close(st.s);	/* which frees b */
	else
		b.ops->free(b.ctx);
	return 0;
}
