/* SPDX-License-Identifier: MIT */
/*
 * Snapshots and memory stores written by earlier revisions (tests/compat/)
 * must load in every later build, with the values they were written with.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot/format/digest.h"
#include "snapshot/store/store.h"
#include "snapshot/store/store_int.h"	/* meta_open_decode */
#include "tests/lib/testutil.h"

struct vcpu_expect {
	uint64_t rip, rsp, cr3;
	uint16_t cs_selector;
	uint64_t msr5;
	uint8_t lapic0;
};

static const struct fixture {
	const char *name;
	const char *id;
	uint64_t created_unix_ns;
	uint32_t vcpus;
	uint64_t memory_size;
	uint64_t state_size;
	uint32_t xsave_size, n_msrs, n_cpuid;
	struct vcpu_expect vcpu[2];
	uint8_t pit_mode2;
	uint64_t clock;
	uint64_t ioapic_pin23;
} fixtures[] = {
	{
		.name = "2026-11-v1-sample",
		.id = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a",
		.created_unix_ns = 1795540969065411720ull,
		.vcpus = 2, .memory_size = 65536, .state_size = 20289,
		.xsave_size = 4096, .n_msrs = 41, .n_cpuid = 61,
		.vcpu = {
			{ 0xcfbf27f43460e940, 0x8db6ec216e840276,
			  0xa193b980f0cb6e18, 0x1a83, 0x2a8ac201a95bee70, 155 },
			{ 0x67f8b9b5aacda002, 0x0ce9da3f218149ee,
			  0x9bec20016dd1e8b8, 0xb626, 0x152b666ee7f6bf2f, 16 },
		},
		.pit_mode2 = 60, .clock = 0xf3f66f2a46363c17,
		.ioapic_pin23 = 0x1c2879a91023526a,
	},
};

#define N_FIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static const char *compat_dir(void)
{
	const char *d = getenv("SNAP_COMPAT_DIR");

	return d ? d : "tests/compat";
}

static void check_fixture(const struct fixture *f)
{
	struct snap_err err = { "" };
	struct snap_state *s = NULL;
	struct snap_manifest m;
	const struct snap_device *uart;
	struct snap_uart8250 u;
	char *dir, id[2 * SNAP_ID_LEN + 1];

	if (asprintf(&dir, "%s/%s", compat_dir(), f->name) < 0)
		abort();
	if (snap_read(dir, SNAP_MEMORY_DIGEST, &m, &s, &err))
		fail_msg("%s: %s", dir, err.msg);
	snap_hex(m.id, SNAP_ID_LEN, id);
	assert_string_equal(id, f->id);
	assert_int_equal(m.created_unix_ns, f->created_unix_ns);
	assert_int_equal(m.vcpu_count, f->vcpus);
	assert_int_equal(m.memory_size, f->memory_size);
	assert_int_equal(m.state_size, f->state_size);
	assert_true(m.has_memory_sha256);
	assert_int_equal(s->n_vcpus, f->vcpus);
	for (uint32_t i = 0; i < f->vcpus && i < 2; i++) {
		const struct snap_vcpu *v = &s->vcpus[i];

		assert_int_equal(v->regs.rip, f->vcpu[i].rip);
		assert_int_equal(v->regs.rsp, f->vcpu[i].rsp);
		assert_int_equal(v->sregs.cr3, f->vcpu[i].cr3);
		assert_int_equal(v->sregs.cs.selector, f->vcpu[i].cs_selector);
		assert_int_equal(v->xsave_size, f->xsave_size);
		assert_int_equal(v->n_msrs, f->n_msrs);
		assert_int_equal(v->n_cpuid, f->n_cpuid);
		assert_int_equal(v->msrs[5].value, f->vcpu[i].msr5);
		assert_int_equal(v->lapic[0], f->vcpu[i].lapic0);
	}
	assert_int_equal(s->pit.channels[2].mode, f->pit_mode2);
	assert_int_equal(s->clock.clock, f->clock);
	assert_int_equal(s->ioapic.redirtbl[23], f->ioapic_pin23);
	uart = snap_state_find_device(s, "uart8250@0x3f8");
	assert_non_null(uart);
	assert_int_equal(snap_uart8250_decode(uart->payload, uart->len, &u,
					      &err), 0);
	assert_memory_equal(u.rx_fifo, "hello", 5);
	snap_manifest_release(&m);
	snap_state_free(s);
	free(dir);
}

