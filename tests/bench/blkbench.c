/*
 * blkbench: throughput of a block device or a file, and checksums of a
 * region, for tests/bench/devices.sh (in a guest on /dev/vda, and in the
 * rig on the disk file itself).
 *
 *   blkbench [-d] [-s SEED] seqr FILE MIB      MIB MiB read in 1 MiB blocks
 *   blkbench [-d] [-s SEED] seqw FILE MIB      MIB MiB written, 1 MiB blocks
 *   blkbench [-d] [-s SEED] randr FILE OPS     OPS 4 KiB reads
 *   blkbench [-d] [-s SEED] randw FILE OPS     OPS 4 KiB writes
 *   blkbench [-d] [-s SEED] fill FILE OFF LEN  LEN bytes written at OFF
 *   blkbench [-d] sum FILE OFF LEN             LEN bytes at OFF read
 *
 * -d opens FILE with O_DIRECT; a file system that refuses it (tmpfs before
 * Linux 6.6) is an error, exit status 3, so that the caller can say it ran
 * buffered instead. Sequential blocks start at offset 0; random ones are
 * at 4 KiB-aligned offsets drawn uniformly from the whole FILE (its size,
 * or BLKGETSIZE64 of a block device) by splitmix64 from SEED (default 1),
 * drawn before the clock starts. Writes (seqw, randw, fill) end with one
 * fdatasync, inside the time: on a virtio-blk disk that is a FLUSH. The
 * bytes written are a 1 MiB buffer of splitmix64 output from SEED with each
 * 4 KiB page's first 8 bytes replaced by its offset in FILE (no two pages
 * alike, nothing for a store to deduplicate or compress).
 *
 * One line on stdout:
 *
 *   seqr|seqw|randr|randw BYTES OPS USEC MBPS IOPS DIRECT
 *   fill|sum OFF LEN SUM
 *
 * MBPS is 10^6 bytes a second, USEC the wall time of the I/O from the
 * first call to the end of the fdatasync (CLOCK_MONOTONIC), DIRECT 1 with
 * O_DIRECT. SUM is 16 hex digits, a 64-bit hash of the region's words:
 * fill prints the sum of what it wrote, sum of what it read.
 *
 * Exit status: 0; 1 on an I/O error or a short transfer; 2 on a usage
 * error or a FILE that cannot be opened; 3 when O_DIRECT was refused.
 * Built static (it runs in the guest's initrd and in the rig).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE	4096u
#define BLOCK	(1u << 20)

static uint64_t rng;

static uint64_t next(void)	/* splitmix64 */
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: blkbench [-d] [-s SEED] seqr|seqw FILE MIB\n"
		"       blkbench [-d] [-s SEED] randr|randw FILE OPS\n"
		"       blkbench [-d] [-s SEED] fill FILE OFF LEN\n"
		"       blkbench [-d] sum FILE OFF LEN\n");
	exit(2);
}

static uint64_t number(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		usage();
	return v;
}

/* Stamp each page of buf (len bytes, to land at off) with its offset. */
static void stamp(uint8_t *buf, size_t len, uint64_t off)
{
	for (size_t p = 0; p < len; p += PAGE) {
		uint64_t v = off + p;

		memcpy(buf + p, &v, sizeof(v));
	}
}

/* A 64-bit hash of len bytes (a multiple of 8), continuing from h. */
static uint64_t hash(uint64_t h, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, sizeof(w));
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h;
}

