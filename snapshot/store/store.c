/* SPDX-License-Identifier: MIT */
/*
 * The store: opening it, its locks, and its names. A store in a
 * directory:
 *
 *   STORE/store.bin            StoreInfo (chunk size), written last by init
 *   STORE/lock                 flock: shared by every open, exclusive for gc
 *   STORE/lock.write           flock: exclusive, the one writing process
 *   STORE/chunks/              the directory backend's chunks
 *   STORE/images/<id>          ImageInfo: the image's head delta
 *   STORE/images/<id>.ref      FileRef: the image's id; every name is a
 *                              hard link of it, so its link count less one
 *                              is the image's count of names
 *   STORE/deltas/<id>          a delta's journal of DeltaFrames
 *   STORE/snapshots/NAME/FILE  names: hard links of images/<id>.ref
 *
 * (as meta_dir.c keeps them; meta.h says what any other place must do).
 * Here, what every place shares: checking names, read-only stores, and
 * the ctime of images whose names change.
 */
#include "snapshot/store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/rados_conn.h"

/* How long an open waits for a gc another process runs, and how often it
 * looks again. */
#define GC_WAIT_MS		10000
#define GC_WAIT_STEP_MS		20

#define CACHE_DEFAULT	(256u << 20)
#define CHUNK_CACHE_DEFAULT	(1ull << 30)	/* the local tier, in RADOS */
#define DIRTY_DEFAULT	(64u << 20)
#define FETCH_DEFAULT	4
#define ZSTD_DEFAULT	1

static const char *const store_dirs[] = {
	"chunks", "chunks/packs",
};

void snap_id_hex(const uint8_t id[SNAP_ID_LEN], char out[2 * SNAP_ID_LEN + 1])
{
	snap_hex(id, SNAP_ID_LEN, out);
}

void meta_name(char buf[META_NAME_MAX], const char *folder,
	       const uint8_t id[SNAP_ID_LEN], const char *suffix)
{
	char hex[2 * SNAP_ID_LEN + 1];

	snap_id_hex(id, hex);
	snprintf(buf, META_NAME_MAX, "%s/%s%s", folder, hex, suffix);
}

int store_new_id(uint8_t id[SNAP_ID_LEN])
{
	return getrandom(id, SNAP_ID_LEN, 0) == SNAP_ID_LEN ? 0 : -errno;
}

uint64_t store_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t snap_store_put_bytes(struct snap_store *s)
{
	return __atomic_load_n(&s->put_bytes, __ATOMIC_RELAXED);
}

uint32_t snap_store_chunk_size(const struct snap_store *s)
{
	return s->chunk_size;
}

const char *snap_store_path(const struct snap_store *s)
{
	return s->dir;
}

static bool dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return false;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

/* A new store in RADOS: its namespace empty, then store.bin last. */
static int init_rados(const char *name, struct store_info *si,
		      struct snap_err *err)
{
	struct rados_conn *c;
	struct snap_meta m;
	int ret;

	ret = rados_conn_open(name, NULL, &c, err);
	if (ret)
		return ret;
	si->packs = false;	/* a chunk is an object there */
	ret = meta_rados_init(c, err);
	if (!ret)
		ret = meta_rados_open(c, &m, err);
	rados_conn_put(c);
	if (ret)
		return ret;
	ret = meta_store_write(&m, si, err);
	if (ret)
		snap_err_prefix(err, ret, "%s", name);
	m.ops->free(m.ctx);
	return ret;
}

int snap_store_init(const char *dir, uint32_t chunk_size,
		    struct snap_err *err)
{
	struct store_info si = { .chunk_size = chunk_size, .packs = true };
	struct snap_meta m;
	char path[4096];
	int ret;