static void test_fixtures_load(void **unused)
{
	for (size_t i = 0; i < N_FIXTURES; i++)
		check_fixture(&fixtures[i]);
}

/* ---- memory stores --------------------------------------------------------- */

#define STORE_FILES_MAX	8

struct store_file_expect {
	const char *path;		/* SNAPSHOT/FILE, in list order */
	uint64_t size;
	const char *sha256;		/* of the whole content */
	unsigned nlink;			/* names of its image */
	const char *same_image;		/* another name of the image, or NULL */
	unsigned depth;			/* deltas in the chain */
	uint64_t mtime_ns;
	uint64_t atime_ns, ctime_ns;	/* 0: the mtime (before ImageTimes) */
	size_t ws_n;			/* 0: no working set (-ENOENT) */
	uint64_t ws[4];
	uint64_t ws_recorded_ns;
};

static const struct store_fixture {
	const char *name;
	uint32_t chunk_size;
	const char *snapshots[4];	/* in list order, NULL-terminated */
	size_t n_files;
	struct store_file_expect files[STORE_FILES_MAX];
	uint64_t images, chunks;	/* what verify checks */
	/* chunk files stored as patches (codec 2), of which over zeros;
	 * store.bin then requires "chunk-patches" */
	unsigned patches, zero_based;
	/* pack files, of which with an index; store.bin then requires
	 * "chunk-packs" */
	unsigned packs, indexed;
} store_fixtures[] = {
	{
		/*
		 * vm: 2026-11-v1-sample imported; disk: base.img with a
		 * second name, clone.img its clone, both written after the
		 * clone (tests/compat/README.md says how).
		 */
		.name = "2026-12-store-v1",
		.chunk_size = 4096,
		.snapshots = { "disk", "vm", NULL },
		.n_files = 6,
		.files = {
			{
				.path = "disk/base-link.img", .size = 21714,
				.sha256 = "c3e03d0163d013e6d096269729fedeba"
					  "47184385728876f8acf2499897c38c62",
				.nlink = 2, .same_image = "disk/base.img",
				.depth = 2,
				.mtime_ns = 1796256000000000000ull,
				.ws_n = 4, .ws = { 3, 0, 5, 1 },
				.ws_recorded_ns = 1796083200000000000ull,
			},
			{
				.path = "disk/base.img", .size = 21714,
				.sha256 = "c3e03d0163d013e6d096269729fedeba"
					  "47184385728876f8acf2499897c38c62",
				.nlink = 2, .same_image = "disk/base-link.img",
				.depth = 2,
				.mtime_ns = 1796256000000000000ull,
				.ws_n = 4, .ws = { 3, 0, 5, 1 },
				.ws_recorded_ns = 1796083200000000000ull,
			},
			{
				.path = "disk/clone.img", .size = 28672,
				.sha256 = "22d46c40776a0c66d5d495413564cc9d"
					  "3ec4c2efa9928f0cdbc1a22654954b80",
				.nlink = 1, .depth = 2,
				.mtime_ns = 1796169600000000000ull,
				.ws_n = 4, .ws = { 3, 0, 5, 1 },
				.ws_recorded_ns = 1796083200000000000ull,
			},
			{
				.path = "vm/manifest.bin", .size = 219,
				.sha256 = "17579c4a62c5bf9240019540271ce8b0"
					  "3e764b0e8613b0035dd8f70338bf4f6a",
				.nlink = 1, .depth = 1,
				.mtime_ns = 1796565521347156875ull,
			},
			{
				.path = "vm/memory.bin", .size = 65536,
				.sha256 = "9d06f566b56ab4071a348c5b946b530c"
					  "e36e3f2b5ca19d51ef72cbdd8bdcac15",
				.nlink = 1, .depth = 1,
				.mtime_ns = 1796565521344213350ull,
			},
			{
				.path = "vm/state.bin", .size = 20289,
				.sha256 = "af691cb0410638d90f06846830c4e81a"
					  "7375a71dbfcd3f17089c7a892e0e6f64",
				.nlink = 1, .depth = 1,
				.mtime_ns = 1796565521346674582ull,
			},
		},
		.images = 5, .chunks = 15,
	},
	{
		/*
		 * p: chunk patches (tests/compat/README.md says how): page
		 * and sub-page writes over whole chunks, a clone's page over
		 * the same base, a page into a zero chunk, and a copy in two
		 * pieces whose cut chunk was stored with its tail zeroed.
		 */
		.name = "2026-12-store-v2-patches",
		.chunk_size = 16384,
		.snapshots = { "p", NULL },
		.n_files = 5,
		.files = {
			{
				.path = "p/base.img", .size = 131072,
				.sha256 = "5a88238b37cc41586eeb989147676758"
					  "2aa73110e8abb77caf5bfbd8ec2a5b44",
				.nlink = 1, .depth = 2,
				.mtime_ns = 1796601600000000001ull,
			},
			{
				.path = "p/big.img", .size = 1310720,
				.sha256 = "39ef64aa1662bd652eef0f4287041e57"
					  "7a2636eddc979adc60cdcfd42ea7cf9e",
				.nlink = 1, .depth = 2,
				.mtime_ns = 1796601600000000004ull,
			},
			{
				.path = "p/clone.img", .size = 131072,
				.sha256 = "66cb03578c033efc4ee5b35fd2aadf73"
					  "f3ad027597a49092829d14bc47112c42",
				.nlink = 1, .depth = 2,
				.mtime_ns = 1796601600000000002ull,
			},
			{
				.path = "p/copy.img", .size = 1310720,
				.sha256 = "39ef64aa1662bd652eef0f4287041e57"
					  "7a2636eddc979adc60cdcfd42ea7cf9e",
				.nlink = 1, .depth = 2,
				.mtime_ns = 1796601600000000005ull,
			},
			{
				.path = "p/zero.img", .size = 65536,
				.sha256 = "320cf3d4a61337c0b41d173f7e4c7c1e"
					  "cdebeaf1662a7833e511de08bdbb968c",
				.nlink = 1, .depth = 1,
				.mtime_ns = 1796601600000000003ull,
			},
		},
		.images = 5, .chunks = 13,
		.patches = 5, .zero_based = 1,
	},
	{
		/*
		 * k: chunks in pack files (tests/compat/README.md says how):
		 * a.img from a first session, its pack sealed with an index
		 * by the second; b.img its clone with a chunk rewritten and
		 * c.img (random, zero, random) in a pack with no index, its
		 * records found by reading it.
		 */
		.name = "2026-12-store-v3-packs",
		.chunk_size = 16384,
		.snapshots = { "k", NULL },
		.n_files = 3,
		.files = {
			{
				.path = "k/a.img", .size = 65536,
				.sha256 = "9110e8aa0d456675e4e64b1352d65cd9"
					  "8ecca7f7004201053930eb4d8ce2b80e",
				.nlink = 1, .depth = 2,
				.mtime_ns = 1796601600000000001ull,
			},
			{
				.path = "k/b.img", .size = 65536,
				.sha256 = "c43b309d9d91695622665e72de843b1a"
					  "315adc87f4c985d373ad85701c66fff1",
				.nlink = 1, .depth = 2,
				.mtime_ns = 1796601600000000002ull,
			},
			{
				.path = "k/c.img", .size = 49152,
				.sha256 = "9dd1b835449c47a3b27559f3939990bd"
					  "c625d12978ab1b99f814217dd30490d2",
				.nlink = 1, .depth = 1,
				.mtime_ns = 1796601600000000003ull,
			},
		},
		.images = 3, .chunks = 7,
		.packs = 2, .indexed = 1,
	},
	{
		/*
		 * t: a.img, two random chunks, then its atime and mtime
		 * set (snap_image_set_times): a frame with ImageTimes, the
		 * ctime that of the setting (tests/compat/README.md).
		 */
		.name = "2026-12-store-v4-times",
		.chunk_size = 16384,
		.snapshots = { "t", NULL },
		.n_files = 1,
		.files = {
			{
				.path = "t/a.img", .size = 32768,
				.sha256 = "6e39b05d9ce064891792b83c69ac6162"
					  "09b754c628883ce619a946b7b8338e91",
				.nlink = 1, .depth = 1,
				.mtime_ns = 1796601600000000011ull,
				.atime_ns = 1796601600000000010ull,
				.ctime_ns = 1796581886791059712ull,
			},
		},
		.images = 1, .chunks = 2,
		.packs = 1, .indexed = 0,
	},
};

