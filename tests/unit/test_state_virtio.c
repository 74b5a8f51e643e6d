/* SPDX-License-Identifier: MIT */
/*
 * The PCI and virtio payloads of state.bin (state_virtio.h): round trips
 * of every codec with values in every field, the limits accepted, and
 * hostile payloads refused with one line each.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/state.pb-c.h"
#include "snapshot/format/state_virtio.h"

/* A transport with a different, non-zero value in every field. */
static void sample(struct snap_virtio *v, uint32_t seed, uint32_t n_queues,
		   uint32_t vectors)
{
	memset(v, 0, sizeof(*v));
	v->pci.slot = 1 + seed % 31;
	for (uint32_t i = 0; i < SNAP_PCI_CONFIG_SIZE; i++)
		v->pci.config[i] = (uint8_t)(i * 3 + seed);
	v->pci.msix_table_len = vectors * SNAP_MSIX_ENTRY_SIZE;
	for (uint32_t i = 0; i < v->pci.msix_table_len; i++)
		v->pci.msix_table[i] = (uint8_t)(i ^ seed ^ 0x5a);
	v->pci.msix_pba_len = (vectors + 7) / 8;
	for (uint32_t i = 0; i < v->pci.msix_pba_len; i++)
		v->pci.msix_pba[i] = (uint8_t)(0x81 + i + seed);
	v->device_features = 0x170000020ull + seed;
	v->driver_features = 0x130000000ull + seed;
	v->status = 0x4f;
	v->dfselect = 1;
	v->gfselect = 0xdeadbeef;	/* 32 bits as the guest wrote them */
	v->queue_select = 0xfffe;
	v->config_vector = 0xffff;
	v->config_generation = 200 + seed % 50;
	v->isr = 3;
	v->n_queues = n_queues;
	for (uint32_t q = 0; q < n_queues; q++)
		v->queues[q] = (struct snap_virtq){
			.size = 256u >> q, .ready = q % 2 == 0,
			.vector = q == 1 ? 0xffff : q,
			.desc = 0x123456789000ull + q * 0x10000 + seed,
			.avail = 0xfffffffffffff000ull - q,
			.used = 0x1000ull * (q + 1),
			.last_avail = 65535 - q, .used_idx = 40000 + q,
			.signalled = 39999 + q,
		};
}

static void assert_virtio_equal(const struct snap_virtio *a,
				const struct snap_virtio *b)
{
	/* Both sides are zeroed first, so the whole struct compares. */
	assert_int_equal(a->n_queues, b->n_queues);
	assert_int_equal(a->pci.msix_table_len, b->pci.msix_table_len);
	assert_memory_equal(a, b, sizeof(*a));
}

static void expect_line(const char *msg, const char *what)
{
	if (!strstr(msg, what))
		fail_msg("\"%s\" not in \"%s\"", what, msg);
	assert_null(strchr(msg, '\n'));
	assert_ptr_equal(strstr(msg, "state.bin: "), msg);
}

/* ---- round trips --------------------------------------------------------- */

static void test_pci_host_round_trip(void **unused)
{
	static const uint32_t values[] = { 0, 0x80000810u, 0xffffffffu };
	struct snap_err err = { "" };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint32_t got = 12345;
		uint8_t *buf;
		size_t len;

		assert_int_equal(snap_pci_host_encode(values[i], &buf, &len),
				 0);
		assert_int_equal(snap_pci_host_decode(buf, len, &got, &err), 0);
		assert_int_equal(got, values[i]);
		free(buf);
	}
}

