/* SPDX-License-Identifier: MIT */
/*
 * Snapshots from a future snapfs: state.bin and manifest.bin written with
 * the schemas of tests/proto/, which keep every field of ours and add new
 * ones of every kind to every message, must decode with every known field
 * intact; the unknown ones are ignored, except a required feature.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "snapshot/format/digest.h"
#include "snapshot/format/manifest.h"
#include "snapshot/format/state.h"

#include "proto/manifest.pb-c.h"
#include "proto/state.pb-c.h"
#include "tproto/future_manifest.pb-c.h"
#include "tproto/future_state.pb-c.h"

#define N_VCPUS		2
#define N_XCRS		2
#define N_MSRS		3
#define N_CPUID		4
#define XSAVE_SIZE	1000
#define UART_NAME	"uart8250@0x3f8"
#define OTHER_NAME	"future-dev@0x2f8"

/*
 * The n-th value of a sequence: distinct, non-zero, and filling the width
 * of its kind (U16 values do not fit in 8 bits, U64 ones not in 32), so a
 * field that is dropped, swapped or truncated shows.
 */
static uint8_t val_U8(unsigned n)
{
	return (uint8_t)(1 + n % 255);
}

static uint16_t val_U16(unsigned n)
{
	return (uint16_t)(0x100 + n % 0xfe00);
}

static uint32_t val_U32(unsigned n)
{
	return 0x80000000u | n;
}

static uint64_t val_U64(unsigned n)
{
	return 0x8000000000000000ull | (uint64_t)n << 24 | n;
}

static int64_t val_S64(unsigned n)
{
	return -(int64_t)n * 1000003 - 1;
}

/* Fill a future message from the field lists of state.h, check ours. */
#define SET(kind, name)		pb->name = val_##kind(++*n);
#define CHECK(kind, name)	assert_int_equal(c->name, val_##kind(++*n));

#define DEFINE_FILL_CHECK(cname, pbtype, FIELDS)			\
static void cname##_fill(pbtype *pb, unsigned *n)			\
{									\
	FIELDS(SET)							\
}									\
static void cname##_check(const struct snap_##cname *c, unsigned *n)	\
{									\
	FIELDS(CHECK)							\
}

DEFINE_FILL_CHECK(regs, Future__State__Regs, SNAP_REGS_FIELDS)
DEFINE_FILL_CHECK(segment, Future__State__Segment, SNAP_SEGMENT_FIELDS)
DEFINE_FILL_CHECK(dtable, Future__State__DescriptorTable, SNAP_DTABLE_FIELDS)
DEFINE_FILL_CHECK(sregs, Future__State__Sregs, SNAP_SREGS_FIELDS)
DEFINE_FILL_CHECK(fpu, Future__State__Fpu, SNAP_FPU_FIELDS)
DEFINE_FILL_CHECK(events, Future__State__VcpuEvents, SNAP_EVENTS_FIELDS)
DEFINE_FILL_CHECK(debugregs, Future__State__DebugRegs, SNAP_DEBUGREGS_FIELDS)
DEFINE_FILL_CHECK(cpuid_entry, Future__State__CpuidEntry, SNAP_CPUID_FIELDS)
DEFINE_FILL_CHECK(xcr, Future__State__Xcr, SNAP_XCR_FIELDS)
DEFINE_FILL_CHECK(msr, Future__State__Msr, SNAP_MSR_FIELDS)
DEFINE_FILL_CHECK(pic, Future__State__Pic, SNAP_PIC_FIELDS)
DEFINE_FILL_CHECK(ioapic, Future__State__Ioapic, SNAP_IOAPIC_FIELDS)
DEFINE_FILL_CHECK(pit_channel, Future__State__PitChannel,
		  SNAP_PIT_CHANNEL_FIELDS)
DEFINE_FILL_CHECK(pit, Future__State__Pit, SNAP_PIT_FIELDS)
DEFINE_FILL_CHECK(clock, Future__State__Clock, SNAP_CLOCK_FIELDS)
DEFINE_FILL_CHECK(uart8250, Future__State__Uart8250, SNAP_UART_FIELDS)

static void pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

static void assert_pattern(const uint8_t *buf, size_t len, unsigned seed)
{
	uint8_t *want = malloc(len ? len : 1);

	assert_non_null(want);
	pattern(want, len, seed);
	assert_memory_equal(buf, want, len);
	free(want);
}

static ProtobufCBinaryData bin(uint8_t *p, size_t len)
{
	return (ProtobufCBinaryData){ .len = len, .data = p };
}

