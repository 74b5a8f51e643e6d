/*
 * chunkstudy: which fixed chunk size and zstd level should the
 * content-addressed memory store (snapshot/store/chunk.c) use?
 *
 *   chunkstudy [-m MIB] [-s SEED] [-l LEVEL] [-n SAMPLES] [-j THREADS]
 *
 * Builds a deterministic, memory-like image of MIB MiB (default 1024) in
 * RAM, 4 KiB page by page (build_image says how), then stores it once per
 * chunk size (16 KiB, 64 KiB, 256 KiB, 1 MiB) the way the store does:
 * fixed-size chunks, all-zero chunks dropped, each chunk keyed by its
 * SHA-256 (OpenSSL EVP: SHA-NI where the CPU has it) and kept once,
 * compressed with zstd behind a 16-byte header, or raw when zstd saves
 * less than 1/64 of the chunk. For each chunk size it measures:
 *
 *   - chunks, zero chunks, unique chunks, dedup, and stored bytes and
 *     compress/decompress speed at zstd levels -1, 1, 3 and 6;
 *   - ten clones of the image, each with 1% of its pages dirtied, either
 *     scattered uniformly or in runs of 16 pages: the chunks each clone
 *     adds to the store (at LEVEL, default 1) against the bytes dirtied;
 *   - reads of cold chunks stored at LEVEL (decompress from RAM, SHA-256
 *     verify, copy out) serving 4 KiB and 128 KiB, SAMPLES times (default
 *     2000): median and 99th percentile; put and get throughput;
 *   - per-chunk overheads: files per GiB, chunk-map size;
 * and then puts and gets the same 512 MiB of the image in every chunk
 * size, the sizes taking turns (side_by_side).
 *
 * Every timing is single-threaded; only the clones' sizes, which are not
 * timed, are computed on THREADS threads (default 2). The levels take
 * turns chunk by chunk, and side_by_side's sizes region by region, so that
 * a shared host's slow spells hit them alike; the other timings of two
 * chunk sizes are taken at different moments. SEED (default 1) fixes every
 * random choice: two runs on one machine build the same image and report
 * the same sizes; the timings are the machine's.
 *
 * Exit status: 0; 1 when a measurement failed (a zstd error, a chunk that
 * does not come back identical); 2 on a usage error, no memory, or no
 * corpus files to read.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define PAGE		4096u
#define KEY_LEN		32
#define HDR		16		/* snapshot/store/chunk.c's CHUNK_HDR */
#define NCLONES		10
#define RUN_DIRTY	16		/* pages per clustered dirty run */
#define FILE_MAX	(32u << 20)	/* corpus files larger are skipped */
#define BIG_READ	(128u << 10)

static const size_t chunk_sizes[] = { 16 << 10, 64 << 10, 256 << 10, 1 << 20 };
static const int levels[] = { -1, 1, 3, 6 };
#define NSIZES	(sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))
#define NLEVELS	(sizeof(levels) / sizeof(levels[0]))

static const char *const elf_dirs[] = { "/usr/lib/x86_64-linux-gnu", "/usr/bin" };
static const char *const text_dirs[] = { "/usr/share/doc", "/usr/include" };

static const char *const src_names[] = { "zero", "ELF", "text", "random" };
enum { SRC_ZERO, SRC_ELF, SRC_TEXT, SRC_RANDOM, NSRC };

/* ---- helpers --------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "chunkstudy: out of memory (%zu bytes)\n", n);
		exit(2);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "chunkstudy: out of memory (%zu bytes)\n", n);
		exit(2);
	}
	return p;
}

/* The large buffers: on transparent huge pages where the kernel has them
 * (a 1 GiB image takes 512 faults instead of 262144). */
static void *big_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "chunkstudy: out of memory (%zu bytes)\n", n);
		exit(2);
	}
	madvise(p, n, MADV_HUGEPAGE);
	return p;
}

static void big_free(void *p, size_t n)
{
	munmap(p, n);
}

static void oom(void)
{
	fprintf(stderr, "chunkstudy: out of memory\n");
	exit(2);
}

static void fail(const char *what, size_t chunk)
{
	fprintf(stderr, "chunkstudy: %zu KiB chunks: %s\n", chunk >> 10, what);
	exit(1);
}

/* splitmix64: small, fast, and the same sequence everywhere. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rnd_unit(uint64_t *s)
{
	return (rnd(s) >> 11) * 0x1p-53;
}

/* 1 + the failures before a success of probability 1/mean, up to max. */
static uint32_t rnd_geom(uint64_t *s, uint32_t mean, uint32_t max)
{
	uint32_t n = 1;

	while (n < max && rnd(s) % mean)
		n++;
	return n;
}

static int is_zero(const uint8_t *p, size_t n)
{
	return !p[0] && !memcmp(p, p + 1, n - 1);
}

static const EVP_MD *sha_md;

