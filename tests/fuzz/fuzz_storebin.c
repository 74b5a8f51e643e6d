/* SPDX-License-Identifier: MIT */
/*
 * store.bin (store_meta.c): the input is a store's store.bin, read by
 * meta_store_read and by snap_store_open of an otherwise empty store. When
 * it reads, adding the patches feature (meta_store_require, as the first
 * patch does) must keep everything else, and read again.
 *
 * FUZZ_FIX: the frame's SHA-256 is recomputed (fuzz_fix_frames), so
 * mutations reach the StoreInfo decoder and its checks.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/store/frame.h"
#include "tests/fuzz/fuzz.h"
#include "snapshot/store/store_int.h"

static char dir[PATH_MAX], path[PATH_MAX];
static struct snap_meta meta;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct snap_err err;

	fuzz_path(dir, fuzz_tmpdir(), "store");
	if (snap_store_init(dir, SNAP_CHUNK_DEFAULT, &err))
		fuzz_die("%s", err.msg);
	fuzz_path(path, dir, "store.bin");
	if (meta_dir_open(dir, &meta, &err))
		fuzz_die("%s", err.msg);
	return 0;
}

static void require_patches(const struct store_info *si)
{
	struct store_info again;
	struct snap_err err;

	if (meta_store_require(&meta, FEATURE_PATCHES, &err))
		return;
	if (meta_store_read(&meta, &again, &err))
		fuzz_die("store.bin with patches required does not read: %s",
			 err.msg);
	if (memcmp(again.id, si->id, SNAP_ID_LEN) ||
	    again.chunk_size != si->chunk_size ||
	    again.created_ns != si->created_ns || !again.patches)
		fuzz_die("store.bin changed when patches were required");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct snap_store_opts opts = {
		.flags = SNAP_STORE_RDONLY,
		.cache_bytes = 1u << 20,
		.fetch_threads = 1,
	};
	uint8_t *buf = fuzz_dup(data, size);
	struct snap_store *s;
	struct store_info si;
	struct snap_err err;

	if (FUZZ_FIX)
		fuzz_fix_frames(buf, size);
	fuzz_write_file(path, buf, size);
	free(buf);
	if (!snap_store_open(dir, &opts, &s, &err)) {
		if (snap_store_chunk_size(s) < SNAP_CHUNK_MIN ||
		    snap_store_chunk_size(s) > SNAP_CHUNK_MAX)
			fuzz_die("a store opened with chunk size %u",
				 snap_store_chunk_size(s));
		snap_store_close(s);
	}
	if (!meta_store_read(&meta, &si, &err))
		require_patches(&si);
	return 0;
}
