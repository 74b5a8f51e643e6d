/* SPDX-License-Identifier: MIT */
/*
 * snapfs STORE MOUNTPOINT [-f] [-d] [-s] [-o OPTIONS]
 *
 * Options, the checks made before mounting (each failure is one line and
 * exit status 1; wrong usage is status 2), the FUSE session, the daemon,
 * and a clean unmount on SIGTERM, SIGINT, SIGHUP or fusermount3 -u.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/snapfs.h"

#define FUSE_DEVICE	"/dev/fuse"

struct args {
	const char *store;
	const char *mountpoint;
	char real_mountpoint[PATH_MAX];	/* absolute: the daemon leaves cwd */
	char *cache_size;		/* -o cache_size=N[KMG] */
	unsigned readahead_kb;		/* -o readahead_kb=N */
	unsigned ws_window;		/* -o ws_window=SECONDS */
	char *gc_bytes;			/* -o gc_bytes=N[KMG] */
	char *chunk_cache;		/* -o chunk_cache=DIR */
	char *chunk_cache_size;		/* -o chunk_cache_size=N[KMG] */
	bool rdonly;			/* -o ro */
};

#define READAHEAD_DEFAULT	1024	/* KiB: one request, 1 MiB */
#define GC_BYTES_DEFAULT	(64u << 20)	/* gc.c: the bound's floor */
#define WS_WINDOW_DEFAULT	30	/* seconds */

enum { KEY_RO = 1 };

#define USAGE "usage: " SNAPFS_NAME " STORE MOUNTPOINT [-f] [-d] [-s] " \
	"[-o OPTIONS]\n"

/*
 * The options a user of snapfs needs, libfuse's among them; libfuse's own
 * listing (fuse_cmdline_help, fuse_lowlevel_help) also shows knobs of its
 * internals that snapfs sets itself. The same as snapfs(8), which a test
 * checks.
 */
static void help(void)
{
	printf(USAGE "\n"
	       "Serve the memory store STORE (snapctl store init makes one) "
	       "at MOUNTPOINT:\none directory per snapshot, one file per "
	       "image.\n\n"
	       "    -f    stay in the foreground (default: a daemon once "
	       "mounted)\n"
	       "    -d    debug: foreground, trace every request\n"
	       "    -s    single-threaded\n"
	       "    -o    mount options, comma-separated (below)\n"
	       "    -h, --help       this text\n"
	       "    -V, --version    snapfs's and libfuse's versions\n\n"
	       "options:\n"
	       "    -o cache_size=N[K|M|G]  decompressed chunks kept in "
	       "memory (default 256M)\n"
	       "    -o readahead_kb=N       the mount's read-ahead in KiB "
	       "(default 1024;\n"
	       "                            0 leaves the kernel's)\n"
	       "    -o ws_window=SECONDS    how long a working set is "
	       "recorded at most\n"
	       "                            (default 30; docs/snapfs.md)\n"
	       "    -o gc_bytes=N[K|M|G]    a background gc after this many "
	       "chunk bytes\n"
	       "                            written, or an eighth of what "
	       "the last kept\n"
	       "                            (default 64M; 0: none; "
	       "docs/snapfs.md)\n"
	       "    -o chunk_cache=DIR      a store in RADOS: keep the "
	       "chunks read in DIR,\n"
	       "                            a local cache tier (default: "
	       "none)\n"
	       "    -o chunk_cache_size=N[K|M|G]  what DIR holds at most "
	       "(default 1G)\n"
	       "    -o ro                   read-only: beside another "
	       "process writing the store\n"
	       "    -o allow_other          let other users in (default: "
	       "only the user who\n"
	       "                            mounted; modes are always "
	       "checked)\n"
	       "    -o max_threads=N        threads serving requests at "
	       "most (default 10)\n"
	       "    -o auto_unmount         unmount when snapfs dies "
	       "(through fusermount3)\n\n"
	       "exit status: 0 unmounted cleanly, 1 failure, 2 wrong usage\n");
	fflush(stdout);
}

/* The first two arguments that are not options are STORE and MOUNTPOINT;
 * a third one is left for fuse_parse_cmdline, which refuses it. */
static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct args *a = data;

	if (key == KEY_RO) {
		a->rdonly = true;
		return 1;	/* the kernel enforces it too */
	}
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (!a->store) {
		a->store = arg;
		return 0;
	}
	if (!a->mountpoint) {
		a->mountpoint = arg;
		return 0;
	}
	return 1;
}

static const struct fuse_opt snapfs_opts[] = {
	{ "cache_size=%s", offsetof(struct args, cache_size), 0 },
	{ "readahead_kb=%u", offsetof(struct args, readahead_kb), 0 },
	{ "ws_window=%u", offsetof(struct args, ws_window), 0 },
	{ "gc_bytes=%s", offsetof(struct args, gc_bytes), 0 },
	{ "chunk_cache=%s", offsetof(struct args, chunk_cache), 0 },
	{ "chunk_cache_size=%s", offsetof(struct args, chunk_cache_size), 0 },
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_END
};

