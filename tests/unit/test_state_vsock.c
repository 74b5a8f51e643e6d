/* SPDX-License-Identifier: MIT */
/*
 * The virtio-vsock payload (state_virtio.h): a round trip of every field,
 * and hostile payloads refused with one line naming what, never a crash.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/state.pb-c.h"
#include "snapshot/format/state_virtio.h"

/* A transport with every field set, three queues (rx, tx, event). */
static void sample(struct snap_virtio_vsock *s, uint32_t seed)
{
	memset(s, 0, sizeof(*s));
	s->dev.pci.slot = 3;
	for (unsigned int i = 0; i < SNAP_PCI_CONFIG_SIZE; i++)
		s->dev.pci.config[i] = (uint8_t)(seed + i * 7);
	s->dev.pci.msix_table_len = 4 * SNAP_MSIX_ENTRY_SIZE;
	for (unsigned int i = 0; i < s->dev.pci.msix_table_len; i++)
		s->dev.pci.msix_table[i] = (uint8_t)(seed * 3 + i);
	s->dev.pci.msix_pba_len = 1;
	s->dev.pci.msix_pba[0] = 0x05;
	s->dev.device_features = 0x130000000ull;
	s->dev.driver_features = 0x120000000ull;
	s->dev.status = 0x0f;
	s->dev.dfselect = 1;
	s->dev.gfselect = 1;
	s->dev.queue_select = 2;
	s->dev.config_vector = 3;
	s->dev.config_generation = 7;
	s->dev.isr = 1;
	s->dev.n_queues = 3;
	for (uint32_t q = 0; q < 3; q++)
		s->dev.queues[q] = (struct snap_virtq){
			.size = 256, .ready = true, .vector = q,
			.desc = 0x100000ull * (q + 1) + seed * 0x1000,
			.avail = 0x100000ull * (q + 1) + 0x1000,
			.used = 0x100000ull * (q + 1) + 0x2000,
			.last_avail = 65535 - q, .used_idx = 1000 + q,
			.signalled = 999 + q,
		};
	s->guest_cid = 3 + seed;
}

static void test_round_trip(void **unused)
{
	struct snap_virtio_vsock in, out;
	struct snap_err err = { "" };
	uint8_t *buf;
	size_t len;

	for (uint32_t seed = 0; seed < 3; seed++) {
		sample(&in, seed);
		if (seed == 2)
			in.guest_cid = SNAP_VSOCK_CID_MAX;
		assert_int_equal(snap_virtio_vsock_encode(&in, &buf, &len), 0);
		memset(&out, 0xa5, sizeof(out));
		assert_int_equal(snap_virtio_vsock_decode(buf, len, &out, &err),
				 0);
		free(buf);
		assert_int_equal(out.guest_cid, in.guest_cid);
		assert_memory_equal(&out.dev.pci, &in.dev.pci,
				    sizeof(in.dev.pci));
		assert_int_equal(out.dev.n_queues, 3);
		for (uint32_t q = 0; q < 3; q++)
			assert_memory_equal(&out.dev.queues[q],
					    &in.dev.queues[q],
					    sizeof(in.dev.queues[q]));
		assert_int_equal(out.dev.device_features,
				 in.dev.device_features);
		assert_int_equal(out.dev.driver_features,
				 in.dev.driver_features);
		assert_int_equal(out.dev.status, in.dev.status);
		assert_int_equal(out.dev.queue_select, in.dev.queue_select);
		assert_int_equal(out.dev.config_vector, in.dev.config_vector);
		assert_int_equal(out.dev.config_generation,
				 in.dev.config_generation);
		assert_int_equal(out.dev.isr, in.dev.isr);
	}
	in.dev.n_queues = SNAP_VIRTQ_MAX + 1;
	assert_int_equal(snap_virtio_vsock_encode(&in, &buf, &len), -EINVAL);
}

/* err holds one line, "state.bin: virtio-vsock: ..." naming what. */
static void assert_refused(int ret, int want, const struct snap_err *err,
			   const char *what)
{
	assert_int_equal(ret, want);
	if (strncmp(err->msg, "state.bin: virtio-vsock", 23) ||
	    strchr(err->msg, '\n') || !strstr(err->msg, what))
		fail_msg("\"%s\" is not one line about %s", err->msg, what);
}

/* The message of a sample, for editing field by field. */
struct msg {
	Snapfs__State__VirtioVsock vs;
	Snapfs__State__VirtioTransport t;
	Snapfs__State__PciFunction f;
	Snapfs__State__VirtQueue q[3], *qp[SNAP_VIRTQ_MAX + 1];
	uint8_t config[SNAP_PCI_CONFIG_SIZE + 1];
	uint8_t table[SNAP_MSIX_MAX * SNAP_MSIX_ENTRY_SIZE + 16];
	uint8_t pba[SNAP_MSIX_MAX / 8 + 2];
};

static void msg_init(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	snapfs__state__virtio_vsock__init(&m->vs);
	snapfs__state__virtio_transport__init(&m->t);
	snapfs__state__pci_function__init(&m->f);
	m->f.slot = 3;
	m->f.config = (ProtobufCBinaryData){ SNAP_PCI_CONFIG_SIZE, m->config };
	m->f.msix_table = (ProtobufCBinaryData){ 64, m->table };
	m->f.msix_pba = (ProtobufCBinaryData){ 1, m->pba };
	for (int i = 0; i < 3; i++) {
		snapfs__state__virt_queue__init(&m->q[i]);
		m->q[i].size = 256;
		m->qp[i] = &m->q[i];
	}
	m->t.pci = &m->f;
	m->t.n_queues = 3;
	m->t.queues = m->qp;
	m->vs.transport = &m->t;
	m->vs.guest_cid = 3;
}

