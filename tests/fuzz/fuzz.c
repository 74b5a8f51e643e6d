/* SPDX-License-Identifier: MIT */
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/frame.h"

#ifndef FUZZ_SRCDIR
#define FUZZ_SRCDIR "."
#endif

void fuzz_die(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static char tmpdir[PATH_MAX];

static void remove_tmpdir(void)
{
	if (tmpdir[0])
		fuzz_rmtree(tmpdir);
}

const char *fuzz_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (tmpdir[0])
		return tmpdir;
	/* tmpfs when there is one: some targets fsync on every input. */
	if (!base || !*base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	if (snprintf(tmpdir, sizeof(tmpdir), "%s/snapfs-fuzz.XXXXXX", base) >=
	    (int)sizeof(tmpdir) || !mkdtemp(tmpdir))
		fuzz_die("%s: cannot make a scratch directory", base);
	atexit(remove_tmpdir);
	return tmpdir;
}

void fuzz_path(char *out, const char *dir, const char *name)
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		fuzz_die("%s/%s: path too long", dir, name);
}

void fuzz_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	const uint8_t *p = buf;

	if (fd < 0)
		fuzz_die("%s: %s", path, strerror(errno));
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			fuzz_die("%s: write: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

uint8_t *fuzz_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;

	if (fd < 0 || fstat(fd, &st))
		fuzz_die("%s: %s", path, strerror(errno));
	buf = malloc((size_t)st.st_size + 1);
	if (!buf ||
	    read(fd, buf, (size_t)st.st_size) != (ssize_t)st.st_size)
		fuzz_die("%s: cannot read it", path);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static const char *copy_dst;
static size_t copy_src_len;

static int copy_one(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	char to[PATH_MAX];
	uint8_t *buf;
	size_t len;

	if (path[copy_src_len])
		fuzz_path(to, copy_dst, path + copy_src_len + 1);
	else
		snprintf(to, sizeof(to), "%s", copy_dst);	/* the root */
	if (type == FTW_D) {
		if (mkdir(to, 0755) && errno != EEXIST)
			fuzz_die("%s: %s", to, strerror(errno));
	} else if (type == FTW_F) {
		buf = fuzz_read_file(path, &len);
		fuzz_write_file(to, buf, len);
		free(buf);
	}
	return 0;
}

void fuzz_copy_tree(const char *src, const char *dst)
{
	copy_dst = dst;
	copy_src_len = strlen(src);
	if (nftw(src, copy_one, 16, FTW_PHYS))
		fuzz_die("%s: cannot copy it to %s", src, dst);
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	remove(path);
	return 0;
}

void fuzz_rmtree(const char *path)
{
	nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

void fuzz_fixture(char *out, const char *name)
{
	const char *src = getenv("SNAPFS_SRCDIR");
	char dir[PATH_MAX];

	fuzz_path(dir, src && *src ? src : FUZZ_SRCDIR, "tests/compat");
	fuzz_path(out, dir, name);
	if (access(out, R_OK))
		fuzz_die("%s: fixture missing (set SNAPFS_SRCDIR to the "
			 "source tree)", out);
}

uint8_t *fuzz_dup(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);

	if (!p)
		fuzz_die("out of memory");
	if (size)
		memcpy(p, data, size);
	return p;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

void fuzz_fix_frames(uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (len - off >= FRAME_HDR) {
		uint32_t n = get_le32(buf + off + 4);

		if (n > len - off - FRAME_HDR)
			break;
		snap_sha256(buf + off + FRAME_HDR, n, buf + off + 12);
		off += FRAME_HDR + n;
	}
}
