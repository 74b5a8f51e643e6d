/* SPDX-License-Identifier: MIT */
#include "tests/lib/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/pack.h"

/* A small deterministic generator (xorshift64*). */
static uint64_t next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

/* Set every field of a FIELDS list in *ptr to the next pseudo-random value. */
#define FILL(kind, name) c->name = (SNAP_CTYPE_##kind)next(x);
#define FILL_INTO(ptr, FIELDS) do {					\
		typeof(ptr) c = (ptr);					\
		FIELDS(FILL)						\
	} while (0)

static void fill_segment(struct snap_segment *seg, uint64_t *x)
{
	FILL_INTO(seg, SNAP_SEGMENT_FIELDS);
}

static void fill_vcpu(struct snap_vcpu *v, uint32_t i, uint64_t *x)
{
	struct snap_regs *regs = &v->regs;
	struct snap_sregs *sregs = &v->sregs;
	struct snap_fpu *fpu = &v->fpu;
	struct snap_events *events = &v->events;
	struct snap_debugregs *dr = &v->debugregs;

	if (snap_vcpu_reserve(v, 4096, 41, 61))
		abort();
	v->id = i;
	FILL_INTO(regs, SNAP_REGS_FIELDS);
	FILL_INTO(sregs, SNAP_SREGS_FIELDS);
#define FILL_SEGMENT(name) fill_segment(&sregs->name, x);
#define FILL_DTABLE(name) FILL_INTO(&sregs->name, SNAP_DTABLE_FIELDS);
	SNAP_SREGS_SEGMENTS(FILL_SEGMENT)
	SNAP_SREGS_DTABLES(FILL_DTABLE)
	for (int k = 0; k < 4; k++)
		sregs->interrupt_bitmap[k] = next(x);
	FILL_INTO(fpu, SNAP_FPU_FIELDS);
	for (size_t k = 0; k < sizeof(fpu->fpr); k++)
		((uint8_t *)fpu->fpr)[k] = (uint8_t)next(x);
	for (size_t k = 0; k < sizeof(fpu->xmm); k++)
		((uint8_t *)fpu->xmm)[k] = (uint8_t)next(x);
	for (uint32_t k = 0; k < v->xsave_size; k++)
		v->xsave[k] = (uint8_t)next(x);
	v->n_xcrs = 1;
	v->xcrs[0].index = 0;
	v->xcrs[0].value = 0x7;
	for (uint32_t k = 0; k < v->n_msrs; k++) {
		v->msrs[k].index = 0xc0000080 + k;
		v->msrs[k].value = next(x);
	}
	for (size_t k = 0; k < sizeof(v->lapic); k++)
		v->lapic[k] = (uint8_t)next(x);
	FILL_INTO(events, SNAP_EVENTS_FIELDS);
	v->mp_state = (uint32_t)(next(x) % (SNAP_MP_STATE_MAX + 1));
	FILL_INTO(dr, SNAP_DEBUGREGS_FIELDS);
	for (int k = 0; k < 4; k++)
		dr->db[k] = next(x);
	for (uint32_t k = 0; k < v->n_cpuid; k++)
		FILL_INTO(&v->cpuid[k], SNAP_CPUID_FIELDS);
	v->tsc_khz = 2445000;
}

