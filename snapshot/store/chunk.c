/* SPDX-License-Identifier: MIT */
/*
 * Chunks: the codec between a chunk's bytes and what the backend keeps
 * (the cache of decompressed chunks is chunk_cache.c).
 */
#include "snapshot/store/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "snapshot/format/digest.h"

static const uint8_t chunk_magic[4] = { 'S', 'N', 'C', 'K' };

bool chunk_is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	/* Zero when the first byte is, and every byte equals the next. */
	return n == 0 || (b[0] == 0 && !memcmp(b, b + 1, n - 1));
}

bool key_is_zero(const uint8_t key[SNAP_KEY_LEN])
{
	static const uint8_t zero[SNAP_KEY_LEN];

	return !memcmp(key, zero, SNAP_KEY_LEN);
}

void key_hex(const uint8_t key[SNAP_KEY_LEN], char out[2 * SNAP_KEY_LEN + 1])
{
	snap_hex(key, SNAP_KEY_LEN, out);
}

/* ---- per-thread zstd contexts ---------------------------------------------- */

static pthread_key_t cctx_key, dctx_key, buf_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

/*
 * A thread's scratch buffers for stored chunks: fresh ones cost a page
 * fault per page, and chunks are larger than malloc's mmap threshold.
 * One per depth of a patch's bases being read, and one for pages.
 */
#define BUF_PAGES	PATCH_DEPTH_MAX
#define NBUFS		(PATCH_DEPTH_MAX + 1)

struct scratch {
	size_t size[NBUFS];
	uint8_t *data[NBUFS];
};

static void free_scratch(void *p)
{
	struct scratch *b = p;

	for (int i = 0; i < NBUFS; i++)
		free(b->data[i]);
	free(b);
}

static void free_cctx(void *p)
{
	ZSTD_freeCCtx(p);
}

static void free_dctx(void *p)
{
	ZSTD_freeDCtx(p);
}

static void ctx_init(void)
{
	pthread_key_create(&cctx_key, free_cctx);
	pthread_key_create(&dctx_key, free_dctx);
	pthread_key_create(&buf_key, free_scratch);
}

/* This thread's scratch buffer which, of at least size bytes, or NULL. */
static uint8_t *thread_buf(int which, size_t size)
{
	struct scratch *b;

	pthread_once(&ctx_once, ctx_init);
	b = pthread_getspecific(buf_key);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return NULL;
		pthread_setspecific(buf_key, b);
	}
	if (b->size[which] < size) {
		free(b->data[which]);
		b->size[which] = 0;
		b->data[which] = malloc(size);
		if (!b->data[which])
			return NULL;
		b->size[which] = size;
	}
	return b->data[which];
}

static ZSTD_CCtx *thread_cctx(void)
{
	ZSTD_CCtx *c;

	pthread_once(&ctx_once, ctx_init);
	c = pthread_getspecific(cctx_key);
	if (!c) {
		c = ZSTD_createCCtx();
		if (c)
			pthread_setspecific(cctx_key, c);
	}
	return c;
}

static ZSTD_DCtx *thread_dctx(void)
{
	ZSTD_DCtx *d;

	pthread_once(&ctx_once, ctx_init);
	d = pthread_getspecific(dctx_key);
	if (!d) {
		d = ZSTD_createDCtx();
		if (d)
			pthread_setspecific(dctx_key, d);
	}
	return d;
}

/* ---- codec ----------------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static unsigned chunk_pages(uint32_t chunk_size)
{
	return chunk_size / STORE_PAGE;
}

/* Bytes of a patch's page bitmap. */
static size_t mask_bytes(uint32_t chunk_size)
{
	return chunk_pages(chunk_size) < 8 ? 1 : chunk_pages(chunk_size) / 8;
}

static unsigned count_pages(const uint8_t *mask, unsigned npages)
{
	unsigned n = 0;

	for (unsigned i = 0; i < npages; i++)
		n += (mask[i / 8] >> (i % 8)) & 1;
	return n;
}

/* A patch is worth it when it holds at most half the chunk's pages. */
static bool patch_worth(const struct chunk_patch *p, uint32_t chunk_size,
			const uint8_t key[SNAP_KEY_LEN])
{
	unsigned npages = chunk_pages(chunk_size);

	return p && p->valid && npages >= 2 &&
	       count_pages(p->pages, npages) <= npages / 2 &&
	       memcmp(p->base, key, SNAP_KEY_LEN);
}