static void test_transport_round_trip(void **unused)
{
	struct snap_err err = { "" };
	struct snap_virtio v, d;
	uint8_t *buf;
	size_t len;

	sample(&v, 7, 3, 4);
	assert_int_equal(snap_virtio_transport_encode(&v, &buf, &len), 0);
	memset(&d, 0xee, sizeof(d));
	assert_int_equal(snap_virtio_transport_decode(buf, len, "virtio-x",
						      &d, &err), 0);
	assert_virtio_equal(&v, &d);
	free(buf);

	/* The limits: 8 queues, 64 vectors, slot 31, 8- and 16-bit maxima. */
	sample(&v, 30, SNAP_VIRTQ_MAX, SNAP_MSIX_MAX);
	v.pci.slot = 31;
	v.status = 255;
	v.isr = 255;
	v.config_generation = 255;
	v.queues[0].size = 65535;
	assert_int_equal(snap_virtio_transport_encode(&v, &buf, &len), 0);
	assert_int_equal(snap_virtio_transport_decode(buf, len, "virtio-x",
						      &d, &err), 0);
	assert_virtio_equal(&v, &d);
	free(buf);

	/* No MSI-X and no queues at all. */
	sample(&v, 2, 0, 0);
	assert_int_equal(snap_virtio_transport_encode(&v, &buf, &len), 0);
	assert_int_equal(snap_virtio_transport_decode(buf, len, "virtio-x",
						      &d, &err), 0);
	assert_virtio_equal(&v, &d);
	free(buf);

	v.n_queues = SNAP_VIRTQ_MAX + 1;
	assert_int_equal(snap_virtio_transport_encode(&v, &buf, &len),
			 -EINVAL);
}

static void test_rng_round_trip(void **unused)
{
	struct snap_err err = { "" };
	struct snap_virtio v, d;
	uint8_t *buf;
	size_t len;

	sample(&v, 11, 1, 2);
	assert_int_equal(snap_virtio_rng_encode(&v, &buf, &len), 0);
	assert_int_equal(snap_virtio_rng_decode(buf, len, &d, &err), 0);
	assert_virtio_equal(&v, &d);
	free(buf);
	v.n_queues = SNAP_VIRTQ_MAX + 1;
	assert_int_equal(snap_virtio_rng_encode(&v, &buf, &len), -EINVAL);
}

static void test_blk_round_trip(void **unused)
{
	struct snap_virtio_blk b[SNAP_BLK_MAX], d[SNAP_BLK_MAX];
	struct snap_err err = { "" };
	uint32_t n = 99;
	uint8_t *buf;
	size_t len;

	memset(b, 0, sizeof(b));
	for (uint32_t i = 0; i < SNAP_BLK_MAX; i++) {
		sample(&b[i].dev, i + 1, 1 + i % SNAP_VIRTQ_MAX, 2 + i);
		b[i].disk = SNAP_BLK_MAX - 1 - i;
		b[i].capacity = (1ull << 40) / 512 - i;
		b[i].read_only = i % 3 == 1;
	}
	/* Three devices, then the most a set holds. */
	assert_int_equal(snap_virtio_blk_encode(b, 3, &buf, &len), 0);
	memset(d, 0xee, sizeof(d));
	assert_int_equal(snap_virtio_blk_decode(buf, len, d, &n, &err), 0);
	assert_int_equal(n, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_virtio_equal(&b[i].dev, &d[i].dev);
		assert_int_equal(d[i].disk, b[i].disk);
		assert_int_equal(d[i].capacity, b[i].capacity);
		assert_int_equal(d[i].read_only, b[i].read_only);
	}
	free(buf);
	assert_int_equal(snap_virtio_blk_encode(b, SNAP_BLK_MAX, &buf, &len),
			 0);
	assert_int_equal(snap_virtio_blk_decode(buf, len, d, &n, &err), 0);
	assert_int_equal(n, SNAP_BLK_MAX);
	assert_virtio_equal(&b[7].dev, &d[7].dev);
	assert_int_equal(d[7].disk, 0);
	assert_true(d[7].read_only);
	free(buf);

	/* An empty set. */
	assert_int_equal(snap_virtio_blk_encode(b, 0, &buf, &len), 0);
	assert_int_equal(snap_virtio_blk_decode(buf, len, d, &n, &err), 0);
	assert_int_equal(n, 0);
	free(buf);

	assert_int_equal(snap_virtio_blk_encode(b, SNAP_BLK_MAX + 1, &buf,
						&len), -EINVAL);
	b[1].dev.n_queues = SNAP_VIRTQ_MAX + 1;
	assert_int_equal(snap_virtio_blk_encode(b, 2, &buf, &len), -EINVAL);
}