/* ---- the schemas themselves --------------------------------------------- */

static const struct {
	const ProtobufCMessageDescriptor *ours, *future;
} pairs[] = {
	{ &snapfs__manifest__producer__descriptor,
	  &future__manifest__producer__descriptor },
	{ &snapfs__manifest__memory_region__descriptor,
	  &future__manifest__memory_region__descriptor },
	{ &snapfs__manifest__snapshot_manifest__descriptor,
	  &future__manifest__snapshot_manifest__descriptor },
	{ &snapfs__manifest__disk__descriptor,
	  &future__manifest__disk__descriptor },
#define PAIR(name) { &snapfs__state__##name##__descriptor,		\
		     &future__state__##name##__descriptor },
	PAIR(regs) PAIR(segment) PAIR(descriptor_table) PAIR(sregs) PAIR(fpu)
	PAIR(xcr) PAIR(msr) PAIR(vcpu_events) PAIR(debug_regs)
	PAIR(cpuid_entry) PAIR(vcpu) PAIR(pic) PAIR(ioapic) PAIR(pit_channel)
	PAIR(pit) PAIR(clock) PAIR(device) PAIR(uart8250) PAIR(vm_state)
	PAIR(pci_host) PAIR(pci_function) PAIR(virt_queue)
	PAIR(virtio_transport) PAIR(virtio_blk) PAIR(virtio_blk_set)
	PAIR(virtio_rng) PAIR(virtio_vsock) PAIR(rtc)
#undef PAIR
};

/* The future schemas keep every field of ours and add to every message. */
static void test_schemas_extend_ours(void **unused)
{
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		const ProtobufCMessageDescriptor *o = pairs[i].ours;
		const ProtobufCMessageDescriptor *f = pairs[i].future;

		assert_string_equal(o->short_name, f->short_name);
		assert_true(f->n_fields > o->n_fields);
		for (unsigned j = 0; j < o->n_fields; j++) {
			const ProtobufCFieldDescriptor *of = &o->fields[j];
			const ProtobufCFieldDescriptor *ff =
				protobuf_c_message_descriptor_get_field(f,
									of->id);

			assert_non_null(ff);
			assert_string_equal(of->name, ff->name);
			assert_int_equal(of->label, ff->label);
			assert_int_equal(of->type, ff->type);
			if (of->type == PROTOBUF_C_TYPE_MESSAGE)
				assert_string_equal(
				    ((const ProtobufCMessageDescriptor *)
				     of->descriptor)->short_name,
				    ((const ProtobufCMessageDescriptor *)
				     ff->descriptor)->short_name);
		}
	}
}

/* ---- state.bin ---------------------------------------------------------- */

/* Every object of one future VmState, so that nothing needs freeing. */
struct future_vcpu {
	Future__State__Vcpu pb;
	Future__State__Regs regs;
	uint64_t egprs[16];
	Future__State__Sregs sregs;
#define DECLARE_SEGMENT(name) Future__State__Segment name;
#define DECLARE_DTABLE(name) Future__State__DescriptorTable name;
	SNAP_SREGS_SEGMENTS(DECLARE_SEGMENT)
	SNAP_SREGS_DTABLES(DECLARE_DTABLE)
	uint64_t interrupt_bitmap[4], pdptrs[4];
	Future__State__Fpu fpu;
	uint8_t fpr[128], xmm[256], ymmh[512];
	uint8_t xsave[XSAVE_SIZE], lapic[SNAP_LAPIC_SIZE];
	Future__State__Xcr xcrs[N_XCRS], *xcr_ptrs[N_XCRS];
	Future__State__Msr msrs[N_MSRS], *msr_ptrs[N_MSRS];
	Future__State__CpuidEntry cpuid[N_CPUID], *cpuid_ptrs[N_CPUID];
	Future__State__VcpuEvents events;
	Future__State__VcpuEvents__Pending pending;
	Future__State__DebugRegs debugregs;
	uint64_t db[4];
	Future__State__NestedVirt nested;
	uint8_t vmcs[64];
	char *notes[2], *tags[3];
};