/* The largest patch object, header and all. */
static size_t patch_cap(uint32_t chunk_size)
{
	return CHUNK_HDR + SNAP_KEY_LEN + mask_bytes(chunk_size) +
	       chunk_size / 2;
}

/*
 * src (n bytes) into obj + at, zstd when that saves at least 1/64, else
 * raw (cap bytes there); its codec into obj[cb]. The bytes written.
 */
static size_t pack(ZSTD_CCtx *cctx, int level, uint8_t *obj, size_t at,
		   size_t cap, const void *src, size_t n, size_t cb)
{
	size_t z = ZSTD_compressCCtx(cctx, obj + at, cap, src, n, level);

	if (ZSTD_isError(z) || z >= n - n / 64) {
		obj[cb] = CODEC_RAW;	/* not worth a decompression */
		memcpy(obj + at, src, n);
		return n;
	}
	obj[cb] = CODEC_ZSTD;
	return z;
}

/* The store says it has patches: required in store.bin before the first. */
static bool patches_allowed(struct snap_store *s)
{
	struct snap_err err;

	if (__atomic_load_n(&s->patches, __ATOMIC_ACQUIRE))
		return true;
	pthread_mutex_lock(&s->info_lock);
	if (!s->patches && !meta_store_require(&s->meta, FEATURE_PATCHES, &err))
		__atomic_store_n(&s->patches, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->info_lock);
	return s->patches;
}

int chunk_store(struct snap_store *s, const void *data,
		struct chunk_patch *p, uint8_t key[SNAP_KEY_LEN], bool *stored)
{
	bool patch;
	const struct snap_backend *b = &s->backend;
	uint32_t cs = s->chunk_size;
	size_t bound = CHUNK_HDR + ZSTD_compressBound(cs), n, at;
	ZSTD_CCtx *cctx;
	uint8_t *obj;
	int ret;

	*stored = false;
	if (chunk_is_zero(data, cs)) {
		memset(key, 0, SNAP_KEY_LEN);
		patch_whole(p, key);
		return 0;
	}
	snap_sha256(data, cs, key);
	ret = b->ops->has(b->ctx, key);
	if (ret)	/* p stays true of the bytes, whatever is stored */
		return ret < 0 ? ret : 0;

	cctx = thread_cctx();
	obj = thread_buf(0, bound + SNAP_KEY_LEN + PATCH_PAGES_MAX / 8);
	if (!cctx || !obj)
		return -ENOMEM;
	memset(obj, 0, CHUNK_HDR);
	memcpy(obj, chunk_magic, 4);
	put_le32(obj + 8, cs);
	/* A patch's base must be there for as long as the patch: the caller
	 * holds the store's gc lock, and gc keeps a live patch's base. */
	patch = patch_worth(p, cs, key) &&
		(key_is_zero(p->base) || b->ops->has(b->ctx, p->base) == 1) &&
		patches_allowed(s);
	if (patch) {
		unsigned np = count_pages(p->pages, chunk_pages(cs)), k = 0;
		uint8_t *pages = thread_buf(BUF_PAGES, (size_t)np * STORE_PAGE);

		if (!pages)
			return -ENOMEM;
		for (unsigned i = 0; i < chunk_pages(cs); i++)
			if ((p->pages[i / 8] >> (i % 8)) & 1)
				memcpy(pages + (size_t)k++ * STORE_PAGE,
				       (const uint8_t *)data +
				       (size_t)i * STORE_PAGE, STORE_PAGE);
		obj[4] = CODEC_PATCH;
		memcpy(obj + CHUNK_HDR, p->base, SNAP_KEY_LEN);
		memcpy(obj + CHUNK_HDR + SNAP_KEY_LEN, p->pages, mask_bytes(cs));
		at = CHUNK_HDR + SNAP_KEY_LEN + mask_bytes(cs);
		n = at + pack(cctx, s->zstd_level, obj, at, bound - CHUNK_HDR,
			      pages, (size_t)np * STORE_PAGE, 5);
	} else {
		n = CHUNK_HDR + pack(cctx, s->zstd_level, obj, CHUNK_HDR,
				     bound - CHUNK_HDR, data, cs, 4);
	}
	ret = b->ops->put(b->ctx, key, obj, n);
	if (ret)
		return ret;
	__atomic_add_fetch(&s->put_bytes, n, __ATOMIC_RELAXED);
	*stored = true;
	if (!patch)
		patch_whole(p, key);
	return 0;
}

