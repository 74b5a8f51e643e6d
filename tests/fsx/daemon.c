/* SPDX-License-Identifier: MIT */
/*
 * The snapfs daemon under test: a store made by snapctl, a daemon started
 * in the foreground (-f) whose pid we keep, a clean stop through
 * fusermount3 -u, a kill -9, and the cleanup that runs whatever happened:
 * unmount, then kill what we started and is still there, by its pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "tests/fsx/fsx.h"

static bool made_work;	/* the work directory is ours to remove */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Whether a FUSE file system is mounted on path. */
static bool is_mounted(const char *path)
{
	char line[2 * FSX_PATH_LEN], mp[FSX_PATH_LEN], type[64];
	bool found = false;
	FILE *f = fopen("/proc/self/mounts", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %4199s %63s", mp, type) == 2 &&
			!strcmp(mp, path) && !strncmp(type, "fuse", 4);
	fclose(f);
	return found;
}

/* Run argv (a program on PATH or a path); its exit status, or -1. */
int daemon_run(struct fsx *fsx, char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int fusermount(struct fsx *fsx, bool lazy)
{
	char *argv[] = { "fusermount3", lazy ? "-uz" : "-u", fsx->mnt, NULL };

	return daemon_run(fsx, argv);
}

int daemon_setup(struct fsx *fsx)
{
	char *argv[8];
	int i = 0;

	if (fsx->workdir) {
		if (snprintf(fsx->work, sizeof(fsx->work), "%s",
			     fsx->workdir) >= (int)sizeof(fsx->work))
			fsx_fail(fsx, "--dir %s: too long", fsx->workdir);
		if (mkdir(fsx->work, 0755) && errno != EEXIST)
			fsx_fail_errno(fsx, fsx->work);
	} else {
		snprintf(fsx->work, sizeof(fsx->work), "/tmp/snapfsx.XXXXXX");
		if (!mkdtemp(fsx->work))
			fsx_fail_errno(fsx, "mkdtemp");
		made_work = true;
	}
	snprintf(fsx->store, sizeof(fsx->store), "%s/store", fsx->work);
	snprintf(fsx->mnt, sizeof(fsx->mnt), "%s/mnt", fsx->work);
	snprintf(fsx->log, sizeof(fsx->log), "%s/snapfs.log", fsx->work);
	if (mkdir(fsx->mnt, 0755) && errno != EEXIST)
		fsx_fail_errno(fsx, fsx->mnt);
	argv[i++] = (char *)fsx->snapctl;
	argv[i++] = "store";
	argv[i++] = "init";
	if (fsx->chunk_size) {
		argv[i++] = "--chunk-size";
		argv[i++] = (char *)fsx->chunk_size;
	}
	argv[i++] = fsx->store;
	argv[i] = NULL;
	if (daemon_run(fsx, argv)) {
		fprintf(stderr, "snapfsx: %s store init %s failed\n",
			fsx->snapctl, fsx->store);
		return -1;
	}
	return 0;
}

/* The end of the daemon's log (its last 2 KiB) on stderr. */
static void show_log(struct fsx *fsx)
{
	char buf[2048];
	size_t n;
	FILE *f = fopen(fsx->log, "r");

	if (!f)
		return;
	if (fseek(f, -(long)sizeof(buf), SEEK_END))
		rewind(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	fprintf(stderr, "snapfsx: the end of the daemon's log (%s):\n",
		fsx->log);
	fwrite(buf, 1, n, stderr);
}

/* Start the daemon and wait (up to 10 s) for its mount. */
int daemon_start(struct fsx *fsx)
{
	char opt[512];
	char *argv[8];
	int i = 0, status;
	pid_t pid;
	FILE *log;

	if (is_mounted(fsx->mnt))
		fsx_fail(fsx, "%s is still mounted", fsx->mnt);
	log = fopen(fsx->log, "a");
	if (!log)
		fsx_fail_errno(fsx, fsx->log);
	fprintf(log, "snapfsx: daemon %u starts at operation %llu\n",
		++fsx->starts, (unsigned long long)fsx->opno);
	fclose(log);
	argv[i++] = (char *)fsx->snapfs;
	argv[i++] = fsx->store;
	argv[i++] = fsx->mnt;
	argv[i++] = "-f";
	if (fsx->cache_size || fsx->gc_bytes) {
		snprintf(opt, sizeof(opt), "%s%.200s%s%s%.200s",
			 fsx->cache_size ? "cache_size=" : "",
			 fsx->cache_size ? fsx->cache_size : "",
			 fsx->cache_size && fsx->gc_bytes ? "," : "",
			 fsx->gc_bytes ? "gc_bytes=" : "",
			 fsx->gc_bytes ? fsx->gc_bytes : "");
		argv[i++] = "-o";
		argv[i++] = opt;
	}
	argv[i] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fsx_fail_errno(fsx, "fork");
	if (pid == 0) {
		int fd = open(fsx->log, O_WRONLY | O_APPEND);
		int null = open("/dev/null", O_RDONLY);

		if (fd < 0 || null < 0 || dup2(null, 0) < 0 ||
		    dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		/* Our handlers are reset by exec; the mask is not. */
		signal(SIGINT, SIG_DFL);
		execv(fsx->snapfs, argv);
		_exit(127);
	}
	fsx->pid = pid;
	for (int t = 0; t < 1000; t++) {
		if (is_mounted(fsx->mnt)) {
			model_mounted(fsx);
			return 0;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fsx->pid = -1;
			fprintf(stderr, "snapfsx: %s exited with status %d "
				"before mounting\n", fsx->snapfs,
				WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			show_log(fsx);
			return -1;
		}
		sleep_ms(10);
	}
	fprintf(stderr, "snapfsx: %s did not mount in 10 s\n", fsx->snapfs);
	return -1;
}

/* Wait up to ms for the daemon to exit; its wait status, or -1. */
static int reap(struct fsx *fsx, long ms)
{
	int status;

	for (long t = 0; t <= ms; t += 10) {
		pid_t r = waitpid(fsx->pid, &status, WNOHANG);

		if (r == fsx->pid || (r < 0 && errno == ECHILD)) {
			fsx->pid = -1;
			return r == -1 ? 0 : status;
		}
		sleep_ms(10);
	}
	return -1;
}

/* Close everything, unmount with fusermount3 -u, expect exit status 0. */
int daemon_stop(struct fsx *fsx)
{
	int status;

	model_close_all(fsx);
	if (fusermount(fsx, false)) {
		fprintf(stderr, "snapfsx: fusermount3 -u %s failed\n",
			fsx->mnt);
		return -1;
	}
	status = reap(fsx, 30000);
	if (status == -1) {
		fprintf(stderr, "snapfsx: the daemon still runs 30 s after "
			"fusermount3 -u\n");
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "snapfsx: the daemon ended with wait status "
			"0x%x after fusermount3 -u, expected exit 0\n", status);
		show_log(fsx);
		return -1;
	}
	return 0;
}

/* kill -9, then what the dead mount holds goes: our fds, the mount. */
void daemon_crash(struct fsx *fsx)
{
	kill(fsx->pid, SIGKILL);
	if (reap(fsx, 30000) == -1)
		fsx_fail(fsx, "the daemon survived kill -9 for 30 s");
	for (int i = 0; i < FSX_MAX_FILES; i++) {
		struct mfile *f = &fsx->files[i];

		if (f->used && f->fd >= 0)
			close(f->fd);	/* fails: ENOTCONN */
		f->fd = -1;
		if (f->used && !f->nlink) {
			f->fd = -1;
			model_orphan_gone(fsx, i);
		}
	}
	if (fusermount(fsx, false) && fusermount(fsx, true))
		fsx_fail(fsx, "fusermount3 -u of the dead mount failed");
}

/* The daemon's log carries no sanitizer report; 0 when clean. */
int daemon_log_check(struct fsx *fsx)
{
	char line[1024];
	int bad = 0;
	FILE *f = fopen(fsx->log, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "Sanitizer") || strstr(line, "runtime error"))
			bad++;
	fclose(f);
	return bad ? -1 : 0;
}

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	return remove(path) && errno != ENOENT ? -1 : 0;
}

/* Whatever happened: unmount, stop what we started, keep or remove. */
void daemon_cleanup(struct fsx *fsx, bool failed)
{
	static bool done;

	if (done)
		return;
	done = true;
	for (int i = 0; i < FSX_MAX_FILES; i++) {
		if (fsx->files[i].fd >= 0)
			close(fsx->files[i].fd);
		fsx->files[i].fd = -1;
	}
	if (fsx->pid > 0) {
		/* Unmounted, the daemon exits; else (busy) SIGTERM. */
		if (!is_mounted(fsx->mnt) || fusermount(fsx, false) ||
		    reap(fsx, 5000) == -1) {
			kill(fsx->pid, SIGTERM);
			if (reap(fsx, 5000) == -1) {
				kill(fsx->pid, SIGKILL);
				reap(fsx, 5000);
			}
		}
	}
	if (fsx->mnt[0] && is_mounted(fsx->mnt) && fusermount(fsx, false))
		fusermount(fsx, true);
	if (failed && fsx->log[0]) {
		show_log(fsx);
		fprintf(stderr, "snapfsx: the store and the daemon's log are "
			"kept in %s\n", fsx->work);
		return;
	}
	if (made_work && !fsx->keep && !is_mounted(fsx->mnt))
		nftw(fsx->work, remove_one, 16,
		     FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* A gc now (the attribute's reply waits for it), then one whole file. */
int op_gc(struct fsx *fsx)
{
	int file = model_pick_file(fsx);

	fsx_note(fsx, "gc (setxattr user.snapfs.gc on the root)%s%s",
		 file >= 0 ? ", then read all of " : "",
		 file >= 0 ? model_label(fsx, file) : "");
	if (setxattr(fsx->mnt, "user.snapfs.gc", "now", 3, 0))
		fsx_fail_errno(fsx, "setxattr user.snapfs.gc");
	if (file >= 0)
		check_file(fsx, file);
	return 0;
}

int op_remount(struct fsx *fsx)
{
	fsx_note(fsx, "unmount, mount again");
	if (daemon_stop(fsx) || daemon_start(fsx))
		fsx_fail(fsx, "remount failed");
	check_all(fsx);
	return 0;
}

int op_crash(struct fsx *fsx)
{
	fsx_note(fsx, "kill -9 of the daemon, mount again");
	daemon_crash(fsx);
	if (daemon_start(fsx))
		fsx_fail(fsx, "mount after kill -9 failed");
	check_after_crash(fsx);
	return 0;
}
