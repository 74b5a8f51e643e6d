/* SPDX-License-Identifier: MIT */
/*
 * snapctl store: make a memory store, list its snapshots, show its
 * numbers, check it and collect its garbage. Each subcommand opens the
 * store, asks libsnap one question and prints the answer.
 */
#include "tools/snapctl/snapctl.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "tools/snapctl/json.h"
#include "snapshot/format/snapdir.h"
#include "snapshot/store/store.h"

#define LABEL_WIDTH	13	/* "compression: " */

/*
 * "4096", "256K", "4M" (or "k", "m"): the bytes, or false when s is not
 * such a number.
 */
static bool parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end == 'K' || *end == 'k') {
		if (v > UINT64_MAX >> 10)
			return false;
		v <<= 10;
		end++;
	} else if (*end == 'M' || *end == 'm') {
		if (v > UINT64_MAX >> 20)
			return false;
		v <<= 20;
		end++;
	}
	if (*end)
		return false;
	*out = v;
	return true;
}

/* ---- store init --------------------------------------------------------- */

int store_init_run(const struct snapctl_cmd *cmd, int argc, char **argv)
{
	const char *chunk_arg = NULL, *store;
	const struct snapctl_opt opts[] = {
		{ .name = "--chunk-size", .value = &chunk_arg },
	};
	struct snap_err err = { .msg = "" };
	uint64_t chunk = SNAP_CHUNK_DEFAULT;
	char size[FMT_SIZE_LEN];
	int status, ret;

	if (!cli_parse(cmd, argc, argv, opts, ARRAY_SIZE(opts),
		       &store, 1, &status))
		return status;
	if (chunk_arg && !parse_size(chunk_arg, &chunk))
		return cli_usage(cmd, "chunk size '%s' is not a number of "
				 "bytes (N, NK or NM)", chunk_arg);
	if (chunk < SNAP_CHUNK_MIN || chunk > SNAP_CHUNK_MAX ||
	    (chunk & (chunk - 1)))
		return cli_usage(cmd, "chunk size '%s' is not a power of two "
				 "from %uK to %uM", chunk_arg,
				 SNAP_CHUNK_MIN >> 10, SNAP_CHUNK_MAX >> 20);
	ret = snap_store_init(store, (uint32_t)chunk, &err);
	if (ret)
		return cli_fail(cmd, store, ret, &err);
	printf("%s: empty store, %s chunks\n", store, fmt_size(chunk, size));
	return SNAPCTL_EXIT_OK;
}

/* ---- store ls ----------------------------------------------------------- */

struct ls_row {
	char *name;
	char size[FMT_SIZE_LEN];	/* memory.bin's, or "-" */
	uint64_t files;
};

struct ls_list {
	struct ls_row *rows;
	size_t n, cap;
};

static int ls_add(void *arg, const char *entry)
{
	struct ls_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct ls_row *rows = realloc(l->rows, cap * sizeof(*rows));

		if (!rows)
			return -ENOMEM;
		l->rows = rows;
		l->cap = cap;
	}
	memset(&l->rows[l->n], 0, sizeof(l->rows[0]));
	l->rows[l->n].name = strdup(entry);
	if (!l->rows[l->n].name)
		return -ENOMEM;
	l->n++;
	return 0;
}

static int ls_count(void *arg, const char *entry)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/* Fill row's file count and memory.bin's size. */
static int ls_fill(struct snap_store *s, struct ls_row *row,
		   struct snap_err *err)
{
	char path[2 * SNAP_STORE_NAME_MAX + 2];
	uint8_t id[SNAP_ID_LEN];
	struct snap_image_stat st;
	struct snap_image *img;
	unsigned nlink;
	int ret;

	ret = snap_store_list(s, row->name, ls_count, &row->files, err);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/%s", row->name, SNAP_MEMORY_FILE);
	ret = snap_store_lookup(s, path, id, &nlink, err);
	if (ret == -ENOENT) {
		snprintf(row->size, sizeof(row->size), "-");
		return 0;
	}
	if (ret)
		return ret;
	ret = snap_image_open(s, id, 0, &img, err);
	if (ret)
		return ret;
	snap_image_stat(img, &st);
	snap_image_close(img, NULL);
	fmt_size(st.size, row->size);
	return 0;
}

