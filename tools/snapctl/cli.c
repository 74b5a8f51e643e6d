/* SPDX-License-Identifier: MIT */
/*
 * What every snapctl subcommand shares: argument parsing, error lines and
 * reading a snapshot with the error reported.
 */
#include "snapctl.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "snapdir.h"

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

/* "snapctl: CMD: WHAT (usage: snapctl CMD ARGS)"; returns false. */
__attribute__((format(printf, 3, 4)))
static bool usage_error(const struct snapctl_cmd *cmd, int *status,
			const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	cli_error("%s: %s (usage: %s %s %s)", cmd->name, what, SNAPCTL_PROG,
		  cmd->name, cmd->args);
	*status = SNAPCTL_EXIT_USAGE;
	return false;
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
