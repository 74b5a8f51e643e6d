/* SPDX-License-Identifier: MIT */
/*
 * The user.snapfs.* extended attributes, from a table: lineage (the
 * snapshot's id and its parent's, on the snapshot directory and each of
 * its files) and residency (the bytes a file really takes in the store,
 * since st_blocks of memory.bin covers its whole size for cp's sake).
 * Values are plain text without a trailing newline or NUL.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "snapfs.h"

#define XATTR_VALUE_MAX	64

struct xattr_def {
	const char *name;
	unsigned kinds;		/* 1 << enum snapfs_kind */
	/* Write the value into buf (XATTR_VALUE_MAX bytes): its length, or
	 * -ENODATA when this node has none. */
	int (*get)(const struct snapfs_meta *m, const struct stat *st,
		   char *buf);
};

static int hex(const uint8_t *id, char *buf)
{
	int i;

	for (i = 0; i < SNAP_ID_LEN; i++)
		snprintf(buf + 2 * i, 3, "%02x", id[i]);
	return 2 * SNAP_ID_LEN;
}

static int get_id(const struct snapfs_meta *m, const struct stat *st,
		  char *buf)
{
	return hex(m->id, buf);
}

static int get_parent(const struct snapfs_meta *m, const struct stat *st,
		      char *buf)
{
	return m->has_parent ? hex(m->parent_id, buf) : -ENODATA;
}

static int get_stored(const struct snapfs_meta *m, const struct stat *st,
		      char *buf)
{
	return snprintf(buf, XATTR_VALUE_MAX, "%llu",
			(unsigned long long)st->st_blocks * 512);
}

#define ON_SNAP	(1u << SNAPFS_SNAP)
#define ON_FILE	(1u << SNAPFS_FILE)

static const struct xattr_def xattrs[] = {
	{ "user.snapfs.id",		ON_SNAP | ON_FILE,	get_id },
	{ "user.snapfs.parent",		ON_SNAP | ON_FILE,	get_parent },
	{ "user.snapfs.stored_bytes",	ON_FILE,		get_stored },
};

#define N_XATTRS (sizeof(xattrs) / sizeof(xattrs[0]))

/* Answer a getxattr or listxattr of len bytes: size 0 asks the length. */
static void reply_value(fuse_req_t req, const char *buf, size_t len,
			size_t size)
{
	if (!size)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, len);
}

void snapfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		     size_t size)
{
	struct tree *t = snapfs_tree(req);
	char buf[XATTR_VALUE_MAX];
	const struct xattr_def *x;
	struct snapfs_meta meta;
	struct stat st;
	int ret;

	for (x = xattrs; x < xattrs + N_XATTRS; x++) {
		if (!strcmp(x->name, name))
			break;
	}
	if (x == xattrs + N_XATTRS ||
	    !(x->kinds & 1u << tree_kind(t, ino, NULL))) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	ret = tree_meta(t, ino, &meta, &st);
	if (!ret)
		ret = x->get(&meta, &st, buf);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		reply_value(req, buf, (size_t)ret, size);
}

void snapfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct tree *t = snapfs_tree(req);
	char list[N_XATTRS * XATTR_VALUE_MAX], buf[XATTR_VALUE_MAX];
	enum snapfs_kind kind = tree_kind(t, ino, NULL);
	struct snapfs_meta meta;
	size_t i, len = 0;
	struct stat st;
	int ret;

	ret = tree_meta(t, ino, &meta, &st);
	if (ret == -ENODATA) {
		reply_value(req, list, 0, size);	/* the root: none */
		return;
	}
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	for (i = 0; i < N_XATTRS; i++) {
		if (!(xattrs[i].kinds & 1u << kind) ||
		    xattrs[i].get(&meta, &st, buf) < 0)
			continue;
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s",
					xattrs[i].name) + 1;
	}
	reply_value(req, list, len, size);
}