#define N_STORE_FIXTURES (sizeof(store_fixtures) / sizeof(store_fixtures[0]))

/* cp -r src dst, without links: git keeps none. */
static void copy_tree(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *e;

	if (!d)
		fail_msg("%s: %s", src, strerror(errno));
	if (mkdir(dst, 0755))
		fail_msg("%s: %s", dst, strerror(errno));
	while ((e = readdir(d))) {
		char *s, *t;
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (asprintf(&s, "%s/%s", src, e->d_name) < 0 ||
		    asprintf(&t, "%s/%s", dst, e->d_name) < 0)
			abort();
		if (lstat(s, &st))
			fail_msg("%s: %s", s, strerror(errno));
		if (S_ISDIR(st.st_mode)) {
			copy_tree(s, t);
		} else if (S_ISREG(st.st_mode)) {
			size_t len;
			uint8_t *buf = test_read_file(s, &len);

			test_write_file(t, buf, len);
			free(buf);
		} else {
			fail_msg("%s: neither a file nor a directory", s);
		}
		free(s);
		free(t);
	}
	closedir(d);
}

/*
 * Make STORE/snapshots/S/F a hard link of the images/<id>.ref with the
 * same bytes again, as the store wrote it: a name's link count is what
 * makes its image live (docs/store.md), and a checkout has only copies.
 */
