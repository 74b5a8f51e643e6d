/* SPDX-License-Identifier: MIT */
/*
 * After a kill -9 of the daemon and a new mount: check what was promised
 * (snapfsx.c, "the durability rule"), then repair the mount to the model
 * and fsync everything, so that the run goes on from the model's state
 * whatever the crash kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fsx/fsx.h"

static bool touched(const struct mfile *f, size_t i)
{
	return f->touched[i / 8] & (1u << (i % 8));
}

/* A snapshot the model does not have (its removal was lost): rm -r. */
static void remove_snapshot(struct fsx *fsx, const char *name)
{
	char dir[FSX_PATH_LEN], path[FSX_PATH_LEN];
	char **names;
	int n;

	if (snprintf(dir, sizeof(dir), "%s/%s", fsx->mnt, name) >=
	    (int)sizeof(dir))
		fsx_fail(fsx, "%s: name too long", name);
	names = check_list(fsx, dir, &n);
	for (int i = 0; i < n; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >=
		    (int)sizeof(path))
			fsx_fail(fsx, "%s: name too long", names[i]);
		if (unlink(path))
			fsx_fail_errno(fsx, path);
	}
	if (rmdir(dir))
		fsx_fail_errno(fsx, dir);
}

/* The snapshots: exactly the model's when the root was synced. */
static void crash_dirs(struct fsx *fsx)
{
	char path[FSX_PATH_LEN];
	char **names;
	int n;

	names = check_list(fsx, fsx->mnt, &n);
	for (int i = 0; i < n; i++) {
		if (check_find_dir(fsx, names[i]) >= 0)
			continue;
		if (!fsx->root_dirty)
			fsx_fail(fsx, "after kill -9: snapshot %s is there, "
				 "but its removal was synced", names[i]);
		remove_snapshot(fsx, names[i]);
	}
	for (int d = 0; d < FSX_MAX_DIRS; d++) {
		struct stat st;

		if (!fsx->dirs[d].used)
			continue;
		model_dir_path(fsx, d, path);
		if (!stat(path, &st))
			continue;
		if (!fsx->root_dirty)
			fsx_fail(fsx, "after kill -9: snapshot %s is lost, but "
				 "the root was synced", fsx->dirs[d].name);
		if (mkdir(path, 0755))
			fsx_fail_errno(fsx, "mkdir");
	}
}

/*
 * The names of each snapshot: exactly the model's, each naming its file,
 * when its directory was synced; otherwise wrong or missing names are
 * removed and missing[] says which names are to be made again.
 */
static void crash_names(struct fsx *fsx, bool missing[])
{
	char path[FSX_PATH_LEN];
	char **names;
	int n;

	for (int d = 0; d < FSX_MAX_DIRS; d++) {
		bool loose = fsx->dirs[d].dirty || fsx->root_dirty;

		if (!fsx->dirs[d].used)
			continue;
		model_dir_path(fsx, d, path);
		names = check_list(fsx, path, &n);
		for (int i = 0; i < n; i++) {
			char p[FSX_PATH_LEN];

			if (model_find_name(fsx, d, names[i]) >= 0)
				continue;
			if (!loose)
				fsx_fail(fsx, "after kill -9: %s/%s is there, "
					 "but its removal was synced",
					 fsx->dirs[d].name, names[i]);
			if (snprintf(p, sizeof(p), "%s/%s", path, names[i]) >=
			    (int)sizeof(p))
				fsx_fail(fsx, "%s: name too long", names[i]);
			if (unlink(p))
				fsx_fail_errno(fsx, p);
		}
	}
	for (int i = 0; i < FSX_MAX_NAMES; i++) {
		struct mname *nm = &fsx->names[i];
		bool loose;
		struct stat st;

		if (!nm->used)
			continue;
		loose = fsx->dirs[nm->dir].dirty || fsx->root_dirty;
		model_path(fsx, i, path);
		if (stat(path, &st)) {
			if (errno != ENOENT || !loose)
				fsx_fail(fsx, "after kill -9: %s: %s (its "
					 "directory was synced)", path,
					 strerror(errno));
			missing[i] = true;
		} else if ((uint64_t)st.st_ino != fsx->files[nm->file].ino) {
			if (!loose)
				fsx_fail(fsx, "after kill -9: %s is inode "
					 "%llu, expected %llu", path,
					 (unsigned long long)st.st_ino,
					 (unsigned long long)
					 fsx->files[nm->file].ino);
			if (unlink(path))
				fsx_fail_errno(fsx, path);
			missing[i] = true;
		}
	}
}

/*
 * What file holds at fd (size bytes) against the rule: exactly the model
 * when it has no unsynced change; else a size it had since its last
 * fsync, and every byte not changed since then as that fsync left it.
 * Whether it holds the model's content.
 */
