/* SPDX-License-Identifier: MIT */
/* state.bin: round trip of every message, validation, decoding checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/state.pb-c.h"
#include "tests/lib/testutil.h"

/* Both sides come from calloc, so padding is zero and memcmp is exact. */
static void assert_vcpu_equal(const struct snap_vcpu *a,
			      const struct snap_vcpu *b)
{
	assert_int_equal(a->id, b->id);
	assert_memory_equal(&a->regs, &b->regs, sizeof(a->regs));
	assert_memory_equal(&a->sregs, &b->sregs, sizeof(a->sregs));
	assert_memory_equal(&a->fpu, &b->fpu, sizeof(a->fpu));
	assert_int_equal(a->xsave_size, b->xsave_size);
	assert_memory_equal(a->xsave, b->xsave, a->xsave_size);
	assert_int_equal(a->n_xcrs, b->n_xcrs);
	assert_memory_equal(a->xcrs, b->xcrs, sizeof(a->xcrs));
	assert_int_equal(a->n_msrs, b->n_msrs);
	assert_memory_equal(a->msrs, b->msrs, a->n_msrs * sizeof(*a->msrs));
	assert_memory_equal(a->lapic, b->lapic, sizeof(a->lapic));
	assert_memory_equal(&a->events, &b->events, sizeof(a->events));
	assert_int_equal(a->mp_state, b->mp_state);
	assert_memory_equal(&a->debugregs, &b->debugregs,
			    sizeof(a->debugregs));
	assert_int_equal(a->n_cpuid, b->n_cpuid);
	assert_memory_equal(a->cpuid, b->cpuid, a->n_cpuid * sizeof(*a->cpuid));
	assert_int_equal(a->tsc_khz, b->tsc_khz);
}

static void test_round_trip(void **unused)
{
	struct snap_state *s = test_state_sample(4, 3), *d = NULL;
	struct snap_err err = { "" };
	struct snap_uart8250 uart;
	const struct snap_device *dev;
	uint8_t *buf;
	size_t len;

	assert_int_equal(snap_state_encode(s, &buf, &len, &err), 0);
	assert_int_equal(snap_state_decode(buf, len, &d, &err), 0);
	assert_int_equal(d->n_vcpus, 4);
	for (uint32_t i = 0; i < 4; i++)
		assert_vcpu_equal(&s->vcpus[i], &d->vcpus[i]);
	/* The sample sets non-zero values: the round trip really moved them. */
	assert_true(d->vcpus[3].regs.rip != 0 && d->vcpus[3].sregs.cs.type);
	assert_true(d->has_pic && d->has_ioapic && d->has_pit && d->has_clock);
	assert_memory_equal(&s->pic_master, &d->pic_master, sizeof(s->pic_master));
	assert_memory_equal(&s->pic_slave, &d->pic_slave, sizeof(s->pic_slave));
	assert_memory_equal(&s->ioapic, &d->ioapic, sizeof(s->ioapic));
	assert_memory_equal(&s->pit, &d->pit, sizeof(s->pit));
	assert_memory_equal(&s->clock, &d->clock, sizeof(s->clock));
	assert_int_equal(d->n_devices, 1);
	dev = snap_state_find_device(d, "uart8250@0x3f8");
	assert_non_null(dev);
	assert_int_equal(snap_uart8250_decode(dev->payload, dev->len, &uart,
					      &err), 0);
	assert_int_equal(uart.rx_len, 5);
	assert_memory_equal(uart.rx_fifo, "hello", 5);
	assert_true(uart.thr_irq_pending);
	assert_null(snap_state_find_device(d, "virtio-blk"));
	free(buf);
	snap_state_free(d);
	snap_state_free(s);
}

