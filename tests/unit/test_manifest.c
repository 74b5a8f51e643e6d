/* SPDX-License-Identifier: MIT */
/* manifest.bin: round trip, every validation path, decoding checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/manifest.pb-c.h"
#include "tests/lib/testutil.h"

static void sample(struct snap_manifest *m)
{
	test_manifest_sample(m, 4, 4ull << 30, 7);
	m->has_parent = true;
	memset(m->parent_id, 0xab, sizeof(m->parent_id));
	snap_manifest_set_text(&m->parent_hint, "/mnt/snaps/base");
	m->has_memory_sha256 = true;
	memset(m->memory_sha256, 0x5a, sizeof(m->memory_sha256));
	memset(m->state_sha256, 0xa5, sizeof(m->state_sha256));
	m->state_size = 12345;
}

static void test_round_trip(void **unused)
{
	struct snap_manifest m, d;
	struct snap_err err = { "" };
	uint8_t *buf;
	size_t len;

	sample(&m);
	assert_int_equal(snap_manifest_encode(&m, &buf, &len, &err), 0);
	assert_int_equal(snap_manifest_decode(buf, len, &d, &err), 0);
	assert_memory_equal(d.id, m.id, SNAP_ID_LEN);
	assert_string_equal(d.producer_name, "snapfs-test");
	assert_string_equal(d.producer_version, "1.0");
	assert_string_equal(d.arch, "x86_64");
	assert_int_equal(d.page_size, 4096);
	assert_int_equal(d.vcpu_count, 4);
	assert_int_equal(d.n_regions, 2);
	assert_memory_equal(d.regions, m.regions, 2 * sizeof(m.regions[0]));
	assert_true(d.has_parent);
	assert_memory_equal(d.parent_id, m.parent_id, SNAP_ID_LEN);
	assert_string_equal(d.parent_hint, "/mnt/snaps/base");
	assert_int_equal(d.created_unix_ns, m.created_unix_ns);
	assert_memory_equal(d.state_sha256, m.state_sha256, SNAP_DIGEST_LEN);
	assert_int_equal(d.state_size, 12345);
	assert_int_equal(d.memory_size, 4ull << 30);
	assert_true(d.has_memory_sha256);
	assert_memory_equal(d.memory_sha256, m.memory_sha256, SNAP_DIGEST_LEN);
	assert_int_equal(d.n_required, 0);
	assert_int_equal(d.n_compatible, 1);
	assert_string_equal(d.compatible_features[0], "sample-feature");
	assert_string_equal(d.cmdline, "console=ttyS0 touch=64");
	/* The file ends in the trailer: tag, length, digest of the rest. */
	assert_int_equal(buf[len - 34], SNAP_TRAILER_TAG);
	assert_int_equal(buf[len - 33], 32);
	free(buf);
	snap_manifest_release(&d);
	snap_manifest_release(&m);
}

static void test_optional_parts_absent(void **unused)
{
	struct snap_manifest m, d;
	uint8_t *buf;
	size_t len;

	test_manifest_sample(&m, 1, 1 << 20, 1);
	snap_manifest_set_text(&m.cmdline, NULL);
	assert_int_equal(snap_manifest_encode(&m, &buf, &len, NULL), 0);
	assert_int_equal(snap_manifest_decode(buf, len, &d, NULL), 0);
	assert_false(d.has_parent);
	assert_false(d.has_memory_sha256);
	assert_null(d.parent_hint);
	assert_null(d.cmdline);
	free(buf);
	snap_manifest_release(&d);
	snap_manifest_release(&m);
}

/* ---- validation: one mutation of the sample per row ---------------------- */

struct bad_case {
	const char *what;	/* expected in the message */
	void (*mutate)(struct snap_manifest *m);
};