static bool crash_content(struct fsx *fsx, int file, int fd, size_t size)
{
	struct mfile *f = &fsx->files[file];
	bool same = size == f->size;
	size_t off, n;

	if (!f->dirty && size != f->size)
		fsx_fail(fsx, "after kill -9: %s has size %zu, expected %zu "
			 "(synced)", model_label(fsx, file), size, f->size);
	if (f->dirty && (size < f->min_size || size > f->max_size))
		fsx_fail(fsx, "after kill -9: %s has size %zu, never between "
			 "%zu and %zu since its last fsync (size then %zu)",
			 model_label(fsx, file), size, f->min_size,
			 f->max_size, f->synced_size);
	for (off = 0; off < size; off += n) {
		n = size - off < fsx->maxio ? size - off : fsx->maxio;
		if (io_pread(fsx, fd, fsx->buf, n, off) != n)
			fsx_fail(fsx, "after kill -9: short read of %s at %zu",
				 model_label(fsx, file), off);
		if (!f->dirty) {
			check_bytes(fsx, file, off, fsx->buf, n,
				    "read after kill -9 (synced)");
			continue;
		}
		for (size_t i = 0; i < n && off + i < f->synced_size; i++) {
			if (touched(f, off + i) ||
			    fsx->buf[i] == f->synced[off + i])
				continue;
			fsx_fail(fsx, "after kill -9: %s at %zu is 0x%02x, "
				 "expected 0x%02x as synced (not changed since "
				 "its last fsync)", model_label(fsx, file),
				 off + i, fsx->buf[i], f->synced[off + i]);
		}
		if (same && memcmp(fsx->buf, f->data + off, n))
			same = false;
	}
	return same;
}

/* Make file hold the model's content, through fd. */
static void rewrite(struct fsx *fsx, int file, int fd)
{
	struct mfile *f = &fsx->files[file];

	if (ftruncate(fd, 0) || ftruncate(fd, (off_t)f->size))
		fsx_fail_errno(fsx, "ftruncate");
	f->shrunk |= f->layered;
	io_pwrite(fsx, fd, f->data, f->size, 0);
}

static void crash_files(struct fsx *fsx, const bool missing[])
{
	char path[FSX_PATH_LEN], from[FSX_PATH_LEN];

	for (int file = 0; file < FSX_MAX_FILES; file++) {
		struct mfile *f = &fsx->files[file];
		int have = -1, fd;
		struct stat st;

		if (!f->used)
			continue;
		for (int i = 0; i < FSX_MAX_NAMES && have < 0; i++)
			if (fsx->names[i].used && fsx->names[i].file == file &&
			    !missing[i])
				have = i;
		if (have >= 0) {
			model_path(fsx, have, from);
			fd = open(from, O_RDWR);
			if (fd < 0 || fstat(fd, &st))
				fsx_fail_errno(fsx, from);
			if (crash_content(fsx, file, fd, (size_t)st.st_size)) {
				fsx->crash_kept += f->dirty;
			} else {
				fsx->crash_lost++;
				rewrite(fsx, file, fd);
			}
		} else {
			/* Every name lost: the file was never promised. */
			for (int i = 0; i < FSX_MAX_NAMES && have < 0; i++)
				if (fsx->names[i].used &&
				    fsx->names[i].file == file)
					have = i;
			model_path(fsx, have, from);
			fd = open(from, O_RDWR | O_CREAT | O_EXCL, 0644);
			if (fd < 0 || fstat(fd, &st))
				fsx_fail_errno(fsx, from);
			f->ino = (uint64_t)st.st_ino;
			fsx->crash_lost++;
			rewrite(fsx, file, fd);
		}
		for (int i = 0; i < FSX_MAX_NAMES; i++) {
			if (i == have || !fsx->names[i].used ||
			    fsx->names[i].file != file || !missing[i])
				continue;
			model_path(fsx, i, path);
			if (link(from, path))
				fsx_fail_errno(fsx, path);
		}
		if (fsync(fd))
			fsx_fail_errno(fsx, "fsync");
		f->fd = fd;
		f->mapdirty = false;
		model_synced(fsx, file);
	}
}

static void sync_dir(struct fsx *fsx, const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || fsync(fd))
		fsx_fail_errno(fsx, path);
	close(fd);
}

void check_after_crash(struct fsx *fsx)
{
	bool missing[FSX_MAX_NAMES] = { false };
	char path[FSX_PATH_LEN];

	crash_dirs(fsx);
	crash_names(fsx, missing);
	crash_files(fsx, missing);
	for (int d = 0; d < FSX_MAX_DIRS; d++) {
		if (!fsx->dirs[d].used)
			continue;
		model_dir_path(fsx, d, path);
		sync_dir(fsx, path);
		fsx->dirs[d].dirty = false;
	}
	sync_dir(fsx, fsx->mnt);
	fsx->root_dirty = false;
	/* Repaired: now everything must be as the model says. */
	check_all(fsx);
}