static void test_minimal_state(void **unused)
{
	struct snap_state *s = snap_state_new(1), *d = NULL;
	uint8_t *buf;
	size_t len;

	/* No XSAVE, MSRs, CPUID, VM-wide parts or devices: all optional. */
	assert_int_equal(snap_state_encode(s, &buf, &len, NULL), 0);
	assert_int_equal(snap_state_decode(buf, len, &d, NULL), 0);
	assert_int_equal(d->n_vcpus, 1);
	assert_int_equal(d->vcpus[0].xsave_size, 0);
	assert_null(d->vcpus[0].xsave);
	assert_false(d->has_pic || d->has_ioapic || d->has_pit || d->has_clock);
	assert_int_equal(d->n_devices, 0);
	free(buf);
	snap_state_free(d);
	snap_state_free(s);
}

static void expect_invalid(struct snap_state *s, const char *what)
{
	struct snap_err err = { "" };
	uint8_t *buf = NULL;
	size_t len;

	assert_int_equal(snap_state_validate(s, &err), -EINVAL);
	if (!strstr(err.msg, what))
		fail_msg("\"%s\" not in \"%s\"", what, err.msg);
	assert_int_equal(snap_state_encode(s, &buf, &len, NULL), -EINVAL);
	assert_null(buf);
}

static void test_validation(void **unused)
{
	struct snap_state *s;

	s = snap_state_new(0);
	expect_invalid(s, "vcpus: 0");
	snap_state_free(s);

	s = test_state_sample(2, 1);
	s->vcpus[1].id = 0;
	expect_invalid(s, "vcpu 1: id 0 already used by vcpu 0");
	s->vcpus[1].id = SNAP_MAX_VCPUS;
	expect_invalid(s, "vcpu 1: id 256");
	s->vcpus[1].id = 1;
	s->vcpus[0].xsave_size = 100;
	expect_invalid(s, "vcpu 0: xsave: 100 bytes");
	s->vcpus[0].xsave_size = 4096;
	s->vcpus[0].mp_state = 11;
	expect_invalid(s, "vcpu 0: mp_state: 11");
	s->vcpus[0].mp_state = 0;
	s->vcpus[0].n_xcrs = SNAP_MAX_XCRS + 1;
	expect_invalid(s, "vcpu 0: xcrs: 17");
	s->vcpus[0].n_xcrs = 1;
	assert_int_equal(snap_state_add_device(s, "uart8250@0x3f8", "x", 1), 0);
	expect_invalid(s, "device uart8250@0x3f8: name used twice");
	snap_state_free(s);
}

static void test_reserve_and_devices(void **unused)
{
	struct snap_state *s = snap_state_new(1);
	char name[SNAP_NAME_MAX + 1];

	assert_int_equal(snap_vcpu_reserve(&s->vcpus[0], 100, 0, 0), -EINVAL);
	assert_int_equal(snap_vcpu_reserve(&s->vcpus[0], 0, SNAP_MAX_MSRS + 1,
					   0), -EINVAL);
	assert_int_equal(snap_vcpu_reserve(&s->vcpus[0], 0, 0,
					   SNAP_MAX_CPUID + 1), -EINVAL);
	assert_int_equal(snap_vcpu_reserve(&s->vcpus[0], 2688, 3, 2), 0);
	assert_int_equal(s->vcpus[0].xsave_size, 2688);
	assert_int_equal(s->vcpus[0].n_msrs, 3);
	assert_int_equal(snap_state_add_device(s, "", "x", 1), -EINVAL);
	memset(name, 'n', SNAP_NAME_MAX);
	name[SNAP_NAME_MAX] = 0;
	assert_int_equal(snap_state_add_device(s, name, "x", 1), -EINVAL);
	assert_int_equal(snap_state_add_device(s, "empty", NULL, 0), 0);
	assert_int_equal(s->n_devices, 1);
	snap_state_free(s);
	snap_state_free(NULL);
}

/* ---- decoding: mutate the protobuf message, then decode with ours -------- */

static Snapfs__State__VmState *sample_pb(void)
{
	struct snap_state *s = test_state_sample(2, 5);
	Snapfs__State__VmState *pb;
	uint8_t *buf;
	size_t len;

	assert_int_equal(snap_state_encode(s, &buf, &len, NULL), 0);
	pb = snapfs__state__vm_state__unpack(NULL, len, buf);
	assert_non_null(pb);
	free(buf);
	snap_state_free(s);
	return pb;
}

