/* SPDX-License-Identifier: MIT */
/*
 * Delta journals and image loading (store_journal.c, store_image.c,
 * store_io.c): the input is the head delta's journal of base.img in a
 * copy of the fixture store tests/compat/2026-12-store-v2-patches. The
 * image is opened (its chain resolved: the journal may name any of the
 * fixture's deltas as its parent), read chunk by chunk, then opened for
 * writing, written (a whole chunk at 0) and closed, which appends a frame
 * to the journal after cutting a torn tail. An image that loaded must load
 * again with that frame, and read back what was written.
 *
 * An image's memory follows what it holds, not the size it declares
 * (store_map.c), so any declared size up to SNAP_IMAGE_MAX is opened.
 *
 * FUZZ_FIX: every whole frame's SHA-256 is recomputed (fuzz_fix_frames),
 * so mutations reach the DeltaFrame decoder and the chain's resolution.
 */
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "snapshot/store/store_int.h"

#define FIXTURE		"2026-12-store-v2-patches"
#define IMAGE		"e001fef268b1a386eead864cabb3b007"	/* p/base.img */
#define HEAD		"776aa4945bd27821e9adcc6b03d08acd"	/* its head */
#define READ_CHUNKS	32	/* chunks read from the start */
#define MAX_FILES	64

static char dir[PATH_MAX], journal[PATH_MAX], info[PATH_MAX];
static uint8_t image_id[SNAP_ID_LEN];
static uint8_t *info_bytes;
static size_t info_len;

/* What deltas/ and images/ held at the start; anything else goes. */
static const char *const subdirs[] = { "deltas", "images" };
static char *kept[2][MAX_FILES];

static void list(const char *sub, char **names)
{
	char path[PATH_MAX];
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	fuzz_path(path, dir, sub);
	d = opendir(path);
	if (!d)
		fuzz_die("%s: cannot list it", path);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && n < MAX_FILES - 1)
			names[n++] = strdup(e->d_name);
	closedir(d);
}

static bool was_kept(char **names, const char *name)
{
	for (; *names; names++)
		if (!strcmp(*names, name))
			return true;
	return false;
}

/* The store as it was, but for the journal: files made by writes go. */
static void restore(void)
{
	char path[PATH_MAX], file[PATH_MAX];
	struct dirent *e;
	DIR *d;

	for (size_t i = 0; i < 2; i++) {
		fuzz_path(path, dir, subdirs[i]);
		d = opendir(path);
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.' &&
			    !was_kept(kept[i], e->d_name)) {
				fuzz_path(file, path, e->d_name);
				unlink(file);
			}
		if (d)
			closedir(d);
	}
	fuzz_write_file(info, info_bytes, info_len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const parts[] = {
		"store.bin", "chunks", "deltas", "images",
	};
	char fixture[PATH_MAX], src[PATH_MAX], dst[PATH_MAX];

	fuzz_fixture(fixture, FIXTURE);
	fuzz_path(dir, fuzz_tmpdir(), "store");
	if (mkdir(dir, 0755))
		fuzz_die("%s: cannot make it", dir);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		fuzz_path(src, fixture, parts[i]);
		fuzz_path(dst, dir, parts[i]);
		fuzz_copy_tree(src, dst);
	}
	for (size_t i = 0; i < 2; i++)
		list(subdirs[i], kept[i]);
	fuzz_path(journal, dir, "deltas/" HEAD);
	fuzz_path(info, dir, "images/" IMAGE);
	info_bytes = fuzz_read_file(info, &info_len);
	for (size_t i = 0; i < SNAP_ID_LEN; i++) {
		char hex[3] = { IMAGE[2 * i], IMAGE[2 * i + 1], 0 };

		image_id[i] = (uint8_t)strtoul(hex, NULL, 16);
	}
	return 0;
}

/* Read the image chunk by chunk (each read within one chunk: no
 * read-ahead threads), and two chunks at once straight from the store. */
static void read_image(struct snap_image *img, uint32_t cs, uint8_t *buf)
{
	uint64_t size = snap_image_size(img);
	struct snap_image_stat st;
	struct snap_err err;

	snap_image_stat(img, &st);
	if (st.size != size || st.own_chunks > st.chunks)
		fuzz_die("image stat: size %llu of %llu, %llu own chunks of "
			 "%llu", (unsigned long long)st.size,
			 (unsigned long long)size,
			 (unsigned long long)st.own_chunks,
			 (unsigned long long)st.chunks);
	for (uint64_t i = 0; i < READ_CHUNKS && i * cs < size; i++)
		snap_image_read(img, buf, cs, i * cs, &err);
	if (size > cs)
		snap_image_read(img, buf, cs, size - cs / 2, &err);
	snap_image_read_direct(img, buf, 2 * (size_t)cs, 0, &err);
}

/* Write chunk 0 whole and close: the journal gets a frame. */
static bool write_image(struct snap_store *s, uint32_t cs, uint8_t *buf)
{
	struct snap_image *img;
	struct snap_err err;
	ssize_t n;

	if (snap_image_open(s, image_id, SNAP_IMAGE_WRITE, &img, &err))
		return false;
	memset(buf, 0x5a, cs);
	n = snap_image_write(img, buf, cs, 0, &err);
	return !snap_image_close(img, &err) && n == (ssize_t)cs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct snap_store_opts opts = {
		.cache_bytes = 1u << 20,
		.fetch_threads = 1,
	};
	uint8_t *copy = fuzz_dup(data, size), *buf;
	struct snap_image *img;
	struct snap_store *s;
	struct snap_err err;
	uint32_t cs;

	restore();
	if (FUZZ_FIX)
		fuzz_fix_frames(copy, size);
	fuzz_write_file(journal, copy, size);
	free(copy);
	if (snap_store_open(dir, &opts, &s, &err))
		fuzz_die("%s", err.msg);
	cs = snap_store_chunk_size(s);
	buf = malloc(2 * (size_t)cs);
	if (!buf)
		fuzz_die("out of memory");
	if (snap_image_open(s, image_id, 0, &img, &err))
		goto out;
	read_image(img, cs, buf);
	snap_image_close(img, NULL);

	if (!write_image(s, cs, buf))
		goto out;
	if (snap_image_open(s, image_id, 0, &img, &err))
		fuzz_die("an image does not load after a write: %s", err.msg);
	if (snap_image_read(img, buf + cs, cs, 0, &err) != (ssize_t)cs ||
	    memcmp(buf, buf + cs, cs))
		fuzz_die("an image does not read back what was written");
	snap_image_close(img, NULL);
out:
	free(buf);
	snap_store_close(s);
	return 0;
}
