/* SPDX-License-Identifier: MIT */
#ifndef SNAP_FRAME_H
#define SNAP_FRAME_H

/*
 * Frames: how the store's metadata files hold their messages.
 *
 *   offset  size  field
 *   0       4     magic "SNFR"
 *   4       4     payload length n, little-endian, at most FRAME_MAX
 *   8       4     ~n: the length's bitwise complement
 *   12      32    SHA-256 of the payload
 *   44      n     payload
 *
 * A file is a sequence of frames. A journal grows by appending one whole
 * frame with one write(2); a crash can leave the last append torn: cut
 * short (a header or payload running past the end of the file), or zeros
 * the filesystem extended the file with. Readers stop at a torn tail.
 * Anything else that is not a frame (a length disagreeing with its
 * complement, a whole payload not matching its digest) is corruption.
 */

#include <stddef.h>
#include <stdint.h>

#include "snapshot/format/error.h"

#define FRAME_HDR	44
#define FRAME_MAX	(256u << 20)

/* Header plus payload in one new buffer, ready to write. */
int frame_encode(const void *payload, size_t len, uint8_t **out,
		 size_t *outlen);

/*
 * Call fn on each whole frame of buf (a file's bytes). *end gets the offset
 * after the last whole frame. Returns 0, fn's first non-zero return, or
 * -EBADMSG (naming label) for a corrupt frame before the end.
 */
int frame_each(const uint8_t *buf, size_t len, const char *label,
	       int (*fn)(void *arg, const uint8_t *p, size_t n), void *arg,
	       size_t *end, struct snap_err *err);

/* Flags of frame_publish(). */
#define FRAME_NOREPLACE	(1u << 0)	/* -EEXIST when path exists */
#define FRAME_DURABLE	(1u << 1)	/* fsync the file and its directory */

/*
 * Publish path holding the single frame of payload: a temporary file beside
 * it, written whole, renamed over path (atomic: readers see the old file or
 * the new one). Without FRAME_DURABLE a crash may lose the new file, or
 * leave it empty: fsync it (frame_fsync_file) before relying on it.
 */
int frame_publish(const char *path, const void *payload, size_t len,
		  unsigned flags, struct snap_err *err);

/* frame_publish of bytes already framed (n bytes at buf). */
int frame_publish_bytes(const char *path, const void *buf, size_t n,
			unsigned flags, struct snap_err *err);

/* fsync the file at path. */
int frame_fsync_file(const char *path);

/* The payload of buf (n bytes), which must hold exactly one frame, in a
 * new buffer; errors name label. */
int frame_decode_one(const uint8_t *buf, size_t n, const char *label,
		     uint8_t **payload, size_t *len, struct snap_err *err);

/* Read a file holding exactly one frame; *payload is a new buffer. */
int frame_read_one(const char *path, const char *label, uint8_t **payload,
		   size_t *len, struct snap_err *err);

/* fsync the directory holding path. */
int frame_fsync_dir(const char *path);

#endif