	if (chunk_size < SNAP_CHUNK_MIN || chunk_size > SNAP_CHUNK_MAX ||
	    (chunk_size & (chunk_size - 1)))
		return snap_err_set(err, -EINVAL, "chunk size %u: expected a "
				    "power of two in [%u, %u]", chunk_size,
				    SNAP_CHUNK_MIN, SNAP_CHUNK_MAX);
	ret = store_new_id(si.id);
	if (ret)
		return snap_err_set(err, ret, "getrandom: %s", strerror(-ret));
	si.created_ns = store_now_ns();
	if (rados_is_name(dir))
		return init_rados(dir, &si, err);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return snap_err_set(err, -errno, "%s: %m", dir);
	if (!dir_is_empty(dir))
		return snap_err_set(err, -EEXIST, "%s: not an empty directory",
				    dir);
	for (size_t i = 0; i < sizeof(store_dirs) / sizeof(*store_dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, store_dirs[i]);
		if (mkdir(path, 0755))
			return snap_err_set(err, -errno, "%s: %m", path);
	}
	ret = meta_dir_init(dir, err);
	if (ret)
		return ret;
	ret = meta_dir_open(dir, &m, err);
	if (ret)
		return ret;
	ret = meta_store_write(&m, &si, err);
	if (ret)
		snap_err_prefix(err, ret, "%s", dir);
	m.ops->free(m.ctx);
	return ret;
}

/* Take lock which, waiting out a gc of another process (snapfs's, in the
 * background), which is short: -EBUSY when it is still in the way. */
static int lock_past_gc(struct snap_store *s, enum meta_lock which,
			struct snap_err *err)
{
	struct snap_meta *m = &s->meta;
	int ret;

	for (int ms = 0;; ms += GC_WAIT_STEP_MS) {
		ret = m->ops->lock(m->ctx, which, err);
		if (ret != -EBUSY || ms >= GC_WAIT_MS)
			break;
		usleep(GC_WAIT_STEP_MS * 1000);
	}
	if (ret == -EBUSY)
		return snap_err_set(err, ret, "%s: gc has been running in "
				    "another %s for %d s", s->dir,
				    s->rados ? "host or process" : "process",
				    GC_WAIT_MS / 1000);
	return ret ? snap_err_prefix(err, ret, "%s", s->dir) : 0;
}

/*
 * Its shared lock, and with write, the writer's lock: the only writer's
 * (a directory), or one of the writers' (RADOS), which only a gc holds
 * against it.
 */
static int store_lock(struct snap_store *s, struct snap_err *err)
{
	struct snap_meta *m = &s->meta;
	int ret;

	ret = lock_past_gc(s, META_LOCK_OPEN, err);
	if (ret || s->rdonly)
		return ret;
	if (s->shared)
		return lock_past_gc(s, META_LOCK_WRITE, err);
	ret = m->ops->lock(m->ctx, META_LOCK_WRITE, err);
	if (ret == -EBUSY)
		return snap_err_set(err, ret, "%s: open for writing by another "
				    "process", s->dir);
	if (ret)
		return snap_err_prefix(err, ret, "%s", s->dir);
	return 0;
}

/* s->meta, where s->dir names: a directory, or a pool of RADOS. */
static int open_place(struct snap_store *s, struct snap_err *err)
{
	int ret;

	if (!rados_is_name(s->dir))
		return meta_dir_open(s->dir, &s->meta, err);
	ret = rados_conn_open(s->dir, NULL, &s->rados, err);
	return ret ? ret : meta_rados_open(s->rados, &s->meta, err);
}

int snap_store_name(const char *name, char *out, size_t size)
{
	char *real = rados_is_name(name) ? strdup(name) : realpath(name, NULL);
	int ret = 0;

	if (!real)
		return -errno;
	if (snprintf(out, size, "%s", real) >= (int)size)
		ret = -ENAMETOOLONG;
	free(real);
	return ret;
}

int snap_store_statfs(struct snap_store *s, struct statvfs *sv,
		      struct snap_err *err)
{
	return s->meta.ops->statfs(s->meta.ctx, sv, err);
}

/*
 * Put the cache tier in front of the RADOS backend. On failure the
 * backend stays as it was (the cache leaves it to us), and close frees it.
 */
