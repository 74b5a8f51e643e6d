/* SPDX-License-Identifier: MIT */
/*
 * The snapshots of the store as the tree sees them: which directories are
 * snapshots (a name not starting with '.', a manifest.bin that decodes),
 * the decoding of their manifests, and the listings of the store and of a
 * snapshot (see snapfs.h).
 *
 * Only the decoding of manifest.bin is cached, in the snapshot's node, for
 * as long as the file keeps the same inode, size and times: the store is
 * asked again on every call, so a snapshot that vanished, was replaced or
 * turned corrupt is noticed at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapdir.h"
#include "tree.h"

const struct snapfs_file snapfs_files[SNAPFS_NFILES] = {
	{ SNAP_MANIFEST_FILE, false },
	{ SNAP_STATE_FILE, false },
	{ SNAP_MEMORY_FILE, true },
};

int tree_stat_at(struct tree *t, const char *name, mode_t type,
		 struct stat *st)
{
	if (fstatat(t->store_fd, name, st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	return (st->st_mode & S_IFMT) == type ? 0 : -ENOENT;
}

static bool same_key(const struct tree_man_key *a, const struct tree_man_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static int decode_manifest(struct tree *t, const char *name, int fd,
			   off_t size, struct snapfs_meta *meta)
{
	struct snap_err err = { "" };
	struct snap_manifest m;
	uint8_t *buf;
	ssize_t got;
	int ret;

	memset(meta, 0, sizeof(*meta));
	if (size <= 0 || (uint64_t)size > SNAP_MANIFEST_MAX) {
		snap_err_set(&err, -EBADMSG, "%s: %lld bytes", SNAP_MANIFEST_FILE,
			     (long long)size);
		ret = -EBADMSG;
		goto out;
	}
	buf = malloc((size_t)size);
	if (!buf)
		return -ENOMEM;
	got = pread(fd, buf, (size_t)size, 0);
	if (got != size) {
		ret = got < 0 ? -errno : -EBADMSG;
		snap_err_set(&err, ret, "%s: short read", SNAP_MANIFEST_FILE);
		free(buf);
		goto out;
	}
	ret = snap_manifest_decode(buf, (size_t)size, &m, &err);
	free(buf);
	if (ret)
		goto out;
	memcpy(meta->id, m.id, sizeof(meta->id));
	meta->has_parent = m.has_parent;
	memcpy(meta->parent_id, m.parent_id, sizeof(meta->parent_id));
	snap_manifest_release(&m);
out:
	if (ret && t->debug)
		fuse_log(FUSE_LOG_DEBUG, "%s: %s/%s: %s\n", SNAPFS_NAME,
			 t->store, name, err.msg);
	return ret;
}

int tree_check_snap(struct tree *t, const char *name, const struct stat *dst,
		    struct snapfs_meta *meta)
{
	char path[2 * NAME_MAX + 2];
	struct tree_man_key key;
	struct tree_node *n;
	struct stat st;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", name, SNAP_MANIFEST_FILE);
	fd = openat(t->store_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -ENOENT : -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -ENOENT;
		goto out;
	}
	key = (struct tree_man_key){ st.st_dev, st.st_ino, st.st_size,
				     st.st_mtim, st.st_ctim };
	pthread_mutex_lock(&t->lock);
	n = tree_find(t, SNAPFS_SNAP, NULL, 0, dst);
	if (n && n->man_cached && same_key(&n->man_key, &key)) {
		ret = n->man_ret;
		*meta = n->meta;
		pthread_mutex_unlock(&t->lock);
		goto out;
	}
	pthread_mutex_unlock(&t->lock);

	ret = decode_manifest(t, name, fd, st.st_size, meta);
	if (ret == -ENOMEM || ret == -EINTR)
		goto out;		/* no verdict on the file */
	pthread_mutex_lock(&t->lock);
	n = tree_find(t, SNAPFS_SNAP, NULL, 0, dst);
	if (n) {
		n->man_cached = true;
		n->man_key = key;
		n->man_ret = ret;
		n->meta = *meta;
	}
	pthread_mutex_unlock(&t->lock);
out:
	close(fd);
	return ret;
}

int tree_recheck_snap(struct tree *t, struct tree_node *n, char *name,
		      struct stat *dst, struct snapfs_meta *meta)
{
	struct snapfs_meta scratch;
	int ret;

	pthread_mutex_lock(&t->lock);
	memcpy(name, n->name, NAME_MAX + 1);
	pthread_mutex_unlock(&t->lock);
	ret = tree_stat_at(t, name, S_IFDIR, dst);
	if (ret)
		return ret;
	if (dst->st_dev != n->dev || dst->st_ino != n->ino)
		return -ENOENT;
	ret = tree_check_snap(t, name, dst, meta ? meta : &scratch);
	if (ret && ret != -ENOENT && ret != -ENOMEM)
		ret = -EIO;
	return ret;
}

/* Append an entry to a growing listing. */
static int add_entry(struct tree *t, struct tree_dirent **ents, size_t *n,
		     size_t *cap, const char *name, const struct stat *st)
{
	struct tree_dirent *grown, *d;

	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		grown = realloc(*ents, *cap * sizeof(**ents));
		if (!grown)
			return -ENOMEM;
		*ents = grown;
	}
	d = &(*ents)[(*n)++];
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->ino = tree_shown_ino(t, st->st_dev, st->st_ino);
	d->type = st->st_mode & S_IFMT;
	return 0;
}

static int list_store(struct tree *t, struct tree_dirent **ents, size_t *n)
{
	struct snapfs_meta meta;
	struct dirent *de;
	size_t cap = 0;
	struct stat st;
	DIR *dir;
	int fd, ret = 0;

	fd = openat(t->store_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while (!ret && (errno = 0, de = readdir(dir))) {
		if (de->d_name[0] == '.' ||
		    tree_stat_at(t, de->d_name, S_IFDIR, &st) ||
		    tree_check_snap(t, de->d_name, &st, &meta))
			continue;
		ret = add_entry(t, ents, n, &cap, de->d_name, &st);
	}
	if (!ret && errno)
		ret = -errno;
	closedir(dir);
	return ret;
}

static int list_snap(struct tree *t, struct tree_node *dir,
		     struct tree_dirent **ents, size_t *n)
{
	char dname[NAME_MAX + 1], path[2 * NAME_MAX + 2];
	struct stat st;
	size_t cap = 0;
	unsigned i;
	int ret;

	ret = tree_recheck_snap(t, dir, dname, &st, NULL);
	for (i = 0; !ret && i < SNAPFS_NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", dname,
			 snapfs_files[i].name);
		if (!tree_stat_at(t, path, S_IFREG, &st))
			ret = add_entry(t, ents, n, &cap, snapfs_files[i].name,
					&st);
	}
	return ret;
}

int tree_list(struct tree *t, fuse_ino_t ino, struct tree_dirent **ents,
	      size_t *n)
{
	struct tree_node *dir = tree_node_of(t, ino);
	int ret;

	*ents = NULL;
	*n = 0;
	switch (dir->kind) {
	case SNAPFS_ROOT:
		ret = list_store(t, ents, n);
		break;
	case SNAPFS_SNAP:
		ret = list_snap(t, dir, ents, n);
		break;
	default:
		return -ENOTDIR;
	}
	if (ret) {
		free(*ents);
		*ents = NULL;
		*n = 0;
	}
	return ret;
}