/* ---- hostile payloads ---------------------------------------------------- */

static void test_garbage(void **unused)
{
	/* A field 1 varint that never ends. */
	static const uint8_t garbage[] = { 0x08, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					   0xff };
	struct snap_virtio_blk b[SNAP_BLK_MAX];
	struct snap_err err = { "" };
	struct snap_virtio v;
	uint32_t n = 77, addr = 77;

	assert_int_equal(snap_pci_host_decode(garbage, sizeof(garbage), &addr,
					      &err), -EBADMSG);
	expect_line(err.msg, "state.bin: pci: not a valid payload");
	assert_int_equal(addr, 77);
	assert_int_equal(snap_virtio_blk_decode(garbage, sizeof(garbage), b,
						&n, &err), -EBADMSG);
	expect_line(err.msg, "state.bin: virtio-blk: not a valid payload");
	assert_int_equal(n, 77);
	assert_int_equal(snap_virtio_rng_decode(garbage, sizeof(garbage), &v,
						&err), -EBADMSG);
	expect_line(err.msg, "state.bin: virtio-rng: not a valid payload");
	assert_int_equal(snap_virtio_transport_decode(garbage,
						      sizeof(garbage),
						      "virtio-x", &v, &err),
			 -EBADMSG);
	expect_line(err.msg, "state.bin: virtio-x: not a valid transport");
}

/* One mutation of a sample transport that our encoder will still write. */
struct bad_field {
	const char *what;
	void (*mutate)(struct snap_virtio *v);
};

static void table_20(struct snap_virtio *v) { v->pci.msix_table_len = 20; }
static void pba_2(struct snap_virtio *v) { v->pci.msix_pba_len = 2; }
static void pba_0(struct snap_virtio *v) { v->pci.msix_pba_len = 0; }
static void slot_32(struct snap_virtio *v) { v->pci.slot = 32; }
static void status_256(struct snap_virtio *v) { v->status = 256; }
static void isr_256(struct snap_virtio *v) { v->isr = 256; }
static void gen_256(struct snap_virtio *v) { v->config_generation = 256; }
static void qsel_big(struct snap_virtio *v) { v->queue_select = 65536; }
static void cvec_big(struct snap_virtio *v) { v->config_vector = 65536; }
static void qsize_big(struct snap_virtio *v) { v->queues[1].size = 65536; }
static void qvec_big(struct snap_virtio *v) { v->queues[0].vector = 1u << 31; }
static void qlast_big(struct snap_virtio *v)
{
	v->queues[1].last_avail = 65536;
}

static void qused_big(struct snap_virtio *v) { v->queues[1].used_idx = 70000; }
static void qsig_big(struct snap_virtio *v)
{
	v->queues[0].signalled = UINT32_MAX;
}

static const struct bad_field bad_fields[] = {
	{ "pci: MSI-X table of 20 bytes with a PBA of 1", table_20 },
	{ "pci: MSI-X table of 48 bytes with a PBA of 2", pba_2 },
	{ "pci: MSI-X table of 48 bytes with a PBA of 0", pba_0 },
	{ "pci.slot: 32, at most 31 expected", slot_32 },
	{ "status: 256, at most 255 expected", status_256 },
	{ "isr: 256, at most 255 expected", isr_256 },
	{ "config_generation: 256, at most 255 expected", gen_256 },
	{ "queue_select: 65536, at most 65535 expected", qsel_big },
	{ "config_msix_vector: 65536, at most 65535 expected", cvec_big },
	{ "queue size: 65536, at most 65535 expected", qsize_big },
	{ "queue msix_vector: 2147483648, at most 65535", qvec_big },
	{ "queue last_avail: 65536, at most 65535", qlast_big },
	{ "queue used_idx: 70000, at most 65535", qused_big },
	{ "queue signalled: 4294967295, at most 65535", qsig_big },
};

