/* SPDX-License-Identifier: MIT */
/*
 * The whole store at once: stats, verify and gc.
 *
 * What is live: an image with a name (its images/<id>.ref has more than
 * one link) or open in this process; every delta in a live image's chain;
 * the newest key of each index of a live delta, and every key in an open
 * image's map.
 * gc frees everything else. It runs with the store to itself: gc_lock
 * excludes this process's readers and writers for its duration, and an
 * exclusive flock on STORE/lock the other processes (which hold it shared
 * while they have the store open).
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

/* ---- a set of keys ---------------------------------------------------------- */

struct keyset {
	size_t n, cap;			/* cap a power of two */
	uint8_t (*keys)[SNAP_KEY_LEN];	/* zero: empty slot */
	uint64_t *vals;
};

static void keyset_free(struct keyset *ks)
{
	free(ks->keys);
	free(ks->vals);
	memset(ks, 0, sizeof(*ks));
}

static size_t slot_of(const struct keyset *ks, const uint8_t *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)(h & (ks->cap - 1));
}

/* The slot of key: where it is, or the empty one where it would go. */
static size_t keyset_find(const struct keyset *ks, const uint8_t *key)
{
	size_t i = slot_of(ks, key);

	while (!key_is_zero(ks->keys[i]) &&
	       memcmp(ks->keys[i], key, SNAP_KEY_LEN))
		i = (i + 1) & (ks->cap - 1);
	return i;
}

static bool keyset_has(const struct keyset *ks, const uint8_t *key)
{
	return ks->cap && !key_is_zero(ks->keys[keyset_find(ks, key)]);
}

/* Add key (once); *val (may be NULL) gets its value slot. */
static int keyset_add(struct keyset *ks, const uint8_t *key, uint64_t **val)
{
	size_t i;

	if (2 * (ks->n + 1) > ks->cap) {
		struct keyset big = { .cap = ks->cap ? 2 * ks->cap : 1024 };

		big.keys = calloc(big.cap, SNAP_KEY_LEN);
		big.vals = calloc(big.cap, sizeof(*big.vals));
		if (!big.keys || !big.vals) {
			keyset_free(&big);
			return -ENOMEM;
		}
		for (size_t j = 0; j < ks->cap; j++) {
			if (key_is_zero(ks->keys[j]))
				continue;
			i = keyset_find(&big, ks->keys[j]);
			memcpy(big.keys[i], ks->keys[j], SNAP_KEY_LEN);
			big.vals[i] = ks->vals[j];
		}
		big.n = ks->n;
		keyset_free(ks);
		*ks = big;
	}
	i = keyset_find(ks, key);
	if (key_is_zero(ks->keys[i])) {
		memcpy(ks->keys[i], key, SNAP_KEY_LEN);
		ks->n++;
	}
	if (val)
		*val = &ks->vals[i];
	return 0;
}

/*
 * Add to ks the base of each patch among its keys, and their bases in
 * turn: a patch is read over its base, so the base lives as long as it.
 */
static int keyset_add_bases(struct snap_store *s, struct keyset *ks)
{
	uint8_t (*todo)[SNAP_KEY_LEN], base[SNAP_KEY_LEN];
	size_t n = 0;
	int ret = 0;

	todo = malloc((ks->n + 1) * SNAP_KEY_LEN);
	if (!todo)
		return -ENOMEM;
	for (size_t i = 0; i < ks->cap; i++)
		if (!key_is_zero(ks->keys[i]))
			memcpy(todo[n++], ks->keys[i], SNAP_KEY_LEN);
	/* Each key popped pushes at most its base: n stays below ks->n. */
	while (n && ret >= 0) {
		ret = chunk_patch_base(s, todo[--n], base);
		if (ret != 1 || key_is_zero(base) || keyset_has(ks, base))
			continue;
		ret = keyset_add(ks, base, NULL);
		memcpy(todo[n++], base, SNAP_KEY_LEN);
	}
	free(todo);
	return ret < 0 ? ret : 0;
}

/* ---- what is live --------------------------------------------------------------- */