static void sha256(EVP_MD_CTX *ctx, const void *p, size_t n,
		   uint8_t out[KEY_LEN])
{
	if (!EVP_DigestInit_ex2(ctx, sha_md, NULL) ||
	    !EVP_DigestUpdate(ctx, p, n) || !EVP_DigestFinal_ex(ctx, out, NULL))
		fail("SHA-256 failed", n);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double mib(uint64_t bytes)
{
	return bytes / 1048576.0;
}

/* ---- the corpus: real files, read once ------------------------------- */

struct cand {
	char *path;
	dev_t dev;
	ino_t ino;
};

struct cands {
	struct cand *v;
	size_t n, cap;
};

/* Every regular file of 1 byte to FILE_MAX under dir, symlinks not
 * followed, in name order. */
static void walk(const char *dir, struct cands *c)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		struct stat st;
		char *path;

		if (strcmp(name, ".") && strcmp(name, "..") &&
		    asprintf(&path, "%s/%s", dir, name) >= 0) {
			if (lstat(path, &st) < 0) {
				free(path);
			} else if (S_ISDIR(st.st_mode)) {
				walk(path, c);
				free(path);
			} else if (S_ISREG(st.st_mode) && st.st_size > 0 &&
				   st.st_size <= FILE_MAX) {
				if (c->n == c->cap) {
					c->cap = c->cap ? 2 * c->cap : 1024;
					c->v = xrealloc(c->v,
							c->cap * sizeof(*c->v));
				}
				c->v[c->n++] = (struct cand){ path, st.st_dev,
							      st.st_ino };
			} else {
				free(path);
			}
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
}

static int cmp_inode(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return strcmp(x->path, y->path);
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(((const struct cand *)a)->path,
		      ((const struct cand *)b)->path);
}

/* A run of pages of a corpus: part of one file. */
struct seg {
	uint8_t src;
	uint32_t page, len;
};

/* The files of one kind, each padded with zeros to whole pages, cut into
 * runs whose order is shuffled. */
struct corpus {
	uint8_t *buf;
	size_t pages, cap;	/* pages held, pages of room */
	size_t files;
	struct seg *seg;
	size_t nseg, next, wraps;
};

/* Which kind of page a file's first bytes make it: SRC_ELF, SRC_TEXT
 * (no NUL byte, not compressed), or -1. */
static int classify(const uint8_t *p, size_t n)
{
	static const uint8_t packed[][4] = {
		{ 0x1f, 0x8b }, { 0xfd, '7', 'z', 'X' }, { 'B', 'Z', 'h' },
		{ 0x28, 0xb5, 0x2f, 0xfd },
	};

	if (n >= 4 && !memcmp(p, "\177ELF", 4))
		return SRC_ELF;
	for (size_t i = 0; i < sizeof(packed) / sizeof(packed[0]); i++)
		if (n >= 4 && !memcmp(p, packed[i], packed[i][3] ? 4 :
				      packed[i][2] ? 3 : 2))
			return -1;
	return memchr(p, 0, n) ? -1 : SRC_TEXT;
}

/*
 * Fill corp[SRC_ELF] and corp[SRC_TEXT] with up to their cap pages of
 * files from elf_dirs and text_dirs, taken in a shuffled order (each inode
 * once), and cut each file into runs of 16 pages on average (geometric).
 */
static void load_corpus(struct corpus corp[NSRC], uint64_t *rs)
{
	struct cands c = { 0 };
	uint8_t head[PAGE];
	size_t i, j;

	for (i = 0; i < 2; i++)
		walk(elf_dirs[i], &c);
	for (i = 0; i < 2; i++)
		walk(text_dirs[i], &c);
	qsort(c.v, c.n, sizeof(*c.v), cmp_inode);
	for (i = j = 0; i < c.n; i++) {
		if (j && c.v[j - 1].dev == c.v[i].dev &&
		    c.v[j - 1].ino == c.v[i].ino)
			free(c.v[i].path);
		else
			c.v[j++] = c.v[i];
	}
	c.n = j;
	qsort(c.v, c.n, sizeof(*c.v), cmp_path);
	for (i = c.n; i > 1; i--) {
		struct cand t = c.v[i - 1];

		j = rnd(rs) % i;
		c.v[i - 1] = c.v[j];
		c.v[j] = t;
	}

	for (i = 0; i < c.n; i++) {
		int fd;
		struct corpus *k;
		struct stat st;
		ssize_t n;
		size_t pages;

		if (corp[SRC_ELF].pages + 64 > corp[SRC_ELF].cap &&
		    corp[SRC_TEXT].pages + 64 > corp[SRC_TEXT].cap) {
			free(c.v[i].path);
			continue;
		}
		fd = open(c.v[i].path, O_RDONLY | O_CLOEXEC);
		free(c.v[i].path);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) < 0 || st.st_size <= 0 ||
		    st.st_size > FILE_MAX ||
		    (n = pread(fd, head, sizeof(head), 0)) <= 0 ||
		    classify(head, (size_t)n) < 0) {
			close(fd);
			continue;
		}
		k = &corp[classify(head, (size_t)n)];
		pages = ((size_t)st.st_size + PAGE - 1) / PAGE;
		if (k->pages + pages <= k->cap) {
			uint8_t *dst = k->buf + k->pages * PAGE;
			size_t got = 0;

			memset(dst, 0, pages * PAGE);
			while (got < (size_t)st.st_size &&
			       (n = pread(fd, dst + got, st.st_size - got,
					  got)) > 0)
				got += n;
			/* A file that shrank while we read keeps its zeros. */
			for (uint32_t p = 0; p < pages; ) {
				uint32_t len = rnd_geom(rs, 16, pages - p);

				if (k->nseg % 1024 == 0)
					k->seg = xrealloc(k->seg,
						(k->nseg + 1024) * sizeof(*k->seg));
				k->seg[k->nseg++] = (struct seg){
					(uint8_t)(k - corp), k->pages + p, len };
				p += len;
			}
			k->pages += pages;
			k->files++;
		}
		close(fd);
	}
	free(c.v);

	for (int s = SRC_ELF; s <= SRC_TEXT; s++) {
		struct corpus *k = &corp[s];

		for (i = k->nseg; i > 1; i--) {
			struct seg t = k->seg[i - 1];

			j = rnd(rs) % i;
			k->seg[i - 1] = k->seg[j];
			k->seg[j] = t;
		}
	}
}

/* ---- the image ------------------------------------------------------- */

struct image {
	uint8_t *mem;
	size_t pages;
	struct corpus corp[NSRC];
	uint8_t *src;			/* per page: SRC_* */
	uint64_t runs[NSRC];		/* extents of each kind */
	uint64_t repeats;		/* file runs placed a second time */
};

/*
 * Lay the image out as extents, one after another from page 0. Each extent
 * is one of these kinds, picked with weights (share / mean pages per
 * extent so far) that hold the shares of pages near 50% zero, 30% ELF,
 * 10% text and 10% random:
 *   zero:      2^k zero pages, k uniform in 0..10 (4 KiB to 4 MiB);
 *   ELF, text: a run of a real file's pages: the next of the kind's
 *              shuffled runs, or 1 time in 8 a run of either kind already
 *              placed once (a file in memory twice, such as an initramfs
 *              copy and the root file system's);
 *   random:    1 to 16 pages of pseudo-random bytes (encrypted or
 *              compressed data: incompressible).
 */
