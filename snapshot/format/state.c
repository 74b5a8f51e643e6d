/* SPDX-License-Identifier: MIT */
/*
 * state.bin codec. The only file that sees the protobuf-c state types.
 *
 * Each KVM structure has one field list in state.h; DEFINE_CODEC below turns
 * a list into a to_pb copy and a from_pb copy that range-checks every field
 * narrower than its wire type.
 */
#include "snapshot/format/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/state.pb-c.h"

#define CTX_MAX 96
#define VCTX_MAX 24	/* "vcpu N" */

/* ---- field conversion --------------------------------------------------- */

static int out_of_range(const char *ctx, const char *field, uint64_t v,
			uint64_t max, struct snap_err *err)
{
	return snap_err_set(err, -EINVAL, "state.bin: %s.%s: %llu, at most "
			    "%llu expected", ctx, field, (unsigned long long)v,
			    (unsigned long long)max);
}

#define DEFINE_GET_NARROW(kind, ctype, max)				\
static int get_##kind(uint32_t v, ctype *dst, const char *ctx,		\
		      const char *field, struct snap_err *err)		\
{									\
	if (v > (max))							\
		return out_of_range(ctx, field, v, (max), err);		\
	*dst = (ctype)v;						\
	return 0;							\
}
DEFINE_GET_NARROW(U8, uint8_t, UINT8_MAX)
DEFINE_GET_NARROW(U16, uint16_t, UINT16_MAX)
DEFINE_GET_NARROW(U32, uint32_t, UINT32_MAX)

static int get_U64(uint64_t v, uint64_t *dst, const char *ctx,
		   const char *field, struct snap_err *err)
{
	*dst = v;
	return 0;
}

static int get_S64(int64_t v, int64_t *dst, const char *ctx,
		   const char *field, struct snap_err *err)
{
	*dst = v;
	return 0;
}

#define PUT(kind, name) pb->name = c->name;
#define GET(kind, name)							\
	if (!ret)							\
		ret = get_##kind(pb->name, &c->name, ctx, #name, err);

#define DEFINE_CODEC(cname, pbtype, FIELDS)				\
static void cname##_to_pb(const struct snap_##cname *c, pbtype *pb)	\
{									\
	FIELDS(PUT)							\
}									\
static int cname##_from_pb(const pbtype *pb, struct snap_##cname *c,	\
			   const char *ctx, struct snap_err *err)	\
{									\
	int ret = 0;							\
	FIELDS(GET)							\
	return ret;							\
}

DEFINE_CODEC(regs, Snapfs__State__Regs, SNAP_REGS_FIELDS)
DEFINE_CODEC(segment, Snapfs__State__Segment, SNAP_SEGMENT_FIELDS)
DEFINE_CODEC(dtable, Snapfs__State__DescriptorTable, SNAP_DTABLE_FIELDS)
DEFINE_CODEC(sregs, Snapfs__State__Sregs, SNAP_SREGS_FIELDS)
DEFINE_CODEC(fpu, Snapfs__State__Fpu, SNAP_FPU_FIELDS)
DEFINE_CODEC(events, Snapfs__State__VcpuEvents, SNAP_EVENTS_FIELDS)
DEFINE_CODEC(debugregs, Snapfs__State__DebugRegs, SNAP_DEBUGREGS_FIELDS)
DEFINE_CODEC(cpuid_entry, Snapfs__State__CpuidEntry, SNAP_CPUID_FIELDS)
DEFINE_CODEC(xcr, Snapfs__State__Xcr, SNAP_XCR_FIELDS)
DEFINE_CODEC(msr, Snapfs__State__Msr, SNAP_MSR_FIELDS)
DEFINE_CODEC(pic, Snapfs__State__Pic, SNAP_PIC_FIELDS)
DEFINE_CODEC(ioapic, Snapfs__State__Ioapic, SNAP_IOAPIC_FIELDS)
DEFINE_CODEC(pit_channel, Snapfs__State__PitChannel, SNAP_PIT_CHANNEL_FIELDS)
DEFINE_CODEC(pit, Snapfs__State__Pit, SNAP_PIT_FIELDS)
DEFINE_CODEC(clock, Snapfs__State__Clock, SNAP_CLOCK_FIELDS)
DEFINE_CODEC(uart8250, Snapfs__State__Uart8250, SNAP_UART_FIELDS)

/* ---- ownership ---------------------------------------------------------- */