static void expect_decode_pb(const Snapfs__State__VmState *pb, int ret,
			     const char *what)
{
	size_t len = snapfs__state__vm_state__get_packed_size(pb);
	uint8_t *buf = malloc(len ? len : 1);
	struct snap_err err = { "" };
	struct snap_state *d = NULL;

	snapfs__state__vm_state__pack(pb, buf);
	assert_int_equal(snap_state_decode(buf, len, &d, &err), ret);
	assert_null(d);
	if (!strstr(err.msg, what))
		fail_msg("\"%s\" not in \"%s\"", what, err.msg);
	free(buf);
}

static uint8_t small[100];

/* Each row changes one thing, checks the error, and puts it back. */
static void test_decode_checks(void **unused)
{
	Snapfs__State__VmState *pb = sample_pb();
	Snapfs__State__Vcpu *v = pb->vcpus[1];
	void *saved;
	size_t n;
	uint32_t u;
	ProtobufCBinaryData b;

	u = v->sregs->cs->type;
	v->sregs->cs->type = 300;
	expect_decode_pb(pb, -EINVAL, "vcpu 1: sregs.cs.type: 300, at most 255");
	v->sregs->cs->type = u;

	u = v->sregs->gdt->limit;
	v->sregs->gdt->limit = 70000;
	expect_decode_pb(pb, -EINVAL, "vcpu 1: sregs.gdt.limit: 70000");
	v->sregs->gdt->limit = u;

	u = v->events->exception_nr;
	v->events->exception_nr = 256;
	expect_decode_pb(pb, -EINVAL, "vcpu 1: events.exception_nr: 256");
	v->events->exception_nr = u;

	u = pb->pit->channels[2]->mode;
	pb->pit->channels[2]->mode = 1000;
	expect_decode_pb(pb, -EINVAL, "pit.channels.mode: 1000");
	pb->pit->channels[2]->mode = u;

	b = v->lapic;
	v->lapic.len = 1000;
	expect_decode_pb(pb, -EINVAL, "vcpu 1: lapic: 1000 bytes, 1024 expected");
	v->lapic = b;

	b = v->fpu->xmm;
	v->fpu->xmm.len = 255;
	expect_decode_pb(pb, -EINVAL, "vcpu 1: fpu.xmm: 255 bytes");
	v->fpu->xmm = b;

	b = v->xsave;
	v->xsave = (ProtobufCBinaryData){ sizeof(small), small };
	expect_decode_pb(pb, -EINVAL, "vcpu 1: xsave: 100 bytes");
	v->xsave = b;

	saved = v->regs;
	v->regs = NULL;
	expect_decode_pb(pb, -EINVAL, "vcpu 1: regs missing");
	v->regs = saved;

	saved = v->sregs->tr;
	v->sregs->tr = NULL;
	expect_decode_pb(pb, -EINVAL, "vcpu 1: sregs.tr: segment missing");
	v->sregs->tr = saved;

	n = v->sregs->n_interrupt_bitmap;
	v->sregs->n_interrupt_bitmap = 3;
	expect_decode_pb(pb, -EINVAL, "interrupt_bitmap: 3 entries, 4 expected");
	v->sregs->n_interrupt_bitmap = n;

	n = v->n_msrs;
	v->n_msrs = SNAP_MAX_MSRS + 1;
	saved = v->msrs;
	v->msrs = calloc(n + SNAP_MAX_MSRS + 1, sizeof(*v->msrs));
	for (size_t i = 0; i < v->n_msrs; i++)
		v->msrs[i] = ((Snapfs__State__Msr **)saved)[i % n];
	expect_decode_pb(pb, -EINVAL, "1025 msrs");
	free(v->msrs);
	v->msrs = saved;
	v->n_msrs = n;

	n = pb->ioapic->n_redirtbl;
	pb->ioapic->n_redirtbl = 23;
	expect_decode_pb(pb, -EINVAL, "ioapic: redirtbl: 23 entries, 24 expected");
	pb->ioapic->n_redirtbl = n;

	n = pb->pit->n_channels;
	pb->pit->n_channels = 2;
	expect_decode_pb(pb, -EINVAL, "pit: channels: 2, 3 expected");
	pb->pit->n_channels = n;

	saved = pb->pic_slave;
	pb->pic_slave = NULL;
	expect_decode_pb(pb, -EINVAL, "pic: slave missing");
	pb->pic_slave = saved;

	u = v->id;
	v->id = pb->vcpus[0]->id;
	expect_decode_pb(pb, -EINVAL, "already used");
	v->id = u;

	n = pb->n_vcpus;
	pb->n_vcpus = 0;
	expect_decode_pb(pb, -EINVAL, "vcpus: 0");
	pb->n_vcpus = n;

	/* Back to the original: it decodes again. */
	{
		size_t len = snapfs__state__vm_state__get_packed_size(pb);
		uint8_t *buf = malloc(len);
		struct snap_state *d = NULL;

		snapfs__state__vm_state__pack(pb, buf);
		assert_int_equal(snap_state_decode(buf, len, &d, NULL), 0);
		snap_state_free(d);
		free(buf);
	}
	snapfs__state__vm_state__free_unpacked(pb, NULL);
}

