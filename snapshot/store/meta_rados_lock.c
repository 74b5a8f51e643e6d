/* SPDX-License-Identifier: MIT */
/*
 * The locks of a store in RADOS and the records of what each open holds
 * (meta.h, meta_rados.h), all on one object, "lock".
 *
 * Locks are RADOS object locks (cls_lock) with a lease: a thread renews
 * every lock held a third of a lease apart, so that a host that died
 * lets go of them after at most a lease, and a host that could not renew
 * says so once. RADOS has no conversion of a lock: gc lets go of its
 * shared "write" lock, tries the exclusive one, and takes the shared one
 * back when refused; it holds "gc" meanwhile, so no other gc can take
 * "write" in between.
 *
 * An open's record is the value of "o.<cookie>" in the object's omap,
 * where cookie is the one its locks carry: the record of an open is
 * alive while that open holds "open", and gc removes the others.
 */
#include "snapshot/store/meta_rados.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define LOCK_OPEN	"open"
#define LOCK_WRITE	"write"
#define LOCK_GC		"gc"
#define RECORD_PREFIX	"o."
#define RECORD_PAGE	32
#define LOCK_NAME_MAX	(sizeof("image.") + 2 * SNAP_ID_LEN)

static int lock_named(struct meta_rados *mr, const char *name, bool exclusive,
		      uint8_t flags)
{
	struct timeval lease = { mr->lease_s, 0 };

	if (exclusive)
		return rados_lock_exclusive(mr->c->io, RADOS_LOCK_OID, name,
					    mr->cookie, "snapfs", &lease,
					    flags);
	return rados_lock_shared(mr->c->io, RADOS_LOCK_OID, name, mr->cookie,
				 "", "snapfs", &lease, flags);
}

static void unlock_named(struct meta_rados *mr, const char *name)
{
	rados_unlock(mr->c->io, RADOS_LOCK_OID, name, mr->cookie);
}

static void image_lock_name(const uint8_t id[SNAP_ID_LEN],
			    char name[LOCK_NAME_MAX])
{
	char hex[2 * SNAP_ID_LEN + 1];

	snap_id_hex(id, hex);
	snprintf(name, LOCK_NAME_MAX, "image.%s", hex);
}

static int64_t now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

/* Under mr->lock; read without it by meta_rados_lease_check. */
static void set_write_held(struct meta_rados *mr, bool held)
{
	__atomic_store_n(&mr->write_held, held, __ATOMIC_RELAXED);
}

/* Under mr->lock: renew everything held; 0, or the first failure. */
static int renew(struct meta_rados *mr)
{
	const uint8_t again = LIBRADOS_LOCK_FLAG_MAY_RENEW;
	char name[LOCK_NAME_MAX];
	int ret = 0;

	if (mr->open_held)
		ret = lock_named(mr, LOCK_OPEN, false, again);
	if (!ret && mr->write_held)
		ret = lock_named(mr, LOCK_WRITE, mr->gc_held, again);
	if (!ret && mr->gc_held)
		ret = lock_named(mr, LOCK_GC, true, again);
	for (size_t i = 0; i < mr->nheld && !ret; i++) {
		image_lock_name(mr->held[i], name);
		ret = lock_named(mr, name, true, again);
	}
	return ret;
}

static void *lease_main(void *arg)
{
	struct meta_rados *mr = arg;
	struct timespec until;
	int64_t asked;

	pthread_mutex_lock(&mr->lock);
	while (!mr->stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += mr->lease_s / 3;
		pthread_cond_timedwait(&mr->stop_cond, &mr->lock, &until);
		if (mr->stopping)
			break;
		asked = now_s();
		/* Too late: another host may have held them meanwhile, and
		 * what this open knows of the store may be old. For good. */
		if (asked - mr->renewed_at >= mr->lease_s)
			__atomic_store_n(&mr->lapsed, true, __ATOMIC_RELAXED);
		if (!renew(mr)) {
			__atomic_store_n(&mr->renewed_at, asked,
					 __ATOMIC_RELAXED);
			mr->lease_lost = false;
		} else if (!mr->lease_lost) {
			fprintf(stderr, "%s: renewing the store's locks "
				"failed; another host may take them over\n",
				mr->c->name);
			mr->lease_lost = true;
		}
	}
	pthread_mutex_unlock(&mr->lock);
	return NULL;
}

/* Without mr->lock, which a renewal holds for its round trips. A writer
 * holds "write" as long as any image's lock, and took it first. */
