/*
 * storebench: what the memory store (snapshot/store/store.h) costs against a
 * plain file on the same disk.
 *
 *   storebench [-d DIR] [-s MIB] [-c CHUNK] [-n RUNS] [-C CACHE_MIB]
 *              [-z LEVEL] [-b BIG_GIB] [-k CLONES] [-r READS] [-S SEED]
 *              [-f FSTYPE] [-F] [-l LOG] [-Z DEFAULT_LEVEL] [-a ROUNDS]
 *
 * Every store is new, made with chunks of CHUNK bytes (K and M suffixes;
 * default SNAP_CHUNK_DEFAULT) and opened at zstd LEVEL (default: the
 * store's), under a new directory in DIR (default $TMPDIR, else
 * /var/tmp), removed at exit, failed or not (killed, it stays: store.sh
 * removes DIR, its own, then). Two images are made in memory, MIB MiB
 * each (default 1024): "30%", whose random bytes lie in page-aligned runs
 * of 64 KiB to 4 MiB at random places until they cover 30% of it (the
 * rest zero), and "100%", random throughout. SEED (default 1) fixes every
 * random choice.
 *
 *   import   each image written to a new store with snap_image_write in
 *            4 MiB blocks, then snap_image_sync; and to a plain file with
 *            write(2) in 4 MiB blocks, then fsync: GB/s of logical bytes,
 *            seconds from the first write to the sync's return, and the
 *            CPU seconds this process spent meanwhile (the store works in
 *            the caller's thread), which other load on the machine moves
 *            less than it moves the seconds.
 *   read     the 30% image, in 1 MiB reads from start to end: cold (a new
 *            store handle, the page cache dropped) then warm (a second
 *            pass over the same handle, whose cache holds CACHE_MIB,
 *            default MIB + 64); and READS (default 500) 4 KiB reads of
 *            random pages holding data: cold (a new handle, page cache
 *            dropped, each read in a chunk not read before) and warm
 *            (after the warm pass): median and 99th percentile in
 *            microseconds. The plain file of the same bytes beside it,
 *            read with pread(2).
 *   clone    snap_image_clone of the 100% image (every chunk mapped) and
 *            of a BIG_GIB GiB image (default 16) tiled from it with
 *            snap_image_copy_range, CLONES times each (default 10), with
 *            a handle on the source open, and with none.
 *   space    10 clones of the 30% image, each with 1% of its 4 KiB pages
 *            rewritten with new random bytes, scattered uniformly or in
 *            runs of 64 pages (at random page offsets): the store's
 *            stored_bytes against the image's alone, what the chunk files
 *            take on the disk, logical bytes of the 11 images per stored
 *            byte, and the least the rewritten bytes alone can cost.
 *            Between the two, the clones' names go and gc frees them.
 *   aged     the 30% image in a new store, then ROUNDS rounds (default
 *            200, at most 9999; 0 skips the case) of: snap_image_clone of
 *            the newest image, a handle open on it for writing (as a
 *            VM's); the clone named and the handle moved onto it; 0.1% of
 *            its 4 KiB pages rewritten with new random bytes (4 KiB
 *            snap_image_writes at random pages), then snap_image_sync.
 *            Every generation keeps its name. "flat": the final bytes
 *            written into another new store as import does. Both read as
 *            in read (the same pages for both, cold and warm), with the
 *            cold snap_image_open timed too: ms, GB/s, µs and the ratio
 *            aged / flat of the times against the target, <= 1.2x for the
 *            reads; and the stats' stored bytes of both stores against
 *            the random bytes written (the import's data pages and every
 *            round's).
 *
 * Each timed figure gets one warm-up run, not counted, then RUNS runs
 * (default 5), store and plain file alternating; the table shows median,
 * min and max. The page cache is dropped with /proc/sys/vm/drop_caches
 * when that can be written (root), else, or with -F, with
 * posix_fadvise(POSIX_FADV_DONTNEED) on every file under DIR. FSTYPE
 * names DIR's filesystem in the first line, DEFAULT_LEVEL the level the
 * store uses when none is given (ZSTD_DEFAULT in snapshot/store/store.c; the
 * library does not say); LOG gets every run's numbers as "BENCH ..."
 * lines.
 *
 * Exit status: 0; 1 when a store call failed or read back wrong bytes;
 * 2 on a usage error, no memory, or a directory that cannot be made.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/store/store.h"

#define PAGE		4096u
#define BLOCK		(4u << 20)	/* import writes */
#define SEQ_READ	(1u << 20)
#define RUN_MIN		(64u << 10)
#define RUN_MAX		(4u << 20)
#define DIRTY_RUN	64		/* pages */
#define NCLONES		10

static struct {
	const char *parent, *fstype, *logpath, *deflevel;
	char *dir;			/* ours, under parent */
	uint64_t size, big;
	uint32_t chunk;
	int runs, clones, reads, level, aged;
	size_t cache;
	uint64_t seed;
	bool fadvise;
	FILE *log;
} cfg;

/* ---- helpers ----------------------------------------------------------- */

static void die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "storebench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die(2, "out of memory (%zu bytes)", n);
	return p;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		die(2, "out of memory (%zu bytes)", n * size);
	return p;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds of this process (the store does its work in the caller). */
static double cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* splitmix64: small, fast, the same sequence everywhere. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill_random(uint64_t *s, void *buf, size_t n)
{
	uint8_t *p = buf;

	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v = rnd(s);

		memcpy(p, &v, 8);
	}
	for (; n; n--)
		*p++ = (uint8_t)rnd(s);
}

static void blog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void blog(const char *fmt, ...)
{
	va_list ap;

	if (!cfg.log)
		return;
	va_start(ap, fmt);
	fputs("BENCH ", cfg.log);
	vfprintf(cfg.log, fmt, ap);
	fputc('\n', cfg.log);
	va_end(ap);
	fflush(cfg.log);
}

static int rm_one(const char *path, const struct stat *st, int type,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) && errno != ENOENT)
		fprintf(stderr, "storebench: remove %s: %m\n", path);
	return 0;
}

static void rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
	if (cfg.dir)
		rm_rf(cfg.dir);
}

static char *sub(const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", cfg.dir, name) < 0)
		die(2, "out of memory");
	return p;
}

/* ---- the page cache ---------------------------------------------------- */

static bool drop_proc;	/* /proc/sys/vm/drop_caches works */

static int fadvise_one(const char *path, const struct stat *st, int type,
		       struct FTW *ftw)
{
	int fd;

	(void)st;
	(void)ftw;
	if (type != FTW_F)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	return 0;
}

