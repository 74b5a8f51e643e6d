/* SPDX-License-Identifier: MIT */
/*
 * fuzz-mkseeds: write the seed corpora of tests/fuzz (make fuzz-seeds).
 *
 *   fuzz-mkseeds DIR
 *
 * DIR/<target>/<name> for every target: valid inputs made with the
 * library's own encoders (fixed ids and times, so that a rerun writes the
 * same bytes, but for store ids), and small files of the fixtures in
 * tests/compat. Each stays small: the corpora are committed.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snapshot/store/frame.h"
#include "snapshot/format/manifest.h"
#include "snapshot/format/state.h"
#include "snapshot/format/state_virtio.h"
#include "snapshot/store/store_int.h"
#include "tests/lib/testutil.h"

#define CREATED_NS	1796083200000000000ull	/* 2026-12-01 */
#define V1_SAMPLE	"tests/compat/2026-11-v1-sample"
#define STORE_V1	"tests/compat/2026-12-store-v1"
#define STORE_V2	"tests/compat/2026-12-store-v2-patches"

static const char *out_dir;

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "fuzz-mkseeds: %s: %s\n", what, msg);
	exit(1);
}

/* a/b into out (PATH_MAX bytes). */
static void join(char *out, const char *a, const char *b)
{
	if (snprintf(out, PATH_MAX, "%s/%s", a, b) >= PATH_MAX)
		die(a, "path too long");
}

static void put(const char *target, const char *name, const void *buf,
		size_t len)
{
	char path[PATH_MAX];

	char dir[PATH_MAX];

	join(dir, out_dir, target);
	if (mkdir(dir, 0755) && errno != EEXIST)
		die(dir, strerror(errno));
	join(path, dir, name);
	test_write_file(path, buf, len);
}

/* A file of the source tree, as a seed. */
static void copy(const char *target, const char *name, const char *dir,
		 const char *file)
{
	char path[PATH_MAX];
	uint8_t *buf;
	size_t len;

	join(path, dir, file);
	buf = test_read_file(path, &len);
	put(target, name, buf, len);
	free(buf);
}

/* ---- snapshots ------------------------------------------------------------ */

static void check(int ret, const char *what, const struct snap_err *err)
{
	if (ret)
		die(what, err && err->msg[0] ? err->msg : strerror(-ret));
}

static void manifest_small(struct snap_manifest *m, uint64_t mem)
{
	test_manifest_sample(m, 1, mem, 7);
	m->created_unix_ns = CREATED_NS;
}

/* Everything a manifest can say: regions, parent, features, disks. */
static void manifest_full(struct snap_manifest *m)
{
	test_manifest_sample(m, 2, 3 * SNAP_PAGE_SIZE, 9);
	m->created_unix_ns = CREATED_NS;
	m->regions[0] = (struct snap_region){ 0, SNAP_PAGE_SIZE, 0 };
	m->regions[1] = (struct snap_region){ 1ull << 32, 2 * SNAP_PAGE_SIZE,
					      SNAP_PAGE_SIZE };
	m->n_regions = 2;
	m->has_parent = true;
	memset(m->parent_id, 0xab, SNAP_ID_LEN);
	snap_manifest_set_text(&m->parent_hint, "/mnt/snaps/base");
	m->has_memory_sha256 = true;
	memset(m->memory_sha256, 0x11, SNAP_DIGEST_LEN);
	snap_manifest_add_feature(&m->required_features, &m->n_required,
				  SNAP_FEATURE_PCI);
	snap_manifest_add_feature(&m->required_features, &m->n_required,
				  SNAP_FEATURE_VIRTIO_BLK);
	snprintf(m->disks[0].file, sizeof(m->disks[0].file), "disk0.img");
	m->disks[0].size = 4096;
	snprintf(m->disks[1].file, sizeof(m->disks[1].file), "disk1.img");
	m->disks[1].size = 1024;
	m->disks[1].read_only = true;
	m->n_disks = 2;
}

