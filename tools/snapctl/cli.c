/* SPDX-License-Identifier: MIT */
/*
 * What every snapctl subcommand shares: argument parsing, error lines,
 * reading a snapshot and opening a store with the error reported, and the
 * signals that let a long copy clean up after itself.
 */
#include "tools/snapctl/snapctl.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "snapshot/format/snapdir.h"
#include "snapshot/store/store.h"

int cli_flush_stdout(void)
{
	errno = 0;
	if (fflush(stdout) || ferror(stdout))
		return errno ? -errno : -EIO;
	return 0;
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);		/* keep the order of both streams on a tty */
	fprintf(stderr, "%s: ", SNAPCTL_PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* "snapctl: CMD: WHAT (usage: snapctl CMD ARGS)". */
__attribute__((format(printf, 2, 0)))
static void usage_line(const struct snapctl_cmd *cmd, const char *fmt,
		       va_list ap)
{
	char what[256];

	vsnprintf(what, sizeof(what), fmt, ap);
	cli_error("%s: %s (usage: %s %s %s)", cmd->name, what, SNAPCTL_PROG,
		  cmd->name, cmd->args);
}

/* The usage line for cli_parse(); returns false. */
__attribute__((format(printf, 3, 4)))
static bool usage_error(const struct snapctl_cmd *cmd, int *status,
			const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	usage_line(cmd, fmt, ap);
	va_end(ap);
	*status = SNAPCTL_EXIT_USAGE;
	return false;
}

int cli_usage(const struct snapctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	usage_line(cmd, fmt, ap);
	va_end(ap);
	return SNAPCTL_EXIT_USAGE;
}

static const struct snapctl_opt *find_opt(const struct snapctl_opt *opts,
					  size_t n_opts, const char *arg,
					  const char **inline_value)
{
	size_t len = strcspn(arg, "=");

	for (size_t i = 0; i < n_opts; i++) {
		if (strlen(opts[i].name) != len ||
		    strncmp(opts[i].name, arg, len))
			continue;
		*inline_value = arg[len] ? arg + len + 1 : NULL;
		return &opts[i];
	}
	return NULL;
}

bool cli_parse(const struct snapctl_cmd *cmd, int argc, char **argv,
	       const struct snapctl_opt *opts, size_t n_opts,
	       const char **operands, size_t n_operands, int *status)
{
	bool options_done = false;
	size_t got = 0;

	for (int i = 1; i < argc; i++) {
		const struct snapctl_opt *opt;
		const char *arg = argv[i], *value;

		if (options_done || arg[0] != '-' || !strcmp(arg, "-")) {
			if (got == n_operands)
				return usage_error(cmd, status, "unexpected "
						   "argument '%s'", arg);
			operands[got++] = arg;
			continue;
		}
		if (!strcmp(arg, "--")) {
			options_done = true;
			continue;
		}
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			fprintf(stderr, "usage: %s %s %s\n%s\n", SNAPCTL_PROG,
				cmd->name, cmd->args, cmd->summary);
			*status = SNAPCTL_EXIT_USAGE;
			return false;
		}
		opt = find_opt(opts, n_opts, arg, &value);
		if (!opt)
			return usage_error(cmd, status, "unknown option '%s'",
					   arg);
		if (!opt->value) {
			if (value)
				return usage_error(cmd, status,
						   "option '%s' takes no value",
						   opt->name);
			*opt->flag = true;
			continue;
		}
		if (!value) {
			if (i + 1 == argc)
				return usage_error(cmd, status,
						   "option '%s' needs a value",
						   opt->name);
			value = argv[++i];
		}
		*opt->value = value;
	}
	if (got < n_operands)
		return usage_error(cmd, status, "missing argument");
	return true;
}

int cli_read(const struct snapctl_cmd *cmd, const char *dir, unsigned flags,
	     struct snap_manifest *m, struct snap_state **s)
{
	struct snap_err err = { .msg = "" };
	struct stat st;
	int ret;

	/* Say so plainly when there is no directory to look into. */
	if (stat(dir, &st)) {
		ret = -errno;
		cli_error("%s %s: %s", cmd->name, dir, strerror(-ret));
		return ret;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_error("%s %s: not a directory", cmd->name, dir);
		return -ENOTDIR;
	}
	ret = snap_read(dir, flags, m, s, &err);
	if (ret)
		cli_error("%s %s: %s", cmd->name, dir,
			  err.msg[0] ? err.msg : strerror(-ret));
	return ret;
}

int cli_fail(const struct snapctl_cmd *cmd, const char *where, int ret,
	     const struct snap_err *err)
{
	const char *msg = err && err->msg[0] ? err->msg : strerror(-ret);
	size_t n = strlen(where);

	/* Some messages name the store already: say it once. */
	if (!strncmp(msg, where, n) && msg[n] == ':' && msg[n + 1] == ' ')
		msg += n + 2;
	cli_error("%s %s: %s", cmd->name, where, msg);
	return SNAPCTL_EXIT_FAIL;
}

int cli_store_open(const struct snapctl_cmd *cmd, const char *dir,
		   unsigned flags, struct snap_store **s)
{
	const struct snap_store_opts opts = { .flags = flags };
	struct snap_err err = { .msg = "" };
	int ret;

	ret = snap_store_open(dir, &opts, s, &err);
	if (ret)
		cli_fail(cmd, dir, ret, &err);
	return ret;
}

bool cli_snapshot_name_ok(const char *name, const char **why)
{
	if (!name[0])
		*why = "empty";
	else if (strlen(name) > SNAP_STORE_NAME_MAX)
		*why = "too long";
	else if (strchr(name, '/'))
		*why = "contains '/'";
	else if (!strcmp(name, ".") || !strcmp(name, ".."))
		*why = "reserved";
	else
		return true;
	return false;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

void cli_catch_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = {
		.sa_handler = on_signal,
		.sa_flags = SA_RESTART,
	};

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

bool cli_interrupted(void)
{
	return interrupted;
}