/* "256M" into bytes; -EINVAL when it is not a size. */
static int parse_size(const char *text, size_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; end++; break;
	case '\0': break;
	default: return -EINVAL;
	}
	if (*end || v == 0)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

/*
 * Name the mount after the store, unless its path needs escaping, and let
 * the kernel check permissions (modes and owners are real).
 */
static int add_mount_names(struct fuse_args *args, const char *store)
{
	char real[PATH_MAX], opt[PATH_MAX + 16];

	if (fuse_opt_insert_arg(args, 1, "-osubtype=" SNAPFS_NAME) ||
	    fuse_opt_insert_arg(args, 1, "-odefault_permissions"))
		return -ENOMEM;
	if (snap_store_name(store, real, sizeof(real)) ||
	    strpbrk(real, ",\\"))
		return 0;
	snprintf(opt, sizeof(opt), "-ofsname=%s", real);
	return fuse_opt_insert_arg(args, 1, opt) ? -ENOMEM : 0;
}

/* stat path and check that it has that type (ENOTDIR, ENODEV if not). */
static int check_type(const char *path, mode_t type)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	if ((st.st_mode & S_IFMT) != type)
		return type == S_IFDIR ? -ENOTDIR : -ENODEV;
	return 0;
}

/* -o chunk_cache made absolute: the daemon leaves cwd before opening. */
static int absolute_chunk_cache(struct args *a)
{
	char cwd[PATH_MAX], *abs;

	if (!a->chunk_cache || a->chunk_cache[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)) ||
	    asprintf(&abs, "%s/%s", cwd, a->chunk_cache) < 0) {
		fprintf(stderr, "%s: chunk_cache=%s: %s\n", SNAPFS_NAME,
			a->chunk_cache, strerror(errno));
		return -1;
	}
	free(a->chunk_cache);
	a->chunk_cache = abs;
	return 0;
}

/* Everything that can be wrong before mounting, said in one line. */
static int check_paths(struct args *a)
{
	int ret;

	if (absolute_chunk_cache(a))
		return -1;

	ret = check_type(a->mountpoint, S_IFDIR);
	if (!ret && !realpath(a->mountpoint, a->real_mountpoint))
		ret = -errno;
	if (ret) {
		fprintf(stderr, "%s: %s: cannot mount here: %s\n", SNAPFS_NAME,
			a->mountpoint, strerror(-ret));
		return -1;
	}
	ret = check_type(FUSE_DEVICE, S_IFCHR);
	if (ret) {
		fprintf(stderr, "%s: %s: %s (is the fuse module loaded?)\n",
			SNAPFS_NAME, FUSE_DEVICE, strerror(-ret));
		return -1;
	}
	return 0;
}

/*
 * Become a daemon before anything starts a thread (the store's in RADOS,
 * the background gc), since only the forking thread survives a fork: the
 * parent waits until the child says it is mounted, then exits 0, or exits
 * with the child's status when the child failed (after saying why on the
 * caller's stderr). *ready gets the pipe to say it on.
 */