struct live {
	struct snap_store *s;
	struct keyset keys;		/* chunks */
	struct keyset deltas;		/* ids, zero-padded to a key */
	struct keyset images;
	struct snap_err *err;
	void (*report)(void *arg, const char *line);
	void *arg;
	uint64_t problems;
};

static void pad(const uint8_t id[SNAP_ID_LEN], uint8_t key[SNAP_KEY_LEN])
{
	memset(key, 0, SNAP_KEY_LEN);
	memcpy(key, id, SNAP_ID_LEN);
	key[SNAP_KEY_LEN - 1] = 1;	/* never the empty slot */
}

static int mark_key(void *arg, const uint8_t k[SNAP_KEY_LEN])
{
	struct live *l = arg;

	return keyset_add(&l->keys, k, NULL);
}

/*
 * A delta's entries, collected frame by frame: only the newest entry for
 * each index holds a chunk; older ones were overwritten, and their chunks
 * are garbage unless something else holds them.
 */
struct entry {
	uint64_t index;
	uint64_t seq;
	uint8_t key[SNAP_KEY_LEN];
};

struct first {
	bool has_parent, frozen;
	uint8_t parent[SNAP_ID_LEN];
	unsigned frames;
	struct entry *e;
	size_t n, cap;
};

static int chain_frame(void *arg, const struct delta_frame *f)
{
	struct first *fp = arg;

	if (fp->frames++ == 0) {
		fp->has_parent = f->has_parent;
		memcpy(fp->parent, f->parent, SNAP_ID_LEN);
	}
	fp->frozen |= f->frozen;
	for (size_t i = 0; i < f->n; i++) {
		if (fp->n == fp->cap) {
			size_t cap = fp->cap ? 2 * fp->cap : 256;
			void *p = realloc(fp->e, cap * sizeof(*fp->e));

			if (!p)
				return -ENOMEM;
			fp->e = p;
			fp->cap = cap;
		}
		fp->e[fp->n].index = f->indexes[i];
		fp->e[fp->n].seq = fp->n;
		memcpy(fp->e[fp->n].key, f->keys + SNAP_KEY_LEN * i,
		       SNAP_KEY_LEN);
		fp->n++;
	}
	return 0;
}

static int by_index_then_seq(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Keep the newest entry of each index only, sorted by index. */
static void keep_newest(struct first *fp)
{
	size_t k = 0;

	if (fp->n)
		qsort(fp->e, fp->n, sizeof(*fp->e), by_index_then_seq);
	for (size_t i = 0; i < fp->n; i++) {
		if (i + 1 < fp->n && fp->e[i + 1].index == fp->e[i].index)
			continue;
		fp->e[k++] = fp->e[i];
	}
	fp->n = k;
}

static void problem(struct live *l, const char *line)
{
	l->problems++;
	if (l->report)
		l->report(l->arg, line);
}

/*
 * A delta as marking needs it, read once per gc and kept as the value of
 * its id in l->deltas: the newest entry of each index, by index.
 */
struct dparsed {
	struct first fp;
	bool ok;
	char msg[SNAP_ERR_MAX];	/* why it did not read */
};

static int delta_parsed(struct live *l, const uint8_t id[SNAP_ID_LEN],
			struct dparsed **out)
{
	char label[80], hex[2 * SNAP_ID_LEN + 1];
	uint8_t pk[SNAP_KEY_LEN];
	struct dparsed *d;
	struct snap_err e;
	uint64_t *val;
	int ret;

	pad(id, pk);
	ret = keyset_add(&l->deltas, pk, &val);
	if (ret)
		return ret;
	if (*val) {
		*out = (struct dparsed *)(uintptr_t)*val;
		return 0;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	snap_id_hex(id, hex);
	snprintf(label, sizeof(label), "delta %s", hex);
	ret = meta_delta_read(&l->s->meta, id, label, chain_frame, &d->fp,
			      NULL, &e);
	if (ret == -ENOMEM) {
		free(d->fp.e);
		free(d);
		return ret;
	}
	d->ok = !ret;
	if (ret)
		snprintf(d->msg, sizeof(d->msg), "%s", e.msg);
	else
		keep_newest(&d->fp);
	*val = (uint64_t)(uintptr_t)d;
	*out = d;
	return 0;
}

/* Free l->deltas and the deltas read into it. */
static void deltas_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->cap; i++) {
		struct dparsed *d = (struct dparsed *)(uintptr_t)ks->vals[i];

		if (d) {
			free(d->fp.e);
			free(d);
		}
	}
	keyset_free(ks);
}