static bool write_drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, "1\n", 2) == 2;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Nothing of DIR in the page cache afterwards (dirty pages written first). */
static void drop_caches(void)
{
	sync();
	if (drop_proc && write_drop_caches())
		return;
	nftw(cfg.dir, fadvise_one, 32, FTW_PHYS);
}

/* ---- figures ----------------------------------------------------------- */

struct series {
	double *v;
	int n, cap;
};

static void add(struct series *s, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->v = realloc(s->v, (size_t)s->cap * sizeof(double));
		if (!s->v)
			die(2, "out of memory");
	}
	s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double median(const struct series *s)
{
	double *v = xmalloc((size_t)s->n * sizeof(double)), m;

	memcpy(v, s->v, (size_t)s->n * sizeof(double));
	m = median_of(v, s->n);
	free(v);
	return m;
}

static double lo(const struct series *s)
{
	double m = s->v[0];

	for (int i = 1; i < s->n; i++)
		m = s->v[i] < m ? s->v[i] : m;
	return m;
}

static double hi(const struct series *s)
{
	double m = s->v[0];

	for (int i = 1; i < s->n; i++)
		m = s->v[i] > m ? s->v[i] : m;
	return m;
}

#define LABEL	"  %-44s"

/* A blank line, the title, and the columns' heads under unit. */
static void heading(const char *title, const char *unit, const char *extra)
{
	printf("\n%s\n" LABEL " %9s %9s %9s%s\n", title, unit, "median",
	       "min", "max", extra);
}

/* A row: label, median, min and max of s to prec places, extra (or ""). */
static void row(const char *label, const struct series *s, int prec,
		const char *extra)
{
	printf(LABEL " %9.*f %9.*f %9.*f%s\n", label, prec, median(s), prec,
	       lo(s), prec, hi(s), extra);
}

static void ratio_row(const char *label, const struct series *a,
		      const struct series *b)
{
	printf(LABEL " %9.2f\n", label, median(a) / median(b));
}

/* ---- the images' content ----------------------------------------------- */

struct content {
	const char *name;
	uint64_t size, npages;
	uint8_t *bytes;
	uint8_t *data;			/* per page: random bytes, not zeros */
	uint64_t *dpages, ndpages;	/* the data pages' indexes */
	uint64_t *dchunks, ndchunks;	/* the chunks holding any */
};

static void content_make(struct content *c, const char *name, int percent,
			 uint64_t seed)
{
	uint64_t s = seed, target, covered = 0;
	uint64_t per_chunk = cfg.chunk / PAGE;

	c->name = name;
	c->size = cfg.size;
	c->npages = cfg.size / PAGE;
	c->bytes = xcalloc(1, (size_t)c->size);
	c->data = xcalloc((size_t)c->npages, 1);
	target = c->npages * (uint64_t)percent / 100;
	while (covered < target) {
		uint64_t len = RUN_MIN / PAGE +
			       rnd(&s) % ((RUN_MAX - RUN_MIN) / PAGE + 1);
		uint64_t start;

		if (len > c->npages)
			len = c->npages;
		start = rnd(&s) % (c->npages - len + 1);
		for (uint64_t p = start; p < start + len && covered < target;
		     p++)
			if (!c->data[p]) {
				c->data[p] = 1;
				covered++;
			}
	}
	c->dpages = xmalloc((size_t)covered * sizeof(uint64_t));
	c->dchunks = xmalloc((size_t)(c->npages / per_chunk + 1) *
			     sizeof(uint64_t));
	for (uint64_t p = 0; p < c->npages; p++) {
		if (!c->data[p])
			continue;
		fill_random(&s, c->bytes + p * PAGE, PAGE);
		c->dpages[c->ndpages++] = p;
		if (!c->ndchunks ||
		    c->dchunks[c->ndchunks - 1] != p / per_chunk)
			c->dchunks[c->ndchunks++] = p / per_chunk;
	}
}

static void content_free(struct content *c)
{
	free(c->bytes);
	free(c->data);
	free(c->dpages);
	free(c->dchunks);
	memset(c, 0, sizeof(*c));
}

/* ---- the store --------------------------------------------------------- */

static struct snap_err err;

static void failed(const char *what) __attribute__((noreturn));

static void failed(const char *what)
{
	die(1, "%s: %s", what, err.msg);
}

static struct snap_store *store_open(const char *dir, bool rdonly,
				     size_t cache)
{
	struct snap_store_opts o = {
		.flags = rdonly ? SNAP_STORE_RDONLY : 0,
		.cache_bytes = cache,
		.zstd_level = cfg.level,
	};
	struct snap_store *s;

	if (snap_store_open(dir, &o, &s, &err))
		failed("open store");
	return s;
}

static struct snap_image *image_open(struct snap_store *s,
				     const uint8_t id[SNAP_ID_LEN],
				     unsigned flags)
{
	struct snap_image *img;

	if (snap_image_open(s, id, flags, &img, &err))
		failed("open image");
	return img;
}

static void image_close(struct snap_image *img)
{
	if (snap_image_close(img, &err))
		failed("close image");
}

static void lookup(struct snap_store *s, const char *path,
		   uint8_t id[SNAP_ID_LEN])
{
	if (snap_store_lookup(s, path, id, NULL, &err))
		failed(path);
}

static void link_name(struct snap_store *s, const char *path,
		      const uint8_t id[SNAP_ID_LEN])
{
	if (snap_store_link(s, path, id, &err))
		failed(path);
}

static void stats(struct snap_store *s, struct snap_store_stats *st)
{
	if (snap_store_stats(s, st, &err))
		failed("stats");
}

/* ---- import ------------------------------------------------------------ */

/*
 * A new store in dir holding c as "bench/NAME" (named after the timing):
 * seconds from the first write to the sync's return.
 */
static double import_store(const char *dir, const struct content *c,
			   double *cpus)
{
	struct snap_store *s;
	struct snap_image *img;
	uint8_t id[SNAP_ID_LEN];
	char name[64];
	double t0, t;

	rm_rf(dir);
	if (snap_store_init(dir, cfg.chunk, &err))
		failed("init store");
	s = store_open(dir, false, 0);
	if (snap_store_mkdir(s, "bench", &err) ||
	    snap_image_create(s, c->size, id, &err))
		failed("new image");
	img = image_open(s, id, SNAP_IMAGE_WRITE);
	sync();
	*cpus = cpu();
	t0 = now();
	for (uint64_t off = 0; off < c->size; off += BLOCK) {
		size_t n = c->size - off < BLOCK ? (size_t)(c->size - off)
						 : BLOCK;

		if (snap_image_write(img, c->bytes + off, n, off, &err) !=
		    (ssize_t)n)
			failed("import: write");
	}
	if (snap_image_sync(img, &err))
		failed("import: sync");
	t = now() - t0;
	*cpus = cpu() - *cpus;
	image_close(img);
	snprintf(name, sizeof(name), "bench/%s", c->name);
	link_name(s, name, id);
	snap_store_close(s);
	return t;
}