struct future_vm {
	Future__State__VmState pb;
	struct future_vcpu vcpus[N_VCPUS];
	Future__State__Vcpu *vcpu_ptrs[N_VCPUS];
	Future__State__Pic pic_master, pic_slave;
	Future__State__Ioapic ioapic;
	uint64_t redirtbl[SNAP_IOAPIC_PINS], redirtbl_ext[8];
	Future__State__Pit pit;
	Future__State__PitChannel channels[SNAP_PIT_CHANNELS];
	Future__State__PitChannel *channel_ptrs[SNAP_PIT_CHANNELS];
	uint8_t pit_blob[9];
	Future__State__Clock clock;
	Future__State__Uart8250 uart;
	uint8_t rx_fifo[6], tx_fifo[5];
	uint8_t *uart_payload;
	Future__State__Device devices[2], *device_ptrs[2];
	uint8_t other_payload[300];
	Future__State__NestedVirt extra, *extra_ptrs[1];
};

static unsigned vcpu_seq(unsigned i)
{
	return 1000 * (i + 1);
}

#define VM_SEQ 7000u

static void fill_vcpu(struct future_vcpu *v, unsigned i)
{
	Future__State__Vcpu *pb = &v->pb;
	unsigned seq = vcpu_seq(i), *n = &seq;

	future__state__vcpu__init(pb);
	pb->id = 7 + i;
	pb->mp_state = 3 + i;
	pb->tsc_khz = 2400000 + i;

	future__state__regs__init(&v->regs);
	regs_fill(&v->regs, n);
	for (unsigned k = 0; k < 16; k++)
		v->egprs[k] = 0xa000 + k;
	v->regs.n_egprs = 16;
	v->regs.egprs = v->egprs;
	pb->regs = &v->regs;

	future__state__sregs__init(&v->sregs);
	sregs_fill(&v->sregs, n);
#define FILL_SEGMENT(name)						\
	future__state__segment__init(&v->name);				\
	segment_fill(&v->name, n);					\
	v->name.future_flag = true;					\
	v->sregs.name = &v->name;
#define FILL_DTABLE(name)						\
	future__state__descriptor_table__init(&v->name);		\
	dtable_fill(&v->name, n);					\
	v->name.future_bias = -12345;					\
	v->sregs.name = &v->name;
	SNAP_SREGS_SEGMENTS(FILL_SEGMENT)
	SNAP_SREGS_DTABLES(FILL_DTABLE)
	for (unsigned k = 0; k < 4; k++) {
		v->interrupt_bitmap[k] = val_U64(++*n);
		v->pdptrs[k] = 0x1000 * (k + 1);
	}
	v->sregs.n_interrupt_bitmap = 4;
	v->sregs.interrupt_bitmap = v->interrupt_bitmap;
	v->sregs.n_pdptrs = 4;
	v->sregs.pdptrs = v->pdptrs;
	v->sregs.sregs2_flags = 1;
	pb->sregs = &v->sregs;

	future__state__fpu__init(&v->fpu);
	fpu_fill(&v->fpu, n);
	pattern(v->fpr, sizeof(v->fpr), 0x30 + i);
	pattern(v->xmm, sizeof(v->xmm), 0x40 + i);
	pattern(v->ymmh, sizeof(v->ymmh), 0x50 + i);
	v->fpu.fpr = bin(v->fpr, sizeof(v->fpr));
	v->fpu.xmm = bin(v->xmm, sizeof(v->xmm));
	v->fpu.ymmh = bin(v->ymmh, sizeof(v->ymmh));
	pb->fpu = &v->fpu;

	pattern(v->xsave, sizeof(v->xsave), 0x10 + i);
	pb->xsave = bin(v->xsave, sizeof(v->xsave));
	pattern(v->lapic, sizeof(v->lapic), 0x20 + i);
	pb->lapic = bin(v->lapic, sizeof(v->lapic));

	for (unsigned k = 0; k < N_XCRS; k++) {
		future__state__xcr__init(&v->xcrs[k]);
		xcr_fill(&v->xcrs[k], n);
		v->xcrs[k].future_name = "xcr-of-the-future";
		v->xcr_ptrs[k] = &v->xcrs[k];
	}
	pb->n_xcrs = N_XCRS;
	pb->xcrs = v->xcr_ptrs;
	for (unsigned k = 0; k < N_MSRS; k++) {
		future__state__msr__init(&v->msrs[k]);
		msr_fill(&v->msrs[k], n);
		v->msrs[k].future_sticky = true;
		v->msr_ptrs[k] = &v->msrs[k];
	}
	pb->n_msrs = N_MSRS;
	pb->msrs = v->msr_ptrs;
	for (unsigned k = 0; k < N_CPUID; k++) {
		future__state__cpuid_entry__init(&v->cpuid[k]);
		cpuid_entry_fill(&v->cpuid[k], n);
		v->cpuid[k].future_vendor = "FutureIntel";
		v->cpuid_ptrs[k] = &v->cpuid[k];
	}
	pb->n_cpuid = N_CPUID;
	pb->cpuid = v->cpuid_ptrs;

	future__state__vcpu_events__init(&v->events);
	events_fill(&v->events, n);
	future__state__vcpu_events__pending__init(&v->pending);
	v->pending.vector = 0x42;
	v->pending.why = "because";
	v->events.future_pending = &v->pending;
	pb->events = &v->events;

	future__state__debug_regs__init(&v->debugregs);
	debugregs_fill(&v->debugregs, n);
	for (unsigned k = 0; k < 4; k++)
		v->db[k] = val_U64(++*n);
	v->debugregs.n_db = 4;
	v->debugregs.db = v->db;
	v->debugregs.future_delta = -77;
	pb->debugregs = &v->debugregs;

	future__state__nested_virt__init(&v->nested);
	v->nested.format = 2;
	pattern(v->vmcs, sizeof(v->vmcs), 0x60 + i);
	v->nested.vmcs = bin(v->vmcs, sizeof(v->vmcs));
	v->notes[0] = "vmx";
	v->notes[1] = "svm";
	v->nested.n_notes = 2;
	v->nested.notes = v->notes;
	pb->nested = &v->nested;
	v->tags[0] = "a";
	v->tags[1] = "bb";
	v->tags[2] = "ccc";
	pb->n_future_tags = 3;
	pb->future_tags = v->tags;
}