static void build_image(struct image *im, uint64_t *rs)
{
	static const double share[NSRC] = { 0.5, 0.3, 0.1, 0.1 };
	double seen_pages[NSRC] = { 186, 12, 4, 8.5 };
	double seen_runs[NSRC] = { 1, 1, 1, 1 };
	struct seg *placed = NULL;
	size_t nplaced = 0;
	size_t p = 0;

	for (int s = SRC_ELF; s <= SRC_TEXT; s++)
		if (!im->corp[s].nseg)
			seen_pages[s] = 1e300;	/* never picked */
	while (p < im->pages) {
		double w[NSRC], sum = 0, r;
		uint8_t *dst = im->mem + p * PAGE;
		struct corpus *k;
		struct seg sg;
		uint32_t len;
		int kind;

		for (kind = 0; kind < NSRC; kind++)
			sum += w[kind] = share[kind] * seen_runs[kind] /
					 seen_pages[kind];
		r = rnd_unit(rs) * sum;
		for (kind = 0; kind < NSRC - 1 && r >= w[kind]; kind++)
			r -= w[kind];

		switch (kind) {
		case SRC_ZERO:
			len = 1u << (rnd(rs) % 11);
			break;
		case SRC_ELF:
		case SRC_TEXT:
			if (nplaced && rnd(rs) % 8 == 0) {
				sg = placed[rnd(rs) % nplaced];
				kind = sg.src;
				im->repeats++;
			} else {
				k = &im->corp[kind];
				if (k->next == k->nseg) {
					k->next = 0;
					k->wraps++;
				}
				sg = k->seg[k->next++];
				if (nplaced % 1024 == 0)
					placed = xrealloc(placed, (nplaced + 1024) *
								  sizeof(*placed));
				placed[nplaced++] = sg;
			}
			len = sg.len;
			break;
		default:
			len = 1 + rnd(rs) % 16;
			break;
		}
		if (len > im->pages - p)
			len = im->pages - p;

		if (kind == SRC_ZERO) {
			memset(dst, 0, (size_t)len * PAGE);
		} else if (kind == SRC_RANDOM) {
			for (size_t i = 0; i < (size_t)len * PAGE / 8; i++) {
				uint64_t v = rnd(rs);

				memcpy(dst + 8 * i, &v, 8);
			}
		} else {
			memcpy(dst, im->corp[kind].buf + (size_t)sg.page * PAGE,
			       (size_t)len * PAGE);
		}
		memset(im->src + p, kind, len);
		im->runs[kind]++;
		seen_pages[kind] += len;
		seen_runs[kind]++;
		p += len;
	}
	free(placed);
}

/* What clone c writes into page p: a corpus page, stamped so that no
 * two dirtied pages are alike. */
static void dirty_page(const struct image *im, uint32_t c, uint32_t p,
		       uint8_t *dst)
{
	uint64_t s = (uint64_t)c << 40 ^ p ^ 0x5eed;
	size_t n = rnd(&s) % (im->corp[SRC_ELF].pages + im->corp[SRC_TEXT].pages);
	const struct corpus *k = &im->corp[SRC_ELF];
	uint64_t stamp[2] = { c + 1, p };

	if (n >= k->pages) {
		n -= k->pages;
		k = &im->corp[SRC_TEXT];
	}
	memcpy(dst, k->buf + n * PAGE, PAGE);
	memcpy(dst, stamp, sizeof(stamp));
}

/* The pages clone c of pattern pat dirties, in order: 1% of the image,
 * uniformly (pat 0) or in runs of RUN_DIRTY pages at random starts
 * (pat 1; a run may touch another). */
static uint32_t *dirty_set(size_t pages, int pat, uint32_t c, uint64_t seed,
			   size_t *count)
{
	size_t want = pages / 100 ? pages / 100 : 1, n = 0;
	uint8_t *bit = calloc(pages, 1);
	uint64_t s = seed ^ (uint64_t)(pat * 64 + c + 1) << 32;
	uint32_t *list;

	if (!bit)
		oom();
	while (n < want) {
		size_t p = rnd(&s) % pages, run = pat ? RUN_DIRTY : 1;

		if (p + run > pages)
			p = pages - run;
		for (size_t i = 0; i < run && n < want; i++)
			if (!bit[p + i]) {
				bit[p + i] = 1;
				n++;
			}
	}
	list = xmalloc(n * sizeof(*list));
	for (size_t p = 0, i = 0; p < pages; p++)
		if (bit[p])
			list[i++] = (uint32_t)p;
	free(bit);
	*count = n;
	return list;
}

/* ---- the store of one chunk size ------------------------------------- */

struct entry {
	uint8_t key[KEY_LEN];
	size_t chunk;		/* the first chunk with this content */
	size_t off;		/* its object in the store-level arena */
	uint32_t len;		/* object bytes, header included */
	uint32_t raw;
};

struct store {
	size_t chunk, nchunks;
	uint32_t *uid;		/* per chunk: entry index, UINT32_MAX zero */
	struct entry *e;
	size_t n, cap;
	uint32_t *slot;		/* entry index + 1; 0 empty */
	size_t mask;
	uint8_t *arena;		/* objects at the store level */
};

static size_t slot_of(const uint8_t key[KEY_LEN], size_t mask)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)h & mask;
}

static long store_find(const struct store *st, const uint8_t key[KEY_LEN])
{
	if (!st->slot)
		return -1;
	for (size_t i = slot_of(key, st->mask); st->slot[i];
	     i = (i + 1) & st->mask)
		if (!memcmp(st->e[st->slot[i] - 1].key, key, KEY_LEN))
			return st->slot[i] - 1;
	return -1;
}

