/* SPDX-License-Identifier: MIT */
/*
 * The nodes' faces: lookups, attributes, the backing files and the
 * manifest facts behind the xattrs (see snapfs.h). A node whose backing
 * file or directory is no longer the one found at lookup answers -ENOENT.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tree.h"

/* "." and "..", names with '/', and names too long are not entries. */
static int check_name(const char *name)
{
	size_t len = strnlen(name, NAME_MAX + 1);

	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	if (!len || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return -ENOENT;
	return 0;
}

static int file_index(const char *name, unsigned *file)
{
	unsigned i;

	for (i = 0; i < SNAPFS_NFILES; i++) {
		if (!strcmp(name, snapfs_files[i].name)) {
			*file = i;
			return 0;
		}
	}
	return -ENOENT;
}

/* The attributes shown for a node of that kind backed by st. */
static void fill_attr(struct tree *t, enum snapfs_kind kind, unsigned file,
		      struct stat *st)
{
	blkcnt_t whole;

	st->st_ino = kind == SNAPFS_ROOT ? FUSE_ROOT_ID :
		     tree_shown_ino(t, st->st_dev, st->st_ino);
	st->st_dev = 0;
	st->st_rdev = 0;
	if (kind != SNAPFS_FILE) {
		st->st_mode = S_IFDIR | 0555;
		/* a snapshot has no subdirectory; the root's count is unknown */
		st->st_nlink = kind == SNAPFS_SNAP ? 2 : 1;
		return;
	}
	st->st_mode = S_IFREG | 0444;
	whole = (blkcnt_t)((st->st_size + 511) / 512);
	if (snapfs_files[file].whole_blocks && st->st_blocks < whole)
		st->st_blocks = whole;
}

static void fill_entry(struct tree *t, struct tree_node *n, const struct stat *st,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = tree_node_id(t, n);
	e->attr = *st;
	fill_attr(t, n->kind, n->file, &e->attr);
	e->attr_timeout = SNAPFS_TIMEOUT;
	e->entry_timeout = SNAPFS_TIMEOUT;
}

static int lookup_snap(struct tree *t, const char *name,
		       struct fuse_entry_param *e)
{
	struct snapfs_meta meta;
	struct tree_node *n;
	struct stat st;
	int ret;

	if (name[0] == '.')
		return -ENOENT;		/* unfinished saves and the like */
	ret = tree_stat_at(t, name, S_IFDIR, &st);
	if (ret)
		return ret;
	ret = tree_check_snap(t, name, &st, &meta);
	if (ret)
		return ret == -ENOMEM ? ret : -ENOENT;
	pthread_mutex_lock(&t->lock);
	n = tree_get(t, SNAPFS_SNAP, NULL, 0, &st);
	if (n) {
		n->nlookup++;
		strcpy(n->name, name);	/* a renamed directory keeps its node */
		fill_entry(t, n, &st, e);
	}
	pthread_mutex_unlock(&t->lock);
	return n ? 0 : -ENOMEM;
}

static int lookup_file(struct tree *t, struct tree_node *dir, const char *name,
		       struct fuse_entry_param *e)
{
	char dname[NAME_MAX + 1], path[2 * NAME_MAX + 2];
	struct tree_node *n;
	struct stat st;
	unsigned file;
	int ret;

	ret = file_index(name, &file);
	if (ret)
		return ret;
	ret = tree_recheck_snap(t, dir, dname, &st, NULL);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/%s", dname, name);
	ret = tree_stat_at(t, path, S_IFREG, &st);
	if (ret)
		return ret == -ENOENT ? ret : -EIO;
	pthread_mutex_lock(&t->lock);
	n = tree_get(t, SNAPFS_FILE, dir, file, &st);
	if (n) {
		n->nlookup++;
		fill_entry(t, n, &st, e);
	}
	pthread_mutex_unlock(&t->lock);
	return n ? 0 : -ENOMEM;
}

int tree_lookup(struct tree *t, fuse_ino_t parent, const char *name,
		struct fuse_entry_param *e)
{
	struct tree_node *dir = tree_node_of(t, parent);
	int ret;

	ret = check_name(name);
	if (ret)
		return ret;
	switch (dir->kind) {
	case SNAPFS_ROOT:
		return lookup_snap(t, name, e);
	case SNAPFS_SNAP:
		return lookup_file(t, dir, name, e);
	default:
		return -ENOTDIR;
	}
}

/* The backing file of the file node n, checked; path gets its name. */
static int stat_file(struct tree *t, struct tree_node *n, char *path,
		     struct stat *st)
{
	char dname[NAME_MAX + 1];
	int ret;

	pthread_mutex_lock(&t->lock);
	memcpy(dname, n->parent->name, sizeof(dname));
	pthread_mutex_unlock(&t->lock);
	snprintf(path, 2 * NAME_MAX + 2, "%s/%s", dname,
		 snapfs_files[n->file].name);
	ret = tree_stat_at(t, path, S_IFREG, st);
	if (ret)
		return ret;
	return st->st_dev == n->dev && st->st_ino == n->ino ? 0 : -ENOENT;
}

int tree_getattr(struct tree *t, fuse_ino_t ino, struct stat *st)
{
	struct tree_node *n = tree_node_of(t, ino);
	char name[2 * NAME_MAX + 2];
	int ret = 0;

	switch (n->kind) {
	case SNAPFS_ROOT:
		if (fstat(t->store_fd, st))
			ret = -errno;
		break;
	case SNAPFS_SNAP:
		pthread_mutex_lock(&t->lock);
		memcpy(name, n->name, NAME_MAX + 1);
		pthread_mutex_unlock(&t->lock);
		ret = tree_stat_at(t, name, S_IFDIR, st);
		if (!ret && (st->st_dev != n->dev || st->st_ino != n->ino))
			ret = -ENOENT;
		break;
	case SNAPFS_FILE:
		ret = stat_file(t, n, name, st);
		break;
	}
	if (!ret)
		fill_attr(t, n->kind, n->file, st);
	return ret;
}

int tree_open(struct tree *t, fuse_ino_t ino, int *fdp, bool *same)
{
	struct tree_node *n = tree_node_of(t, ino);
	char dname[NAME_MAX + 1], path[2 * NAME_MAX + 2];
	struct stat st;
	int fd, ret;

	if (n->kind != SNAPFS_FILE)
		return -EISDIR;
	ret = tree_recheck_snap(t, n->parent, dname, &st, NULL);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/%s", dname, snapfs_files[n->file].name);
	fd = openat(t->store_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -ENOENT : -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (st.st_dev != n->dev || st.st_ino != n->ino) {
		close(fd);
		return -ENOENT;
	}
	*same = st.st_ctim.tv_sec == n->ctime.tv_sec &&
		st.st_ctim.tv_nsec == n->ctime.tv_nsec;
	*fdp = fd;
	return 0;
}

int tree_meta(struct tree *t, fuse_ino_t ino, struct snapfs_meta *meta,
	      struct stat *st)
{
	struct tree_node *n = tree_node_of(t, ino);
	char name[2 * NAME_MAX + 2];
	int ret;

	switch (n->kind) {
	case SNAPFS_SNAP:
		return tree_recheck_snap(t, n, name, st, meta);
	case SNAPFS_FILE:
		ret = tree_recheck_snap(t, n->parent, name, st, meta);
		return ret ? ret : stat_file(t, n, name, st);
	default:
		return -ENODATA;
	}
}

int tree_statfs(struct tree *t, struct statvfs *sv)
{
	return fstatvfs(t->store_fd, sv) ? -errno : 0;
}