static uint8_t *pack_uart(Future__State__Uart8250 *u, uint8_t *rx,
			  uint8_t *tx, size_t *len)
{
	unsigned seq = VM_SEQ + 500, *n = &seq;
	uint8_t *buf;

	future__state__uart8250__init(u);
	uart8250_fill(u, n);
	memcpy(rx, "future", 6);
	u->rx_fifo = bin(rx, 6);
	u->thr_irq_pending = true;
	u->irq_level = true;
	memcpy(tx, "later", 5);
	u->tx_fifo = bin(tx, 5);
	u->future_efr = 0xbf;
	*len = future__state__uart8250__get_packed_size(u);
	buf = malloc(*len);
	assert_non_null(buf);
	assert_int_equal(future__state__uart8250__pack(u, buf), *len);
	return buf;
}

static void fill_vm(struct future_vm *fv)
{
	Future__State__VmState *pb = &fv->pb;
	unsigned seq = VM_SEQ, *n = &seq;
	size_t uart_len;

	future__state__vm_state__init(pb);
	for (unsigned i = 0; i < N_VCPUS; i++) {
		fill_vcpu(&fv->vcpus[i], i);
		fv->vcpu_ptrs[i] = &fv->vcpus[i].pb;
	}
	pb->n_vcpus = N_VCPUS;
	pb->vcpus = fv->vcpu_ptrs;

	future__state__pic__init(&fv->pic_master);
	pic_fill(&fv->pic_master, n);
	fv->pic_master.future_label = "master";
	future__state__pic__init(&fv->pic_slave);
	pic_fill(&fv->pic_slave, n);
	fv->pic_slave.future_label = "slave";
	pb->pic_master = &fv->pic_master;
	pb->pic_slave = &fv->pic_slave;

	future__state__ioapic__init(&fv->ioapic);
	ioapic_fill(&fv->ioapic, n);
	for (unsigned k = 0; k < SNAP_IOAPIC_PINS; k++)
		fv->redirtbl[k] = val_U64(++*n);
	for (unsigned k = 0; k < 8; k++)
		fv->redirtbl_ext[k] = 0x10000 + k;
	fv->ioapic.n_redirtbl = SNAP_IOAPIC_PINS;
	fv->ioapic.redirtbl = fv->redirtbl;
	fv->ioapic.n_redirtbl_ext = 8;
	fv->ioapic.redirtbl_ext = fv->redirtbl_ext;
	pb->ioapic = &fv->ioapic;

	future__state__pit__init(&fv->pit);
	for (unsigned k = 0; k < SNAP_PIT_CHANNELS; k++) {
		future__state__pit_channel__init(&fv->channels[k]);
		pit_channel_fill(&fv->channels[k], n);
		fv->channels[k].future_skew = -(int64_t)k - 1;
		fv->channel_ptrs[k] = &fv->channels[k];
	}
	pit_fill(&fv->pit, n);
	fv->pit.n_channels = SNAP_PIT_CHANNELS;
	fv->pit.channels = fv->channel_ptrs;
	pattern(fv->pit_blob, sizeof(fv->pit_blob), 0x70);
	fv->pit.future_blob = bin(fv->pit_blob, sizeof(fv->pit_blob));
	pb->pit = &fv->pit;

	future__state__clock__init(&fv->clock);
	clock_fill(&fv->clock, n);
	fv->clock.future_tsc_scale = 3;
	fv->clock.future_stable = true;
	pb->clock = &fv->clock;

	fv->uart_payload = pack_uart(&fv->uart, fv->rx_fifo, fv->tx_fifo,
				     &uart_len);
	for (unsigned k = 0; k < 2; k++) {
		future__state__device__init(&fv->devices[k]);
		fv->devices[k].future_version = "2.0";
		fv->devices[k].future_flags = 0xf00d + k;
		fv->device_ptrs[k] = &fv->devices[k];
	}
	fv->devices[0].name = UART_NAME;
	fv->devices[0].payload = bin(fv->uart_payload, uart_len);
	fv->devices[1].name = OTHER_NAME;
	pattern(fv->other_payload, sizeof(fv->other_payload), 0x80);
	fv->devices[1].payload = bin(fv->other_payload,
				     sizeof(fv->other_payload));
	pb->n_devices = 2;
	pb->devices = fv->device_ptrs;

	future__state__nested_virt__init(&fv->extra);
	fv->extra.format = 9;
	fv->extra_ptrs[0] = &fv->extra;
	pb->n_future_list = 1;
	pb->future_list = fv->extra_ptrs;
	pb->mode = FUTURE__STATE__MODE__MODE_CONFIDENTIAL;
	pb->future_comment = "written by snapfs 9.0";
}

