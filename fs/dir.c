/* SPDX-License-Identifier: MIT */
/*
 * Directory listings: opendir takes a listing from the store, readdir and
 * readdirplus hand it out by index ("." is 0, ".." is 1, then the store's
 * entries), so offsets stay valid while the store changes; a read from
 * offset 0 after the first takes a fresh listing (rewinddir).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/snapfs.h"

struct dir_ent {
	char name[SNAP_STORE_NAME_MAX + 1];
	ino_t ino;		/* as shown in st_ino */
	mode_t type;		/* S_IFDIR or S_IFREG */
};

struct dir_handle {
	struct dir_ent *ents;
	size_t n, cap;
	ino_t self;		/* st_ino of the directory itself */
	bool fresh;		/* listed by opendir, not yet read */
	struct fs *fs;
	const char *dir;	/* the snapshot being listed, or NULL */
};

/* One name of the store's listing: its inode number and type. */
static int add_entry(void *arg, const char *name)
{
	struct dir_handle *d = arg;
	struct dir_ent *e;

	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		void *p = realloc(d->ents, cap * sizeof(*d->ents));

		if (!p)
			return -ENOMEM;
		d->ents = p;
		d->cap = cap;
	}
	e = &d->ents[d->n];
	snprintf(e->name, sizeof(e->name), "%s", name);
	if (!d->dir) {
		struct snap_err err;
		struct stat st;

		if (snap_store_dir_stat(d->fs->store, name, &st, &err))
			return 0;	/* gone meanwhile */
		e->ino = st.st_ino;
		e->type = S_IFDIR;
	} else {
		uint8_t id[SNAP_ID_LEN];
		char path[2 * SNAP_STORE_NAME_MAX + 2];
		struct snap_err err;
		uint64_t v;

		snprintf(path, sizeof(path), "%s/%s", d->dir, name);
		if (snap_store_lookup(d->fs->store, path, id, NULL, &err))
			return 0;
		memcpy(&v, id, sizeof(v));
		e->ino = (ino_t)(v | (UINT64_C(1) << 63));
		e->type = S_IFREG;
	}
	d->n++;
	return 0;
}

static int dir_fill(struct fs *fs, fuse_ino_t ino, struct dir_handle *d)
{
	struct node *n = fs_node(fs, ino);
	struct snap_err err;
	struct stat st;
	int ret;

	if (n->kind == SNAPFS_FILE)
		return -ENOTDIR;
	ret = fs_getattr(fs, n, &st);
	if (ret)
		return ret;
	d->n = 0;
	d->fs = fs;
	d->dir = n->kind == SNAPFS_SNAP ? n->dir : NULL;
	d->self = st.st_ino;
	ret = snap_store_list(fs->store, d->dir, add_entry, d, &err);
	if (ret && ret != -ENOMEM)
		fs_log(fs, ret, &err);
	return ret;
}

void snapfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *d;
	int ret;

	d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = dir_fill(snapfs_fs(req), ino, d);
	if (ret)
		goto err;
	d->fresh = true;
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi))
		goto err_ents;	/* interrupted: no releasedir will come */
	return;

err:
	fuse_reply_err(req, -ret);
err_ents:
	free(d->ents);
	free(d);
}

/* Entry i of the listing d: its name and what readdir shows of it. */
static const char *dir_entry(const struct dir_handle *d, size_t i,
			     struct stat *st)
{
	memset(st, 0, sizeof(*st));
	if (i < 2) {
		st->st_mode = S_IFDIR;
		st->st_ino = i == 0 ? d->self : FUSE_ROOT_ID;
		return i == 0 ? "." : "..";
	}
	st->st_mode = d->ents[i - 2].type;
	st->st_ino = d->ents[i - 2].ino;
	return d->ents[i - 2].name;
}

/* Undo the lookups of entries that never reached the kernel. */
static void forget_added(struct fs *fs, const fuse_ino_t *added, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fs_forget(fs, added[i], 1);
}

static void dir_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi, bool plus)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	struct fs *t = snapfs_fs(req);
	struct fuse_entry_param e;
	fuse_ino_t *added = NULL;
	size_t i, used = 0, entsize, nadded = 0;
	const char *name;
	char *buf;
	int ret;

	if (off == 0 && !d->fresh) {
		ret = dir_fill(t, ino, d);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	d->fresh = false;
	buf = malloc(size);
	if (plus && buf)
		added = calloc(d->n + 2, sizeof(*added));
	if (!buf || (plus && !added)) {
		fuse_reply_err(req, ENOMEM);
		goto out;
	}
	for (i = off < 0 ? 0 : (size_t)off; i < d->n + 2; i++) {
		memset(&e, 0, sizeof(e));
		name = dir_entry(d, i, &e.attr);
		if (!plus) {
			entsize = fuse_add_direntry(req, buf + used,
						    size - used, name, &e.attr,
						    (off_t)i + 1);
		} else {
			/* Gone since the listing was taken: skip it. */
			if (i >= 2 && fs_lookup(t, fs_node(t, ino), name, &e))
				continue;
			entsize = fuse_add_direntry_plus(req, buf + used,
							 size - used, name, &e,
							 (off_t)i + 1);
			if (e.ino)
				added[nadded++] = e.ino;
		}
		if (entsize > size - used) {
			/* did not fit: the kernel will ask again from i */
			if (plus && e.ino)
				fs_forget(t, added[--nadded], 1);
			break;
		}
		used += entsize;
	}
	if (fuse_reply_buf(req, buf, used))
		forget_added(t, added, nadded);
out:
	free(added);
	free(buf);
}

void snapfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	dir_read(req, ino, size, off, fi, false);
}

void snapfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	dir_read(req, ino, size, off, fi, true);
}

void snapfs_releasedir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;

	free(d->ents);
	free(d);
	fuse_reply_err(req, 0);
}
