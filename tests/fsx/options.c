/* SPDX-License-Identifier: MIT */
/*
 * snapfsx's command line and its table of operations, with the weights
 * that decide how often each is drawn.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/fsx/fsx.h"

/*
 * Weights per thousand draws. Data operations dominate; name changes are
 * rarer, and a remount or a kill -9 costs a daemon start (tens of ms).
 */
const struct fsx_op fsx_ops[OP_COUNT] = {
	[OP_CREATE]	= { "create",	 op_create,	 40 },
	[OP_WRITE]	= { "write",	 op_write,	200 },
	[OP_READ]	= { "read",	 op_read,	200 },
	[OP_TRUNCATE]	= { "truncate",	 op_truncate,	 50 },
	[OP_MAPREAD]	= { "mapread",	 op_mapread,	 60 },
	[OP_MAPWRITE]	= { "mapwrite",	 op_mapwrite,	 60 },
	[OP_MAPPRIV]	= { "mappriv",	 op_mappriv,	 20 },
	[OP_COPY]	= { "copy",	 op_copy,	 80 },
	[OP_CLONE]	= { "clone",	 op_clone,	  8 },
	[OP_LINK]	= { "link",	 op_link,	 25 },
	[OP_RENAME]	= { "rename",	 op_rename,	 30 },
	[OP_UNLINK]	= { "unlink",	 op_unlink,	 25 },
	[OP_MKDIR]	= { "mkdir",	 op_mkdir,	  6 },
	[OP_RMSNAP]	= { "rmsnap",	 op_rmsnap,	  4 },
	[OP_RENAMEDIR]	= { "renamedir", op_renamedir,	  4 },
	[OP_FSYNC]	= { "fsync",	 op_fsync,	 50 },
	[OP_FSYNCDIR]	= { "fsyncdir",	 op_fsyncdir,	 15 },
	[OP_CLOSE]	= { "close",	 op_close,	 40 },
	[OP_GC]		= { "gc",	 op_gc,		  3 },
	[OP_REMOUNT]	= { "remount",	 op_remount,	  2 },
	[OP_CRASH]	= { "crash",	 op_crash,	  2 },
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: snapfsx [OPTIONS]\n"
"\n"
"Random operations on a snapfs mount of a new store, checked against a\n"
"model (tests/fsx/snapfsx.c says what is checked, and the rule after a\n"
"kill -9 of the daemon).\n"
"\n"
"    --seed N          the generator's seed (default: from the clock)\n"
"    --ops N           stop after N operations (default 10000)\n"
"    --maxlen N[K|M]   a file's largest size (default 1M)\n"
"    --maxio N[K|M]    the largest read, write or copy (default 256K)\n"
"    --chunk-size S    the store's chunk size (snapctl store init\n"
"                      --chunk-size; default the store's, 64K)\n"
"    --cache-size S    the daemon's chunk cache (snapfs -o cache_size)\n"
"    --gc-bytes S      the daemon's background gc bound (-o gc_bytes)\n"
"    --weight OP=N     how often OP is drawn, per thousand; 0: never\n"
"                      (OP: ");
	for (int k = 0; k < OP_COUNT; k++)
		fprintf(f, "%s%s", fsx_ops[k].name,
			k + 1 < OP_COUNT ? " " : ")\n");
	fprintf(f,
"    --snapfs PATH     the daemon (default $BUILD/snapfs, BUILD=build)\n"
"    --snapctl PATH    snapctl (default $BUILD/snapctl)\n"
"    --dir DIR         work here (store, mount, daemon log) instead of a\n"
"                      new /tmp/snapfsx.XXXXXX\n"
"    --keep            keep the work directory (always kept on failure)\n"
"    --avoid BUG       step around a known snapfs bug (tests/fsx/README.md)\n"
"                      keeping the operations: deadinode (close every\n"
"                      file before rm -r of a snapshot), cutadopt (copy\n"
"                      in pieces what the store would adopt from a file\n"
"                      shrunk after a copy and mounted again since)\n"
"    -v, --verbose     print every operation\n"
"    --verbose-from N  print operations from number N on\n"
"    -h, --help        this text\n"
"\n"
"The same seed and options give the same operations. Exit status: 0 all\n"
"matched, 1 a failure (seed and operation number on stderr), 2 usage.\n");
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (end == s || *end || !v)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int parse_weight(struct fsx *fsx, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *end;
	unsigned long w;

	if (!eq)
		return -1;
	w = strtoul(eq + 1, &end, 10);
	if (end == eq + 1 || *end || w > 100000)
		return -1;
	for (int k = 0; k < OP_COUNT; k++) {
		if (strlen(fsx_ops[k].name) == (size_t)(eq - arg) &&
		    !strncmp(fsx_ops[k].name, arg, (size_t)(eq - arg))) {
			fsx->weight[k] = (unsigned)w;
			return 0;
		}
	}
	return -1;
}

