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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapfs.h"

#define FUSE_DEVICE	"/dev/fuse"

struct args {
	const char *store;
	const char *mountpoint;
	char real_mountpoint[PATH_MAX];	/* absolute: the daemon leaves cwd */
};

#define USAGE "usage: " SNAPFS_NAME " STORE MOUNTPOINT [-f] [-d] [-s] " \
	"[-o OPTIONS]\n"

static void help(void)
{
	printf(USAGE "\n"
	       "Present every snapshot directory of STORE as a read-only "
	       "directory under MOUNTPOINT.\n\n"
	       "    -f    stay in the foreground\n"
	       "    -d    debug: foreground, trace every request\n"
	       "    -s    single-threaded\n"
	       "    -o    mount options (see below)\n\n");
	fflush(stdout);		/* libfuse writes to stderr and runs helpers */
}

/* The first two arguments that are not options are STORE and MOUNTPOINT;
 * a third one is left for fuse_parse_cmdline, which refuses it. */
static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct args *a = data;

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
	FUSE_OPT_END
};

/* Name the mount after the store, unless its path needs escaping. */
static int add_mount_names(struct fuse_args *args, const char *store)
{
	char real[PATH_MAX], opt[PATH_MAX + 16];

	if (fuse_opt_insert_arg(args, 1, "-osubtype=" SNAPFS_NAME))
		return -ENOMEM;
	if (!realpath(store, real) || strpbrk(real, ",\\"))
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

/* Everything that can be wrong before mounting, said in one line. */
static int check_paths(struct args *a, int *store_fd)
{
	int fd, ret;

	fd = open(a->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: cannot open store: %s\n", SNAPFS_NAME,
			a->store, strerror(errno));
		return -1;
	}
	ret = check_type(a->mountpoint, S_IFDIR);
	if (!ret && !realpath(a->mountpoint, a->real_mountpoint))
		ret = -errno;
	if (ret) {
		fprintf(stderr, "%s: %s: cannot mount here: %s\n", SNAPFS_NAME,
			a->mountpoint, strerror(-ret));
		goto err;
	}
	ret = check_type(FUSE_DEVICE, S_IFCHR);
	if (ret) {
		fprintf(stderr, "%s: %s: %s (is the fuse module loaded?)\n",
			SNAPFS_NAME, FUSE_DEVICE, strerror(-ret));
		goto err;
	}
	*store_fd = fd;
	return 0;
err:
	close(fd);
	return -1;
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
	struct tree *tree = NULL;
	struct args a = { 0 };
	int store_fd = -1, ret, status = 1;

	if (fuse_opt_parse(&args, &a, snapfs_opts, opt_proc) ||
	    fuse_parse_cmdline(&args, &opts)) {
		status = 2;
		goto out_args;
	}
	if (opts.show_help) {
		help();
		fuse_cmdline_help();
		fuse_lowlevel_help();
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
	if (check_paths(&a, &store_fd))
		goto out_args;
	ret = tree_create(store_fd, a.store, opts.debug, &tree);
	if (!ret)
		ret = add_mount_names(&args, a.store);
	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", SNAPFS_NAME, a.store,
			strerror(-ret));
		goto out_tree;
	}

	se = fuse_session_new(&args, &snapfs_ops, sizeof(snapfs_ops), tree);
	if (!se)
		goto out_tree;		/* libfuse said why */
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, a.real_mountpoint))
		goto out_signals;
	if (fuse_daemonize(opts.foreground)) {
		fprintf(stderr, "%s: cannot become a daemon\n", SNAPFS_NAME);
		goto out_unmount;
	}
	ret = run_loop(se, &opts);
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
	tree_destroy(tree);
	close(store_fd);
out_args:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return status;
}