static void test_decode_garbage(void **unused)
{
	static const uint8_t garbage[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f };
	struct snap_err err = { "" };
	struct snap_state *d = NULL;

	assert_int_equal(snap_state_decode(garbage, sizeof(garbage), &d, &err),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "state.bin: not a valid VmState"));
	assert_int_equal(snap_state_decode(garbage, SNAP_STATE_MAX + 1, &d,
					   &err), -EFBIG);
	assert_null(d);
}

static void test_uart_payload(void **unused)
{
	Snapfs__State__Uart8250 pb = SNAPFS__STATE__UART8250__INIT;
	uint8_t fifo[SNAP_UART_FIFO_MAX + 1] = { 0 };
	struct snap_uart8250 u;
	struct snap_err err = { "" };
	uint8_t buf[512];
	size_t len;

	pb.lcr = 0x83;
	pb.rx_fifo = (ProtobufCBinaryData){ sizeof(fifo), fifo };
	len = snapfs__state__uart8250__pack(&pb, buf);
	assert_int_equal(snap_uart8250_decode(buf, len, &u, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "rx_fifo: 257 bytes"));
	pb.rx_fifo.len = 3;
	pb.ier = 256;
	len = snapfs__state__uart8250__pack(&pb, buf);
	assert_int_equal(snap_uart8250_decode(buf, len, &u, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "uart8250.ier: 256"));
	pb.ier = 0x0f;
	len = snapfs__state__uart8250__pack(&pb, buf);
	assert_int_equal(snap_uart8250_decode(buf, len, &u, &err), 0);
	assert_int_equal(u.lcr, 0x83);
	assert_int_equal(u.ier, 0x0f);
	assert_int_equal(u.rx_len, 3);
	/* An empty FIFO (no bytes at all on the wire) decodes to rx_len 0. */
	pb.rx_fifo.len = 0;
	len = snapfs__state__uart8250__pack(&pb, buf);
	assert_int_equal(snap_uart8250_decode(buf, len, &u, &err), 0);
	assert_int_equal(u.rx_len, 0);
	assert_int_equal(u.lcr, 0x83);
	buf[0] = 0xff;
	assert_int_equal(snap_uart8250_decode(buf, 1, &u, &err), -EBADMSG);
}

/* err holds one line, "state.bin: rtc: ..." naming what. */
static void assert_rtc_refused(const struct snap_err *err, const char *what)
{
	if (strncmp(err->msg, "state.bin: rtc", 14) || strchr(err->msg, '\n') ||
	    !strstr(err->msg, what))
		fail_msg("\"%s\" is not one line about %s", err->msg, what);
}

