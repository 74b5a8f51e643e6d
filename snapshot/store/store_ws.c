/* SPDX-License-Identifier: MIT */
/*
 * Working sets: the chunks of an image read first after some open, in the
 * order of their first reads.
 *
 * A recording hangs on the open image (im->rec): every chunk a read
 * touches is noted once, in order, whoever reads it, until the recording
 * stops. Its memory follows what was read (8 bytes a chunk; which chunks
 * were noted is a bit of the image's state, BIT_REC), and chunks past the
 * image's size when the recording started are not noted.
 *
 * A saved working set is a file beside the image, STORE/images/<id>.ws (a
 * WorkingSet frame, proto/store.proto), replaced atomically and not
 * fsynced: it is advice, and a crash that loses it loses only speed. A
 * clone gets a copy of its source's. gc removes it with its image.
 */
#include "snapshot/store/store_image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/store/frame.h"

struct ws_rec {
	uint64_t nbits;			/* chunks that may be noted */
	uint64_t n, cap;
	uint64_t *index;		/* in order */
};

static void rec_free(struct ws_rec *r)
{
	if (!r)
		return;
	free(r->index);
	free(r);
}

void image_record_read(struct image *im, uint64_t i)
{
	struct ws_rec *r = im->rec;

	if (i >= r->nbits || chunk_bit(im, i, BIT_REC))
		return;
	if (r->n == r->cap) {
		uint64_t cap = r->cap ? 2 * r->cap : 256;
		uint64_t *p;

		if (cap > r->nbits)
			cap = r->nbits;
		p = realloc(r->index, (size_t)cap * sizeof(*p));
		if (!p)
			return;	/* advice: what does not fit is not noted */
		r->index = p;
		r->cap = cap;
	}
	/* A read made i's state page (BIT_SEEN): this cannot fail. */
	if (chunk_bit_set(im, i, BIT_REC) < 0)
		return;
	r->index[r->n++] = i;
}

uint64_t image_recorded(const struct image *im)
{
	return im->rec->n;
}

void image_record_free(struct image *im)
{
	rec_free(im->rec);
	im->rec = NULL;
}

int snap_image_record_start(struct snap_image *h, struct snap_err *err)
{
	struct image *im = h->im;
	struct ws_rec *r = calloc(1, sizeof(*r));

	if (!r)
		return snap_err_set(err, -ENOMEM, "out of memory");
	pthread_mutex_lock(&im->lock);
	r->nbits = chunks_for(im->s, im->size);
	bits_clear(im, BIT_REC);
	rec_free(im->rec);
	im->rec = r;
	pthread_mutex_unlock(&im->lock);
	return 0;
}

void snap_image_record_stop(struct snap_image *h, struct snap_ws *ws)
{
	struct image *im = h->im;
	struct ws_rec *r;

	pthread_mutex_lock(&im->lock);
	r = im->rec;
	im->rec = NULL;
	pthread_mutex_unlock(&im->lock);
	if (ws) {
		memset(ws, 0, sizeof(*ws));
		if (r) {
			ws->n = r->n;
			ws->index = r->index;
			r->index = NULL;
		}
	}
	rec_free(r);
}

void snap_ws_release(struct snap_ws *ws)
{
	free(ws->index);
	ws->index = NULL;
	ws->n = 0;
}

int snap_image_ws_load(struct snap_image *h, struct snap_ws *ws,
		       struct snap_err *err)
{
	struct image *im = h->im;
	char name[META_NAME_MAX], label[96];
	uint64_t nchunks;

	pthread_mutex_lock(&im->lock);
	nchunks = chunks_for(im->s, im->size);
	pthread_mutex_unlock(&im->lock);
	image_label(im, label, sizeof(label) - 14);
	strcat(label, ": working set");
	meta_name(name, "images", im->info.id, ".ws");
	return meta_ws_read(&im->s->meta, name, label, im->s->chunk_size,
			    nchunks, ws, err);
}

int snap_image_ws_save(struct snap_image *h, const struct snap_ws *ws,
		       struct snap_err *err)
{
	struct image *im = h->im;
	struct snap_store *s = im->s;
	char name[META_NAME_MAX], label[64];
	int ret = store_writable(s, err);

	if (ret)
		return ret;
	meta_name(name, "images", im->info.id, ".ws");
	pthread_rwlock_rdlock(&s->gc_lock);
	if (ws) {
		ret = meta_ws_write(&s->meta, name, ws, s->chunk_size, err);
	} else {
		ret = s->meta.ops->del(s->meta.ctx, name, err);
		if (ret == -ENOENT)
			ret = 0;
		if (ret) {
			image_label(im, label, sizeof(label));
			snap_err_prefix(err, ret, "%s: working set", label);
		}
	}
	pthread_rwlock_unlock(&s->gc_lock);
	return ret;
}

/* A copy of from's working set (its bytes as they are) for to. */
int image_ws_copy(struct snap_store *s, const uint8_t from[SNAP_ID_LEN],
		  const uint8_t to[SNAP_ID_LEN], struct snap_err *err)
{
	struct snap_meta *m = &s->meta;
	char src[META_NAME_MAX], dst[META_NAME_MAX];
	uint8_t *buf, *payload = NULL;
	size_t len, n;
	int ret;

	meta_name(src, "images", from, ".ws");
	meta_name(dst, "images", to, ".ws");
	ret = m->ops->get(m->ctx, src, FRAME_HDR + FRAME_MAX, &buf, &len, err);
	if (!ret) {	/* only a whole frame is copied */
		ret = frame_decode_one(buf, len, src, &payload, &n, err);
		free(payload);
		if (ret)
			free(buf);
	}
	if (ret) {	/* none, or a damaged one: to has none either */
		ret = ret == -ENOMEM ? ret : m->ops->del(m->ctx, dst, err);
		return ret == -ENOENT ? 0 : ret;
	}
	ret = m->ops->put(m->ctx, dst, buf, len, 0, err);
	free(buf);
	return ret;
}
