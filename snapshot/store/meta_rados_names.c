/* SPDX-License-Identifier: MIT */
/*
 * Names of a store in RADOS (meta.h): the omap of one object, "names"
 * (meta_rados.h has its keys). Every change reads what it depends on,
 * then writes in one operation that asserts the object's version has not
 * moved since: so each is atomic, across hosts too, as mkdir(2), link(2)
 * and rename(2) are on one filesystem. A change another host made in
 * between makes it read again. The names object is reached through an
 * I/O context of its own (mr->nio), used under mr->lock, so that the
 * version librados reports after a read is that read's.
 */
#include "snapshot/store/meta_rados.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "snapshot/store/store_int.h"

#define RETRIES		32	/* changes of others in between, at most */
#define LIST_PAGE	256
#define DIR_FILES_MAX	65536	/* files a snapshot's rename moves */
#define VAL_MAX		SNAP_ID_LEN
#define KEY_MAX		(2 * SNAP_STORE_NAME_MAX + 2 * SNAP_ID_LEN + 8)

/* A key's value as read. */
struct val {
	bool has;
	size_t len;
	uint8_t v[VAL_MAX];
};

/* Keys set and removed by one operation. */
struct batch {
	size_t n, cap;
	char **keys;
	uint8_t (*vals)[VAL_MAX];
	size_t *vlens;
};

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->keys[i]);
	free(b->keys);
	free(b->vals);
	free(b->vlens);
	memset(b, 0, sizeof(*b));
}