struct snap_state *snap_state_new(uint32_t n_vcpus)
{
	struct snap_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (n_vcpus) {
		s->vcpus = calloc(n_vcpus, sizeof(*s->vcpus));
		if (!s->vcpus) {
			free(s);
			return NULL;
		}
	}
	s->n_vcpus = n_vcpus;
	for (uint32_t i = 0; i < n_vcpus; i++)
		s->vcpus[i].id = i;
	return s;
}

void snap_state_free(struct snap_state *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->n_vcpus; i++) {
		free(s->vcpus[i].xsave);
		free(s->vcpus[i].msrs);
		free(s->vcpus[i].cpuid);
	}
	for (uint32_t i = 0; i < s->n_devices; i++)
		free(s->devices[i].payload);
	free(s->vcpus);
	free(s->devices);
	free(s);
}

int snap_vcpu_reserve(struct snap_vcpu *v, uint32_t xsave_size,
		      uint32_t n_msrs, uint32_t n_cpuid)
{
	uint8_t *xsave = NULL;
	struct snap_msr *msrs = NULL;
	struct snap_cpuid_entry *cpuid = NULL;

	if ((xsave_size && (xsave_size < SNAP_XSAVE_MIN ||
			    xsave_size > SNAP_XSAVE_MAX)) ||
	    n_msrs > SNAP_MAX_MSRS || n_cpuid > SNAP_MAX_CPUID)
		return -EINVAL;
	if ((xsave_size && !(xsave = calloc(1, xsave_size))) ||
	    (n_msrs && !(msrs = calloc(n_msrs, sizeof(*msrs)))) ||
	    (n_cpuid && !(cpuid = calloc(n_cpuid, sizeof(*cpuid))))) {
		free(xsave);
		free(msrs);
		free(cpuid);
		return -ENOMEM;
	}
	free(v->xsave);
	free(v->msrs);
	free(v->cpuid);
	v->xsave = xsave;
	v->xsave_size = xsave_size;
	v->msrs = msrs;
	v->n_msrs = n_msrs;
	v->cpuid = cpuid;
	v->n_cpuid = n_cpuid;
	return 0;
}

int snap_state_add_device(struct snap_state *s, const char *name,
			  const void *payload, size_t len)
{
	struct snap_device *grown, *d;
	uint8_t *copy;

	if (!name[0] || strlen(name) >= SNAP_NAME_MAX ||
	    len > SNAP_DEVICE_MAX || s->n_devices >= SNAP_MAX_DEVICES)
		return -EINVAL;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	grown = realloc(s->devices, (s->n_devices + 1) * sizeof(*grown));
	if (!grown) {
		free(copy);
		return -ENOMEM;
	}
	s->devices = grown;
	d = &grown[s->n_devices++];
	memset(d, 0, sizeof(*d));
	strcpy(d->name, name);
	if (len)
		memcpy(copy, payload, len);
	d->payload = copy;
	d->len = len;
	return 0;
}

const struct snap_device *snap_state_find_device(const struct snap_state *s,
						 const char *name)
{
	for (uint32_t i = 0; i < s->n_devices; i++)
		if (!strcmp(s->devices[i].name, name))
			return &s->devices[i];
	return NULL;
}

/* ---- validation --------------------------------------------------------- */

#define FAIL(...) snap_err_set(err, -EINVAL, "state.bin: " __VA_ARGS__)

static int validate_vcpu(const struct snap_vcpu *v, uint32_t i,
			 struct snap_err *err)
{
	if (v->id >= SNAP_MAX_VCPUS)
		return FAIL("vcpu %u: id %u, below %u expected", i, v->id,
			    SNAP_MAX_VCPUS);
	if (v->xsave_size && (v->xsave_size < SNAP_XSAVE_MIN ||
			      v->xsave_size > SNAP_XSAVE_MAX))
		return FAIL("vcpu %u: xsave: %u bytes, %u to %u expected", i,
			    v->xsave_size, SNAP_XSAVE_MIN, SNAP_XSAVE_MAX);
	if (v->n_xcrs > SNAP_MAX_XCRS)
		return FAIL("vcpu %u: xcrs: %u, at most %u expected", i,
			    v->n_xcrs, SNAP_MAX_XCRS);
	if (v->n_msrs > SNAP_MAX_MSRS)
		return FAIL("vcpu %u: msrs: %u, at most %u expected", i,
			    v->n_msrs, SNAP_MAX_MSRS);
	if (v->n_cpuid > SNAP_MAX_CPUID)
		return FAIL("vcpu %u: cpuid: %u entries, at most %u expected",
			    i, v->n_cpuid, SNAP_MAX_CPUID);
	if (v->mp_state > SNAP_MP_STATE_MAX)
		return FAIL("vcpu %u: mp_state: %u, at most %u expected", i,
			    v->mp_state, SNAP_MP_STATE_MAX);
	return 0;
}