int meta_rados_lease_check(struct meta_rados *mr, const char *what,
			   struct snap_err *err)
{
	if (!__atomic_load_n(&mr->writer, __ATOMIC_RELAXED))
		return 0;
	if (!__atomic_load_n(&mr->write_held, __ATOMIC_RELAXED))
		return snap_err_set(err, -EIO, "%s: %s: the store's write lock "
				    "was lost (taken back after a gc was "
				    "refused): nothing more is written (mount "
				    "it again)", mr->c->name, what);
	if (!__atomic_load_n(&mr->lapsed, __ATOMIC_RELAXED) &&
	    now_s() - __atomic_load_n(&mr->renewed_at, __ATOMIC_RELAXED) <
	    mr->lease_s)
		return 0;
	return snap_err_set(err, -EIO, "%s: %s: the store's locks were not "
			    "renewed for %d s, so another host may hold them "
			    "now: nothing more is written (mount it again)",
			    mr->c->name, what, mr->lease_s);
}

/* Under mr->lock. */
static int lease_start(struct meta_rados *mr)
{
	int ret;

	if (mr->lease_running)
		return 0;
	ret = -pthread_create(&mr->lease, NULL, lease_main, mr);
	mr->lease_running = !ret;
	return ret;
}

/* Under mr->lock: gc's locks, or none and an error naming who is in the
 * way. */
static int lock_gc(struct meta_rados *mr, struct snap_err *err)
{
	int ret;

	if (!mr->write_held)
		return snap_err_set(err, -EROFS, "%s: gc needs the store open "
				    "for writing", mr->c->name);
	ret = lock_named(mr, LOCK_GC, true, 0);
	if (ret == -EBUSY || ret == -EEXIST)
		return snap_err_set(err, -EBUSY, "%s: gc is running on another "
				    "host or process", mr->c->name);
	if (ret)
		return meta_rados_fail(mr, ret, "gc lock", err);
	unlock_named(mr, LOCK_WRITE);
	ret = lock_named(mr, LOCK_WRITE, true, 0);
	if (!ret) {
		mr->gc_held = true;
		return 0;
	}
	set_write_held(mr, !lock_named(mr, LOCK_WRITE, false, 0));
	unlock_named(mr, LOCK_GC);
	if (ret == -EBUSY || ret == -EEXIST)
		return snap_err_set(err, -EBUSY, "%s: another host or process "
				    "has the store open for writing; gc marks "
				    "what readers hold, but not what another "
				    "writer may be adding, so it needs to be "
				    "the only writer", mr->c->name);
	return meta_rados_fail(mr, ret, "gc's write lock", err);
}

int meta_rados_lock(void *ctx, enum meta_lock which, struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	int ret;

	pthread_mutex_lock(&mr->lock);
	switch (which) {
	case META_LOCK_OPEN:
		ret = lock_named(mr, LOCK_OPEN, false, 0);
		mr->open_held = !ret;
		break;
	case META_LOCK_WRITE:
		/* Its lease runs from when it was asked for, at the latest;
		 * every image lock a writer takes comes after it. */
		__atomic_store_n(&mr->renewed_at, now_s(), __ATOMIC_RELAXED);
		ret = lock_named(mr, LOCK_WRITE, false, 0);
		set_write_held(mr, !ret);
		__atomic_store_n(&mr->writer, !ret, __ATOMIC_RELAXED);
		break;
	case META_LOCK_GC:
		ret = lock_gc(mr, err);
		if (!ret)
			ret = lease_start(mr);
		pthread_mutex_unlock(&mr->lock);
		return ret;
	default:
		ret = -EINVAL;
	}
	if (!ret)
		ret = lease_start(mr);
	pthread_mutex_unlock(&mr->lock);
	if (ret == -EBUSY || ret == -EEXIST)
		return snap_err_set(err, -EBUSY, "%s: %s: held by gc on "
				    "another host or process", mr->c->name,
				    which == META_LOCK_OPEN ? "open" : "write");
	return ret ? meta_rados_fail(mr, ret, "lock", err) : 0;
}

void meta_rados_unlock(void *ctx, enum meta_lock which)
{
	struct meta_rados *mr = ctx;

	pthread_mutex_lock(&mr->lock);
	switch (which) {
	case META_LOCK_GC:
		if (!mr->gc_held)
			break;
		unlock_named(mr, LOCK_WRITE);
		set_write_held(mr, !lock_named(mr, LOCK_WRITE, false, 0));
		unlock_named(mr, LOCK_GC);
		mr->gc_held = false;
		break;
	case META_LOCK_OPEN:
		unlock_named(mr, LOCK_OPEN);
		mr->open_held = false;
		break;
	case META_LOCK_WRITE:
		unlock_named(mr, LOCK_WRITE);
		set_write_held(mr, false);
		__atomic_store_n(&mr->writer, false, __ATOMIC_RELAXED);
		break;
	}
	pthread_mutex_unlock(&mr->lock);
}