static void put_manifest(const char *target, const char *name,
			 const struct snap_manifest *m)
{
	struct snap_err err;
	uint8_t *buf;
	size_t len;

	check(snap_manifest_encode(m, &buf, &len, &err), name, &err);
	put(target, name, buf, len);
	free(buf);
}

static void manifest_seeds(void)
{
	struct snap_manifest m;

	copy("manifest", "compat-v1-sample", V1_SAMPLE, "manifest.bin");
	manifest_small(&m, 2 * SNAP_PAGE_SIZE);
	put_manifest("manifest", "small", &m);
	snap_manifest_release(&m);
	manifest_full(&m);
	put_manifest("manifest", "full", &m);
	snap_manifest_release(&m);
}

/* The PCI and virtio devices' payloads, as snapvm saves them. */
static void virtio_sample(struct snap_virtio *v, uint32_t seed,
			  uint32_t n_queues, uint32_t vectors)
{
	memset(v, 0, sizeof(*v));
	v->pci.slot = 1 + seed;
	for (uint32_t i = 0; i < SNAP_PCI_CONFIG_SIZE; i++)
		v->pci.config[i] = (uint8_t)(i * 7 + seed);
	v->pci.msix_table_len = vectors * SNAP_MSIX_ENTRY_SIZE;
	v->pci.msix_pba_len = (vectors + 7) / 8;
	v->device_features = 0x130000000ull;
	v->driver_features = 0x100000000ull;
	v->status = 0x0f;
	v->config_vector = 0xffff;
	v->n_queues = n_queues;
	for (uint32_t q = 0; q < n_queues; q++)
		v->queues[q] = (struct snap_virtq){
			.size = 128, .ready = true, .vector = q,
			.desc = 0x100000 + 0x4000 * q,
			.avail = 0x101000 + 0x4000 * q,
			.used = 0x102000 + 0x4000 * q,
			.last_avail = 10 + q, .used_idx = 10 + q,
			.signalled = 9 + q,
		};
}

typedef int (*encoded)(uint8_t **buf, size_t *len);

static int enc_rtc(uint8_t **buf, size_t *len)
{
	struct snap_rtc r = { .offset_ns = -3600000000000ll, .index = 0x0b };

	for (size_t i = 0; i < sizeof(r.cmos); i++)
		r.cmos[i] = (uint8_t)(i * 13);
	return snap_rtc_encode(&r, buf, len);
}

static int enc_pci(uint8_t **buf, size_t *len)
{
	return snap_pci_host_encode(0x80000810u, buf, len);
}

static int enc_blk(uint8_t **buf, size_t *len)
{
	struct snap_virtio_blk b[2];

	for (uint32_t i = 0; i < 2; i++) {
		virtio_sample(&b[i].dev, 2 + i, 1, 2);
		b[i].disk = i;
		b[i].capacity = 8 << i;
		b[i].read_only = i == 1;
	}
	return snap_virtio_blk_encode(b, 2, buf, len);
}

static int enc_rng(uint8_t **buf, size_t *len)
{
	struct snap_virtio v;

	virtio_sample(&v, 4, 1, 2);
	return snap_virtio_rng_encode(&v, buf, len);
}

static int enc_vsock(uint8_t **buf, size_t *len)
{
	struct snap_virtio_vsock s;

	virtio_sample(&s.dev, 5, 3, 4);
	s.guest_cid = 42;
	return snap_virtio_vsock_encode(&s, buf, len);
}

static const struct {
	const char *name;
	encoded enc;
} devices[] = {
	{ "rtc", enc_rtc },
	{ "pci", enc_pci },
	{ "virtio-blk", enc_blk },
	{ "virtio-rng", enc_rng },
	{ "virtio-vsock", enc_vsock },
};

#define N_DEVICES (sizeof(devices) / sizeof(devices[0]))

/* One vCPU with every field set, its uart8250, and, with all, every other
 * device. */
