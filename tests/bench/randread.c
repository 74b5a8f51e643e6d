/*
 * randread: latency of 4 KiB reads at random pages of a file.
 *
 *   randread [-n READS] [-s SEED] [-m MAP [-d]] FILE
 *
 * Reads READS (default 2000) 4 KiB pages of FILE, at 4 KiB-aligned
 * offsets drawn uniformly from the whole file with SEED (default 1), each
 * with one pread(2) timed on CLOCK_MONOTONIC, and prints one line:
 *
 *   READS MEDIAN_US P99_US MAX_US
 *
 * With -m, MAP is a plain (sparse) file holding the same bytes as FILE:
 * every page read from FILE is compared with MAP's, after its timed read,
 * and a difference is an error; with -d too, only pages MAP has data at
 * (lseek SEEK_DATA: not in a hole) are drawn. The offsets are drawn
 * before the first read; the same SEED gives the same offsets for FILE
 * and for MAP. FILE is opened with POSIX_FADV_RANDOM (no readahead
 * around the pages read).
 *
 * Exit status: 0; 1 when a read failed, came short or differed from MAP;
 * 2 on a usage error or a file that cannot be opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE	4096u

static uint64_t rng;

static uint64_t next(void)	/* splitmix64 */
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: randread [-n READS] [-s SEED] [-m MAP [-d]] "
		"FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static char buf[PAGE] __attribute__((aligned(PAGE)));
	static char ref[PAGE] __attribute__((aligned(PAGE)));
	const char *map = NULL;
	unsigned long n = 2000;
	uint64_t *off, *ns, pages;
	struct stat st;
	int c, fd, mfd = -1, data = 0;

	rng = 1;
	while ((c = getopt(argc, argv, "n:s:m:d")) != -1) {
		switch (c) {
		case 'n': n = strtoul(optarg, NULL, 0); break;
		case 's': rng = strtoull(optarg, NULL, 0); break;
		case 'm': map = optarg; break;
		case 'd': data = 1; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || n == 0 || (data && !map))
		usage();
	fd = open(argv[optind], O_RDONLY);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "randread: %s: %s\n", argv[optind],
			strerror(errno));
		return 2;
	}
	pages = (uint64_t)st.st_size / PAGE;
	if (map && (mfd = open(map, O_RDONLY)) < 0) {
		fprintf(stderr, "randread: %s: %s\n", map, strerror(errno));
		return 2;
	}
	off = calloc(n, sizeof(*off));
	ns = calloc(n, sizeof(*ns));
	if (!off || !ns || pages == 0) {
		fprintf(stderr, "randread: %s: %s\n", argv[optind],
			pages ? "out of memory" : "shorter than a page");
		return 2;
	}
	for (unsigned long i = 0; i < n; i++) {
		for (unsigned tries = 0;; tries++) {
			off[i] = next() % pages * PAGE;
			if (!data ||
			    lseek(mfd, (off_t)off[i], SEEK_DATA) == (off_t)off[i])
				break;
			if (tries > 100000) {
				fprintf(stderr, "randread: %s: no data found\n",
					map);
				return 2;
			}
		}
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);

	for (unsigned long i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		ssize_t r = pread(fd, buf, PAGE, (off_t)off[i]);

		ns[i] = now_ns() - t0;
		if (r != PAGE) {
			fprintf(stderr, "randread: %s: read at %llu: %s\n",
				argv[optind], (unsigned long long)off[i],
				r < 0 ? strerror(errno) : "short");
			return 1;
		}
		if (mfd >= 0 &&
		    (pread(mfd, ref, PAGE, (off_t)off[i]) != PAGE ||
		     memcmp(buf, ref, PAGE))) {
			fprintf(stderr, "randread: %s: page at %llu differs "
				"from %s\n", argv[optind],
				(unsigned long long)off[i], map);
			return 1;
		}
	}
	qsort(ns, n, sizeof(*ns), cmp_u64);
	printf("%lu %.1f %.1f %.1f\n", n, ns[(n - 1) / 2] / 1e3,
	       ns[(n * 99 + 99) / 100 - 1] / 1e3, ns[n - 1] / 1e3);
	return 0;
}
