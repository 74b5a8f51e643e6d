/* SPDX-License-Identifier: MIT */
/*
 * The inode table: one node per snapshot directory and per image the
 * kernel holds, found by hash (the directory's inode, or the image id),
 * freed when the kernel forgets it. A file's node keeps its image open,
 * so every descriptor of the file shares one image and its buffers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/snapfs.h"

#define BUCKETS 4096

int fs_create(struct snap_store *store, bool rdonly, bool debug,
	      struct fs **out)
{
	struct fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return -ENOMEM;
	fs->buckets = calloc(BUCKETS, sizeof(*fs->buckets));
	if (!fs->buckets) {
		free(fs);
		return -ENOMEM;
	}
	fs->nbuckets = BUCKETS;
	fs->store = store;
	fs->rdonly = rdonly;
	fs->debug = debug;
	fs->uid = getuid();
	fs->gid = getgid();
	fs->root.kind = SNAPFS_ROOT;
	fs->root.st_ino = FUSE_ROOT_ID;
	pthread_mutex_init(&fs->lock, NULL);
	*out = fs;
	return 0;
}

static void node_free(struct fs *fs, struct node *n)
{
	struct snap_err err;

	if (n->kind == SNAPFS_FILE) {
		ws_node_gone(fs, n);
		pthread_mutex_destroy(&n->ws_lock);
	}
	if (n->img && snap_image_close(n->img, &err))
		fprintf(stderr, "%s: %s\n", SNAPFS_NAME, err.msg);
	free(n);
}

void fs_destroy(struct fs *fs)
{
	struct snap_err err;

	if (!fs)
		return;
	while (fs->gone) {
		struct node *n = fs->gone;

		fs->gone = n->next;
		node_free(fs, n);
	}
	for (size_t b = 0; b < fs->nbuckets; b++) {
		struct node *n = fs->buckets[b], *next;

		for (; n; n = next) {
			next = n->next;
			/* An unmount leaves everything written durable, as a
			 * local filesystem's does. */
			if (n->img && !fs->rdonly &&
			    snap_image_sync(n->img, &err))
				fprintf(stderr, "%s: %s\n", SNAPFS_NAME,
					err.msg);
			node_free(fs, n);
		}
	}
	pthread_mutex_destroy(&fs->lock);
	free(fs->buckets);
	free(fs);
}

void fs_stop_pushes(struct fs *fs)
{
	pthread_mutex_lock(&fs->lock);
	for (size_t b = 0; b < fs->nbuckets; b++)
		for (struct node *n = fs->buckets[b]; n; n = n->next)
			if (n->kind == SNAPFS_FILE) {
				ws_change(fs, n, true);
				ws_change(fs, n, false);
			}
	pthread_mutex_unlock(&fs->lock);
}

struct node *fs_node(struct fs *fs, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &fs->root : (struct node *)(uintptr_t)ino;
}

fuse_ino_t fs_ino(struct fs *fs, struct node *n)
{
	return n == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

/* 64 bits of an image's random id, never a directory's small number. */
static ino_t file_ino(const uint8_t id[SNAP_ID_LEN])
{
	uint64_t v;

	memcpy(&v, id, sizeof(v));
	return (ino_t)(v | (UINT64_C(1) << 63));
}

static size_t bucket_of(struct fs *fs, ino_t ino)
{
	return (size_t)((ino * UINT64_C(0x9e3779b97f4a7c15)) >> 40) %
	       fs->nbuckets;
}

/* Under fs->lock: the node of st_ino, or NULL. */
static struct node *find(struct fs *fs, enum snapfs_kind kind, ino_t ino)
{
	struct node *n;

	for (n = fs->buckets[bucket_of(fs, ino)]; n; n = n->next)
		if (n->kind == kind && n->st_ino == ino)
			return n;
	return NULL;
}

static void insert(struct fs *fs, struct node *n)
{
	size_t b = bucket_of(fs, n->st_ino);

	n->next = fs->buckets[b];
	fs->buckets[b] = n;
}

void fs_log(struct fs *fs, int ret, const struct snap_err *err)
{
	/* What the kernel cannot say: why a read failed, why a store
	 * call did, who holds what was busy. Misuse (ENOENT, EEXIST...)
	 * is the caller's business. */
	if (ret == -EIO || ret == -EBADMSG || ret == -ENOSPC ||
	    ret == -ENOMEM || ret == -EBUSY || fs->debug)
		fprintf(stderr, "%s: %s\n", SNAPFS_NAME,
			err->msg[0] ? err->msg : strerror(-ret));
}

static void entry_of(struct fs *fs, struct node *n,
		     struct fuse_entry_param *e)
{
	e->ino = fs_ino(fs, n);
	e->generation = 1;
	e->attr_timeout = SNAPFS_TIMEOUT;
	e->entry_timeout = SNAPFS_TIMEOUT;
}

/*
 * n's lookup count went up: fill e (when given) for the reply, and undo
 * the lookup when its attributes cannot be had.
 */
static int entry_fill(struct fs *fs, struct node *n, struct fuse_entry_param *e)
{
	int ret;

	if (!e)
		return 0;
	memset(e, 0, sizeof(*e));
	entry_of(fs, n, e);
	ret = fs_getattr(fs, n, &e->attr);
	if (ret)
		fs_forget(fs, e->ino, 1);
	return ret;
}

int fs_get_snap(struct fs *fs, const char *name, struct fuse_entry_param *e)
{
	struct snap_err err;
	struct node *n;
	struct stat st;
	int ret;

	ret = snap_store_dir_stat(fs->store, name, &st, &err);
	if (ret)
		return ret;
	pthread_mutex_lock(&fs->lock);
	n = find(fs, SNAPFS_SNAP, st.st_ino);
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&fs->lock);
			return -ENOMEM;
		}
		n->kind = SNAPFS_SNAP;
		n->st_ino = st.st_ino;
		insert(fs, n);
	}
	snprintf(n->dir, sizeof(n->dir), "%s", name);
	n->nlookup++;
	pthread_mutex_unlock(&fs->lock);
	return entry_fill(fs, n, e);
}