/* A future state.bin, as a new buffer. */
static uint8_t *future_state_bin(size_t *len)
{
	struct future_vm *fv = calloc(1, sizeof(*fv));
	uint8_t *buf;

	assert_non_null(fv);
	fill_vm(fv);
	*len = future__state__vm_state__get_packed_size(&fv->pb);
	buf = malloc(*len);
	assert_non_null(buf);
	assert_int_equal(future__state__vm_state__pack(&fv->pb, buf), *len);
	free(fv->uart_payload);
	free(fv);
	return buf;
}

static struct snap_state *decode_future_state(void)
{
	struct snap_err err = { "" };
	struct snap_state *s = NULL;
	size_t len;
	uint8_t *buf = future_state_bin(&len);
	int ret;

	ret = snap_state_decode(buf, len, &s, &err);
	if (ret)
		fail_msg("snap_state_decode: %d: %s", ret, err.msg);
	assert_non_null(s);
	free(buf);
	return s;
}

static void check_vcpu(const struct snap_vcpu *c, unsigned i)
{
	unsigned seq = vcpu_seq(i), *n = &seq;

	assert_int_equal(c->id, 7 + i);
	assert_int_equal(c->mp_state, 3 + i);
	assert_int_equal(c->tsc_khz, 2400000 + i);
	regs_check(&c->regs, n);
	sregs_check(&c->sregs, n);
#define CHECK_SEGMENT(name) segment_check(&c->sregs.name, n);
#define CHECK_DTABLE(name) dtable_check(&c->sregs.name, n);
	SNAP_SREGS_SEGMENTS(CHECK_SEGMENT)
	SNAP_SREGS_DTABLES(CHECK_DTABLE)
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(c->sregs.interrupt_bitmap[k], val_U64(++*n));
	fpu_check(&c->fpu, n);
	assert_pattern(&c->fpu.fpr[0][0], sizeof(c->fpu.fpr), 0x30 + i);
	assert_pattern(&c->fpu.xmm[0][0], sizeof(c->fpu.xmm), 0x40 + i);
	assert_int_equal(c->xsave_size, XSAVE_SIZE);
	assert_pattern(c->xsave, c->xsave_size, 0x10 + i);
	assert_pattern(c->lapic, sizeof(c->lapic), 0x20 + i);
	assert_int_equal(c->n_xcrs, N_XCRS);
	for (unsigned k = 0; k < N_XCRS; k++)
		xcr_check(&c->xcrs[k], n);
	assert_int_equal(c->n_msrs, N_MSRS);
	for (unsigned k = 0; k < N_MSRS; k++)
		msr_check(&c->msrs[k], n);
	assert_int_equal(c->n_cpuid, N_CPUID);
	for (unsigned k = 0; k < N_CPUID; k++)
		cpuid_entry_check(&c->cpuid[k], n);
	events_check(&c->events, n);
	debugregs_check(&c->debugregs, n);
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(c->debugregs.db[k], val_U64(++*n));
}

