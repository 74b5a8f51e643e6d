/* SPDX-License-Identifier: MIT */
/*
 * The conversions between KVM's state structures and libsnap's (vstate.h),
 * generated from state.h's field lists, with every field's width checked
 * equal at compile time.
 */
#include "vmm/vstate.h"

#include <stddef.h>
#include <string.h>

_Static_assert(SNAP_IOAPIC_PINS == KVM_IOAPIC_NUM_PINS, "IOAPIC pins");
_Static_assert(SNAP_PIT_CHANNELS ==
	       sizeof(((struct kvm_pit_state2 *)0)->channels) /
	       sizeof(((struct kvm_pit_state2 *)0)->channels[0]),
	       "PIT channels");
_Static_assert(SNAP_MAX_XCRS == KVM_MAX_XCRS, "XCR count");

/*
 * KVM's spelling of a libsnap field, by structure, where the two differ;
 * KVM_NAME picks what follows the "~," when there is an entry and keeps
 * libsnap's name otherwise.
 */
#define KVM_NAME_segment_base_address		~, base
#define KVM_NAME_dtable_base_address		~, base
#define KVM_NAME_events_exception_injected	~, exception.injected
#define KVM_NAME_events_exception_nr		~, exception.nr
#define KVM_NAME_events_exception_has_error_code ~, exception.has_error_code
#define KVM_NAME_events_exception_pending	~, exception.pending
#define KVM_NAME_events_exception_error_code	~, exception.error_code
#define KVM_NAME_events_interrupt_injected	~, interrupt.injected
#define KVM_NAME_events_interrupt_nr		~, interrupt.nr
#define KVM_NAME_events_interrupt_soft		~, interrupt.soft
#define KVM_NAME_events_interrupt_shadow	~, interrupt.shadow
#define KVM_NAME_events_nmi_injected		~, nmi.injected
#define KVM_NAME_events_nmi_pending		~, nmi.pending
#define KVM_NAME_events_nmi_masked		~, nmi.masked
#define KVM_NAME_events_smi_smm			~, smi.smm
#define KVM_NAME_events_smi_pending		~, smi.pending
#define KVM_NAME_events_smi_smm_inside_nmi	~, smi.smm_inside_nmi
#define KVM_NAME_events_smi_latched_init	~, smi.latched_init
#define KVM_NAME_events_triple_fault_pending	~, triple_fault.pending
#define KVM_NAME_xcr_index			~, xcr
#define KVM_NAME_msr_value			~, data

#define SECOND(a, b, ...)	b
#define SECOND_OF(...)		SECOND(__VA_ARGS__)
#define KVM_NAME(st, name)	SECOND_OF(KVM_NAME_##st##_##name, name, ~)

/* One field of k (KVM) and s (libsnap), as XFER moves it. */
#define F_SAME(kind, name)	XFER(k->name, s->name)
#define F_SEGMENT(kind, name)	XFER(k->KVM_NAME(segment, name), s->name)
#define F_DTABLE(kind, name)	XFER(k->KVM_NAME(dtable, name), s->name)
#define F_EVENTS(kind, name)	XFER(k->KVM_NAME(events, name), s->name)
#define F_XCR(kind, name)	XFER(k->KVM_NAME(xcr, name), s->name)
#define F_MSR(kind, name)	XFER(k->KVM_NAME(msr, name), s->name)

/* libsnap's name, KVM's structure, the field list, how fields are named. */
#define CONVERSIONS(C)							\
	C(regs, kvm_regs, SNAP_REGS_FIELDS, F_SAME)			\
	C(segment, kvm_segment, SNAP_SEGMENT_FIELDS, F_SEGMENT)		\
	C(dtable, kvm_dtable, SNAP_DTABLE_FIELDS, F_DTABLE)		\
	C(sregs, kvm_sregs, SNAP_SREGS_FIELDS, F_SAME)			\
	C(fpu, kvm_fpu, SNAP_FPU_FIELDS, F_SAME)			\
	C(events, kvm_vcpu_events, SNAP_EVENTS_FIELDS, F_EVENTS)	\
	C(debugregs, kvm_debugregs, SNAP_DEBUGREGS_FIELDS, F_SAME)	\
	C(cpuid_entry, kvm_cpuid_entry2, SNAP_CPUID_FIELDS, F_SAME)	\
	C(xcr, kvm_xcr, SNAP_XCR_FIELDS, F_XCR)				\
	C(msr, kvm_msr_entry, SNAP_MSR_FIELDS, F_MSR)			\
	C(pic, kvm_pic_state, SNAP_PIC_FIELDS, F_SAME)			\
	C(ioapic, kvm_ioapic_state, SNAP_IOAPIC_FIELDS, F_SAME)		\
	C(pit_channel, kvm_pit_channel_state, SNAP_PIT_CHANNEL_FIELDS,	\
	  F_SAME)							\
	C(pit, kvm_pit_state2, SNAP_PIT_FIELDS, F_SAME)			\
	C(clock, kvm_clock_data, SNAP_CLOCK_FIELDS, F_SAME)

#define DEFINE_TO_SNAP(st, ktype, FIELDS, F)				\
static void st##_fields_to_snap(const struct ktype *k,			\
				struct snap_##st *s)			\
{									\
	FIELDS(F)							\
}
#define DEFINE_TO_KVM(st, ktype, FIELDS, F)				\
static void st##_fields_to_kvm(const struct snap_##st *s,		\
			       struct ktype *k)				\
{									\
	FIELDS(F)							\
}

