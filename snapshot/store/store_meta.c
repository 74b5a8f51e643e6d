/* SPDX-License-Identifier: MIT */
/*
 * The store's metadata files (proto/store.proto), each a frame or a
 * sequence of frames (frame.h). The only file that sees the protobuf-c
 * store types; every field is checked here before anyone uses it.
 */
#include "snapshot/store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/store/frame.h"
#include "snapshot/format/manifest.h"
#include "proto/store.pb-c.h"

static int check_id(const ProtobufCBinaryData *b, const char *label,
		    const char *field, uint8_t out[SNAP_ID_LEN],
		    struct snap_err *err)
{
	if (b->len != SNAP_ID_LEN)
		return snap_err_set(err, -EBADMSG, "%s: %s: %zu bytes, "
				    "expected %d", label, field, b->len,
				    SNAP_ID_LEN);
	memcpy(out, b->data, SNAP_ID_LEN);
	return 0;
}

/* The required features of store.bin this build knows, into si. */
static int check_features(char **req, size_t n, const char *label,
			  struct store_info *si, struct snap_err *err)
{
	si->patches = si->packs = false;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(req[i], FEATURE_PATCHES))
			si->patches = true;
		else if (!strcmp(req[i], FEATURE_PACKS))
			si->packs = true;
		else
			return snap_err_set(err, -ENOTSUP, "%s: requires "
					    "feature '%s', unknown to this "
					    "build", label, req[i]);
	}
	return 0;
}

_Static_assert(META_NOREPLACE == FRAME_NOREPLACE &&
	       META_DURABLE == FRAME_DURABLE, "one set of flags");

/* msg, packed and framed, as object name. */
static int publish(const struct snap_meta *mt, const char *name,
		   const ProtobufCMessage *msg, unsigned flags,
		   struct snap_err *err)
{
	size_t len = protobuf_c_message_get_packed_size(msg), n;
	uint8_t *buf = malloc(len ? len : 1), *framed;
	int ret;

	if (!buf)
		return snap_err_set(err, -ENOMEM, "%s: out of memory", name);
	protobuf_c_message_pack(msg, buf);
	ret = frame_encode(buf, len, &framed, &n);
	free(buf);
	if (ret)
		return snap_err_set(err, ret, "%s: %s", name, strerror(-ret));
	ret = mt->ops->put(mt->ctx, name, framed, n, flags, err);
	free(framed);
	return ret;
}

/* The payload of object name, which holds one frame. */
static int read_one(const struct snap_meta *mt, const char *name,
		    const char *label, uint8_t **payload, size_t *len,
		    struct snap_err *err)
{
	uint8_t *buf;
	size_t n;
	int ret;

	ret = mt->ops->get(mt->ctx, name, FRAME_HDR + FRAME_MAX, &buf, &n,
			   err);
	if (ret)
		return ret;
	ret = frame_decode_one(buf, n, label, payload, len, err);
	free(buf);
	return ret;
}

int meta_store_write(const struct snap_meta *mt, const struct store_info *si,
		     struct snap_err *err)
{
	Snapfs__Store__StoreInfo m = SNAPFS__STORE__STORE_INFO__INIT;
	char *req[2];

	m.id.data = (uint8_t *)si->id;
	m.id.len = SNAP_ID_LEN;
	m.chunk_size = si->chunk_size;
	m.created_unix_ns = si->created_ns;
	m.required_features = req;
	if (si->patches)
		req[m.n_required_features++] = (char *)FEATURE_PATCHES;
	if (si->packs)
		req[m.n_required_features++] = (char *)FEATURE_PACKS;
	return publish(mt, "store.bin", &m.base, FRAME_NOREPLACE | FRAME_DURABLE,
		       err);
}

/*
 * store.bin's one frame, decoded (free_unpacked it). protobuf-c keeps a
 * field number 0 (invalid) as an unknown field when its tag takes more
 * than one byte, and packs it back in one byte, which it refuses: so
 * meta_store_require would publish a store.bin nobody can read. Refused
 * here, with the rest of what does not decode.
 */
