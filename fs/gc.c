/* SPDX-License-Identifier: MIT */
/*
 * Garbage collection while mounted. The daemon is a writer of the store
 * (the only one, in a directory), so it may run snap_store_gc beside its
 * own readers and writers (gc holds the store's gc lock, so they wait for
 * the sweep, and it marks every image open here), and in RADOS beside
 * other hosts that only read (it marks what they hold). It runs one:
 * - in the background, once the chunk bytes put since the last one pass
 *   a bound: max(-o gc_bytes, an eighth of what the last one kept), so
 *   the garbage stays below that bound plus what nothing can free yet;
 *   and within GC_POLL_MS of a snapshot's removal (rmdir), which makes
 *   garbage without putting anything (measured with tests/bench/gcsoak.sh:
 *   removing each old snapshot of a 1 GiB VM took the store to 1.55x of
 *   what it referenced until the next bound);
 * - on request: setfattr -n user.snapfs.gc -v now MNT (snapctl store gc
 *   does that for a mounted store); getfattr reads the last result.
 * A gc that cannot run (another process has the store open; in RADOS,
 * another writer) is said in the result, and the background one tries
 * again at the next bound.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fs/snapfs.h"

#define GC_POLL_MS	500

/* Under fs->gc_lock: one gc, its result into fs->gc_last. */
static int gc_run(struct fs *fs, const char *why)
{
	struct snap_gc_stats st;
	struct snap_err err = { .msg = "" };
	uint64_t put = snap_store_put_bytes(fs->store);
	int ret;

	ret = snap_store_gc(fs->store, &st, &err);
	fs->gc_runs++;
	/* whatever asked, this one did it */
	__atomic_store_n(&fs->gc_soon, false, __ATOMIC_RELAXED);
	fs->gc_put = put;
	if (ret) {
		snprintf(fs->gc_last, sizeof(fs->gc_last), "%s: failed: %.200s",
			 why, err.msg);
		return ret;
	}
	fs->gc_kept = st.kept_bytes;
	snprintf(fs->gc_last, sizeof(fs->gc_last), "%s: freed %" PRIu64
		 " chunks (%" PRIu64 " bytes), %" PRIu64 " deltas, %" PRIu64
		 " images; kept %" PRIu64 " chunks (%" PRIu64 " bytes)", why,
		 st.chunks, st.bytes, st.deltas, st.images, st.kept_chunks,
		 st.kept_bytes);
	return 0;
}

static uint64_t gc_bound(const struct fs *fs)
{
	return fs->gc_kept / 8 > fs->gc_bytes ? fs->gc_kept / 8 : fs->gc_bytes;
}

static void *gc_thread(void *arg)
{
	struct fs *fs = arg;
	struct timespec t;

	pthread_mutex_lock(&fs->gc_lock);
	while (!fs->gc_stop) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += GC_POLL_MS * 1000000L;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&fs->gc_wake, &fs->gc_lock, &t);
		if (fs->gc_stop)
			break;
		if (__atomic_load_n(&fs->gc_soon, __ATOMIC_RELAXED) ||
		    snap_store_put_bytes(fs->store) - fs->gc_put >= gc_bound(fs))
			gc_run(fs, "background");
	}
	pthread_mutex_unlock(&fs->gc_lock);
	return NULL;
}

int fs_gc_start(struct fs *fs, uint64_t bytes)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&fs->gc_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fs->gc_wake, &ca);
	pthread_condattr_destroy(&ca);
	fs->gc_bytes = bytes;
	snprintf(fs->gc_last, sizeof(fs->gc_last), "none yet");
	fs->gc_ready = true;
	if (fs->rdonly || !bytes)
		return 0;
	if (pthread_create(&fs->gc_tid, NULL, gc_thread, fs))
		return -EAGAIN;
	fs->gc_started = true;
	return 0;
}

void fs_gc_stop(struct fs *fs)
{
	if (!fs || !fs->gc_ready)
		return;
	pthread_mutex_lock(&fs->gc_lock);
	fs->gc_stop = true;
	pthread_cond_signal(&fs->gc_wake);
	pthread_mutex_unlock(&fs->gc_lock);
	if (fs->gc_started)
		pthread_join(fs->gc_tid, NULL);
	fs->gc_started = false;
	pthread_cond_destroy(&fs->gc_wake);
	pthread_mutex_destroy(&fs->gc_lock);
	fs->gc_ready = false;
}

int fs_gc_now(struct fs *fs)
{
	int ret;

	if (fs->rdonly)
		return -EROFS;
	pthread_mutex_lock(&fs->gc_lock);
	ret = gc_run(fs, "asked");
	pthread_mutex_unlock(&fs->gc_lock);
	return ret;
}

/* Without gc_lock, which a running gc holds: a removal never waits. */
void fs_gc_soon(struct fs *fs)
{
	if (fs->gc_started)
		__atomic_store_n(&fs->gc_soon, true, __ATOMIC_RELAXED);
}

int fs_gc_describe(struct fs *fs, char *buf, size_t size)
{
	int n;

	pthread_mutex_lock(&fs->gc_lock);
	n = snprintf(buf, size, "%s", fs->gc_last);
	pthread_mutex_unlock(&fs->gc_lock);
	return n >= (int)size ? (int)size - 1 : n;
}