static void test_rtc_payload(void **unused)
{
	Snapfs__State__Rtc pb = SNAPFS__STATE__RTC__INIT;
	uint8_t cmos[SNAP_RTC_CMOS_SIZE + 1];
	struct snap_rtc r, d;
	struct snap_err err = { "" };
	uint8_t buf[512], *enc;
	size_t len;

	/* Round trip: every byte, both signs and the limits of the offset. */
	for (unsigned int i = 0; i < SNAP_RTC_CMOS_SIZE; i++)
		r.cmos[i] = (uint8_t)(0xa5 ^ i);
	r.index = 0x7f;
	const int64_t offsets[] = { 0, -1, 3600000000000ll, -86400123456789ll,
				    SNAP_RTC_OFFSET_MAX, -SNAP_RTC_OFFSET_MAX };
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		r.offset_ns = offsets[i];
		assert_int_equal(snap_rtc_encode(&r, &enc, &len), 0);
		memset(&d, 0xee, sizeof(d));
		assert_int_equal(snap_rtc_decode(enc, len, &d, &err), 0);
		free(enc);
		assert_memory_equal(d.cmos, r.cmos, SNAP_RTC_CMOS_SIZE);
		assert_true(d.offset_ns == r.offset_ns);
		assert_int_equal(d.index, 0x7f);
	}
	/* Encode refuses what decode would. */
	r.offset_ns = SNAP_RTC_OFFSET_MAX + 1;
	assert_int_equal(snap_rtc_encode(&r, &enc, &len), -EINVAL);
	r.offset_ns = 0;
	r.index = SNAP_RTC_CMOS_SIZE;
	assert_int_equal(snap_rtc_encode(&r, &enc, &len), -EINVAL);

	/* Hostile payloads: one line each, nothing half decoded. */
	memset(cmos, 0x11, sizeof(cmos));
	pb.cmos = (ProtobufCBinaryData){ sizeof(cmos), cmos };
	len = snapfs__state__rtc__pack(&pb, buf);
	assert_int_equal(snap_rtc_decode(buf, len, &d, &err), -EINVAL);
	assert_rtc_refused(&err, "cmos: 129 bytes, 128 expected");
	pb.cmos.len = 0;		/* absent */
	len = snapfs__state__rtc__pack(&pb, buf);
	assert_int_equal(snap_rtc_decode(buf, len, &d, &err), -EINVAL);
	assert_rtc_refused(&err, "cmos: 0 bytes");
	pb.cmos.len = SNAP_RTC_CMOS_SIZE;
	pb.offset_ns = INT64_MIN;
	len = snapfs__state__rtc__pack(&pb, buf);
	assert_int_equal(snap_rtc_decode(buf, len, &d, &err), -EINVAL);
	assert_rtc_refused(&err, "offset_ns: -9223372036854775808");
	pb.offset_ns = -5;
	pb.index = 128;
	len = snapfs__state__rtc__pack(&pb, buf);
	assert_int_equal(snap_rtc_decode(buf, len, &d, &err), -EINVAL);
	assert_rtc_refused(&err, "index: 128, at most 127");
	assert_int_equal(d.offset_ns, 0);
	pb.index = 0x0c;
	len = snapfs__state__rtc__pack(&pb, buf);
	assert_int_equal(snap_rtc_decode(buf, len, &d, &err), 0);
	assert_true(d.offset_ns == -5);
	assert_int_equal(d.index, 0x0c);
	assert_int_equal(d.cmos[127], 0x11);
	buf[0] = 0xff;
	assert_int_equal(snap_rtc_decode(buf, 1, &d, &err), -EBADMSG);
	assert_rtc_refused(&err, "not a valid payload");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_minimal_state),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_reserve_and_devices),
		cmocka_unit_test(test_decode_checks),
		cmocka_unit_test(test_decode_garbage),
		cmocka_unit_test(test_uart_payload),
		cmocka_unit_test(test_rtc_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