static int store_info_unpack(const struct snap_meta *mt,
			     Snapfs__Store__StoreInfo **m, struct snap_err *err)
{
	uint8_t *buf;
	size_t len;
	int ret;

	ret = read_one(mt, "store.bin", "store.bin", &buf, &len, err);
	if (ret)
		return ret;
	*m = snapfs__store__store_info__unpack(NULL, len, buf);
	free(buf);
	for (unsigned i = 0; *m && i < (*m)->base.n_unknown_fields; i++)
		if ((*m)->base.unknown_fields[i].tag == 0) {
			snapfs__store__store_info__free_unpacked(*m, NULL);
			*m = NULL;
		}
	if (!*m)
		return snap_err_set(err, -EBADMSG, "store.bin: undecodable");
	return 0;
}

int meta_store_require(const struct snap_meta *mt, const char *feature,
		       struct snap_err *err)
{
	Snapfs__Store__StoreInfo *m;
	char **req = NULL;
	int ret;

	ret = store_info_unpack(mt, &m, err);
	if (ret)
		return ret;
	for (size_t i = 0; i < m->n_required_features; i++)
		if (!strcmp(m->required_features[i], feature))
			goto out;	/* there already */
	req = malloc((m->n_required_features + 1) * sizeof(*req));
	if (!req) {
		ret = snap_err_set(err, -ENOMEM, "store.bin: out of memory");
		goto out;
	}
	if (m->n_required_features)
		memcpy(req, m->required_features,
		       m->n_required_features * sizeof(*req));
	req[m->n_required_features] = (char *)feature;
	/* The message's own array goes back before it is freed. */
	{
		char **own = m->required_features;

		m->required_features = req;
		m->n_required_features++;
		ret = publish(mt, "store.bin", &m->base, FRAME_DURABLE, err);
		m->n_required_features--;
		m->required_features = own;
	}
out:
	free(req);
	snapfs__store__store_info__free_unpacked(m, NULL);
	return ret;
}

int meta_store_read(const struct snap_meta *mt, struct store_info *si,
		    struct snap_err *err)
{
	Snapfs__Store__StoreInfo *m;
	int ret;

	ret = store_info_unpack(mt, &m, err);
	if (ret)
		return ret;
	ret = check_id(&m->id, "store.bin", "id", si->id, err);
	if (!ret)
		ret = check_features(m->required_features,
				     m->n_required_features, "store.bin", si,
				     err);
	if (!ret && (m->chunk_size < SNAP_CHUNK_MIN ||
		     m->chunk_size > SNAP_CHUNK_MAX ||
		     (m->chunk_size & (m->chunk_size - 1))))
		ret = snap_err_set(err, -EBADMSG, "store.bin: chunk size %u, "
				   "expected a power of two in [%u, %u]",
				   m->chunk_size, SNAP_CHUNK_MIN,
				   SNAP_CHUNK_MAX);
	si->chunk_size = m->chunk_size;
	si->created_ns = m->created_unix_ns;
	snapfs__store__store_info__free_unpacked(m, NULL);
	return ret;
}

int meta_image_write(const struct snap_meta *mt, const struct image_info *ii,
		     unsigned flags, struct snap_err *err)
{
	Snapfs__Store__ImageInfo m = SNAPFS__STORE__IMAGE_INFO__INIT;

	m.id.data = (uint8_t *)ii->id;
	m.id.len = SNAP_ID_LEN;
	m.head.data = (uint8_t *)ii->head;
	m.head.len = SNAP_ID_LEN;
	char name[META_NAME_MAX];

	m.created_unix_ns = ii->created_ns;
	meta_name(name, "images", ii->id, "");
	return publish(mt, name, &m.base, flags, err);
}