static void bad_arch(struct snap_manifest *m) { strcpy(m->arch, "aarch64"); }
static void bad_page(struct snap_manifest *m) { m->page_size = 16384; }
static void no_vcpus(struct snap_manifest *m) { m->vcpu_count = 0; }
static void many_vcpus(struct snap_manifest *m) { m->vcpu_count = 257; }
static void no_memory(struct snap_manifest *m) { m->memory_size = 0; }
static void no_state(struct snap_manifest *m) { m->state_size = 0; }
static void no_regions(struct snap_manifest *m) { m->n_regions = 0; }
static void no_producer(struct snap_manifest *m) { m->producer_name[0] = 0; }
static void empty_region(struct snap_manifest *m) { m->regions[1].size = 0; }
static void unaligned(struct snap_manifest *m) { m->regions[0].gpa = 100; }

static void huge_memory(struct snap_manifest *m)
{
	m->memory_size = SNAP_MEMORY_MAX + 4096;
}

static void beyond_gpa(struct snap_manifest *m)
{
	m->regions[1].gpa = SNAP_GPA_LIMIT - 4096;
}

static void past_file_end(struct snap_manifest *m)
{
	m->regions[1].offset += 4096;
}

static void overlap_gpa(struct snap_manifest *m)
{
	m->regions[1].gpa = m->regions[0].gpa + 4096;
}

static void overlap_file(struct snap_manifest *m)
{
	m->regions[1].offset = 0;
	m->regions[0].offset = m->memory_size - m->regions[0].size;
	m->regions[1].size = m->regions[0].size;
	m->memory_size = 2 * m->regions[0].size;
	m->regions[1].offset = m->regions[0].offset - 4096;
}

static void short_cover(struct snap_manifest *m)
{
	m->regions[1].size -= 4096;
}

static void long_cmdline(struct snap_manifest *m)
{
	char *s = malloc(SNAP_TEXT_MAX + 1);

	memset(s, 'x', SNAP_TEXT_MAX);
	s[SNAP_TEXT_MAX] = 0;
	snap_manifest_set_text(&m->cmdline, s);
	free(s);
}

static void empty_feature(struct snap_manifest *m)
{
	snap_manifest_add_feature(&m->compatible_features, &m->n_compatible,
				  "");
}

static const struct bad_case bad_cases[] = {
	{ "arch", bad_arch },
	{ "page_size", bad_page },
	{ "vcpu_count", no_vcpus },
	{ "vcpu_count", many_vcpus },
	{ "memory_size", no_memory },
	{ "memory_size", huge_memory },
	{ "state_size", no_state },
	{ "regions: none", no_regions },
	{ "producer", no_producer },
	{ "region 1: size 0", empty_region },
	{ "page-aligned", unaligned },
	{ "52-bit", beyond_gpa },
	{ "past the end of memory.bin", past_file_end },
	{ "in guest memory", overlap_gpa },
	{ "in memory.bin", overlap_file },
	{ "regions cover", short_cover },
	{ "cmdline", long_cmdline },
	{ "compatible_features: empty name", empty_feature },
};

static void test_validation(void **unused)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct snap_err err = { "" };
		struct snap_manifest m;
		uint8_t *buf = NULL;
		size_t len;

		sample(&m);
		assert_int_equal(snap_manifest_validate(&m, &err), 0);
		bad_cases[i].mutate(&m);
		assert_int_equal(snap_manifest_validate(&m, &err), -EINVAL);
		if (!strstr(err.msg, bad_cases[i].what))
			fail_msg("case %zu: \"%s\" not in \"%s\"", i,
				 bad_cases[i].what, err.msg);
		assert_non_null(strstr(err.msg, "manifest.bin: "));
		/* The encoder refuses to write what the reader would refuse. */
		assert_int_equal(snap_manifest_encode(&m, &buf, &len, NULL),
				 -EINVAL);
		assert_null(buf);
		snap_manifest_release(&m);
	}
}

/* ---- decoding: bytes no encoder of ours would write ----------------------- */

