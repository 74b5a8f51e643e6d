/* SPDX-License-Identifier: MIT */
/*
 * Directory listings: opendir takes a listing from the tree, readdir and
 * readdirplus hand it out by index ("." is 0, ".." is 1, then the tree's
 * entries), so offsets stay valid while the store changes; a read from
 * offset 0 after the first takes a fresh listing (rewinddir).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapfs.h"

struct dir_handle {
	struct tree_dirent *ents;
	size_t n;
	ino_t self;		/* st_ino of the directory itself */
	bool fresh;		/* listed by opendir, not yet read */
};

static int dir_fill(struct tree *t, fuse_ino_t ino, struct dir_handle *d)
{
	struct tree_dirent *ents;
	struct stat st;
	size_t n;
	int ret;

	ret = tree_getattr(t, ino, &st);
	if (ret)
		return ret;
	ret = tree_list(t, ino, &ents, &n);
	if (ret)
		return ret;
	free(d->ents);
	d->ents = ents;
	d->n = n;
	d->self = st.st_ino;
	return 0;
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
	ret = dir_fill(snapfs_tree(req), ino, d);
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
static void forget_added(struct tree *t, const fuse_ino_t *added, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		tree_forget(t, added[i], 1);
}

static void dir_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi, bool plus)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	struct tree *t = snapfs_tree(req);
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
			if (i >= 2 && tree_lookup(t, ino, name, &e))
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
				tree_forget(t, added[--nadded], 1);
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