static uint32_t store_add(struct store *st, const uint8_t key[KEY_LEN],
			  size_t chunk)
{
	size_t i;

	if (st->n == st->cap) {
		st->cap = st->cap ? 2 * st->cap : 4096;
		st->e = xrealloc(st->e, st->cap * sizeof(*st->e));
	}
	if (2 * (st->n + 1) > st->mask + 1) {
		st->mask = st->mask ? 2 * st->mask + 1 : 8191;
		free(st->slot);
		st->slot = calloc(st->mask + 1, sizeof(*st->slot));
		if (!st->slot)
			oom();
		for (size_t u = 0; u < st->n; u++) {
			for (i = slot_of(st->e[u].key, st->mask); st->slot[i];
			     i = (i + 1) & st->mask)
				;
			st->slot[i] = u + 1;
		}
	}
	for (i = slot_of(key, st->mask); st->slot[i]; i = (i + 1) & st->mask)
		;
	memcpy(st->e[st->n].key, key, KEY_LEN);
	st->e[st->n].chunk = chunk;
	st->slot[i] = ++st->n;
	return st->n - 1;
}

/* Encode one chunk as the store does: header + zstd frame, or header +
 * raw bytes when zstd saves less than 1/64. Returns the object's size. */
static uint32_t encode(ZSTD_CCtx *cc, int level, const uint8_t *src,
		       size_t chunk, uint8_t *obj, size_t cap, uint32_t *raw)
{
	size_t n = ZSTD_compressCCtx(cc, obj + HDR, cap - HDR, src, chunk,
				     level);

	if (ZSTD_isError(n))
		fail(ZSTD_getErrorName(n), chunk);
	*raw = n >= chunk - chunk / 64;
	if (*raw) {
		memcpy(obj + HDR, src, chunk);
		n = chunk;
	}
	return (uint32_t)(HDR + n);
}

/* One encoded chunk in a level's arena. */
struct obj {
	size_t off;
	uint32_t len, raw;
};

/* ---- results --------------------------------------------------------- */

struct lat {
	double med, p99;
};

struct result {
	size_t chunk;
	size_t nchunks, nonzero, uniq;
	double hash_s;
	uint64_t stored[NLEVELS], disk[NLEVELS];
	size_t raw[NLEVELS];
	double comp_s[NLEVELS], decomp_s[NLEVELS];
	double verify_s;
	struct lat rd4k, rd128k;
	/* per pattern, summed over the clones */
	uint64_t dirtied[2], new_chunks[2], new_raw[2], new_stored[2];
	uint64_t new_disk[2];
};

struct opts {
	size_t mib;
	uint64_t seed;
	int level;		/* index into levels[] */
	unsigned samples, threads;
};

/* ---- clones ---------------------------------------------------------- */

struct clone_job {
	const struct image *im;
	const struct store *st;
	uint32_t *const *dirty;	/* [clone] */
	const size_t *ndirty;
	int level;
	unsigned first, step;
	uint64_t chunks[NCLONES], raw[NCLONES], stored[NCLONES];
	uint64_t disk[NCLONES];
};

/* Each dirtied chunk of a clone, rebuilt from the base and its dirty
 * pages, hashed, looked up in the base's store, and encoded if new. */
static void *clone_thread(void *arg)
{
	struct clone_job *j = arg;
	size_t chunk = j->st->chunk, ppc = chunk / PAGE;
	size_t cap = HDR + ZSTD_compressBound(chunk);
	uint8_t *buf = xmalloc(chunk), *obj = xmalloc(cap);
	uint8_t key[KEY_LEN];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	uint32_t len, raw;

	if (!md || !cc)
		oom();
	for (unsigned c = j->first; c < NCLONES; c += j->step) {
		const uint32_t *d = j->dirty[c];
		size_t n = j->ndirty[c];

		for (size_t i = 0; i < n; ) {
			size_t ci = d[i] / ppc;

			memcpy(buf, j->im->mem + ci * chunk, chunk);
			for (; i < n && d[i] / ppc == ci; i++)
				dirty_page(j->im, c, d[i],
					   buf + (d[i] % ppc) * PAGE);
			sha256(md, buf, chunk, key);
			if (store_find(j->st, key) >= 0)
				continue;
			j->chunks[c]++;
			j->raw[c] += chunk;
			len = encode(cc, j->level, buf, chunk, obj, cap, &raw);
			j->stored[c] += len;
			j->disk[c] += (len + PAGE - 1) / PAGE * PAGE;
		}
	}
	ZSTD_freeCCtx(cc);
	EVP_MD_CTX_free(md);
	free(obj);
	free(buf);
	return NULL;
}

static void clones(const struct image *im, const struct store *st,
		   uint32_t *const dirty[2][NCLONES],
		   const size_t ndirty[2][NCLONES], const struct opts *o,
		   struct result *r)
{
	for (int pat = 0; pat < 2; pat++) {
		struct clone_job job = { .im = im, .st = st,
			.dirty = dirty[pat], .ndirty = ndirty[pat],
			.level = levels[o->level], .step = o->threads };
		struct clone_job jobs[NCLONES];
		pthread_t tid[NCLONES];

		for (unsigned t = 0; t < o->threads; t++) {
			jobs[t] = job;
			jobs[t].first = t;
			if (pthread_create(&tid[t], NULL, clone_thread,
					   &jobs[t]))
				oom();
		}
		for (unsigned t = 0; t < o->threads; t++) {
			pthread_join(tid[t], NULL);
			for (unsigned c = t; c < NCLONES; c += o->threads) {
				r->new_chunks[pat] += jobs[t].chunks[c];
				r->new_raw[pat] += jobs[t].raw[c];
				r->new_stored[pat] += jobs[t].stored[c];
				r->new_disk[pat] += jobs[t].disk[c];
				r->dirtied[pat] += ndirty[pat][c] * PAGE;
			}
		}
	}
}

/* ---- reads ----------------------------------------------------------- */

/* Read a cold chunk as the store's chunk_load does, into out: decode its
 * object, check its SHA-256. */