static int batch_grow(struct batch *b)
{
	size_t cap = b->cap ? 2 * b->cap : 8;
	char **k = realloc(b->keys, cap * sizeof(*k));
	uint8_t (*v)[VAL_MAX];
	size_t *l;

	if (!k)
		return -ENOMEM;
	b->keys = k;
	v = realloc(b->vals, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	b->vals = v;
	l = realloc(b->vlens, cap * sizeof(*l));
	if (!l)
		return -ENOMEM;
	b->vlens = l;
	b->cap = cap;
	return 0;
}

/* Set the key fmt makes to val (len bytes), or remove it (val NULL). */
static int batch_add(struct batch *b, const void *val, size_t len,
		     const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int batch_add(struct batch *b, const void *val, size_t len,
		     const char *fmt, ...)
{
	va_list ap;
	int ret;

	if (b->n == b->cap && batch_grow(b))
		return -ENOMEM;
	va_start(ap, fmt);
	ret = vasprintf(&b->keys[b->n], fmt, ap);
	va_end(ap);
	if (ret < 0)
		return -ENOMEM;
	b->vlens[b->n] = val ? len : SIZE_MAX;
	if (val)
		memcpy(b->vals[b->n], val, len);
	b->n++;
	return 0;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void now_le(uint8_t out[8])
{
	struct timespec ts;
	uint64_t ns;

	clock_gettime(CLOCK_REALTIME, &ts);
	ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(ns >> (8 * i));
}

/* Under mr->lock: b, if the names object is still at version. */
static int batch_apply(struct meta_rados *mr, const struct batch *b,
		       uint64_t version)
{
	rados_write_op_t op = rados_create_write_op();
	const char **sk = calloc(b->n + 1, sizeof(*sk));
	const char **sv = calloc(b->n + 1, sizeof(*sv));
	const char **rk = calloc(b->n + 1, sizeof(*rk));
	size_t *skl = calloc(b->n + 1, sizeof(*skl));
	size_t *svl = calloc(b->n + 1, sizeof(*svl));
	size_t *rkl = calloc(b->n + 1, sizeof(*rkl));
	size_t ns = 0, nr = 0;
	int ret = -ENOMEM;

	if (!op || !sk || !sv || !rk || !skl || !svl || !rkl)
		goto out;
	for (size_t i = 0; i < b->n; i++) {
		if (b->vlens[i] == SIZE_MAX) {
			rk[nr] = b->keys[i];
			rkl[nr++] = strlen(b->keys[i]);
			continue;
		}
		sk[ns] = b->keys[i];
		skl[ns] = strlen(b->keys[i]);
		sv[ns] = (const char *)b->vals[i];
		svl[ns++] = b->vlens[i];
	}
	rados_write_op_assert_version(op, version);
	if (nr)
		rados_write_op_omap_rm_keys2(op, rk, rkl, nr);
	if (ns)
		rados_write_op_omap_set2(op, sk, sv, skl, svl, ns);
	ret = rados_write_op_operate(op, mr->nio, RADOS_NAMES_OID, NULL, 0);
out:
	if (op)
		rados_release_write_op(op);
	free(sk);
	free(sv);
	free(rk);
	free(skl);
	free(svl);
	free(rkl);
	return ret;
}

/*
 * Under mr->lock: the values of n keys into vals, and the object's
 * version. A value longer than VAL_MAX is corruption.
 */
static int names_get(struct meta_rados *mr, const char *const *keys, size_t n,
		     struct val *vals, uint64_t *version)
{
	rados_read_op_t op = rados_create_read_op();
	rados_omap_iter_t it;
	int prval = 0, ret;

	if (!op)
		return -ENOMEM;
	rados_read_op_omap_get_vals_by_keys(op, keys, n, &it, &prval);
	ret = rados_read_op_operate(op, mr->nio, RADOS_NAMES_OID, 0);
	rados_release_read_op(op);
	if (ret || prval)
		return ret ? ret : prval;
	*version = rados_get_last_version(mr->nio);
	for (size_t i = 0; i < n; i++)
		vals[i].has = false;
	for (;;) {
		char *k, *v;
		size_t kl, vl;

		ret = rados_omap_get_next2(it, &k, &v, &kl, &vl);
		if (ret || !k)
			break;
		for (size_t i = 0; i < n; i++) {
			if (strlen(keys[i]) != kl || memcmp(keys[i], k, kl))
				continue;
			if (vl > VAL_MAX) {
				ret = -EBADMSG;
				break;
			}
			vals[i].has = true;
			vals[i].len = vl;
			memcpy(vals[i].v, v, vl);
		}
	}
	rados_omap_get_end(it);
	return ret;
}

/*
 * Under mr->lock: call fn with each key beginning with prefix (less the
 * prefix) and its value, in order, up to max keys (-E2BIG past them).
 * *version (may be NULL) gets the object's version at the first page.
 */
static int names_each(struct meta_rados *mr, const char *prefix, size_t max,
		      int (*fn)(void *arg, const char *key, const uint8_t *v,
				size_t vl),
		      void *arg, uint64_t *version)
{
	char after[KEY_MAX + 1] = "";
	unsigned char more = 1;
	size_t seen = 0, pl = strlen(prefix);
	int ret = 0;

	while (more && !ret) {
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t it;
		int prval = 0;

		if (!op)
			return -ENOMEM;
		rados_read_op_omap_get_vals2(op, after, prefix, LIST_PAGE, &it,
					     &more, &prval);
		ret = rados_read_op_operate(op, mr->nio, RADOS_NAMES_OID, 0);
		rados_release_read_op(op);
		if (ret || prval)
			return ret ? ret : prval;
		if (version && seen == 0)
			*version = rados_get_last_version(mr->nio);
		for (;;) {
			char *k, *v;
			size_t kl, vl;

			if (rados_omap_get_next2(it, &k, &v, &kl, &vl) || !k)
				break;
			if (kl > KEY_MAX || kl < pl || ++seen > max) {
				ret = kl > KEY_MAX ? -EBADMSG : -E2BIG;
				break;
			}
			memcpy(after, k, kl);
			after[kl] = '\0';
			ret = fn(arg, after + pl, (const uint8_t *)v, vl);
			if (ret)
				break;
		}
		rados_omap_get_end(it);
	}
	return ret;
}

static int count_one(void *arg, const char *key, const uint8_t *v, size_t vl)
{
	(*(unsigned *)arg)++;
	return 0;
}

/* Under mr->lock: the count of names of image id. */
static int names_of(struct meta_rados *mr, const uint8_t id[SNAP_ID_LEN],
		    unsigned *n)
{
	char hex[2 * SNAP_ID_LEN + 1], prefix[2 * SNAP_ID_LEN + 4];

	snap_id_hex(id, hex);
	snprintf(prefix, sizeof(prefix), "r:%s:", hex);
	*n = 0;
	return names_each(mr, prefix, UINT32_MAX, count_one, n, NULL);
}

/* "SNAP" of "SNAP/FILE", into buf. */
static void snap_of(const char *path, char *buf, size_t size)
{
	size_t n = strcspn(path, "/");

	snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), path);
}

/*
 * Run change (under mr->lock) until it is applied at the version it read,
 * at most RETRIES times. change returns 0 with b filled and *version set,
 * or a negative errno (the answer).
 */
static int names_change(struct meta_rados *mr, const char *what,
			int (*change)(struct meta_rados *mr, void *arg,
				      struct batch *b, uint64_t *version),
			void *arg, struct snap_err *err)
{
	int ret = -ERANGE;

	pthread_mutex_lock(&mr->lock);
	for (int i = 0; i < RETRIES && ret == -ERANGE; i++) {
		struct batch b = { 0 };
		uint64_t version = 0;

		ret = change(mr, arg, &b, &version);
		if (!ret && b.n)
			ret = batch_apply(mr, &b, version);
		batch_free(&b);
	}
	pthread_mutex_unlock(&mr->lock);
	switch (ret) {
	case 0:
		return 0;
	case -EEXIST: case -ENOENT: case -ENOTEMPTY: case -EISDIR:
	case -ENOTDIR:
		return snap_err_set(err, ret, "%s: %s", what, strerror(-ret));
	case -ERANGE:
		return snap_err_set(err, -EAGAIN, "%s: names changed by "
				    "others %d times over; try again", what,
				    RETRIES);
	case -EBADMSG:
		return snap_err_set(err, ret, "%s: %s: a corrupt entry",
				    mr->c->name, RADOS_NAMES_OID);
	}
	return meta_rados_fail(mr, ret, what, err);
}

/* ---- changes ------------------------------------------------------------ */

struct name_args {
	const char *from, *to;
	const uint8_t *id;
	bool noreplace;
};

static int do_mkdir(struct meta_rados *mr, void *arg, struct batch *b,
		    uint64_t *version)
{
	struct name_args *a = arg;
	char key[KEY_MAX];
	const char *keys[] = { key };
	uint8_t now[8], ino[8];
	struct val v;
	int ret;

	snprintf(key, sizeof(key), "d:%s", a->from);
	ret = names_get(mr, keys, 1, &v, version);
	if (ret)
		return ret;
	if (v.has)
		return -EEXIST;
	/* Its inode number, for as long as it lives (renames keep it). */
	if (getrandom(ino, sizeof(ino), 0) != sizeof(ino))
		return -errno;
	ino[7] &= 0x3f;		/* never 0, below files' (fs/dir.c) */
	ino[0] |= 1;
	now_le(now);
	ret = batch_add(b, ino, sizeof(ino), "d:%s", a->from);
	return ret ? ret : batch_add(b, now, sizeof(now), "t:%s", a->from);
}

int meta_rados_mkdir(void *ctx, const char *snap, struct snap_err *err)
{
	struct name_args a = { .from = snap };

	return names_change(ctx, snap, do_mkdir, &a, err);
}

static int any_key(void *arg, const char *key, const uint8_t *v, size_t vl)
{
	return -ENOTEMPTY;
}

static int do_rmdir(struct meta_rados *mr, void *arg, struct batch *b,
		    uint64_t *version)
{
	struct name_args *a = arg;
	char key[KEY_MAX], files[KEY_MAX];
	const char *keys[] = { key };
	uint64_t v2 = 0;
	struct val v;
	int ret;

	snprintf(key, sizeof(key), "d:%s", a->from);
	snprintf(files, sizeof(files), "n:%s/", a->from);
	ret = names_get(mr, keys, 1, &v, version);
	if (ret)
		return ret;
	if (!v.has)
		return -ENOENT;
	ret = names_each(mr, files, 1, any_key, NULL, &v2);
	if (ret)
		return ret;
	/* The two reads saw one state, or another host changed it. */
	if (v2 && v2 != *version)
		return -ERANGE;
	ret = batch_add(b, NULL, 0, "d:%s", a->from);
	return ret ? ret : batch_add(b, NULL, 0, "t:%s", a->from);
}

int meta_rados_rmdir(void *ctx, const char *snap, struct snap_err *err)
{
	struct name_args a = { .from = snap };

	return names_change(ctx, snap, do_rmdir, &a, err);
}

/* Name path (a file) for image id made (add) or removed, into b; its
 * snapshot's mtime moves. */
static int name_change(struct batch *b, const char *path,
		       const uint8_t id[SNAP_ID_LEN], bool add)
{
	char hex[2 * SNAP_ID_LEN + 1], snap[SNAP_STORE_NAME_MAX + 1];
	uint8_t now[8];
	int ret;

	snap_id_hex(id, hex);
	snap_of(path, snap, sizeof(snap));
	now_le(now);
	ret = batch_add(b, add ? id : NULL, SNAP_ID_LEN, "n:%s", path);
	if (!ret)
		ret = batch_add(b, add ? "" : NULL, 0, "r:%s:%s", hex, path);
	if (!ret)
		ret = batch_add(b, now, sizeof(now), "t:%s", snap);
	return ret;
}

static int do_link(struct meta_rados *mr, void *arg, struct batch *b,
		   uint64_t *version)
{
	struct name_args *a = arg;
	char snap[SNAP_STORE_NAME_MAX + 1], kd[KEY_MAX], kn[KEY_MAX];
	const char *keys[] = { kd, kn };
	struct val v[2];
	int ret;

	snap_of(a->to, snap, sizeof(snap));
	snprintf(kd, sizeof(kd), "d:%s", snap);
	snprintf(kn, sizeof(kn), "n:%s", a->to);
	ret = names_get(mr, keys, 2, v, version);
	if (ret)
		return ret;
	if (!v[0].has)
		return -ENOENT;
	if (v[1].has)
		return -EEXIST;
	return name_change(b, a->to, a->id, true);
}

int meta_rados_link(void *ctx, const char *path, const uint8_t id[SNAP_ID_LEN],
		    struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	struct name_args a = { .to = path, .id = id };
	char name[META_NAME_MAX], oid[META_NAME_MAX + 2];
	uint64_t size;
	time_t mtime;
	int ret;

	meta_name(name, "images", id, ".ref");
	snprintf(oid, sizeof(oid), "m.%s", name);
	ret = rados_stat(mr->c->io, oid, &size, &mtime);
	if (ret == -ENOENT) {
		char hex[2 * SNAP_ID_LEN + 1];

		snap_id_hex(id, hex);
		return snap_err_set(err, ret, "%s: no image %s", path, hex);
	}
	if (ret)
		return meta_rados_fail(mr, ret, path, err);
	return names_change(mr, path, do_link, &a, err);
}

static int do_unlink(struct meta_rados *mr, void *arg, struct batch *b,
		     uint64_t *version)
{
	struct name_args *a = arg;
	char kn[KEY_MAX];
	const char *keys[] = { kn };
	struct val v;
	int ret;

	snprintf(kn, sizeof(kn), "n:%s", a->from);
	ret = names_get(mr, keys, 1, &v, version);
	if (ret)
		return ret;
	if (!v.has)
		return -ENOENT;
	if (v.len != SNAP_ID_LEN)
		return -EBADMSG;
	return name_change(b, a->from, v.v, false);
}

int meta_rados_unlink(void *ctx, const char *path, struct snap_err *err)
{
	struct name_args a = { .from = path };

	return names_change(ctx, path, do_unlink, &a, err);
}

int meta_rados_lookup(void *ctx, const char *path, uint8_t id[SNAP_ID_LEN],
		      unsigned *nlink, struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	char kn[KEY_MAX];
	const char *keys[] = { kn };
	uint64_t version;
	struct val v;
	int ret;

	snprintf(kn, sizeof(kn), "n:%s", path);
	pthread_mutex_lock(&mr->lock);
	ret = names_get(mr, keys, 1, &v, &version);
	if (!ret && !v.has)
		ret = -ENOENT;
	if (!ret && v.len != SNAP_ID_LEN)
		ret = -EBADMSG;
	if (!ret) {
		memcpy(id, v.v, SNAP_ID_LEN);
		if (nlink)
			ret = names_of(mr, id, nlink);
	}
	pthread_mutex_unlock(&mr->lock);
	if (ret == -ENOENT)
		return snap_err_set(err, ret, "%s: %s", path, strerror(-ret));
	if (ret == -EBADMSG)
		return snap_err_set(err, ret, "%s: a corrupt name", path);
	return ret ? meta_rados_fail(mr, ret, path, err) : 0;
}

static int do_rename_file(struct meta_rados *mr, void *arg, struct batch *b,
			  uint64_t *version)
{
	struct name_args *a = arg;
	char snap[SNAP_STORE_NAME_MAX + 1], kf[KEY_MAX], kt[KEY_MAX];
	char kd[KEY_MAX];
	const char *keys[] = { kf, kt, kd };
	struct val v[3];
	int ret;

	snap_of(a->to, snap, sizeof(snap));
	snprintf(kf, sizeof(kf), "n:%s", a->from);
	snprintf(kt, sizeof(kt), "n:%s", a->to);
	snprintf(kd, sizeof(kd), "d:%s", snap);
	ret = names_get(mr, keys, 3, v, version);
	if (ret)
		return ret;
	if (!v[0].has || !v[2].has)
		return -ENOENT;
	if ((v[0].has && v[0].len != SNAP_ID_LEN) ||
	    (v[1].has && v[1].len != SNAP_ID_LEN))
		return -EBADMSG;
	if (v[1].has && a->noreplace)
		return -EEXIST;
	/* One name, or two names of one image: rename(2) changes nothing. */
	if (!strcmp(a->from, a->to) ||
	    (v[1].has && !memcmp(v[0].v, v[1].v, SNAP_ID_LEN)))
		return 0;
	ret = 0;
	if (v[1].has)
		ret = name_change(b, a->to, v[1].v, false);
	if (!ret)
		ret = name_change(b, a->from, v[0].v, false);
	if (!ret)
		ret = name_change(b, a->to, v[0].v, true);
	return ret;
}

struct moving {
	struct batch *b;
	const char *from, *to;
};

/* File of snapshot m->from (id v): its name moves into m->to. */
static int move_file(void *arg, const char *file, const uint8_t *v, size_t vl)
{
	struct moving *m = arg;
	char hex[2 * SNAP_ID_LEN + 1];
	int ret;

	if (vl != SNAP_ID_LEN)
		return -EBADMSG;
	snap_id_hex(v, hex);
	ret = batch_add(m->b, NULL, 0, "n:%s/%s", m->from, file);
	if (!ret)
		ret = batch_add(m->b, NULL, 0, "r:%s:%s/%s", hex, m->from, file);
	if (!ret)
		ret = batch_add(m->b, v, vl, "n:%s/%s", m->to, file);
	if (!ret)
		ret = batch_add(m->b, "", 0, "r:%s:%s/%s", hex, m->to, file);
	return ret;
}

static int do_rename_snap(struct meta_rados *mr, void *arg, struct batch *b,
			  uint64_t *version)
{
	struct name_args *a = arg;
	struct moving m = { b, a->from, a->to };
	char kf[KEY_MAX], kt[KEY_MAX], files[KEY_MAX];
	uint8_t now[8];
	const char *keys[] = { kf, kt };
	uint64_t v2 = 0;
	struct val v[2];
	int ret;

	snprintf(kf, sizeof(kf), "d:%s", a->from);
	snprintf(kt, sizeof(kt), "d:%s", a->to);
	ret = names_get(mr, keys, 2, v, version);
	if (ret)
		return ret;
	if (!v[0].has)
		return -ENOENT;
	if (!strcmp(a->from, a->to))
		return 0;
	if (v[1].has && a->noreplace)
		return -EEXIST;
	if (v[1].has) {	/* replaced only when empty, as by rename(2) */
		snprintf(files, sizeof(files), "n:%s/", a->to);
		ret = names_each(mr, files, 1, any_key, NULL, &v2);
		if (ret)
			return ret;
		if (v2 && v2 != *version)
			return -ERANGE;
	}
	now_le(now);
	ret = batch_add(b, NULL, 0, "d:%s", a->from);
	if (!ret)
		ret = batch_add(b, NULL, 0, "t:%s", a->from);
	if (!ret)
		ret = batch_add(b, v[0].v, v[0].len, "d:%s", a->to);
	if (!ret)
		ret = batch_add(b, now, sizeof(now), "t:%s", a->to);
	snprintf(files, sizeof(files), "n:%s/", a->from);
	if (!ret)
		ret = names_each(mr, files, DIR_FILES_MAX, move_file, &m, &v2);
	if (!ret && v2 && v2 != *version)
		ret = -ERANGE;
	return ret;
}

int meta_rados_rename(void *ctx, const char *from, const char *to,
		      bool noreplace, struct snap_err *err)
{
	struct name_args a = { .from = from, .to = to, .noreplace = noreplace };
	char what[2 * KEY_MAX];

	snprintf(what, sizeof(what), "%s -> %s", from, to);
	return names_change(ctx, what, strchr(from, '/') ? do_rename_file
							: do_rename_snap,
			    &a, err);
}

struct listing {
	char **names;
	size_t n, cap;
};

static int list_one(void *arg, const char *key, const uint8_t *v, size_t vl)
{
	struct listing *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **p = realloc(l->names, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->names = p;
		l->cap = cap;
	}
	l->names[l->n] = strdup(key);
	return l->names[l->n++] ? 0 : -ENOMEM;
}

int meta_rados_list(void *ctx, const char *snap,
		    int (*fn)(void *arg, const char *entry), void *arg,
		    struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	struct listing l = { 0 };
	char prefix[KEY_MAX], kd[KEY_MAX];
	const char *keys[] = { kd };
	uint64_t version;
	struct val v;
	int ret = 0;

	snprintf(prefix, sizeof(prefix), snap ? "n:%s/" : "d:",
		 snap ? snap : "");
	pthread_mutex_lock(&mr->lock);
	if (snap) {
		snprintf(kd, sizeof(kd), "d:%s", snap);
		ret = names_get(mr, keys, 1, &v, &version);
		if (!ret && !v.has)
			ret = -ENOENT;
	}
	if (!ret)
		ret = names_each(mr, prefix, UINT32_MAX, list_one, &l, NULL);
	pthread_mutex_unlock(&mr->lock);
	/* fn runs without the lock: it may call back into the store. */
	for (size_t i = 0; i < l.n; i++) {
		if (!ret)
			ret = fn(arg, l.names[i]);
		free(l.names[i]);
	}
	free(l.names);
	if (ret == -ENOENT && snap)
		return snap_err_set(err, ret, "%s: %s", snap, strerror(-ret));
	if (ret == -ENOMEM)
		return snap_err_set(err, ret, "%s: out of memory", mr->c->name);
	return ret < 0 ? meta_rados_fail(mr, ret, snap ? snap : "names", err)
		       : ret;
}

int meta_rados_stat(void *ctx, const char *snap, struct stat *st,
		    struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	char kd[KEY_MAX], kt[KEY_MAX];
	const char *keys[] = { kd, kt };
	uint64_t version, ns = 0, size;
	time_t mtime = 0;
	struct val v[2];
	int ret;

	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	if (!snap) {
		st->st_ino = 1;
		ret = rados_stat(mr->nio, RADOS_NAMES_OID, &size, &mtime);
		ns = (uint64_t)mtime * 1000000000ull;
	} else {
		snprintf(kd, sizeof(kd), "d:%s", snap);
		snprintf(kt, sizeof(kt), "t:%s", snap);
		pthread_mutex_lock(&mr->lock);
		ret = names_get(mr, keys, 2, v, &version);
		pthread_mutex_unlock(&mr->lock);
		if (!ret && !v[0].has)
			ret = -ENOENT;
		if (!ret && (v[0].len != 8 || !v[1].has || v[1].len != 8))
			ret = -EBADMSG;
		if (!ret) {
			st->st_ino = (ino_t)le64(v[0].v);
			ns = le64(v[1].v);
		}
	}
	if (ret == -ENOENT)
		return snap_err_set(err, ret, "%s: %s", snap, strerror(-ret));
	if (ret == -EBADMSG)
		return snap_err_set(err, ret, "%s: a corrupt snapshot entry",
				    snap);
	if (ret)
		return meta_rados_fail(mr, ret, snap ? snap : "names", err);
	st->st_mtim.tv_sec = (time_t)(ns / 1000000000ull);
	st->st_mtim.tv_nsec = (long)(ns % 1000000000ull);
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
	return 0;
}

int meta_rados_nlink(void *ctx, const uint8_t id[SNAP_ID_LEN],
		     unsigned *nlink, struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	int ret;

	pthread_mutex_lock(&mr->lock);
	ret = names_of(mr, id, nlink);
	pthread_mutex_unlock(&mr->lock);
	return ret ? meta_rados_fail(mr, ret, "names", err) : 0;
}

int meta_rados_sync_names(void *ctx, const char *snap, struct snap_err *err)
{
	return 0;	/* every change was durable when it returned */
}