/* Decompress (or copy) a payload of exactly want bytes; NULL or why not. */
static const char *unpack(uint8_t codec, void *out, size_t want,
			  const uint8_t *in, size_t len)
{
	ZSTD_DCtx *d;
	size_t n;

	if (codec == CODEC_RAW) {
		if (len != want)
			return "raw payload of the wrong size";
		memcpy(out, in, want);
		return NULL;
	}
	if (codec != CODEC_ZSTD)
		return "unknown codec";
	d = thread_dctx();
	if (!d)
		return "out of memory";
	n = ZSTD_decompressDCtx(d, out, want, in, len);
	if (ZSTD_isError(n))
		return ZSTD_getErrorName(n);
	return n == want ? NULL : "decompressed to the wrong size";
}

/* The objects a decode read from the backend, its key's and its bases'. */
struct fetched {
	uint8_t keys[PATCH_DEPTH_MAX][SNAP_KEY_LEN];
	unsigned n;
};

/*
 * The bytes stored under key into out, unchecked (the caller checks the
 * digest of what comes out): a whole chunk, or a patch's base (from the
 * cache when there, else read at depth + 1) with its pages over it. pi
 * (may be NULL) gets the patch; f the keys of the objects read. NULL, or
 * why not, with *ret set.
 */
static const char *decode(struct snap_store *s, const uint8_t *key,
			  void *out, struct chunk_patch *pi, unsigned depth,
			  struct fetched *f, int *ret)
{
	uint32_t cs = s->chunk_size;
	size_t cap = CHUNK_HDR + ZSTD_compressBound(cs), len, mb, at;
	uint8_t base[SNAP_KEY_LEN], mask[PATCH_PAGES_MAX / 8];
	const struct snap_backend *b = &s->backend;
	struct chunk_patch bp = { 0 };
	unsigned np, k = 0;
	struct chunk *ch;
	const char *why;
	uint8_t *obj, *pages;

	*ret = -ENOMEM;
	obj = thread_buf(depth, cap + SNAP_KEY_LEN + PATCH_PAGES_MAX / 8);
	if (!obj)
		return "out of memory";
	*ret = b->ops->get(b->ctx, key, obj, cap, &len);
	if (*ret == -ENOENT)
		return "missing";
	if (*ret == -EFBIG)
		return "larger than any chunk";
	if (*ret)
		return strerror(-*ret);
	memcpy(f->keys[depth], key, SNAP_KEY_LEN);
	f->n = depth + 1;
	*ret = -EIO;
	if (len < CHUNK_HDR || memcmp(obj, chunk_magic, 4))
		return "not a chunk";
	if (obj[6] | obj[7] | obj[12] | obj[13] | obj[14] | obj[15] ||
	    (obj[4] != CODEC_PATCH && obj[5]))
		return "reserved header bytes set";
	if (get_le32(obj + 8) != cs)
		return "size differs from the store's chunk size";
	if (obj[4] != CODEC_PATCH) {
		patch_whole(pi, key);
		return unpack(obj[4], out, cs, obj + CHUNK_HDR,
			      len - CHUNK_HDR);
	}