static void write_all(int fd, const void *buf, size_t n, const char *what)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die(1, "%s: %m", what);
		p += w;
		n -= (size_t)w;
	}
}

static double import_plain(const char *path, const struct content *c,
			   double *cpus)
{
	double t0, t;
	int fd;

	unlink(path);
	sync();
	*cpus = cpu();
	t0 = now();
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(1, "%s: %m", path);
	for (uint64_t off = 0; off < c->size; off += BLOCK) {
		size_t n = c->size - off < BLOCK ? (size_t)(c->size - off)
						 : BLOCK;

		write_all(fd, c->bytes + off, n, path);
	}
	if (fsync(fd))
		die(1, "%s: fsync: %m", path);
	t = now() - t0;
	*cpus = cpu() - *cpus;
	close(fd);
	return t;
}

struct import_case {
	const char *key, *label;
	struct content *c;
	bool plain;
	char *path;
	struct series gbps, secs, cpus;
};

static void bench_import(struct import_case *cases, int ncases)
{
	for (int r = 0; r <= cfg.runs; r++)
		for (int i = 0; i < ncases; i++) {
			struct import_case *k = &cases[i];
			double t, u;

			t = k->plain ? import_plain(k->path, k->c, &u)
				     : import_store(k->path, k->c, &u);
			blog("import %s run %d seconds %.4f gbps %.4f cpu %.4f",
			     k->key, r, t, k->c->size / t / 1e9, u);
			if (r == 0)
				continue;	/* the warm-up */
			add(&k->gbps, k->c->size / t / 1e9);
			add(&k->secs, t);
			add(&k->cpus, u);
		}
}

static void print_import(struct import_case *cases, int ncases)
{
	heading("import: 4 MiB writes, then snap_image_sync (store) or fsync "
		"(plain file)", "GB/s", "   seconds   CPU s");
	for (int i = 0; i < ncases; i++) {
		char extra[32];

		snprintf(extra, sizeof(extra), " %9.2f %7.2f",
			 median(&cases[i].secs), median(&cases[i].cpus));
		row(cases[i].label, &cases[i].gbps, 2, extra);
		if (i % 2)
			ratio_row("store / plain", &cases[i - 1].gbps,
				  &cases[i].gbps);
	}
}

/* ---- reads ------------------------------------------------------------- */

/* What a read pass does to the store or to the plain file. */
struct reader {
	struct snap_image *img;
	int fd;
};

static void read_at(struct reader *rd, void *buf, size_t n, uint64_t off,
		    const char *what)
{
	ssize_t got;

	if (rd->img) {
		got = snap_image_read(rd->img, buf, n, off, &err);
		if (got < 0)
			failed(what);
	} else {
		got = pread(rd->fd, buf, n, (off_t)off);
		if (got < 0)
			die(1, "%s: %m", what);
	}
	if ((size_t)got != n)
		die(1, "%s: %zd bytes at %" PRIu64 ", expected %zu", what, got,
		    off, n);
}

/* GB/s of one pass in 1 MiB reads; checks the bytes when verify. */
static double read_seq(struct reader *rd, const struct content *c,
		       bool verify, double *cpus)
{
	uint8_t *buf = xmalloc(SEQ_READ);
	double t0 = now(), t;

	*cpus = cpu();
	for (uint64_t off = 0; off < c->size; off += SEQ_READ) {
		size_t n = c->size - off < SEQ_READ ? (size_t)(c->size - off)
						    : SEQ_READ;

		read_at(rd, buf, n, off, "sequential read");
		if (verify && memcmp(buf, c->bytes + off, n))
			die(1, "sequential read: wrong bytes in [%" PRIu64
			    ", +%zu)", off, n);
	}
	t = now() - t0;
	*cpus = cpu() - *cpus;
	free(buf);
	return c->size / t / 1e9;
}

/* One 4 KiB read per offset: the median and the 99th percentile in µs. */
static void read_random(struct reader *rd, const struct content *c,
			const uint64_t *offs, int n, bool verify,
			double *p50, double *p99)
{
	double *lat = xmalloc((size_t)n * sizeof(double));
	uint8_t buf[PAGE];

	for (int i = 0; i < n; i++) {
		double t0 = now();

		read_at(rd, buf, PAGE, offs[i], "random read");
		lat[i] = (now() - t0) * 1e6;
		if (verify && memcmp(buf, c->bytes + offs[i], PAGE))
			die(1, "random read: wrong bytes at %" PRIu64, offs[i]);
	}
	qsort(lat, (size_t)n, sizeof(double), cmp_double);
	*p50 = n % 2 ? lat[n / 2] : (lat[n / 2 - 1] + lat[n / 2]) / 2;
	*p99 = lat[(99 * n + 99) / 100 - 1];
	free(lat);
}

/*
 * Offsets of n data pages: cold, each in a different chunk (n at most
 * the chunks holding data); otherwise anywhere.
 */
static uint64_t *pick_pages(const struct content *c, uint64_t *s, int n,
			    bool cold)
{
	uint64_t *offs = xmalloc((size_t)n * sizeof(uint64_t)), *ch;
	uint64_t per_chunk = cfg.chunk / PAGE;

	if (!cold) {
		for (int i = 0; i < n; i++)
			offs[i] = c->dpages[rnd(s) % c->ndpages] * PAGE;
		return offs;
	}
	ch = xmalloc((size_t)c->ndchunks * sizeof(uint64_t));
	memcpy(ch, c->dchunks, (size_t)c->ndchunks * sizeof(uint64_t));
	for (int i = 0; i < n; i++) {
		uint64_t j = (uint64_t)i + rnd(s) % (c->ndchunks - (uint64_t)i);
		uint64_t t = ch[i], p;

		ch[i] = ch[j];
		ch[j] = t;
		do	/* a data page of chunk ch[i] */
			p = ch[i] * per_chunk + rnd(s) % per_chunk;
		while (p >= c->npages || !c->data[p]);
		offs[i] = p * PAGE;
	}
	free(ch);
	return offs;
}

struct read_side {
	const char *name;
	struct series cold, warm;		/* GB/s */
	struct series ucold, uwarm;		/* CPU s */
	struct series rc50, rc99, rw50, rw99;	/* µs */
	struct series open;			/* ms, cold (store only) */
};