static void ls_print(const struct ls_list *l)
{
	int name_w = (int)strlen("NAME"), size_w = (int)strlen("MEMORY");

	for (size_t i = 0; i < l->n; i++) {
		int n = (int)fmt_text_width(l->rows[i].name);
		int m = (int)strlen(l->rows[i].size);

		name_w = n > name_w ? n : name_w;
		size_w = m > size_w ? m : size_w;
	}
	printf("%-*s  %*s  %s\n", name_w, "NAME", size_w, "MEMORY", "FILES");
	for (size_t i = 0; i < l->n; i++) {
		const struct ls_row *r = &l->rows[i];
		int n = (int)fmt_text(stdout, r->name);

		printf("%*s  %*s  %" PRIu64 "\n", name_w - n, "", size_w,
		       r->size, r->files);
	}
}

int store_ls_run(const struct snapctl_cmd *cmd, int argc, char **argv)
{
	struct snap_err err = { .msg = "" };
	struct ls_list l = { 0 };
	struct snap_store *s;
	const char *store;
	int status, ret;

	if (!cli_parse(cmd, argc, argv, NULL, 0, &store, 1, &status))
		return status;
	if (cli_store_open(cmd, store, SNAP_STORE_RDONLY, &s))
		return SNAPCTL_EXIT_FAIL;
	/* The store lists in name order: the rows come sorted. */
	ret = snap_store_list(s, NULL, ls_add, &l, &err);
	if (ret == -ENOMEM && !err.msg[0])
		snap_err_set(&err, ret, "out of memory");
	for (size_t i = 0; !ret && i < l.n; i++) {
		ret = ls_fill(s, &l.rows[i], &err);
		if (ret)
			snap_err_prefix(&err, ret, "%s", l.rows[i].name);
	}
	if (ret)
		status = cli_fail(cmd, store, ret, &err);
	else if (l.n)
		ls_print(&l);
	for (size_t i = 0; i < l.n; i++)
		free(l.rows[i].name);
	free(l.rows);
	snap_store_close(s);
	return ret ? status : SNAPCTL_EXIT_OK;
}

/* ---- store stats -------------------------------------------------------- */

/* num / den, or NAN when den is 0 (nothing to compare). */
static double ratio(uint64_t num, uint64_t den)
{
	return den ? (double)num / (double)den : NAN;
}

static void stats_ratio_line(const char *label, double r, const char *how)
{
	if (isnan(r))
		printf("%-*s-\n", LABEL_WIDTH, label);
	else
		printf("%-*s%.2fx (%s)\n", LABEL_WIDTH, label, r, how);
}

/* "3 MiB (3145728 bytes)", or "512 bytes" alone. */
static void put_bytes(uint64_t bytes)
{
	char size[FMT_SIZE_LEN];

	fputs(fmt_size(bytes, size), stdout);
	if (bytes >= 1024)
		printf(" (%" PRIu64 " bytes)", bytes);
}

static void stats_bytes_line(const char *label, uint64_t bytes)
{
	printf("%-*s", LABEL_WIDTH, label);
	put_bytes(bytes);
	putchar('\n');
}

static void stats_chunks_line(const char *label, uint64_t chunks,
			      uint64_t bytes)
{
	printf("%-*s%" PRIu64 " chunk%s, ", LABEL_WIDTH, label, chunks,
	       chunks == 1 ? "" : "s");
	put_bytes(bytes);
	putchar('\n');
}

static void stats_text(const struct snap_store_stats *st, uint32_t chunk)
{
	char size[FMT_SIZE_LEN];

	printf("%-*s%s\n", LABEL_WIDTH, "chunk size:", fmt_size(chunk, size));
	printf("%-*s%" PRIu64 "\n", LABEL_WIDTH, "snapshots:", st->snapshots);
	printf("%-*s%" PRIu64 " (%" PRIu64 " image%s)\n", LABEL_WIDTH,
	       "files:", st->files, st->images, st->images == 1 ? "" : "s");
	stats_bytes_line("logical:", st->logical_bytes);
	stats_bytes_line("mapped:", st->mapped_bytes);
	stats_chunks_line("unique:", st->chunks, st->unique_bytes);
	stats_bytes_line("stored:", st->stored_bytes);
	stats_ratio_line("dedup:", ratio(st->mapped_bytes, st->unique_bytes),
			 "mapped/unique");
	stats_ratio_line("compression:",
			 ratio(st->unique_bytes, st->stored_bytes),
			 "unique/stored");
	stats_ratio_line("overall:", ratio(st->logical_bytes, st->stored_bytes),
			 "logical/stored");
	stats_chunks_line("garbage:", st->garbage_chunks, st->garbage_bytes);
	printf("%-*s%" PRIu64 "\n", LABEL_WIDTH, "deltas:", st->deltas);
	stats_bytes_line("metadata:", st->meta_bytes);
}