int snap_state_validate(const struct snap_state *s, struct snap_err *err)
{
	int ret;

	if (s->n_vcpus < 1 || s->n_vcpus > SNAP_MAX_VCPUS)
		return FAIL("vcpus: %u, 1 to %u expected", s->n_vcpus,
			    SNAP_MAX_VCPUS);
	for (uint32_t i = 0; i < s->n_vcpus; i++) {
		ret = validate_vcpu(&s->vcpus[i], i, err);
		if (ret)
			return ret;
		for (uint32_t j = 0; j < i; j++)
			if (s->vcpus[j].id == s->vcpus[i].id)
				return FAIL("vcpu %u: id %u already used by "
					    "vcpu %u", i, s->vcpus[i].id, j);
	}
	if (s->n_devices > SNAP_MAX_DEVICES)
		return FAIL("devices: %u, at most %u expected", s->n_devices,
			    SNAP_MAX_DEVICES);
	for (uint32_t i = 0; i < s->n_devices; i++) {
		const struct snap_device *d = &s->devices[i];

		if (!d->name[0] || strnlen(d->name, SNAP_NAME_MAX) >= SNAP_NAME_MAX)
			return FAIL("device %u: name empty or too long", i);
		if (d->len > SNAP_DEVICE_MAX)
			return FAIL("device %s: payload %zu bytes, at most %u "
				    "expected", d->name, d->len,
				    SNAP_DEVICE_MAX);
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(s->devices[j].name, d->name))
				return FAIL("device %s: name used twice",
					    d->name);
	}
	return 0;
}

/* ---- encoding ----------------------------------------------------------- */

/*
 * Every protobuf-c object built for one encode comes from this arena and
 * goes back in one call.
 */
struct arena {
	void **ptrs;
	size_t n, cap;
	bool failed;
};

static void *arena_alloc(struct arena *a, size_t n, size_t size)
{
	void *p;

	if (a->failed)
		return NULL;
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;
		void **grown = realloc(a->ptrs, cap * sizeof(*grown));

		if (!grown)
			goto fail;
		a->ptrs = grown;
		a->cap = cap;
	}
	p = calloc(n ? n : 1, size);
	if (!p)
		goto fail;
	a->ptrs[a->n++] = p;
	return p;
fail:
	a->failed = true;
	return NULL;
}

static void arena_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->ptrs[i]);
	free(a->ptrs);
}

#define NEW(a, type, init) ({					\
	type *p_ = arena_alloc((a), 1, sizeof(type));		\
	if (p_)							\
		init(p_);					\
	p_; })

static ProtobufCBinaryData bin(const void *p, size_t n)
{
	return (ProtobufCBinaryData){ .len = n, .data = (uint8_t *)p };
}

static Snapfs__State__Sregs *sregs_build(struct arena *a,
					 const struct snap_sregs *c)
{
	Snapfs__State__Sregs *pb = NEW(a, Snapfs__State__Sregs,
				       snapfs__state__sregs__init);

	if (!pb)
		return NULL;
	sregs_to_pb(c, pb);
#define BUILD_SEGMENT(name)						\
	pb->name = NEW(a, Snapfs__State__Segment, snapfs__state__segment__init); \
	if (pb->name)							\
		segment_to_pb(&c->name, pb->name);
#define BUILD_DTABLE(name)						\
	pb->name = NEW(a, Snapfs__State__DescriptorTable,		\
		       snapfs__state__descriptor_table__init);		\
	if (pb->name)							\
		dtable_to_pb(&c->name, pb->name);
	SNAP_SREGS_SEGMENTS(BUILD_SEGMENT)
	SNAP_SREGS_DTABLES(BUILD_DTABLE)
#undef BUILD_SEGMENT
#undef BUILD_DTABLE
	pb->n_interrupt_bitmap = 4;
	pb->interrupt_bitmap = (uint64_t *)c->interrupt_bitmap;
	return pb;
}

/* Build n repeated sub-messages from an array of our structs. */
#define BUILD_ARRAY(a, pbtype, init, to_pb, src, n) ({			\
	pbtype **ptrs_ = arena_alloc((a), (n), sizeof(pbtype *));	\
	pbtype *msgs_ = arena_alloc((a), (n), sizeof(pbtype));		\
	for (size_t i_ = 0; ptrs_ && msgs_ && i_ < (n); i_++) {		\
		init(&msgs_[i_]);					\
		to_pb(&(src)[i_], &msgs_[i_]);				\
		ptrs_[i_] = &msgs_[i_];					\
	}								\
	ptrs_; })

