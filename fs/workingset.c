/* SPDX-License-Identifier: MIT */
/*
 * Working sets: what a restored VM reads first, recorded at one open and
 * pushed into the page cache at the next.
 *
 * A restore maps memory.bin MAP_PRIVATE, and every page the guest touches
 * first is a READ it waits for. So when a file that has no working set
 * (and was not turned off) is opened for reading while nobody has it open
 * for writing, the mount is not read-only and the file is larger than
 * one READ (1 MiB), the store records which of its chunks are read from
 * then on, each once, in order, until its last handle is released or
 * ws_window seconds have passed. Then the list is
 * saved with the image (snap_image_ws_save: it survives a remount and
 * travels with cp and ln), unless it is one sweep over the file: a copy
 * or a check, not a guest.
 *
 * The next such open of a file with a working set arms a push, which
 * starts at the file's first READ (when the guest runs): a few
 * threads take runs of those chunks in recorded order, load them straight
 * from the store (snap_image_read_direct: not through the chunk cache)
 * and hand them to the kernel with fuse_lowlevel_notify_store, so the
 * guest's first touches find their pages in the page cache. The push runs
 * beside the reader, at the lowest priority (it uses spare time, never
 * the restore's); a page it has not reached yet is an ordinary READ.
 *
 * Pushed pages must never hide newer ones: a push runs only while no
 * handle is open for writing or truncating (writes reach the page cache
 * before the store, and shared mappings write back at their unmap); such
 * an open, or a truncate, stops it and waits for it; and it pushes no
 * byte past the file's end. A push also ends when the last handle goes.
 *
 * The user sees and steers it with user.snapfs.workingset (xattr.c):
 * "none", "recording N", "recorded N" or "off"; setting "clear" forgets
 * it (the next open records anew), "off" forgets it and stops recording
 * and pushing, "on" allows them again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fs/snapfs.h"

#define PUSH_MAX	(1u << 20)	/* bytes of one notification */
#define PUSH_THREADS	3
#define PUSH_NICE	19

struct push {
	struct fs *fs;
	struct node *n;
	pthread_t thread[PUSH_THREADS];
	unsigned nthreads;
	bool stop;			/* atomic */
	pthread_mutex_t lock;
	uint64_t next;			/* the next index of ws to push */
	struct snap_ws ws;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void log_err(struct fs *fs, const struct snap_err *err)
{
	fprintf(stderr, "%s: %s\n", SNAPFS_NAME, err->msg);
}

/*
 * Take the next run of consecutive chunks of the working set, at most
 * max: *k its first entry; returns its length, 0 when all are taken.
 */
static uint64_t take_run(struct push *p, uint64_t max, uint64_t *k)
{
	const struct snap_ws *ws = &p->ws;
	uint64_t r = 0;

	pthread_mutex_lock(&p->lock);
	*k = p->next;
	if (*k < ws->n) {
		r = 1;
		while (*k + r < ws->n && r < max &&
		       ws->index[*k + r] == ws->index[*k] + r)
			r++;
	}
	p->next += r;
	pthread_mutex_unlock(&p->lock);
	return r;
}

/*
 * One of the push's threads: runs of the working set, taken in order,
 * each loaded straight into this thread's buffer (not through the chunk
 * cache: the page cache keeps them now) and handed to the kernel. The
 * threads load side by side, so the push is as fast as the store allows.
 */
static void *push_run(void *arg)
{
	struct push *p = arg;
	struct node *n = p->n;
	uint32_t cs = snap_store_chunk_size(p->fs->store);
	uint64_t k, r, max = PUSH_MAX / cs ? PUSH_MAX / cs : 1;
	struct snap_err err;
	uint8_t *buf;

	/* Spare time only: the restore's own threads, and the READs of
	 * pages the push has not reached, come first. */
	setpriority(PRIO_PROCESS, (id_t)gettid(), PUSH_NICE);
	buf = malloc((size_t)max * cs);
	while (buf && !__atomic_load_n(&p->stop, __ATOMIC_RELAXED) &&
	       (r = take_run(p, max, &k))) {
		uint64_t off = p->ws.index[k] * cs, len = r * cs;
		uint64_t size = snap_image_size(n->img);
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);
		ssize_t got;

		if (off >= size)
			continue;
		if (len > size - off)
			len = size - off;
		/* A chunk that cannot be read is left to the reader, who
		 * gets the error (and the log its message). */
		got = snap_image_read_direct(n->img, buf, (size_t)len, off,
					     &err);
		if (got <= 0)
			continue;
		bv.buf[0].size = (size_t)got;
		bv.buf[0].mem = buf;
		/* Fails when the kernel forgot the inode: done. */
		if (fuse_lowlevel_notify_store(p->fs->se, fs_ino(p->fs, n),
					       (off_t)off, &bv, 0)) {
			__atomic_store_n(&p->stop, true, __ATOMIC_RELAXED);
			break;
		}
		__atomic_add_fetch(&n->pushed, r, __ATOMIC_RELAXED);
	}
	free(buf);
	return NULL;
}

