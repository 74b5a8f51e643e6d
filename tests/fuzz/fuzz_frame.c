/* SPDX-License-Identifier: MIT */
/*
 * Frames (snapshot/store/frame.h) and the small store files made of one frame
 * (store_meta.c): frame_each over the input as a sequence of frames, and
 * the input as a file read by frame_read_one and by the readers of an
 * image's info (images/<id>), a name's ref (images/<id>.ref), a working
 * set (images/<id>.ws) and an open's record (a value in a store in
 * RADOS: meta_open_decode, whose deltas can be no more than the input
 * has room for).
 *
 * FUZZ_FIX: every whole frame's SHA-256 is recomputed (fuzz_fix_frames),
 * so mutations of a payload reach the protobuf decoders and the checks
 * behind them.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snapshot/store/frame.h"
#include "tests/fuzz/fuzz.h"
#include "snapshot/store/store_int.h"

/* The chunk size and image size a working set is read for. */
#define WS_CHUNK_SIZE	4096u
#define WS_CHUNKS	1024u

/* The input is the object images/<ID> of a store's metadata in a
 * directory. */
#define ID_HEX	"00112233445566778899aabbccddeeff"
static const uint8_t id_of[SNAP_ID_LEN] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
};
static char path[PATH_MAX];
static struct snap_meta meta;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[PATH_MAX], images[PATH_MAX];
	struct snap_err err;

	fuzz_path(dir, fuzz_tmpdir(), "meta");
	if (mkdir(dir, 0755) || meta_dir_init(dir, &err) ||
	    meta_dir_open(dir, &meta, &err))
		fuzz_die("%s: cannot make a store's metadata", dir);
	fuzz_path(images, dir, "images");
	fuzz_path(path, images, ID_HEX);
	return 0;
}

struct walk {
	const uint8_t *buf;
	size_t len, seen;
};

/* Every payload frame_each hands out lies inside the input, in order. */
static int each(void *arg, const uint8_t *p, size_t n)
{
	struct walk *w = arg;

	if (p < w->buf + w->seen + FRAME_HDR || n > FRAME_MAX ||
	    n > (size_t)(w->buf + w->len - p))
		fuzz_die("frame_each: a payload outside its frame");
	w->seen = (size_t)(p - w->buf) + n;
	return 0;
}

/* Each id of an open's record counts; each takes 18 bytes or more of
 * the input (a field's tag and length, 16 bytes). */
static int open_id(void *arg, const uint8_t id[SNAP_ID_LEN])
{
	(*(size_t *)arg)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = fuzz_dup(data, size), *payload, id[SNAP_ID_LEN];
	struct walk w = { buf, size, 0 };
	struct image_info ii;
	struct snap_err err;
	struct snap_ws ws;
	size_t end, len, ids;

	if (FUZZ_FIX)
		fuzz_fix_frames(buf, size);
	if (!frame_each(buf, size, "fuzz", each, &w, &end, &err) &&
	    (end > size || end < w.seen))
		fuzz_die("frame_each: end %zu, input %zu, frames to %zu", end,
			 size, w.seen);

	meta_ref_decode(buf, size, "fuzz", id, &err);
	ids = 0;
	meta_open_decode(buf, size, "fuzz", open_id, &ids, &err);
	if (ids * (SNAP_ID_LEN + 2) > size)
		fuzz_die("meta_open_decode: %zu deltas from %zu bytes", ids,
			 size);
	fuzz_write_file(path, buf, size);
	free(buf);
	if (!frame_read_one(path, "fuzz", &payload, &len, &err))
		free(payload);
	meta_image_read(&meta, id_of, &ii, &err);
	if (!meta_ws_read(&meta, "images/" ID_HEX, "fuzz", WS_CHUNK_SIZE,
			  WS_CHUNKS, &ws, &err)) {
		for (uint64_t i = 0; i < ws.n; i++)
			if (ws.index[i] >= WS_CHUNKS)
				fuzz_die("meta_ws_read: index %llu past the "
					 "image", (unsigned long long)
					 ws.index[i]);
		snap_ws_release(&ws);
	}
	return 0;
}
