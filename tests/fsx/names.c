/* SPDX-License-Identifier: MIT */
/*
 * The operations on names: create, link, rename, unlink, mkdir, rm -r of
 * a snapshot, rename of a snapshot, fsync of a directory, and copies of
 * whole files and whole snapshots (cp, cp -r: the mount's clones).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fsx/fsx.h"

/* A new file named in dir, open in the model; its name, or -1. */
static int create_in(struct fsx *fsx, int dir, const char *name)
{
	char path[FSX_PATH_LEN];
	struct stat st;
	int file, n, fd;

	file = model_new_file(fsx);
	if (file < 0)
		return -1;
	n = model_add_name(fsx, dir, file, name);
	model_path(fsx, n, path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		fsx_fail_errno(fsx, path);
	if (fstat(fd, &st))
		fsx_fail_errno(fsx, "fstat");
	fsx->files[file].fd = fd;
	fsx->files[file].ino = (uint64_t)st.st_ino;
	return n;
}

static bool room_for(const struct fsx *fsx, int files, int names)
{
	return model_count_files(fsx) + files <= FSX_MAX_FILES &&
	       model_count_names(fsx) + names <= FSX_MAX_NAMES;
}

int op_create(struct fsx *fsx)
{
	int dir = model_pick_dir(fsx), n;

	if (dir < 0 || !room_for(fsx, 1, 1))
		return 1;
	fsx_note(fsx, "create %s/f%u", fsx->dirs[dir].name, fsx->next_id + 1);
	n = create_in(fsx, dir, NULL);
	check_name(fsx, n);
	return 0;
}

int op_link(struct fsx *fsx)
{
	int from = model_pick_name(fsx), dir = model_pick_dir(fsx), n;
	char pf[FSX_PATH_LEN], pt[FSX_PATH_LEN];

	if (from < 0 || !room_for(fsx, 0, 1))
		return 1;
	n = model_add_name(fsx, dir, fsx->names[from].file, NULL);
	model_path(fsx, from, pf);
	model_path(fsx, n, pt);
	fsx_note(fsx, "link %s to %s", pf + strlen(fsx->mnt) + 1,
		 pt + strlen(fsx->mnt) + 1);
	if (link(pf, pt))
		fsx_fail_errno(fsx, "link");
	check_name(fsx, n);
	check_name(fsx, from);
	return 0;
}

/*
 * A name to a new name, or over another name (which goes, and its file
 * with its last name), or with RENAME_NOREPLACE over one (EEXIST). Over
 * another name of the same file, rename does nothing (POSIX).
 */
int op_rename(struct fsx *fsx)
{
	int from = model_pick_name(fsx), to, dir, how;
	char pf[FSX_PATH_LEN], pt[FSX_PATH_LEN];
	struct mname *n;
	int ret;

	if (from < 0)
		return 1;
	n = &fsx->names[from];
	how = (int)fsx_below(fsx, 4);
	to = how >= 2 ? model_pick_name(fsx) : -1;
	dir = model_pick_dir(fsx);
	model_path(fsx, from, pf);
	if (to >= 0)
		model_path(fsx, to, pt);
	else
		snprintf(pt, sizeof(pt), "%s/%s/f%u", fsx->mnt,
			 fsx->dirs[dir].name, fsx->next_id);
	fsx_note(fsx, "rename%s %s to %s%s", how == 3 ? "(NOREPLACE)" : "",
		 pf + strlen(fsx->mnt) + 1, pt + strlen(fsx->mnt) + 1,
		 to < 0 ? "" : to == from ? " (itself)" :
		 fsx->names[to].file == n->file ? " (a link of it)" :
		 " (replacing)");
	ret = renameat2(AT_FDCWD, pf, AT_FDCWD, pt,
			how == 3 ? RENAME_NOREPLACE : 0);
	if (how == 3 && to >= 0) {
		if (ret == 0 || errno != EEXIST)
			fsx_fail(fsx, "RENAME_NOREPLACE over an existing name: "
				 "%s, expected EEXIST",
				 ret ? strerror(errno) : "success");
		check_name(fsx, from);
		return 0;
	}
	if (ret)
		fsx_fail_errno(fsx, "rename");
	if (to >= 0 && fsx->names[to].file == n->file) {
		check_name(fsx, from);
		check_name(fsx, to);
		return 0;
	}
	fsx->dirs[n->dir].dirty = true;
	if (to >= 0) {
		n->dir = fsx->names[to].dir;
		memmove(n->name, fsx->names[to].name, FSX_NAME_LEN);
		model_drop_name(fsx, to);
	} else {
		n->dir = dir;
		snprintf(n->name, FSX_NAME_LEN, "f%u", fsx->next_id++);
	}
	fsx->dirs[n->dir].dirty = true;
	check_name(fsx, from);
	return 0;
}

int op_unlink(struct fsx *fsx)
{
	int name = model_pick_name(fsx);
	char path[FSX_PATH_LEN];

	if (name < 0)
		return 1;
	model_path(fsx, name, path);
	fsx_note(fsx, "unlink %s (%s, %d links)",
		 path + strlen(fsx->mnt) + 1,
		 model_label(fsx, fsx->names[name].file),
		 fsx->files[fsx->names[name].file].nlink);
	if (unlink(path))
		fsx_fail_errno(fsx, "unlink");
	model_drop_name(fsx, name);
	if (access(path, F_OK) == 0 || errno != ENOENT)
		fsx_fail(fsx, "%s is still there after unlink", path);
	return 0;
}

int op_mkdir(struct fsx *fsx)
{
	char path[FSX_PATH_LEN];
	int dir = model_new_dir(fsx);

	if (dir < 0)
		return 1;
	model_dir_path(fsx, dir, path);
	fsx_note(fsx, "mkdir %s", fsx->dirs[dir].name);
	if (mkdir(path, 0755))
		fsx_fail_errno(fsx, "mkdir");
	return 0;
}

/* rm -r of a snapshot: its names, then the directory. */
int op_rmsnap(struct fsx *fsx)
{
	int dir = model_pick_dir(fsx);
	char path[FSX_PATH_LEN];

	if (dir < 0)
		return 1;
	fsx_note(fsx, "rm -r %s (%d names)", fsx->dirs[dir].name,
		 model_dir_names(fsx, dir));
	/*
	 * A file open through a name the snapshot has or had keeps the
	 * removed directory's inode alive in the kernel; snapfs then hands
	 * that dead inode to a new snapshot whose store directory gets the
	 * same inode number, and nothing can be created in it (ENOENT).
	 * --avoid deadinode steps around that bug by closing every file.
	 */
	if (fsx->close_on_rmsnap)
		model_close_all(fsx);
	for (int i = 0; i < FSX_MAX_NAMES; i++) {
		if (!fsx->names[i].used || fsx->names[i].dir != dir)
			continue;
		model_path(fsx, i, path);
		if (unlink(path))
			fsx_fail_errno(fsx, path);
		model_drop_name(fsx, i);
	}
	model_dir_path(fsx, dir, path);
	if (rmdir(path))
		fsx_fail_errno(fsx, "rmdir");
	fsx->dirs[dir].used = false;
	fsx->root_dirty = true;
	return 0;
}

int op_renamedir(struct fsx *fsx)
{
	int dir = model_pick_dir(fsx);
	char pf[FSX_PATH_LEN], pt[FSX_PATH_LEN];

	if (dir < 0)
		return 1;
	model_dir_path(fsx, dir, pf);
	snprintf(fsx->dirs[dir].name, FSX_NAME_LEN, "s%u", fsx->next_id++);
	model_dir_path(fsx, dir, pt);
	fsx_note(fsx, "rename %s to %s", pf + strlen(fsx->mnt) + 1,
		 fsx->dirs[dir].name);
	if (rename(pf, pt))
		fsx_fail_errno(fsx, "rename");
	fsx->root_dirty = true;
	return 0;
}

int op_fsyncdir(struct fsx *fsx)
{
	int dir = fsx_below(fsx, 4) ? model_pick_dir(fsx) : -1, fd;
	char path[FSX_PATH_LEN];

	if (dir >= 0)
		model_dir_path(fsx, dir, path);
	else
		snprintf(path, sizeof(path), "%s", fsx->mnt);
	fsx_note(fsx, "fsync directory %s", dir >= 0 ? fsx->dirs[dir].name :
		 "(the root)");
	fd = open(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		fsx_fail_errno(fsx, "open");
	if (fsync(fd))
		fsx_fail_errno(fsx, "fsync");
	close(fd);
	if (dir >= 0)
		fsx->dirs[dir].dirty = false;
	else
		fsx->root_dirty = false;
	return 0;
}

/* What a copy of a whole file into a new one must give. */
static void copied(struct fsx *fsx, int src, int name)
{
	int file = fsx->names[name].file;

	model_write(fsx, file, 0, fsx->files[src].data, fsx->files[src].size);
	model_resize(fsx, file, fsx->files[src].size);
}

/* cp FILE NEWFILE: a whole file into a new one, the clone path. */
static int copy_file(struct fsx *fsx)
{
	int from = model_pick_name(fsx), dir = model_pick_dir(fsx), n, src;
	char pf[FSX_PATH_LEN];
	size_t got;

	if (from < 0 || !room_for(fsx, 1, 1))
		return 1;
	src = fsx->names[from].file;
	model_path(fsx, from, pf);
	fsx_note(fsx, "cp %s to %s/f%u (%zu bytes)",
		 pf + strlen(fsx->mnt) + 1, fsx->dirs[dir].name,
		 fsx->next_id + 1, fsx->files[src].size);
	n = create_in(fsx, dir, NULL);
	got = fsx_copy(fsx, src, 0, fsx->names[n].file, 0,
		       fsx->files[src].size, 1);
	if (got != fsx->files[src].size)
		fsx_fail(fsx, "copied %zu bytes, expected %zu", got,
			 fsx->files[src].size);
	copied(fsx, src, n);
	check_name(fsx, n);
	return 0;
}

/*
 * cp -r of a snapshot into a new one: copy_file_range of each whole file
 * as cp does, or cp itself. Links become separate files, as with cp -r.
 */
static int copy_dir(struct fsx *fsx)
{
	int from = model_pick_dir(fsx), count, dir, real;
	char pf[FSX_PATH_LEN], pt[FSX_PATH_LEN];
	int src_names[FSX_MAX_NAMES], k = 0;

	if (from < 0)
		return 1;
	count = model_dir_names(fsx, from);
	if (!room_for(fsx, count, count) ||
	    model_count_dirs(fsx) >= FSX_MAX_DIRS)
		return 1;
	real = fsx_below(fsx, 4) == 0;
	dir = model_new_dir(fsx);
	model_dir_path(fsx, from, pf);
	model_dir_path(fsx, dir, pt);
	for (int i = 0; i < FSX_MAX_NAMES; i++)
		if (fsx->names[i].used && fsx->names[i].dir == from)
			src_names[k++] = i;
	/* cp would adopt what it copies: copy by pieces (fsx_copy) */
	for (int i = 0; i < k && real && fsx->avoid_cutadopt; i++)
		if (fsx->files[fsx->names[src_names[i]].file].at_risk)
			real = 0;
	fsx_note(fsx, "cp -r %s %s (%d files%s)", fsx->dirs[from].name,
		 fsx->dirs[dir].name, count, real ? ", by cp" : "");
	if (real) {
		char *argv[] = { "cp", "-r", pf, pt, NULL };

		if (daemon_run(fsx, argv))
			fsx_fail(fsx, "cp -r %s %s failed", pf, pt);
	} else if (mkdir(pt, 0755)) {
		fsx_fail_errno(fsx, "mkdir");
	}
	for (int i = 0; i < k; i++) {
		int src = fsx->names[src_names[i]].file, file, n;
		char path[FSX_PATH_LEN];
		struct stat st;

		fsx->files[src].layered = true;
		if (real) {
			file = model_new_file(fsx);
			fsx->files[file].layered = true;
			n = model_add_name(fsx, dir, file,
					   fsx->names[src_names[i]].name);
			model_path(fsx, n, path);
			if (stat(path, &st))
				fsx_fail_errno(fsx, path);
			fsx->files[file].ino = (uint64_t)st.st_ino;
		} else {
			n = create_in(fsx, dir, fsx->names[src_names[i]].name);
			if (fsx_copy(fsx, src, 0, fsx->names[n].file, 0,
				     fsx->files[src].size, 1) !=
			    fsx->files[src].size)
				fsx_fail(fsx, "short copy into %s",
					 fsx->names[n].name);
			model_close(fsx, fsx->names[n].file);
		}
		copied(fsx, src, n);
		check_name(fsx, n);
		check_file(fsx, fsx->names[n].file);
	}
	return 0;
}

int op_clone(struct fsx *fsx)
{
	return fsx_below(fsx, 2) ? copy_dir(fsx) : copy_file(fsx);
}