static int xfer(int fd, int write, uint8_t *buf, size_t len, uint64_t off,
		const char *file)
{
	while (len) {
		ssize_t n = write ? pwrite(fd, buf, len, (off_t)off) :
				    pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "blkbench: %s: %s at %llu: %s\n", file,
				write ? "write" : "read",
				(unsigned long long)off,
				n < 0 ? strerror(errno) : "end of file");
			return -1;
		}
		buf += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int sync_file(int fd, const char *file)
{
	if (fdatasync(fd)) {
		fprintf(stderr, "blkbench: %s: fdatasync: %s\n", file,
			strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode, *file;
	uint64_t size, a, b, *offs = NULL, t0, us, ops = 0, bytes = 0;
	int c, fd, direct = 0, write, ret = 0;
	uint8_t *buf;
	struct stat st;

	rng = 1;
	while ((c = getopt(argc, argv, "ds:")) != -1) {
		switch (c) {
		case 'd':
			direct = 1;
			break;
		case 's':
			rng = number(optarg);
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 3)
		usage();
	mode = argv[optind];
	file = argv[optind + 1];
	a = number(argv[optind + 2]);
	b = 0;
	if (!strcmp(mode, "fill") || !strcmp(mode, "sum")) {
		if (argc - optind != 4)
			usage();
		b = number(argv[optind + 3]);
		if (a % PAGE || b % PAGE || !b)
			usage();
	} else if (argc - optind != 3 ||
		   (strcmp(mode, "seqr") && strcmp(mode, "seqw") &&
		    strcmp(mode, "randr") && strcmp(mode, "randw")) || !a) {
		usage();
	}
	write = !strcmp(mode, "seqw") || !strcmp(mode, "randw") ||
		!strcmp(mode, "fill");

	fd = open(file, (write ? O_RDWR : O_RDONLY) |
		  (direct ? O_DIRECT : 0) | O_CLOEXEC);
	if (fd < 0 && direct && errno == EINVAL) {
		fprintf(stderr, "blkbench: %s: O_DIRECT refused\n", file);
		return 3;
	}
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "blkbench: %s: %s\n", file, strerror(errno));
		return 2;
	}
	size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size)) {
		fprintf(stderr, "blkbench: %s: BLKGETSIZE64: %s\n", file,
			strerror(errno));
		return 2;
	}
	if (posix_memalign((void **)&buf, PAGE, BLOCK))
		return 2;
	for (size_t i = 0; i < BLOCK; i += 8) {
		uint64_t v = next();

		memcpy(buf + i, &v, sizeof(v));
	}

	if (!strcmp(mode, "fill") || !strcmp(mode, "sum")) {
		uint64_t h = 0xcbf29ce484222325ull;

		if (a + b > size) {
			fprintf(stderr, "blkbench: %s: %llu bytes at %llu: past "
				"its end (%llu)\n", file, (unsigned long long)b,
				(unsigned long long)a, (unsigned long long)size);
			return 2;
		}
		for (uint64_t off = a; off < a + b && !ret; off += BLOCK) {
			size_t len = a + b - off < BLOCK ? a + b - off : BLOCK;

			if (write)
				stamp(buf, len, off);
			ret = xfer(fd, write, buf, len, off, file);
			if (!ret)
				h = hash(h, buf, len);
		}
		if (!ret && write)
			ret = sync_file(fd, file);
		if (!ret)
			printf("%s %llu %llu %016llx\n", mode,
			       (unsigned long long)a, (unsigned long long)b,
			       (unsigned long long)h);
		return ret ? 1 : 0;
	}

	if (mode[0] == 's') {
		bytes = a * BLOCK;
		if (bytes > size) {
			fprintf(stderr, "blkbench: %s: %llu MiB: larger than "
				"the file\n", file, (unsigned long long)a);
			return 2;
		}
		ops = a;
	} else {
		if (size < PAGE) {
			fprintf(stderr, "blkbench: %s: smaller than a page\n",
				file);
			return 2;
		}
		ops = a;
		bytes = ops * PAGE;
		offs = malloc(ops * sizeof(*offs));
		if (!offs)
			return 2;
		for (uint64_t i = 0; i < ops; i++)
			offs[i] = next() % (size / PAGE) * PAGE;
	}

	t0 = now_us();
	for (uint64_t i = 0; i < ops && !ret; i++) {
		uint64_t off = offs ? offs[i] : i * BLOCK;
		size_t len = offs ? PAGE : BLOCK;
		/* random writes take their page from a moving place in buf */
		uint8_t *p = offs && write ? buf + (i % (BLOCK / PAGE)) * PAGE :
			     buf;

		if (write)
			stamp(p, len, off);
		ret = xfer(fd, write, p, len, off, file);
	}
	if (!ret && write)
		ret = sync_file(fd, file);
	us = now_us() - t0;
	if (ret)
		return 1;
	if (!us)
		us = 1;
	printf("%s %llu %llu %llu %.1f %.0f %d\n", mode,
	       (unsigned long long)bytes, (unsigned long long)ops,
	       (unsigned long long)us, (double)bytes / (double)us,
	       (double)ops * 1e6 / (double)us, direct);
	free(offs);
	free(buf);
	close(fd);
	return 0;
}