static struct snap_state *state_sample(bool all)
{
	struct snap_state *s = test_state_sample(1, 3);
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; all && i < N_DEVICES; i++) {
		if (devices[i].enc(&buf, &len) ||
		    snap_state_add_device(s, devices[i].name, buf, len))
			die(devices[i].name, "cannot encode");
		free(buf);
	}
	return s;
}

static void state_seeds(void)
{
	struct snap_state *s = state_sample(true);
	struct snap_err err;
	uint8_t *buf;
	size_t len;

	check(snap_state_encode(s, &buf, &len, &err), "state", &err);
	put("state", "devices", buf, len);
	free(buf);
	for (uint32_t i = 0; i < s->n_devices; i++)
		put("state", s->devices[i].name, s->devices[i].payload,
		    s->devices[i].len);
	snap_state_free(s);
}

/* The container of fuzz_snapdir.c: lengths, manifest, state, memory. */
static void put_snapdir(const char *name, struct snap_manifest *m,
			const struct snap_state *s, const uint8_t *mem,
			size_t mem_len)
{
	uint8_t *st, *man, *buf;
	struct snap_err err;
	size_t sn, mn;

	check(snap_state_encode(s, &st, &sn, &err), name, &err);
	m->state_size = sn;
	snap_sha256(st, sn, m->state_sha256);
	if (m->has_memory_sha256)
		snap_sha256(mem, mem_len, m->memory_sha256);
	check(snap_manifest_encode(m, &man, &mn, &err), name, &err);
	buf = malloc(8 + mn + sn + mem_len);
	if (!buf)
		die(name, "out of memory");
	for (int i = 0; i < 4; i++) {
		buf[i] = (uint8_t)(mn >> (8 * i));
		buf[4 + i] = (uint8_t)(sn >> (8 * i));
	}
	memcpy(buf + 8, man, mn);
	memcpy(buf + 8 + mn, st, sn);
	memcpy(buf + 8 + mn + sn, mem, mem_len);
	put("snapdir", name, buf, 8 + mn + sn + mem_len);
	free(buf);
	free(man);
	free(st);
}

static void snapdir_seeds(void)
{
	uint8_t mem[3 * SNAP_PAGE_SIZE];
	struct snap_manifest m;
	struct snap_state *s;

	for (size_t i = 0; i < sizeof(mem); i++)
		mem[i] = (uint8_t)(i / 64);
	s = state_sample(false);
	manifest_small(&m, 2 * SNAP_PAGE_SIZE);
	m.has_memory_sha256 = true;
	put_snapdir("small", &m, s, mem, 2 * SNAP_PAGE_SIZE);
	snap_manifest_release(&m);
	snap_state_free(s);

	s = state_sample(true);
	snap_state_free(s);
	s = test_state_sample(2, 4);
	manifest_full(&m);
	m.has_parent = false;
	put_snapdir("disks", &m, s, mem, sizeof(mem));
	snap_manifest_release(&m);
	snap_state_free(s);
}

/* ---- the store ------------------------------------------------------------ */

static void frame_seeds(void)
{
	static const char *const v1_files[] = {
		"2f008d1508a392c431170a44412331f6",
		"2f008d1508a392c431170a44412331f6.ref",
		"2f008d1508a392c431170a44412331f6.ws",
	};
	static const char *const names[] = { "image", "ref", "ws" };
	char dir[PATH_MAX];
	uint8_t *buf, *two;
	size_t len;

	char path[PATH_MAX];

	join(dir, STORE_V1, "images");
	for (size_t i = 0; i < 3; i++)
		copy("frame", names[i], dir, v1_files[i]);
	/* Two frames, and a third torn after its header. */
	join(path, dir, v1_files[0]);
	buf = test_read_file(path, &len);
	two = malloc(3 * len);
	if (!two)
		die("frame", "out of memory");
	memcpy(two, buf, len);
	memcpy(two + len, buf, len);
	memcpy(two + 2 * len, buf, FRAME_HDR + 3);
	put("frame", "torn", two, 2 * len + FRAME_HDR + 3);
	free(two);
	free(buf);
	/* An open's record in a store in RADOS: two deltas. */
	{
		const uint8_t ids[2][SNAP_ID_LEN] = { { 1, 2, 3 }, { 4, 5, 6 } };

		if (meta_open_encode(ids, 2, &buf, &len))
			die("frame", "out of memory");
		put("frame", "openrecord", buf, len);
		free(buf);
	}
}