static int cache_tier(struct snap_store *s,
		      const struct snap_store_opts *opts, struct snap_err *err)
{
	struct snap_backend remote = s->backend;

	return snap_backend_cache(&remote, opts->chunk_cache_dir,
				  opts->chunk_cache_bytes ?
				  opts->chunk_cache_bytes : CHUNK_CACHE_DEFAULT,
				  &s->backend, err);
}

int snap_store_open(const char *dir, const struct snap_store_opts *opts,
		    struct snap_store **out, struct snap_err *err)
{
	static const struct snap_store_opts defaults;
	struct store_info si;
	struct snap_store *s;
	char path[4096];
	int ret;

	if (!opts)
		opts = &defaults;
	s = calloc(1, sizeof(*s));
	if (s && rados_is_name(dir))
		s->dir = strdup(dir);
	/* Absolute: a daemon leaves its working directory. */
	else if (s && !(s->dir = realpath(dir, NULL)) && errno != ENOMEM) {
		ret = snap_err_set(err, -errno, "%s: %m", dir);
		free(s);
		if (opts->backend)
			opts->backend->ops->free(opts->backend->ctx);
		return ret;
	}
	if (!s || !s->dir) {
		free(s);
		if (opts->backend)
			opts->backend->ops->free(opts->backend->ctx);
		return snap_err_set(err, -ENOMEM, "%s: out of memory", dir);
	}
	pthread_rwlock_init(&s->gc_lock, NULL);
	pthread_mutex_init(&s->images_lock, NULL);
	pthread_mutex_init(&s->info_lock, NULL);
	if (opts->backend)
		s->backend = *opts->backend;
	s->rdonly = opts->flags & SNAP_STORE_RDONLY;
	s->dirty_max = opts->dirty_bytes ? opts->dirty_bytes : DIRTY_DEFAULT;
	s->zstd_level = opts->zstd_level ? opts->zstd_level : ZSTD_DEFAULT;

	ret = open_place(s, err);
	if (ret)
		goto fail;
	s->shared = s->meta.ops->lock_image != NULL;
	ret = meta_store_read(&s->meta, &si, err);
	if (ret) {
		if (ret == -ENOENT)
			snap_err_set(err, ret, "%s: not a store (no store.bin; "
				     "snapctl store init makes one)", dir);
		else
			snap_err_prefix(err, ret, "%s", dir);
		goto fail;
	}
	s->chunk_size = si.chunk_size;
	s->patches = si.patches;
	ret = store_lock(s, err);
	if (ret)
		goto fail;
	if (!s->backend.ops && s->rados) {
		ret = snap_backend_rados_conn(s->rados, s->rdonly ?
					      SNAP_BACKEND_RDONLY : 0,
					      &s->backend, err);
		if (!ret && opts->chunk_cache_dir)
			ret = cache_tier(s, opts, err);
		if (ret)
			goto fail;
	}
	if (!s->backend.ops) {
		snprintf(path, sizeof(path), "%s/chunks", s->dir);
		ret = snap_backend_dir(path, (si.packs ? SNAP_BACKEND_PACKS : 0) |
				       (s->rdonly ? SNAP_BACKEND_RDONLY : 0),
				       &s->backend, err);
		if (ret)
			goto fail;
	}
	ret = chunk_cache_new(opts->cache_bytes ? opts->cache_bytes
						: CACHE_DEFAULT,
			      s->chunk_size, &s->cache);
	if (!ret)
		ret = fetch_pool_new(s, opts->fetch_threads ? opts->fetch_threads
						    : FETCH_DEFAULT, &s->pool);
	if (ret) {
		snap_err_set(err, ret, "%s: out of memory", dir);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	snap_store_close(s);
	return ret;
}

void store_fresh_add(struct snap_store *s, const uint8_t id[SNAP_ID_LEN])
{
	pthread_mutex_lock(&s->images_lock);
	if (s->nfresh == s->capfresh) {
		size_t cap = s->capfresh ? 2 * s->capfresh : 16;
		void *p = realloc(s->fresh, cap * SNAP_ID_LEN);

		if (!p) {	/* unlikely; then only a name protects it */
			pthread_mutex_unlock(&s->images_lock);
			return;
		}
		s->fresh = p;
		s->capfresh = cap;
	}
	memcpy(s->fresh[s->nfresh++], id, SNAP_ID_LEN);
	pthread_mutex_unlock(&s->images_lock);
}

void store_fresh_drop(struct snap_store *s, const uint8_t id[SNAP_ID_LEN])
{
	pthread_mutex_lock(&s->images_lock);
	for (size_t i = 0; i < s->nfresh; i++)
		if (!memcmp(s->fresh[i], id, SNAP_ID_LEN)) {
			memcpy(s->fresh[i], s->fresh[--s->nfresh],
			       SNAP_ID_LEN);
			break;
		}
	pthread_mutex_unlock(&s->images_lock);
}

void snap_store_close(struct snap_store *s)
{
	if (!s)
		return;
	free(s->fresh);
	fetch_pool_free(s->pool);
	image_close_all(s);
	chunk_cache_free(s->cache);
	if (s->backend.ops)
		s->backend.ops->free(s->backend.ctx);
	if (s->meta.ops)
		s->meta.ops->free(s->meta.ctx);
	rados_conn_put(s->rados);
	pthread_rwlock_destroy(&s->gc_lock);
	pthread_mutex_destroy(&s->images_lock);
	pthread_mutex_destroy(&s->info_lock);
	free(s->dir);
	free(s);
}

/* ---- names ------------------------------------------------------------ */

static bool component_ok(const char *c, size_t n)
{
	if (n == 0 || n > SNAP_STORE_NAME_MAX)
		return false;
	if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
		return false;
	return true;
}

/*
 * Check path: depth 1 for a snapshot, 2 for a file, 0 for either; *got
 * gets the depth found.
 */
static int name_check(const char *path, int depth, int *got,
		      struct snap_err *err)
{
	const char *slash = strchr(path, '/');
	int d = slash ? 2 : 1;