static Snapfs__State__Vcpu *vcpu_build(struct arena *a,
				       const struct snap_vcpu *c)
{
	Snapfs__State__Vcpu *pb = NEW(a, Snapfs__State__Vcpu,
				      snapfs__state__vcpu__init);

	if (!pb)
		return NULL;
	pb->id = c->id;
	pb->regs = NEW(a, Snapfs__State__Regs, snapfs__state__regs__init);
	if (pb->regs)
		regs_to_pb(&c->regs, pb->regs);
	pb->sregs = sregs_build(a, &c->sregs);
	pb->fpu = NEW(a, Snapfs__State__Fpu, snapfs__state__fpu__init);
	if (pb->fpu) {
		fpu_to_pb(&c->fpu, pb->fpu);
		pb->fpu->fpr = bin(c->fpu.fpr, sizeof(c->fpu.fpr));
		pb->fpu->xmm = bin(c->fpu.xmm, sizeof(c->fpu.xmm));
	}
	pb->xsave = bin(c->xsave, c->xsave_size);
	pb->n_xcrs = c->n_xcrs;
	pb->xcrs = BUILD_ARRAY(a, Snapfs__State__Xcr, snapfs__state__xcr__init,
			       xcr_to_pb, c->xcrs, c->n_xcrs);
	pb->n_msrs = c->n_msrs;
	pb->msrs = BUILD_ARRAY(a, Snapfs__State__Msr, snapfs__state__msr__init,
			       msr_to_pb, c->msrs, c->n_msrs);
	pb->lapic = bin(c->lapic, sizeof(c->lapic));
	pb->events = NEW(a, Snapfs__State__VcpuEvents,
			 snapfs__state__vcpu_events__init);
	if (pb->events)
		events_to_pb(&c->events, pb->events);
	pb->mp_state = c->mp_state;
	pb->debugregs = NEW(a, Snapfs__State__DebugRegs,
			    snapfs__state__debug_regs__init);
	if (pb->debugregs) {
		debugregs_to_pb(&c->debugregs, pb->debugregs);
		pb->debugregs->n_db = 4;
		pb->debugregs->db = (uint64_t *)c->debugregs.db;
	}
	pb->n_cpuid = c->n_cpuid;
	pb->cpuid = BUILD_ARRAY(a, Snapfs__State__CpuidEntry,
				snapfs__state__cpuid_entry__init,
				cpuid_entry_to_pb, c->cpuid, c->n_cpuid);
	pb->tsc_khz = c->tsc_khz;
	return pb;
}

static Snapfs__State__Pic *pic_build(struct arena *a, const struct snap_pic *c)
{
	Snapfs__State__Pic *pb = NEW(a, Snapfs__State__Pic,
				     snapfs__state__pic__init);

	if (pb)
		pic_to_pb(c, pb);
	return pb;
}

static void vm_build(struct arena *a, const struct snap_state *s,
		     Snapfs__State__VmState *pb)
{
	pb->n_vcpus = s->n_vcpus;
	pb->vcpus = arena_alloc(a, s->n_vcpus, sizeof(*pb->vcpus));
	for (uint32_t i = 0; pb->vcpus && i < s->n_vcpus; i++)
		pb->vcpus[i] = vcpu_build(a, &s->vcpus[i]);
	if (s->has_pic) {
		pb->pic_master = pic_build(a, &s->pic_master);
		pb->pic_slave = pic_build(a, &s->pic_slave);
	}
	if (s->has_ioapic) {
		pb->ioapic = NEW(a, Snapfs__State__Ioapic,
				 snapfs__state__ioapic__init);
		if (pb->ioapic) {
			ioapic_to_pb(&s->ioapic, pb->ioapic);
			pb->ioapic->n_redirtbl = SNAP_IOAPIC_PINS;
			pb->ioapic->redirtbl = (uint64_t *)s->ioapic.redirtbl;
		}
	}
	if (s->has_pit) {
		pb->pit = NEW(a, Snapfs__State__Pit, snapfs__state__pit__init);
		if (pb->pit) {
			pit_to_pb(&s->pit, pb->pit);
			pb->pit->n_channels = SNAP_PIT_CHANNELS;
			pb->pit->channels = BUILD_ARRAY(a,
				Snapfs__State__PitChannel,
				snapfs__state__pit_channel__init,
				pit_channel_to_pb, s->pit.channels,
				SNAP_PIT_CHANNELS);
		}
	}
	if (s->has_clock) {
		pb->clock = NEW(a, Snapfs__State__Clock,
				snapfs__state__clock__init);
		if (pb->clock)
			clock_to_pb(&s->clock, pb->clock);
	}
	pb->n_devices = s->n_devices;
	pb->devices = arena_alloc(a, s->n_devices, sizeof(*pb->devices));
	for (uint32_t i = 0; pb->devices && i < s->n_devices; i++) {
		Snapfs__State__Device *d = NEW(a, Snapfs__State__Device,
					       snapfs__state__device__init);

		if (!d)
			break;
		d->name = (char *)s->devices[i].name;
		d->payload = bin(s->devices[i].payload, s->devices[i].len);
		pb->devices[i] = d;
	}
}