/* Pack pb and append the checksum trailer, as a foreign writer would. */
static uint8_t *pack_with_trailer(const Snapfs__Manifest__SnapshotManifest *pb,
				  size_t *len)
{
	size_t body = snapfs__manifest__snapshot_manifest__get_packed_size(pb);
	uint8_t *buf = malloc(body + SNAP_TRAILER_LEN);

	snapfs__manifest__snapshot_manifest__pack(pb, buf);
	buf[body] = SNAP_TRAILER_TAG;
	buf[body + 1] = 32;
	snap_sha256(buf, body, buf + body + 2);
	*len = body + SNAP_TRAILER_LEN;
	return buf;
}

static void expect_decode(const uint8_t *buf, size_t len, int ret,
			  const char *what)
{
	struct snap_err err = { "" };
	struct snap_manifest d;

	assert_int_equal(snap_manifest_decode(buf, len, &d, &err), ret);
	if (!strstr(err.msg, what))
		fail_msg("\"%s\" not in \"%s\"", what, err.msg);
}

/* Decode our sample's bytes into a protobuf-c message to mutate. */
static Snapfs__Manifest__SnapshotManifest *sample_pb(void)
{
	struct snap_manifest m;
	uint8_t *buf;
	size_t len;
	Snapfs__Manifest__SnapshotManifest *pb;

	sample(&m);
	assert_int_equal(snap_manifest_encode(&m, &buf, &len, NULL), 0);
	pb = snapfs__manifest__snapshot_manifest__unpack(NULL,
							 len - SNAP_TRAILER_LEN,
							 buf);
	assert_non_null(pb);
	free(buf);
	snap_manifest_release(&m);
	return pb;
}

static void test_decode_field_checks(void **unused)
{
	static const char *required[] = { "teleport-v9" };
	static uint8_t five[5];
	struct {
		const char *what;
		int ret;
		size_t field;	/* offset of a ProtobufCBinaryData, or 0 */
	} rows[] = {
		{ "id: 5 bytes", -EINVAL,
		  offsetof(Snapfs__Manifest__SnapshotManifest, id) },
		{ "parent_id: 5 bytes", -EINVAL,
		  offsetof(Snapfs__Manifest__SnapshotManifest, parent_id) },
		{ "state_sha256: 5 bytes", -EINVAL,
		  offsetof(Snapfs__Manifest__SnapshotManifest, state_sha256) },
		{ "memory_sha256: 5 bytes", -EINVAL,
		  offsetof(Snapfs__Manifest__SnapshotManifest, memory_sha256) },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		Snapfs__Manifest__SnapshotManifest *pb = sample_pb();
		ProtobufCBinaryData saved, *b;
		uint8_t *buf;
		size_t len;

		b = (ProtobufCBinaryData *)((char *)pb + rows[i].field);
		saved = *b;
		*b = (ProtobufCBinaryData){ sizeof(five), five };
		buf = pack_with_trailer(pb, &len);
		expect_decode(buf, len, rows[i].ret, rows[i].what);
		*b = saved;
		free(buf);
		snapfs__manifest__snapshot_manifest__free_unpacked(pb, NULL);
	}

	/* An unknown required feature is refused by name. */
	{
		Snapfs__Manifest__SnapshotManifest *pb = sample_pb();
		size_t n = pb->n_required_features;
		char **saved = pb->required_features;
		uint8_t *buf;
		size_t len;

		pb->n_required_features = 1;
		pb->required_features = (char **)required;
		buf = pack_with_trailer(pb, &len);
		expect_decode(buf, len, -ENOTSUP, "\"teleport-v9\"");
		pb->n_required_features = n;
		pb->required_features = saved;
		free(buf);
		snapfs__manifest__snapshot_manifest__free_unpacked(pb, NULL);
	}

	/* Missing producer. */
	{
		Snapfs__Manifest__SnapshotManifest *pb = sample_pb();
		Snapfs__Manifest__Producer *saved = pb->producer;
		uint8_t *buf;
		size_t len;

		pb->producer = NULL;
		buf = pack_with_trailer(pb, &len);
		expect_decode(buf, len, -EINVAL, "producer: missing");
		pb->producer = saved;
		free(buf);
		snapfs__manifest__snapshot_manifest__free_unpacked(pb, NULL);
	}
}