	if ((slash ? (size_t)(slash - path) : strlen(path)) >
	    SNAP_STORE_NAME_MAX ||
	    (slash && strlen(slash + 1) > SNAP_STORE_NAME_MAX))
		return snap_err_set(err, -ENAMETOOLONG, "'%.40s...': a name "
				    "longer than %d bytes", path,
				    SNAP_STORE_NAME_MAX);
	if (slash ? !component_ok(path, (size_t)(slash - path)) ||
		    !component_ok(slash + 1, strlen(slash + 1)) ||
		    strchr(slash + 1, '/')
		  : !component_ok(path, strlen(path)))
		return snap_err_set(err, -EINVAL, "'%s': not a snapshot or "
				    "snapshot/file name", path);
	if (depth && d != depth)
		return snap_err_set(err, -EINVAL, "'%s': expected a %s name",
				    path, depth == 1 ? "snapshot" : "file");
	if (got)
		*got = d;
	return 0;
}

/* A change of name path (of depth) is allowed: the store is writable. */
static int may_change(const struct snap_store *s, const char *path, int depth,
		      int *got, struct snap_err *err)
{
	if (s->rdonly)
		return snap_err_set(err, -EROFS, "%s: store opened read-only",
				    path);
	return name_check(path, depth, got, err);
}

int snap_store_mkdir(struct snap_store *s, const char *name,
		     struct snap_err *err)
{
	int ret = may_change(s, name, 1, NULL, err);

	return ret ? ret : s->meta.ops->mkdir(s->meta.ctx, name, err);
}

int snap_store_rmdir(struct snap_store *s, const char *name,
		     struct snap_err *err)
{
	int ret = may_change(s, name, 1, NULL, err);

