/* SPDX-License-Identifier: MIT */
/*
 * snapfsx: random operations on a real snapfs mount, each checked against
 * a model in memory (fsx.h), in the spirit of fsx but our own.
 *
 *   snapfsx [--seed N] [--ops N] [--chunk-size S] [--cache-size S] ...
 *
 * It makes a store (snapctl store init), starts snapfs on it in the
 * foreground by its pid, and does --ops operations chosen from a seeded
 * generator: write, read, truncate (grow and shrink, by fd, by path, by
 * O_TRUNC), mmap reads (private and shared; a shared mapping must also
 * see a write or a copy_file_range done under it), mmap writes (shared,
 * with or without msync; private, which must not reach the file),
 * copy_file_range within a file and across files, whole-file copies into
 * new files (the clone path), cp -r of a snapshot directory (with
 * copy_file_range, as cp does, or by running cp), link, rename (over
 * other names too, and with RENAME_NOREPLACE), unlink (an open file may
 * live on unlinked, used through its fd until closed), mkdir, rm -r of a
 * snapshot, rename of a snapshot, fsync, fsync of a directory, close, a
 * gc on request (user.snapfs.gc), a clean unmount and remount, and kill
 * -9 of the daemon followed by a remount.
 *
 * What is checked:
 * - every read (pread, a mapping, a whole file) byte for byte; sizes, inode
 *   numbers (stable across mounts, shared by hard links) and link counts
 *   after every change and every mount; the directory listings at every
 *   mount and at the end;
 * - after a clean unmount, everything, exactly: unmounting is not a crash.
 *
 * The durability rule after kill -9 (docs/snapfs.md: what fsync returned
 * for survives a killed daemon; names are durable after an fsync of their
 * directory; docs/store.md: a crash may lose what was not synced, never
 * tear it):
 * - a file not changed since its last fsync (fsync, fdatasync, or msync
 *   with MS_SYNC when no other mapped write of it is pending) must hold
 *   exactly what it held then: size and every byte;
 * - a file changed since then may hold anything it held since: its size
 *   must be one it had since that fsync (between the smallest and the
 *   largest), and every byte not written, truncated away or copied over
 *   since that fsync must still be what the fsync promised;
 * - a name in a directory not fsync'ed since its names last changed (and
 *   the root's, for snapshots) may be there or not, and may name the file
 *   it named before; a name in a synced directory must be there and name
 *   its file (its inode number);
 * - a file with no name left (unlinked while open) is forgotten: nothing
 *   can reach it any more.
 * Anything else is a failure. Then the mount is repaired to the model
 * (lost names made again, files rewritten), every file and directory
 * fsync'ed, and the run goes on: the model never follows the mount, so the
 * operations stay the same for the same seed.
 *
 * A miscompare prints the seed, the operation's number and the operation
 * in words, the file, the offset and the first differing byte, and exits 1;
 * --ops N stops after N operations and -v prints each one, so a failure
 * can be replayed and bisected. The daemon is always unmounted with
 * fusermount3 -u and killed if it is still there, even on failure.
 * --avoid steps around the snapfs bugs found so far without dropping an
 * operation (tests/fsx/README.md).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/fsx/fsx.h"

#define FSX_OP_TIMEOUT	120	/* seconds an operation may take */
#define FSX_PROGRESS	50000	/* a line every so many operations */

static struct fsx *the_fsx;	/* for the signal handler */

/* xorshift64*: fast, and the same everywhere for a seed. */
uint64_t fsx_rand(struct fsx *fsx)
{
	uint64_t x = fsx->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	fsx->rng = x;
	return x * UINT64_C(0x2545f4914f6cdd1d);
}

uint64_t fsx_below(struct fsx *fsx, uint64_t n)
{
	return n ? fsx_rand(fsx) % n : 0;
}

/* Bytes to write: from one draw, so long writes cost one draw. */
void fsx_fill(struct fsx *fsx, uint8_t *p, size_t len)
{
	uint64_t x = fsx_rand(fsx) | 1;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
		}
		p[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
}

/* The current operation in words; printed with -v. */
void fsx_note(struct fsx *fsx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fsx->desc, sizeof(fsx->desc), fmt, ap);
	va_end(ap);
	if (fsx->verbose && fsx->opno >= fsx->verbose_from)
		printf("%llu %s\n", (unsigned long long)fsx->opno, fsx->desc);
}

