/* SPDX-License-Identifier: MIT */
/*
 * The inode table of snapfs: nodes for the root, the snapshots and their
 * files, found again by the identity of what backs them (see snapfs.h).
 *
 * The lock guards the hash table, every node's counts, names and manifest
 * cache. Nothing blocks on I/O while holding it: callers stat and read the
 * store first, then take the lock to find, create or update nodes.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "tree.h"

struct tree_node *tree_node_of(struct tree *t, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &t->root;
	return (struct tree_node *)(uintptr_t)ino;
}

fuse_ino_t tree_node_id(struct tree *t, const struct tree_node *n)
{
	if (n == &t->root)
		return FUSE_ROOT_ID;
	return (fuse_ino_t)(uintptr_t)n;
}

ino_t tree_shown_ino(const struct tree *t, dev_t dev, ino_t ino)
{
	uint64_t mix;

	if (dev == t->store_dev && ino != FUSE_ROOT_ID)
		return ino;
	/* Another filesystem (or inode 1, which is the root's): mix in the
	 * device, and set the top bit that local inode numbers leave clear. */
	mix = ((uint64_t)major(dev) << 32 | minor(dev)) * 0x9e3779b97f4a7c15ull;
	return (ino_t)((ino ^ mix) | 1ull << 63);
}

static size_t bucket_of(const struct tree *t, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;

	return (size_t)(h ^ h >> 29) & (t->nbuckets - 1);
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

struct tree_node *tree_find(struct tree *t, enum snapfs_kind kind,
			    const struct tree_node *parent, unsigned file,
			    const struct stat *st)
{
	struct tree_node *n;

	for (n = t->buckets[bucket_of(t, st->st_dev, st->st_ino)]; n;
	     n = n->next) {
		if (n->kind != kind || n->dev != st->st_dev ||
		    n->ino != st->st_ino)
			continue;
		if (kind == SNAPFS_FILE &&
		    (n->parent != parent || n->file != file ||
		     !same_time(&n->ctime, &st->st_ctim)))
			continue;
		return n;
	}
	return NULL;
}

static void insert(struct tree *t, struct tree_node *n)
{
	size_t b = bucket_of(t, n->dev, n->ino);

	n->next = t->buckets[b];
	t->buckets[b] = n;
	t->count++;
}

static void unlink_node(struct tree *t, struct tree_node *n)
{
	struct tree_node **p = &t->buckets[bucket_of(t, n->dev, n->ino)];

	while (*p != n)
		p = &(*p)->next;
	*p = n->next;
	t->count--;
}

/* Double the buckets when chains grow past two nodes on average. */
static void grow(struct tree *t)
{
	struct tree_node **old = t->buckets, *n, *next;
	size_t i, nold = t->nbuckets;

	if (t->count < 2 * t->nbuckets)
		return;
	t->buckets = calloc(2 * nold, sizeof(*t->buckets));
	if (!t->buckets) {
		t->buckets = old;	/* keep the longer chains */
		return;
	}
	t->nbuckets = 2 * nold;
	t->count = 0;
	for (i = 0; i < nold; i++) {
		for (n = old[i]; n; n = next) {
			next = n->next;
			insert(t, n);
		}
	}
	free(old);
}

struct tree_node *tree_get(struct tree *t, enum snapfs_kind kind,
			   struct tree_node *parent, unsigned file,
			   const struct stat *st)
{
	struct tree_node *n = tree_find(t, kind, parent, file, st);

	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = kind;
	n->file = file;
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->ctime = st->st_ctim;
	if (parent) {
		n->parent = parent;
		parent->refs++;
	}
	grow(t);
	insert(t, n);
	return n;
}

/* Free n once neither the kernel nor a child refers to it. */
static void put(struct tree *t, struct tree_node *n)
{
	struct tree_node *parent;

	while (n && n != &t->root && !n->nlookup && !n->refs) {
		parent = n->parent;
		unlink_node(t, n);
		free(n);
		if (parent)
			parent->refs--;
		n = parent;
	}
}

void tree_forget(struct tree *t, fuse_ino_t ino, uint64_t nlookup)
{
	struct tree_node *n = tree_node_of(t, ino);

	pthread_mutex_lock(&t->lock);
	n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
	put(t, n);
	pthread_mutex_unlock(&t->lock);
}

enum snapfs_kind tree_kind(struct tree *t, fuse_ino_t ino, unsigned *file)
{
	struct tree_node *n = tree_node_of(t, ino);

	if (file)
		*file = n->file;
	return n->kind;
}

int tree_create(int store_fd, const char *store, bool debug,
		struct tree **out)
{
	struct tree *t;
	struct stat st;
	int ret;

	if (fstat(store_fd, &st))
		return -errno;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->nbuckets = 256;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets) {
		ret = -ENOMEM;
		goto err_free;
	}
	t->store = strdup(store);
	if (!t->store) {
		ret = -ENOMEM;
		goto err_buckets;
	}
	ret = -pthread_mutex_init(&t->lock, NULL);
	if (ret)
		goto err_store;
	t->store_fd = store_fd;
	t->store_dev = st.st_dev;
	t->debug = debug;
	t->root.kind = SNAPFS_ROOT;
	t->root.dev = st.st_dev;
	t->root.ino = st.st_ino;
	*out = t;
	return 0;

err_store:
	free(t->store);
err_buckets:
	free(t->buckets);
err_free:
	free(t);
	return ret;
}

void tree_destroy(struct tree *t)
{
	struct tree_node *n, *next;
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nbuckets; i++) {
		for (n = t->buckets[i]; n; n = next) {
			next = n->next;
			free(n);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t->buckets);
	free(t->store);
	free(t);
}