static void load(const struct store *st, uint32_t u, ZSTD_DCtx *dc,
		 EVP_MD_CTX *md, uint8_t *out)
{
	const struct entry *e = &st->e[u];
	const uint8_t *obj = st->arena + e->off;
	uint8_t key[KEY_LEN];

	if (e->raw) {
		memcpy(out, obj + HDR, st->chunk);
	} else {
		size_t n = ZSTD_decompressDCtx(dc, out, st->chunk, obj + HDR,
					       e->len - HDR);

		if (ZSTD_isError(n) || n != st->chunk)
			fail("a chunk did not decompress", st->chunk);
	}
	sha256(md, out, st->chunk, key);
	if (memcmp(key, e->key, KEY_LEN))
		fail("a chunk does not match its key", st->chunk);
}

/* What the reads copied out goes here, so that no copy is optimised away. */
static volatile uint8_t read_sink;

/*
 * Serve o->samples reads of len bytes at random len-aligned offsets that
 * touch at least one non-zero chunk: every chunk under the read is loaded
 * cold (a zero chunk is a memset), and the bytes copied out.
 */
static struct lat reads(const struct store *st, size_t len,
			const struct opts *o, uint64_t *rs)
{
	size_t nreads = st->nchunks * st->chunk / len;
	uint8_t *buf = xmalloc(st->chunk), *out = xmalloc(len);
	double *t = xmalloc(o->samples * sizeof(*t));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	struct lat l;

	if (!md || !dc)
		oom();
	for (unsigned i = 0; i < o->samples; i++) {
		size_t off, ci, last;
		double t0;

		do {
			off = rnd(rs) % nreads * len;
			ci = off / st->chunk;
			last = (off + len - 1) / st->chunk;
			while (ci <= last && st->uid[ci] == UINT32_MAX)
				ci++;
		} while (ci > last);
		ci = off / st->chunk;
		t0 = now();
		for (size_t pos = off; pos < off + len; ci++) {
			size_t in = pos % st->chunk, n = st->chunk - in;

			if (n > off + len - pos)
				n = off + len - pos;
			if (st->uid[ci] == UINT32_MAX) {
				memset(out + (pos - off), 0, n);
			} else {
				load(st, st->uid[ci], dc, md, buf);
				memcpy(out + (pos - off), buf + in, n);
			}
			pos += n;
		}
		t[i] = now() - t0;
		read_sink ^= out[i % len];
	}
	qsort(t, o->samples, sizeof(*t), cmp_double);
	l.med = t[o->samples / 2] * 1e6;
	l.p99 = t[(o->samples * 99 + 99) / 100 - 1] * 1e6;
	ZSTD_freeDCtx(dc);
	EVP_MD_CTX_free(md);
	free(t);
	free(out);
	free(buf);
	return l;
}

/* ---- one chunk size -------------------------------------------------- */

static void study(const struct image *im, size_t chunk,
		 uint32_t *const dirty[2][NCLONES],
		 const size_t ndirty[2][NCLONES], const struct opts *o,
		 uint64_t *rs, struct result *r)
{
	struct store st = { .chunk = chunk };
	size_t cap = HDR + ZSTD_compressBound(chunk);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	uint8_t *arena[NLEVELS], *buf = xmalloc(chunk), *obj = xmalloc(cap);
	size_t off[NLEVELS] = { 0 };
	struct obj *ob;
	uint8_t key[KEY_LEN];
	double t0;

	if (!md || !cc || !dc)
		oom();
	memset(r, 0, sizeof(*r));
	r->chunk = chunk;
	st.nchunks = r->nchunks = im->pages * PAGE / chunk;
	st.uid = xmalloc(st.nchunks * sizeof(*st.uid));

	/* Put, first half: zero check, hash, dedup. */
	for (size_t i = 0; i < st.nchunks; i++) {
		const uint8_t *p = im->mem + i * chunk;
		long u;

		st.uid[i] = UINT32_MAX;
		if (is_zero(p, chunk))
			continue;
		r->nonzero++;
		t0 = now();
		sha256(md, p, chunk, key);
		r->hash_s += now() - t0;
		u = store_find(&st, key);
		st.uid[i] = u >= 0 ? (uint32_t)u : store_add(&st, key, i);
	}
	r->uniq = st.n;

	/*
	 * Put, second half: encode every unique chunk at each level, then
	 * decode every object. The levels take turns chunk by chunk, in an
	 * order that rotates, so that a slow spell of a shared host, or a
	 * source chunk still in the cache, favours none of them. Objects go
	 * to a warm buffer as in the store, then to one arena per level
	 * (first-touch faults not timed); the store level's arena is kept.
	 */
	for (size_t l = 0; l < NLEVELS; l++)
		arena[l] = big_alloc(st.n * cap);
	ob = xmalloc(st.n * NLEVELS * sizeof(*ob));
	for (size_t u = 0; u < st.n; u++) {
		const uint8_t *src = im->mem + st.e[u].chunk * chunk;

		for (size_t j = 0; j < NLEVELS; j++) {
			size_t l = (u + j) % NLEVELS;
			struct obj *b = &ob[u * NLEVELS + l];

			t0 = now();
			b->len = encode(cc, levels[l], src, chunk, obj, cap,
					&b->raw);
			r->comp_s[l] += now() - t0;
			memcpy(arena[l] + off[l], obj, b->len);
			b->off = off[l];
			off[l] += b->len;
			r->stored[l] += b->len;
			r->disk[l] += (b->len + PAGE - 1) / PAGE * PAGE;
			r->raw[l] += b->raw;
		}
	}
	for (size_t u = 0; u < st.n; u++) {
		const uint8_t *src = im->mem + st.e[u].chunk * chunk;

		for (size_t j = 0; j < NLEVELS; j++) {
			size_t l = (u + j) % NLEVELS, n = chunk;
			const struct obj *b = &ob[u * NLEVELS + l];
			const uint8_t *a = arena[l] + b->off + HDR;

			t0 = now();
			if (b->raw)
				memcpy(buf, a, chunk);
			else
				n = ZSTD_decompressDCtx(dc, buf, chunk, a,
							b->len - HDR);
			r->decomp_s[l] += now() - t0;
			if (ZSTD_isError(n) || n != chunk ||
			    memcmp(buf, src, chunk))
				fail("a chunk did not come back", chunk);
			if ((int)l == o->level) {
				t0 = now();
				sha256(md, buf, chunk, key);
				r->verify_s += now() - t0;
				if (memcmp(key, st.e[u].key, KEY_LEN))
					fail("a chunk does not match its key",
					     chunk);
			}
		}
	}
	for (size_t u = 0; u < st.n; u++) {
		const struct obj *b = &ob[u * NLEVELS + o->level];

		st.e[u].off = b->off;
		st.e[u].len = b->len;
		st.e[u].raw = b->raw;
	}
	st.arena = arena[o->level];
	for (size_t l = 0; l < NLEVELS; l++)
		if ((int)l != o->level)
			big_free(arena[l], st.n * cap);
	free(ob);

	clones(im, &st, dirty, ndirty, o, r);
	r->rd4k = reads(&st, PAGE, o, rs);
	r->rd128k = reads(&st, BIG_READ, o, rs);

	big_free(st.arena, st.n * cap);
	free(st.slot);
	free(st.e);
	free(st.uid);
	free(obj);
	free(buf);
	ZSTD_freeDCtx(dc);
	ZSTD_freeCCtx(cc);
	EVP_MD_CTX_free(md);
}

