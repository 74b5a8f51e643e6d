/* SPDX-License-Identifier: MIT */
/*
 * The directory backend: pack files (pack.c) in stores that require them,
 * else one file per chunk, dir/ab/abcdef...64 hex, which every store can
 * still hold from before.
 *
 * A put writes dir/tmp/<hex>.<random> and renames it into place, so a
 * chunk file under its final name is always whole; a crash can leave a
 * temporary behind, which gc removes. Durability is syncfs(2): one call
 * flushes every chunk written since the last, however many there were.
 */
#include "snapshot/store/backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/pack.h"

struct dir_backend {
	int dfd;
	struct packs *packs;	/* NULL: one file per chunk */
};

static void key_name(const uint8_t key[SNAP_KEY_LEN], char name[68])
{
	char hex[2 * SNAP_KEY_LEN + 1];

	snap_hex(key, SNAP_KEY_LEN, hex);
	snprintf(name, 68, "%.2s/%s", hex, hex);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int dir_put(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		   const void *buf, size_t len)
{
	struct dir_backend *d = ctx;
	char name[68], tmp[96];
	uint64_t rnd;
	int fd, ret;

	if (d->packs)
		return packs_put(d->packs, key, buf, len);
	key_name(key, name);
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -errno;
	snprintf(tmp, sizeof(tmp), "tmp/%s.%016llx", name + 3,
		 (unsigned long long)rnd);
	fd = openat(d->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(d->dfd, "tmp", 0755) && errno != EEXIST)
			return -errno;
		fd = openat(d->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			    0444);
	}
	if (fd < 0)
		return -errno;
	ret = write_all(fd, buf, len);
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && renameat(d->dfd, tmp, d->dfd, name)) {
		ret = -errno;
		if (ret == -ENOENT) {
			char sub[3] = { name[0], name[1], 0 };

			if (mkdirat(d->dfd, sub, 0755) && errno != EEXIST)
				ret = -errno;
			else
				ret = renameat(d->dfd, tmp, d->dfd, name) ?
				      -errno : 0;
		}
	}
	if (ret)
		unlinkat(d->dfd, tmp, 0);
	return ret;
}

static int dir_get(void *ctx, const uint8_t key[SNAP_KEY_LEN], void *buf,
		   size_t cap, size_t *len)
{
	struct dir_backend *d = ctx;
	struct stat st;
	size_t got = 0;
	char name[68];
	int fd, ret = 0;

	if (d->packs) {
		ret = packs_get(d->packs, key, buf, cap, len);
		if (ret != -ENOENT)
			return ret;
		ret = 0;
	}
	key_name(key, name);
	fd = openat(d->dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size > cap) {
		ret = -EFBIG;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, (uint8_t *)buf + got,
				 (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*len = got;
out:
	close(fd);
	return ret;
}

static int dir_has(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	struct dir_backend *d = ctx;
	struct stat st;
	uint64_t size;
	char name[68];

	if (d->packs && packs_size(d->packs, key, &size) == 0)
		return 1;
	key_name(key, name);
	if (fstatat(d->dfd, name, &st, 0) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

static int dir_size(void *ctx, const uint8_t key[SNAP_KEY_LEN],
		    uint64_t *size)
{
	struct dir_backend *d = ctx;
	struct stat st;
	char name[68];

	if (d->packs && packs_size(d->packs, key, size) == 0)
		return 0;
	key_name(key, name);
	if (fstatat(d->dfd, name, &st, 0))
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int dir_del(void *ctx, const uint8_t key[SNAP_KEY_LEN])
{
	struct dir_backend *d = ctx;
	char name[68];
	int ret;

	if (d->packs) {
		ret = packs_del(d->packs, key);
		if (ret != -ENOENT)
			return ret;
	}
	key_name(key, name);
	return unlinkat(d->dfd, name, 0) ? -errno : 0;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int v = 0;

		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else
				return -1;
		}
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* Call fn for every chunk file of one subdirectory ("ab"). */
static int each_sub(int dfd, const char *sub,
		    int (*fn)(void *, const uint8_t *, uint64_t), void *arg)
{
	struct dirent *e;
	int fd, ret = 0;
	DIR *dir;

	fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	while (!ret && (e = readdir(dir))) {
		uint8_t key[SNAP_KEY_LEN];
		struct stat st;

		if (strlen(e->d_name) != 2 * SNAP_KEY_LEN ||
		    strncmp(e->d_name, sub, 2) ||
		    unhex(e->d_name, key, SNAP_KEY_LEN))
			continue;
		if (fstatat(fd, e->d_name, &st, 0))
			continue;	/* deleted meanwhile */
		ret = fn(arg, key, (uint64_t)st.st_size);
	}
	closedir(dir);
	return ret;
}

static int dir_each(void *ctx,
		    int (*fn)(void *, const uint8_t *, uint64_t), void *arg)
{
	struct dir_backend *d = ctx;
	int ret = 0;

	if (d->packs)
		ret = packs_each(d->packs, fn, arg);
	for (int i = 0; i < 256 && !ret; i++) {
		char sub[3];

		snprintf(sub, sizeof(sub), "%02x", i);
		ret = each_sub(d->dfd, sub, fn, arg);
	}
	return ret;
}

static int dir_sync(void *ctx)
{
	struct dir_backend *d = ctx;

	if (d->packs)
		return packs_sync(d->packs);	/* ends with syncfs */
	return syncfs(d->dfd) ? -errno : 0;
}

static int dir_compact(void *ctx)
{
	struct dir_backend *d = ctx;

	return d->packs ? packs_compact(d->packs) : 0;
}

static void dir_free(void *ctx)
{
	struct dir_backend *d = ctx;

	if (d) {
		packs_free(d->packs);
		close(d->dfd);
		free(d);
	}
}

static const struct snap_backend_ops dir_ops = {
	.put = dir_put,
	.get = dir_get,
	.has = dir_has,
	.size = dir_size,
	.del = dir_del,
	.each = dir_each,
	.sync = dir_sync,
	.compact = dir_compact,
	.free = dir_free,
};

int snap_backend_dir(const char *dir, unsigned flags, struct snap_backend *b,
		     struct snap_err *err)
{
	struct dir_backend *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return snap_err_set(err, -ENOMEM, "%s: out of memory", dir);
	d->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dfd < 0) {
		ret = snap_err_set(err, -errno, "%s: %m", dir);
		free(d);
		return ret;
	}
	if (flags & SNAP_BACKEND_PACKS) {
		ret = packs_open(d->dfd, dir, flags & SNAP_BACKEND_RDONLY,
				 &d->packs, err);
		if (ret) {
			dir_free(d);
			return ret;
		}
	}
	b->ops = &dir_ops;
	b->ctx = d;
	return 0;
}
