/* SPDX-License-Identifier: MIT */
/*
 * The whole store at once: stats, verify and gc.
 *
 * What is live (store_live.c marks it): an image with a name or open in
 * this process, the deltas of its chain, their newest keys and those of
 * open images' maps. gc frees everything else. It runs with the store to
 * itself: gc_lock excludes this process's readers and writers for its
 * duration, and an exclusive flock on STORE/lock the other processes
 * (which hold it shared while they have the store open).
 */
#include "snapshot/store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/frame.h"

/* ---- gc ------------------------------------------------------------------------- */

struct sweep {
	struct live *l;
	struct snap_gc_stats *st;
	int ret;
};

static int sweep_chunk(void *arg, const uint8_t key[SNAP_KEY_LEN],
		       uint64_t size)
{
	struct sweep *sw = arg;
	struct snap_backend *b = &sw->l->s->backend;

	if (keyset_has(&sw->l->keys, key)) {
		sw->st->kept_chunks++;
		sw->st->kept_bytes += size;
		return 0;
	}
	if (b->ops->del(b->ctx, key) == 0) {
		sw->st->chunks++;
		sw->st->bytes += size;
	}
	return 0;
}

struct sweep_meta {
	struct snap_store *s;
	const char *folder;
	struct keyset *live;
	uint64_t *freed;
};

/* An object of images/ or deltas/ not live goes (images/<id>.ref and .ws
 * with their image). */
static int sweep_object(void *arg, const char *name)
{
	struct sweep_meta *sm = arg;
	struct snap_meta *m = &sm->s->meta;
	uint8_t id[SNAP_ID_LEN], pk[SNAP_KEY_LEN];
	size_t n = strlen(name);
	bool beside = (n == 2 * SNAP_ID_LEN + 4 &&
		       !strcmp(name + 2 * SNAP_ID_LEN, ".ref")) ||
		      (n == 2 * SNAP_ID_LEN + 3 &&
		       !strcmp(name + 2 * SNAP_ID_LEN, ".ws"));
	char full[META_NAME_MAX + 8];

	if (n < 2 * SNAP_ID_LEN || live_unhex(name, id, SNAP_ID_LEN))
		return 0;	/* not ours */
	if (n != 2 * SNAP_ID_LEN && !beside)
		return 0;
	live_id_key(id, pk);
	if (keyset_has(sm->live, pk))
		return 0;
	snprintf(full, sizeof(full), "%s/%s", sm->folder, name);
	if (!m->ops->del(m->ctx, full, NULL) && !beside)
		(*sm->freed)++;
	return 0;
}

/* Remove what in folder is not live. */
static int sweep_dir(struct live *l, const char *folder, struct keyset *live,
		     uint64_t *freed)
{
	struct sweep_meta sm = { l->s, folder, live, freed };
	struct snap_meta *m = &l->s->meta;

	return m->ops->each(m->ctx, folder, sweep_object, &sm, l->err);
}

static int sweep_tmp(struct snap_store *s)
{
	char dir[4096], path[4096 + 300];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/chunks/tmp", s->dir);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
	return 0;
}

int snap_store_gc(struct snap_store *s, struct snap_gc_stats *st,
		  struct snap_err *err)
{
	struct live l = { .s = s, .err = err };
	struct snap_gc_stats dummy;
	struct sweep sw = { &l, st ? st : &dummy, 0 };
	int ret;

