/* SPDX-License-Identifier: MIT */
/*
 * Pack files (pack.c, pack_index.c): the input is a pack's index and the
 * pack itself, a u32 little-endian length n, then n bytes of
 * 0000000000.idx (none when n is 0), then the rest as 0000000000.pack.
 * A reader opens them, lists every key and reads every value back; then
 * a writer opens them (sealing the pack: it writes an index of what it
 * found), puts a value, syncs, and a new reader must find everything the
 * first one did, and the value.
 *
 * FUZZ_FIX: the index's frame SHA-256 is recomputed (fuzz_fix_frames), so
 * mutations reach the PackIndex decoder and the checks of what it lists.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/store/backend.h"
#include "tests/fuzz/fuzz.h"

static char dir[PATH_MAX], packs[PATH_MAX], idx[PATH_MAX], pack[PATH_MAX];
static uint8_t *value;		/* room for any value: 8 MiB */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_path(dir, fuzz_tmpdir(), "chunks");
	fuzz_path(packs, dir, "packs");
	fuzz_path(idx, packs, "0000000000.idx");
	fuzz_path(pack, packs, "0000000000.pack");
	value = malloc(8u << 20);
	if (!value)
		fuzz_die("out of memory");
	return 0;
}

struct listing {
	struct snap_backend *b;
	size_t n;
	uint8_t (*keys)[SNAP_KEY_LEN];
	uint8_t *buf;
};

static int read_one(void *arg, const uint8_t key[SNAP_KEY_LEN], uint64_t size)
{
	struct listing *l = arg;
	size_t len;
	int ret;

	if (size > (8u << 20))
		fuzz_die("a value of %llu bytes listed",
			 (unsigned long long)size);
	ret = l->b->ops->get(l->b->ctx, key, l->buf, 8u << 20, &len);
	if (ret && ret != -EIO)
		fuzz_die("a listed key does not read: %d", ret);
	if (!ret && len != size)
		fuzz_die("listed %llu bytes, read %zu",
			 (unsigned long long)size, len);
	if (l->keys) {
		memcpy(l->keys[l->n], key, SNAP_KEY_LEN);
		l->n++;
	}
	return 0;
}

static int count_one(void *arg, const uint8_t key[SNAP_KEY_LEN],
		     uint64_t size)
{
	(void)key;
	(void)size;
	++*(size_t *)arg;
	return 0;
}

static void reset(void)
{
	fuzz_rmtree(dir);
	if (mkdir(dir, 0755) || mkdir(packs, 0755))
		fuzz_die("mkdir %s", packs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[SNAP_KEY_LEN] = { 0xfe, 1, 2, 3 };
	struct listing l = { 0 };
	struct snap_backend b;
	struct snap_err err;
	uint8_t *copy;
	uint32_t n = 0;
	size_t total = 0, found = 0, len;

	if (size < 4)
		return 0;
	memcpy(&n, data, 4);
	n = le32toh(n);
	if (n > size - 4)
		n = (uint32_t)(size - 4);
	reset();
	copy = fuzz_dup(data + 4, size - 4);
	if (n) {
		if (FUZZ_FIX)
			fuzz_fix_frames(copy, n);
		fuzz_write_file(idx, copy, n);
	}
	fuzz_write_file(pack, copy + n, size - 4 - n);
	free(copy);

	l.buf = value;
	if (!snap_backend_dir(dir, SNAP_BACKEND_PACKS | SNAP_BACKEND_RDONLY,
			      &b, &err)) {
		l.b = &b;
		b.ops->each(b.ctx, count_one, &total);
		l.keys = malloc((total + 1) * SNAP_KEY_LEN);
		if (!l.keys)
			fuzz_die("out of memory");
		b.ops->each(b.ctx, read_one, &l);
		b.ops->free(b.ctx);
	}
	if (!snap_backend_dir(dir, SNAP_BACKEND_PACKS, &b, &err)) {
		/* A key already there keeps its value (backend.h). */
		bool had = b.ops->has(b.ctx, key) == 1;

		if (b.ops->put(b.ctx, key, "value", 5) ||
		    b.ops->sync(b.ctx))
			fuzz_die("a put into a writer's packs failed");
		b.ops->free(b.ctx);
		if (snap_backend_dir(dir, SNAP_BACKEND_PACKS |
				     SNAP_BACKEND_RDONLY, &b, &err))
			fuzz_die("what a writer sealed does not open: %s",
				 err.msg);
		for (size_t i = 0; i < l.n; i++)
			if (b.ops->has(b.ctx, l.keys[i]) != 1)
				fuzz_die("key %zu of %zu lost by sealing", i,
					 l.n);
		if (!had && (b.ops->get(b.ctx, key, l.buf, 8u << 20, &len) ||
			     len != 5 || memcmp(l.buf, "value", 5)))
			fuzz_die("the value put does not read back");
		b.ops->each(b.ctx, count_one, &found);
		if (found < l.n + !had)
			fuzz_die("%zu keys after sealing, %zu before", found,
				 l.n);
		b.ops->free(b.ctx);
	}
	free(l.keys);
	return 0;
}