struct snap_state *test_state_sample(uint32_t n_vcpus, uint32_t seed)
{
	uint64_t state = 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed << 1 | 1);
	uint64_t *x = &state;
	struct snap_uart8250 uart = { 0 };
	struct snap_state *s = snap_state_new(n_vcpus);
	uint8_t *payload;
	size_t len;

	if (!s)
		abort();
	for (uint32_t i = 0; i < n_vcpus; i++)
		fill_vcpu(&s->vcpus[i], i, x);
	s->has_pic = s->has_ioapic = s->has_pit = s->has_clock = true;
	FILL_INTO(&s->pic_master, SNAP_PIC_FIELDS);
	FILL_INTO(&s->pic_slave, SNAP_PIC_FIELDS);
	FILL_INTO(&s->ioapic, SNAP_IOAPIC_FIELDS);
	for (uint32_t k = 0; k < SNAP_IOAPIC_PINS; k++)
		s->ioapic.redirtbl[k] = next(x);
	for (uint32_t k = 0; k < SNAP_PIT_CHANNELS; k++)
		FILL_INTO(&s->pit.channels[k], SNAP_PIT_CHANNEL_FIELDS);
	FILL_INTO(&s->pit, SNAP_PIT_FIELDS);
	FILL_INTO(&s->clock, SNAP_CLOCK_FIELDS);
	FILL_INTO(&uart, SNAP_UART_FIELDS);
	uart.rx_len = 5;
	memcpy(uart.rx_fifo, "hello", 5);
	uart.thr_irq_pending = true;
	if (snap_uart8250_encode(&uart, &payload, &len) ||
	    snap_state_add_device(s, "uart8250@0x3f8", payload, len))
		abort();
	free(payload);
	return s;
}

void test_manifest_sample(struct snap_manifest *m, uint32_t n_vcpus,
			  uint64_t mem_size, uint32_t seed)
{
	const uint64_t low = 3ull << 30;	/* below the 32-bit hole */

	if (snap_manifest_init(m, "snapfs-test", "1.0"))
		abort();
	memset(m->id, (int)seed, sizeof(m->id));
	m->vcpu_count = n_vcpus;
	m->memory_size = mem_size;
	if (mem_size > low) {
		m->regions[0] = (struct snap_region){ 0, low, 0 };
		m->regions[1] = (struct snap_region){ 1ull << 32,
						      mem_size - low, low };
		m->n_regions = 2;
	} else {
		m->regions[0] = (struct snap_region){ 0, mem_size, 0 };
		m->n_regions = 1;
	}
	/* Filled in by the writer; valid placeholders for encode tests. */
	m->state_size = 1;
	snap_manifest_set_text(&m->cmdline, "console=ttyS0 touch=64");
	snap_manifest_add_feature(&m->compatible_features, &m->n_compatible,
				  "sample-feature");
}

int test_write_snapshot(const struct snap_io *io, const char *dir,
			uint32_t n_vcpus, uint64_t mem_size, uint32_t seed,
			unsigned flags, struct snap_err *err)
{
	struct snap_writer *w = NULL;
	struct snap_state *s;
	struct snap_manifest m;
	uint8_t page[4096];
	int fd, ret;

	s = test_state_sample(n_vcpus, seed);
	test_manifest_sample(&m, n_vcpus, mem_size, seed);
	ret = snap_writer_begin(io, dir, &w, err);
	if (ret)
		goto out;
	ret = snap_writer_memory(w, mem_size, &fd, err);
	if (ret)
		goto out;
	/* A pattern on every 16th page; the rest stays a hole. */
	for (uint64_t off = 0; off < mem_size; off += 16 * sizeof(page)) {
		memset(page, (int)(seed + off / sizeof(page)), sizeof(page));
		ret = snap_io_write_all(io, fd, page, sizeof(page), off);
		if (ret) {
			snap_err_set(err, ret, "memory.bin: write: %s",
				     strerror(-ret));
			goto out;
		}
	}
	ret = snap_writer_commit(w, &m, s, flags, err);
out:
	snap_writer_free(w);
	snap_manifest_release(&m);
	snap_state_free(s);
	return ret;
}

char *test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (asprintf(&path, "%s/snaptest.XXXXXX", base ? base : "/tmp") < 0 ||
	    !mkdtemp(path))
		abort();
	return path;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	remove(path);
	return 0;
}

void test_rmtree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int test_count_entries(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

uint8_t *test_read_file(const char *path, size_t *len)
{
	uint8_t *buf;

	if (snap_read_file(path, path, 1u << 30, &buf, len, NULL))
		abort();
	return buf;
}

void test_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd))
		abort();
}

/* ---- a store's chunks ---------------------------------------------------- */

/* The store's chunks as a new process sees them (flags: the backend's). */
static void chunks_open(const char *store, unsigned flags,
			struct snap_backend *b)
{
	char path[4096];
	struct snap_err err;
	struct stat st;

