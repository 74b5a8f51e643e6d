/* SPDX-License-Identifier: MIT */
/*
 * The omap of the names object (meta_rados.h): reading keys, walking a
 * prefix in pages, and changing keys in one operation that asserts the
 * version read, again while others changed it in between. The names
 * object is reached through an I/O context of its own (mr->nio), used
 * under mr->lock, so that the version librados reports after a read is
 * that read's.
 */
#include "snapshot/store/meta_rados.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot/store/store_int.h"

void batch_free(struct batch *b)
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

int batch_add(struct batch *b, const void *val, size_t len,
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

uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void now_le(uint8_t out[8])
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
int names_get(struct meta_rados *mr, const char *const *keys, size_t n,
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
int names_each(struct meta_rados *mr, const char *prefix, size_t max,
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
int names_of(struct meta_rados *mr, const uint8_t id[SNAP_ID_LEN],
	     unsigned *n)
{
	char hex[2 * SNAP_ID_LEN + 1], prefix[2 * SNAP_ID_LEN + 4];

	snap_id_hex(id, hex);
	snprintf(prefix, sizeof(prefix), "r:%s:", hex);
	*n = 0;
	return names_each(mr, prefix, UINT32_MAX, count_one, n, NULL);
}

/* "SNAP" of "SNAP/FILE", into buf. */
void snap_of(const char *path, char *buf, size_t size)
{
	size_t n = strcspn(path, "/");

	snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), path);
}

/*
 * Run change (under mr->lock) until it is applied at the version it read,
 * at most RETRIES times. change returns 0 with b filled and *version set,
 * or a negative errno (the answer).
 */
int names_change(struct meta_rados *mr, const char *what,
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

