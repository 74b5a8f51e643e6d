/* SPDX-License-Identifier: MIT */
/*
 * patcheck: does a RAM image hold the test guest's memory pattern?
 *
 *   patcheck FILE CPUS MIB
 *
 * FILE is guest RAM from address 0 (snapvm's --mem-file, a snapshot's
 * memory.bin), taken while the guest was stopped or paused. The guest ran
 * with cpus=CPUS and touch=MIB: each CPU owns MIB * 256 / CPUS consecutive
 * pages from a 2 MiB-aligned base and rewrites them pass after pass
 * (pattern.h). A page holds the pattern when all its 512 words are those of
 * the (cpu, page, generation) its header names.
 *
 * Passes when every page of every share is in its place and whole, except
 * at most one per CPU (the page its worker was writing when the guest
 * stopped), and each CPU's generations fall by at most one, once, along its
 * share (the front of the pass in progress). Prints one line either way;
 * exit status 0 when it holds, 1 when not, 2 on a usage or file error.
 *
 * The file is read with pread, never mapped: a read fault on a hole of a
 * tmpfs file would allocate it, and the checker must leave a snapshot as
 * it found it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/guest/pattern.h"

#define PAGE		4096u
#define BASE_ALIGN	(2u << 20)
#define MAX_CPUS	64u

struct image {
	const char *path;
	int fd;
	uint64_t size;
	uint64_t buf[PATTERN_WORDS];
};

/* Page i of the image into img->buf; false when it cannot be read. */
static bool read_page(struct image *img, uint64_t i)
{
	return pread(img->fd, img->buf, PAGE, (off_t)(i * PAGE)) == PAGE;
}

struct share {
	uint64_t whole;		/* pages holding their own pattern */
	uint64_t first_gen;	/* generation of page 0 (or the first whole) */
	unsigned int drops;	/* places where the generation falls by one */
	uint64_t last_gen;
	bool seen;
};

/* The generation whose pattern the page holds, or -1. */
static int64_t page_gen(const uint64_t *w, unsigned int cpu, uint64_t page)
{
	uint64_t x;

	if (w[0] != pattern_header(cpu, page) || w[1] >> 40)
		return -1;
	x = pattern_seed(cpu, page, w[1]);
	for (unsigned int i = 2; i < PATTERN_WORDS; i++) {
		x = pattern_next(x);
		if (w[i] != x)
			return -1;
	}
	return (int64_t)w[1];
}

/*
 * Where the shares start: found from the first page anywhere in the file
 * that holds a pattern of some (cpu, page) of the layout.
 */
static int find_base(struct image *img, unsigned int cpus, uint64_t per_cpu,
		     uint64_t *base)
{
	for (uint64_t i = 0; i < img->size / PAGE; i++) {
		const uint64_t *w = img->buf;
		unsigned int cpu;
		uint64_t page, index;

		if (!read_page(img, i))
			return -1;
		cpu = (unsigned int)(w[0] >> 32);
		page = (uint32_t)w[0];
		if (cpu >= cpus || page >= per_cpu || page_gen(w, cpu, page) < 0)
			continue;
		index = (uint64_t)cpu * per_cpu + page;
		if (index > i)
			continue;
		*base = (i - index) * PAGE;
		return 0;
	}
	return -1;
}

static void walk_share(struct image *img, uint64_t first, unsigned int cpu,
		       uint64_t per_cpu, struct share *s)
{
	for (uint64_t page = 0; page < per_cpu; page++) {
		int64_t gen = read_page(img, first + page) ?
			      page_gen(img->buf, cpu, page) : -1;

		if (gen < 0)
			continue;
		if (!s->seen) {
			s->first_gen = s->last_gen = (uint64_t)gen;
			s->seen = true;
		} else if ((uint64_t)gen + 1 == s->last_gen) {
			s->drops++;
		} else if ((uint64_t)gen != s->last_gen) {
			s->drops += 2;	/* any other change: out of order */
		}
		s->last_gen = (uint64_t)gen;
		s->whole++;
	}
}

static int check(struct image *img, unsigned int cpus, uint64_t mib)
{
	uint64_t per_cpu = mib * (1u << 20) / PAGE / cpus, base, whole = 0;
	uint64_t want = per_cpu * cpus, torn = 0, gmin = UINT64_MAX, gmax = 0;
	const char *path = img->path;
	struct share s[MAX_CPUS];

	if (want == 0) {
		fprintf(stderr, "patcheck: %s: no pages to check (touch=%" PRIu64
			" over %u CPUs)\n", path, mib, cpus);
		return 1;
	}
	if (find_base(img, cpus, per_cpu, &base) < 0) {
		fprintf(stderr, "patcheck: %s: no page holds the guest's pattern\n",
			path);
		return 1;
	}
	if (base % BASE_ALIGN || base + want * PAGE > img->size) {
		fprintf(stderr, "patcheck: %s: pattern at 0x%" PRIx64 ", not a "
			"2 MiB-aligned area of %" PRIu64 " pages inside the file\n",
			path, base, want);
		return 1;
	}
	memset(s, 0, sizeof(s));
	for (unsigned int cpu = 0; cpu < cpus; cpu++) {
		walk_share(img, base / PAGE + cpu * per_cpu, cpu, per_cpu,
			   &s[cpu]);
		whole += s[cpu].whole;
		torn += per_cpu - s[cpu].whole;
		if (per_cpu - s[cpu].whole > 1 || s[cpu].drops > 1) {
			fprintf(stderr, "patcheck: %s: cpu %u: %" PRIu64 " of %"
				PRIu64 " pages hold the pattern, generations "
				"%s\n", path, cpu, s[cpu].whole, per_cpu,
				s[cpu].drops > 1 ? "out of order" : "in order");
			return 1;
		}
		if (s[cpu].last_gen < gmin)
			gmin = s[cpu].last_gen;
		if (s[cpu].first_gen > gmax)
			gmax = s[cpu].first_gen;
	}
	printf("patcheck: %s: %" PRIu64 " of %" PRIu64 " pages hold the pattern "
	       "(%u CPUs from 0x%" PRIx64 ", generations %" PRIu64 "-%" PRIu64
	       ", %" PRIu64 " being written)\n", path, whole, want, cpus, base,
	       gmin, gmax, torn);
	return 0;
}

static int parse(const char *s, uint64_t max, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || end == s || *end || *v == 0 || *v > max ? -1 : 0;
}

int main(int argc, char **argv)
{
	static struct image img;
	uint64_t cpus, mib;
	struct stat st;
	int ret;

	if (argc != 4 || parse(argv[2], MAX_CPUS, &cpus) ||
	    parse(argv[3], 1u << 20, &mib)) {
		fprintf(stderr, "usage: patcheck FILE CPUS(1-%u) MIB\n", MAX_CPUS);
		return 2;
	}
	img.path = argv[1];
	img.fd = open(img.path, O_RDONLY | O_CLOEXEC);
	if (img.fd < 0 || fstat(img.fd, &st) < 0) {
		fprintf(stderr, "patcheck: %s: %s\n", img.path, strerror(errno));
		return 2;
	}
	if (st.st_size < (off_t)PAGE) {
		fprintf(stderr, "patcheck: %s: smaller than a page\n", img.path);
		return 2;
	}
	img.size = (uint64_t)st.st_size;
	ret = check(&img, (unsigned int)cpus, mib);
	close(img.fd);
	return ret;
}