static void relink_name(const char *store, const char *name)
{
	char *images, *ref;
	uint8_t *buf, *rbuf;
	size_t len, rlen;
	struct dirent *e;
	bool done = false;
	DIR *d;

	if (asprintf(&images, "%s/images", store) < 0)
		abort();
	buf = test_read_file(name, &len);
	d = opendir(images);
	assert_non_null(d);
	while (!done && (e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n < 4 || strcmp(e->d_name + n - 4, ".ref"))
			continue;
		if (asprintf(&ref, "%s/%s", images, e->d_name) < 0)
			abort();
		rbuf = test_read_file(ref, &rlen);
		if (rlen == len && !memcmp(rbuf, buf, len)) {
			if (unlink(name) || link(ref, name))
				fail_msg("%s: %s", name, strerror(errno));
			done = true;
		}
		free(rbuf);
		free(ref);
	}
	closedir(d);
	if (!done)
		fail_msg("%s: no images/*.ref holds its bytes", name);
	free(buf);
	free(images);
}

static void relink_names(const char *store)
{
	char *snaps, *snap, *name;
	struct dirent *e, *f;
	DIR *d, *sd;

	if (asprintf(&snaps, "%s/snapshots", store) < 0)
		abort();
	d = opendir(snaps);
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (asprintf(&snap, "%s/%s", snaps, e->d_name) < 0)
			abort();
		sd = opendir(snap);
		assert_non_null(sd);
		while ((f = readdir(sd))) {
			if (f->d_name[0] == '.')
				continue;
			if (asprintf(&name, "%s/%s", snap, f->d_name) < 0)
				abort();
			relink_name(store, name);
			free(name);
		}
		closedir(sd);
		free(snap);
	}
	closedir(d);
	free(snaps);
}

