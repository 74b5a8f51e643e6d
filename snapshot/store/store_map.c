/* SPDX-License-Identifier: MIT */
/*
 * An open image's map and its own state of each chunk: pages of keys
 * (shared between images, copied before a write), pages of bits and of
 * written buffers (the image's alone), and the directories that find
 * them. Nothing is made for an all-zero, untouched stretch, so memory and
 * walks follow what an image holds, never its size (store_image.h).
 */
#include "snapshot/store/store_image.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void page_put(struct map_page *p)
{
	if (p && __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(p);
}

/* Entry i's directory, made (empty) when missing; NULL without memory. */
static struct map_dir *dir_make(struct image *im, uint64_t i)
{
	struct map_dir **dp = &im->dirs[i >> DIR_SPAN_SHIFT];

	if (!*dp)
		*dp = calloc(1, sizeof(**dp));
	return *dp;
}

/* The first entry of the directory after entry i's. */
static uint64_t dir_end(uint64_t i)
{
	return ((i >> DIR_SPAN_SHIFT) + 1) << DIR_SPAN_SHIFT;
}

static unsigned page_in_dir(uint64_t i)
{
	return (unsigned)(i >> MAP_SHIFT) & (DIR_PAGES - 1);
}

int map_own(struct image *im, uint64_t i)
{
	struct map_dir *d = dir_make(im, i);
	struct map_page **pp, *p, *q;

	if (!d)
		return -ENOMEM;
	pp = &d->map[page_in_dir(i)];
	p = *pp;
	if (p && __atomic_load_n(&p->refs, __ATOMIC_ACQUIRE) == 1)
		return 0;
	q = p ? malloc(sizeof(*q)) : calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	if (p)
		memcpy(q->keys, p->keys, sizeof(q->keys));
	q->refs = 1;
	page_put(p);
	*pp = q;
	return 0;
}

int map_put(struct image *im, uint64_t i, const uint8_t *key)
{
	struct map_dir *d = dir_of(im, i);
	int ret;

	if ((!d || !d->map[page_in_dir(i)]) && key_is_zero(key))
		return 0;
	ret = map_own(im, i);
	if (ret)
		return ret;
	d = dir_of(im, i);
	memcpy(d->map[page_in_dir(i)]->keys[i & (MAP_PAGE - 1)], key,
	       SNAP_KEY_LEN);
	return 0;
}

/* d's page of entry i (a page start) becomes im's, shared. */
static void page_share(struct image *d, const struct image *im, uint64_t i)
{
	const struct map_dir *sd = dir_of(im, i);
	struct map_page *p = sd ? sd->map[page_in_dir(i)] : NULL;
	struct map_dir *dd = dir_of(d, i);

	if (!dd)	/* map_share_prepare made it if p is there */
		return;
	if (p)
		__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	page_put(dd->map[page_in_dir(i)]);
	dd->map[page_in_dir(i)] = p;
}

int map_share_prepare(struct image *d, const struct image *im,
		      uint64_t from, uint64_t n)
{
	uint64_t i;

	if ((from % MAP_PAGE && map_own(d, from)) ||
	    (n % MAP_PAGE && map_own(d, n)))
		return -ENOMEM;
	/* Whole pages go into d's directories where im has some. */
	for (i = image_next(im, from, NEXT_MAP); i < n;
	     i = image_next(im, (i | (MAP_PAGE - 1)) + 1, NEXT_MAP))
		if (!dir_make(d, i))
			return -ENOMEM;
	return 0;
}

int map_share(struct image *d, const struct image *im, uint64_t from,
	      uint64_t n)
{
	uint64_t i = from, end = (n + MAP_PAGE - 1) & ~(uint64_t)(MAP_PAGE - 1);
	int ret = 0;

	while (i < end && !ret) {
		if (i % MAP_PAGE == 0 && i + MAP_PAGE <= n) {
			if (!dir_of(d, i) && !dir_of(im, i)) {
				/* both all zero to the directory's end */
				i = dir_end(i) < end ? dir_end(i) : end;
				continue;
			}
			page_share(d, im, i);
			i += MAP_PAGE;
			continue;
		}
		ret = map_put(d, i, i < n ? map_get(im, i) : map_zero);
		i++;
	}
	return ret;
}

/* ---- the image's own state of its chunks ------------------------------- */

static bool page_has(const struct map_dir *d, unsigned pg, unsigned what)
{
	return ((what & NEXT_MAP) && d->map[pg]) ||
	       ((what & NEXT_STATE) && d->st[pg]) ||
	       ((what & NEXT_DIRTY) && d->st[pg] && d->st[pg]->ndirty);
}

uint64_t image_next(const struct image *im, uint64_t i, unsigned what)
{
	while (i < im->nmap) {
		const struct map_dir *d = dir_of(im, i);

		if (!d)
			i = dir_end(i);
		else if (page_has(d, page_in_dir(i), what))
			return i;
		else
			i = (i | (MAP_PAGE - 1)) + 1;
	}
	return im->nmap;
}

int state_make(struct image *im, uint64_t i)
{
	struct map_dir *d = dir_make(im, i);
	struct chunk_state **sp;

	if (!d)
		return -ENOMEM;
	sp = &d->st[page_in_dir(i)];
	if (!*sp)
		*sp = calloc(1, sizeof(**sp));
	return *sp ? 0 : -ENOMEM;
}

int chunk_bit_set(struct image *im, uint64_t i, enum chunk_bit b)
{
	uint8_t *bits;
	int ret = state_make(im, i);

	if (ret)
		return ret;
	bits = state_of(im, i)->bits[b];
	if (bit_get(bits, i & (MAP_PAGE - 1)))
		return 0;
	bit_set(bits, i & (MAP_PAGE - 1));
	return 1;
}

void chunk_bit_clear(struct image *im, uint64_t i, enum chunk_bit b)
{
	struct chunk_state *st = state_of(im, i);
	uint64_t k = i & (MAP_PAGE - 1);

	if (st)
		st->bits[b][k / 8] &= (uint8_t)~(1u << (k % 8));
}

void bits_clear(struct image *im, enum chunk_bit b)
{
	for (uint64_t i = image_next(im, 0, NEXT_STATE); i < im->nmap;
	     i = image_next(im, i + MAP_PAGE, NEXT_STATE))
		memset(state_of(im, i)->bits[b], 0, MAP_PAGE / 8);
}

uint64_t bits_count(const struct image *im, enum chunk_bit b)
{
	uint64_t c = 0, w;

	for (uint64_t i = image_next(im, 0, NEXT_STATE); i < im->nmap;
	     i = image_next(im, i + MAP_PAGE, NEXT_STATE)) {
		const uint8_t *bits = state_of(im, i)->bits[b];

		for (unsigned k = 0; k < MAP_PAGE / 8; k += sizeof(w)) {
			memcpy(&w, bits + k, sizeof(w));
			c += (uint64_t)__builtin_popcountll(w);
		}
	}
	return c;
}

void bits_move(struct image *im, enum chunk_bit from, enum chunk_bit to)
{
	for (uint64_t i = image_next(im, 0, NEXT_STATE); i < im->nmap;
	     i = image_next(im, i + MAP_PAGE, NEXT_STATE)) {
		struct chunk_state *st = state_of(im, i);

		memcpy(st->bits[to], st->bits[from], MAP_PAGE / 8);
		memset(st->bits[from], 0, MAP_PAGE / 8);
	}
}

int dirty_set(struct image *im, uint64_t i, struct chunk *ch)
{
	struct chunk_state *st;

	if (state_make(im, i))
		return -ENOMEM;
	st = state_of(im, i);
	if (!st->dirty && !(st->dirty = calloc(MAP_PAGE, sizeof(*st->dirty))))
		return -ENOMEM;
	st->dirty[i & (MAP_PAGE - 1)] = ch;
	st->ndirty++;
	im->ndirty++;
	return 0;
}

struct chunk *dirty_take(struct image *im, uint64_t i)
{
	struct chunk_state *st = state_of(im, i);
	struct chunk *ch = dirty_of(im, i);

	if (!ch)
		return NULL;
	st->dirty[i & (MAP_PAGE - 1)] = NULL;
	im->ndirty--;
	/* 8 KiB a page: gone with the page's last buffer */
	if (--st->ndirty == 0) {
		free(st->dirty);
		st->dirty = NULL;
	}
	return ch;
}

/* ---- room, and the end ------------------------------------------------- */

int image_reserve(struct image *im, uint64_t size, struct snap_err *err)
{
	uint64_t had = im->nmap >> DIR_SPAN_SHIFT, ndirs;
	struct map_dir **p;

	if (size > SNAP_IMAGE_MAX)
		return snap_err_set(err, -EFBIG, "size %llu: more than the "
				    "largest image, %llu bytes",
				    (unsigned long long)size,
				    (unsigned long long)SNAP_IMAGE_MAX);
	ndirs = (chunks_for(im->s, size) + (UINT64_C(1) << DIR_SPAN_SHIFT) - 1)
		>> DIR_SPAN_SHIFT;
	if (ndirs <= had)
		return 0;
	/* One pointer per directory: 16 KiB for 64 TiB in 64 KiB chunks. */
	p = realloc(im->dirs, (size_t)ndirs * sizeof(*p));
	if (!p)
		return snap_err_set(err, -ENOMEM, "size %llu: out of memory",
				    (unsigned long long)size);
	memset(p + had, 0, (size_t)(ndirs - had) * sizeof(*p));
	im->dirs = p;
	im->nmap = ndirs << DIR_SPAN_SHIFT;
	return 0;
}

static void state_free(struct image *im, struct chunk_state *st)
{
	if (!st)
		return;
	for (unsigned k = 0; st->dirty && k < MAP_PAGE; k++)
		chunk_put(im->s->cache, st->dirty[k]);
	free(st->dirty);
	free(st);
}


void map_free(struct image *im)
{
	for (uint64_t k = 0; k < im->nmap >> DIR_SPAN_SHIFT; k++) {
		struct map_dir *d = im->dirs[k];

		for (unsigned pg = 0; d && pg < DIR_PAGES; pg++) {
			page_put(d->map[pg]);
			state_free(im, d->st[pg]);
		}
		free(d);
	}
	free(im->dirs);
	im->dirs = NULL;
	im->nmap = 0;
}

void image_mem(struct snap_image *h, struct image_mem *m)
{
	struct image *im = h->im;

	memset(m, 0, sizeof(*m));
	pthread_mutex_lock(&im->lock);
	for (uint64_t k = 0; k < im->nmap >> DIR_SPAN_SHIFT; k++) {
		const struct map_dir *d = im->dirs[k];

		m->dirs += d != NULL;
		for (unsigned pg = 0; d && pg < DIR_PAGES; pg++) {
			m->map_pages += d->map[pg] != NULL;
			m->state_pages += d->st[pg] != NULL;
			m->dirty_arrays += d->st[pg] && d->st[pg]->dirty;
		}
	}
	pthread_mutex_unlock(&im->lock);
}