/* Under n->ws_lock: take n's push away from it and ask it to stop. */
static struct push *push_take(struct node *n)
{
	struct push *p = n->push;

	n->push = NULL;
	__atomic_store_n(&n->push_armed, false, __ATOMIC_RELAXED);
	if (p)
		__atomic_store_n(&p->stop, true, __ATOMIC_RELAXED);
	return p;
}

/* Not under the lock (a push may wait on the kernel): wait, free. */
static void push_end(struct push *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->thread[i], NULL);
	pthread_mutex_destroy(&p->lock);
	snap_ws_release(&p->ws);
	free(p);
}

/*
 * Under n->ws_lock: arm a push of ws (taken over on success). Its threads
 * start at the file's first READ (push_go): until the guest runs, the
 * restore's own set-up has the machine.
 */
static int push_arm(struct fs *fs, struct node *n, struct snap_ws *ws)
{
	struct push *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->fs = fs;
	p->n = n;
	p->ws = *ws;
	pthread_mutex_init(&p->lock, NULL);
	n->push = p;
	__atomic_store_n(&n->push_armed, true, __ATOMIC_RELAXED);
	ws->index = NULL;
	ws->n = 0;
	return 0;
}

/* Under n->ws_lock: start the threads of an armed push. */
static void push_go(struct node *n)
{
	struct push *p = n->push;

	__atomic_store_n(&n->push_armed, false, __ATOMIC_RELAXED);
	if (!p || p->nthreads || __atomic_load_n(&p->stop, __ATOMIC_RELAXED))
		return;
	while (p->nthreads < PUSH_THREADS &&
	       !pthread_create(&p->thread[p->nthreads], NULL, push_run, p))
		p->nthreads++;
}

/*
 * Whether a recording is one ascending sweep over most of the file: cat,
 * cp out of the mount or snapctl verify, not a guest's first touches.
 * Such a one is not kept (the next open records again). READs served at
 * once interleave their chunks, so a sweep is not in order either, but
 * its i-th chunk stays near i: on average within a few READs (64 chunks
 * here) of it, where random touches stray by a third of the file.
 */
static bool is_sweep(struct fs *fs, struct node *n, const struct snap_ws *ws)
{
	uint32_t cs = snap_store_chunk_size(fs->store);
	uint64_t chunks = (snap_image_size(n->img) + cs - 1) / cs, off = 0;

	if (ws->n < 64 || ws->n < chunks / 2)
		return false;
	for (uint64_t i = 0; i < ws->n; i++)
		off += ws->index[i] > i ? ws->index[i] - i : i - ws->index[i];
	return off / ws->n <= 64;
}

/* Under n->ws_lock: end a recording, saving what it holds (save). */
static void recording_end(struct fs *fs, struct node *n, bool save)
{
	struct snap_ws ws = { 0 };
	struct snap_err err;

	if (!n->record_end)
		return;
	__atomic_store_n(&n->record_end, 0, __ATOMIC_RELAXED);
	snap_image_record_stop(n->img, save ? &ws : NULL);
	ws.recorded_ns = (uint64_t)time(NULL) * 1000000000u;
	if (ws.n && !is_sweep(fs, n, &ws) &&
	    snap_image_ws_save(n->img, &ws, &err))
		log_err(fs, &err);
	snap_ws_release(&ws);
}

/*
 * A first open for reading: push n's working set, or record one. Its
 * file is read outside the lock, so the state is checked again under it.
 */
static void ws_begin(struct fs *fs, struct node *n)
{
	struct snap_ws ws = { 0 };
	struct snap_err err;
	int ret;

	ret = snap_image_ws_load(n->img, &ws, &err);
	if (ret && ret != -ENOENT) {
		log_err(fs, &err);
		return;
	}
	if (!ret && (ws.off || !ws.n)) {
		snap_ws_release(&ws);
		return;
	}
	pthread_mutex_lock(&n->ws_lock);
	if (n->opens == 0 || n->writers || n->changing || n->push ||
	    n->record_end) {
		/* the state moved on meanwhile */
	} else if (ret == -ENOENT &&
		   (fs->rdonly || snap_image_size(n->img) <= PUSH_MAX)) {
		/* nowhere to keep one, or one READ reads it all */
	} else if (ret == -ENOENT) {
		if (snap_image_record_start(n->img, &err))
			log_err(fs, &err);
		else	/* a window of 0: until the last release */
			n->record_end = fs->ws_window
					? now_ns() + (uint64_t)fs->ws_window *
						     1000000000u
					: UINT64_MAX;
	} else {
		push_arm(fs, n, &ws);	/* without one, reads as usual */
	}
	pthread_mutex_unlock(&n->ws_lock);
	snap_ws_release(&ws);
}

