/*
 * lazytouch: what a lazily restored VM does to its memory file.
 *
 *   lazytouch FILE PERCENT SEED [PROCS]
 *
 * Maps FILE (mmap MAP_PRIVATE, PROT_READ), draws PERCENT% of its 4 KiB
 * pages (distinct, uniformly, in a random order; SEED fixes them; PERCENT
 * may have decimals; at least one page) and reads one byte of each, in
 * that order, through the mapping: one page fault each, served by the
 * page cache or by the file system's reads. Prints one line:
 *
 *   MS CHECKSUM
 *
 * MS, the milliseconds (CLOCK_MONOTONIC) from just before the first touch
 * to just after the last; CHECKSUM, FNV-1a (64 bits, hex) of the bytes
 * read in that order, the same for two files of the same bytes.
 *
 * With PROCS > 1, PROCS processes are forked; each maps FILE and draws
 * the same pages (the same SEED), then, once all are ready, they start
 * touching together (a pipe closed by the parent) and MS is the slowest
 * one's. Their checksums
 * must agree.
 *
 * Exit status: 0; 1 when a child failed or the checksums differ (a touch
 * past the end of a file that shrank is SIGBUS: a failure too); 2 on a
 * usage error or a file that cannot be opened or mapped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096u
#define PROCS_MAX	64

static uint64_t rng;

static uint64_t next(void)	/* splitmix64 */
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct result {
	double ms;
	uint64_t sum;
};

/*
 * The first n pages of a Fisher-Yates shuffle of all of them: distinct,
 * uniform, in a random order.
 */
static uint64_t *draw(uint64_t pages, uint64_t n, uint64_t seed)
{
	uint64_t *all = malloc(pages * sizeof(*all));

	if (!all)
		return NULL;
	for (uint64_t i = 0; i < pages; i++)
		all[i] = i;
	rng = seed;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t j = i + next() % (pages - i), t = all[i];

		all[i] = all[j];
		all[j] = t;
	}
	return all;
}

/* Map FILE; the mapping and its page count, or NULL with a message. */
static const volatile uint8_t *map(const char *file, uint64_t *pages)
{
	struct stat st;
	void *p;
	int fd;

	fd = open(file, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "lazytouch: %s: %s\n", file, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st)) {
		fprintf(stderr, "lazytouch: %s: fstat: %s\n", file,
			strerror(errno));
		close(fd);
		return NULL;
	}
	*pages = (uint64_t)st.st_size / PAGE;
	if (!*pages) {
		fprintf(stderr, "lazytouch: %s: less than a page\n", file);
		close(fd);
		return NULL;
	}
	p = mmap(NULL, *pages * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);	/* the mapping keeps the file open */
	if (p == MAP_FAILED) {
		fprintf(stderr, "lazytouch: %s: mmap: %s\n", file,
			strerror(errno));
		return NULL;
	}
	return p;
}

static struct result touch(const volatile uint8_t *m, const uint64_t *order,
			   uint64_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	struct result r;
	double t0;

	t0 = now_ms();
	for (uint64_t i = 0; i < n; i++) {
		h ^= m[order[i] * PAGE];
		h *= 0x100000001b3ull;
	}
	r.ms = now_ms() - t0;
	r.sum = h;
	return r;
}

/* The page count, or 0 when PERCENT is not one. */
static uint64_t count(const char *text, uint64_t pages)
{
	double pct;
	char *end;
	uint64_t n;

	errno = 0;
	pct = strtod(text, &end);
	if (errno || end == text || *end || !(pct > 0) || pct > 100)
		return 0;
	n = (uint64_t)(pages * pct / 100 + 0.5);
	return n ? n : 1;
}

/* A child: map, draw, say ready, wait for the start, touch, write its
 * result. */
