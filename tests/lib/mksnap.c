/* SPDX-License-Identifier: MIT */
/*
 * mksnap: write a complete sample snapshot (every state field set) for the
 * demo and the integration tests, until snapvm produces real ones.
 *
 *   mksnap DIR [--vcpus N] [--mem BYTES] [--seed S] [--digest]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/lib/testutil.h"

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vcpus", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },
		{ "digest", no_argument, NULL, 'd' },
		{ 0 },
	};
	unsigned long vcpus = 2, seed = 1;
	unsigned long long mem = 64ull << 20;
	struct snap_err err = { "" };
	unsigned flags = 0;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': vcpus = strtoul(optarg, NULL, 0); break;
		case 'm': mem = strtoull(optarg, NULL, 0); break;
		case 's': seed = strtoul(optarg, NULL, 0); break;
		case 'd': flags |= SNAP_MEMORY_DIGEST; break;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: mksnap DIR [--vcpus N] [--mem BYTES] "
			"[--seed S] [--digest]\n");
		return 2;
	}
	if (test_write_snapshot(&snap_io_posix, argv[optind], (uint32_t)vcpus,
				mem, (uint32_t)seed, flags, &err)) {
		fprintf(stderr, "mksnap: %s: %s\n", argv[optind], err.msg);
		return 1;
	}
	return 0;
}