struct names {
	struct snap_store *s;
	const char *snapshot;
	char *list[2 * STORE_FILES_MAX];
	size_t n, n_snapshots;
	char *snapshots[4];
};

static int list_file(void *arg, const char *entry)
{
	struct names *nm = arg;

	assert_in_range(nm->n, 0, 2 * STORE_FILES_MAX - 1);
	if (asprintf(&nm->list[nm->n], "%s/%s", nm->snapshot, entry) < 0)
		abort();
	nm->n++;
	return 0;
}

static int list_snapshot(void *arg, const char *entry)
{
	struct names *nm = arg;
	struct snap_err err = { "" };
	int ret;

	assert_in_range(nm->n_snapshots, 0, 3);
	nm->snapshots[nm->n_snapshots] = strdup(entry);
	assert_non_null(nm->snapshots[nm->n_snapshots]);
	nm->n_snapshots++;
	nm->snapshot = entry;
	ret = snap_store_list(nm->s, entry, list_file, nm, &err);
	if (ret)
		fail_msg("list %s: %s", entry, err.msg);
	return 0;
}

static void check_store_names(struct snap_store *s,
			      const struct store_fixture *f)
{
	struct names nm = { .s = s };
	struct snap_err err = { "" };
	size_t i;

	if (snap_store_list(s, NULL, list_snapshot, &nm, &err))
		fail_msg("%s: list: %s", f->name, err.msg);
	for (i = 0; f->snapshots[i]; i++) {
		assert_true(i < nm.n_snapshots);
		assert_string_equal(nm.snapshots[i], f->snapshots[i]);
		free(nm.snapshots[i]);
	}
	assert_int_equal(nm.n_snapshots, i);
	assert_int_equal(nm.n, f->n_files);
	for (i = 0; i < nm.n; i++) {
		assert_string_equal(nm.list[i], f->files[i].path);
		free(nm.list[i]);
	}
}

static void check_store_file(struct snap_store *s, const char *store,
			     const struct store_file_expect *x)
{
	uint8_t id[SNAP_ID_LEN], other[SNAP_ID_LEN], digest[SNAP_DIGEST_LEN];
	char hex[2 * SNAP_DIGEST_LEN + 1];
	struct snap_err err = { "" };
	struct snap_image_stat st;
	struct snap_image *img;
	struct snap_ws ws;
	unsigned nlink;
	uint8_t *buf;
	ssize_t got;
	int ret;

	if (snap_store_lookup(s, x->path, id, &nlink, &err))
		fail_msg("%s: %s: %s", store, x->path, err.msg);
	assert_int_equal(nlink, x->nlink);
	if (x->same_image) {
		if (snap_store_lookup(s, x->same_image, other, NULL, &err))
			fail_msg("%s: %s: %s", store, x->same_image, err.msg);
		assert_memory_equal(id, other, SNAP_ID_LEN);
	}
	if (snap_image_open(s, id, 0, &img, &err))
		fail_msg("%s: %s: %s", store, x->path, err.msg);
	assert_int_equal(snap_image_size(img), x->size);
	snap_image_stat(img, &st);
	assert_int_equal(st.depth, x->depth);
	assert_int_equal(st.mtime_ns, x->mtime_ns);
	/* A frame without ImageTimes reads both as the mtime. */
	assert_int_equal(st.ctime_ns, x->ctime_ns ? x->ctime_ns : x->mtime_ns);
	assert_int_equal(st.atime_ns, x->atime_ns ? x->atime_ns : x->mtime_ns);

	/* One byte more than the size: the read is short at the end. */
	buf = malloc(x->size + 1);
	assert_non_null(buf);
	got = snap_image_read(img, buf, x->size + 1, 0, &err);
	if (got < 0)
		fail_msg("%s: %s: %s", store, x->path, err.msg);
	assert_int_equal(got, x->size);
	snap_sha256(buf, x->size, digest);
	snap_hex(digest, SNAP_DIGEST_LEN, hex);
	if (strcmp(hex, x->sha256))
		fail_msg("%s: %s: sha256 %s, expected %s", store, x->path,
			 hex, x->sha256);
	free(buf);

	ret = snap_image_ws_load(img, &ws, &err);
	if (!x->ws_n) {
		assert_int_equal(ret, -ENOENT);
	} else {
		if (ret)
			fail_msg("%s: %s: %s", store, x->path, err.msg);
		assert_false(ws.off);
		assert_int_equal(ws.recorded_ns, x->ws_recorded_ns);
		assert_int_equal(ws.n, x->ws_n);
		assert_memory_equal(ws.index, x->ws, x->ws_n * sizeof(*x->ws));
		snap_ws_release(&ws);
	}
	assert_int_equal(snap_image_close(img, &err), 0);
}