int meta_image_read(const struct snap_meta *mt, const uint8_t id[SNAP_ID_LEN],
		    struct image_info *ii, struct snap_err *err)
{
	Snapfs__Store__ImageInfo *m;
	char label[META_NAME_MAX], name[META_NAME_MAX];
	uint8_t *buf;
	size_t len;
	int ret;

	meta_name(name, "images", id, "");
	snprintf(label, sizeof(label), "image %s", name + strlen("images/"));
	ret = read_one(mt, name, label, &buf, &len, err);
	if (ret)
		return ret;
	m = snapfs__store__image_info__unpack(NULL, len, buf);
	free(buf);
	if (!m)
		return snap_err_set(err, -EBADMSG, "%s: undecodable", label);
	ret = check_id(&m->id, label, "id", ii->id, err);
	if (!ret)
		ret = check_id(&m->head, label, "head", ii->head, err);
	ii->created_ns = m->created_unix_ns;
	snapfs__store__image_info__free_unpacked(m, NULL);
	return ret;
}

int meta_ref_write(const struct snap_meta *mt, const uint8_t id[SNAP_ID_LEN],
		   unsigned flags, struct snap_err *err)
{
	Snapfs__Store__FileRef m = SNAPFS__STORE__FILE_REF__INIT;
	char name[META_NAME_MAX];

	m.image.data = (uint8_t *)id;
	m.image.len = SNAP_ID_LEN;
	meta_name(name, "images", id, ".ref");
	return publish(mt, name, &m.base, FRAME_NOREPLACE | flags, err);
}

int meta_ref_decode(const uint8_t *buf, size_t n, const char *label,
		    uint8_t id[SNAP_ID_LEN], struct snap_err *err)
{
	Snapfs__Store__FileRef *m;
	uint8_t *payload;
	size_t len;
	int ret;

	ret = frame_decode_one(buf, n, label, &payload, &len, err);
	if (ret)
		return ret;
	m = snapfs__store__file_ref__unpack(NULL, len, payload);
	free(payload);
	if (!m)
		return snap_err_set(err, -EBADMSG, "%s: undecodable", label);
	ret = check_id(&m->image, label, "image", id, err);
	snapfs__store__file_ref__free_unpacked(m, NULL);
	return ret;
}

int meta_ws_write(const struct snap_meta *mt, const char *name,
		  const struct snap_ws *ws, uint32_t chunk_size,
		  struct snap_err *err)
{
	Snapfs__Store__WorkingSet m = SNAPFS__STORE__WORKING_SET__INIT;

