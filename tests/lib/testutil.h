/* SPDX-License-Identifier: MIT */
#ifndef SNAP_TESTUTIL_H
#define SNAP_TESTUTIL_H

/*
 * Helpers shared by the unit tests and build/tests/mksnap: deterministic
 * sample snapshots and scratch directories.
 */

#include <stdbool.h>
#include <stdint.h>

#include "snapshot/store/backend.h"
#include "snapshot/format/manifest.h"
#include "snapshot/format/snapdir.h"
#include "snapshot/format/state.h"

/* A state with every field set to values derived from seed. */
struct snap_state *test_state_sample(uint32_t n_vcpus, uint32_t seed);

/* A manifest for a guest of mem_size bytes in one or two regions. */
void test_manifest_sample(struct snap_manifest *m, uint32_t n_vcpus,
			  uint64_t mem_size, uint32_t seed);

/*
 * Write a complete snapshot to dir with io: sample state and manifest,
 * memory.bin of mem_size bytes with a pattern from seed on some pages.
 * flags go to snap_writer_commit (SNAP_MEMORY_DIGEST records the digest).
 * Returns 0 or a negative errno (err says what failed).
 */
int test_write_snapshot(const struct snap_io *io, const char *dir,
			uint32_t n_vcpus, uint64_t mem_size, uint32_t seed,
			unsigned flags, struct snap_err *err);

/* mkdtemp under $TMPDIR (or /tmp); aborts on failure. Free the result. */
char *test_tmpdir(void);

/* rm -r path (files and directories below it). */
void test_rmtree(const char *path);

/* Number of entries in dir other than . and .. (-1 if it cannot be read). */
int test_count_entries(const char *dir);

/* Read a whole file into a new buffer; aborts on failure. */
uint8_t *test_read_file(const char *path, size_t *len);

/* Replace a file's contents; aborts on failure. */
void test_write_file(const char *path, const void *buf, size_t len);

/*
 * A memory store's chunks on disk (store is its directory), whichever way
 * they are kept: one file each, or records of pack files. Each reads the
 * chunks afresh, as a new process would; aborts on failure.
 */
uint64_t test_chunk_count(const char *store);
bool test_chunk_has(const char *store, const uint8_t key[SNAP_KEY_LEN]);
/* The stored value's length (0 when not stored). */
size_t test_chunk_len(const char *store, const uint8_t key[SNAP_KEY_LEN]);
/* XOR byte at of key's stored value, every copy of it, with x. */
void test_chunk_xor(const char *store, const uint8_t key[SNAP_KEY_LEN],
		    size_t at, uint8_t x);
/*
 * Store buf (len bytes) as key's value in place of what it was, or remove
 * key (buf NULL), durably. Nothing may have the store open to write.
 */
void test_chunk_replace(const char *store, const uint8_t key[SNAP_KEY_LEN],
			const void *buf, size_t len);

#endif