int snap_state_encode(const struct snap_state *s, uint8_t **bufp,
		      size_t *lenp, struct snap_err *err)
{
	Snapfs__State__VmState pb = SNAPFS__STATE__VM_STATE__INIT;
	struct arena a = { 0 };
	uint8_t *buf;
	size_t len;
	int ret;

	ret = snap_state_validate(s, err);
	if (ret)
		return ret;
	vm_build(&a, s, &pb);
	if (a.failed) {
		ret = snap_err_set(err, -ENOMEM, "state.bin: out of memory");
		goto out;
	}
	len = snapfs__state__vm_state__get_packed_size(&pb);
	buf = malloc(len ? len : 1);
	if (!buf) {
		ret = snap_err_set(err, -ENOMEM, "state.bin: out of memory");
		goto out;
	}
	snapfs__state__vm_state__pack(&pb, buf);
	*bufp = buf;
	*lenp = len;
out:
	arena_free(&a);
	return ret;
}

/* ---- decoding ----------------------------------------------------------- */

static int need(const void *part, const char *ctx, const char *what,
		struct snap_err *err)
{
	if (part)
		return 0;
	return snap_err_set(err, -EINVAL, "state.bin: %s: %s missing", ctx,
			    what);
}

static int copy_exact(void *dst, ProtobufCBinaryData b, size_t want,
		      const char *ctx, const char *what, struct snap_err *err)
{
	if (b.len != want)
		return snap_err_set(err, -EINVAL, "state.bin: %s: %s: %zu bytes, "
				    "%zu expected", ctx, what, b.len, want);
	memcpy(dst, b.data, want);
	return 0;
}

/* A fixed array of words: absent means zeros, otherwise exactly n. */
static int copy_words(uint64_t *dst, const uint64_t *src, size_t nsrc,
		      size_t n, const char *ctx, const char *what,
		      struct snap_err *err)
{
	if (nsrc != 0 && nsrc != n)
		return snap_err_set(err, -EINVAL, "state.bin: %s: %s: %zu "
				    "entries, %zu expected", ctx, what, nsrc, n);
	if (nsrc)
		memcpy(dst, src, n * sizeof(*dst));
	return 0;
}

static int sregs_from(const Snapfs__State__Sregs *pb, struct snap_sregs *c,
		      const char *vctx, struct snap_err *err)
{
	char ctx[CTX_MAX];
	int ret;

	snprintf(ctx, sizeof(ctx), "%s: sregs", vctx);
	ret = sregs_from_pb(pb, c, ctx, err);
#define FROM_SEGMENT(name)						\
	if (!ret) {							\
		snprintf(ctx, sizeof(ctx), "%s: sregs." #name, vctx);	\
		ret = need(pb->name, ctx, "segment", err);		\
		if (!ret)						\
			ret = segment_from_pb(pb->name, &c->name, ctx, err); \
	}
#define FROM_DTABLE(name)						\
	if (!ret) {							\
		snprintf(ctx, sizeof(ctx), "%s: sregs." #name, vctx);	\
		ret = need(pb->name, ctx, "table", err);		\
		if (!ret)						\
			ret = dtable_from_pb(pb->name, &c->name, ctx, err); \
	}
	SNAP_SREGS_SEGMENTS(FROM_SEGMENT)
	SNAP_SREGS_DTABLES(FROM_DTABLE)
#undef FROM_SEGMENT
#undef FROM_DTABLE
	if (!ret)
		ret = copy_words(c->interrupt_bitmap, pb->interrupt_bitmap,
				 pb->n_interrupt_bitmap, 4, vctx,
				 "sregs.interrupt_bitmap", err);
	return ret;
}

/* Copy n repeated sub-messages into a new array of our structs. */
#define FROM_ARRAY(dst, ndst, src, nsrc, max, from_pb, ctx, what) ({	\
	int r_ = 0;							\
	if ((nsrc) > (max))						\
		r_ = snap_err_set(err, -EINVAL, "state.bin: %s: %s: %zu, " \
				  "at most %u expected", ctx, what,	\
				  (size_t)(nsrc), (unsigned)(max));	\
	for (size_t i_ = 0; !r_ && i_ < (nsrc); i_++)			\
		r_ = from_pb((src)[i_], &(dst)[i_], ctx, err);		\
	if (!r_)							\
		(ndst) = (uint32_t)(nsrc);				\
	r_; })