static int daemon_begin(int *ready)
{
	int fds[2], status;
	pid_t pid;
	char ok;

	if (pipe(fds)) {
		fprintf(stderr, "%s: cannot become a daemon: pipe: %s\n",
			SNAPFS_NAME, strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: cannot become a daemon: fork: %s\n",
			SNAPFS_NAME, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		*ready = fds[1];
		return setsid() < 0 ? -1 : 0;
	}
	close(fds[1]);
	if (read(fds[0], &ok, 1) == 1 && ok == 'o')
		_exit(0);
	if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		_exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
	_exit(1);
}

/* Mounted: leave the caller's terminal and working directory, and let
 * the parent go. */
static int daemon_ready(int ready)
{
	int null = open("/dev/null", O_RDWR);

	if (null < 0 || chdir("/") || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
	    dup2(null, 2) < 0) {
		fprintf(stderr, "%s: cannot become a daemon: %s\n",
			SNAPFS_NAME, strerror(errno));
		return -1;
	}
	if (null > 2)
		close(null);
	if (write(ready, "o", 1) != 1)
		return -1;
	close(ready);
	return 0;
}

/* Open the store as the options say; one line when it cannot be. */
static int open_store(struct args *a, struct snap_store **store)
{
	struct snap_store_opts o = { 0 };
	size_t chunk_cache_bytes = 0;
	struct snap_err err;

	if (a->cache_size && parse_size(a->cache_size, &o.cache_bytes)) {
		fprintf(stderr, "%s: cache_size=%s: not a size (N, NK, NM or "
			"NG)\n", SNAPFS_NAME, a->cache_size);
		return -1;
	}
	if (a->chunk_cache_size &&
	    parse_size(a->chunk_cache_size, &chunk_cache_bytes)) {
		fprintf(stderr, "%s: chunk_cache_size=%s: not a size (N, NK, "
			"NM or NG)\n", SNAPFS_NAME, a->chunk_cache_size);
		return -1;
	}
	o.chunk_cache_dir = a->chunk_cache;
	o.chunk_cache_bytes = chunk_cache_bytes;
	if (a->rdonly)
		o.flags |= SNAP_STORE_RDONLY;
	if (snap_store_open(a->store, &o, store, &err)) {
		fprintf(stderr, "%s: %s\n", SNAPFS_NAME, err.msg);
		return -1;
	}
	return 0;
}

/* The background gc, as -o gc_bytes says; one line when it cannot be. */
static int start_gc(struct fs *fs, const struct args *a)
{
	size_t bytes = GC_BYTES_DEFAULT;
	int ret;

	if (a->gc_bytes && strcmp(a->gc_bytes, "0") &&
	    parse_size(a->gc_bytes, &bytes)) {
		fprintf(stderr, "%s: gc_bytes=%s: not a size (N, NK, NM or "
			"NG; 0: no background gc)\n", SNAPFS_NAME,
			a->gc_bytes);
		return -1;
	}
	if (a->gc_bytes && !strcmp(a->gc_bytes, "0"))
		bytes = 0;
	ret = fs_gc_start(fs, bytes);
	if (ret)
		fprintf(stderr, "%s: background gc: %s\n", SNAPFS_NAME,
			strerror(-ret));
	return ret;
}

static int run_loop(struct fuse_session *se,
		    const struct fuse_cmdline_opts *opts)
{
	struct fuse_loop_config *cfg;
	int ret;

	if (opts->singlethread)
		return fuse_session_loop(se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, (unsigned)opts->clone_fd);
	if (opts->max_idle_threads != UINT_MAX)	/* UINT_MAX: not given */
		fuse_loop_cfg_set_idle_threads(cfg, opts->max_idle_threads);
	fuse_loop_cfg_set_max_threads(cfg, opts->max_threads);
	ret = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return ret;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts = { 0 };
	struct fuse_session *se;
	struct snap_store *store = NULL;
	struct fs *fs = NULL;
	struct args a = {
		.readahead_kb = READAHEAD_DEFAULT,
		.ws_window = WS_WINDOW_DEFAULT,
	};
	int ret, status = 1, ready = -1;

	if (fuse_opt_parse(&args, &a, snapfs_opts, opt_proc) ||
	    fuse_parse_cmdline(&args, &opts)) {
		status = 2;
		goto out_args;
	}
	if (opts.show_help) {
		help();
		status = 0;
		goto out_args;
	}
	if (opts.show_version) {
		printf("%s: libfuse %s\n", SNAPFS_NAME, fuse_pkgversion());
		fflush(stdout);
		fuse_lowlevel_version();
		status = 0;
		goto out_args;
	}
	if (!a.store || !a.mountpoint || opts.mountpoint) {
		fputs(USAGE, stderr);
		status = 2;
		goto out_args;
	}
	if (check_paths(&a) ||
	    (!opts.foreground && daemon_begin(&ready)) ||
	    open_store(&a, &store))
		goto out_args;
	ret = fs_create(store, a.rdonly, opts.debug, &fs);
	if (!ret)
		ret = add_mount_names(&args, a.store);
	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", SNAPFS_NAME, a.store,
			strerror(-ret));
		goto out_tree;
	}

	fs->ws_window = a.ws_window;
	if (start_gc(fs, &a))
		goto out_tree;
	se = fuse_session_new(&args, &snapfs_ops, sizeof(snapfs_ops), fs);
	if (!se)
		goto out_tree;		/* libfuse said why */
	fs->se = se;
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, a.real_mountpoint))
		goto out_signals;
	if (a.readahead_kb)	/* not fatal: reads only get smaller */
		fs_set_readahead(a.real_mountpoint, a.readahead_kb);
	if (ready >= 0 && daemon_ready(ready))
		goto out_unmount;
	ret = run_loop(se, &opts);
	fs_stop_pushes(fs);	/* they notify through se */
	/* An exit asked by a signal is a clean one; libfuse reports the
	 * signal's number. */
	if (ret == SIGTERM || ret == SIGINT || ret == SIGHUP)
		ret = 0;
	if (ret)
		fprintf(stderr, "%s: %s: session failed: %s\n", SNAPFS_NAME,
			a.real_mountpoint, strerror(ret < 0 ? -ret : ret));
	else
		status = 0;

out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_tree:
	fs_gc_stop(fs);
	/* Every image the kernel still held is synced as it closes. */
	fs_destroy(fs);
	snap_store_close(store);
out_args:
	free(opts.mountpoint);
	free(a.cache_size);
	free(a.chunk_cache);
	free(a.chunk_cache_size);
	free(a.gc_bytes);
	fuse_opt_free_args(&args);
	return status;
}