static void journal_seeds(void)
{
	static const char *const deltas[] = {
		"14e627fd3c09ff2c17082b3936c13aae",
		"46880b6041fb010a77e60665e00ec530",
		"4e268920c3058fe4434aeff8a3b6df9d",
		"7567b902f57aaf9873aa63391c42b3eb",
		"776aa4945bd27821e9adcc6b03d08acd",
		"ab296c195676f7c29c6ecf0f884d3d97",
		"be74386acad87023160bde277de76ad9",
		"d695154485f3d7e93b56465d9dae7d68",
	};
	char dir[PATH_MAX];

	join(dir, STORE_V2, "deltas");
	for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++)
		copy("journal", deltas[i], dir, deltas[i]);
	join(dir, STORE_V1, "deltas");
	copy("journal", "v1-d97defc7f2f721c1a8f3faaf8cfb62ec", dir,
	     "d97defc7f2f721c1a8f3faaf8cfb62ec");
}

static void storebin_seeds(void)
{
	char *tmp = test_tmpdir(), path[PATH_MAX];
	struct snap_err err;
	uint8_t *buf;
	size_t len;

	copy("storebin", "v1", STORE_V1, "store.bin");
	copy("storebin", "v2-patches", STORE_V2, "store.bin");
	join(path, STORE_V2, "store.bin");
	buf = test_read_file(path, &len);
	join(path, tmp, "store.bin");
	test_write_file(path, buf, len);
	free(buf);
	{
		struct snap_meta m;

		check(meta_dir_open(tmp, &m, &err), tmp, &err);
		check(meta_store_require(&m, "future-feature", &err), path,
		      &err);
		m.ops->free(m.ctx);
	}
	buf = test_read_file(path, &len);
	put("storebin", "unknown-feature", buf, len);
	free(buf);
	test_rmtree(tmp);
	free(tmp);
}

/* Chunks stored by chunk_store in an in-memory store of chunk size cs. */
static void chunk_seeds_of(uint32_t cs)
{
	char *tmp = test_tmpdir(), dir[PATH_MAX], name[64];
	struct snap_store_opts opts = { .fetch_threads = 1 };
	uint8_t key[SNAP_KEY_LEN], *data, *obj;
	struct chunk_patch p = { .valid = true };
	struct snap_backend b;
	struct snap_store *s;
	struct snap_err err;
	size_t len;
	bool stored;

	join(dir, tmp, "store");
	check(snap_store_init(dir, cs, &err), dir, &err);
	check(snap_backend_mem(&b), "backend", NULL);
	opts.backend = &b;
	check(snap_store_open(dir, &opts, &s, &err), dir, &err);
	data = calloc(1, cs);
	obj = malloc(2 * (size_t)cs + 4096);
	if (!data || !obj)
		die("chunk", "out of memory");

	/* Text: zstd. */
	for (uint32_t i = 0; i < cs; i += 16)
		snprintf((char *)data + i, 16, "line %9u\n", i / 16);
	check(chunk_store(s, data, NULL, key, &stored), "chunk", NULL);
	check(b.ops->get(b.ctx, key, obj, 2 * (size_t)cs + 4096, &len),
	      "chunk", NULL);
	snprintf(name, sizeof(name), "zstd-%uk", cs >> 10);
	put("chunk", name, obj, len);

	/* A page written over zeros: a patch of the zero chunk. */
	if (cs < 2 * STORE_PAGE)
		goto out;
	memset(data, 0, cs);
	memset(data + STORE_PAGE, 0x5a, STORE_PAGE);
	p.pages[0] = 1u << 1;
	check(chunk_store(s, data, &p, key, &stored), "chunk", NULL);
	check(b.ops->get(b.ctx, key, obj, 2 * (size_t)cs + 4096, &len),
	      "chunk", NULL);
	snprintf(name, sizeof(name), "patch-zero-%uk", cs >> 10);
	put("chunk", name, obj, len);
out:
	free(data);
	free(obj);
	snap_store_close(s);
	test_rmtree(tmp);
	free(tmp);
}