/* $BUILD/prog, in a buffer of the caller's that lives as long as the run */
static const char *build_path(char *buf, const char *prog)
{
	const char *b = getenv("BUILD");

	snprintf(buf, FSX_PATH_LEN, "%s/%s", b && *b ? b : "build", prog);
	return buf;
}

enum { O_SEED = 256, O_OPS, O_MAXLEN, O_MAXIO, O_CHUNK, O_CACHE, O_GC, O_WEIGHT,
       O_SNAPFS, O_SNAPCTL, O_DIR, O_KEEP, O_VFROM, O_AVOID };

static const struct option longopts[] = {
	{ "seed",	  required_argument, NULL, O_SEED },
	{ "ops",	  required_argument, NULL, O_OPS },
	{ "maxlen",	  required_argument, NULL, O_MAXLEN },
	{ "maxio",	  required_argument, NULL, O_MAXIO },
	{ "chunk-size",	  required_argument, NULL, O_CHUNK },
	{ "cache-size",	  required_argument, NULL, O_CACHE },
	{ "gc-bytes",	  required_argument, NULL, O_GC },
	{ "weight",	  required_argument, NULL, O_WEIGHT },
	{ "snapfs",	  required_argument, NULL, O_SNAPFS },
	{ "snapctl",	  required_argument, NULL, O_SNAPCTL },
	{ "dir",	  required_argument, NULL, O_DIR },
	{ "keep",	  no_argument,	     NULL, O_KEEP },
	{ "avoid",	  required_argument, NULL, O_AVOID },
	{ "verbose",	  no_argument,	     NULL, 'v' },
	{ "verbose-from", required_argument, NULL, O_VFROM },
	{ "help",	  no_argument,	     NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *opt, const char *arg)
{
	fprintf(stderr, "snapfsx: %s %s: not a valid value\n", opt, arg);
	return 2;
}

/* -1: go on; otherwise the exit status. */
int fsx_options(struct fsx *fsx, int argc, char **argv)
{
	static char snapfs_path[FSX_PATH_LEN], snapctl_path[FSX_PATH_LEN];
	char *end;
	int c;

	fsx->seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
	fsx->nops = 10000;
	fsx->maxlen = 1 << 20;
	fsx->maxio = 256 << 10;
	fsx->chunk = 64 << 10;
	fsx->pid = -1;
	for (int k = 0; k < OP_COUNT; k++)
		fsx->weight[k] = fsx_ops[k].weight;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case O_SEED:
			fsx->seed = strtoull(optarg, &end, 0);
			if (end == optarg || *end)
				return bad("--seed", optarg);
			break;
		case O_OPS:
			fsx->nops = strtoull(optarg, &end, 0);
			if (end == optarg || *end)
				return bad("--ops", optarg);
			break;
		case O_MAXLEN:
			if (parse_size(optarg, &fsx->maxlen))
				return bad("--maxlen", optarg);
			break;
		case O_MAXIO:
			if (parse_size(optarg, &fsx->maxio))
				return bad("--maxio", optarg);
			break;
		case O_CHUNK:
			if (parse_size(optarg, &fsx->chunk))
				return bad("--chunk-size", optarg);
			fsx->chunk_size = optarg;
			break;
		case O_CACHE:
			fsx->cache_size = optarg;
			break;
		case O_GC:
			fsx->gc_bytes = optarg;
			break;
		case O_WEIGHT:
			if (parse_weight(fsx, optarg))
				return bad("--weight", optarg);
			break;
		case O_SNAPFS:
			fsx->snapfs = optarg;
			break;
		case O_SNAPCTL:
			fsx->snapctl = optarg;
			break;
		case O_DIR:
			fsx->workdir = optarg;
			break;
		case O_KEEP:
			fsx->keep = true;
			break;
		case O_AVOID:
			if (!strcmp(optarg, "deadinode"))
				fsx->close_on_rmsnap = true;
			else if (!strcmp(optarg, "cutadopt"))
				fsx->avoid_cutadopt = true;
			else
				return bad("--avoid", optarg);
			break;
		case 'v':
			fsx->verbose = true;
			break;
		case O_VFROM:
			fsx->verbose = true;
			fsx->verbose_from = strtoull(optarg, &end, 0);
			if (end == optarg || *end)
				return bad("--verbose-from", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (fsx->maxio > fsx->maxlen)
		fsx->maxio = fsx->maxlen;
	if (!fsx->snapfs)
		fsx->snapfs = build_path(snapfs_path, "snapfs");
	if (!fsx->snapctl)
		fsx->snapctl = build_path(snapctl_path, "snapctl");
	return -1;
}
