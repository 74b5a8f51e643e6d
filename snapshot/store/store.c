/* SPDX-License-Identifier: MIT */
/*
 * The store: opening it, its locks, and its names.
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
 * Names are directories and links of the local filesystem, so mkdir,
 * rename and link are as atomic as the filesystem makes them.
 */
#include "snapshot/store/store_int.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/frame.h"

/* How long an open waits for a gc another process runs, and how often it
 * looks again. */
#define GC_WAIT_MS		10000
#define GC_WAIT_STEP_MS		20

#define CACHE_DEFAULT	(256u << 20)
#define DIRTY_DEFAULT	(64u << 20)
#define FETCH_DEFAULT	4
#define ZSTD_DEFAULT	1

static const char *const store_dirs[] = {
	"chunks", "chunks/packs", "images", "deltas", "snapshots",
};

void snap_id_hex(const uint8_t id[SNAP_ID_LEN], char out[2 * SNAP_ID_LEN + 1])
{
	snap_hex(id, SNAP_ID_LEN, out);
}

void store_id_path(const struct snap_store *s, const char *sub,
		   const uint8_t id[SNAP_ID_LEN], char *buf, size_t size)
{
	char hex[2 * SNAP_ID_LEN + 1];

	snap_id_hex(id, hex);
	snprintf(buf, size, "%s/%s/%s", s->dir, sub, hex);
}