/* Mark d's keys at indexes not in cover (n, sorted). */
static int mark_uncovered(struct live *l, const struct first *d,
			  const uint64_t *cover, size_t n)
{
	size_t c = 0;
	int ret = 0;

	for (size_t i = 0; i < d->n && !ret; i++) {
		while (c < n && cover[c] < d->e[i].index)
			c++;
		if ((c < n && cover[c] == d->e[i].index) ||
		    key_is_zero(d->e[i].key))
			continue;
		ret = mark_key(l, d->e[i].key);
	}
	return ret;
}

/* cover (sorted) with d's indexes merged in. */
static int add_cover(uint64_t **cover, size_t *n, const struct first *d)
{
	uint64_t *m = malloc((*n + d->n + 1) * sizeof(*m));
	size_t a = 0, b = 0, k = 0;

	if (!m)
		return -ENOMEM;
	while (a < *n || b < d->n) {
		uint64_t x = b == d->n || (a < *n && (*cover)[a] < d->e[b].index)
			     ? (*cover)[a++] : d->e[b++].index;

		if (!k || m[k - 1] != x)
			m[k++] = x;
	}
	free(*cover);
	*cover = m;
	*n = k;
	return 0;
}

/*
 * Mark head's chain: every delta, and the keys its images can read. A
 * delta's newest entry of an index is live unless a frozen delta above
 * it in this chain has that index: frozen deltas are durable and never
 * written again, so nothing can make the entry below visible again. The
 * head's own entries (and any delta not frozen) hide nothing: they may
 * not be durable yet, and a crash would bring the older entry back. So a
 * VM that takes snapshots and removes old ones does not keep what every
 * removed snapshot's delta held, shadowed in the live image's chain.
 */
static int mark_chain(struct live *l, const uint8_t head[SNAP_ID_LEN],
		      const char *who)
{
	uint8_t id[SNAP_ID_LEN];
	char hex[2 * SNAP_ID_LEN + 1], line[SNAP_ERR_MAX + 100];
	uint64_t *cover = NULL;
	size_t ncover = 0;
	int ret = 0;

	memcpy(id, head, SNAP_ID_LEN);
	for (unsigned depth = 0; depth < CHAIN_MAX; depth++) {
		struct dparsed *d;

		ret = delta_parsed(l, id, &d);
		if (!ret && !d->ok) {
			snprintf(line, sizeof(line), "%s: %s", who, d->msg);
			problem(l, line);
			free(cover);
			return 0;
		}
		if (!ret)
			ret = mark_uncovered(l, &d->fp, cover, ncover);
		if (!ret && d->fp.frozen && d->fp.has_parent)
			ret = add_cover(&cover, &ncover, &d->fp);
		if (ret || !d->fp.has_parent) {
			free(cover);
			return ret == -ENOMEM ?
			       snap_err_set(l->err, ret, "out of memory") : ret;
		}
		memcpy(id, d->fp.parent, SNAP_ID_LEN);
	}
	free(cover);
	if (ret)
		return ret;
	snap_id_hex(head, hex);
	snprintf(line, sizeof(line), "%s: a chain of more than %d deltas",
		 who, CHAIN_MAX);
	problem(l, line);
	return 0;
}


static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdef", s[2 * i]) ||
		    !strchr("0123456789abcdef", s[2 * i + 1]))
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

struct open_marks {
	struct live *l;
	struct keyset heads;
};

static int mark_open_image(void *arg, const uint8_t id[SNAP_ID_LEN],
			   const uint8_t head[SNAP_ID_LEN])
{
	struct open_marks *om = arg;
	uint8_t pk[SNAP_KEY_LEN];
	int ret;

	pad(id, pk);
	ret = keyset_add(&om->l->images, pk, NULL);
	pad(head, pk);
	return ret ? ret : keyset_add(&om->heads, pk, NULL);
}