	memset(sw.st, 0, sizeof(*sw.st));
	if (s->rdonly)
		return snap_err_set(err, -EROFS, "gc: store opened read-only");
	pthread_rwlock_wrlock(&s->gc_lock);
	ret = s->meta.ops->lock(s->meta.ctx, META_LOCK_GC, err);
	if (ret) {
		pthread_rwlock_unlock(&s->gc_lock);
		return snap_err_prefix(err, ret, "gc");
	}
	ret = live_mark(&l);
	if (!ret)
		ret = live_mark_held(&l);
	if (!ret && !l.problems) {
		ret = keyset_add_bases(s, &l.keys);
		if (ret && ret != -ENOMEM)
			ret = snap_err_set(err, ret, "gc: reading a patch's "
					   "base: %s; nothing freed",
					   strerror(-ret));
	}
	if (!ret && l.problems)
		ret = snap_err_set(err, -EBADMSG, "gc: %llu problems found "
				   "while marking (snapctl store verify "
				   "lists them); nothing freed",
				   (unsigned long long)l.problems);
	if (!ret)
		ret = s->backend.ops->each(s->backend.ctx, sweep_chunk, &sw);
	if (!ret)
		ret = sweep_dir(&l, "deltas", &l.deltas, &sw.st->deltas);
	if (!ret)
		ret = sweep_dir(&l, "images", &l.images, &sw.st->images);
	if (!ret)
		ret = sweep_tmp(s);
	if (!ret)
		ret = s->backend.ops->sync(s->backend.ctx);
	if (!ret && s->backend.ops->compact)
		ret = s->backend.ops->compact(s->backend.ctx);
	s->meta.ops->unlock(s->meta.ctx, META_LOCK_GC);
	pthread_rwlock_unlock(&s->gc_lock);
	keyset_free(&l.keys);
	live_free_deltas(&l.deltas);
	keyset_free(&l.images);
	if (ret == -ENOMEM)
		snap_err_set(err, ret, "gc: out of memory");
	else if (ret && ret != -EBADMSG)
		snap_err_prefix(err, ret, "gc");
	return ret;
}

/* ---- the images behind the names ------------------------------------------------ */

struct named {
	struct snap_store *s;
	const char *snapshot;
	struct keyset ids;
	uint64_t files;
	uint64_t snapshots;
	struct snap_err *err;
};

static int named_file(void *arg, const char *file)
{
	struct named *nm = arg;
	uint8_t id[SNAP_ID_LEN], pk[SNAP_KEY_LEN];
	char path[2 * SNAP_STORE_NAME_MAX + 2];
	struct snap_err e;

	snprintf(path, sizeof(path), "%s/%s", nm->snapshot, file);
	if (snap_store_lookup(nm->s, path, id, NULL, &e))
		return 0;	/* verify reports it */
	nm->files++;
	live_id_key(id, pk);
	return keyset_add(&nm->ids, pk, NULL);
}

static int named_snapshot(void *arg, const char *name)
{
	struct named *nm = arg;
	struct snap_err e;

	nm->snapshots++;
	nm->snapshot = name;
	return snap_store_list(nm->s, name, named_file, nm, &e) == -ENOMEM ?
	       -ENOMEM : 0;
}

static int named_images(struct snap_store *s, struct named *nm,
			struct snap_err *err)
{
	int ret;

	memset(nm, 0, sizeof(*nm));
	nm->s = s;
	nm->err = err;
	ret = snap_store_list(s, NULL, named_snapshot, nm, err);
	if (ret == -ENOMEM)
		snap_err_set(err, ret, "out of memory");
	return ret;
}

/* ---- stats ----------------------------------------------------------------------- */

struct counting {
	struct keyset used;
	struct snap_store_stats *st;
	uint32_t chunk_size;
};

static int count_key(void *arg, uint64_t index, const uint8_t *key)
{
	struct counting *c = arg;

	c->st->mapped_bytes += c->chunk_size;
	return keyset_add(&c->used, key, NULL);
}

struct sizes {
	struct counting *c;
	struct live *l;
};

static int size_chunk(void *arg, const uint8_t key[SNAP_KEY_LEN],
		      uint64_t size)
{
	struct sizes *sz = arg;

	if (keyset_has(&sz->c->used, key))
		sz->c->st->stored_bytes += size;
	if (!keyset_has(&sz->l->keys, key)) {
		sz->c->st->garbage_chunks++;
		sz->c->st->garbage_bytes += size;
	}
	return 0;
}