/* Equal widths: no value can be cut short in either direction. */
#define XFER(kf, sf)							\
	_Static_assert(sizeof(kf) == sizeof(sf),			\
		       "KVM and libsnap widths differ: " #sf);		\
	sf = kf;
CONVERSIONS(DEFINE_TO_SNAP)
#undef XFER
#define XFER(kf, sf)	kf = sf;
CONVERSIONS(DEFINE_TO_KVM)
#undef XFER

/* The structures without arrays: their fields are all there is. */
#define DEFINE_PLAIN(name, st, ktype)					\
void vstate_##name##_to_snap(const struct ktype *k, struct snap_##st *s) \
{									\
	st##_fields_to_snap(k, s);					\
}									\
void vstate_##name##_to_kvm(const struct snap_##st *s, struct ktype *k) \
{									\
	memset(k, 0, sizeof(*k));					\
	st##_fields_to_kvm(s, k);					\
}
DEFINE_PLAIN(regs, regs, kvm_regs)
DEFINE_PLAIN(events, events, kvm_vcpu_events)
DEFINE_PLAIN(cpuid, cpuid_entry, kvm_cpuid_entry2)
DEFINE_PLAIN(xcr, xcr, kvm_xcr)
DEFINE_PLAIN(msr, msr, kvm_msr_entry)
DEFINE_PLAIN(pic, pic, kvm_pic_state)
DEFINE_PLAIN(clock, clock, kvm_clock_data)

#define COPY_ARRAY(dst, src) do {					\
	_Static_assert(sizeof(dst) == sizeof(src), "size of " #dst);	\
	memcpy(dst, src, sizeof(dst));					\
} while (0)

void vstate_sregs_to_snap(const struct kvm_sregs *k, struct snap_sregs *s)
{
	sregs_fields_to_snap(k, s);
#define SEGMENT(name) segment_fields_to_snap(&k->name, &s->name);
#define DTABLE(name) dtable_fields_to_snap(&k->name, &s->name);
	SNAP_SREGS_SEGMENTS(SEGMENT)
	SNAP_SREGS_DTABLES(DTABLE)
#undef SEGMENT
#undef DTABLE
	COPY_ARRAY(s->interrupt_bitmap, k->interrupt_bitmap);
}

void vstate_sregs_to_kvm(const struct snap_sregs *s, struct kvm_sregs *k)
{
	memset(k, 0, sizeof(*k));
	sregs_fields_to_kvm(s, k);
#define SEGMENT(name) segment_fields_to_kvm(&s->name, &k->name);
#define DTABLE(name) dtable_fields_to_kvm(&s->name, &k->name);
	SNAP_SREGS_SEGMENTS(SEGMENT)
	SNAP_SREGS_DTABLES(DTABLE)
#undef SEGMENT
#undef DTABLE
	COPY_ARRAY(k->interrupt_bitmap, s->interrupt_bitmap);
}

void vstate_fpu_to_snap(const struct kvm_fpu *k, struct snap_fpu *s)
{
	fpu_fields_to_snap(k, s);
	COPY_ARRAY(s->fpr, k->fpr);
	COPY_ARRAY(s->xmm, k->xmm);
}

void vstate_fpu_to_kvm(const struct snap_fpu *s, struct kvm_fpu *k)
{
	memset(k, 0, sizeof(*k));
	fpu_fields_to_kvm(s, k);
	COPY_ARRAY(k->fpr, s->fpr);
	COPY_ARRAY(k->xmm, s->xmm);
}

void vstate_debugregs_to_snap(const struct kvm_debugregs *k,
			      struct snap_debugregs *s)
{
	debugregs_fields_to_snap(k, s);
	COPY_ARRAY(s->db, k->db);
}

void vstate_debugregs_to_kvm(const struct snap_debugregs *s,
			     struct kvm_debugregs *k)
{
	memset(k, 0, sizeof(*k));
	debugregs_fields_to_kvm(s, k);
	COPY_ARRAY(k->db, s->db);
}

void vstate_ioapic_to_snap(const struct kvm_ioapic_state *k,
			   struct snap_ioapic *s)
{
	ioapic_fields_to_snap(k, s);
	for (unsigned int i = 0; i < SNAP_IOAPIC_PINS; i++)
		s->redirtbl[i] = k->redirtbl[i].bits;
}

void vstate_ioapic_to_kvm(const struct snap_ioapic *s,
			  struct kvm_ioapic_state *k)
{
	memset(k, 0, sizeof(*k));
	ioapic_fields_to_kvm(s, k);
	for (unsigned int i = 0; i < SNAP_IOAPIC_PINS; i++)
		k->redirtbl[i].bits = s->redirtbl[i];
}

void vstate_pit_to_snap(const struct kvm_pit_state2 *k, struct snap_pit *s)
{
	pit_fields_to_snap(k, s);
	for (unsigned int i = 0; i < SNAP_PIT_CHANNELS; i++)
		pit_channel_fields_to_snap(&k->channels[i], &s->channels[i]);
}

void vstate_pit_to_kvm(const struct snap_pit *s, struct kvm_pit_state2 *k)
{
	memset(k, 0, sizeof(*k));
	pit_fields_to_kvm(s, k);
	for (unsigned int i = 0; i < SNAP_PIT_CHANNELS; i++)
		pit_channel_fields_to_kvm(&s->channels[i], &k->channels[i]);
}
