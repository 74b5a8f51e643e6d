/* SPDX-License-Identifier: MIT */
/*
 * snapvm: the KVM monitor of snapfs. Subcommands come from one table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm.h"

#define SNAPVM_VERSION "0.1"

static const char *kvm_path(void)
{
	const char *p = getenv("SNAPVM_KVM");	/* for tests */

	return p && *p ? p : "/dev/kvm";
}

static int cmd_check(int argc, char **argv)
{
	struct kvm_host h;
	const char *missing;
	int ret;

	if (argc != 1) {
		fprintf(stderr, "usage: snapvm check\n");
		return 2;
	}
	ret = kvm_host_open(&h, kvm_path());
	if (ret == -EPROTO && h.api_version < 0) {
		fprintf(stderr, "snapvm: %s: not a KVM device\n", kvm_path());
		return 1;
	}
	if (ret == -EPROTO) {
		fprintf(stderr, "snapvm: %s: KVM API version %d, 12 expected\n",
			kvm_path(), h.api_version);
		return 1;
	}
	if (ret) {
		fprintf(stderr, "snapvm: %s: %s%s\n", kvm_path(),
			strerror(-ret), ret == -ENOENT ?
			" (KVM is not available on this machine)" : "");
		return 1;
	}
	printf("%s: KVM API version %d\n", kvm_path(), h.api_version);
	ret = kvm_host_check(&h, stdout, &missing);
	kvm_host_close(&h);
	if (ret) {
		fprintf(stderr, "snapvm: %s: capability %s missing\n",
			kvm_path(), missing);
		return 1;
	}
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