static int vcpu_from(const Snapfs__State__Vcpu *pb, struct snap_vcpu *c,
		     uint32_t i, struct snap_err *err)
{
	char ctx[VCTX_MAX], sub[CTX_MAX];
	int ret;

#define SUB(part) (snprintf(sub, sizeof(sub), "%s: " part, ctx), sub)
	snprintf(ctx, sizeof(ctx), "vcpu %u", i);
	c->id = pb->id;
	if ((ret = need(pb->regs, ctx, "regs", err)) ||
	    (ret = need(pb->sregs, ctx, "sregs", err)) ||
	    (ret = need(pb->fpu, ctx, "fpu", err)) ||
	    (ret = need(pb->events, ctx, "events", err)) ||
	    (ret = need(pb->debugregs, ctx, "debugregs", err)))
		return ret;
	if (pb->xsave.len && (pb->xsave.len < SNAP_XSAVE_MIN ||
			      pb->xsave.len > SNAP_XSAVE_MAX))
		return snap_err_set(err, -EINVAL, "state.bin: %s: xsave: %zu "
				    "bytes, %u to %u expected", ctx,
				    pb->xsave.len, SNAP_XSAVE_MIN,
				    SNAP_XSAVE_MAX);
	if (pb->n_msrs > SNAP_MAX_MSRS || pb->n_cpuid > SNAP_MAX_CPUID)
		return snap_err_set(err, -EINVAL, "state.bin: %s: %zu msrs and "
				    "%zu cpuid entries, at most %u and %u "
				    "expected", ctx, pb->n_msrs, pb->n_cpuid,
				    SNAP_MAX_MSRS, SNAP_MAX_CPUID);
	ret = snap_vcpu_reserve(c, (uint32_t)pb->xsave.len,
				(uint32_t)pb->n_msrs, (uint32_t)pb->n_cpuid);
	if (ret)
		return snap_err_set(err, ret, "state.bin: %s: out of memory",
				    ctx);
	if (pb->xsave.len)
		memcpy(c->xsave, pb->xsave.data, pb->xsave.len);
	ret = regs_from_pb(pb->regs, &c->regs, SUB("regs"), err);
	if (!ret)
		ret = sregs_from(pb->sregs, &c->sregs, ctx, err);
	if (!ret)
		ret = fpu_from_pb(pb->fpu, &c->fpu, SUB("fpu"), err);
	if (!ret)
		ret = copy_exact(c->fpu.fpr, pb->fpu->fpr, sizeof(c->fpu.fpr),
				 ctx, "fpu.fpr", err);
	if (!ret)
		ret = copy_exact(c->fpu.xmm, pb->fpu->xmm, sizeof(c->fpu.xmm),
				 ctx, "fpu.xmm", err);
	if (!ret)
		ret = FROM_ARRAY(c->xcrs, c->n_xcrs, pb->xcrs, pb->n_xcrs,
				 SNAP_MAX_XCRS, xcr_from_pb, SUB("xcrs"), "count");
	if (!ret)
		ret = FROM_ARRAY(c->msrs, c->n_msrs, pb->msrs, pb->n_msrs,
				 SNAP_MAX_MSRS, msr_from_pb, SUB("msrs"), "count");
	if (!ret)
		ret = copy_exact(c->lapic, pb->lapic, sizeof(c->lapic), ctx,
				 "lapic", err);
	if (!ret)
		ret = events_from_pb(pb->events, &c->events, SUB("events"),
				     err);
	c->mp_state = pb->mp_state;
	if (!ret)
		ret = debugregs_from_pb(pb->debugregs, &c->debugregs,
					SUB("debugregs"), err);
	if (!ret)
		ret = copy_words(c->debugregs.db, pb->debugregs->db,
				 pb->debugregs->n_db, 4, ctx, "debugregs.db",
				 err);
	if (!ret)
		ret = FROM_ARRAY(c->cpuid, c->n_cpuid, pb->cpuid, pb->n_cpuid,
				 SNAP_MAX_CPUID, cpuid_entry_from_pb, SUB("cpuid"),
				 "count");
#undef SUB
	c->tsc_khz = pb->tsc_khz;
	return ret;
}