/* Every bad field refused by the three decoders that carry a transport. */
static void test_bad_fields(void **unused)
{
	for (size_t i = 0; i < sizeof(bad_fields) / sizeof(bad_fields[0]);
	     i++) {
		struct snap_virtio_blk b[2], d[SNAP_BLK_MAX];
		struct snap_err err = { "" };
		char want[128];
		struct snap_virtio v;
		uint32_t n = 55;
		uint8_t *buf;
		size_t len;

		sample(&v, 3, 2, 3);
		bad_fields[i].mutate(&v);

		assert_int_equal(snap_virtio_rng_encode(&v, &buf, &len), 0);
		assert_int_equal(snap_virtio_rng_decode(buf, len, &v, &err),
				 -EINVAL);
		snprintf(want, sizeof(want), "state.bin: virtio-rng: %s",
			 bad_fields[i].what);
		expect_line(err.msg, want);
		free(buf);

		sample(&v, 3, 2, 3);
		bad_fields[i].mutate(&v);
		assert_int_equal(snap_virtio_transport_encode(&v, &buf, &len),
				 0);
		assert_int_equal(snap_virtio_transport_decode(buf, len,
							      "virtio-x", &v,
							      &err), -EINVAL);
		snprintf(want, sizeof(want), "state.bin: virtio-x: %s",
			 bad_fields[i].what);
		expect_line(err.msg, want);
		free(buf);

		/* In the second device of a set. */
		memset(b, 0, sizeof(b));
		sample(&b[0].dev, 1, 1, 2);
		sample(&b[1].dev, 3, 2, 3);
		b[1].disk = 1;
		bad_fields[i].mutate(&b[1].dev);
		assert_int_equal(snap_virtio_blk_encode(b, 2, &buf, &len), 0);
		assert_int_equal(snap_virtio_blk_decode(buf, len, d, &n, &err),
				 -EINVAL);
		snprintf(want, sizeof(want), "state.bin: virtio-blk: %s",
			 bad_fields[i].what);
		expect_line(err.msg, want);
		assert_int_equal(n, 55);	/* untouched on failure */
		free(buf);
	}
}

static void test_blk_disk_index(void **unused)
{
	struct snap_virtio_blk b[2], d[SNAP_BLK_MAX];
	struct snap_err err = { "" };
	uint32_t n = 55;
	uint8_t *buf;
	size_t len;

	memset(b, 0, sizeof(b));
	sample(&b[0].dev, 1, 1, 2);
	sample(&b[1].dev, 2, 1, 2);
	b[0].disk = 7;		/* the last disk a manifest holds */
	b[1].disk = SNAP_BLK_MAX;
	assert_int_equal(snap_virtio_blk_encode(b, 2, &buf, &len), 0);
	assert_int_equal(snap_virtio_blk_decode(buf, len, d, &n, &err),
			 -EINVAL);
	expect_line(err.msg, "state.bin: virtio-blk: device 1: disk 8, at "
		    "most 7 expected");
	assert_int_equal(n, 55);
	free(buf);
	b[1].disk = UINT32_MAX;
	assert_int_equal(snap_virtio_blk_encode(b, 2, &buf, &len), 0);
	assert_int_equal(snap_virtio_blk_decode(buf, len, d, &n, &err),
			 -EINVAL);
	expect_line(err.msg, "device 1: disk 4294967295");
	free(buf);
}

/* ---- what only a foreign encoder writes ---------------------------------- */

/* The sample transport as a message to edit (free with free_unpacked). */
static Snapfs__State__VirtioTransport *sample_pb(uint32_t n_queues)
{
	Snapfs__State__VirtioTransport *t;
	struct snap_virtio v;
	uint8_t *buf;
	size_t len;

	sample(&v, 4, n_queues, 3);
	assert_int_equal(snap_virtio_transport_encode(&v, &buf, &len), 0);
	t = snapfs__state__virtio_transport__unpack(NULL, len, buf);
	assert_non_null(t);
	free(buf);
	return t;
}