/* ---- the sizes side by side ----------------------------------------- */

struct sbs {
	double save_s, restore_s;
	uint64_t image;		/* image bytes put and got */
};

/*
 * Put and get the same regions of the image in every chunk size, the
 * sizes taking turns region by region (1 MiB each, 512 of them at random,
 * the order rotating), so that a slow spell of a shared host hits them
 * alike. Put: every chunk checked for zeros, the non-zero ones hashed and
 * encoded at the store level. Get: every non-zero chunk decoded into the
 * region's place and verified; zero chunks cost nothing. No dedup (next
 * to none at these sizes), objects still in the CPU's caches.
 */
static void side_by_side(const struct image *im, const struct opts *o,
			 uint64_t *rs, struct sbs out[NSIZES])
{
	const size_t region = chunk_sizes[NSIZES - 1];
	size_t nreg = im->pages * PAGE / region;
	size_t samples = nreg < 512 ? nreg : 512;
	uint8_t *obj[NSIZES], (*key[NSIZES])[KEY_LEN];
	uint32_t *len[NSIZES], *raw[NSIZES];
	uint8_t *dst = xmalloc(region), sum[KEY_LEN];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_DCtx *dc = ZSTD_createDCtx();

	if (!md || !cc || !dc)
		oom();
	for (size_t s = 0; s < NSIZES; s++) {
		size_t n = region / chunk_sizes[s];

		obj[s] = xmalloc(n * (HDR + ZSTD_compressBound(chunk_sizes[s])));
		key[s] = xmalloc(n * KEY_LEN);
		len[s] = xmalloc(n * sizeof(*len[s]));
		raw[s] = xmalloc(n * sizeof(*raw[s]));
		memset(&out[s], 0, sizeof(out[s]));
	}
	for (size_t i = 0; i < samples; i++) {
		const uint8_t *reg = im->mem + rnd(rs) % nreg * region;

		for (size_t j = 0; j < 2 * NSIZES; j++) {
			size_t s = (i + j) % NSIZES, chunk = chunk_sizes[s];
			size_t cap = HDR + ZSTD_compressBound(chunk);
			double t0 = now();

			for (size_t k = 0; k < region / chunk; k++) {
				const uint8_t *p = reg + k * chunk;
				uint8_t *b = obj[s] + k * cap;

				if (j < NSIZES) {
					len[s][k] = 0;
					if (is_zero(p, chunk))
						continue;
					sha256(md, p, chunk, key[s][k]);
					len[s][k] = encode(cc, levels[o->level],
							   p, chunk, b, cap,
							   &raw[s][k]);
				} else if (len[s][k]) {
					size_t n = chunk;

					if (raw[s][k])
						memcpy(dst + k * chunk, b + HDR,
						       chunk);
					else
						n = ZSTD_decompressDCtx(dc,
							dst + k * chunk, chunk,
							b + HDR, len[s][k] - HDR);
					if (ZSTD_isError(n) || n != chunk)
						fail("a chunk did not decompress",
						     chunk);
					sha256(md, dst + k * chunk, chunk, sum);
					if (memcmp(sum, key[s][k], KEY_LEN))
						fail("a chunk does not match its "
						     "key", chunk);
				}
			}
			if (j < NSIZES)
				out[s].save_s += now() - t0;
			else
				out[s].restore_s += now() - t0;
		}
		for (size_t s = 0; s < NSIZES; s++)
			out[s].image += region;
	}
	for (size_t s = 0; s < NSIZES; s++) {
		free(raw[s]);
		free(len[s]);
		free(key[s]);
		free(obj[s]);
	}
	ZSTD_freeDCtx(dc);
	ZSTD_freeCCtx(cc);
	EVP_MD_CTX_free(md);
	free(dst);
}

/* ---- tables ---------------------------------------------------------- */

static void print_image(const struct image *im, const struct opts *o)
{
	size_t count[NSRC] = { 0 }, zero = 0;

	for (size_t p = 0; p < im->pages; p++) {
		count[im->src[p]]++;
		zero += is_zero(im->mem + p * PAGE, PAGE);
	}
	printf("image: %zu MiB, %zu pages, seed %llu; zstd %s, %s\n",
	       o->mib, im->pages, (unsigned long long)o->seed,
	       ZSTD_versionString(), OpenSSL_version(OPENSSL_VERSION));
	printf("  %-7s %6s %9s %8s\n", "source", "pages", "runs", "pages/run");
	for (int s = 0; s < NSRC; s++)
		printf("  %-7s %5.1f%% %9llu %8.1f\n", src_names[s],
		       100.0 * count[s] / im->pages,
		       (unsigned long long)im->runs[s],
		       im->runs[s] ? (double)count[s] / im->runs[s] : 0.0);
	printf("  all-zero pages by content: %.1f%% (zero runs, and zero "
	       "pages of files)\n", 100.0 * zero / im->pages);
	printf("  file runs placed twice: %llu of %llu\n",
	       (unsigned long long)im->repeats,
	       (unsigned long long)(im->runs[SRC_ELF] + im->runs[SRC_TEXT]));
	for (int s = SRC_ELF; s <= SRC_TEXT; s++)
		printf("  %s corpus: %zu files, %.0f MiB, %zu runs, %zu used, "
		       "wrapped %zu times\n", src_names[s], im->corp[s].files,
		       mib(im->corp[s].pages * (uint64_t)PAGE),
		       im->corp[s].nseg, im->corp[s].wraps ? im->corp[s].nseg :
		       im->corp[s].next, im->corp[s].wraps);
}

