/*
 * pagefill: make memory-like files and dirty their pages.
 *
 *   pagefill image FILE MIB PERCENT SEED
 *   pagefill dirty FILE PERCENT SEED
 *
 * image: makes FILE (truncated first) MIB MiB long: runs of random bytes,
 *        page-aligned, 64 KiB to 4 MiB long, at random places, until they
 *        cover PERCENT% of it; the rest is a hole (reads as zeros). The
 *        same layout as storebench's "30%" image.
 * dirty: rewrites PERCENT% of FILE's 4 KiB pages (distinct pages drawn
 *        uniformly: scattered) with new random bytes, one pwrite(2) each
 *        in offset order, then fsync(2).
 *
 * SEED fixes every random choice (layout and bytes). Prints nothing.
 *
 * Exit status: 0; 1 when a write or the fsync failed; 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE	4096u
#define RUN_MIN	(64u << 10)
#define RUN_MAX	(4u << 20)

static uint64_t rng;

static uint64_t next(void)	/* splitmix64 */
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(void *buf, size_t len)
{
	uint64_t *p = buf;

	for (size_t i = 0; i < len / 8; i++)
		p[i] = next();
}

static int fail(const char *file, const char *what)
{
	fprintf(stderr, "pagefill: %s: %s: %s\n", file, what, strerror(errno));
	return 1;
}

static int image(const char *file, uint64_t mib, unsigned pct)
{
	uint64_t size = mib << 20, pages = size / PAGE, want, have = 0;
	static uint64_t buf[RUN_MAX / 8];
	unsigned char *seen = calloc(pages, 1);
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return fail(file, "open");
	if (!seen || ftruncate(fd, (off_t)size))
		return fail(file, "truncate");
	want = pages * pct / 100;
	while (have < want) {
		uint64_t len = RUN_MIN / PAGE +
			       next() % ((RUN_MAX - RUN_MIN) / PAGE + 1);
		uint64_t first = next() % pages;

		if (first + len > pages)
			len = pages - first;
		if (len > want - have)		/* the last run ends there */
			len = want - have;
		for (uint64_t p = first; p < first + len; p++)
			have += !seen[p], seen[p] = 1;
		fill(buf, len * PAGE);
		if (pwrite(fd, buf, len * PAGE, (off_t)(first * PAGE)) !=
		    (ssize_t)(len * PAGE))
			return fail(file, "write");
	}
	free(seen);
	if (fsync(fd) || close(fd))
		return fail(file, "fsync");
	return 0;
}

static int dirty(const char *file, unsigned pct)
{
	static uint64_t buf[PAGE / 8];
	int fd = open(file, O_WRONLY);
	unsigned char *pick;
	uint64_t pages, n;
	struct stat st;

	if (fd < 0 || fstat(fd, &st))
		return fail(file, "open");
	pages = (uint64_t)st.st_size / PAGE;
	pick = calloc(pages ? pages : 1, 1);
	if (!pick)
		return fail(file, "calloc");
	n = pages * pct / 100;
	for (uint64_t k = 0; k < n;) {
		uint64_t p = next() % pages;

		k += !pick[p];
		pick[p] = 1;
	}
	for (uint64_t p = 0; p < pages; p++) {
		if (!pick[p])
			continue;
		fill(buf, PAGE);
		if (pwrite(fd, buf, PAGE, (off_t)(p * PAGE)) != PAGE)
			return fail(file, "write");
	}
	free(pick);
	if (fsync(fd) || close(fd))
		return fail(file, "fsync");
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: pagefill image FILE MIB PERCENT SEED\n"
			"       pagefill dirty FILE PERCENT SEED\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned pct;

	if (argc == 6 && !strcmp(argv[1], "image")) {
		uint64_t mib = strtoull(argv[3], NULL, 0);

		pct = (unsigned)strtoul(argv[4], NULL, 0);
		rng = strtoull(argv[5], NULL, 0);
		if (mib == 0 || pct > 100)
			usage();
		return image(argv[2], mib, pct);
	}
	if (argc == 5 && !strcmp(argv[1], "dirty")) {
		pct = (unsigned)strtoul(argv[3], NULL, 0);
		rng = strtoull(argv[4], NULL, 0);
		if (pct > 100)
			usage();
		return dirty(argv[2], pct);
	}
	usage();
}