static int child(const char *file, const char *pct, uint64_t seed,
		 int ready, int go, int out)
{
	const volatile uint8_t *m;
	struct result r;
	uint64_t pages, n, *order;
	char c;

	if (!(m = map(file, &pages)))
		return 2;
	n = count(pct, pages);
	if (!n || !(order = draw(pages, n, seed)))
		return 2;
	c = 1;
	if (write(ready, &c, 1) != 1)
		return 1;
	close(ready);
	if (read(go, &c, 1) < 0)	/* EOF: the parent closed it */
		return 1;
	r = touch(m, order, n);
	return write(out, &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1;
}

static int many(const char *file, const char *pct, uint64_t seed,
		unsigned procs)
{
	int ready[2], go[2], out[2], rc = 0, status;
	struct result r, worst = { 0, 0 };
	unsigned got = 0;
	bool first = true;
	pid_t pid;

	char c;

	if (pipe(ready) || pipe(go) || pipe(out)) {
		fprintf(stderr, "lazytouch: pipe: %s\n", strerror(errno));
		return 2;
	}
	for (unsigned i = 0; i < procs; i++) {
		pid = fork();
		if (pid < 0) {
			fprintf(stderr, "lazytouch: fork: %s\n",
				strerror(errno));
			rc = 1;
			break;
		}
		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			close(out[0]);
			_exit(child(file, pct, seed, ready[1], go[0], out[1]));
		}
	}
	close(ready[1]);
	close(go[0]);
	close(out[1]);
	/* Start them together once all have mapped and drawn (a child that
	 * failed closes its end: EOF when no one is left to be ready). */
	while (read(ready[0], &c, 1) == 1)
		;
	close(go[1]);
	while (read(out[0], &r, sizeof(r)) == (ssize_t)sizeof(r)) {
		if (!first && r.sum != worst.sum) {
			fprintf(stderr, "lazytouch: %s: the processes read "
				"different bytes\n", file);
			rc = 1;
		}
		if (first || r.ms > worst.ms)
			worst.ms = r.ms;
		worst.sum = r.sum;
		first = false;
		got++;
	}
	/* A child that exited non-zero said why; one killed did not. */
	while (wait(&status) > 0)
		if (WIFSIGNALED(status)) {
			fprintf(stderr, "lazytouch: %s: a process was killed "
				"by signal %d\n", file, WTERMSIG(status));
			rc = 1;
		} else if (WEXITSTATUS(status) && !rc) {
			rc = WEXITSTATUS(status) == 2 ? 2 : 1;
		}
	if (!rc && got != procs)
		rc = 1;
	if (!rc)
		printf("%.3f %016" PRIx64 "\n", worst.ms, worst.sum);
	return rc;
}

int main(int argc, char **argv)
{
	const volatile uint8_t *m;
	unsigned long procs = 1;
	unsigned long long seed;
	uint64_t pages, n, *order;
	struct result r;
	char *end;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: lazytouch FILE PERCENT SEED [PROCS]\n");
		return 2;
	}
	errno = 0;
	seed = strtoull(argv[3], &end, 10);
	if (errno || end == argv[3] || *end) {
		fprintf(stderr, "lazytouch: SEED: not a number: %s\n", argv[3]);
		return 2;
	}
	if (argc == 5) {
		procs = strtoul(argv[4], &end, 10);
		if (end == argv[4] || *end || procs < 1 || procs > PROCS_MAX) {
			fprintf(stderr, "lazytouch: PROCS: 1 to %d\n",
				PROCS_MAX);
			return 2;
		}
	}
	if (procs > 1)
		return many(argv[1], argv[2], seed, (unsigned)procs);

	if (!(m = map(argv[1], &pages)))
		return 2;
	if (!(n = count(argv[2], pages))) {
		fprintf(stderr, "lazytouch: PERCENT: above 0, at most 100: "
			"%s\n", argv[2]);
		return 2;
	}
	if (!(order = draw(pages, n, seed))) {
		fprintf(stderr, "lazytouch: out of memory\n");
		return 2;
	}
	r = touch(m, order, n);
	printf("%.3f %016" PRIx64 "\n", r.ms, r.sum);
	return 0;
}