void store_ref_path(const struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		    char *buf, size_t size)
{
	char hex[2 * SNAP_ID_LEN + 1];

	snap_id_hex(id, hex);
	snprintf(buf, size, "%s/images/%s.ref", s->dir, hex);
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

int snap_store_init(const char *dir, uint32_t chunk_size,
		    struct snap_err *err)
{
	struct store_info si = { .chunk_size = chunk_size, .packs = true };
	char path[4096];
	int ret;

	if (chunk_size < SNAP_CHUNK_MIN || chunk_size > SNAP_CHUNK_MAX ||
	    (chunk_size & (chunk_size - 1)))
		return snap_err_set(err, -EINVAL, "chunk size %u: expected a "
				    "power of two in [%u, %u]", chunk_size,
				    SNAP_CHUNK_MIN, SNAP_CHUNK_MAX);
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
	ret = store_new_id(si.id);
	if (ret)
		return snap_err_set(err, ret, "getrandom: %s", strerror(-ret));
	si.created_ns = store_now_ns();
	snprintf(path, sizeof(path), "%s/store.bin", dir);
	return meta_store_write(path, &si, err);
}

static int take_lock(const char *dir, const char *name, int op, int *fd,
		     struct snap_err *err)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0 && errno == EROFS)
		*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return snap_err_set(err, -errno, "%s: %m", path);
	if (flock(*fd, op | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return snap_err_set(err, -errno, "%s: flock: %m", path);
	return -EBUSY;
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
	/* Absolute: a daemon leaves its working directory. */
	if (s && !(s->dir = realpath(dir, NULL)) && errno != ENOMEM) {
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
	s->lock_fd = s->write_fd = -1;
	pthread_rwlock_init(&s->gc_lock, NULL);
	pthread_mutex_init(&s->images_lock, NULL);
	pthread_mutex_init(&s->info_lock, NULL);
	if (opts->backend)
		s->backend = *opts->backend;
	s->rdonly = opts->flags & SNAP_STORE_RDONLY;
	s->dirty_max = opts->dirty_bytes ? opts->dirty_bytes : DIRTY_DEFAULT;
	s->zstd_level = opts->zstd_level ? opts->zstd_level : ZSTD_DEFAULT;

	snprintf(path, sizeof(path), "%s/store.bin", dir);
	ret = meta_store_read(path, &si, err);
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
	/* A gc in another process (snapfs's, in the background) is short:
	 * wait for it rather than fail. */
	for (int ms = 0;; ms += GC_WAIT_STEP_MS) {
		ret = take_lock(dir, "lock", LOCK_SH, &s->lock_fd, err);
		if (ret != -EBUSY || ms >= GC_WAIT_MS)
			break;
		close(s->lock_fd);
		s->lock_fd = -1;
		usleep(GC_WAIT_STEP_MS * 1000);
	}
	if (ret == -EBUSY)
		snap_err_set(err, ret, "%s: gc has been running in another "
			     "process for %d s", dir, GC_WAIT_MS / 1000);
	if (!ret && !s->rdonly) {
		ret = take_lock(dir, "lock.write", LOCK_EX, &s->write_fd, err);
		if (ret == -EBUSY)
			snap_err_set(err, ret, "%s: open for writing by another "
				     "process", dir);
	}
	if (ret)
		goto fail;
	if (!s->backend.ops) {
		snprintf(path, sizeof(path), "%s/chunks", dir);
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
	if (s->write_fd >= 0)
		close(s->write_fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
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
 * Check path and build "STORE/snapshots/PATH" in buf. depth: 1 for a
 * snapshot, 2 for a file, 0 for either; *got gets the depth found.
 */
static int name_path(const struct snap_store *s, const char *path, int depth,
		     char *buf, size_t size, int *got, struct snap_err *err)
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
	if (snprintf(buf, size, "%s/snapshots/%s", s->dir, path) >= (int)size)
		return snap_err_set(err, -ENAMETOOLONG, "'%s': name too long",
				    path);
	return 0;
}

static int writable(const struct snap_store *s, const char *what,
		    struct snap_err *err)
{
	if (s->rdonly)
		return snap_err_set(err, -EROFS, "%s: store opened read-only",
				    what);
	return 0;
}


/* Check that s is writable and name a name of depth, then op it. */
static int change_name(struct snap_store *s, const char *name, int depth,
		       int (*op)(const char *path), struct snap_err *err)
{
	char p[4096];
	int ret;

	ret = writable(s, name, err);
	if (!ret)
		ret = name_path(s, name, depth, p, sizeof(p), NULL, err);
	if (ret)
		return ret;
	if (op(p))
		return snap_err_set(err, -errno, "%s: %m", name);
	return 0;
}

static int mkdir_dir(const char *path)
{
	return mkdir(path, 0755);
}

int snap_store_mkdir(struct snap_store *s, const char *name,
		     struct snap_err *err)
{
	return change_name(s, name, 1, mkdir_dir, err);
}

int snap_store_rmdir(struct snap_store *s, const char *name,
		     struct snap_err *err)
{
	return change_name(s, name, 1, rmdir, err);
}

int snap_store_link(struct snap_store *s, const char *path,
		    const uint8_t id[SNAP_ID_LEN], struct snap_err *err)
{
	char p[4096], ref[4096];
	int ret;

	ret = writable(s, path, err);
	if (!ret)
		ret = name_path(s, path, 2, p, sizeof(p), NULL, err);
	if (ret)
		return ret;
	store_ref_path(s, id, ref, sizeof(ref));
	store_fresh_drop(s, id);
	if (link(ref, p)) {
		char hex[2 * SNAP_ID_LEN + 1];

		snap_id_hex(id, hex);
		if (errno == ENOENT && access(ref, F_OK))
			return snap_err_set(err, -ENOENT, "%s: no image %s",
					    path, hex);
		return snap_err_set(err, -errno, "%s: %m", path);
	}
	image_names_changed(s, id);
	return 0;
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
 * The image the file name at p (checked) refers to, for its ctime: false
 * when there is none (or no image is open here to tell).
 */
static bool name_image(struct snap_store *s, const char *p,
		       uint8_t id[SNAP_ID_LEN])
{
	struct snap_err e;
	bool open;

	pthread_mutex_lock(&s->images_lock);
	open = s->images != NULL;
	pthread_mutex_unlock(&s->images_lock);
	return open && meta_ref_read(p, id, &e) == 0;
}

int snap_store_unlink(struct snap_store *s, const char *path,
		      struct snap_err *err)
{
	uint8_t id[SNAP_ID_LEN];
	char p[4096];
	bool named;
	int ret;

	ret = writable(s, path, err);
	if (!ret)
		ret = name_path(s, path, 2, p, sizeof(p), NULL, err);
	if (ret)
		return ret;
	named = name_image(s, p, id);
	if (unlink(p))
		return snap_err_set(err, -errno, "%s: %m", path);
	if (named)
		image_names_changed(s, id);
	return 0;
}

int snap_store_lookup(struct snap_store *s, const char *path,
		      uint8_t id[SNAP_ID_LEN], unsigned *nlink,
		      struct snap_err *err)
{
	struct stat st;
	char p[4096];
	int ret;

	ret = name_path(s, path, 2, p, sizeof(p), NULL, err);
	if (ret)
		return ret;
	if (stat(p, &st))
		return snap_err_set(err, -errno, "%s: %m", path);
	if (!S_ISREG(st.st_mode))
		return snap_err_set(err, -EISDIR, "%s: not a file", path);
	ret = meta_ref_read(p, id, err);
	if (ret)
		return ret;
	if (nlink)	/* less the image's own images/<id>.ref */
		*nlink = st.st_nlink > 1 ? (unsigned)st.st_nlink - 1 : 1;
	return 0;
}

int snap_store_rename(struct snap_store *s, const char *from, const char *to,
		      bool noreplace, struct snap_err *err)
{
	uint8_t id[SNAP_ID_LEN], old[SNAP_ID_LEN];
	char pf[4096], pt[4096];
	bool named, replaced;
	int df, dt, ret;

	ret = writable(s, from, err);
	if (!ret)
		ret = name_path(s, from, 0, pf, sizeof(pf), &df, err);
	if (!ret)
		ret = name_path(s, to, df, pt, sizeof(pt), &dt, err);
	if (ret)
		return ret;
	/* Files: the renamed image's ctime moves (as on ext4), and the
	 * replaced one's, which other names or opens may keep. */
	named = df == 2 && name_image(s, pf, id);
	replaced = df == 2 && !noreplace && name_image(s, pt, old);
	if (renameat2(AT_FDCWD, pf, AT_FDCWD, pt,
		      noreplace ? RENAME_NOREPLACE : 0))
		return snap_err_set(err, -errno, "%s -> %s: %m", from, to);
	/* Two names of one image: rename(2) leaves both, changing nothing. */
	if (named && replaced && !memcmp(id, old, SNAP_ID_LEN))
		return 0;
	if (named)
		image_names_changed(s, id);
	if (replaced)
		image_names_changed(s, old);
	return 0;
}

static int visible(const struct dirent *e)
{
	return strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
}

int snap_store_list(struct snap_store *s, const char *name,
		    int (*fn)(void *arg, const char *entry), void *arg,
		    struct snap_err *err)
{
	struct dirent **list;
	char p[4096];
	int n, ret = 0;

	if (name) {
		ret = name_path(s, name, 1, p, sizeof(p), NULL, err);
		if (ret)
			return ret;
	} else {
		snprintf(p, sizeof(p), "%s/snapshots", s->dir);
	}
	n = scandir(p, &list, visible, alphasort);
	if (n < 0)
		return snap_err_set(err, -errno, "%s: %m", name ? name : p);
	for (int i = 0; i < n; i++) {
		if (!ret)
			ret = fn(arg, list[i]->d_name);
		free(list[i]);
	}
	free(list);
	return ret;
}

int snap_store_dir_stat(struct snap_store *s, const char *name,
			struct stat *st, struct snap_err *err)
{
	char p[4096];
	int ret;

	if (name) {
		ret = name_path(s, name, 1, p, sizeof(p), NULL, err);
		if (ret)
			return ret;
	} else {
		snprintf(p, sizeof(p), "%s/snapshots", s->dir);
	}
	if (stat(p, st))
		return snap_err_set(err, -errno, "%s: %m", name ? name : p);
	if (!S_ISDIR(st->st_mode))
		return snap_err_set(err, -ENOTDIR, "%s: not a snapshot", name);
	return 0;
}

int snap_store_nlink(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		     unsigned *nlink, struct snap_err *err)
{
	struct stat st;
	char ref[4096];

	store_ref_path(s, id, ref, sizeof(ref));
	if (stat(ref, &st))
		return snap_err_set(err, -errno, "%s: %m", ref);
	*nlink = st.st_nlink > 1 ? (unsigned)st.st_nlink - 1 : 0;
	return 0;
}

int snap_store_sync(struct snap_store *s, const char *name,
		    struct snap_err *err)
{
	char p[4096];
	int fd, ret;

	if (name) {
		ret = name_path(s, name, 1, p, sizeof(p), NULL, err);
		if (ret)
			return ret;
	} else {
		snprintf(p, sizeof(p), "%s/snapshots", s->dir);
	}
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return snap_err_set(err, -errno, "%s: %m", name ? name : p);
	ret = fsync(fd) ? -errno : 0;
	close(fd);
	if (ret)
		return snap_err_set(err, ret, "%s: fsync: %s",
				    name ? name : p, strerror(-ret));
	return 0;
}