static void print_tables(const struct result *res, const struct sbs *sbs,
			 const struct image *im, const struct opts *o)
{
	uint64_t image = (uint64_t)im->pages * PAGE;
	int L = o->level;

	printf("\nchunks (stored: zstd %d; objects have a %u-byte header; "
	       "disk: objects rounded up to 4 KiB)\n", levels[L], HDR);
	printf("%6s %8s %8s %8s %6s %9s %9s %9s %6s %6s %9s %5s\n", "chunk",
	       "chunks", "nonzero", "unique", "dedup", "nz MiB", "uniq MiB",
	       "stored", "comp", "image/", "disk MiB", "raw%");
	for (size_t i = 0; i < NSIZES; i++) {
		const struct result *r = &res[i];
		uint64_t nz = (uint64_t)r->nonzero * r->chunk,
			 un = (uint64_t)r->uniq * r->chunk;

		printf("%4zuK %8zu %8zu %8zu %6.3f %9.1f %9.1f %9.1f %6.2f "
		       "%6.2f %9.1f %5.1f\n", r->chunk >> 10, r->nchunks,
		       r->nonzero, r->uniq, (double)nz / un, mib(nz), mib(un),
		       mib(r->stored[L]), (double)un / r->stored[L],
		       (double)image / r->stored[L], mib(r->disk[L]),
		       100.0 * r->raw[L] / r->uniq);
	}

	printf("\nzstd levels (ratio: unique bytes / stored; MB/s of unique "
	       "chunk bytes, one thread)\n");
	printf("%6s %5s %9s %6s %6s %9s %9s %9s\n", "chunk", "level",
	       "stored", "ratio", "image/", "disk MiB", "comp MB/s",
	       "dec MB/s");
	for (size_t i = 0; i < NSIZES; i++) {
		const struct result *r = &res[i];
		uint64_t un = (uint64_t)r->uniq * r->chunk;

		for (size_t l = 0; l < NLEVELS; l++)
			printf("%4zuK %5d %9.1f %6.2f %6.2f %9.1f %9.0f "
			       "%9.0f\n", r->chunk >> 10, levels[l],
			       mib(r->stored[l]), (double)un / r->stored[l],
			       (double)image / r->stored[l], mib(r->disk[l]),
			       un / r->comp_s[l] / 1e6,
			       un / r->decomp_s[l] / 1e6);
	}

	printf("\nclones: %d clones of the image, each dirtying 1%% of its "
	       "pages; new chunks stored at zstd %d\n", NCLONES, levels[L]);
	printf("  WA (write amplification): new chunk bytes per byte dirtied "
	       "(raw: chunk bytes; zstd: object bytes)\n");
	printf("  total: base + %d clone deltas, stored (total/base: 11.00 "
	       "would be 11 full copies) and on disk (4 KiB blocks)\n",
	       NCLONES);
	printf("%6s %-9s %9s %8s %8s %7s %7s %10s %9s %10s %9s\n", "chunk",
	       "dirty", "chunks/cl", "raw/cl", "zstd/cl", "WA raw", "WA zstd",
	       "delta/base", "total MiB", "total/base", "disk MiB");
	for (size_t i = 0; i < NSIZES; i++) {
		const struct result *r = &res[i];

		for (int pat = 0; pat < 2; pat++)
			printf("%4zuK %-9s %9.1f %8.1f %8.1f %7.2f %7.2f "
			       "%9.2f%% %9.1f %10.3f %9.1f\n", r->chunk >> 10,
			       pat ? "runs of16" : "scattered",
			       (double)r->new_chunks[pat] / NCLONES,
			       mib(r->new_raw[pat]) / NCLONES,
			       mib(r->new_stored[pat]) / NCLONES,
			       (double)r->new_raw[pat] / r->dirtied[pat],
			       (double)r->new_stored[pat] / r->dirtied[pat],
			       100.0 * r->new_stored[pat] / NCLONES /
			       r->stored[L],
			       mib(r->stored[L] + r->new_stored[pat]),
			       (double)(r->stored[L] + r->new_stored[pat]) /
			       r->stored[L],
			       mib(r->disk[L] + r->new_disk[pat]));
	}
	printf("  per clone (/cl): chunks, MiB of chunk bytes (raw) and of "
	       "objects (zstd)\n");

	printf("\nreads (one thread, %u samples each; a read loads every "
	       "chunk under it cold: decode from RAM, SHA-256 verify, copy "
	       "out; us)\n", o->samples);
	printf("%6s %9s %9s %10s %10s %9s\n", "chunk", "4K med", "4K p99",
	       "128K med", "128K p99", "get GB/s");
	for (size_t i = 0; i < NSIZES; i++) {
		const struct result *r = &res[i];
		uint64_t un = (uint64_t)r->uniq * r->chunk;

		printf("%4zuK %9.0f %9.0f %10.0f %10.0f %9.2f\n",
		       r->chunk >> 10, r->rd4k.med, r->rd4k.p99, r->rd128k.med,
		       r->rd128k.p99, un / (r->decomp_s[L] + r->verify_s) / 1e9);
	}
	printf("  get: GB/s of chunk bytes decoded and verified, every "
	       "unique chunk once (zstd %d)\n", levels[L]);

	printf("\nputs (one thread; GB/s of non-zero chunk bytes: every one "
	       "hashed, the unique ones encoded at the level)\n");
	printf("%6s %9s %8s %8s %8s %8s\n", "chunk", "hash GB/s", "put -1",
	       "put 1", "put 3", "put 6");
	for (size_t i = 0; i < NSIZES; i++) {
		const struct result *r = &res[i];
		uint64_t nz = (uint64_t)r->nonzero * r->chunk;

		printf("%4zuK %9.2f", r->chunk >> 10, nz / r->hash_s / 1e9);
		for (size_t l = 0; l < NLEVELS; l++)
			printf(" %8.2f", nz / (r->hash_s + r->comp_s[l]) / 1e9);
		printf("\n");
	}

	printf("\nwhole-image put and get, chunk sizes side by side (one "
	       "thread, zstd %d; %.0f MiB of 1 MiB regions at random, each "
	       "in every size in turn)\n", levels[L], mib(sbs[0].image));
	printf("%6s %14s %8s %14s %8s\n", "chunk", "put image MB/s",
	       "vs 256K", "get image MB/s", "vs 256K");
	for (size_t i = 0; i < NSIZES; i++)
		printf("%4zuK %14.0f %8.2f %14.0f %8.2f\n",
		       chunk_sizes[i] >> 10, sbs[i].image / sbs[i].save_s / 1e6,
		       sbs[2].save_s / sbs[i].save_s,
		       sbs[i].image / sbs[i].restore_s / 1e6,
		       sbs[2].restore_s / sbs[i].restore_s);
	printf("  MB/s of image bytes: zero checks, hashes and encodes (put); "
	       "decodes and verifies, zero chunks free (get)\n");

	printf("\nper-chunk overheads (files: one per unique chunk; map: "
	       "%d-byte key per chunk)\n", KEY_LEN);
	printf("%6s %10s %12s %12s %14s %12s\n", "chunk", "files here",
	       "files/1GiB", "files/16GiB", "map 16GiB KiB", "4K read amp");
	for (size_t i = 0; i < NSIZES; i++) {
		const struct result *r = &res[i];

		printf("%4zuK %10zu %12llu %12llu %14llu %12zu\n",
		       r->chunk >> 10, r->uniq,
		       (unsigned long long)((1ull << 30) / r->chunk),
		       (unsigned long long)((16ull << 30) / r->chunk),
		       (unsigned long long)((16ull << 30) / r->chunk *
					    KEY_LEN >> 10),
		       r->chunk / PAGE);
	}
}