/* One run of every read figure, on the store (dir) or the plain file. */
static void read_run(struct read_side *side, const char *dir,
		     const char *plain, const struct content *c, int r,
		     int n, uint64_t *s)
{
	uint64_t *cold = pick_pages(c, s, n, true);
	uint64_t *warm = pick_pages(c, s, n, false);
	struct snap_store *st = NULL;
	struct reader rd = { .fd = -1 };
	uint8_t id[SNAP_ID_LEN];
	double sc, sw, uc, uw, c50, c99, w50, w99, om = 0, t0;
	char name[64];
	bool verify = r == 0;

	snprintf(name, sizeof(name), "bench/%s", c->name);
	for (int pass = 0; pass < 2; pass++) {
		drop_caches();
		if (dir) {
			st = store_open(dir, true, cfg.cache);
			lookup(st, name, id);
			t0 = now();
			rd.img = image_open(st, id, 0);
			if (pass == 0)
				om = (now() - t0) * 1e3;
		} else {
			rd.fd = open(plain, O_RDONLY | O_CLOEXEC);
			if (rd.fd < 0)
				die(1, "%s: %m", plain);
		}
		if (pass == 0) {
			read_random(&rd, c, cold, n, verify, &c50, &c99);
		} else {
			sc = read_seq(&rd, c, verify, &uc);
			sw = read_seq(&rd, c, verify, &uw);
			read_random(&rd, c, warm, n, verify, &w50, &w99);
		}
		if (dir) {
			image_close(rd.img);
			snap_store_close(st);
		} else {
			close(rd.fd);
		}
	}
	blog("read %s run %d seq_cold_gbps %.4f cpu %.4f seq_warm_gbps %.4f "
	     "cpu %.4f rand_cold_us p50 %.1f p99 %.1f rand_warm_us p50 %.1f "
	     "p99 %.1f open_ms %.3f", side->name, r, sc, uc, sw, uw, c50, c99,
	     w50, w99, om);
	free(cold);
	free(warm);
	if (r == 0)
		return;
	add(&side->cold, sc);
	add(&side->warm, sw);
	add(&side->ucold, uc);
	add(&side->uwarm, uw);
	add(&side->rc50, c50);
	add(&side->rc99, c99);
	add(&side->rw50, w50);
	add(&side->rw99, w99);
	if (dir)
		add(&side->open, om);
}

/* GB/s, then the median CPU seconds. */
static void cpu_row(const char *label, const struct series *gbps,
		    const struct series *cpus)
{
	char extra[32];

	snprintf(extra, sizeof(extra), " %8.2f", median(cpus));
	row(label, gbps, 2, extra);
}

/* A row of medians (p50) then a row's worth of 99th percentiles. */
static void latency_row(const char *label, const struct series *p50,
			const struct series *p99)
{
	char extra[80];

	snprintf(extra, sizeof(extra), " %9s %9.1f %9.1f %9.1f", "",
		 median(p99), lo(p99), hi(p99));
	row(label, p50, 1, extra);
}

static void bench_read(const char *dir, const char *plain,
		       const struct content *c)
{
	struct read_side st = { .name = "store" }, pl = { .name = "plain" };
	uint64_t s = cfg.seed + 1000;
	int n = cfg.reads;
	char label[80];

	if ((uint64_t)n > c->ndchunks)
		n = (int)c->ndchunks;
	for (int r = 0; r <= cfg.runs; r++) {
		uint64_t s2 = s + (uint64_t)r;	/* the same pages for both */

		if (r % 2) {
			read_run(&pl, NULL, plain, c, r, n, &s2);
			s2 = s + (uint64_t)r;
			read_run(&st, dir, NULL, c, r, n, &s2);
		} else {
			read_run(&st, dir, NULL, c, r, n, &s2);
			s2 = s + (uint64_t)r;
			read_run(&pl, NULL, plain, c, r, n, &s2);
		}
	}
	snprintf(label, sizeof(label), "read the %s image: 1 MiB sequential "
		 "reads", c->name);
	heading(label, "GB/s", "   CPU s");
	cpu_row("store, cold", &st.cold, &st.ucold);
	cpu_row("plain file, cold", &pl.cold, &pl.ucold);
	ratio_row("store / plain", &st.cold, &pl.cold);
	snprintf(label, sizeof(label), "store, warm (cache %zu MiB)",
		 cfg.cache >> 20);
	cpu_row(label, &st.warm, &st.uwarm);
	cpu_row("plain file, warm", &pl.warm, &pl.uwarm);
	ratio_row("store / plain", &st.warm, &pl.warm);
	snprintf(label, sizeof(label), "read the %s image: 4 KiB at random "
		 "pages holding data, %d a run", c->name, n);
	heading(label, "median us", "   p99 us:    median       min       max");
	latency_row("store, cold (a chunk not read before)", &st.rc50,
		    &st.rc99);
	latency_row("plain file, cold", &pl.rc50, &pl.rc99);
	latency_row("store, warm", &st.rw50, &st.rw99);
	latency_row("plain file, warm", &pl.rw50, &pl.rw99);
}

/* ---- clone ------------------------------------------------------------- */

struct clone_fig {
	struct series ms, cpu_ms;
};

/* One clone of id: wall and CPU milliseconds into f (unless warm-up). */
static void time_clone(struct snap_store *s, const uint8_t id[SNAP_ID_LEN],
		       struct clone_fig *f, const char *what, int r)
{
	uint8_t clone[SNAP_ID_LEN];
	double t0 = now(), u0 = cpu(), ms, cpu_ms;

	if (snap_image_clone(s, id, clone, &err))
		failed("clone");
	ms = (now() - t0) * 1e3;
	cpu_ms = (cpu() - u0) * 1e3;
	blog("clone %s run %d ms %.3f cpu_ms %.3f", what, r, ms, cpu_ms);
	if (r) {
		add(&f->ms, ms);
		add(&f->cpu_ms, cpu_ms);
	}
}