	m.chunk_size = chunk_size;
	m.n_indexes = (size_t)ws->n;
	m.indexes = ws->index;
	m.recorded_unix_ns = ws->recorded_ns;
	m.off = ws->off;
	return publish(mt, name, &m.base, 0, err);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * in's n indexes below nchunks, each once, in the order of their first
 * appearance, into out (room for n). What it allocates follows n, not
 * nchunks: an index's place in a sorted copy says whether it came before.
 */
static int ws_unique(const uint64_t *in, size_t n, uint64_t nchunks,
		     uint64_t *out, uint64_t *nout)
{
	uint64_t *sorted = malloc(n ? n * sizeof(*sorted) : 1);
	uint8_t *taken = calloc(1, n / 8 + 1);
	size_t ns = 0;

	*nout = 0;
	if (!sorted || !taken) {
		free(sorted);
		free(taken);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (in[i] < nchunks)
			sorted[ns++] = in[i];
	qsort(sorted, ns, sizeof(*sorted), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		uint64_t *at = in[i] < nchunks ?
			       bsearch(&in[i], sorted, ns, sizeof(*sorted),
				       cmp_u64) : NULL;
		size_t k;

		if (!at)
			continue;
		/* the first of equal values stands for them all */
		while (at > sorted && at[-1] == in[i])
			at--;
		k = (size_t)(at - sorted);
		if (taken[k / 8] & (1u << (k % 8)))
			continue;
		taken[k / 8] |= (uint8_t)(1u << (k % 8));
		out[(*nout)++] = in[i];
	}
	free(sorted);
	free(taken);
	return 0;
}

int meta_ws_read(const struct snap_meta *mt, const char *name,
		 const char *label, uint32_t chunk_size, uint64_t nchunks,
		 struct snap_ws *ws, struct snap_err *err)
{
	Snapfs__Store__WorkingSet *m;
	uint8_t *buf;
	size_t len;
	int ret;

	memset(ws, 0, sizeof(*ws));
	ret = read_one(mt, name, label, &buf, &len, err);
	if (ret)
		return ret;
	m = snapfs__store__working_set__unpack(NULL, len, buf);
	free(buf);
	if (!m)
		return snap_err_set(err, -EBADMSG, "%s: undecodable", label);
	if (m->chunk_size != chunk_size) {
		ret = snap_err_set(err, -EBADMSG, "%s: chunk size %u, the "
				   "store's is %u", label, m->chunk_size,
				   chunk_size);
		goto out;
	}
	/* Each index at most once and inside the image: at most nchunks,
	 * and never more than the frame held. */
	ws->index = malloc(m->n_indexes ? m->n_indexes * sizeof(uint64_t) : 1);
	if (!ws->index || ws_unique(m->indexes, m->n_indexes, nchunks,
				    ws->index, &ws->n)) {
		ret = snap_err_set(err, -ENOMEM, "%s: out of memory", label);
		goto out;
	}
	ws->recorded_ns = m->recorded_unix_ns;
	ws->off = m->off;
out:
	if (ret)
		snap_ws_release(ws);
	snapfs__store__working_set__free_unpacked(m, NULL);
	return ret;
}

int meta_delta_encode(const struct delta_frame *f, uint8_t **buf,
		      size_t *len)
{
	Snapfs__Store__DeltaFrame m = SNAPFS__STORE__DELTA_FRAME__INIT;
	Snapfs__Store__ImageTimes times = SNAPFS__STORE__IMAGE_TIMES__INIT;
	uint8_t *payload;
	size_t n;
	int ret;

	if (f->has_parent) {
		m.parent.data = (uint8_t *)f->parent;
		m.parent.len = SNAP_ID_LEN;
	}
	m.size = f->size;
	m.mtime_unix_ns = f->times.mtime_ns;
	times.ctime_unix_ns = f->times.ctime_ns;
	times.atime_unix_ns = f->times.atime_ns;
	m.times = &times;
	m.frozen = f->frozen;
	m.n_indexes = f->n;
	m.indexes = f->indexes;
	m.keys.data = (uint8_t *)f->keys;
	m.keys.len = f->n * SNAP_KEY_LEN;
	n = protobuf_c_message_get_packed_size(&m.base);
	payload = malloc(n ? n : 1);
	if (!payload)
		return -ENOMEM;
	protobuf_c_message_pack(&m.base, payload);
	ret = frame_encode(payload, n, buf, len);
	free(payload);
	return ret;
}

struct delta_read {
	const char *label;
	int (*fn)(void *arg, const struct delta_frame *f);
	void *arg;
	unsigned frames;
	struct snap_err *err;
};

static int delta_one(void *arg, const uint8_t *p, size_t n)
{
	struct delta_read *r = arg;
	Snapfs__Store__DeltaFrame *m;
	struct delta_frame f = { 0 };
	int ret = 0;

	m = snapfs__store__delta_frame__unpack(NULL, n, p);
	if (!m)
		return snap_err_set(r->err, -EBADMSG, "%s: frame %u: "
				    "undecodable", r->label, r->frames);
	if (m->parent.len) {
		if (r->frames)
			ret = snap_err_set(r->err, -EBADMSG, "%s: frame %u: "
					   "a parent after the first frame",
					   r->label, r->frames);
		else
			ret = check_id(&m->parent, r->label, "parent",
				       f.parent, r->err);
		f.has_parent = true;
	}
	if (!ret && m->keys.len != m->n_indexes * SNAP_KEY_LEN)
		ret = snap_err_set(r->err, -EBADMSG, "%s: frame %u: %zu key "
				   "bytes for %zu indexes", r->label,
				   r->frames, m->keys.len, m->n_indexes);
	if (!ret) {
		f.size = m->size;
		f.times.mtime_ns = m->mtime_unix_ns;
		/* An older build's frame: the times it did not keep are
		 * its mtime, what stat always showed for them. */
		f.times.ctime_ns = m->times ? m->times->ctime_unix_ns
					    : m->mtime_unix_ns;
		f.times.atime_ns = m->times ? m->times->atime_unix_ns
					    : m->mtime_unix_ns;
		f.frozen = m->frozen;
		f.n = m->n_indexes;
		f.indexes = m->indexes;
		f.keys = m->keys.data;
		ret = r->fn(r->arg, &f);
	}
	r->frames++;
	snapfs__store__delta_frame__free_unpacked(m, NULL);
	return ret;
}

int meta_delta_read(const struct snap_meta *mt, const uint8_t id[SNAP_ID_LEN],
		    const char *label,
		    int (*fn)(void *arg, const struct delta_frame *f),
		    void *arg, size_t *end, struct snap_err *err)
{
	struct delta_read r = { label, fn, arg, 0, err };
	char name[META_NAME_MAX];
	uint8_t *buf;
	size_t len;
	int ret;

	meta_name(name, "deltas", id, "");
	ret = mt->ops->get(mt->ctx, name, (size_t)1 << 40, &buf, &len, err);
	if (ret)
		return ret;
	ret = frame_each(buf, len, label, delta_one, &r, end, err);
	free(buf);
	if (!ret && r.frames == 0)
		ret = snap_err_set(err, -EBADMSG, "%s: no whole frame", label);
	return ret;
}

int meta_open_encode(const uint8_t (*deltas)[SNAP_ID_LEN], size_t n,
		     uint8_t **buf, size_t *len)
{
	Snapfs__Store__OpenRecord m = SNAPFS__STORE__OPEN_RECORD__INIT;
	ProtobufCBinaryData *ids = calloc(n ? n : 1, sizeof(*ids));
	uint8_t *payload;
	size_t plen;
	int ret;

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ids[i].len = SNAP_ID_LEN;
		ids[i].data = (uint8_t *)deltas[i];
	}
	m.n_deltas = n;
	m.deltas = ids;
	plen = snapfs__store__open_record__get_packed_size(&m);
	payload = malloc(plen ? plen : 1);
	if (!payload) {
		free(ids);
		return -ENOMEM;
	}
	snapfs__store__open_record__pack(&m, payload);
	ret = frame_encode(payload, plen, buf, len);
	free(payload);
	free(ids);
	return ret;
}

int meta_open_decode(const uint8_t *buf, size_t n, const char *label,
		     int (*fn)(void *arg, const uint8_t id[SNAP_ID_LEN]),
		     void *arg, struct snap_err *err)
{
	Snapfs__Store__OpenRecord *m;
	uint8_t id[SNAP_ID_LEN], *payload;
	size_t len;
	int ret;

	ret = frame_decode_one(buf, n, label, &payload, &len, err);
	if (ret)
		return ret;
	m = snapfs__store__open_record__unpack(NULL, len, payload);
	free(payload);
	if (!m)
		return snap_err_set(err, -EBADMSG, "%s: undecodable", label);
	for (size_t i = 0; i < m->n_deltas && !ret; i++) {
		ret = check_id(&m->deltas[i], label, "delta", id, err);
		if (!ret)
			ret = fn(arg, id);
	}
	snapfs__store__open_record__free_unpacked(m, NULL);
	return ret;
}
