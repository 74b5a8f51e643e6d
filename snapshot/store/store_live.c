/* SPDX-License-Identifier: MIT */
/*
 * What is live in a store, for stats, verify and gc (store_gc.c).
 *
 * What is live: an image with a name (its images/<id>.ref has more than
 * one link) or open in this process; every delta in a live image's chain;
 * the newest key of each index of a live delta, and every key in an open
 * image's map.
 */
#include "snapshot/store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/frame.h"

/* ---- a set of keys ---------------------------------------------------------- */

void keyset_free(struct keyset *ks)
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

bool keyset_has(const struct keyset *ks, const uint8_t *key)
{
	return ks->cap && !key_is_zero(ks->keys[keyset_find(ks, key)]);
}

/* Add key (once); *val (may be NULL) gets its value slot. */
int keyset_add(struct keyset *ks, const uint8_t *key, uint64_t **val)
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
int keyset_add_bases(struct snap_store *s, struct keyset *ks)
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

void live_id_key(const uint8_t id[SNAP_ID_LEN], uint8_t key[SNAP_KEY_LEN])
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

	live_id_key(id, pk);
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
void live_free_deltas(struct keyset *ks)
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


int live_unhex(const char *s, uint8_t *out, size_t n)
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

	live_id_key(id, pk);
	ret = keyset_add(&om->l->images, pk, NULL);
	live_id_key(head, pk);
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

	if (strlen(name) != 2 * SNAP_ID_LEN ||
	    live_unhex(name, id, SNAP_ID_LEN))
		return 0;
	if (s->meta.ops->nlink(s->meta.ctx, id, &nlink, &ie) || nlink == 0)
		return 0;	/* no name: live only if open */
	if (meta_image_read(&s->meta, id, &ii, &ie)) {
		problem(l, ie.msg);
		return 0;
	}
	live_id_key(id, pk);
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
int live_mark(struct live *l)
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

/* ---- what other opens hold ------------------------------------------------ */

struct held {
	struct live *l;
	struct keyset read;	/* deltas read already */
};

static int held_frame(void *arg, const struct delta_frame *f)
{
	struct live *l = arg;
	int ret = 0;

	for (size_t i = 0; i < f->n && !ret; i++)
		if (!key_is_zero(f->keys + SNAP_KEY_LEN * i))
			ret = mark_key(l, f->keys + SNAP_KEY_LEN * i);
	return ret;
}

static int held_delta(void *arg, const uint8_t id[SNAP_ID_LEN])
{
	struct held *h = arg;
	char label[80], hex[2 * SNAP_ID_LEN + 1];
	uint8_t pk[SNAP_KEY_LEN];
	struct snap_err e;
	int ret;

	live_id_key(id, pk);
	if (keyset_has(&h->read, pk))
		return 0;
	ret = keyset_add(&h->read, pk, NULL);
	if (!ret)
		ret = keyset_add(&h->l->deltas, pk, NULL);
	if (ret)
		return ret;
	snap_id_hex(id, hex);
	snprintf(label, sizeof(label), "delta %s", hex);
	ret = meta_delta_read(&h->l->s->meta, id, label, held_frame, h->l,
			      NULL, &e);
	if (ret == -ENOMEM)
		return ret;
	if (ret && ret != -ENOENT)	/* ENOENT: nothing left to keep */
		problem(h->l, e.msg);
	return 0;
}

static int held_record(void *arg, const uint8_t *buf, size_t len)
{
	struct held *h = arg;
	struct snap_err e;
	int ret;

	ret = meta_open_decode(buf, len, "an open record", held_delta, h, &e);
	if (ret == -EBADMSG)
		problem(h->l, e.msg);
	return ret == -EBADMSG ? 0 : ret;
}

/*
 * Mark what the other opens of the store hold (their records, meta.h):
 * every delta, and every key of every frame of it. Each reads its images
 * as of its open, so a key a later frame replaced, or a compaction
 * dropped (store_journal.c), may still be the one it reads.
 */
int live_mark_held(struct live *l)
{
	struct snap_meta *m = &l->s->meta;
	struct held h = { .l = l };
	int ret;

	if (!m->ops->records)
		return 0;
	ret = m->ops->records(m->ctx, held_record, &h, l->err);
	keyset_free(&h.read);
	return ret == -ENOMEM ? snap_err_set(l->err, ret, "out of memory")
			      : ret;
}