static void bench_clone(const char *dir, const struct content *c)
{
	struct snap_store *s = store_open(dir, false, 0);
	struct snap_image *src, *dst, *h[2];
	struct snap_image_stat ist;
	uint8_t id[2][SNAP_ID_LEN];
	struct clone_fig open[2] = { 0 }, closed[2] = { 0 };
	char name[64], label[2][32], lab[128], extra[32];
	double t0, tile;

	/* The big image: the full one copied over and over, keys shared. */
	snprintf(name, sizeof(name), "bench/%s", c->name);
	lookup(s, name, id[0]);
	if (snap_image_create(s, cfg.big, id[1], &err))
		failed("new image");
	src = image_open(s, id[0], 0);
	dst = image_open(s, id[1], SNAP_IMAGE_WRITE);
	t0 = now();
	for (uint64_t off = 0; off < cfg.big; off += c->size)
		if (snap_image_copy_range(src, 0, dst, off, (size_t)c->size,
					  &err) != (ssize_t)c->size)
			failed("tile: copy_range");
	if (snap_image_sync(dst, &err))
		failed("tile: sync");
	tile = now() - t0;
	for (int i = 0; i < 2; i++) {
		snap_image_stat(i ? dst : src, &ist);
		if (ist.chunks != ist.size / cfg.chunk)
			printf("  (note: the %s image maps %" PRIu64 " of %"
			       PRIu64 " chunks)\n", i ? "big" : c->name,
			       ist.chunks, ist.size / cfg.chunk);
	}
	image_close(src);
	image_close(dst);
	link_name(s, "bench/big", id[1]);
	blog("clone tile seconds %.4f", tile);

	for (int i = 0; i < 2; i++) {
		uint64_t sz = i ? cfg.big : c->size;

		if (sz % (1ull << 30) == 0)
			snprintf(label[i], sizeof(label[i]), "%" PRIu64 " GiB",
				 sz >> 30);
		else
			snprintf(label[i], sizeof(label[i]), "%" PRIu64 " MiB",
				 sz >> 20);
	}
	/* A handle open on each source, then none. */
	for (int mode = 0; mode < 2; mode++) {
		struct clone_fig *f = mode ? closed : open;

		for (int i = 0; i < 2 && mode == 0; i++)
			h[i] = image_open(s, id[i], 0);
		for (int r = 0; r <= cfg.clones; r++)
			for (int i = 0; i < 2; i++) {
				snprintf(name, sizeof(name), "%s %s",
					 i ? "big" : "image",
					 mode ? "closed" : "open");
				time_clone(s, id[i], &f[i], name, r);
			}
		for (int i = 0; i < 2 && mode == 0; i++)
			image_close(h[i]);
	}
	snap_store_close(s);

	snprintf(lab, sizeof(lab), "clone: snap_image_clone of images with "
		 "every chunk mapped, %d runs", cfg.clones);
	heading(lab, "ms", "  CPU ms");
	for (int mode = 0; mode < 2; mode++) {
		struct clone_fig *f = mode ? closed : open;

		for (int i = 0; i < 2; i++) {
			snprintf(lab, sizeof(lab), "%s, %s", label[i],
				 mode ? "no handle open on it"
				      : "a handle open on it");
			snprintf(extra, sizeof(extra), " %7.2f",
				 median(&f[i].cpu_ms));
			row(lab, &f[i].ms, 2, extra);
		}
		snprintf(lab, sizeof(lab), "%s / %s", label[1], label[0]);
		printf(LABEL " %9.2f %27.2f\n", lab,
		       median(&f[1].ms) / median(&f[0].ms),
		       median(&f[1].cpu_ms) / median(&f[0].cpu_ms));
	}
	printf("  (the %s image: %" PRIu64 " x snap_image_copy_range of the %s "
	       "one, then sync: %.2f s)\n", label[1], cfg.big / c->size,
	       label[0], tile);
	for (int i = 0; i < 2; i++) {
		free(open[i].ms.v);
		free(open[i].cpu_ms.v);
		free(closed[i].ms.v);
		free(closed[i].cpu_ms.v);
	}
}

/* ---- space ------------------------------------------------------------- */

/*
 * Rewrite want of img's npages pages with new random bytes (at least one
 * page; runs: in runs of 64), each page once; mirror (or NULL) gets the
 * same bytes, its pages marked as holding data.
 */
static void dirty_pages(struct snap_image *img, uint64_t npages,
			uint64_t want, bool runs, uint64_t *s,
			struct content *mirror)
{
	uint64_t got = 0;
	uint64_t len = runs ? DIRTY_RUN : 1;
	uint8_t *taken = xcalloc((size_t)npages, 1);
	uint8_t *buf = xmalloc((size_t)len * PAGE);

	if (len > npages)
		len = npages;
	if (!want)
		want = 1;
	while (got < want) {
		uint64_t p = rnd(s) % (npages - len + 1), i;

		for (i = 0; i < len && !taken[p + i]; i++)
			;
		if (i < len)
			continue;	/* overlaps one already written */
		memset(taken + p, 1, (size_t)len);
		fill_random(s, buf, (size_t)len * PAGE);
		if (snap_image_write(img, buf, (size_t)len * PAGE, p * PAGE,
				     &err) != (ssize_t)(len * PAGE))
			failed("clone: write");
		if (mirror) {
			memcpy(mirror->bytes + p * PAGE, buf,
			       (size_t)len * PAGE);
			memset(mirror->data + p, 1, (size_t)len);
		}
		got += len;
	}
	free(taken);
	free(buf);
}

static uint64_t disk_bytes;

static int add_blocks(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F)
		disk_bytes += (uint64_t)st->st_blocks * 512;
	return 0;
}

/* What the files of STORE/chunks take on the disk. */
static uint64_t chunks_on_disk(const char *dir)
{
	char *p;

	if (asprintf(&p, "%s/chunks", dir) < 0)
		die(2, "out of memory");
	disk_bytes = 0;
	nftw(p, add_blocks, 32, FTW_PHYS);
	free(p);
	return disk_bytes;
}

static void space_row(const char *label, const struct snap_store_stats *st,
		      uint64_t disk, const struct snap_store_stats *base,
		      const char *extra)
{
	printf(LABEL " %9.1f %9.1f %8.2f %9.2f%s\n", label,
	       st->stored_bytes / 1048576.0, disk / 1048576.0,
	       (double)st->stored_bytes / (double)base->stored_bytes,
	       (double)st->logical_bytes / (double)st->stored_bytes, extra);
}