/* Pack t alone, in a VirtioRng and in a one-device VirtioBlkSet; each
 * decoder must refuse with -EINVAL and what. */
static void expect_transport_refused(Snapfs__State__VirtioTransport *t,
				     const char *what)
{
	Snapfs__State__VirtioRng rng = SNAPFS__STATE__VIRTIO_RNG__INIT;
	Snapfs__State__VirtioBlk blk = SNAPFS__STATE__VIRTIO_BLK__INIT;
	Snapfs__State__VirtioBlkSet set = SNAPFS__STATE__VIRTIO_BLK_SET__INIT;
	Snapfs__State__VirtioBlk *blkp = &blk;
	struct snap_virtio_blk d[SNAP_BLK_MAX];
	struct snap_err err = { "" };
	struct snap_virtio v;
	char want[160];
	uint8_t buf[8192];
	size_t len;
	uint32_t n;

	assert_true(protobuf_c_message_get_packed_size(&t->base) <
		    sizeof(buf) - 64);
	len = protobuf_c_message_pack(&t->base, buf);
	assert_int_equal(snap_virtio_transport_decode(buf, len, "virtio-x",
						      &v, &err), -EINVAL);
	snprintf(want, sizeof(want), "state.bin: virtio-x: %s", what);
	expect_line(err.msg, want);

	rng.transport = t;
	len = protobuf_c_message_pack(&rng.base, buf);
	assert_int_equal(snap_virtio_rng_decode(buf, len, &v, &err), -EINVAL);
	snprintf(want, sizeof(want), "state.bin: virtio-rng: %s", what);
	expect_line(err.msg, want);

	blk.transport = t;
	set.n_disks = 1;
	set.disks = &blkp;
	len = protobuf_c_message_pack(&set.base, buf);
	assert_int_equal(snap_virtio_blk_decode(buf, len, d, &n, &err),
			 -EINVAL);
	snprintf(want, sizeof(want), "state.bin: virtio-blk: %s", what);
	expect_line(err.msg, want);
}

static void test_foreign_transports(void **unused)
{
	Snapfs__State__VirtioTransport *t = sample_pb(2);
	Snapfs__State__VirtQueue *nine[SNAP_VIRTQ_MAX + 1];
	Snapfs__State__VirtQueue **saved_q = t->queues;
	Snapfs__State__PciFunction *saved_pci = t->pci;
	ProtobufCBinaryData saved, saved_pba = t->pci->msix_pba;
	static uint8_t big[SNAP_MSIX_MAX * SNAP_MSIX_ENTRY_SIZE + 16];
	static uint8_t pba[SNAP_MSIX_MAX / 8 + 1];

	/* A configuration space of 255 bytes, and of 257. */
	saved = t->pci->config;
	t->pci->config.len = 255;
	expect_transport_refused(t, "pci.config: 255 bytes, 256 expected");
	t->pci->config.len = 0;
	expect_transport_refused(t, "pci.config: 0 bytes, 256 expected");
	t->pci->config = saved;

	/* 65 vectors' table with its PBA: more than a function has. */
	saved = t->pci->msix_table;
	t->pci->msix_table = (ProtobufCBinaryData){ sizeof(big), big };
	t->pci->msix_pba = (ProtobufCBinaryData){ sizeof(pba), pba };
	expect_transport_refused(t, "pci: MSI-X table of 1040 bytes with a "
				 "PBA of 9");
	/* A PBA with no table. */
	t->pci->msix_table = (ProtobufCBinaryData){ 0, NULL };
	t->pci->msix_pba = (ProtobufCBinaryData){ 1, pba };
	expect_transport_refused(t, "pci: MSI-X table of 0 bytes with a PBA "
				 "of 1");
	t->pci->msix_table = saved;
	t->pci->msix_pba = saved_pba;

	/* No PCI function at all. */
	t->pci = NULL;
	expect_transport_refused(t, "pci: missing");
	t->pci = saved_pci;

	/* Nine queues. */
	for (uint32_t i = 0; i <= SNAP_VIRTQ_MAX; i++)
		nine[i] = saved_q[0];
	t->queues = nine;
	t->n_queues = SNAP_VIRTQ_MAX + 1;
	expect_transport_refused(t, "queues: 9, at most 8 expected");
	t->n_queues = SNAP_VIRTQ_MAX;	/* eight are fine */
	{
		struct snap_virtio v;
		uint8_t buf[8192];
		size_t len = protobuf_c_message_pack(&t->base, buf);

		assert_int_equal(snap_virtio_transport_decode(buf, len, "x",
							      &v, NULL), 0);
		assert_int_equal(v.n_queues, SNAP_VIRTQ_MAX);
	}
	t->queues = saved_q;
	t->n_queues = 2;
	snapfs__state__virtio_transport__free_unpacked(t, NULL);
}

