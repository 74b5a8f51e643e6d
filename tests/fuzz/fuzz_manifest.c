/* SPDX-License-Identifier: MIT */
/*
 * manifest.bin: snap_manifest_decode (checksum trailer, protobuf, every
 * field, required features). A manifest that decodes must encode, and
 * decode again to a manifest that encodes to the same bytes.
 *
 * FUZZ_FIX: the trailer's SHA-256 is recomputed over the body (appended
 * when the input does not end in a trailer), so mutations reach the
 * protobuf decoder and the validation behind the checksum.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "snapshot/format/manifest.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static bool has_trailer(const uint8_t *buf, size_t len)
{
	return len >= SNAP_TRAILER_LEN &&
	       buf[len - SNAP_TRAILER_LEN] == SNAP_TRAILER_TAG &&
	       buf[len - SNAP_TRAILER_LEN + 1] == SNAP_DIGEST_LEN;
}

/* Encode m: it decoded, so it must. */
static uint8_t *encode(const struct snap_manifest *m, size_t *len)
{
	struct snap_err err;
	uint8_t *buf;

	if (snap_manifest_validate(m, &err))
		fuzz_die("a decoded manifest fails validation: %s", err.msg);
	if (snap_manifest_encode(m, &buf, len, &err))
		fuzz_die("a decoded manifest does not encode: %s", err.msg);
	return buf;
}

static void round_trip(const struct snap_manifest *m)
{
	struct snap_manifest again;
	struct snap_err err;
	uint8_t *one, *two;
	size_t n1, n2;

	one = encode(m, &n1);
	if (snap_manifest_decode(one, n1, &again, &err))
		fuzz_die("a re-encoded manifest does not decode: %s", err.msg);
	two = encode(&again, &n2);
	if (n1 != n2 || memcmp(one, two, n1))
		fuzz_die("a manifest changes between two round trips");
	snap_manifest_release(&again);
	free(one);
	free(two);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_manifest m;
	struct snap_err err;
	size_t len = size, body = size;
	uint8_t *buf;

	if (FUZZ_FIX) {
		if (has_trailer(data, size))
			body = size - SNAP_TRAILER_LEN;
		len = body + SNAP_TRAILER_LEN;
	}
	/* Exactly len bytes, so that ASan sees a read past the end. */
	buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, body);
	if (FUZZ_FIX) {
		buf[body] = SNAP_TRAILER_TAG;
		buf[body + 1] = SNAP_DIGEST_LEN;
		snap_sha256(buf, body, buf + body + 2);
	}
	if (!snap_manifest_decode(buf, len, &m, &err)) {
		round_trip(&m);
		snap_manifest_release(&m);
	}
	free(buf);
	return 0;
}