	return ret ? ret : s->meta.ops->rmdir(s->meta.ctx, name, err);
}

int snap_store_link(struct snap_store *s, const char *path,
		    const uint8_t id[SNAP_ID_LEN], struct snap_err *err)
{
	int ret = may_change(s, path, 2, NULL, err);

	if (ret)
		return ret;
	store_fresh_drop(s, id);
	ret = s->meta.ops->link(s->meta.ctx, path, id, err);
	if (!ret)
		image_names_changed(s, id);
	return ret;
}

int snap_store_hardlink(struct snap_store *s, const char *from,
			const char *to, struct snap_err *err)
{
	uint8_t id[SNAP_ID_LEN];
	int ret;

	ret = snap_store_lookup(s, from, id, NULL, err);
	return ret ? ret : snap_store_link(s, to, id, err);
}

/*
 * The image file name path (checked) refers to, for its ctime: false
 * when there is none (or no image is open here to tell).
 */
static bool name_image(struct snap_store *s, const char *path,
		       uint8_t id[SNAP_ID_LEN])
{
	struct snap_err e;
	bool open;

	pthread_mutex_lock(&s->images_lock);
	open = s->images != NULL;
	pthread_mutex_unlock(&s->images_lock);
	return open && s->meta.ops->lookup(s->meta.ctx, path, id, NULL,
					   &e) == 0;
}

int snap_store_unlink(struct snap_store *s, const char *path,
		      struct snap_err *err)
{
	uint8_t id[SNAP_ID_LEN];
	bool named;
	int ret;

	ret = may_change(s, path, 2, NULL, err);
	if (ret)
		return ret;
	named = name_image(s, path, id);
	ret = s->meta.ops->unlink(s->meta.ctx, path, err);
	if (!ret && named)
		image_names_changed(s, id);
	return ret;
}

int snap_store_lookup(struct snap_store *s, const char *path,
		      uint8_t id[SNAP_ID_LEN], unsigned *nlink,
		      struct snap_err *err)
{
	int ret = name_check(path, 2, NULL, err);

	return ret ? ret : s->meta.ops->lookup(s->meta.ctx, path, id, nlink,
					       err);
}

int snap_store_rename(struct snap_store *s, const char *from, const char *to,
		      bool noreplace, struct snap_err *err)
{
	uint8_t id[SNAP_ID_LEN], old[SNAP_ID_LEN];
	bool named, replaced;
	int df, ret;

	ret = may_change(s, from, 0, &df, err);
	if (!ret)
		ret = name_check(to, df, NULL, err);
	if (ret)
		return ret;
	/* Files: the renamed image's ctime moves (as on ext4), and the
	 * replaced one's, which other names or opens may keep. */
	named = df == 2 && name_image(s, from, id);
	replaced = df == 2 && !noreplace && name_image(s, to, old);
	ret = s->meta.ops->rename(s->meta.ctx, from, to, noreplace, err);
	if (ret)
		return ret;
	/* Two names of one image: rename(2) leaves both, changing nothing. */
	if (named && replaced && !memcmp(id, old, SNAP_ID_LEN))
		return 0;
	if (named)
		image_names_changed(s, id);
	if (replaced)
		image_names_changed(s, old);
	return 0;
}

int snap_store_list(struct snap_store *s, const char *name,
		    int (*fn)(void *arg, const char *entry), void *arg,
		    struct snap_err *err)
{
	int ret = name ? name_check(name, 1, NULL, err) : 0;

	return ret ? ret : s->meta.ops->list(s->meta.ctx, name, fn, arg, err);
}

int snap_store_dir_stat(struct snap_store *s, const char *name,
			struct stat *st, struct snap_err *err)
{
	int ret = name ? name_check(name, 1, NULL, err) : 0;

	return ret ? ret : s->meta.ops->dir_stat(s->meta.ctx, name, st, err);
}

int snap_store_nlink(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		     unsigned *nlink, struct snap_err *err)
{
	return s->meta.ops->nlink(s->meta.ctx, id, nlink, err);
}

int snap_store_sync(struct snap_store *s, const char *name,
		    struct snap_err *err)
{
	int ret = name ? name_check(name, 1, NULL, err) : 0;

	return ret ? ret : s->meta.ops->sync_names(s->meta.ctx, name, err);
}
