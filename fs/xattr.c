/* SPDX-License-Identifier: MIT */
/*
 * The user.snapfs.* extended attributes, from a table: lineage (the
 * snapshot's id and its parent's, from its manifest.bin, on the snapshot
 * directory and each of its files) and residency (the bytes a file's
 * chunks take in the store, since st_blocks of memory.bin covers its whole
 * size for cp's sake; and how many of its chunks were read since the
 * daemon opened it); the daemon's work for a file (the READs it
 * answered, the chunks those waited for, the chunks a working set pushed
 * ahead); and the file's working set, which is the one attribute that
 * can be set (workingset.c); and on the root, user.snapfs.gc: setting it
 * runs a gc, reading it says what the last one did (gc.c). Values are plain text without a trailing
 * newline or NUL. A snapshot without a decodable manifest.bin (one being
 * written) has no lineage attributes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/format/manifest.h"
#include "fs/snapfs.h"

#define XATTR_VALUE_MAX	256

struct xattr_ctx {
	struct fs *fs;
	struct node *n;
	bool have_meta;
	struct snap_manifest m;
};

struct xattr_def {
	const char *name;
	unsigned kinds;		/* 1 << enum snapfs_kind */
	bool lineage;		/* needs the manifest */
	/* Write the value into buf (XATTR_VALUE_MAX bytes): its length, or
	 * -ENODATA when this node has none. */
	int (*get)(struct xattr_ctx *c, char *buf);
	/* Set it (NULL: it cannot be set); removing it sets "clear". */
	int (*set)(struct xattr_ctx *c, const char *value, size_t len);
};

static int hex(const uint8_t *id, char *buf)
{
	snap_id_hex(id, buf);
	return 2 * SNAP_ID_LEN;
}

static int get_id(struct xattr_ctx *c, char *buf)
{
	return hex(c->m.id, buf);
}

static int get_parent(struct xattr_ctx *c, char *buf)
{
	return c->m.has_parent ? hex(c->m.parent_id, buf) : -ENODATA;
}

static int get_stored(struct xattr_ctx *c, char *buf)
{
	struct snap_err err;
	uint64_t bytes;
	int ret;

	ret = snap_image_stored_bytes(c->n->img, &bytes, &err);
	if (ret)
		return ret;
	return snprintf(buf, XATTR_VALUE_MAX, "%llu",
			(unsigned long long)bytes);
}

static int get_u64(char *buf, uint64_t v)
{
	return snprintf(buf, XATTR_VALUE_MAX, "%llu", (unsigned long long)v);
}

static int get_resident(struct xattr_ctx *c, char *buf)
{
	struct snap_image_stat st;

	snap_image_stat(c->n->img, &st);
	return get_u64(buf, st.resident);
}

static int get_fetched(struct xattr_ctx *c, char *buf)
{
	struct snap_image_stat st;

	snap_image_stat(c->n->img, &st);
	return get_u64(buf, st.fetched);
}

static int get_reads(struct xattr_ctx *c, char *buf)
{
	return get_u64(buf, __atomic_load_n(&c->n->reads, __ATOMIC_RELAXED));
}

static int get_prefetched(struct xattr_ctx *c, char *buf)
{
	return get_u64(buf, __atomic_load_n(&c->n->pushed, __ATOMIC_RELAXED));
}

static int get_workingset(struct xattr_ctx *c, char *buf)
{
	return ws_describe(c->fs, c->n, buf, XATTR_VALUE_MAX);
}

static int set_workingset(struct xattr_ctx *c, const char *value, size_t len)
{
	return ws_control(c->fs, c->n, value, len);
}

static int get_gc(struct xattr_ctx *c, char *buf)
{
	return fs_gc_describe(c->fs, buf, XATTR_VALUE_MAX);
}

/* Any value runs one gc now; the reply waits for it. */
static int set_gc(struct xattr_ctx *c, const char *value, size_t len)
{
	return fs_gc_now(c->fs);
}

#define ON_ROOT	(1u << SNAPFS_ROOT)
#define ON_SNAP	(1u << SNAPFS_SNAP)
#define ON_FILE	(1u << SNAPFS_FILE)

