/* SPDX-License-Identifier: MIT */
#ifndef SNAP_DIGEST_H
#define SNAP_DIGEST_H

/*
 * SHA-256, from OpenSSL's libcrypto. Guest memory is attacker-controlled,
 * so every digest libsnap relies on is collision resistant.
 */

#include <stddef.h>
#include <stdint.h>

#define SNAP_DIGEST_LEN 32

struct snap_digest;

/* One-shot digest of buf. */
void snap_sha256(const void *buf, size_t len, uint8_t out[SNAP_DIGEST_LEN]);

/* Streaming digest: create, update any number of times, final, free. */
struct snap_digest *snap_digest_new(void);
void snap_digest_update(struct snap_digest *d, const void *buf, size_t len);
void snap_digest_final(struct snap_digest *d, uint8_t out[SNAP_DIGEST_LEN]);
void snap_digest_free(struct snap_digest *d);

/* Digest bytes [0, size) of fd with pread; sparse holes read as zeros. */
int snap_digest_fd(int fd, uint64_t size, uint8_t out[SNAP_DIGEST_LEN]);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void snap_hex(const uint8_t *bytes, size_t n, char *out);

#endif