/* Every known field of every message of a future state.bin comes through. */
static void test_state_from_future(void **unused)
{
	struct snap_state *s = decode_future_state();
	unsigned seq = VM_SEQ, *n = &seq;

	assert_int_equal(s->n_vcpus, N_VCPUS);
	for (unsigned i = 0; i < N_VCPUS; i++)
		check_vcpu(&s->vcpus[i], i);
	assert_true(s->has_pic);
	pic_check(&s->pic_master, n);
	pic_check(&s->pic_slave, n);
	assert_true(s->has_ioapic);
	ioapic_check(&s->ioapic, n);
	for (unsigned k = 0; k < SNAP_IOAPIC_PINS; k++)
		assert_int_equal(s->ioapic.redirtbl[k], val_U64(++*n));
	assert_true(s->has_pit);
	for (unsigned k = 0; k < SNAP_PIT_CHANNELS; k++)
		pit_channel_check(&s->pit.channels[k], n);
	pit_check(&s->pit, n);
	assert_true(s->has_clock);
	clock_check(&s->clock, n);
	snap_state_free(s);
}

/* Device payloads are kept verbatim; a future UART payload decodes. */
static void test_devices_from_future(void **unused)
{
	struct snap_state *s = decode_future_state();
	struct snap_err err = { "" };
	const struct snap_device *d;
	struct snap_uart8250 u;
	unsigned seq = VM_SEQ + 500, *n = &seq;
	int ret;

	assert_int_equal(s->n_devices, 2);
	d = snap_state_find_device(s, OTHER_NAME);
	assert_non_null(d);
	assert_int_equal(d->len, 300);
	assert_pattern(d->payload, d->len, 0x80);

	d = snap_state_find_device(s, UART_NAME);
	assert_non_null(d);
	ret = snap_uart8250_decode(d->payload, d->len, &u, &err);
	if (ret)
		fail_msg("snap_uart8250_decode: %d: %s", ret, err.msg);
	uart8250_check(&u, n);
	assert_int_equal(u.rx_len, 6);
	assert_memory_equal(u.rx_fifo, "future", 6);
	assert_true(u.thr_irq_pending);
	assert_true(u.irq_level);
	snap_state_free(s);
}

/* What we write back is read by the future: known fields, no new ones. */
static void test_future_reads_ours(void **unused)
{
	struct snap_state *s = decode_future_state();
	struct snap_err err = { "" };
	Future__State__VmState *pb;
	Future__State__Vcpu *v;
	Future__State__Uart8250 *u;
	uint8_t *buf;
	size_t len;
	int ret;

	ret = snap_state_encode(s, &buf, &len, &err);
	if (ret)
		fail_msg("snap_state_encode: %d: %s", ret, err.msg);
	pb = future__state__vm_state__unpack(NULL, len, buf);
	assert_non_null(pb);
	assert_int_equal(pb->n_vcpus, N_VCPUS);
	v = pb->vcpus[1];
	assert_int_equal(v->id, s->vcpus[1].id);
	assert_int_equal(v->regs->rip, s->vcpus[1].regs.rip);
	assert_int_equal(v->regs->n_egprs, 0);
	assert_int_equal(v->sregs->tr->selector, s->vcpus[1].sregs.tr.selector);
	assert_false(v->sregs->tr->future_flag);
	assert_int_equal(v->sregs->idt->limit, s->vcpus[1].sregs.idt.limit);
	assert_int_equal(v->fpu->xmm.len, sizeof(s->vcpus[1].fpu.xmm));
	assert_memory_equal(v->fpu->xmm.data, s->vcpus[1].fpu.xmm,
			    v->fpu->xmm.len);
	assert_int_equal(v->fpu->ymmh.len, 0);
	assert_int_equal(v->events->exception_payload,
			 s->vcpus[1].events.exception_payload);
	assert_null(v->events->future_pending);
	assert_null(v->nested);
	assert_int_equal(v->n_future_tags, 0);
	assert_int_equal(pb->pit->channels[2]->count_load_time,
			 s->pit.channels[2].count_load_time);
	assert_int_equal(pb->mode, FUTURE__STATE__MODE__MODE_UNSPECIFIED);
	assert_string_equal(pb->future_comment, "");
	/* The UART payload went through as bytes: its new field survives. */
	assert_int_equal(pb->n_devices, 2);
	assert_string_equal(pb->devices[0]->name, UART_NAME);
	u = future__state__uart8250__unpack(NULL, pb->devices[0]->payload.len,
					    pb->devices[0]->payload.data);
	assert_non_null(u);
	assert_int_equal(u->future_efr, 0xbf);
	assert_int_equal(u->tx_fifo.len, 5);
	future__state__uart8250__free_unpacked(u, NULL);
	future__state__vm_state__free_unpacked(pb, NULL);
	free(buf);
	snap_state_free(s);
}