static int stats_json(const char *store, const struct snap_store_stats *st,
		      uint32_t chunk)
{
	struct json j;

	json_begin(&j, stdout);
	json_object_begin(&j, NULL);
	json_string(&j, "path", store);
	json_u64(&j, "chunk_size", chunk);
	json_u64(&j, "snapshots", st->snapshots);
	json_u64(&j, "files", st->files);
	json_u64(&j, "images", st->images);
	json_u64(&j, "logical_bytes", st->logical_bytes);
	json_u64(&j, "mapped_bytes", st->mapped_bytes);
	json_u64(&j, "unique_chunks", st->chunks);
	json_u64(&j, "unique_bytes", st->unique_bytes);
	json_u64(&j, "stored_bytes", st->stored_bytes);
	json_double(&j, "dedup_ratio",
		    ratio(st->mapped_bytes, st->unique_bytes));
	json_double(&j, "compression_ratio",
		    ratio(st->unique_bytes, st->stored_bytes));
	json_double(&j, "overall_ratio",
		    ratio(st->logical_bytes, st->stored_bytes));
	json_u64(&j, "garbage_chunks", st->garbage_chunks);
	json_u64(&j, "garbage_bytes", st->garbage_bytes);
	json_u64(&j, "deltas", st->deltas);
	json_u64(&j, "meta_bytes", st->meta_bytes);
	json_object_end(&j);
	return json_end(&j);
}

int store_stats_run(const struct snapctl_cmd *cmd, int argc, char **argv)
{
	bool json = false;
	const struct snapctl_opt opts[] = {
		{ .name = "--json", .flag = &json },
	};
	struct snap_err err = { .msg = "" };
	struct snap_store_stats st;
	struct snap_store *s;
	const char *store;
	uint32_t chunk;
	int status, ret;

	if (!cli_parse(cmd, argc, argv, opts, ARRAY_SIZE(opts),
		       &store, 1, &status))
		return status;
	if (cli_store_open(cmd, store, SNAP_STORE_RDONLY, &s))
		return SNAPCTL_EXIT_FAIL;
	chunk = snap_store_chunk_size(s);
	ret = snap_store_stats(s, &st, &err);
	snap_store_close(s);
	if (ret)
		return cli_fail(cmd, store, ret, &err);
	if (json) {
		ret = stats_json(store, &st, chunk);
	} else {
		stats_text(&st, chunk);
		ret = cli_flush_stdout();
	}
	if (ret) {
		cli_error("%s %s: write error on standard output: %s",
			  cmd->name, store, strerror(-ret));
		return SNAPCTL_EXIT_FAIL;
	}
	return SNAPCTL_EXIT_OK;
}

/* ---- store verify ------------------------------------------------------- */

/* The library may check from several threads: one whole line at a time. */
static void verify_report(void *arg, const char *line)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	unsigned *problems = arg;

	pthread_mutex_lock(&lock);
	(*problems)++;
	fmt_text(stdout, line);
	putchar('\n');
	pthread_mutex_unlock(&lock);
}

int store_verify_run(const struct snapctl_cmd *cmd, int argc, char **argv)
{
	struct snap_err err = { .msg = "" };
	struct snap_verify_stats st = { 0 };
	struct snap_store *s;
	unsigned problems = 0;
	const char *store;
	int status, ret;

	if (!cli_parse(cmd, argc, argv, NULL, 0, &store, 1, &status))
		return status;
	if (cli_store_open(cmd, store, SNAP_STORE_RDONLY, &s))
		return SNAPCTL_EXIT_FAIL;
	ret = snap_store_verify(s, &st, verify_report, &problems, &err);
	snap_store_close(s);
	if (ret && ret != -EBADMSG)
		return cli_fail(cmd, store, ret, &err);
	printf("%" PRIu64 " chunks checked, %" PRIu64 " bad\n", st.chunks,
	       st.bad);
	if (ret || st.bad || problems) {
		/* However the library put it, damage is a failure. */
		if (!err.msg[0])
			snprintf(err.msg, sizeof(err.msg), "%u problem%s found",
				 problems, problems == 1 ? "" : "s");
		return cli_fail(cmd, store, -EBADMSG, &err);
	}
	return SNAPCTL_EXIT_OK;
}

