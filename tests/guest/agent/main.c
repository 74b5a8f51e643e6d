/* SPDX-License-Identifier: MIT */
/*
 * snapfs-agent: the command table (agent.h says what the program is).
 */
#include "tests/guest/agent/agent.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name, *args, *summary;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "serve", "[-p PORT] [--unix PATH]",
	  "in the guest: answer requests on vsock", agent_serve },
	{ "exec", "CONN [--] CMD...",
	  "run CMD in the guest, with its output and status", client_exec },
	{ "put", "CONN [--mode M] LOCAL REMOTE",
	  "copy a file (- is stdin) into the guest", client_put },
	{ "get", "CONN REMOTE [LOCAL]",
	  "copy a file out of the guest (to stdout without LOCAL)",
	  client_get },
	{ "sync", "CONN", "sync the guest's file systems", client_sync },
	{ "ping", "CONN", "is the agent there", client_ping },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: %s COMMAND [ARGS]\n\ncommands:\n", AGENT_PROG);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-5s %-28s %s\n", commands[i].name,
			commands[i].args, commands[i].summary);
	fprintf(out, "\nCONN: --socket PATH (the VMM's vsock unix socket) or "
		"--unix PATH (an agent's),\n      [--port P] (default %u), "
		"[--wait SECONDS] (retry connecting)\n"
		"exit status: exec: the command's, 255 without one; others: "
		"0, 1 on failure;\n2 wrong usage\n", AGENT_PORT);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command %s (%s --help)\n", AGENT_PROG,
		argv[1], AGENT_PROG);
	return 2;
}