/* ---- manifest.bin ------------------------------------------------------- */

#define MEM_LOW		(2ull << 20)
#define MEM_HIGH	(6ull << 20)

struct future_manifest {
	Future__Manifest__SnapshotManifest pb;
	Future__Manifest__Producer producer;
	Future__Manifest__MemoryRegion regions[2], *region_ptrs[2];
	Future__Manifest__Signature sig, *sig_ptrs[1];
	uint8_t id[SNAP_ID_LEN], parent_id[SNAP_ID_LEN];
	uint8_t state_sha256[SNAP_DIGEST_LEN], memory_sha256[SNAP_DIGEST_LEN];
	uint8_t key_id[8], signature[64], blob[40];
	uint64_t words[3];
	char *compatible[2], *required[1];
};

static void fill_manifest(struct future_manifest *fm)
{
	Future__Manifest__SnapshotManifest *pb = &fm->pb;

	future__manifest__snapshot_manifest__init(pb);
	pattern(fm->id, sizeof(fm->id), 1);
	pb->id = bin(fm->id, sizeof(fm->id));
	future__manifest__producer__init(&fm->producer);
	fm->producer.name = "snapvm";
	fm->producer.version = "9.0-future";
	fm->producer.build_host = "builder.example";
	pb->producer = &fm->producer;
	pb->arch = "x86_64";
	pb->page_size = SNAP_PAGE_SIZE;
	pb->vcpu_count = N_VCPUS;
	for (unsigned k = 0; k < 2; k++) {
		future__manifest__memory_region__init(&fm->regions[k]);
		fm->regions[k].numa_node = k + 1;
		fm->regions[k].read_only = true;
		fm->region_ptrs[k] = &fm->regions[k];
	}
	fm->regions[0].guest_phys_addr = 0;
	fm->regions[0].size = MEM_LOW;
	fm->regions[0].file_offset = 0;
	fm->regions[1].guest_phys_addr = 4ull << 30;
	fm->regions[1].size = MEM_HIGH;
	fm->regions[1].file_offset = MEM_LOW;
	pb->n_regions = 2;
	pb->regions = fm->region_ptrs;
	pattern(fm->parent_id, sizeof(fm->parent_id), 2);
	pb->parent_id = bin(fm->parent_id, sizeof(fm->parent_id));
	pb->parent_hint = "/snapshots/base";
	pb->created_unix_ns = 1700000000123456789ull;
	pattern(fm->state_sha256, sizeof(fm->state_sha256), 3);
	pb->state_sha256 = bin(fm->state_sha256, sizeof(fm->state_sha256));
	pb->state_size = 123457;
	pb->memory_size = MEM_LOW + MEM_HIGH;
	pattern(fm->memory_sha256, sizeof(fm->memory_sha256), 4);
	pb->memory_sha256 = bin(fm->memory_sha256, sizeof(fm->memory_sha256));
	fm->compatible[0] = "zero-pages-elided";
	fm->compatible[1] = "future-thing";
	pb->n_compatible_features = 2;
	pb->compatible_features = fm->compatible;
	pb->cmdline = "console=ttyS0 quiet";

	future__manifest__signature__init(&fm->sig);
	fm->sig.algorithm = "ed25519";
	pattern(fm->key_id, sizeof(fm->key_id), 5);
	fm->sig.key_id = bin(fm->key_id, sizeof(fm->key_id));
	pattern(fm->signature, sizeof(fm->signature), 6);
	fm->sig.signature = bin(fm->signature, sizeof(fm->signature));
	fm->sig_ptrs[0] = &fm->sig;
	pb->n_signatures = 1;
	pb->signatures = fm->sig_ptrs;
	pb->clock_skew_ns = -4242;
	pattern(fm->blob, sizeof(fm->blob), 7);
	pb->future_blob = bin(fm->blob, sizeof(fm->blob));
	fm->words[0] = 1;
	fm->words[1] = 1ull << 40;
	fm->words[2] = UINT64_MAX;
	pb->n_future_words = 3;
	pb->future_words = fm->words;
	pb->encrypted = true;
}