/* ---- images ------------------------------------------------------------ */

/* Under mr->lock: where id is in mr->held, or nheld. */
static size_t held_at(const struct meta_rados *mr,
		      const uint8_t id[SNAP_ID_LEN])
{
	size_t i = 0;

	while (i < mr->nheld && memcmp(mr->held[i], id, SNAP_ID_LEN))
		i++;
	return i;
}

int meta_rados_lock_image(void *ctx, const uint8_t id[SNAP_ID_LEN],
			  struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	char name[LOCK_NAME_MAX];
	int ret = 0;

	image_lock_name(id, name);
	pthread_mutex_lock(&mr->lock);
	if (held_at(mr, id) < mr->nheld)
		goto out;
	if (mr->nheld == mr->capheld) {
		size_t cap = mr->capheld ? 2 * mr->capheld : 16;
		void *p = realloc(mr->held, cap * sizeof(*mr->held));

		if (!p) {
			ret = -ENOMEM;
			goto out;
		}
		mr->held = p;
		mr->capheld = cap;
	}
	ret = lock_named(mr, name, true, 0);
	if (!ret)
		memcpy(mr->held[mr->nheld++], id, SNAP_ID_LEN);
	if (!ret)
		ret = lease_start(mr);
out:
	pthread_mutex_unlock(&mr->lock);
	if (ret == -EBUSY || ret == -EEXIST)
		return snap_err_set(err, -EBUSY, "%s: being written by another "
				    "host or process", name);
	if (ret == -ENOMEM)
		return snap_err_set(err, ret, "%s: out of memory", name);
	return ret ? meta_rados_fail(mr, ret, name, err) : 0;
}

void meta_rados_unlock_image(void *ctx, const uint8_t id[SNAP_ID_LEN])
{
	struct meta_rados *mr = ctx;
	char name[LOCK_NAME_MAX];
	size_t i;

	image_lock_name(id, name);
	pthread_mutex_lock(&mr->lock);
	i = held_at(mr, id);
	if (i < mr->nheld) {
		unlock_named(mr, name);
		memmove(mr->held[i], mr->held[i + 1],
			(mr->nheld - i - 1) * sizeof(*mr->held));
		mr->nheld--;
	}
	pthread_mutex_unlock(&mr->lock);
}

/* ---- open records ------------------------------------------------------ */

int meta_rados_publish(void *ctx, const void *buf, size_t len,
		       struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	rados_write_op_t op = rados_create_write_op();
	char key[sizeof(RECORD_PREFIX) + sizeof(mr->cookie)];
	const char *keys[1] = { key };
	const char *vals[1] = { buf };
	size_t klen;
	int ret;

	if (!op)
		return snap_err_set(err, -ENOMEM, "%s: out of memory",
				    mr->c->name);
	klen = (size_t)snprintf(key, sizeof(key), RECORD_PREFIX "%s",
				mr->cookie);
	if (len)
		rados_write_op_omap_set2(op, keys, vals, &klen, &len, 1);
	else
		rados_write_op_omap_rm_keys(op, keys, 1);
	ret = rados_write_op_operate(op, mr->c->io, RADOS_LOCK_OID, NULL, 0);
	rados_release_write_op(op);
	return ret ? meta_rados_fail(mr, ret, "open record", err) : 0;
}

/* The cookies of the live holders of "open", NUL after each (*n bytes). */
static int open_cookies(struct meta_rados *mr, char **out, size_t *n)
{
	size_t tl = 64, cl = 4096, kl = 4096, al = 4096;
	char *tag = NULL, *clients = NULL, *cookies = NULL, *addrs = NULL;
	int exclusive, ret;

	for (int tries = 0; tries < 8; tries++) {
		free(tag);
		free(clients);
		free(cookies);
		free(addrs);
		tag = malloc(tl);
		clients = malloc(cl);
		cookies = malloc(kl);
		addrs = malloc(al);
		if (!tag || !clients || !cookies || !addrs) {
			ret = -ENOMEM;
			break;
		}
		ret = (int)rados_list_lockers(mr->c->io, RADOS_LOCK_OID,
					      LOCK_OPEN, &exclusive, tag, &tl,
					      clients, &cl, cookies, &kl,
					      addrs, &al);
		if (ret != -ERANGE)
			break;
	}
	free(tag);
	free(clients);
	free(addrs);
	if (ret < 0) {
		free(cookies);
		return ret;
	}
	*out = cookies;
	*n = ret ? kl : 0;
	return 0;
}