static const struct xattr_def xattrs[] = {
	{ "user.snapfs.id",	     ON_SNAP | ON_FILE, true,  get_id, NULL },
	{ "user.snapfs.parent",	     ON_SNAP | ON_FILE, true,  get_parent,
	  NULL },
	{ "user.snapfs.stored_bytes", ON_FILE, false, get_stored, NULL },
	{ "user.snapfs.resident",     ON_FILE, false, get_resident, NULL },
	{ "user.snapfs.reads",	      ON_FILE, false, get_reads, NULL },
	{ "user.snapfs.fetched",      ON_FILE, false, get_fetched, NULL },
	{ "user.snapfs.prefetched",   ON_FILE, false, get_prefetched, NULL },
	{ "user.snapfs.workingset",   ON_FILE, false, get_workingset,
	  set_workingset },
	{ "user.snapfs.gc",	      ON_ROOT, false, get_gc, set_gc },
};

#define N_XATTRS (sizeof(xattrs) / sizeof(xattrs[0]))

/* The manifest of the snapshot the node belongs to, into c->m. */
static int load_meta(struct xattr_ctx *c)
{
	struct fs *fs = c->fs;
	char path[2 * SNAP_STORE_NAME_MAX + 2];
	uint8_t id[SNAP_ID_LEN], *buf = NULL;
	struct snap_image_stat st;
	struct snap_image *img;
	struct snap_err err;
	ssize_t n;
	int ret;

	if (c->have_meta)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", c->n->dir, "manifest.bin");
	ret = snap_store_lookup(fs->store, path, id, NULL, &err);
	if (!ret)
		ret = snap_image_open(fs->store, id, 0, &img, &err);
	if (ret)
		return -ENODATA;
	snap_image_stat(img, &st);
	if (st.size > SNAP_MANIFEST_MAX || !(buf = malloc(st.size + 1))) {
		ret = -ENODATA;
		goto out;
	}
	n = snap_image_read(img, buf, st.size, 0, &err);
	ret = n < 0 || (uint64_t)n != st.size ||
	      snap_manifest_decode(buf, (size_t)n, &c->m, &err) ? -ENODATA : 0;
	c->have_meta = !ret;
out:
	free(buf);
	snap_image_close(img, NULL);
	return ret;
}

static int get_value(struct xattr_ctx *c, const struct xattr_def *x,
		     char *buf)
{
	if (!(x->kinds & 1u << c->n->kind))
		return -ENODATA;
	if (x->lineage && load_meta(c))
		return -ENODATA;
	return x->get(c, buf);
}

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

static const struct xattr_def *find(const char *name)
{
	for (const struct xattr_def *x = xattrs; x < xattrs + N_XATTRS; x++)
		if (!strcmp(x->name, name))
			return x;
	return NULL;
}

void snapfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		     size_t size)
{
	struct fs *fs = snapfs_fs(req);
	struct xattr_ctx c = { .fs = fs, .n = fs_node(fs, ino) };
	char buf[XATTR_VALUE_MAX];
	const struct xattr_def *x = find(name);
	int ret = x ? get_value(&c, x, buf) : -ENODATA;

	if (c.have_meta)
		snap_manifest_release(&c.m);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		reply_value(req, buf, (size_t)ret, size);
}

void snapfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = snapfs_fs(req);
	struct xattr_ctx c = { .fs = fs, .n = fs_node(fs, ino) };
	char list[N_XATTRS * XATTR_VALUE_MAX], buf[XATTR_VALUE_MAX];
	size_t len = 0;

	for (size_t i = 0; i < N_XATTRS; i++) {
		if (get_value(&c, &xattrs[i], buf) < 0)
			continue;
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s",
					xattrs[i].name) + 1;
	}
	if (c.have_meta)
		snap_manifest_release(&c.m);
	reply_value(req, list, len, size);
}

/*
 * Only the settable attributes of a file can be set or removed; the
 * others are EPERM, and names not ours ENOTSUP (there is nowhere to keep
 * them).
 */
static int set_value(fuse_req_t req, fuse_ino_t ino, const char *name,
		     const char *value, size_t size)
{
	struct fs *fs = snapfs_fs(req);
	struct xattr_ctx c = { .fs = fs, .n = fs_node(fs, ino) };
	const struct xattr_def *x = find(name);

	if (!x)
		return -ENOTSUP;
	if (!(x->kinds & 1u << c.n->kind))
		return -ENODATA;
	if (!x->set)
		return -EPERM;
	if (fs->rdonly)
		return -EROFS;
	return x->set(&c, value, size);
}

void snapfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		     const char *value, size_t size, int flags)
{
	fuse_reply_err(req, -set_value(req, ino, name, value, size));
}

void snapfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -set_value(req, ino, name, "clear", 5));
}