/* Pack with the checksum trailer appended exactly as manifest.c does. */
static uint8_t *pack_manifest(const struct future_manifest *fm, size_t *len)
{
	size_t body = future__manifest__snapshot_manifest__get_packed_size(&fm->pb);
	uint8_t *buf = malloc(body + SNAP_TRAILER_LEN);

	assert_non_null(buf);
	assert_int_equal(future__manifest__snapshot_manifest__pack(&fm->pb, buf),
			 body);
	buf[body] = SNAP_TRAILER_TAG;
	buf[body + 1] = SNAP_DIGEST_LEN;
	snap_sha256(buf, body, buf + body + 2);
	*len = body + SNAP_TRAILER_LEN;
	return buf;
}

static void test_manifest_from_future(void **unused)
{
	struct future_manifest fm;
	struct snap_manifest m;
	struct snap_err err = { "" };
	size_t len;
	uint8_t *buf;
	int ret;

	fill_manifest(&fm);
	buf = pack_manifest(&fm, &len);
	ret = snap_manifest_decode(buf, len, &m, &err);
	if (ret)
		fail_msg("snap_manifest_decode: %d: %s", ret, err.msg);
	assert_memory_equal(m.id, fm.id, SNAP_ID_LEN);
	assert_string_equal(m.producer_name, "snapvm");
	assert_string_equal(m.producer_version, "9.0-future");
	assert_string_equal(m.arch, "x86_64");
	assert_int_equal(m.page_size, SNAP_PAGE_SIZE);
	assert_int_equal(m.vcpu_count, N_VCPUS);
	assert_int_equal(m.n_regions, 2);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, MEM_LOW);
	assert_int_equal(m.regions[0].offset, 0);
	assert_int_equal(m.regions[1].gpa, 4ull << 30);
	assert_int_equal(m.regions[1].size, MEM_HIGH);
	assert_int_equal(m.regions[1].offset, MEM_LOW);
	assert_true(m.has_parent);
	assert_memory_equal(m.parent_id, fm.parent_id, SNAP_ID_LEN);
	assert_non_null(m.parent_hint);
	assert_string_equal(m.parent_hint, "/snapshots/base");
	assert_int_equal(m.created_unix_ns, 1700000000123456789ull);
	assert_memory_equal(m.state_sha256, fm.state_sha256, SNAP_DIGEST_LEN);
	assert_int_equal(m.state_size, 123457);
	assert_int_equal(m.memory_size, MEM_LOW + MEM_HIGH);
	assert_true(m.has_memory_sha256);
	assert_memory_equal(m.memory_sha256, fm.memory_sha256,
			    SNAP_DIGEST_LEN);
	assert_int_equal(m.n_required, 0);
	assert_int_equal(m.n_compatible, 2);
	assert_string_equal(m.compatible_features[0], "zero-pages-elided");
	assert_string_equal(m.compatible_features[1], "future-thing");
	assert_non_null(m.cmdline);
	assert_string_equal(m.cmdline, "console=ttyS0 quiet");
	snap_manifest_release(&m);
	free(buf);
}

/* A required feature this build does not know is refused by name. */
static void test_manifest_future_required(void **unused)
{
	struct future_manifest fm;
	struct snap_manifest m;
	struct snap_err err = { "" };
	size_t len;
	uint8_t *buf;

	fill_manifest(&fm);
	fm.required[0] = "future-required-thing";
	fm.pb.n_required_features = 1;
	fm.pb.required_features = fm.required;
	buf = pack_manifest(&fm, &len);
	assert_int_equal(snap_manifest_decode(buf, len, &m, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "\"future-required-thing\""));
	assert_null(m.required_features);
	assert_null(m.compatible_features);
	free(buf);
}

/* The checksum covers the fields this build skips, too. */
static void test_manifest_future_checksum(void **unused)
{
	struct future_manifest fm;
	struct snap_manifest m;
	struct snap_err err = { "" };
	size_t len;
	uint8_t *buf, *blob;

	fill_manifest(&fm);
	buf = pack_manifest(&fm, &len);
	blob = memmem(buf, len, fm.blob, sizeof(fm.blob));
	assert_non_null(blob);
	blob[sizeof(fm.blob) / 2] ^= 0x01;
	assert_int_equal(snap_manifest_decode(buf, len, &m, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "checksum"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schemas_extend_ours),
		cmocka_unit_test(test_state_from_future),
		cmocka_unit_test(test_devices_from_future),
		cmocka_unit_test(test_future_reads_ours),
		cmocka_unit_test(test_manifest_from_future),
		cmocka_unit_test(test_manifest_future_required),
		cmocka_unit_test(test_manifest_future_checksum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