static int mark_open_key(void *arg, const uint8_t k[SNAP_KEY_LEN])
{
	struct open_marks *om = arg;

	return mark_key(om->l, k);
}

/* Image object name (in images/), when it has a name: live, and its chain. */
static int mark_named(void *arg, const char *name)
{
	struct live *l = arg;
	struct snap_store *s = l->s;
	uint8_t id[SNAP_ID_LEN], pk[SNAP_KEY_LEN];
	struct image_info ii;
	struct snap_err ie;
	unsigned nlink;
	char who[300];
	int ret;

	if (strlen(name) != 2 * SNAP_ID_LEN || unhex(name, id, SNAP_ID_LEN))
		return 0;
	if (s->meta.ops->nlink(s->meta.ctx, id, &nlink, &ie) || nlink == 0)
		return 0;	/* no name: live only if open */
	if (meta_image_read(&s->meta, id, &ii, &ie)) {
		problem(l, ie.msg);
		return 0;
	}
	pad(id, pk);
	ret = keyset_add(&l->images, pk, NULL);
	if (ret)
		return ret;
	snprintf(who, sizeof(who), "image %s", name);
	return mark_chain(l, ii.head, who);
}

/*
 * Mark everything live: images with names, images open here, their
 * chains and their keys. Problems (an unreadable image or delta) are
 * reported and counted, and what they hold stays unmarked.
 */
static int mark_live(struct live *l)
{
	struct snap_store *s = l->s;
	struct open_marks om = { .l = l };
	int ret = 0;

	/* Open images first: their maps hold keys no journal has yet. */
	ret = image_mark_open(s, mark_open_image, mark_open_key, &om);
	for (size_t i = 0; i < om.heads.cap && !ret; i++)
		if (!key_is_zero(om.heads.keys[i]))
			ret = mark_chain(l, om.heads.keys[i], "open image");
	keyset_free(&om.heads);
	if (ret)
		return ret == -ENOMEM ? snap_err_set(l->err, ret, "out of "
						     "memory") : ret;

	return s->meta.ops->each(s->meta.ctx, "images", mark_named, l,
				 l->err);
}

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

	if (n < 2 * SNAP_ID_LEN || unhex(name, id, SNAP_ID_LEN))
		return 0;	/* not ours */
	if (n != 2 * SNAP_ID_LEN && !beside)
		return 0;
	pad(id, pk);
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
		if (ret == -EBUSY)
			return snap_err_set(err, ret, "gc: another process "
					    "has the store open (a mounted "
					    "snapfs?); gc needs it alone");
		return snap_err_prefix(err, ret, "gc");
	}
	ret = mark_live(&l);
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
	deltas_free(&l.deltas);
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
	pad(id, pk);
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

static void dir_bytes(const char *dir, uint64_t *files, uint64_t *bytes)
{
	char path[4096 + 300];
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (files)
				(*files)++;
			*bytes += (uint64_t)st.st_blocks * 512;
		}
	}
	closedir(d);
}

int snap_store_stats(struct snap_store *s, struct snap_store_stats *st,
		     struct snap_err *err)
{
	struct counting c = { .st = st, .chunk_size = s->chunk_size };
	struct live l = { .s = s, .err = err };
	struct sizes sz = { &c, &l };
	struct named nm;
	char dir[4096];
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
		ret = mark_live(&l);
	if (!ret)
		ret = keyset_add_bases(s, &l.keys);
	if (!ret)
		ret = s->backend.ops->each(s->backend.ctx, size_chunk, &sz);
	pthread_rwlock_unlock(&s->gc_lock);
	st->chunks = c.used.n;
	st->unique_bytes = c.used.n * (uint64_t)s->chunk_size;
	snprintf(dir, sizeof(dir), "%s/deltas", s->dir);
	dir_bytes(dir, &st->deltas, &st->meta_bytes);
	snprintf(dir, sizeof(dir), "%s/images", s->dir);
	dir_bytes(dir, NULL, &st->meta_bytes);
	keyset_free(&c.used);
	keyset_free(&nm.ids);
	keyset_free(&l.keys);
	deltas_free(&l.deltas);
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
	ret = mark_live(&l);
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
	deltas_free(&l.deltas);
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