static bool cookie_in(const char *cookies, size_t n, const char *cookie)
{
	size_t want = strlen(cookie);

	for (size_t at = 0; at < n;) {
		size_t len = strnlen(cookies + at, n - at);

		if (len == want && !memcmp(cookies + at, cookie, len))
			return true;
		at += len + 1;
	}
	return false;
}

/* Remove the records of opens that are gone (best effort: the next gc
 * tries again). */
static void drop_records(struct meta_rados *mr, char **keys, size_t n)
{
	rados_write_op_t op;

	if (!n || !(op = rados_create_write_op()))
		return;
	rados_write_op_omap_rm_keys(op, (const char *const *)keys, n);
	rados_write_op_operate(op, mr->c->io, RADOS_LOCK_OID, NULL, 0);
	rados_release_write_op(op);
}

int meta_rados_records(void *ctx,
		       int (*fn)(void *arg, const uint8_t *buf, size_t len),
		       void *arg, struct snap_err *err)
{
	struct meta_rados *mr = ctx;
	char after[sizeof(RECORD_PREFIX) + sizeof(mr->cookie)] = "";
	char *cookies, **gone = NULL;
	size_t ncookies, ngone = 0;
	unsigned char more = 1;
	int ret;

	ret = open_cookies(mr, &cookies, &ncookies);
	if (ret)
		return meta_rados_fail(mr, ret, "listing opens", err);
	while (more && !ret) {
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t it;
		int prval = 0;

		if (!op) {
			ret = -ENOMEM;
			break;
		}
		rados_read_op_omap_get_vals2(op, after, RECORD_PREFIX,
					     RECORD_PAGE, &it, &more, &prval);
		ret = rados_read_op_operate(op, mr->c->io, RADOS_LOCK_OID, 0);
		rados_release_read_op(op);
		if (ret == -ENOENT)	/* no lock object: nobody open */
			ret = more = 0;
		if (ret || prval) {
			ret = ret ? ret : prval;
			break;
		}
		for (;;) {
			char *k, *v, *cookie;
			size_t kl, vl;
			void *p;

			if (rados_omap_get_next2(it, &k, &v, &kl, &vl) || !k)
				break;
			if (kl >= sizeof(after)) {
				ret = -EBADMSG;
				break;
			}
			memcpy(after, k, kl);
			after[kl] = '\0';
			cookie = after + strlen(RECORD_PREFIX);
			if (!strcmp(cookie, mr->cookie))
				continue;
			if (cookie_in(cookies, ncookies, cookie)) {
				ret = fn(arg, (const uint8_t *)v, vl);
				if (ret)
					break;
				continue;
			}
			p = realloc(gone, (ngone + 1) * sizeof(*gone));
			if (!p || !(((char **)p)[ngone] = strdup(after))) {
				gone = p ? p : gone;
				ret = -ENOMEM;
				break;
			}
			gone = p;
			ngone++;
		}
		rados_omap_get_end(it);
	}
	if (!ret)
		drop_records(mr, gone, ngone);
	for (size_t i = 0; i < ngone; i++)
		free(gone[i]);
	free(gone);
	free(cookies);
	if (ret == -ENOMEM)
		return snap_err_set(err, ret, "%s: open records: out of memory",
				    mr->c->name);
	if (ret == -EBADMSG)
		return snap_err_set(err, ret, "%s: open records: a key of %zu "
				    "bytes or more", mr->c->name, sizeof(after));
	return ret < 0 ? meta_rados_fail(mr, ret, "open records", err) : ret;
}

void meta_rados_locks_end(struct meta_rados *mr)
{
	char name[LOCK_NAME_MAX];

	pthread_mutex_lock(&mr->lock);
	mr->stopping = true;
	pthread_cond_signal(&mr->stop_cond);
	pthread_mutex_unlock(&mr->lock);
	if (mr->lease_running)
		pthread_join(mr->lease, NULL);
	for (size_t i = 0; i < mr->nheld; i++) {
		image_lock_name(mr->held[i], name);
		unlock_named(mr, name);
	}
	mr->nheld = 0;
	if (mr->gc_held)
		unlock_named(mr, LOCK_GC);
	if (mr->write_held)
		unlock_named(mr, LOCK_WRITE);
	if (mr->open_held) {
		meta_rados_publish(mr, NULL, 0, NULL);
		unlock_named(mr, LOCK_OPEN);
	}
}