static void bench_space(const char *dir, const struct content *c)
{
	static const char *const modes[] = { "scattered", "runs" };
	static const char *const labels[] = {
		"+ 10 clones, 1% scattered pages",
		"+ 10 clones, 1% in runs of 64 pages",
	};
	struct snap_store *s = store_open(dir, false, 0);
	struct snap_store_stats base, st;
	uint8_t id[SNAP_ID_LEN], cid[SNAP_ID_LEN];
	uint64_t seed = cfg.seed + 2000, dirtied;
	char name[64], extra[64];

	snprintf(name, sizeof(name), "bench/%s", c->name);
	lookup(s, name, id);
	stats(s, &base);
	dirtied = (c->npages / 100 ? c->npages / 100 : 1) * PAGE;
	printf("\nspace: the %s image, then %d clones of it, each with 1%% "
	       "of its 4 KiB pages rewritten (%.1f MiB)\n", c->name, NCLONES,
	       dirtied / 1048576.0);
	printf(LABEL " %9s %9s %8s %9s %9s %9s\n", "", "stored", "on disk",
	       "x image", "logical/", "added/", "s/clone");
	printf(LABEL " %9s %9s %8s %9s %9s %9s\n", "", "MiB", "MiB", "",
	       "stored", "rewritten", "(median)");
	space_row("the image alone", &base, chunks_on_disk(dir), &base, "");
	for (int m = 0; m < 2; m++) {
		struct series secs = { 0 };
		struct snap_gc_stats gs;
		double t0, amp;

		for (int k = 1; k <= NCLONES; k++) {
			struct snap_image *img;

			if (snap_image_clone(s, id, cid, &err))
				failed("clone");
			snprintf(name, sizeof(name), "bench/%s-%02d", modes[m],
				 k);
			link_name(s, name, cid);
			img = image_open(s, cid, SNAP_IMAGE_WRITE);
			t0 = now();
			dirty_pages(img, c->npages, c->npages / 100, m == 1,
				    &seed, NULL);
			if (snap_image_sync(img, &err))
				failed("clone: sync");
			add(&secs, now() - t0);
			image_close(img);
		}
		stats(s, &st);
		amp = (double)(st.stored_bytes - base.stored_bytes) /
		      NCLONES / (double)dirtied;
		blog("space %s stored %" PRIu64 " base %" PRIu64 " logical %"
		     PRIu64 " chunks %" PRIu64 " s_per_clone %.3f", modes[m],
		     st.stored_bytes, base.stored_bytes, st.logical_bytes,
		     st.chunks, median(&secs));
		snprintf(extra, sizeof(extra), " %9.1f %9.2f", amp,
			 median(&secs));
		space_row(labels[m], &st, chunks_on_disk(dir), &base, extra);
		free(secs.v);
		for (int k = 1; k <= NCLONES; k++) {
			snprintf(name, sizeof(name), "bench/%s-%02d", modes[m],
				 k);
			if (snap_store_unlink(s, name, &err))
				failed(name);
		}
		if (snap_store_gc(s, &gs, &err))
			failed("gc");
	}
	printf("  (target: x image <= 1.5 scattered; the rewritten bytes alone, "
	       "random, make at least %.2f;\n   added/rewritten: the bytes a "
	       "clone adds to the store per byte it rewrote)\n",
	       (double)(base.stored_bytes + NCLONES * dirtied) /
	       (double)base.stored_bytes);
	snap_store_close(s);
}

/* ---- aged -------------------------------------------------------------- */

#define AGED_TARGET	1.2	/* reads of the aged image: x the flat one's */

/* c's lists of data pages and of chunks holding any, again from c->data. */
static void content_index(struct content *c)
{
	uint64_t per_chunk = cfg.chunk / PAGE;

	free(c->dpages);
	c->dpages = xmalloc((size_t)c->npages * sizeof(uint64_t));
	c->ndpages = 0;
	c->ndchunks = 0;
	for (uint64_t p = 0; p < c->npages; p++) {
		if (!c->data[p])
			continue;
		c->dpages[c->ndpages++] = p;
		if (!c->ndchunks ||
		    c->dchunks[c->ndchunks - 1] != p / per_chunk)
			c->dchunks[c->ndchunks++] = p / per_chunk;
	}
}

static const char *met(bool ok)
{
	return ok ? "met" : "MISSED";
}

/* A row of a ratio aged / flat, with the reads' target when target. */
static void aged_ratio(const char *label, double r, bool target)
{
	if (target)
		printf(LABEL " %9.2f   target <= %.1fx: %s\n", label, r,
		       AGED_TARGET, met(r <= AGED_TARGET));
	else
		printf(LABEL " %9.2f   (no target)\n", label, r);
}

/*
 * c (the 30% image) imported into a new store in dir as bench/aged-0000,
 * then cfg.aged rounds of: clone the newest image (a handle open on it
 * for writing, as a VM's), name the clone bench/aged-NNNN, move the
 * handle onto it, rewrite 0.1% of its pages, sync. c follows the writes.
 * Then the final bytes imported into a new store in flat, and both read
 * as bench_read reads (cold: a new handle, page cache dropped).
 */
