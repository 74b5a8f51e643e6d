/* SPDX-License-Identifier: MIT */
#include "snapshot/format/digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

struct snap_digest {
	EVP_MD_CTX *ctx;
};

void snap_sha256(const void *buf, size_t len, uint8_t out[SNAP_DIGEST_LEN])
{
	unsigned int n = SNAP_DIGEST_LEN;

	EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL);
}

struct snap_digest *snap_digest_new(void)
{
	struct snap_digest *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->ctx = EVP_MD_CTX_new();
	if (!d->ctx || !EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL)) {
		snap_digest_free(d);
		return NULL;
	}
	return d;
}

void snap_digest_update(struct snap_digest *d, const void *buf, size_t len)
{
	EVP_DigestUpdate(d->ctx, buf, len);
}

void snap_digest_final(struct snap_digest *d, uint8_t out[SNAP_DIGEST_LEN])
{
	unsigned int n = SNAP_DIGEST_LEN;

	EVP_DigestFinal_ex(d->ctx, out, &n);
}

void snap_digest_free(struct snap_digest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

int snap_digest_fd(int fd, uint64_t size, uint8_t out[SNAP_DIGEST_LEN])
{
	const size_t bufsz = 1 << 20;
	struct snap_digest *d;
	uint64_t off = 0;
	uint8_t *buf;
	int ret = 0;

	d = snap_digest_new();
	buf = malloc(bufsz);
	if (!d || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (off < size) {
		size_t want = size - off < bufsz ? size - off : bufsz;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0) {
			ret = -ENODATA;	/* shorter than promised */
			goto out;
		}
		snap_digest_update(d, buf, (size_t)n);
		off += (uint64_t)n;
	}
	snap_digest_final(d, out);
out:
	free(buf);
	snap_digest_free(d);
	return ret;
}

void snap_hex(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}
