/* SPDX-License-Identifier: MIT */
/*
 * Names of a store in RADOS (meta.h): the omap of one object, "names"
 * (meta_rados.h has its keys). Every change reads what it depends on,
 * then writes in one operation that asserts the object's version has not
 * moved since (meta_rados_omap.c): so each is atomic, across hosts too,
 * as mkdir(2), link(2) and rename(2) are on one filesystem.
 */
#include "snapshot/store/meta_rados.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "snapshot/store/store_int.h"

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
