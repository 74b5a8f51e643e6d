/* SPDX-License-Identifier: MIT */
/*
 * The model: snapshot directories, names and files as the mount must show
 * them, and what each file held at its last fsync. Nothing here touches
 * the mount except model_fd, which opens a file by one of its names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fsx/fsx.h"

int model_init(struct fsx *fsx)
{
	memset(fsx->dirs, 0, sizeof(fsx->dirs));
	memset(fsx->names, 0, sizeof(fsx->names));
	memset(fsx->files, 0, sizeof(fsx->files));
	for (int i = 0; i < FSX_MAX_FILES; i++)
		fsx->files[i].fd = -1;
	return 0;
}

static void file_free(struct mfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->data);
	free(f->synced);
	free(f->touched);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

void model_free(struct fsx *fsx)
{
	for (int i = 0; i < FSX_MAX_FILES; i++)
		file_free(&fsx->files[i]);
}

/* The k-th used entry of an array of used flags, k picked at random. */
#define PICK(fsx, arr, n) ({						\
	int _c = 0, _k, _i;						\
	for (_i = 0; _i < (n); _i++)					\
		_c += (arr)[_i].used;					\
	_k = _c ? (int)fsx_below((fsx), (uint64_t)_c) : -1;		\
	for (_i = 0; _k >= 0 && _i < (n); _i++)				\
		if ((arr)[_i].used && _k-- == 0)			\
			break;						\
	_c ? _i : -1;							\
})

int model_pick_dir(struct fsx *fsx)
{
	return PICK(fsx, fsx->dirs, FSX_MAX_DIRS);
}

int model_pick_file(struct fsx *fsx)
{
	return PICK(fsx, fsx->files, FSX_MAX_FILES);
}

int model_pick_name(struct fsx *fsx)
{
	return PICK(fsx, fsx->names, FSX_MAX_NAMES);
}

#define COUNT(arr, n) ({						\
	int _c = 0;							\
	for (int _i = 0; _i < (n); _i++)				\
		_c += (arr)[_i].used;					\
	_c;								\
})

int model_count_dirs(const struct fsx *fsx)
{
	return COUNT(fsx->dirs, FSX_MAX_DIRS);
}

int model_count_files(const struct fsx *fsx)
{
	return COUNT(fsx->files, FSX_MAX_FILES);
}

int model_count_names(const struct fsx *fsx)
{
	return COUNT(fsx->names, FSX_MAX_NAMES);
}

int model_dir_names(const struct fsx *fsx, int dir)
{
	int c = 0;

	for (int i = 0; i < FSX_MAX_NAMES; i++)
		c += fsx->names[i].used && fsx->names[i].dir == dir;
	return c;
}

int model_find_name(const struct fsx *fsx, int dir, const char *name)
{
	for (int i = 0; i < FSX_MAX_NAMES; i++)
		if (fsx->names[i].used && fsx->names[i].dir == dir &&
		    !strcmp(fsx->names[i].name, name))
			return i;
	return -1;
}

/* A new directory slot with a fresh name, or -1 when all are taken. */
int model_new_dir(struct fsx *fsx)
{
	for (int i = 0; i < FSX_MAX_DIRS; i++) {
		if (fsx->dirs[i].used)
			continue;
		memset(&fsx->dirs[i], 0, sizeof(fsx->dirs[i]));
		fsx->dirs[i].used = true;
		fsx->dirs[i].dirty = true;
		snprintf(fsx->dirs[i].name, FSX_NAME_LEN, "s%u",
			 fsx->next_id++);
		fsx->root_dirty = true;
		return i;
	}
	return -1;
}

/* A new, empty file without names, or -1. */
int model_new_file(struct fsx *fsx)
{
	for (int i = 0; i < FSX_MAX_FILES; i++) {
		struct mfile *f = &fsx->files[i];

		if (f->used)
			continue;
		f->data = calloc(1, fsx->maxlen);
		f->synced = calloc(1, fsx->maxlen);
		f->touched = calloc(1, fsx->maxlen / 8 + 1);
		if (!f->data || !f->synced || !f->touched) {
			file_free(f);
			return -1;
		}
		f->used = true;
		f->id = fsx->next_id++;
		/* Never synced: a crash may lose it whole, or keep it. */
		f->dirty = true;
		return i;
	}
	return -1;
}

/* name (a fresh one when NULL) for file in dir, or -1 when no slot is
 * free. */
int model_add_name(struct fsx *fsx, int dir, int file, const char *name)
{
	for (int i = 0; i < FSX_MAX_NAMES; i++) {
		struct mname *n = &fsx->names[i];

		if (n->used)
			continue;
		n->used = true;
		n->dir = dir;
		n->file = file;
		if (name)
			snprintf(n->name, FSX_NAME_LEN, "%s", name);
		else
			snprintf(n->name, FSX_NAME_LEN, "f%u", fsx->next_id++);
		fsx->files[file].nlink++;
		fsx->dirs[dir].dirty = true;
		return i;
	}
	return -1;
}

/*
 * A name goes. A file losing its last name goes too, or, when it is open,
 * sometimes lives on through its fd alone (an orphan, as after unlink of
 * an open file) until that is closed.
 */
void model_drop_name(struct fsx *fsx, int name)
{
	struct mname *n = &fsx->names[name];
	struct mfile *f = &fsx->files[n->file];

	fsx->dirs[n->dir].dirty = true;
	n->used = false;
	if (--f->nlink == 0 && (f->fd < 0 || fsx_below(fsx, 2)))
		file_free(f);
}

