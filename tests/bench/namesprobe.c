/* SPDX-License-Identifier: MIT */
/*
 * namesprobe: what one RADOS object takes as the store's names object
 * (docs/scale.md). It does what meta_rados_names.c does for a change: read
 * keys of the object's omap (which gives its version), then one write
 * operation that asserts that version and sets a key; a write refused
 * with -ERANGE (another change came in between) reads again. And what a
 * lookup does: one omap read by key.
 *
 *   namesprobe CEPH_CONF POOL CLIENTS SECONDS
 *
 * Runs CLIENTS processes, each with its own connection (a "host"), for
 * SECONDS seconds of changes, then one process for SECONDS seconds of
 * lookups, and prints one line each: operations a second, attempts per
 * change, median and 99th percentile ms.
 */
#include <errno.h>
#include <rados/librados.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OID "names-probe"
#define MAX_SAMPLES 200000

struct result {
	long done, attempts, failed;
	long n;
	double ms[MAX_SAMPLES];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int connect_pool(const char *conf, const char *pool, rados_t *cl,
			rados_ioctx_t *io)
{
	int ret = rados_create(cl, NULL);

	if (!ret)
		ret = rados_conf_read_file(*cl, conf);
	if (!ret)
		ret = rados_connect(*cl);
	if (!ret)
		ret = rados_ioctx_create(*cl, pool, io);
	if (ret)
		fprintf(stderr, "namesprobe: %s: %s\n", pool, strerror(-ret));
	return ret;
}

/* One omap read of key: returns 0 and the object's version. */
static int get_key(rados_ioctx_t io, const char *key, uint64_t *version)
{
	rados_read_op_t op = rados_create_read_op();
	rados_omap_iter_t it;
	const char *keys[] = { key };
	int prval = 0, ret;

	rados_read_op_omap_get_vals_by_keys(op, keys, 1, &it, &prval);
	ret = rados_read_op_operate(op, io, OID, 0);
	if (!ret)
		rados_omap_get_end(it);
	rados_release_read_op(op);
	*version = rados_get_last_version(io);
	return ret ? ret : prval;
}

static int set_key(rados_ioctx_t io, const char *key, uint64_t version)
{
	rados_write_op_t op = rados_create_write_op();
	const char *keys[] = { key };
	const char *vals[] = { "0123456789abcdef" };
	size_t lens[] = { 16 };
	int ret;

	rados_write_op_assert_version(op, version);
	rados_write_op_omap_set(op, keys, vals, lens, 1);
	ret = rados_write_op_operate(op, io, OID, NULL, 0);
	rados_release_write_op(op);
	return ret;
}

static void changes(const char *conf, const char *pool, int me,
		    double secs, struct result *r)
{
	rados_t cl;
	rados_ioctx_t io;
	char key[64];
	double end;

	if (connect_pool(conf, pool, &cl, &io))
		exit(1);
	end = now() + secs;
	for (long i = 0; now() < end; i++) {
		double t0 = now();
		int ret = -ERANGE, k;

		snprintf(key, sizeof(key), "n:probe%d/%ld", me, i);
		for (k = 0; k < 32 && ret == -ERANGE; k++) {
			uint64_t v;

			ret = get_key(io, key, &v);
			if (!ret)
				ret = set_key(io, key, v);
			r->attempts++;
		}
		if (ret) {
			r->failed++;
			continue;
		}
		r->done++;
		if (r->n < MAX_SAMPLES)
			r->ms[r->n++] = (now() - t0) * 1e3;
	}
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
}

static void lookups(const char *conf, const char *pool, double secs,
		    struct result *r)
{
	rados_t cl;
	rados_ioctx_t io;
	double end;

	if (connect_pool(conf, pool, &cl, &io))
		exit(1);
	end = now() + secs;
	while (now() < end) {
		double t0 = now();
		uint64_t v;

		r->attempts++;
		if (get_key(io, "n:probe0/0", &v)) {
			r->failed++;
			continue;
		}
		r->done++;
		if (r->n < MAX_SAMPLES)
			r->ms[r->n++] = (now() - t0) * 1e3;
	}
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
}

static void report(const char *what, int clients, double secs,
		   struct result *rs, int n)
{
	long done = 0, att = 0, failed = 0, ns = 0;
	double *all;

	for (int i = 0; i < n; i++) {
		done += rs[i].done;
		att += rs[i].attempts;
		failed += rs[i].failed;
		ns += rs[i].n;
	}
	all = malloc((ns + 1) * sizeof(*all));
	if (!all)
		exit(1);
	ns = 0;
	for (int i = 0; i < n; i++) {
		memcpy(all + ns, rs[i].ms, rs[i].n * sizeof(*all));
		ns += rs[i].n;
	}
	qsort(all, ns, sizeof(*all), cmp);
	printf("NAMES %s clients=%d ops_s=%.0f attempts=%.3f failed=%ld "
	       "p50_ms=%.2f p99_ms=%.2f\n", what, clients, done / secs,
	       done ? (double)att / done : 0.0, failed,
	       ns ? all[ns / 2] : 0.0, ns ? all[ns * 99 / 100] : 0.0);
	free(all);
}

int main(int argc, char **argv)
{
	struct result *rs;
	int clients;
	double secs;

	if (argc != 5) {
		fprintf(stderr, "usage: namesprobe CEPH_CONF POOL CLIENTS "
			"SECONDS\n");
		return 2;
	}
	clients = atoi(argv[3]);
	secs = atof(argv[4]);
	if (clients < 1 || clients > 64 || secs <= 0) {
		fprintf(stderr, "namesprobe: 1 to 64 clients, seconds > 0\n");
		return 2;
	}
	rs = mmap(NULL, (clients + 1) * sizeof(*rs), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rs == MAP_FAILED)
		return 1;
	{	/* the object, with one key for the lookups */
		rados_t cl;
		rados_ioctx_t io;
		uint64_t v;

		if (connect_pool(argv[1], argv[2], &cl, &io))
			return 1;
		rados_write_full(io, OID, "", 0);
		get_key(io, "x", &v);
		set_key(io, "n:probe0/0", v);
		rados_ioctx_destroy(io);
		rados_shutdown(cl);
	}
	for (int i = 0; i < clients; i++) {
		pid_t p = fork();

		if (p < 0)
			return 1;
		if (!p) {
			changes(argv[1], argv[2], i, secs, &rs[i]);
			_exit(0);
		}
	}
	for (int i = 0; i < clients; i++) {
		int st;

		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			return 1;
	}
	report("change", clients, secs, rs, clients);
	lookups(argv[1], argv[2], secs, &rs[clients]);
	report("lookup", 1, secs, &rs[clients], 1);
	return 0;
}