	/* A patch: its base, then its pages over it. */
	mb = mask_bytes(cs);
	at = CHUNK_HDR + SNAP_KEY_LEN + mb;
	if (len < at)
		return "patch shorter than its header";
	memcpy(base, obj + CHUNK_HDR, SNAP_KEY_LEN);
	memset(mask, 0, sizeof(mask));
	memcpy(mask, obj + CHUNK_HDR + SNAP_KEY_LEN, mb);
	np = count_pages(mask, chunk_pages(cs));
	if (np == 0 || np > chunk_pages(cs) / 2 ||
	    count_pages(mask, 8 * (unsigned)mb) != np)
		return "patch with a bad page bitmap";
	if (!memcmp(base, key, SNAP_KEY_LEN))
		return "patch of itself";
	if (key_is_zero(base)) {
		memset(out, 0, cs);
		patch_whole(&bp, base);
	} else if ((ch = chunk_cache_ref(s->cache, base))) {
		memcpy(out, ch->data, cs);
		bp = ch->patch;
		chunk_put(s->cache, ch);
	} else if (depth + 1 >= PATCH_DEPTH_MAX) {
		return "patches of patches too deep";
	} else if ((why = decode(s, base, out, &bp, depth + 1, f, ret))) {
		return *ret == -ENOMEM ? why : "its base is unreadable";
	}
	/* The base read reused no buffer of this depth: obj still holds. */
	pages = thread_buf(BUF_PAGES, (size_t)np * STORE_PAGE);
	if (!pages) {
		*ret = -ENOMEM;
		return "out of memory";
	}
	why = unpack(obj[5], pages, (size_t)np * STORE_PAGE, obj + at, len - at);
	if (why)
		return why;
	for (unsigned i = 0; i < chunk_pages(cs); i++)
		if ((mask[i / 8] >> (i % 8)) & 1)
			memcpy((uint8_t *)out + (size_t)i * STORE_PAGE,
			       pages + (size_t)k++ * STORE_PAGE, STORE_PAGE);
	/* A writer may extend this patch only when its base is whole: so
	 * the patches it writes stay one base deep. */
	if (pi) {
		pi->valid = bp.valid && !memcmp(bp.base, base, SNAP_KEY_LEN) &&
			    count_pages(bp.pages, chunk_pages(cs)) == 0;
		memcpy(pi->base, base, SNAP_KEY_LEN);
		memcpy(pi->pages, mask, sizeof(mask));
	}
	return NULL;
}

/* One read of key into out, checked against the key. */
static const char *load(struct snap_store *s, const uint8_t key[SNAP_KEY_LEN],
			void *out, struct chunk_patch *pi, struct fetched *f,
			int *ret)
{
	uint8_t digest[SNAP_DIGEST_LEN];
	const char *why;

	f->n = 0;
	why = decode(s, key, out, pi, 0, f, ret);
	if (!why) {
		snap_sha256(out, s->chunk_size, digest);
		if (memcmp(digest, key, SNAP_KEY_LEN)) {
			*ret = -EIO;
			why = "content does not match its key";
		}
	}
	return why;
}

/* Drop the copies a backend keeps nearer of the objects in f. */
static void forget(struct snap_store *s, const struct fetched *f)
{
	const struct snap_backend *b = &s->backend;

	for (unsigned i = 0; i < f->n; i++)
		b->ops->forget(b->ctx, f->keys[i]);
}

/*
 * A bad object read through a backend that keeps copies (the cache tier)
 * may be a copy of what the remote held then, since repaired: its copies
 * are dropped and the chunk read once more, from the remote; a copy of
 * what is still bad there is dropped again, not left for the next read.
 */
int chunk_load(struct snap_store *s, const uint8_t key[SNAP_KEY_LEN],
	       void *out, struct chunk_patch *pi, struct snap_err *err)
{
	char hex[2 * SNAP_KEY_LEN + 1];
	struct fetched f;
	const char *why;
	int ret;

	why = load(s, key, out, pi, &f, &ret);
	if (why && ret == -EIO && s->backend.ops->forget) {
		forget(s, &f);
		why = load(s, key, out, pi, &f, &ret);
		if (why && ret == -EIO)
			forget(s, &f);
	}
	if (!why)
		return 0;
	if (pi)
		pi->valid = false;
	key_hex(key, hex);
	return snap_err_set(err, ret == -ENOMEM ? ret : -EIO, "chunk %.16s: %s",
			    hex, why);
}

int chunk_patch_base(struct snap_store *s, const uint8_t key[SNAP_KEY_LEN],
		     uint8_t base[SNAP_KEY_LEN])
{
	const struct snap_backend *b = &s->backend;
	size_t cap = patch_cap(s->chunk_size), len;
	uint8_t *obj = thread_buf(0, cap);
	int ret;

	if (!obj)
		return -ENOMEM;
	ret = b->ops->get(b->ctx, key, obj, cap, &len);
	if (ret == -EFBIG || ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	if (len < CHUNK_HDR + SNAP_KEY_LEN || memcmp(obj, chunk_magic, 4) ||
	    obj[4] != CODEC_PATCH)
		return 0;
	memcpy(base, obj + CHUNK_HDR, SNAP_KEY_LEN);
	return 1;
}