static int vm_from(const Snapfs__State__VmState *pb, struct snap_state *s,
		   struct snap_err *err)
{
	int ret = 0;

	for (uint32_t i = 0; !ret && i < s->n_vcpus; i++)
		ret = vcpu_from(pb->vcpus[i], &s->vcpus[i], i, err);
	if (ret)
		return ret;
	if (pb->pic_master || pb->pic_slave) {
		if ((ret = need(pb->pic_master, "pic", "master", err)) ||
		    (ret = need(pb->pic_slave, "pic", "slave", err)) ||
		    (ret = pic_from_pb(pb->pic_master, &s->pic_master,
				       "pic_master", err)) ||
		    (ret = pic_from_pb(pb->pic_slave, &s->pic_slave,
				       "pic_slave", err)))
			return ret;
		s->has_pic = true;
	}
	if (pb->ioapic) {
		if ((ret = ioapic_from_pb(pb->ioapic, &s->ioapic, "ioapic",
					  err)) ||
		    (ret = copy_words(s->ioapic.redirtbl, pb->ioapic->redirtbl,
				      pb->ioapic->n_redirtbl, SNAP_IOAPIC_PINS,
				      "ioapic", "redirtbl", err)))
			return ret;
		s->has_ioapic = true;
	}
	if (pb->pit) {
		uint32_t n = 0;

		if (pb->pit->n_channels != SNAP_PIT_CHANNELS)
			return snap_err_set(err, -EINVAL, "state.bin: pit: "
					    "channels: %zu, %u expected",
					    pb->pit->n_channels,
					    SNAP_PIT_CHANNELS);
		if ((ret = pit_from_pb(pb->pit, &s->pit, "pit", err)) ||
		    (ret = FROM_ARRAY(s->pit.channels, n, pb->pit->channels,
				      pb->pit->n_channels, SNAP_PIT_CHANNELS,
				      pit_channel_from_pb, "pit.channels",
				      "count")))
			return ret;
		(void)n;	/* always SNAP_PIT_CHANNELS, checked above */
		s->has_pit = true;
	}
	if (pb->clock) {
		ret = clock_from_pb(pb->clock, &s->clock, "clock", err);
		if (ret)
			return ret;
		s->has_clock = true;
	}
	if (pb->n_devices > SNAP_MAX_DEVICES)
		return snap_err_set(err, -EINVAL, "state.bin: devices: %zu, at "
				    "most %u expected", pb->n_devices,
				    SNAP_MAX_DEVICES);
	for (size_t i = 0; i < pb->n_devices; i++) {
		const Snapfs__State__Device *d = pb->devices[i];

		ret = snap_state_add_device(s, d->name, d->payload.data,
					    d->payload.len);
		if (ret == -EINVAL)
			return snap_err_set(err, ret, "state.bin: device %zu: "
					    "name empty or longer than %u "
					    "bytes, or payload over %u bytes",
					    i, SNAP_NAME_MAX - 1,
					    SNAP_DEVICE_MAX);
		if (ret)
			return snap_err_set(err, ret, "state.bin: out of "
					    "memory");
	}
	return 0;
}

int snap_state_decode(const uint8_t *buf, size_t len, struct snap_state **out,
		      struct snap_err *err)
{
	Snapfs__State__VmState *pb;
	struct snap_state *s;
	int ret;

	if (len > SNAP_STATE_MAX)
		return snap_err_set(err, -EFBIG, "state.bin: %zu bytes, at most "
				    "%u expected", len, SNAP_STATE_MAX);
	pb = snapfs__state__vm_state__unpack(NULL, len, buf);
	if (!pb)
		return snap_err_set(err, -EBADMSG,
				    "state.bin: not a valid VmState");
	if (pb->n_vcpus < 1 || pb->n_vcpus > SNAP_MAX_VCPUS) {
		ret = FAIL("vcpus: %zu, 1 to %u expected", pb->n_vcpus,
			   SNAP_MAX_VCPUS);
		goto out;
	}
	s = snap_state_new((uint32_t)pb->n_vcpus);
	if (!s) {
		ret = snap_err_set(err, -ENOMEM, "state.bin: out of memory");
		goto out;
	}
	ret = vm_from(pb, s, err);
	if (!ret)
		ret = snap_state_validate(s, err);
	if (ret)
		snap_state_free(s);
	else
		*out = s;
out:
	snapfs__state__vm_state__free_unpacked(pb, NULL);
	return ret;
}

/* ---- the 8250 UART's payload -------------------------------------------- */