/* Codec-2 chunk files under dir/chunks, and how many have a zero base. */
static void count_patches(const char *dir, unsigned *n, unsigned *zero)
{
	char *sub, *file;
	struct dirent *e, *e2;
	DIR *d, *d2;

	*n = *zero = 0;
	if (asprintf(&sub, "%s/chunks", dir) < 0)
		abort();
	d = opendir(sub);
	assert_non_null(d);
	while ((e = readdir(d))) {
		char *path;

		if (strlen(e->d_name) != 2 ||
		    asprintf(&path, "%s/%s", sub, e->d_name) < 0)
			continue;
		d2 = opendir(path);
		assert_non_null(d2);
		while ((e2 = readdir(d2))) {
			uint8_t hdr[48];
			static const uint8_t zeros[32];
			FILE *f;

			if (e2->d_name[0] == '.' ||
			    asprintf(&file, "%s/%s", path, e2->d_name) < 0)
				continue;
			f = fopen(file, "rb");
			assert_non_null(f);
			if (fread(hdr, 1, sizeof(hdr), f) == sizeof(hdr) &&
			    hdr[4] == 2) {
				(*n)++;
				*zero += !memcmp(hdr + 16, zeros, 32);
			}
			fclose(f);
			free(file);
		}
		closedir(d2);
		free(path);
	}
	closedir(d);
	free(sub);
}

/* Files of dir/chunks/packs whose names end in ext. */
static unsigned count_files(const char *dir, const char *ext)
{
	struct dirent *e;
	unsigned n = 0;
	char *sub;
	DIR *d;

	if (asprintf(&sub, "%s/chunks/packs", dir) < 0)
		abort();
	d = opendir(sub);
	free(sub);
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name), x = strlen(ext);

		n += len > x && !strcmp(e->d_name + len - x, ext);
	}
	if (d)
		closedir(d);
	return n;
}

/* Whether store.bin at dir names feature (a plain string in it). */
static bool store_requires(const char *dir, const char *feature)
{
	char *path, buf[512];
	size_t len;
	FILE *f;

	if (asprintf(&path, "%s/store.bin", dir) < 0)
		abort();
	f = fopen(path, "rb");
	assert_non_null(f);
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	free(path);
	return memmem(buf, len, feature, strlen(feature)) != NULL;
}

static void verify_report(void *arg, const char *line)
{
	const char *store = arg;

	print_error("%s: verify: %s\n", store, line);
}

/*
 * Open a copy (opening takes STORE/lock, creating it if missing; the
 * committed files are never opened), read-only, and read everything.
 */