/* ---- main ------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: chunkstudy [-m MIB] [-s SEED] [-l LEVEL] "
		"[-n SAMPLES] [-j THREADS]\n");
	exit(2);
}

static unsigned long long number(const char *s, unsigned long long min,
				 unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = { .mib = 1024, .seed = 1, .level = -1,
			  .samples = 2000, .threads = 2 };
	struct result res[NSIZES];
	struct sbs sbs[NSIZES];
	uint32_t *dirty[2][NCLONES];
	size_t ndirty[2][NCLONES];
	struct image im = { 0 };
	uint64_t rs;
	int level = 1, c;
	double t0 = now();

	while ((c = getopt(argc, argv, "m:s:l:n:j:")) != -1) {
		switch (c) {
		case 'm': o.mib = number(optarg, 16, 1 << 16); break;
		case 's': o.seed = number(optarg, 0, UINT64_MAX); break;
		case 'l': level = (int)strtol(optarg, NULL, 10); break;
		case 'n': o.samples = number(optarg, 10, 1000000); break;
		case 'j': o.threads = number(optarg, 1, NCLONES); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	for (size_t l = 0; l < NLEVELS; l++)
		if (levels[l] == level)
			o.level = (int)l;
	if (o.level < 0) {
		fprintf(stderr, "chunkstudy: -l: one of -1, 1, 3, 6\n");
		return 2;
	}
	sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!sha_md) {
		fprintf(stderr, "chunkstudy: OpenSSL has no SHA256\n");
		return 2;
	}

	rs = o.seed;
	im.pages = o.mib << 20 >> 12;
	im.mem = big_alloc(im.pages * PAGE);
	im.src = xmalloc(im.pages);
	/* Room for the unique file pages the image needs (40% of it, 3/4
	 * ELF; 1/8 of runs repeat), and a margin. */
	im.corp[SRC_ELF].cap = im.pages * 3 / 8 + 4096;
	im.corp[SRC_TEXT].cap = im.pages / 8 + 4096;
	for (int s = SRC_ELF; s <= SRC_TEXT; s++)
		im.corp[s].buf = big_alloc(im.corp[s].cap * PAGE);
	load_corpus(im.corp, &rs);
	if (!im.corp[SRC_ELF].nseg && !im.corp[SRC_TEXT].nseg) {
		fprintf(stderr, "chunkstudy: no files to read in %s, %s, %s "
			"or %s\n", elf_dirs[0], elf_dirs[1], text_dirs[0],
			text_dirs[1]);
		return 2;
	}
	build_image(&im, &rs);
	for (int pat = 0; pat < 2; pat++)
		for (uint32_t k = 0; k < NCLONES; k++)
			dirty[pat][k] = dirty_set(im.pages, pat, k, o.seed,
						  &ndirty[pat][k]);
	print_image(&im, &o);
	fflush(stdout);
	fprintf(stderr, "chunkstudy: image built in %.1f s\n", now() - t0);

	for (size_t i = 0; i < NSIZES; i++) {
		double t1 = now();

		study(&im, chunk_sizes[i], dirty, ndirty, &o, &rs, &res[i]);
		fprintf(stderr, "chunkstudy: %zu KiB chunks in %.1f s\n",
			chunk_sizes[i] >> 10, now() - t1);
	}
	side_by_side(&im, &o, &rs, sbs);
	print_tables(res, sbs, &im, &o);
	fprintf(stderr, "chunkstudy: %.1f s in all\n", now() - t0);

	for (int pat = 0; pat < 2; pat++)
		for (int k = 0; k < NCLONES; k++)
			free(dirty[pat][k]);
	for (int s = SRC_ELF; s <= SRC_TEXT; s++) {
		big_free(im.corp[s].buf, im.corp[s].cap * PAGE);
		free(im.corp[s].seg);
	}
	free(im.src);
	big_free(im.mem, im.pages * PAGE);
	return 0;
}