int snap_uart8250_encode(const struct snap_uart8250 *c, uint8_t **bufp,
			 size_t *lenp)
{
	Snapfs__State__Uart8250 pb_ = SNAPFS__STATE__UART8250__INIT, *pb = &pb_;
	uint8_t *buf;
	size_t len;

	if (c->rx_len > SNAP_UART_FIFO_MAX)
		return -EINVAL;
	uart8250_to_pb(c, pb);
	pb->rx_fifo = bin(c->rx_fifo, c->rx_len);
	pb->thr_irq_pending = c->thr_irq_pending;
	pb->irq_level = c->irq_level;
	len = snapfs__state__uart8250__get_packed_size(pb);
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	snapfs__state__uart8250__pack(pb, buf);
	*bufp = buf;
	*lenp = len;
	return 0;
}

int snap_uart8250_decode(const uint8_t *buf, size_t len,
			 struct snap_uart8250 *c, struct snap_err *err)
{
	Snapfs__State__Uart8250 *pb;
	int ret;

	memset(c, 0, sizeof(*c));
	pb = snapfs__state__uart8250__unpack(NULL, len, buf);
	if (!pb)
		return snap_err_set(err, -EBADMSG,
				    "state.bin: uart8250: not a valid payload");
	ret = uart8250_from_pb(pb, c, "uart8250", err);
	if (!ret && pb->rx_fifo.len > SNAP_UART_FIFO_MAX)
		ret = snap_err_set(err, -EINVAL, "state.bin: uart8250: rx_fifo: "
				   "%zu bytes, at most %u expected",
				   pb->rx_fifo.len, SNAP_UART_FIFO_MAX);
	if (!ret) {
		if (pb->rx_fifo.len)
			memcpy(c->rx_fifo, pb->rx_fifo.data, pb->rx_fifo.len);
		c->rx_len = (uint32_t)pb->rx_fifo.len;
		c->thr_irq_pending = pb->thr_irq_pending;
		c->irq_level = pb->irq_level;
	}
	snapfs__state__uart8250__free_unpacked(pb, NULL);
	return ret;
}

/* ---- the MC146818 RTC's payload ----------------------------------------- */

static bool rtc_offset_ok(int64_t ns)
{
	return ns >= -SNAP_RTC_OFFSET_MAX && ns <= SNAP_RTC_OFFSET_MAX;
}

int snap_rtc_encode(const struct snap_rtc *c, uint8_t **bufp, size_t *lenp)
{
	Snapfs__State__Rtc pb = SNAPFS__STATE__RTC__INIT;
	uint8_t *buf;
	size_t len;

	if (!rtc_offset_ok(c->offset_ns) || c->index >= SNAP_RTC_CMOS_SIZE)
		return -EINVAL;
	pb.cmos = bin(c->cmos, sizeof(c->cmos));
	pb.offset_ns = c->offset_ns;
	pb.index = c->index;
	len = snapfs__state__rtc__get_packed_size(&pb);
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	snapfs__state__rtc__pack(&pb, buf);
	*bufp = buf;
	*lenp = len;
	return 0;
}

int snap_rtc_decode(const uint8_t *buf, size_t len, struct snap_rtc *c,
		    struct snap_err *err)
{
	Snapfs__State__Rtc *pb;
	int ret = 0;

	memset(c, 0, sizeof(*c));
	pb = snapfs__state__rtc__unpack(NULL, len, buf);
	if (!pb)
		return snap_err_set(err, -EBADMSG,
				    "state.bin: rtc: not a valid payload");
	if (pb->cmos.len != SNAP_RTC_CMOS_SIZE)
		ret = snap_err_set(err, -EINVAL, "state.bin: rtc: cmos: %zu "
				   "bytes, %u expected", pb->cmos.len,
				   SNAP_RTC_CMOS_SIZE);
	else if (!rtc_offset_ok(pb->offset_ns))
		ret = snap_err_set(err, -EINVAL, "state.bin: rtc: offset_ns: "
				   "%lld, at most %lld either way expected",
				   (long long)pb->offset_ns,
				   (long long)SNAP_RTC_OFFSET_MAX);
	else if (pb->index >= SNAP_RTC_CMOS_SIZE)
		ret = out_of_range("rtc", "index", pb->index,
				   SNAP_RTC_CMOS_SIZE - 1, err);
	if (!ret) {
		memcpy(c->cmos, pb->cmos.data, SNAP_RTC_CMOS_SIZE);
		c->offset_ns = pb->offset_ns;
		c->index = (uint8_t)pb->index;
	}
	snapfs__state__rtc__free_unpacked(pb, NULL);
	return ret;
}
