/* SPDX-License-Identifier: MIT */
/*
 * Comparing the mount with the model: bytes, sizes, inode numbers, link
 * counts and directory listings. A difference ends the run (fsx_fail)
 * with the seed, the operation, the file, the offset and the bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fsx/fsx.h"

/* The bytes around offset i of got and of want, in hex, for a message. */
static void context(char *buf, size_t size, const uint8_t *got,
		    const uint8_t *want, size_t i, size_t len)
{
	size_t from = i >= 8 ? i - 8 : 0, to = i + 8 < len ? i + 8 : len;
	size_t n;

	n = (size_t)snprintf(buf, size, "got  ");
	for (size_t k = from; k < to && n < size; k++)
		n += (size_t)snprintf(buf + n, size - n, k == i ? "[%02x]" :
				      " %02x ", got[k]);
	if (n < size)
		n += (size_t)snprintf(buf + n, size - n, "\n  want ");
	for (size_t k = from; k < to && n < size; k++)
		n += (size_t)snprintf(buf + n, size - n, k == i ? "[%02x]" :
				      " %02x ", want[k]);
}

void check_bytes(struct fsx *fsx, int file, size_t off, const uint8_t *got,
		 size_t len, const char *how)
{
	const uint8_t *want = fsx->files[file].data + off;
	size_t i, last = 0, bad = 0;
	char ctx[512];

	if (!memcmp(got, want, len))
		return;
	for (i = 0; got[i] == want[i]; i++)
		;
	for (size_t k = i; k < len; k++) {
		if (got[k] != want[k]) {
			last = k;
			bad++;
		}
	}
	context(ctx, sizeof(ctx), got, want, i, len);
	fsx_fail(fsx, "miscompare: %s of %s at %zu len %zu (file size %zu): "
		 "first difference at offset %zu: 0x%02x, expected 0x%02x; "
		 "%zu bytes differ, the last at %zu\n  %s", how,
		 model_label(fsx, file), off, len, fsx->files[file].size,
		 off + i, got[i], want[i], bad, off + last, ctx);
}

static void check_stat(struct fsx *fsx, int file, const struct stat *st,
		       const char *what)
{
	const struct mfile *f = &fsx->files[file];

	if ((uint64_t)st->st_ino != f->ino || (size_t)st->st_size != f->size ||
	    st->st_nlink != (nlink_t)f->nlink)
		fsx_fail(fsx, "%s of %s: inode %llu size %zu links %lu, "
			 "expected inode %llu size %zu links %d", what,
			 model_label(fsx, file), (unsigned long long)st->st_ino,
			 (size_t)st->st_size, (unsigned long)st->st_nlink,
			 (unsigned long long)f->ino, f->size, f->nlink);
}

void check_size(struct fsx *fsx, int file)
{
	struct stat st;

	if (fstat(model_fd(fsx, file), &st))
		fsx_fail_errno(fsx, "fstat");
	check_stat(fsx, file, &st, "fstat");
}

void check_name(struct fsx *fsx, int name)
{
	char path[FSX_PATH_LEN];
	struct stat st;

	model_path(fsx, name, path);
	if (stat(path, &st))
		fsx_fail_errno(fsx, path);
	check_stat(fsx, fsx->names[name].file, &st,
		   path + strlen(fsx->mnt) + 1);
}

/* The whole file, in maxio pieces, then nothing past its end. */
void check_file(struct fsx *fsx, int file)
{
	size_t size = fsx->files[file].size, off, n;
	int fd = model_fd(fsx, file);

	check_size(fsx, file);
	for (off = 0; off < size; off += n) {
		n = size - off < fsx->maxio ? size - off : fsx->maxio;
		if (io_pread(fsx, fd, fsx->buf, n, off) != n)
			fsx_fail(fsx, "short read of %s at %zu",
				 model_label(fsx, file), off);
		check_bytes(fsx, file, off, fsx->buf, n, "whole-file read");
	}
	if (io_pread(fsx, fd, fsx->buf, 1, size) != 0)
		fsx_fail(fsx, "%s reads past its size %zu",
			 model_label(fsx, file), size);
}

/* The entries of path but . and ..; count in *n. */
char **check_list(struct fsx *fsx, const char *path, int *n)
{
	static char *names[2 * FSX_MAX_NAMES];
	static char store[2 * FSX_MAX_NAMES][256];
	struct dirent *e;
	DIR *d = opendir(path);

	if (!d)
		fsx_fail_errno(fsx, path);
	*n = 0;
	errno = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (*n == 2 * FSX_MAX_NAMES)
			fsx_fail(fsx, "%s: more entries than ever made", path);
		snprintf(store[*n], sizeof(store[0]), "%s", e->d_name);
		names[*n] = store[*n];
		(*n)++;
	}
	if (errno)
		fsx_fail_errno(fsx, "readdir");
	closedir(d);
	return names;
}

int check_find_dir(const struct fsx *fsx, const char *name)
{
	for (int i = 0; i < FSX_MAX_DIRS; i++)
		if (fsx->dirs[i].used && !strcmp(fsx->dirs[i].name, name))
			return i;
	return -1;
}

/* The listings of the root and of each snapshot are the model's. */
static void check_listings(struct fsx *fsx)
{
	char path[FSX_PATH_LEN];
	char **names;
	int n;

	names = check_list(fsx, fsx->mnt, &n);
	for (int i = 0; i < n; i++)
		if (check_find_dir(fsx, names[i]) < 0)
			fsx_fail(fsx, "the root lists %s, not a snapshot of "
				 "the model", names[i]);
	if (n != model_count_dirs(fsx))
		fsx_fail(fsx, "the root lists %d snapshots, expected %d", n,
			 model_count_dirs(fsx));
	for (int d = 0; d < FSX_MAX_DIRS; d++) {
		if (!fsx->dirs[d].used)
			continue;
		model_dir_path(fsx, d, path);
		names = check_list(fsx, path, &n);
		for (int i = 0; i < n; i++)
			if (model_find_name(fsx, d, names[i]) < 0)
				fsx_fail(fsx, "%s lists %s, not a name of the "
					 "model", fsx->dirs[d].name, names[i]);
		if (n != model_dir_names(fsx, d))
			fsx_fail(fsx, "%s lists %d names, expected %d",
				 fsx->dirs[d].name, n, model_dir_names(fsx, d));
	}
}

void check_all(struct fsx *fsx)
{
	check_listings(fsx);
	for (int i = 0; i < FSX_MAX_NAMES; i++)
		if (fsx->names[i].used)
			check_name(fsx, i);
	for (int i = 0; i < FSX_MAX_FILES; i++)
		if (fsx->files[i].used)
			check_file(fsx, i);
}
