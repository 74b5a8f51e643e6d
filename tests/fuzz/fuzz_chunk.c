/* SPDX-License-Identifier: MIT */
/*
 * Stored chunks (chunk.c): the input is one object as a backend holds it
 * (header, then raw, zstd or patch payload), put under a key of its own in
 * an in-memory backend and read back with chunk_load and
 * chunk_patch_base. A patch (codec 2) names its base by key: the backend
 * of the 16 KiB store also holds the chunks of the fixture
 * tests/compat/2026-12-store-v2-patches (whole chunks and patches of
 * them), so a patch of a base, and of a patch, can be read.
 *
 * The store's chunk size is the one the object's header says when that
 * is a power of two from 4 KiB to 256 KiB (a store of that size, opened
 * once), else 16 KiB: so page bitmaps of every length are reached.
 *
 * FUZZ_FIX: a chunk's checksum is its key, the SHA-256 of what it
 * decodes to. When the load fails, the object is put again under the
 * digest of what came out and read once more, so a chunk that decodes
 * gets past the final check (and its patch description is filled).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/format/digest.h"
#include "tests/fuzz/fuzz.h"
#include "snapshot/store/store_int.h"

#define CHUNK_FUZZ_MAX	(256u << 10)
#define SIZES		7	/* 4 KiB to 256 KiB */
#define FIXTURE		"2026-12-store-v2-patches"
#define FIXTURE_CHUNK	(16u << 10)

static struct snap_store *stores[SIZES];
static struct snap_backend backends[SIZES];

/* Where the input is put: a key no chunk has. */
static const uint8_t fuzz_key[SNAP_KEY_LEN] = {
	0xf0, 0x22, 'f', 'u', 'z', 'z',
};

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return s[2 * n] ? -1 : 0;
}

/* Every chunk file of the fixture into b, under its name. */
static void load_fixture(struct snap_backend *b)
{
	char chunks[PATH_MAX], sub[PATH_MAX], path[PATH_MAX];
	uint8_t key[SNAP_KEY_LEN], *buf;
	struct dirent *e, *f;
	DIR *d, *dd;
	size_t len;

	fuzz_fixture(sub, FIXTURE);
	fuzz_path(chunks, sub, "chunks");
	d = opendir(chunks);
	if (!d)
		fuzz_die("%s: cannot list it", chunks);
	while ((e = readdir(d))) {
		if (strlen(e->d_name) != 2)
			continue;
		fuzz_path(sub, chunks, e->d_name);
		dd = opendir(sub);
		while (dd && (f = readdir(dd))) {
			if (unhex(f->d_name, key, SNAP_KEY_LEN))
				continue;
			fuzz_path(path, sub, f->d_name);
			buf = fuzz_read_file(path, &len);
			if (b->ops->put(b->ctx, key, buf, len))
				fuzz_die("%s: cannot put it", path);
			free(buf);
		}
		if (dd)
			closedir(dd);
	}
	closedir(d);
}

/* The store of chunk size 4 KiB << i, made and opened on first use. */
static struct snap_store *store(unsigned i)
{
	struct snap_store_opts opts = {
		.flags = SNAP_STORE_RDONLY,
		.cache_bytes = 1u << 20,
		.fetch_threads = 1,
	};
	char dir[PATH_MAX], name[32];
	struct snap_err err;

	if (stores[i])
		return stores[i];
	snprintf(name, sizeof(name), "store-%u", SNAP_CHUNK_MIN << i);
	fuzz_path(dir, fuzz_tmpdir(), name);
	if (snap_store_init(dir, SNAP_CHUNK_MIN << i, &err) ||
	    snap_backend_mem(&backends[i]))
		fuzz_die("%s: %s", dir, err.msg);
	if ((SNAP_CHUNK_MIN << i) == FIXTURE_CHUNK)
		load_fixture(&backends[i]);
	/* The store frees the backend; backends[i] stays a way in. */
	opts.backend = &backends[i];
	if (snap_store_open(dir, &opts, &stores[i], &err))
		fuzz_die("%s", err.msg);
	return stores[i];
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/*
 * FUZZ_FIX: read data as the object stored under key. A chunk of the
 * fixture may have that key (the input is one of them, or decodes to the
 * same bytes): it is put back afterwards.
 */
static int load_as(struct snap_store *s, struct snap_backend *b,
		   const uint8_t key[SNAP_KEY_LEN], const uint8_t *data,
		   size_t size, uint8_t *out)
{
	uint8_t *saved = NULL;
	struct chunk_patch pi;
	struct snap_err err;
	uint64_t len = 0;
	size_t got;
	int ret;

	if (b->ops->size(b->ctx, key, &len) == 0) {
		saved = malloc(len ? len : 1);
		if (!saved || b->ops->get(b->ctx, key, saved, len, &got))
			fuzz_die("cannot keep a fixture chunk");
	}
	if (b->ops->put(b->ctx, key, data, size))
		fuzz_die("out of memory");
	ret = chunk_load(s, key, out, &pi, &err);
	if (saved)
		ret = b->ops->put(b->ctx, key, saved, len) ? -ENOMEM : ret;
	else
		b->ops->del(b->ctx, key);
	free(saved);
	return ret;
}

/* Which store reads the object: the one of its header's size. */
static unsigned pick(const uint8_t *data, size_t size)
{
	uint32_t cs = size >= 12 ? get_le32(data + 8) : 0;

	for (unsigned i = 0; i < SIZES; i++)
		if (cs == SNAP_CHUNK_MIN << i)
			return i;
	return 2;	/* 16 KiB */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned i = pick(data, size);
	struct snap_store *s = store(i);
	struct snap_backend *b = &backends[i];
	uint8_t key[SNAP_KEY_LEN], base[SNAP_KEY_LEN], *out;
	uint32_t cs = snap_store_chunk_size(s);
	struct chunk_patch pi;
	struct snap_err err;
	int ret;

	out = calloc(1, cs);
	if (!out || b->ops->put(b->ctx, fuzz_key, data, size))
		fuzz_die("out of memory");
	ret = chunk_load(s, fuzz_key, out, &pi, &err);
	chunk_patch_base(s, fuzz_key, base);
	b->ops->del(b->ctx, fuzz_key);
	if (FUZZ_FIX && ret) {
		snap_sha256(out, cs, key);
		ret = load_as(s, b, key, data, size, out);
	}
	free(out);
	return 0;
}
