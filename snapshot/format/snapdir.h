/* SPDX-License-Identifier: MIT */
#ifndef SNAP_SNAPDIR_H
#define SNAP_SNAPDIR_H

/*
 * A snapshot directory: manifest.bin, state.bin, memory.bin, and the disk
 * files the manifest names (disk0.img, ...).
 *
 * Writing is a transaction. snap_writer_begin() makes a hidden temporary
 * sibling of the final directory; the caller fills memory.bin; commit
 * writes state.bin, fsyncs everything, writes manifest.bin last, fsyncs it
 * and the temporary directory, renames it to the final name (never
 * replacing anything there) and fsyncs the parent. A failed or killed save
 * leaves nothing under the final name and never touches an existing
 * snapshot; snap_writer_free() removes the temporary of an uncommitted one.
 *
 * Reading checks, in order: the manifest's own checksum, its fields, its
 * required features, state.bin's size and digest, state.bin's fields, the
 * vCPU count of both, memory.bin's size (and its digest on request), and
 * each disk's size (and its digest on request).
 */

#include <stdint.h>

#include "snapshot/format/error.h"
#include "snapshot/format/io.h"
#include "snapshot/format/manifest.h"
#include "snapshot/format/state.h"

#define SNAP_MANIFEST_FILE	"manifest.bin"
#define SNAP_STATE_FILE		"state.bin"
#define SNAP_MEMORY_FILE	"memory.bin"

struct snap_writer;

/* Flags of snap_writer_commit() and snap_read(). */
#define SNAP_MEMORY_DIGEST	(1u << 0)	/* compute / check memory_sha256 */
#define SNAP_DISK_DIGEST	(1u << 1)	/* check each disk's sha256 */

/* Start a snapshot that will be published as dir (which must not exist). */
int snap_writer_begin(const struct snap_io *io, const char *dir,
		      struct snap_writer **w, struct snap_err *err);

/* Path of the temporary directory being filled. */
const char *snap_writer_tmpdir(const struct snap_writer *w);

/*
 * Create memory.bin in the temporary directory, size bytes long and sparse,
 * and return its descriptor (owned by the writer, open read-write) so the
 * caller can fill it with pwrite or copy_file_range.
 */
int snap_writer_memory(struct snap_writer *w, uint64_t size, int *fd,
		       struct snap_err *err);

/*
 * Create disk file (a plain name, listed in the manifest's disks in the
 * same order) in the temporary directory, empty, and return its descriptor
 * (owned by the writer, read-write) for the caller to fill. Commit syncs
 * it, checks its size and puts its digest into the manifest.
 */
int snap_writer_disk(struct snap_writer *w, const char *file, int *fd,
		     struct snap_err *err);

/*
 * Write state.bin and manifest.bin and publish. Fills m's state digest,
 * state size (and memory digest with SNAP_MEMORY_DIGEST). After a failure
 * the final name holds nothing partial; call snap_writer_free() to clean up.
 */
int snap_writer_commit(struct snap_writer *w, struct snap_manifest *m,
		       const struct snap_state *s, unsigned flags,
		       struct snap_err *err);

/* Remove the temporary directory unless committed, and free w (or NULL). */
void snap_writer_free(struct snap_writer *w);

/*
 * Read and check the snapshot in dir. m is filled (release it with
 * snap_manifest_release); *s gets a new state unless s is NULL.
 */
int snap_read(const char *dir, unsigned flags, struct snap_manifest *m,
	      struct snap_state **s, struct snap_err *err);

#endif