_Noreturn void fsx_fail(struct fsx *fsx, const char *fmt, ...)
{
	va_list ap;

	alarm(0);
	fflush(stdout);
	fprintf(stderr, "snapfsx: FAIL: seed %llu, operation %llu (%s): ",
		(unsigned long long)fsx->seed, (unsigned long long)fsx->opno,
		fsx->desc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	daemon_cleanup(fsx, true);
	exit(1);
}

_Noreturn void fsx_fail_errno(struct fsx *fsx, const char *what)
{
	fsx_fail(fsx, "%s: %s", what, strerror(errno));
}

/*
 * A signal or a stuck operation: the daemon is killed first, which ends
 * any FUSE request we wait in, then the mount is cleaned up.
 */
static void on_signal(int sig)
{
	struct fsx *fsx = the_fsx;
	char msg[700];
	int n;

	if (sig == SIGALRM)
		n = snprintf(msg, sizeof(msg), "snapfsx: FAIL: seed %llu, "
			     "operation %llu (%s) did not finish in %d s\n",
			     (unsigned long long)fsx->seed,
			     (unsigned long long)fsx->opno, fsx->desc,
			     FSX_OP_TIMEOUT);
	else
		n = snprintf(msg, sizeof(msg), "snapfsx: stopped by signal %d "
			     "at operation %llu\n", sig,
			     (unsigned long long)fsx->opno);
	if (write(2, msg, (size_t)n) < 0)
		_exit(1);
	if (fsx->pid > 0)
		kill(fsx->pid, SIGKILL);
	daemon_cleanup(fsx, true);
	_exit(1);
}

static enum fsx_opkind pick_op(struct fsx *fsx)
{
	uint64_t total = 0, r;
	int k;

	for (k = 0; k < OP_COUNT; k++)
		total += fsx->weight[k];
	r = fsx_below(fsx, total);
	for (k = 0; k < OP_COUNT - 1; k++) {
		if (r < fsx->weight[k])
			break;
		r -= fsx->weight[k];
	}
	return (enum fsx_opkind)k;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void summary(struct fsx *fsx, double secs)
{
	printf("snapfsx: seed %llu: %llu operations in %.1f s, %.0f ops/s "
	       "(chunk %s, cache %s, maxlen %zu)\n",
	       (unsigned long long)fsx->seed, (unsigned long long)fsx->nops,
	       secs, secs > 0 ? (double)fsx->nops / secs : 0.0,
	       fsx->chunk_size ? fsx->chunk_size : "default",
	       fsx->cache_size ? fsx->cache_size : "default", fsx->maxlen);
	for (int k = 0; k < OP_COUNT; k++)
		printf("  %-10s %10llu\n", fsx_ops[k].name,
		       (unsigned long long)fsx->done[k]);
	printf("  after kill -9: %llu unsynced files lost changes, %llu "
	       "kept them (both allowed)\n",
	       (unsigned long long)fsx->crash_lost,
	       (unsigned long long)fsx->crash_kept);
}

int main(int argc, char **argv)
{
	static struct fsx fsx;
	struct sigaction sa = { .sa_handler = on_signal };
	double t0;
	int ret;

	the_fsx = &fsx;
	ret = fsx_options(&fsx, argc, argv);
	if (ret >= 0)
		return ret;
	fsx.rng = fsx.seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
	fsx.page = (size_t)sysconf(_SC_PAGESIZE);
	fsx.buf = malloc(fsx.maxio + fsx.page);
	fsx.buf2 = malloc(fsx.maxio + fsx.page);
	if (!fsx.buf || !fsx.buf2 || model_init(&fsx)) {
		fprintf(stderr, "snapfsx: out of memory\n");
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	printf("snapfsx: seed %llu\n", (unsigned long long)fsx.seed);
	fflush(stdout);
	snprintf(fsx.desc, sizeof(fsx.desc), "setting up");
	if (daemon_setup(&fsx) || daemon_start(&fsx))
		fsx_fail(&fsx, "the daemon did not start");

	t0 = now();
	for (fsx.opno = 1; fsx.opno <= fsx.nops; fsx.opno++) {
		/* An operation that cannot be done now (no file yet) draws
		 * again: the draws, like everything, follow the seed. */
		do {
			fsx.kind = pick_op(&fsx);
			alarm(FSX_OP_TIMEOUT);
		} while (fsx_ops[fsx.kind].run(&fsx) != 0);
		alarm(0);
		fsx.done[fsx.kind]++;
		if (fsx.opno % FSX_PROGRESS == 0 && !fsx.verbose) {
			printf("snapfsx: %llu operations, %.0f ops/s\n",
			       (unsigned long long)fsx.opno,
			       (double)fsx.opno / (now() - t0));
			fflush(stdout);
		}
	}
	fsx.opno = fsx.nops;

	/* The end: everything as the model says, before and after a
	 * clean remount. */
	fsx_note(&fsx, "final check, remount, check");
	alarm(FSX_OP_TIMEOUT);
	check_all(&fsx);
	if (daemon_stop(&fsx) || daemon_start(&fsx))
		fsx_fail(&fsx, "remount failed");
	check_all(&fsx);
	if (daemon_stop(&fsx))
		fsx_fail(&fsx, "the daemon did not stop cleanly");
	if (daemon_log_check(&fsx))
		fsx_fail(&fsx, "a sanitizer report in the daemon's log");
	alarm(0);
	summary(&fsx, now() - t0);
	daemon_cleanup(&fsx, false);
	model_free(&fsx);
	free(fsx.buf);
	free(fsx.buf2);
	return 0;
}