int fs_get_file(struct fs *fs, const char *dir, const uint8_t id[SNAP_ID_LEN],
		struct fuse_entry_param *e)
{
	ino_t ino = file_ino(id);
	struct snap_image *img;
	struct snap_err err;
	struct node *n;
	int ret;

	pthread_mutex_lock(&fs->lock);
	n = find(fs, SNAPFS_FILE, ino);
	if (n)
		goto found;
	pthread_mutex_unlock(&fs->lock);

	/* Opening loads the image's map: not under the table's lock. */
	ret = snap_image_open(fs->store, id, fs->rdonly ? 0 : SNAP_IMAGE_WRITE,
			      &img, &err);
	if (ret) {
		fs_log(fs, ret, &err);
		return ret;
	}
	pthread_mutex_lock(&fs->lock);
	n = find(fs, SNAPFS_FILE, ino);
	if (n) {		/* another lookup won */
		snap_image_close(img, NULL);
		goto found;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		pthread_mutex_unlock(&fs->lock);
		snap_image_close(img, NULL);
		return -ENOMEM;
	}
	n->kind = SNAPFS_FILE;
	pthread_mutex_init(&n->ws_lock, NULL);
	n->st_ino = ino;
	memcpy(n->id, id, SNAP_ID_LEN);
	n->img = img;
	insert(fs, n);
found:
	snprintf(n->dir, sizeof(n->dir), "%s", dir);
	n->nlookup++;
	pthread_mutex_unlock(&fs->lock);
	return entry_fill(fs, n, e);
}

void fs_forget(struct fs *fs, fuse_ino_t ino, uint64_t count)
{
	struct node *n = fs_node(fs, ino), **pp;

	if (n == &fs->root)
		return;
	pthread_mutex_lock(&fs->lock);
	n->nlookup -= count < n->nlookup ? count : n->nlookup;
	if (n->nlookup) {
		pthread_mutex_unlock(&fs->lock);
		return;
	}
	for (pp = n->gone ? &fs->gone : &fs->buckets[bucket_of(fs, n->st_ino)];
	     *pp != n; pp = &(*pp)->next)
		;
	*pp = n->next;
	pthread_mutex_unlock(&fs->lock);
	node_free(fs, n);
}

void fs_snap_gone(struct fs *fs, const char *name)
{
	pthread_mutex_lock(&fs->lock);
	for (size_t b = 0; b < fs->nbuckets; b++) {
		struct node **pp = &fs->buckets[b];

		while (*pp) {
			struct node *n = *pp;

			if (n->kind != SNAPFS_SNAP || strcmp(n->dir, name)) {
				pp = &n->next;
				continue;
			}
			*pp = n->next;
			n->gone = true;
			n->next = fs->gone;
			fs->gone = n;
		}
	}
	pthread_mutex_unlock(&fs->lock);
}

void fs_renamed(struct fs *fs, const char *from, const char *to)
{
	pthread_mutex_lock(&fs->lock);
	for (size_t b = 0; b < fs->nbuckets; b++)
		for (struct node *n = fs->buckets[b]; n; n = n->next)
			if (!strcmp(n->dir, from))
				snprintf(n->dir, sizeof(n->dir), "%s", to);
	pthread_mutex_unlock(&fs->lock);
}

static struct timespec timespec_of(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000u),
		.tv_nsec = (long)(ns % 1000000000u),
	};

	return ts;
}

int fs_getattr(struct fs *fs, struct node *n, struct stat *st)
{
	struct snap_image_stat ist;
	struct snap_err err;
	unsigned nlink;
	struct stat dst;
	int ret;

	memset(st, 0, sizeof(*st));
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_ino = n->st_ino;
	st->st_blksize = (blksize_t)snap_store_chunk_size(fs->store);
	if (n->kind != SNAPFS_FILE) {
		ret = snap_store_dir_stat(fs->store,
					  n->kind == SNAPFS_ROOT ? NULL : n->dir,
					  &dst, &err);
		if (ret)
			return ret;
		st->st_mode = S_IFDIR | (fs->rdonly ? 0555 : 0755);
		st->st_nlink = dst.st_nlink;
		st->st_size = dst.st_size;
		st->st_blocks = dst.st_blocks;
		st->st_mtim = dst.st_mtim;
		st->st_atim = dst.st_atim;
		st->st_ctim = dst.st_ctim;
		return 0;
	}
	ret = snap_store_nlink(fs->store, n->id, &nlink, &err);
	if (ret == -ENOENT)
		nlink = 0;	/* open, without names, until gc */
	else if (ret)
		return ret;
	snap_image_stat(n->img, &ist);
	st->st_mode = S_IFREG | (fs->rdonly ? 0444 : 0644);
	st->st_nlink = nlink;
	st->st_size = (off_t)ist.size;
	/* Never "sparse": cp clones only files whose blocks cover their
	 * size (docs/snapfs.md). user.snapfs.stored_bytes has the truth. */
	st->st_blocks = (blkcnt_t)((ist.size + 511) / 512);
	st->st_atim = timespec_of(ist.atime_ns);
	st->st_mtim = timespec_of(ist.mtime_ns);
	st->st_ctim = timespec_of(ist.ctime_ns);
	return 0;
}
