/* SPDX-License-Identifier: MIT */
/*
 * snapvm: the KVM monitor of snapfs. Subcommands come from one table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cmd.h"
#include "vmm/kvm.h"


static int cmd_check(int argc, char **argv)
{
	struct kvm_host h;
	struct snap_err err;

	if (argc != 1) {
		fprintf(stderr, "usage: snapvm check\n");
		return 2;
	}
	if (kvm_host_open_checked(&h, kvm_host_path(), stdout, &err)) {
		fflush(stdout);
		fprintf(stderr, "snapvm: %s\n", err.msg);
		return 1;
	}
	kvm_host_close(&h);
	printf("ok: every capability snapvm needs is there\n");
	return 0;
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "check", cmd_check, "check that this host's KVM has what snapvm "
			      "needs" },
	{ "run", cmd_run, "boot a kernel in a new VM (--help for options)" },
	{ "restore", cmd_restore, "run a VM from a snapshot directory "
				  "(--help for options)" },
	{ "ctl", cmd_ctl, "send a command to a running VM's control socket" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: snapvm COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
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
	if (!strcmp(argv[1], "--version")) {
		printf("snapvm %s\n", SNAPVM_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "snapvm: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