void model_dir_path(const struct fsx *fsx, int dir, char *buf)
{
	snprintf(buf, FSX_PATH_LEN, "%s/%s", fsx->mnt, fsx->dirs[dir].name);
}

void model_path(const struct fsx *fsx, int name, char *buf)
{
	const struct mname *n = &fsx->names[name];

	snprintf(buf, FSX_PATH_LEN, "%s/%s/%s", fsx->mnt,
		 fsx->dirs[n->dir].name, n->name);
}

/* The path of file's first name: every file in the model has one. */
void model_file_path(const struct fsx *fsx, int file, char *buf)
{
	for (int i = 0; i < FSX_MAX_NAMES; i++) {
		if (fsx->names[i].used && fsx->names[i].file == file) {
			model_path(fsx, i, buf);
			return;
		}
	}
	snprintf(buf, FSX_PATH_LEN, "(file %u has no name)",
		 fsx->files[file].id);
}

/* "file 7 (s3/f12)" for messages; the buffer is reused by the next call. */
const char *model_label(const struct fsx *fsx, int file)
{
	static char buf[FSX_PATH_LEN + 32];
	char path[FSX_PATH_LEN];
	size_t skip = strlen(fsx->mnt) + 1;

	if (!fsx->files[file].nlink) {
		snprintf(buf, sizeof(buf), "file %u (unlinked, open)",
			 fsx->files[file].id);
		return buf;
	}
	model_file_path(fsx, file, path);
	snprintf(buf, sizeof(buf), "file %u (%s)", fsx->files[file].id,
		 path + skip);
	return buf;
}

/* Mark [off, off + len) changed since the last fsync where it matters:
 * bytes past the synced size are not promised anyway. */
static void touch(struct mfile *f, size_t off, size_t len)
{
	size_t end = off + len;

	if (end > f->synced_size)
		end = f->synced_size;
	for (size_t i = off; i < end; i++)
		f->touched[i / 8] |= (uint8_t)(1u << (i % 8));
}

static void resized(struct mfile *f)
{
	f->dirty = true;
	if (f->size < f->min_size)
		f->min_size = f->size;
	if (f->size > f->max_size)
		f->max_size = f->size;
}

void model_write(struct fsx *fsx, int file, size_t off, const uint8_t *p,
		 size_t len)
{
	struct mfile *f = &fsx->files[file];

	memmove(f->data + off, p, len);
	touch(f, off, len);
	if (off + len > f->size)
		f->size = off + len;
	resized(f);
}

void model_resize(struct fsx *fsx, int file, size_t size)
{
	struct mfile *f = &fsx->files[file];

	if (size < f->size) {
		f->shrunk |= f->layered;
		/* Keep the tail zero: a later growth reads zeros there. */
		memset(f->data + size, 0, f->size - size);
		touch(f, size, f->size - size);
	}
	f->size = size;
	resized(f);
}

/* file was fsync'ed: what it holds now is promised. */
void model_synced(struct fsx *fsx, int file)
{
	struct mfile *f = &fsx->files[file];
	size_t n = f->size > f->synced_size ? f->size : f->synced_size;

	memcpy(f->synced, f->data, n);
	f->synced_size = f->size;
	memset(f->touched, 0, fsx->maxlen / 8 + 1);
	f->min_size = f->max_size = f->size;
	f->dirty = false;
}

/* An fd open for reading and writing on file, opened when needed. */
int model_fd(struct fsx *fsx, int file)
{
	struct mfile *f = &fsx->files[file];
	char path[FSX_PATH_LEN];

	if (f->fd >= 0)
		return f->fd;
	if (!f->nlink)
		fsx_fail(fsx, "internal: an orphan without an fd");
	model_file_path(fsx, file, path);
	f->fd = open(path, O_RDWR);
	if (f->fd < 0) {
		char what[FSX_PATH_LEN + 16];

		snprintf(what, sizeof(what), "open %s", path);
		fsx_fail_errno(fsx, what);
	}
	return f->fd;
}

void model_close(struct fsx *fsx, int file)
{
	struct mfile *f = &fsx->files[file];

	if (f->fd >= 0 && close(f->fd) && errno != EINTR && fsx->pid > 0) {
		/* close reports a failed flush of written data */
		fsx_fail_errno(fsx, "close");
	}
	f->fd = -1;
	f->mapdirty = false;	/* close wrote back the mapped pages */
	if (!f->nlink)
		file_free(f);	/* an orphan's last fd */
}

/* A new mount: a layered file shrunk before it is now at risk. */
void model_mounted(struct fsx *fsx)
{
	for (int i = 0; i < FSX_MAX_FILES; i++)
		fsx->files[i].at_risk |= fsx->files[i].shrunk;
}

/*
 * Whether a copy of len bytes from src at src_off into dst must not let
 * the store adopt src's chain (--avoid cutadopt): src is at risk, and the
 * copy is one that adopts (docs/store.md, "Copying": from offset 0 into
 * an empty image, of the whole file or of at least 64 chunks).
 */
bool model_no_adopt(const struct fsx *fsx, int src, size_t src_off,
		    int dst, size_t len)
{
	return fsx->avoid_cutadopt && fsx->files[src].at_risk &&
	       src_off == 0 && fsx->files[dst].size == 0 &&
	       (len >= fsx->files[src].size || len >= 64 * fsx->chunk);
}

/* An orphan whose fd died with the daemon. */
void model_orphan_gone(struct fsx *fsx, int file)
{
	file_free(&fsx->files[file]);
}

void model_close_all(struct fsx *fsx)
{
	for (int i = 0; i < FSX_MAX_FILES; i++)
		if (fsx->files[i].used)
			model_close(fsx, i);
}