struct folder_bytes {
	struct snap_store *s;
	const char *folder;
	uint64_t *files, *bytes;
};

static int object_bytes(void *arg, const char *name)
{
	struct folder_bytes *fb = arg;
	struct snap_meta *m = &fb->s->meta;
	char path[META_NAME_MAX + 16];
	uint64_t size;

	snprintf(path, sizeof(path), "%s/%s", fb->folder, name);
	if (m->ops->size(m->ctx, path, &size, NULL))
		return 0;	/* gone meanwhile */
	if (fb->files)
		(*fb->files)++;
	*fb->bytes += size;
	return 0;
}

/* The objects of a metadata folder and their bytes, wherever they are. */
static void folder_bytes(struct snap_store *s, const char *folder,
			 uint64_t *files, uint64_t *bytes)
{
	struct folder_bytes fb = { s, folder, files, bytes };

	s->meta.ops->each(s->meta.ctx, folder, object_bytes, &fb, NULL);
}

int snap_store_stats(struct snap_store *s, struct snap_store_stats *st,
		     struct snap_err *err)
{
	struct counting c = { .st = st, .chunk_size = s->chunk_size };
	struct live l = { .s = s, .err = err };
	struct sizes sz = { &c, &l };
	struct named nm;
	int ret;

	memset(st, 0, sizeof(*st));
	ret = named_images(s, &nm, err);
	if (ret)
		return ret;
	st->snapshots = nm.snapshots;
	st->files = nm.files;
	for (size_t i = 0; i < nm.ids.cap && !ret; i++) {
		struct snap_image *img;
		struct snap_image_stat ist;

		if (key_is_zero(nm.ids.keys[i]))
			continue;
		ret = snap_image_open(s, nm.ids.keys[i], 0, &img, err);
		if (ret)
			break;
		snap_image_stat(img, &ist);
		st->images++;
		st->logical_bytes += ist.size;
		ret = image_map_each(img, count_key, &c);
		snap_image_close(img, NULL);
	}
	pthread_rwlock_rdlock(&s->gc_lock);
	if (!ret)
		ret = keyset_add_bases(s, &c.used);
	if (!ret)
		ret = live_mark(&l);
	if (!ret)
		ret = keyset_add_bases(s, &l.keys);
	if (!ret)
		ret = s->backend.ops->each(s->backend.ctx, size_chunk, &sz);
	pthread_rwlock_unlock(&s->gc_lock);
	st->chunks = c.used.n;
	st->unique_bytes = c.used.n * (uint64_t)s->chunk_size;
	folder_bytes(s, "deltas", &st->deltas, &st->meta_bytes);
	folder_bytes(s, "images", NULL, &st->meta_bytes);
	keyset_free(&c.used);
	keyset_free(&nm.ids);
	keyset_free(&l.keys);
	live_free_deltas(&l.deltas);
	keyset_free(&l.images);
	if (ret == -ENOMEM)
		snap_err_set(err, ret, "stats: out of memory");
	return ret;
}

/* ---- verify ---------------------------------------------------------------------- */

struct checking {
	struct snap_store *s;
	struct keyset seen;
	struct snap_verify_stats *st;
	uint8_t *buf;
	const char *image;
	void (*report)(void *arg, const char *line);
	void *arg;
};

static int check_key(void *arg, uint64_t index, const uint8_t *key)
{
	struct checking *c = arg;
	struct snap_err e;
	char line[SNAP_ERR_MAX + 120];
	int ret;

	if (keyset_has(&c->seen, key))
		return 0;
	ret = keyset_add(&c->seen, key, NULL);
	if (ret)
		return ret;
	c->st->chunks++;
	if (chunk_load(c->s, key, c->buf, NULL, &e)) {
		c->st->bad++;
		snprintf(line, sizeof(line), "%s: offset %llu: %s", c->image,
			 (unsigned long long)index * c->s->chunk_size, e.msg);
		if (c->report)
			c->report(c->arg, line);
	}
	return 0;
}