static int decode(const struct msg *m, struct snap_virtio_vsock *out,
		  struct snap_err *err)
{
	size_t len = snapfs__state__virtio_vsock__get_packed_size(&m->vs);
	uint8_t *buf = malloc(len ? len : 1);
	int ret;

	assert_non_null(buf);
	snapfs__state__virtio_vsock__pack(&m->vs, buf);
	ret = snap_virtio_vsock_decode(buf, len, out, err);
	free(buf);
	return ret;
}

static void test_hostile_fields(void **unused)
{
	struct snap_virtio_vsock out;
	struct snap_err err = { "" };
	struct msg m;

	msg_init(&m);
	assert_int_equal(decode(&m, &out, &err), 0);
	assert_int_equal(out.guest_cid, 3);
	assert_int_equal(out.dev.n_queues, 3);

	/* The reserved CIDs (0 any hypervisor, 1 local, 2 host), and -1. */
	for (uint64_t cid = 0; cid < 3; cid++) {
		m.vs.guest_cid = cid;
		assert_refused(decode(&m, &out, &err), -EINVAL, &err,
			       "guest_cid");
	}
	m.vs.guest_cid = 0xffffffffull;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "guest_cid");
	m.vs.guest_cid = 1ull << 32 | 3;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "guest_cid");
	m.vs.guest_cid = 3;

	m.vs.transport = NULL;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err,
		       "transport missing");
	m.vs.transport = &m.t;

	m.t.pci = NULL;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "pci: missing");
	m.t.pci = &m.f;

	m.f.config.len = SNAP_PCI_CONFIG_SIZE + 1;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "pci.config");
	m.f.config.len = SNAP_PCI_CONFIG_SIZE;

	m.f.msix_table.len = sizeof(m.table);
	m.f.msix_pba.len = sizeof(m.pba);
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "MSI-X");
	m.f.msix_table.len = 64;
	m.f.msix_pba.len = 2;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "MSI-X");
	m.f.msix_pba.len = 1;

	m.f.slot = 32;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "pci.slot");
	m.f.slot = 3;

	for (int i = 3; i <= (int)SNAP_VIRTQ_MAX; i++)
		m.qp[i] = &m.q[0];
	m.t.n_queues = SNAP_VIRTQ_MAX + 1;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "queues");
	m.t.n_queues = 3;

	m.t.status = 256;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "status");
	m.t.status = 0;

	m.q[1].size = 65536;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "queue size");
	m.q[1].size = 256;
	m.q[2].used_idx = 0x10000;
	assert_refused(decode(&m, &out, &err), -EINVAL, &err, "used_idx");
	m.q[2].used_idx = 0;

	assert_int_equal(decode(&m, &out, &err), 0);
}

/* Every truncation and every flipped byte: a clean answer, never a crash. */
static void test_corrupt_bytes(void **unused)
{
	struct snap_virtio_vsock in, out;
	struct snap_err err;
	uint8_t *buf, *copy;
	size_t len;

	sample(&in, 1);
	assert_int_equal(snap_virtio_vsock_encode(&in, &buf, &len), 0);
	copy = malloc(len);
	assert_non_null(copy);
	for (size_t n = 0; n < len; n++) {
		int ret;

		memcpy(copy, buf, n);
		err.msg[0] = '\0';
		ret = snap_virtio_vsock_decode(copy, n, &out, &err);
		if (ret == 0)
			continue;	/* a shorter message can be valid */
		assert_true(ret == -EBADMSG || ret == -EINVAL);
		assert_non_null(strstr(err.msg, "virtio-vsock"));
		assert_null(strchr(err.msg, '\n'));
	}
	for (size_t i = 0; i < len; i++) {
		for (unsigned int bit = 0; bit < 8; bit++) {
			int ret;

			memcpy(copy, buf, len);
			copy[i] ^= (uint8_t)(1u << bit);
			err.msg[0] = '\0';
			ret = snap_virtio_vsock_decode(copy, len, &out, &err);
			if (ret == 0) {
				assert_true(out.guest_cid >= SNAP_VSOCK_CID_MIN);
				assert_true(out.guest_cid <= SNAP_VSOCK_CID_MAX);
				assert_true(out.dev.n_queues <= SNAP_VIRTQ_MAX);
				continue;
			}
			assert_true(ret == -EBADMSG || ret == -EINVAL);
			assert_non_null(strstr(err.msg, "virtio-vsock"));
			assert_null(strchr(err.msg, '\n'));
		}
	}
	free(copy);
	free(buf);
}

/* Another device's payload is not ours to take. */
static void test_other_payloads(void **unused)
{
	struct snap_virtio_vsock out;
	struct snap_err err = { "" };
	uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };

	assert_refused(snap_virtio_vsock_decode(garbage, sizeof(garbage), &out,
						&err), -EBADMSG, &err,
		       "not a valid payload");
	/* An empty payload has no transport. */
	assert_refused(snap_virtio_vsock_decode(garbage, 0, &out, &err),
		       -EINVAL, &err, "transport missing");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_hostile_fields),
		cmocka_unit_test(test_corrupt_bytes),
		cmocka_unit_test(test_other_payloads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
