/* SPDX-License-Identifier: MIT */
/*
 * snapctl: the command table and dispatch.
 *
 * A subcommand is one row of commands[] and one function; a name of
 * several words ("store gc") is matched word by word against argv.
 */
#include "tools/snapctl/snapctl.h"

#include <stdio.h>
#include <string.h>

static const struct snapctl_cmd commands[] = {
	{ "inspect", "[--json] DIR",
	  "show the manifest and a summary of the state", inspect_run },
	{ "verify", "[--quick] DIR",
	  "check a snapshot's files, fields and digests", verify_run },
	{ "import", "DIR STORE NAME",
	  "copy a snapshot directory into a store as NAME", import_run },
	{ "export", "STORE NAME DIR",
	  "copy snapshot NAME out of a store as directory DIR", export_run },
	{ "store init", "[--chunk-size N[K|M]] STORE",
	  "make an empty memory store", store_init_run },
	{ "store ls", "STORE",
	  "list a store's snapshots with their memory sizes", store_ls_run },
	{ "store stats", "[--json] STORE",
	  "show a store's sizes and its dedup and compression ratios",
	  store_stats_run },
	{ "store verify", "STORE",
	  "check every name, image and chunk of a store", store_verify_run },
	{ "store gc", "STORE",
	  "free what no snapshot uses (a mounted store's daemon does it)",
	  store_gc_run },
};

static void usage(FILE *out)
{
	int width = 0;

	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		int n = (int)(strlen(commands[i].name) +
			      strlen(commands[i].args) + 1);

		if (n > width)
			width = n;
	}
	fprintf(out, "usage: %s COMMAND [ARGS]\n"
		"       %s --help | --version\n\ncommands:\n",
		SNAPCTL_PROG, SNAPCTL_PROG);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const struct snapctl_cmd *c = &commands[i];
		int n = (int)(strlen(c->name) + strlen(c->args) + 1);

		fprintf(out, "  %s %s%*s  %s\n", c->name, c->args, width - n,
			"", c->summary);
	}
	fprintf(out, "\nexit status: 0 success, 1 failure, 2 wrong usage\n");
}

/*
 * Number of argv words that spell name ("store gc" needs "store" "gc"),
 * or 0 when argv does not start with it.
 */
static int match_words(const char *name, int argc, char **argv)
{
	int used = 0;

	while (*name) {
		size_t len = strcspn(name, " ");

		if (used == argc || strlen(argv[used]) != len ||
		    strncmp(argv[used], name, len))
			return 0;
		used++;
		name += len;
		name += strspn(name, " ");
	}
	return used;
}

/* The longest name that matches, so "store gc" wins over "store". */
static const struct snapctl_cmd *find_command(int argc, char **argv,
					      int *used)
{
	const struct snapctl_cmd *best = NULL;

	*used = 0;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		int n = match_words(commands[i].name, argc, argv);

		if (n > *used) {
			*used = n;
			best = &commands[i];
		}
	}
	return best;
}

/* True when word is the first of a longer name ("store" of "store gc"). */
static bool is_group(const char *word)
{
	size_t len = strlen(word);

	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strncmp(commands[i].name, word, len) &&
		    commands[i].name[len] == ' ')
			return true;
	return false;
}

/*
 * Anything lost on stdout (a full disk, a closed pipe) is a failure, said
 * once: a command that failed has already said why.
 */
static int finish_stdout(int status)
{
	int ret = cli_flush_stdout();

	if (ret && status == SNAPCTL_EXIT_OK) {
		cli_error("write error on standard output: %s", strerror(-ret));
		return SNAPCTL_EXIT_FAIL;
	}
	return status;
}

int main(int argc, char **argv)
{
	const struct snapctl_cmd *cmd;
	int used;

	if (argc == 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return finish_stdout(SNAPCTL_EXIT_OK);
	}
	if (argc < 2) {
		usage(stderr);
		return SNAPCTL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("%s %s\n", SNAPCTL_PROG, SNAPFS_VERSION);
		return finish_stdout(SNAPCTL_EXIT_OK);
	}
	cmd = find_command(argc - 1, argv + 1, &used);
	if (!cmd) {
		if (is_group(argv[1]) && argc > 2)
			cli_error("'%s %s' is not a command", argv[1],
				  argv[2]);
		else if (is_group(argv[1]))
			cli_error("'%s' needs a subcommand", argv[1]);
		else
			cli_error("'%s' is not a command", argv[1]);
		usage(stderr);
		return SNAPCTL_EXIT_USAGE;
	}
	/* The subcommand sees its last name word as argv[0]. */
	return finish_stdout(cmd->run(cmd, argc - used, argv + used));
}