/* Whether a handle opened with fi may change the file. */
static bool changes(const struct fuse_file_info *fi)
{
	return (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
}

void ws_opened(struct fs *fs, struct node *n, const struct fuse_file_info *fi)
{
	bool write = changes(fi), begin = false;
	struct push *old = NULL;

	pthread_mutex_lock(&n->ws_lock);
	n->opens++;
	if (write) {
		n->writers++;
		old = push_take(n);
	} else if (n->opens == 1 && !n->writers) {
		old = push_take(n);	/* one that ended with its reader */
		begin = true;
	}
	pthread_mutex_unlock(&n->ws_lock);
	push_end(old);
	if (begin)
		ws_begin(fs, n);
}

void ws_released(struct fs *fs, struct node *n,
		 const struct fuse_file_info *fi)
{
	bool write = changes(fi);

	pthread_mutex_lock(&n->ws_lock);
	if (n->opens)
		n->opens--;
	if (write && n->writers)
		n->writers--;
	if (!n->opens) {
		recording_end(fs, n, true);
		if (n->push)
			__atomic_store_n(&n->push->stop, true,
					 __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&n->ws_lock);
}

void ws_read(struct fs *fs, struct node *n)
{
	uint64_t end = __atomic_load_n(&n->record_end, __ATOMIC_RELAXED);

	if (__atomic_load_n(&n->push_armed, __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&n->ws_lock);
		push_go(n);
		pthread_mutex_unlock(&n->ws_lock);
	}
	if (!end || now_ns() < end)
		return;
	pthread_mutex_lock(&n->ws_lock);
	if (n->record_end && now_ns() >= n->record_end)
		recording_end(fs, n, true);
	pthread_mutex_unlock(&n->ws_lock);
}

void ws_change(struct fs *fs, struct node *n, bool begin)
{
	struct push *p = NULL;

	pthread_mutex_lock(&n->ws_lock);
	if (begin) {
		n->changing++;
		p = push_take(n);
	} else {
		n->changing--;
	}
	pthread_mutex_unlock(&n->ws_lock);
	push_end(p);
}

void ws_node_gone(struct fs *fs, struct node *n)
{
	struct push *p;

	pthread_mutex_lock(&n->ws_lock);
	recording_end(fs, n, true);
	p = push_take(n);
	pthread_mutex_unlock(&n->ws_lock);
	push_end(p);
}

int ws_describe(struct fs *fs, struct node *n, char *buf, size_t size)
{
	struct snap_image_stat st;
	struct snap_ws ws;
	struct snap_err err;
	int ret;

	snap_image_stat(n->img, &st);
	if (st.recording)
		return snprintf(buf, size, "recording %llu",
				(unsigned long long)st.recorded);
	ret = snap_image_ws_load(n->img, &ws, &err);
	if (ret == -ENOENT)
		return snprintf(buf, size, "none");
	if (ret) {
		log_err(fs, &err);
		return ret;
	}
	ret = ws.off ? snprintf(buf, size, "off")
		     : snprintf(buf, size, "recorded %llu",
				(unsigned long long)ws.n);
	snap_ws_release(&ws);
	return ret;
}

static bool is(const char *value, size_t len, const char *word)
{
	return len == strlen(word) && !memcmp(value, word, len);
}

int ws_control(struct fs *fs, struct node *n, const char *value, size_t len)
{
	struct snap_ws off = { .off = true }, ws;
	struct snap_err err;
	struct push *p;
	int ret = 0;

	if (len && value[len - 1] == '\n')	/* echo's newline */
		len--;
	if (is(value, len, "on")) {
		ret = snap_image_ws_load(n->img, &ws, &err);
		if (ret == -ENOENT)
			return 0;
		if (!ret && ws.off)
			ret = snap_image_ws_save(n->img, NULL, &err);
		snap_ws_release(&ws);
		goto out;
	}
	if (!is(value, len, "clear") && !is(value, len, "off"))
		return -EINVAL;
	pthread_mutex_lock(&n->ws_lock);
	recording_end(fs, n, false);
	p = push_take(n);
	pthread_mutex_unlock(&n->ws_lock);
	push_end(p);
	ret = snap_image_ws_save(n->img, is(value, len, "off") ? &off : NULL,
				 &err);
out:
	if (ret)
		fs_log(fs, ret, &err);
	return ret;
}
