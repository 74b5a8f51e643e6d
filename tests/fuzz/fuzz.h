/* SPDX-License-Identifier: MIT */
#ifndef SNAP_FUZZ_H
#define SNAP_FUZZ_H

/*
 * What the libFuzzer targets of tests/fuzz share (README.md there).
 *
 * Each target is built twice when its format carries a checksum: plain,
 * where the input is the file's bytes as they would be on disk, and with
 * FUZZ_FIX=1 (the *_fix binaries), where the target recomputes the
 * checksum over the fuzzed bytes before decoding, so that mutations get
 * past it to the decoders and validators behind. Both read the same
 * corpus.
 */

#include <stddef.h>
#include <stdint.h>

#ifndef FUZZ_FIX
#define FUZZ_FIX 0
#endif

/* The entry points libFuzzer calls. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Print "fuzz: MESSAGE" and abort: a broken set-up, never an input. */
void fuzz_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/*
 * A scratch directory of this process's own (under $TMPDIR, else
 * /dev/shm, else /tmp), made on the first call and removed at exit.
 */
const char *fuzz_tmpdir(void);

/* dir/name into a PATH_MAX buffer; aborts when it does not fit. */
void fuzz_path(char *out, const char *dir, const char *name);

/* Replace the file at path with len bytes of buf; aborts on failure. */
void fuzz_write_file(const char *path, const void *buf, size_t len);

/* A whole file into a new buffer; aborts on failure. */
uint8_t *fuzz_read_file(const char *path, size_t *len);

/* Copy the tree (or file) src to dst (made); aborts on failure. */
void fuzz_copy_tree(const char *src, const char *dst);

/* rm -r path. */
void fuzz_rmtree(const char *path);

/*
 * The fixture directory tests/compat/NAME of the source tree: under
 * $SNAPFS_SRCDIR when set, else the tree the target was built from.
 */
void fuzz_fixture(char *out, const char *name);

/* A copy of data in a new buffer of exactly size bytes (ASan sees past
 * its end), never NULL. */
uint8_t *fuzz_dup(const uint8_t *data, size_t size);

/*
 * The checksum of frames (snapshot/store/frame.h): walk buf as a sequence of
 * frames, each from its header's length, and recompute every whole
 * frame's SHA-256. Magic and length are left as they are.
 */
void fuzz_fix_frames(uint8_t *buf, size_t len);

#endif