static void bench_aged(const char *dir, const char *flat, struct content *c)
{
	struct read_side ag = { .name = "aged" }, fl = { .name = "flat" };
	struct snap_store *s;
	struct snap_image *img;
	struct snap_image_stat ist;
	struct snap_store_stats sa, sf;
	struct series clone_ms = { 0 }, write_s = { 0 };
	uint8_t cur[SNAP_ID_LEN], next[SNAP_ID_LEN];
	uint64_t want = c->npages / 1000 ? c->npages / 1000 : 1;
	uint64_t seed = cfg.seed + 3000, rs = cfg.seed + 4000, written;
	double t0, aging, flat_s, u, r50, r99;
	char name[64], label[128];
	int n = cfg.reads;

	c->name = "aged-0000";	/* import_store names it bench/NAME */
	import_store(dir, c, &u);
	c->name = "aged";
	written = c->ndpages * PAGE;
	s = store_open(dir, false, 0);
	lookup(s, "bench/aged-0000", cur);
	img = image_open(s, cur, SNAP_IMAGE_WRITE);
	t0 = now();
	for (int k = 1; k <= cfg.aged; k++) {
		double t1 = now(), ms, ws;

		if (snap_image_clone(s, cur, next, &err))
			failed("aged: clone");
		ms = (now() - t1) * 1e3;
		snprintf(name, sizeof(name), "bench/aged-%04d", k);
		link_name(s, name, next);
		image_close(img);
		img = image_open(s, next, SNAP_IMAGE_WRITE);
		memcpy(cur, next, SNAP_ID_LEN);
		t1 = now();
		dirty_pages(img, c->npages, want, false, &seed, c);
		if (snap_image_sync(img, &err))
			failed("aged: sync");
		ws = now() - t1;
		add(&clone_ms, ms);
		add(&write_s, ws);
		snap_image_stat(img, &ist);
		blog("aged round %d clone_ms %.3f write_sync_s %.4f depth %u",
		     k, ms, ws, ist.depth);
	}
	aging = now() - t0;
	written += (uint64_t)cfg.aged * want * PAGE;
	snap_image_stat(img, &ist);
	image_close(img);
	link_name(s, "bench/aged", cur);
	stats(s, &sa);
	snap_store_close(s);

	content_index(c);
	flat_s = import_store(flat, c, &u);	/* bench/aged there too */
	s = store_open(flat, true, 0);
	stats(s, &sf);
	snap_store_close(s);
	blog("aged stored %" PRIu64 " meta %" PRIu64 " flat_stored %" PRIu64
	     " flat_meta %" PRIu64 " written %" PRIu64 " depth %u own %" PRIu64
	     " chunks %" PRIu64 " aging_s %.3f flat_s %.3f", sa.stored_bytes,
	     sa.meta_bytes, sf.stored_bytes, sf.meta_bytes, written,
	     ist.depth, ist.own_chunks, ist.chunks, aging, flat_s);

	if ((uint64_t)n > c->ndchunks)
		n = (int)c->ndchunks;
	for (int r = 0; r <= cfg.runs; r++) {
		uint64_t s2 = rs + (uint64_t)r;	/* the same pages for both */

		read_run(r % 2 ? &fl : &ag, r % 2 ? flat : dir, NULL, c, r, n,
			 &s2);
		s2 = rs + (uint64_t)r;
		read_run(r % 2 ? &ag : &fl, r % 2 ? dir : flat, NULL, c, r, n,
			 &s2);
	}

	printf("\naged: the 30%% image, then %d rounds of snap_image_clone of "
	       "the newest (a handle open on it)\n  and %" PRIu64 " of the "
	       "clone's 4 KiB pages (0.1%%) rewritten at random, then "
	       "snap_image_sync; flat: the\n  final bytes written into a new "
	       "store as the import writes them (%.1f s)\n", cfg.aged, want,
	       flat_s);
	printf("  (aging %.1f s: clone median %.2f ms, max %.2f; writes + sync "
	       "median %.3f s, max %.3f;\n   the aged image: %u deltas deep, "
	       "%" PRIu64 " of its %" PRIu64 " chunks its own)\n", aging,
	       median(&clone_ms), hi(&clone_ms), median(&write_s),
	       hi(&write_s), ist.depth, ist.own_chunks, ist.chunks);
	heading("aged: snap_image_open, cold (a new store handle, page cache "
		"dropped)", "ms", "");
	snprintf(label, sizeof(label), "aged (%u deltas deep)", ist.depth);
	row(label, &ag.open, 2, "");
	row("flat (1 delta)", &fl.open, 2, "");
	aged_ratio("aged / flat", median(&ag.open) / median(&fl.open), false);

	heading("aged: 1 MiB sequential reads", "GB/s", "   CPU s");
	cpu_row("aged, cold", &ag.cold, &ag.ucold);
	cpu_row("flat, cold", &fl.cold, &fl.ucold);
	aged_ratio("aged / flat (time)", median(&fl.cold) / median(&ag.cold),
		   true);
	snprintf(label, sizeof(label), "aged, warm (cache %zu MiB)",
		 cfg.cache >> 20);
	cpu_row(label, &ag.warm, &ag.uwarm);
	cpu_row("flat, warm", &fl.warm, &fl.uwarm);
	aged_ratio("aged / flat (time)", median(&fl.warm) / median(&ag.warm),
		   true);

	snprintf(label, sizeof(label), "aged: 4 KiB at random pages holding "
		 "data, %d a run", n);
	heading(label, "median us", "   p99 us:    median       min       max");
	latency_row("aged, cold (a chunk not read before)", &ag.rc50,
		    &ag.rc99);
	latency_row("flat, cold (a chunk not read before)", &fl.rc50,
		    &fl.rc99);
	r50 = median(&ag.rc50) / median(&fl.rc50);
	r99 = median(&ag.rc99) / median(&fl.rc99);
	printf(LABEL " %9.2f %9s %9s %9s %9.2f   target <= %.1fx: %s\n",
	       "aged / flat", r50, "", "", "", r99, AGED_TARGET,
	       met(r50 <= AGED_TARGET && r99 <= AGED_TARGET));
	latency_row("aged, warm", &ag.rw50, &ag.rw99);
	latency_row("flat, warm", &fl.rw50, &fl.rw99);
	r50 = median(&ag.rw50) / median(&fl.rw50);
	r99 = median(&ag.rw99) / median(&fl.rw99);
	printf(LABEL " %9.2f %9s %9s %9s %9.2f   target <= %.1fx: %s\n",
	       "aged / flat", r50, "", "", "", r99, AGED_TARGET,
	       met(r50 <= AGED_TARGET && r99 <= AGED_TARGET));

	printf("\naged: the store's stored bytes (snap_store_stats: chunks; "
	       "meta: deltas and images)\n");
	printf(LABEL " %9s %9s %10s %9s\n", "", "stored", "meta",
	       "x written", "x flat");
	printf(LABEL " %9s %9s\n", "", "MiB", "MiB");
	snprintf(label, sizeof(label), "the aged store (%" PRIu64 " images)",
		 sa.images);
	printf(LABEL " %9.1f %9.1f %10.2f %9.2f\n", label,
	       sa.stored_bytes / 1048576.0, sa.meta_bytes / 1048576.0,
	       (double)sa.stored_bytes / (double)written,
	       (double)sa.stored_bytes / (double)sf.stored_bytes);
	printf(LABEL " %9.1f %9.1f %10.2f %9.2f\n", "flat (the final bytes "
	       "alone)", sf.stored_bytes / 1048576.0,
	       sf.meta_bytes / 1048576.0,
	       (double)sf.stored_bytes / (double)written, 1.0);
	snprintf(label, sizeof(label), "written: data pages + %d x %" PRIu64,
		 cfg.aged, want);
	printf(LABEL " %9.1f %9s %10.2f\n", label, written / 1048576.0, "",
	       1.0);
	printf("  (written: the random bytes given to snap_image_write, the "
	       "import's data pages and every\n   round's rewritten ones; no "
	       "target)\n");

	free(clone_ms.v);
	free(write_s.v);
	for (int i = 0; i < 2; i++) {
		struct read_side *d = i ? &fl : &ag;

		free(d->cold.v);
		free(d->warm.v);
		free(d->ucold.v);
		free(d->uwarm.v);
		free(d->rc50.v);
		free(d->rc99.v);
		free(d->rw50.v);
		free(d->rw99.v);
		free(d->open.v);
	}
}

/* ---- main -------------------------------------------------------------- */

#define OPTS	"d:s:c:n:C:z:b:k:r:S:f:Fl:Z:a:"

static void usage(void)
{
	fprintf(stderr,
		"usage: storebench [-d DIR] [-s MIB] [-c CHUNK] [-n RUNS] "
		"[-C CACHE_MIB]\n"
		"                  [-z LEVEL] [-b BIG_GIB] [-k CLONES] "
		"[-r READS] [-S SEED]\n"
		"                  [-f FSTYPE] [-F] [-l LOG] "
		"[-Z DEFAULT_LEVEL] [-a ROUNDS]\n");
	exit(2);
}