/* The fixture's patch key with its base replaced by key itself and a byte
 * of its page changed: read, it is a patch of a patch. */
static void patch_of_patch(const char *chunks, const char *key)
{
	char dir[PATH_MAX], path[PATH_MAX], sub[3] = { key[0], key[1], 0 };
	uint8_t *obj;
	size_t len;

	join(dir, chunks, sub);
	join(path, dir, key);
	obj = test_read_file(path, &len);
	if (len < CHUNK_HDR + SNAP_KEY_LEN || obj[4] != CODEC_PATCH ||
	    obj[5] != CODEC_RAW)
		die(path, "not a patch of raw pages");
	obj[len - 1] ^= 0xff;
	for (size_t i = 0; i < SNAP_KEY_LEN; i++) {
		unsigned v;

		sscanf(key + 2 * i, "%2x", &v);
		obj[CHUNK_HDR + i] = (uint8_t)v;
	}
	put("chunk", "patch-of-patch", obj, len);
	free(obj);
}

static void chunk_seeds(void)
{
	static const struct {
		const char *name, *key;
	} fixture[] = {
		{ "patch-small", "424fa5ba39a94e419074867755aca3896da65d34b4f2701b4adfefac2b55fd11" },
		{ "patch-page", "74b5273ea238bbbfcbb2ca4c5d7ded8b707a13ce485c5ca07c966f7fc283ab93" },
		{ "raw", "3b4176b2f2a271d30d719cdce427a9dbd17ae0aa59443db6bb486e1c04698bbf" },
	};
	char chunks[PATH_MAX], dir[PATH_MAX], sub[3];

	join(chunks, STORE_V2, "chunks");
	for (size_t i = 0; i < sizeof(fixture) / sizeof(fixture[0]); i++) {
		memcpy(sub, fixture[i].key, 2);
		sub[2] = '\0';
		join(dir, chunks, sub);
		copy("chunk", fixture[i].name, dir, fixture[i].key);
	}
	chunk_seeds_of(4u << 10);
	chunk_seeds_of(64u << 10);
	patch_of_patch(chunks, fixture[1].key);
}

static void control_seeds(void)
{
	static const struct {
		const char *name, *text;
	} requests[] = {
		{ "status", "status\n" },
		{ "session", "pause\r\nstatus\nresume\nquit\n" },
		{ "snapshot", "snapshot /mnt/snaps/a\n" },
		{ "snapshot-parent",
		  "snapshot /mnt/snaps/b --parent /mnt/snaps/a\n"
		  "snapshot --parent /mnt/snaps/b  /mnt/snaps/c\n" },
		{ "errors", "\n  \nstatus now\nsnapshot\nsnapshot --parent\n"
			    "snapshot -x /a\nfrobnicate\n" },
	};

	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
		put("control", requests[i].name, requests[i].text,
		    strlen(requests[i].text));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz-mkseeds DIR\n");
		return 2;
	}
	out_dir = argv[1];
	if (mkdir(out_dir, 0755) && errno != EEXIST)
		die(out_dir, strerror(errno));
	manifest_seeds();
	state_seeds();
	snapdir_seeds();
	frame_seeds();
	chunk_seeds();
	journal_seeds();
	storebin_seeds();
	control_seeds();
	return 0;
}