int snap_store_verify(struct snap_store *s, struct snap_verify_stats *st,
		      void (*report)(void *arg, const char *line), void *arg,
		      struct snap_err *err)
{
	struct snap_verify_stats dummy;
	struct checking c = { .s = s, .report = report, .arg = arg };
	struct live l = { .s = s, .err = err, .report = report, .arg = arg };
	struct named nm = { 0 };
	int ret;

	c.st = st ? st : &dummy;
	memset(c.st, 0, sizeof(*c.st));
	c.buf = malloc(s->chunk_size);
	if (!c.buf)
		return snap_err_set(err, -ENOMEM, "verify: out of memory");
	/* Every name, image and delta that gc would keep reads. */
	pthread_rwlock_rdlock(&s->gc_lock);
	ret = live_mark(&l);
	pthread_rwlock_unlock(&s->gc_lock);
	if (!ret)
		ret = named_images(s, &nm, err);
	for (size_t i = 0; !ret && i < nm.ids.cap; i++) {
		struct snap_image *img;
		struct snap_err e;
		char hex[2 * SNAP_ID_LEN + 1], who[64];

		if (key_is_zero(nm.ids.keys[i]))
			continue;
		c.st->images++;
		if (snap_image_open(s, nm.ids.keys[i], 0, &img, &e)) {
			c.st->bad++;
			if (report)
				report(arg, e.msg);
			continue;
		}
		snap_id_hex(nm.ids.keys[i], hex);
		snprintf(who, sizeof(who), "image %s", hex);
		c.image = who;
		ret = image_map_each(img, check_key, &c);
		snap_image_close(img, NULL);
	}
	keyset_free(&nm.ids);
	keyset_free(&c.seen);
	keyset_free(&l.keys);
	live_free_deltas(&l.deltas);
	keyset_free(&l.images);
	free(c.buf);
	if (ret)
		return ret == -ENOMEM ? snap_err_set(err, ret, "verify: out "
						     "of memory") : ret;
	c.st->bad += l.problems;
	if (c.st->bad)
		return snap_err_set(err, -EBADMSG, "verify: %llu problems",
				    (unsigned long long)c.st->bad);
	return 0;
}

struct stored {
	struct snap_store *s;
	struct keyset seen;
	uint64_t bytes;
};

static int stored_key(void *arg, uint64_t index, const uint8_t *key)
{
	struct stored *sd = arg;
	struct snap_backend *b = &sd->s->backend;
	uint64_t size;
	int ret;

	if (keyset_has(&sd->seen, key))
		return 0;
	ret = keyset_add(&sd->seen, key, NULL);
	if (!ret && b->ops->size(b->ctx, key, &size) == 0)
		sd->bytes += size;
	return ret;
}

int snap_image_stored_bytes(struct snap_image *img, uint64_t *bytes,
			    struct snap_err *err)
{
	struct stored sd = { .s = image_store(img) };
	int ret;

	ret = image_map_each(img, stored_key, &sd);
	if (!ret) {	/* and the bases of its patches, once */
		struct keyset all = { 0 };

		for (size_t i = 0; !ret && i < sd.seen.cap; i++)
			if (!key_is_zero(sd.seen.keys[i]))
				ret = keyset_add(&all, sd.seen.keys[i], NULL);
		if (!ret)
			ret = keyset_add_bases(sd.s, &all);
		for (size_t i = 0; !ret && i < all.cap; i++)
			if (!key_is_zero(all.keys[i]))
				ret = stored_key(&sd, 0, all.keys[i]);
		keyset_free(&all);
	}
	keyset_free(&sd.seen);
	if (ret)
		return snap_err_set(err, ret, "%s", ret == -ENOMEM ?
				    "out of memory" : strerror(-ret));
	*bytes = sd.bytes;
	return 0;
}