static void test_decode_container(void **unused)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	struct snap_manifest m;
	uint8_t *buf, *bad;
	size_t len;

	sample(&m);
	assert_int_equal(snap_manifest_encode(&m, &buf, &len, NULL), 0);

	expect_decode(buf, 10, -EBADMSG, "too short");
	expect_decode(buf, len - 1, -EBADMSG, "trailer missing");

	bad = malloc(len);
	memcpy(bad, buf, len);
	bad[3] ^= 1;
	expect_decode(bad, len, -EBADMSG, "checksum: mismatch");

	/* Undecodable bytes behind a correct checksum. */
	memcpy(bad, garbage, sizeof(garbage));
	bad[sizeof(garbage)] = SNAP_TRAILER_TAG;
	bad[sizeof(garbage) + 1] = 32;
	snap_sha256(bad, sizeof(garbage), bad + sizeof(garbage) + 2);
	expect_decode(bad, sizeof(garbage) + SNAP_TRAILER_LEN, -EBADMSG,
		      "not a valid SnapshotManifest");

	expect_decode(buf, SNAP_MANIFEST_MAX + 1, -EFBIG, "at most");
	free(bad);
	free(buf);
	snap_manifest_release(&m);
}

static void test_feature_lists(void **unused)
{
	char **list = NULL;
	uint32_t n = 0;

	for (uint32_t i = 0; i < SNAP_MAX_FEATURES; i++)
		assert_int_equal(snap_manifest_add_feature(&list, &n, "f"), 0);
	assert_int_equal(snap_manifest_add_feature(&list, &n, "f"), -E2BIG);
	assert_int_equal(n, SNAP_MAX_FEATURES);
	assert_false(snap_feature_known("no-such-feature"));
	for (uint32_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* ---- disks --------------------------------------------------------------- */

/* The sample with three disks (distinct sizes, digests and modes). */
static void sample_disks(struct snap_manifest *m)
{
	static const char *const files[] = { "disk0.img", "disk1.img",
					     "scratch" };
	static const uint64_t sizes[] = { 512, 1ull << 30, SNAP_DISK_MAX };

	sample(m);
	for (uint32_t i = 0; i < 3; i++) {
		struct snap_disk *d = &m->disks[i];

		snprintf(d->file, sizeof(d->file), "%s", files[i]);
		d->size = sizes[i];
		for (uint32_t k = 0; k < SNAP_DIGEST_LEN; k++)
			d->sha256[k] = (uint8_t)(i * 37 + k);
		d->read_only = i == 1;
	}
	m->n_disks = 3;
	assert_int_equal(snap_manifest_add_feature(&m->required_features,
						   &m->n_required,
						   SNAP_FEATURE_PCI), 0);
	assert_int_equal(snap_manifest_add_feature(&m->required_features,
						   &m->n_required,
						   SNAP_FEATURE_VIRTIO_BLK), 0);
}

static void test_disks_round_trip(void **unused)
{
	struct snap_manifest m, d;
	struct snap_err err = { "" };
	uint8_t *buf;
	size_t len;

	sample_disks(&m);
	assert_int_equal(snap_manifest_encode(&m, &buf, &len, &err), 0);
	assert_int_equal(snap_manifest_decode(buf, len, &d, &err), 0);
	assert_int_equal(d.n_disks, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_string_equal(d.disks[i].file, m.disks[i].file);
		assert_int_equal(d.disks[i].size, m.disks[i].size);
		assert_memory_equal(d.disks[i].sha256, m.disks[i].sha256,
				    SNAP_DIGEST_LEN);
		assert_int_equal(d.disks[i].read_only, m.disks[i].read_only);
	}
	assert_int_equal(d.disks[2].size, SNAP_DISK_MAX);	/* the limit */
	assert_int_equal(d.n_required, 2);
	assert_string_equal(d.required_features[0], "pci");
	assert_string_equal(d.required_features[1], "virtio-blk");
	/* The rest of the manifest is unchanged by the disks. */
	assert_int_equal(d.vcpu_count, 4);
	assert_int_equal(d.state_size, 12345);
	assert_string_equal(d.cmdline, "console=ttyS0 touch=64");
	free(buf);
	snap_manifest_release(&d);
	snap_manifest_release(&m);

	/* No disks at all round-trips as none. */
	sample(&m);
	assert_int_equal(snap_manifest_encode(&m, &buf, &len, &err), 0);
	assert_int_equal(snap_manifest_decode(buf, len, &d, &err), 0);
	assert_int_equal(d.n_disks, 0);
	free(buf);
	snap_manifest_release(&d);
	snap_manifest_release(&m);
}

/* One change to the sample's disks, and the line it must give. */
struct bad_disk {
	const char *what;
	uint32_t disk;		/* which disk changes */
	const char *file;	/* its new name, or NULL */
	uint64_t size;		/* its new size, or 0 */
	uint32_t n_disks;	/* the new count, or 0 */
};

static void test_disk_validation(void **unused)
{
	char unterminated[SNAP_NAME_MAX + 1];
	const struct bad_disk cases[] = {
		{ .disk = 1, .file = "",
		  .what = "disk 1: file \"\": a plain file name expected" },
		{ .disk = 1, .file = "a/b",
		  .what = "disk 1: file \"a/b\": a plain file name expected" },
		{ .disk = 2, .file = "/",
		  .what = "disk 2: file \"/\": a plain file name expected" },
		{ .disk = 1, .file = "memory.bin",
		  .what = "disk 1: file \"memory.bin\": a name the snapshot "
			  "uses itself" },
		{ .disk = 0, .file = "manifest.bin",
		  .what = "disk 0: file \"manifest.bin\": a name the" },
		{ .disk = 1, .file = "state.bin",
		  .what = "disk 1: file \"state.bin\": a name the" },
		{ .disk = 1, .file = ".",
		  .what = "disk 1: file \".\": a name the" },
		{ .disk = 1, .file = "..",
		  .what = "disk 1: file \"..\": a name the" },
		{ .disk = 2, .file = "disk0.img",
		  .what = "disk 2: file \"disk0.img\" is also disk 0's" },
		{ .disk = 1, .size = 1000,
		  .what = "disk 1: size 1000, a multiple of 512" },
		{ .disk = 0, .size = 511,
		  .what = "disk 0: size 511, a multiple of 512" },
		{ .disk = 1, .size = SNAP_DISK_MAX + 512,
		  .what = "disk 1: size 17592186044928, a multiple of 512 up "
			  "to 17592186044416 expected" },
		{ .n_disks = SNAP_MAX_DISKS + 1,
		  .what = "disks: 9, at most 8 expected" },
		/* 64 bytes, no terminator: the line shows the first 63 */
		{ .disk = 1, .file = unterminated,
		  .what = "disk 1: file \"nnnnnnnn" },
	};

	memset(unterminated, 'n', SNAP_NAME_MAX);
	unterminated[SNAP_NAME_MAX] = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_disk *c = &cases[i];
		struct snap_err err = { "" };
		struct snap_manifest m;
		uint8_t *buf = NULL;
		size_t len;

		sample_disks(&m);
		assert_int_equal(snap_manifest_validate(&m, &err), 0);
		/* memcpy: the name may fill the field, unterminated */
		if (c->file)
			memcpy(m.disks[c->disk].file, c->file,
			       strlen(c->file) < SNAP_NAME_MAX ?
			       strlen(c->file) + 1 : SNAP_NAME_MAX);
		if (c->size)
			m.disks[c->disk].size = c->size;
		if (c->n_disks)
			m.n_disks = c->n_disks;
		assert_int_equal(snap_manifest_validate(&m, &err), -EINVAL);
		if (!strstr(err.msg, c->what))
			fail_msg("case %zu: \"%s\" not in \"%s\"", i, c->what,
				 err.msg);
		/* One line, starting with the file it is about. */
		assert_non_null(strstr(err.msg, "manifest.bin: disk"));
		assert_null(strchr(err.msg, '\n'));
		assert_int_equal(snap_manifest_encode(&m, &buf, &len, NULL),
				 -EINVAL);
		assert_null(buf);
		snap_manifest_release(&m);
	}
}

/* Our disks' bytes as a protobuf-c message, for a foreign writer's edits. */
static Snapfs__Manifest__SnapshotManifest *sample_disks_pb(void)
{
	Snapfs__Manifest__SnapshotManifest *pb;
	struct snap_manifest m;
	uint8_t *buf;
	size_t len;

	sample_disks(&m);
	assert_int_equal(snap_manifest_encode(&m, &buf, &len, NULL), 0);
	pb = snapfs__manifest__snapshot_manifest__unpack(NULL,
							 len - SNAP_TRAILER_LEN,
							 buf);
	assert_non_null(pb);
	free(buf);
	snap_manifest_release(&m);
	return pb;
}

static void test_disk_decode_checks(void **unused)
{
	static uint8_t five[5];
	Snapfs__Manifest__SnapshotManifest *pb = sample_disks_pb();
	Snapfs__Manifest__Disk extra[SNAP_MAX_DISKS + 1];
	Snapfs__Manifest__Disk *ptrs[SNAP_MAX_DISKS + 1];
	Snapfs__Manifest__Disk **saved_disks = pb->disks;
	size_t saved_n = pb->n_disks;
	char names[SNAP_MAX_DISKS + 1][16];
	char long_name[SNAP_NAME_MAX + 1];
	ProtobufCBinaryData saved_sha;
	char *saved_file;
	uint8_t *buf;
	size_t len;

	/* Nine disks, each valid on its own: refused by count. */
	for (uint32_t i = 0; i <= SNAP_MAX_DISKS; i++) {
		extra[i] = *pb->disks[0];
		snprintf(names[i], sizeof(names[i]), "disk%u.img", i);
		extra[i].file = names[i];
		ptrs[i] = &extra[i];
	}
	pb->disks = ptrs;
	pb->n_disks = SNAP_MAX_DISKS + 1;
	buf = pack_with_trailer(pb, &len);
	expect_decode(buf, len, -EINVAL, "manifest.bin: disks: 9, at most 8 "
		      "expected");
	free(buf);
	/* Eight are fine. */
	pb->n_disks = SNAP_MAX_DISKS;
	buf = pack_with_trailer(pb, &len);
	{
		struct snap_manifest d;

		assert_int_equal(snap_manifest_decode(buf, len, &d, NULL), 0);
		assert_int_equal(d.n_disks, SNAP_MAX_DISKS);
		assert_string_equal(d.disks[7].file, "disk7.img");
		snap_manifest_release(&d);
	}
	free(buf);
	pb->disks = saved_disks;
	pb->n_disks = saved_n;

	/* A digest that is not 32 bytes, a name of 64 bytes. */
	saved_sha = pb->disks[1]->sha256;
	pb->disks[1]->sha256 = (ProtobufCBinaryData){ sizeof(five), five };
	buf = pack_with_trailer(pb, &len);
	expect_decode(buf, len, -EINVAL, "disks.sha256: 5 bytes, 32 expected");
	free(buf);
	pb->disks[1]->sha256 = saved_sha;
	saved_file = pb->disks[1]->file;
	memset(long_name, 'n', SNAP_NAME_MAX);
	long_name[SNAP_NAME_MAX] = 0;
	pb->disks[1]->file = long_name;
	buf = pack_with_trailer(pb, &len);
	expect_decode(buf, len, -EINVAL, "disks.file: 64 bytes");
	free(buf);

	/* What our encoder refuses to write is refused when read too. */
	pb->disks[1]->file = (char *)"../escape.img";
	buf = pack_with_trailer(pb, &len);
	expect_decode(buf, len, -EINVAL, "disk 1: file \"../escape.img\": a "
		      "plain file name expected");
	free(buf);
	pb->disks[1]->file = (char *)"state.bin";
	buf = pack_with_trailer(pb, &len);
	expect_decode(buf, len, -EINVAL, "disk 1: file \"state.bin\"");
	free(buf);
	pb->disks[1]->file = saved_file;
	pb->disks[1]->size = 513;
	buf = pack_with_trailer(pb, &len);
	expect_decode(buf, len, -EINVAL, "disk 1: size 513");
	free(buf);
	snapfs__manifest__snapshot_manifest__free_unpacked(pb, NULL);
}

/*
 * Required features are how a snapshot refuses an older build by name: a
 * build whose known_required_features lacks "virtio-blk" (any before
 * disks) skips the disks field it does not know, as protobuf does, but
 * still refuses the manifest with "required feature \"virtio-blk\" is not
 * supported by this build" instead of restoring a VM without its disks.
 * "virtio-net" plays that older build's part here: this one does not know
 * it, and must say so.
 */
static void test_required_features(void **unused)
{
	static const char *const known[] = {
		SNAP_FEATURE_PCI, SNAP_FEATURE_VIRTIO_BLK,
		SNAP_FEATURE_VIRTIO_RNG, SNAP_FEATURE_VIRTIO_VSOCK,
	};
	struct snap_err err = { "" };
	struct snap_manifest m, d;
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		assert_true(snap_feature_known(known[i]));
	assert_false(snap_feature_known("virtio-net"));
	assert_false(snap_feature_known("virtio-blk "));	/* exact */
	assert_false(snap_feature_known(""));

	/* Every feature this build knows: accepted. */
	sample_disks(&m);
	assert_int_equal(snap_manifest_add_feature(&m.required_features,
						   &m.n_required,
						   "virtio-rng"), 0);
	assert_int_equal(snap_manifest_add_feature(&m.required_features,
						   &m.n_required,
						   "virtio-vsock"), 0);
	assert_int_equal(snap_manifest_encode(&m, &buf, &len, &err), 0);
	assert_int_equal(snap_manifest_decode(buf, len, &d, &err), 0);
	assert_int_equal(d.n_required, 4);
	free(buf);
	snap_manifest_release(&d);

	/* One it does not know, after known ones: refused by its name. */
	assert_int_equal(snap_manifest_add_feature(&m.required_features,
						   &m.n_required,
						   "virtio-net"), 0);
	/* The encoder writes what it is given; the reader decides. */
	assert_int_equal(snap_manifest_encode(&m, &buf, &len, &err), 0);
	assert_int_equal(snap_manifest_decode(buf, len, &d, &err), -ENOTSUP);
	assert_string_equal(err.msg, "manifest.bin: required feature "
			    "\"virtio-net\" is not supported by this build");
	assert_int_equal(d.n_required, 0);	/* released on failure */
	assert_null(d.required_features);
	free(buf);
	snap_manifest_release(&m);

	/* A compatible feature nobody knows is fine: it may be ignored. */
	sample(&m);
	assert_int_equal(snap_manifest_add_feature(&m.compatible_features,
						   &m.n_compatible,
						   "virtio-net"), 0);
	assert_int_equal(snap_manifest_encode(&m, &buf, &len, &err), 0);
	assert_int_equal(snap_manifest_decode(buf, len, &d, &err), 0);
	free(buf);
	snap_manifest_release(&d);
	snap_manifest_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_optional_parts_absent),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_decode_field_checks),
		cmocka_unit_test(test_decode_container),
		cmocka_unit_test(test_feature_lists),
		cmocka_unit_test(test_disks_round_trip),
		cmocka_unit_test(test_disk_validation),
		cmocka_unit_test(test_disk_decode_checks),
		cmocka_unit_test(test_required_features),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