static uint64_t number(const char *arg, bool suffix)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg)
		usage();
	if (suffix && *end && strchr("KkMm", *end)) {
		v <<= *end == 'K' || *end == 'k' ? 10 : 20;
		end++;
	}
	if (*end)
		usage();
	return v;
}

static void first_line(void)
{
	char model[128] = "", line[256], load[64] = "?";
	char l1[16], l5[16], l15[16];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(model, sizeof(model), "%s",
				 strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
	f = fopen("/proc/loadavg", "r");
	if (f && fscanf(f, "%15s %15s %15s", l1, l5, l15) == 3)
		snprintf(load, sizeof(load), "%s %s %s", l1, l5, l15);
	if (f)
		fclose(f);
	uname(&u);
	printf("storebench: %ld cores (%s), Linux %s, store dir %s (%s), "
	       "chunk %u KiB, zstd level ", sysconf(_SC_NPROCESSORS_ONLN),
	       model, u.release, cfg.dir, cfg.fstype, cfg.chunk >> 10);
	if (cfg.level)
		printf("%d", cfg.level);
	else if (cfg.deflevel)
		printf("%s (the default)", cfg.deflevel);
	else
		printf("default");
	printf(", images %" PRIu64 " MiB, %d runs + 1 warm-up, seed %" PRIu64
	       ", load %s\n", cfg.size >> 20, cfg.runs, cfg.seed, load);
	printf("cold: a new store handle, page cache dropped by %s; "
	       "GB = 10^9 bytes; columns: median, min, max of the runs\n",
	       drop_proc ? "echo 1 > /proc/sys/vm/drop_caches"
			 : "posix_fadvise(DONTNEED) on every file of the "
			   "store dir");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const char *const paths[] = { "s30", "p30", "s100", "p100" };
	struct content c30 = { 0 }, c100 = { 0 };
	struct import_case cases[4];
	char *tmpl;
	int opt;

	cfg.parent = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR")
							    : "/var/tmp";
	cfg.fstype = "?";
	cfg.size = 1024ull << 20;
	cfg.big = 16ull << 30;
	cfg.chunk = SNAP_CHUNK_DEFAULT;
	cfg.runs = 5;
	cfg.clones = 10;
	cfg.reads = 500;
	cfg.seed = 1;
	cfg.aged = 200;
	while ((opt = getopt(argc, argv, OPTS)) != -1) {
		switch (opt) {
		case 'd': cfg.parent = optarg; break;
		case 's': cfg.size = number(optarg, false) << 20; break;
		case 'c': cfg.chunk = (uint32_t)number(optarg, true); break;
		case 'n': cfg.runs = (int)number(optarg, false); break;
		case 'C': cfg.cache = number(optarg, false) << 20; break;
		case 'z': cfg.level = atoi(optarg); break;
		case 'b': cfg.big = number(optarg, false) << 30; break;
		case 'k': cfg.clones = (int)number(optarg, false); break;
		case 'r': cfg.reads = (int)number(optarg, false); break;
		case 'S': cfg.seed = number(optarg, false); break;
		case 'f': cfg.fstype = optarg; break;
		case 'F': cfg.fadvise = true; break;
		case 'l': cfg.logpath = optarg; break;
		case 'Z': cfg.deflevel = optarg; break;
		case 'a': cfg.aged = (int)number(optarg, false); break;
		default: usage();
		}
	}
	if (optind != argc || cfg.runs < 1 || cfg.clones < 1 ||
	    cfg.reads < 1 || cfg.size == 0 || cfg.aged < 0 ||
	    cfg.aged > 9999)
		usage();
	if (cfg.chunk < SNAP_CHUNK_MIN || cfg.chunk > SNAP_CHUNK_MAX ||
	    (cfg.chunk & (cfg.chunk - 1)))
		die(2, "-c %u: a power of two from %u to %u bytes", cfg.chunk,
		    SNAP_CHUNK_MIN, SNAP_CHUNK_MAX);
	if (cfg.size % cfg.chunk || cfg.big < cfg.size ||
	    cfg.big % cfg.size)
		die(2, "-s %" PRIu64 ": a multiple of the chunk size that "
		    "divides -b's %" PRIu64 " GiB", cfg.size >> 20,
		    cfg.big >> 30);
	if (!cfg.cache)
		cfg.cache = (size_t)cfg.size + (64u << 20);
	if (cfg.logpath && !(cfg.log = fopen(cfg.logpath, "w")))
		die(2, "%s: %m", cfg.logpath);
	if (asprintf(&tmpl, "%s/storebench.XXXXXX", cfg.parent) < 0)
		die(2, "out of memory");
	cfg.dir = mkdtemp(tmpl);
	if (!cfg.dir)
		die(2, "%s: %m", tmpl);
	atexit(cleanup);
	drop_proc = !cfg.fadvise && write_drop_caches();
	first_line();

	content_make(&c30, "30%", 30, cfg.seed);
	content_make(&c100, "100%", 100, cfg.seed + 1);
	memset(cases, 0, sizeof(cases));
	cases[0].label = "store, 30% random";
	cases[1].label = "plain file, 30% random";
	cases[2].label = "store, 100% random";
	cases[3].label = "plain file, 100% random";
	for (int i = 0; i < 4; i++) {
		cases[i].c = i < 2 ? &c30 : &c100;
		cases[i].plain = i % 2;
		cases[i].key = paths[i];
		cases[i].path = sub(paths[i]);
	}
	bench_import(cases, 4);
	print_import(cases, 4);
	fflush(stdout);
	unlink(cases[3].path);

	bench_read(cases[0].path, cases[1].path, &c30);
	fflush(stdout);
	unlink(cases[1].path);

	bench_clone(cases[2].path, &c100);
	fflush(stdout);
	rm_rf(cases[2].path);
	content_free(&c100);

	bench_space(cases[0].path, &c30);
	fflush(stdout);
	rm_rf(cases[0].path);

	if (cfg.aged) {
		char *aged = sub("aged"), *flat = sub("flat");

		bench_aged(aged, flat, &c30);	/* c30 becomes the aged bytes */
		rm_rf(aged);
		rm_rf(flat);
		free(aged);
		free(flat);
	}

	content_free(&c30);
	for (int i = 0; i < 4; i++) {
		free(cases[i].path);
		free(cases[i].gbps.v);
		free(cases[i].secs.v);
		free(cases[i].cpus.v);
	}
	if (cfg.log)
		fclose(cfg.log);
	return 0;
}