	snprintf(path, sizeof(path), "%s/chunks/packs", store);
	if (stat(path, &st) == 0)
		flags |= SNAP_BACKEND_PACKS;
	snprintf(path, sizeof(path), "%s/chunks", store);
	if (snap_backend_dir(path, flags, b, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		abort();
	}
}

static int count_one(void *arg, const uint8_t *key, uint64_t size)
{
	(void)key;
	(void)size;
	++*(uint64_t *)arg;
	return 0;
}

uint64_t test_chunk_count(const char *store)
{
	struct snap_backend b;
	uint64_t n = 0;

	chunks_open(store, SNAP_BACKEND_RDONLY, &b);
	if (b.ops->each(b.ctx, count_one, &n))
		abort();
	b.ops->free(b.ctx);
	return n;
}

bool test_chunk_has(const char *store, const uint8_t key[SNAP_KEY_LEN])
{
	return test_chunk_len(store, key) > 0;
}

size_t test_chunk_len(const char *store, const uint8_t key[SNAP_KEY_LEN])
{
	struct snap_backend b;
	uint64_t size = 0;

	chunks_open(store, SNAP_BACKEND_RDONLY, &b);
	if (b.ops->size(b.ctx, key, &size))
		size = 0;
	b.ops->free(b.ctx);
	return (size_t)size;
}

/* XOR byte at of the file at path with x, in place. */
static void xor_at(const char *path, uint64_t at, uint8_t x)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	if (fd < 0 || pread(fd, &c, 1, (off_t)at) != 1)
		abort();
	c ^= x;
	if (pwrite(fd, &c, 1, (off_t)at) != 1 || close(fd))
		abort();
}

/* XOR byte at of each record of key in the pack at path; how many. */
static int xor_in_pack(const char *path, const uint8_t *key, size_t at,
		       uint8_t x)
{
	size_t len, hits = 0;
	uint8_t *buf = test_read_file(path, &len);

	for (size_t i = PACK_HDR; i + PACK_REC_HDR <= len; i++) {
		uint32_t n;

		if (memcmp(buf + i, PACK_REC_MAGIC, 4) ||
		    memcmp(buf + i + 12, key, SNAP_KEY_LEN))
			continue;
		memcpy(&n, buf + i + 4, 4);
		if (at < n && i + PACK_REC_HDR + n <= len) {
			xor_at(path, i + PACK_REC_HDR + at, x);
			hits++;
		}
	}
	free(buf);
	return (int)hits;
}

void test_chunk_xor(const char *store, const uint8_t key[SNAP_KEY_LEN],
		    size_t at, uint8_t x)
{
	char path[4096 + 300], hex[2 * SNAP_KEY_LEN + 1];
	struct dirent *e;
	int hits = 0;
	DIR *d;

	snap_hex(key, SNAP_KEY_LEN, hex);
	snprintf(path, sizeof(path), "%s/chunks/%.2s/%s", store, hex, hex);
	if (access(path, F_OK) == 0) {
		xor_at(path, at, x);
		hits++;
	}
	snprintf(path, sizeof(path), "%s/chunks/packs", store);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n < 5 || strcmp(e->d_name + n - 5, ".pack"))
			continue;
		snprintf(path, sizeof(path), "%s/chunks/packs/%s", store,
			 e->d_name);
		hits += xor_in_pack(path, key, at, x);
	}
	if (d)
		closedir(d);
	if (!hits)
		abort();
}

void test_chunk_replace(const char *store, const uint8_t key[SNAP_KEY_LEN],
			const void *buf, size_t len)
{
	struct snap_backend b;
	int ret;

	chunks_open(store, 0, &b);
	ret = b.ops->del(b.ctx, key);
	if (ret && ret != -ENOENT)
		abort();
	if (buf && b.ops->put(b.ctx, key, buf, len))
		abort();
	if (b.ops->sync(b.ctx))
		abort();
	b.ops->free(b.ctx);
}