static void check_store_fixture(const struct store_fixture *f)
{
	struct snap_store_opts opts = { .flags = SNAP_STORE_RDONLY };
	struct snap_err err = { "" };
	struct snap_verify_stats vs;
	struct snap_store *s;
	char *src, *tmp, *store;

	if (asprintf(&src, "%s/%s", compat_dir(), f->name) < 0)
		abort();
	tmp = test_tmpdir();
	if (asprintf(&store, "%s/%s", tmp, f->name) < 0)
		abort();
	copy_tree(src, store);
	relink_names(store);
	if (f->patches) {
		unsigned n, zero;

		count_patches(store, &n, &zero);
		assert_int_equal(n, f->patches);
		assert_int_equal(zero, f->zero_based);
	}
	assert_int_equal(store_requires(store, "chunk-patches"),
			 f->patches > 0);
	assert_int_equal(count_files(store, ".pack"), f->packs);
	assert_int_equal(count_files(store, ".idx"), f->indexed);
	assert_int_equal(store_requires(store, "chunk-packs"), f->packs > 0);

	if (snap_store_open(store, &opts, &s, &err))
		fail_msg("%s: %s", src, err.msg);
	assert_int_equal(snap_store_chunk_size(s), f->chunk_size);
	check_store_names(s, f);
	for (size_t i = 0; i < f->n_files; i++)
		check_store_file(s, src, &f->files[i]);
	if (snap_store_verify(s, &vs, verify_report, src, &err))
		fail_msg("%s: %s", src, err.msg);
	assert_int_equal(vs.bad, 0);
	assert_int_equal(vs.images, f->images);
	assert_int_equal(vs.chunks, f->chunks);
	snap_store_close(s);

	test_rmtree(tmp);
	free(store);
	free(tmp);
	free(src);
}

static void test_store_fixtures_read(void **unused)
{
	for (size_t i = 0; i < N_STORE_FIXTURES; i++)
		check_store_fixture(&store_fixtures[i]);
}

/*
 * An open's record of a store in RADOS (proto/store.proto, OpenRecord),
 * as the first build that wrote one framed it: two deltas, 01 02 03 and
 * 04 05 06, zero-padded to 16 bytes.
 */
#define RECORD_FIXTURE	"2026-12-rados-records"

struct record_ids {
	unsigned n;
	uint8_t ids[2][SNAP_ID_LEN];
};

static int record_id(void *arg, const uint8_t id[SNAP_ID_LEN])
{
	struct record_ids *r = arg;

	if (r->n < 2)
		memcpy(r->ids[r->n], id, SNAP_ID_LEN);
	r->n++;
	return 0;
}

static void test_rados_record(void **unused)
{
	const uint8_t want[2][SNAP_ID_LEN] = { { 1, 2, 3 }, { 4, 5, 6 } };
	struct record_ids r = { 0 };
	struct snap_err err;
	uint8_t *buf;
	size_t len;
	char *path;

	assert_true(asprintf(&path, "%s/" RECORD_FIXTURE "/openrecord.bin",
			     compat_dir()) > 0);
	buf = test_read_file(path, &len);
	if (meta_open_decode(buf, len, path, record_id, &r, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(r.n, 2);
	assert_memory_equal(r.ids, want, sizeof(want));
	free(buf);
	free(path);
}

/* Every directory in tests/compat has expectations, and none vanished. */
static void test_fixture_list_complete(void **unused)
{
	DIR *d = opendir(compat_dir());
	struct dirent *e;
	size_t seen = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		bool known = false;

		if (e->d_name[0] == '.' || e->d_type != DT_DIR)
			continue;
		for (size_t i = 0; i < N_FIXTURES; i++)
			known |= !strcmp(fixtures[i].name, e->d_name);
		for (size_t i = 0; i < N_STORE_FIXTURES; i++)
			known |= !strcmp(store_fixtures[i].name, e->d_name);
		known |= !strcmp(RECORD_FIXTURE, e->d_name);
		if (!known)
			fail_msg("tests/compat/%s has no expected values",
				 e->d_name);
		seen++;
	}
	closedir(d);
	assert_int_equal(seen, N_FIXTURES + N_STORE_FIXTURES + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures_load),
		cmocka_unit_test(test_store_fixtures_read),
		cmocka_unit_test(test_rados_record),
		cmocka_unit_test(test_fixture_list_complete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