static void test_foreign_sets(void **unused)
{
	Snapfs__State__VirtioTransport *t = sample_pb(1);
	Snapfs__State__VirtioBlk blk[SNAP_BLK_MAX + 1], *blkp[SNAP_BLK_MAX + 1];
	Snapfs__State__VirtioBlkSet set = SNAPFS__STATE__VIRTIO_BLK_SET__INIT;
	Snapfs__State__VirtioRng rng = SNAPFS__STATE__VIRTIO_RNG__INIT;
	struct snap_virtio_blk d[SNAP_BLK_MAX];
	struct snap_err err = { "" };
	struct snap_virtio v;
	uint8_t buf[65536];
	uint32_t n = 55;
	size_t len;

	for (uint32_t i = 0; i <= SNAP_BLK_MAX; i++) {
		snapfs__state__virtio_blk__init(&blk[i]);
		blk[i].transport = t;
		blk[i].disk = i % SNAP_BLK_MAX;
		blkp[i] = &blk[i];
	}
	set.disks = blkp;

	/* Nine devices: refused by count, and d is never written past 8. */
	set.n_disks = SNAP_BLK_MAX + 1;
	assert_true(protobuf_c_message_get_packed_size(&set.base) <
		    sizeof(buf));
	len = protobuf_c_message_pack(&set.base, buf);
	assert_int_equal(snap_virtio_blk_decode(buf, len, d, &n, &err),
			 -EINVAL);
	expect_line(err.msg, "state.bin: virtio-blk: 9 devices, at most 8 "
		    "expected");
	assert_int_equal(n, 55);
	set.n_disks = SNAP_BLK_MAX;
	len = protobuf_c_message_pack(&set.base, buf);
	assert_int_equal(snap_virtio_blk_decode(buf, len, d, &n, &err), 0);
	assert_int_equal(n, SNAP_BLK_MAX);

	/* A device without its transport. */
	blk[2].transport = NULL;
	set.n_disks = 3;
	len = protobuf_c_message_pack(&set.base, buf);
	n = 55;
	assert_int_equal(snap_virtio_blk_decode(buf, len, d, &n, &err),
			 -EINVAL);
	expect_line(err.msg, "state.bin: virtio-blk: device 2: transport "
		    "missing");
	assert_int_equal(n, 55);

	/* virtio-rng without its transport; an empty payload is that too. */
	len = protobuf_c_message_pack(&rng.base, buf);
	assert_int_equal(snap_virtio_rng_decode(buf, len, &v, &err), -EINVAL);
	expect_line(err.msg, "state.bin: virtio-rng: transport missing");
	assert_int_equal(snap_virtio_rng_decode(buf, 0, &v, &err), -EINVAL);
	expect_line(err.msg, "state.bin: virtio-rng: transport missing");

	snapfs__state__virtio_transport__free_unpacked(t, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pci_host_round_trip),
		cmocka_unit_test(test_transport_round_trip),
		cmocka_unit_test(test_rng_round_trip),
		cmocka_unit_test(test_blk_round_trip),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_blk_disk_index),
		cmocka_unit_test(test_foreign_transports),
		cmocka_unit_test(test_foreign_sets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