/* ---- store gc ----------------------------------------------------------- */

/*
 * The mount point of a snapfs serving the store at dir (its fsname is the
 * store's real path, /proc/self/mountinfo says), into mnt; false if none.
 */
static bool find_mount(const char *dir, char *mnt, size_t size)
{
	char real[PATH_MAX], line[3 * PATH_MAX], point[PATH_MAX];
	char type[64], source[PATH_MAX], opts[256];
	bool found = false;
	FILE *f;

	if (snap_store_name(dir, real, sizeof(real)) ||
	    !(f = fopen("/proc/self/mountinfo", "r")))
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *rest = strstr(line, " - ");

		/* id parent maj:min root POINT OPTIONS ... - TYPE SOURCE */
		if (!rest || sscanf(line, "%*s %*s %*s %*s %4095s %255s", point,
				    opts) != 2 ||
		    sscanf(rest, " - %63s %4095s", type, source) != 2)
			continue;
		/* mountinfo escapes blanks and backslashes as \ooo: such
		 * paths never match, and the store path had none. A mount
		 * read-only cannot collect. */
		found = !strcmp(type, "fuse.snapfs") &&
			!strcmp(source, real) && !strncmp(opts, "rw", 2) &&
			(opts[2] == ',' || opts[2] == '\0');
	}
	fclose(f);
	if (found)
		snprintf(mnt, size, "%s", point);
	return found;
}

/* gc by the daemon that has the store mounted (user.snapfs.gc). */
static int gc_by_mount(const struct snapctl_cmd *cmd, const char *store,
		       const char *mnt)
{
	char result[512];
	struct snap_err err;
	ssize_t n;

	if (setxattr(mnt, "user.snapfs.gc", "now", 3, 0)) {
		int e = errno;

		n = getxattr(mnt, "user.snapfs.gc", result,
			     sizeof(result) - 1);
		if (n > 0)
			result[n] = 0;
		snprintf(err.msg, sizeof(err.msg), "gc by the snapfs mounted "
			 "at %.200s: %.250s", mnt, n > 0 ? result : strerror(e));
		return cli_fail(cmd, store, -e, &err);
	}
	n = getxattr(mnt, "user.snapfs.gc", result, sizeof(result) - 1);
	result[n > 0 ? n : 0] = 0;
	printf("%s: by the snapfs mounted at %s: %s\n", store, mnt, result);
	return SNAPCTL_EXIT_OK;
}

int store_gc_run(const struct snapctl_cmd *cmd, int argc, char **argv)
{
	struct snap_store_opts opts = { 0 };
	struct snap_err err = { .msg = "" };
	struct snap_gc_stats st = { 0 };
	char size[FMT_SIZE_LEN], mnt[PATH_MAX];
	struct snap_store *s;
	const char *store;
	int status, ret;

	if (!cli_parse(cmd, argc, argv, NULL, 0, &store, 1, &status))
		return status;
	ret = snap_store_open(store, &opts, &s, &err);
	if (!ret) {
		ret = snap_store_gc(s, &st, &err);
		snap_store_close(s);
	}
	/* A mounted snapfs is a writer of the store (in a directory, the
	 * only one): it collects, if asked. */
	if (ret == -EBUSY && find_mount(store, mnt, sizeof(mnt)))
		return gc_by_mount(cmd, store, mnt);
	if (ret)
		return cli_fail(cmd, store, ret, &err);
	printf("%s: freed %" PRIu64 " chunk%s (%s), %" PRIu64 " delta%s, %"
	       PRIu64 " image%s\n", store, st.chunks, st.chunks == 1 ? "" : "s",
	       fmt_size(st.bytes, size), st.deltas, st.deltas == 1 ? "" : "s",
	       st.images, st.images == 1 ? "" : "s");
	return SNAPCTL_EXIT_OK;
}
