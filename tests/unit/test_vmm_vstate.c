/* SPDX-License-Identifier: MIT */
/*
 * vmm/vstate.c without KVM: every field of every structure goes KVM ->
 * libsnap -> KVM with a value of its own, vstate_check refuses what a host
 * cannot take with its one line, and a failing ioctl names the vCPU and
 * the ioctl.
 *
 * A round trip starts from a KVM structure whose every byte is non-zero
 * (so a KVM field that libsnap misses comes back as zeros), then gives each
 * field a distinct value with its top bit set (so a swapped field, or one
 * cut short on the way, shows), checks libsnap's copy field by field by
 * name, and compares the way back byte for byte, padding aside.
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

#include "vmm/vstate.h"

/* Non-zero bytes, no two alike within 255 bytes. */
static void fill(void *p, size_t n)
{
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)((i + i / 255 * 101) % 255 + 1);
}

/*
 * The next field's value: distinct for each call (fewer than 255 per
 * structure), non-zero, and for fields wider than a byte with the top bit
 * set, so that narrowing anywhere loses it.
 */
static uint64_t distinct(uint64_t *n, size_t width)
{
	uint64_t v = ++*n % 255 + 1;

	if (width > 1)
		v |= (uint64_t)(0x80 | (*n & 0x7f)) << (8 * (width - 1));
	return v;
}

#define SET(kind, name)		k.name = distinct(&n, sizeof(k.name));
#define SAME(kind, name)	assert_int_equal(s.name, k.name);

static void test_regs(void **unused)
{
	struct kvm_regs k, back;
	struct snap_regs s;
	uint64_t n = 0;

	fill(&k, sizeof(k));
	SNAP_REGS_FIELDS(SET)
	memset(&s, 0, sizeof(s));
	vstate_regs_to_snap(&k, &s);
	SNAP_REGS_FIELDS(SAME)
	fill(&back, sizeof(back));
	vstate_regs_to_kvm(&s, &back);
	assert_memory_equal(&k, &back, sizeof(k));
}

static void set_segment(struct kvm_segment *k, uint64_t *n)
{
	k->base = distinct(n, sizeof(k->base));
	k->limit = (uint32_t)distinct(n, sizeof(k->limit));
	k->selector = (uint16_t)distinct(n, sizeof(k->selector));
	k->type = (uint8_t)distinct(n, 1);
	k->present = (uint8_t)distinct(n, 1);
	k->dpl = (uint8_t)distinct(n, 1);
	k->db = (uint8_t)distinct(n, 1);
	k->s = (uint8_t)distinct(n, 1);
	k->l = (uint8_t)distinct(n, 1);
	k->g = (uint8_t)distinct(n, 1);
	k->avl = (uint8_t)distinct(n, 1);
	k->unusable = (uint8_t)distinct(n, 1);
	k->padding = 0;
}

static void check_segment(const struct kvm_segment *k,
			  const struct snap_segment *s)
{
	assert_int_equal(s->base_address, k->base);
	assert_int_equal(s->limit, k->limit);
	assert_int_equal(s->selector, k->selector);
	assert_int_equal(s->type, k->type);
	assert_int_equal(s->present, k->present);
	assert_int_equal(s->dpl, k->dpl);
	assert_int_equal(s->db, k->db);
	assert_int_equal(s->s, k->s);
	assert_int_equal(s->l, k->l);
	assert_int_equal(s->g, k->g);
	assert_int_equal(s->avl, k->avl);
	assert_int_equal(s->unusable, k->unusable);
}

static void set_dtable(struct kvm_dtable *k, uint64_t *n)
{
	k->base = distinct(n, sizeof(k->base));
	k->limit = (uint16_t)distinct(n, sizeof(k->limit));
	memset(k->padding, 0, sizeof(k->padding));
}

static void test_sregs(void **unused)
{
	struct kvm_sregs k, back;
	struct snap_sregs s;
	uint64_t n = 0;

	fill(&k, sizeof(k));
	SNAP_SREGS_FIELDS(SET)
	set_segment(&k.cs, &n);
	set_segment(&k.ds, &n);
	set_segment(&k.es, &n);
	set_segment(&k.fs, &n);
	set_segment(&k.gs, &n);
	set_segment(&k.ss, &n);
	set_segment(&k.tr, &n);
	set_segment(&k.ldt, &n);
	set_dtable(&k.gdt, &n);
	set_dtable(&k.idt, &n);
	memset(&s, 0, sizeof(s));
	vstate_sregs_to_snap(&k, &s);
	SNAP_SREGS_FIELDS(SAME)
	check_segment(&k.cs, &s.cs);
	check_segment(&k.ds, &s.ds);
	check_segment(&k.es, &s.es);
	check_segment(&k.fs, &s.fs);
	check_segment(&k.gs, &s.gs);
	check_segment(&k.ss, &s.ss);
	check_segment(&k.tr, &s.tr);
	check_segment(&k.ldt, &s.ldt);
	assert_int_equal(s.gdt.base_address, k.gdt.base);
	assert_int_equal(s.gdt.limit, k.gdt.limit);
	assert_int_equal(s.idt.base_address, k.idt.base);
	assert_int_equal(s.idt.limit, k.idt.limit);
	assert_memory_equal(s.interrupt_bitmap, k.interrupt_bitmap,
			    sizeof(s.interrupt_bitmap));
	fill(&back, sizeof(back));
	vstate_sregs_to_kvm(&s, &back);
	assert_memory_equal(&k, &back, sizeof(k));
}

static void test_fpu(void **unused)
{
	struct kvm_fpu k, back;
	struct snap_fpu s;
	uint64_t n = 0;

	fill(&k, sizeof(k));
	SNAP_FPU_FIELDS(SET)
	k.pad1 = 0;
	k.pad2 = 0;
	memset(&s, 0, sizeof(s));
	vstate_fpu_to_snap(&k, &s);
	SNAP_FPU_FIELDS(SAME)
	assert_memory_equal(s.fpr, k.fpr, sizeof(s.fpr));
	assert_memory_equal(s.xmm, k.xmm, sizeof(s.xmm));
	fill(&back, sizeof(back));
	vstate_fpu_to_kvm(&s, &back);
	assert_memory_equal(&k, &back, sizeof(k));
}

static void test_events(void **unused)
{
	struct kvm_vcpu_events k, back;
	struct snap_events s;
	uint64_t n = 0;

	fill(&k, sizeof(k));
	k.exception.injected = (uint8_t)distinct(&n, 1);
	k.exception.nr = (uint8_t)distinct(&n, 1);
	k.exception.has_error_code = (uint8_t)distinct(&n, 1);
	k.exception.pending = (uint8_t)distinct(&n, 1);
	k.exception.error_code = (uint32_t)distinct(&n, 4);
	k.interrupt.injected = (uint8_t)distinct(&n, 1);
	k.interrupt.nr = (uint8_t)distinct(&n, 1);
	k.interrupt.soft = (uint8_t)distinct(&n, 1);
	k.interrupt.shadow = (uint8_t)distinct(&n, 1);
	k.nmi.injected = (uint8_t)distinct(&n, 1);
	k.nmi.pending = (uint8_t)distinct(&n, 1);
	k.nmi.masked = (uint8_t)distinct(&n, 1);
	k.nmi.pad = 0;
	k.sipi_vector = (uint32_t)distinct(&n, 4);
	k.flags = (uint32_t)distinct(&n, 4);
	k.smi.smm = (uint8_t)distinct(&n, 1);
	k.smi.pending = (uint8_t)distinct(&n, 1);
	k.smi.smm_inside_nmi = (uint8_t)distinct(&n, 1);
	k.smi.latched_init = (uint8_t)distinct(&n, 1);
	k.triple_fault.pending = (uint8_t)distinct(&n, 1);
	memset(k.reserved, 0, sizeof(k.reserved));
	k.exception_has_payload = (uint8_t)distinct(&n, 1);
	k.exception_payload = distinct(&n, 8);
	memset(&s, 0, sizeof(s));
	vstate_events_to_snap(&k, &s);
	assert_int_equal(s.exception_injected, k.exception.injected);
	assert_int_equal(s.exception_nr, k.exception.nr);
	assert_int_equal(s.exception_has_error_code, k.exception.has_error_code);
	assert_int_equal(s.exception_pending, k.exception.pending);
	assert_int_equal(s.exception_error_code, k.exception.error_code);
	assert_int_equal(s.interrupt_injected, k.interrupt.injected);
	assert_int_equal(s.interrupt_nr, k.interrupt.nr);
	assert_int_equal(s.interrupt_soft, k.interrupt.soft);
	assert_int_equal(s.interrupt_shadow, k.interrupt.shadow);
	assert_int_equal(s.nmi_injected, k.nmi.injected);
	assert_int_equal(s.nmi_pending, k.nmi.pending);
	assert_int_equal(s.nmi_masked, k.nmi.masked);
	assert_int_equal(s.sipi_vector, k.sipi_vector);
	assert_int_equal(s.flags, k.flags);
	assert_int_equal(s.smi_smm, k.smi.smm);
	assert_int_equal(s.smi_pending, k.smi.pending);
	assert_int_equal(s.smi_smm_inside_nmi, k.smi.smm_inside_nmi);
	assert_int_equal(s.smi_latched_init, k.smi.latched_init);
	assert_int_equal(s.triple_fault_pending, k.triple_fault.pending);
	assert_int_equal(s.exception_has_payload, k.exception_has_payload);
	assert_int_equal(s.exception_payload, k.exception_payload);
	fill(&back, sizeof(back));
	vstate_events_to_kvm(&s, &back);
	assert_memory_equal(&k, &back, sizeof(k));
}

static void test_debugregs(void **unused)
{
	struct kvm_debugregs k, back;
	struct snap_debugregs s;
	uint64_t n = 0;

	fill(&k, sizeof(k));
	SNAP_DEBUGREGS_FIELDS(SET)
	for (int i = 0; i < 4; i++)
		k.db[i] = distinct(&n, 8);
	memset(k.reserved, 0, sizeof(k.reserved));
	memset(&s, 0, sizeof(s));
	vstate_debugregs_to_snap(&k, &s);
	SNAP_DEBUGREGS_FIELDS(SAME)
	for (int i = 0; i < 4; i++)
		assert_int_equal(s.db[i], k.db[i]);
	fill(&back, sizeof(back));
	vstate_debugregs_to_kvm(&s, &back);
	assert_memory_equal(&k, &back, sizeof(k));
}

static void test_cpuid(void **unused)
{
	struct kvm_cpuid_entry2 k, back;
	struct snap_cpuid_entry s;
	uint64_t n = 0;

	fill(&k, sizeof(k));
	SNAP_CPUID_FIELDS(SET)
	memset(k.padding, 0, sizeof(k.padding));
	memset(&s, 0, sizeof(s));
	vstate_cpuid_to_snap(&k, &s);
	SNAP_CPUID_FIELDS(SAME)
	fill(&back, sizeof(back));
	vstate_cpuid_to_kvm(&s, &back);
	assert_memory_equal(&k, &back, sizeof(k));
}

static void test_xcr_and_msr(void **unused)
{
	struct kvm_xcr kx, bx;
	struct kvm_msr_entry km, bm;
	struct snap_xcr sx;
	struct snap_msr sm;
	uint64_t n = 0;

	fill(&kx, sizeof(kx));
	kx.xcr = (uint32_t)distinct(&n, 4);
	kx.reserved = 0;
	kx.value = distinct(&n, 8);
	vstate_xcr_to_snap(&kx, &sx);
	assert_int_equal(sx.index, kx.xcr);
	assert_int_equal(sx.value, kx.value);
	fill(&bx, sizeof(bx));
	vstate_xcr_to_kvm(&sx, &bx);
	assert_memory_equal(&kx, &bx, sizeof(kx));

	fill(&km, sizeof(km));
	km.index = (uint32_t)distinct(&n, 4);
	km.reserved = 0;
	km.data = distinct(&n, 8);
	vstate_msr_to_snap(&km, &sm);
	assert_int_equal(sm.index, km.index);
	assert_int_equal(sm.value, km.data);
	fill(&bm, sizeof(bm));
	vstate_msr_to_kvm(&sm, &bm);
	assert_memory_equal(&km, &bm, sizeof(km));
}

static void test_pic(void **unused)
{
	struct kvm_pic_state k, back;
	struct snap_pic s;
	uint64_t n = 0;

	fill(&k, sizeof(k));
	SNAP_PIC_FIELDS(SET)
	memset(&s, 0, sizeof(s));
	vstate_pic_to_snap(&k, &s);
	SNAP_PIC_FIELDS(SAME)
	fill(&back, sizeof(back));
	vstate_pic_to_kvm(&s, &back);
	assert_memory_equal(&k, &back, sizeof(k));
}

static void test_ioapic(void **unused)
{
	struct kvm_ioapic_state k, back;
	struct snap_ioapic s;
	uint64_t n = 0;

	fill(&k, sizeof(k));
	SNAP_IOAPIC_FIELDS(SET)
	k.pad = 0;
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		k.redirtbl[i].bits = distinct(&n, 8);
	memset(&s, 0, sizeof(s));
	vstate_ioapic_to_snap(&k, &s);
	SNAP_IOAPIC_FIELDS(SAME)
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		assert_int_equal(s.redirtbl[i], k.redirtbl[i].bits);
	fill(&back, sizeof(back));
	vstate_ioapic_to_kvm(&s, &back);
	assert_memory_equal(&k, &back, sizeof(k));
}

static void test_pit(void **unused)
{
	struct kvm_pit_state2 pit, back;
	struct snap_pit sp;
	uint64_t n = 0;

	fill(&pit, sizeof(pit));
	for (int i = 0; i < 3; i++) {
		struct kvm_pit_channel_state k = pit.channels[i];

		SNAP_PIT_CHANNEL_FIELDS(SET)
		pit.channels[i] = k;
	}
	pit.flags = (uint32_t)distinct(&n, 4);
	memset(pit.reserved, 0, sizeof(pit.reserved));
	memset(&sp, 0, sizeof(sp));
	vstate_pit_to_snap(&pit, &sp);
	for (int i = 0; i < 3; i++) {
		struct kvm_pit_channel_state k = pit.channels[i];
		struct snap_pit_channel s = sp.channels[i];

		SNAP_PIT_CHANNEL_FIELDS(SAME)
	}
	assert_int_equal(sp.flags, pit.flags);
	fill(&back, sizeof(back));
	vstate_pit_to_kvm(&sp, &back);
	assert_memory_equal(&pit, &back, sizeof(pit));
}

static void test_clock(void **unused)
{
	struct kvm_clock_data k, back;
	struct snap_clock s;
	uint64_t n = 0;

	fill(&k, sizeof(k));
	SNAP_CLOCK_FIELDS(SET)
	k.pad0 = 0;
	memset(k.pad, 0, sizeof(k.pad));
	memset(&s, 0, sizeof(s));
	vstate_clock_to_snap(&k, &s);
	SNAP_CLOCK_FIELDS(SAME)
	fill(&back, sizeof(back));
	vstate_clock_to_kvm(&s, &back);
	assert_memory_equal(&k, &back, sizeof(k));
}

/* ---- vstate_check -------------------------------------------------------- */

/* What a host's KVM_GET_MSR_INDEX_LIST might say, sorted. */
static uint32_t host_msrs[] = {
	0x10, 0x3b, 0x174, 0x175, 0x176, 0x277, 0x6e0,
	0x4b564d00, 0x4b564d01, 0xc0000081, 0xc0000082,
};

static struct vstate_host host(void)
{
	return (struct vstate_host){
		.kvm_msrs = host_msrs,
		.n_kvm_msrs = sizeof(host_msrs) / sizeof(host_msrs[0]),
		.xsave_size = 4096,
		.xsave2 = true,
		.xcr0 = 0x7,
		.xcrs = true,
		.debugregs = true,
		.vcpu_events = true,
		.irqchip = true,
		.pit = true,
	};
}

static void set_xstate_bv(struct snap_vcpu *v, uint64_t bv)
{
	for (int i = 0; i < 8; i++)
		v->xsave[512 + i] = (uint8_t)(bv >> (8 * i));
}

/*
 * Two vCPUs this host takes: x87/SSE/AVX state, XCR0 7, MSRs it lists
 * and MTRRs (which KVM emulates without listing), MTRRcap among them.
 */
static struct snap_state *state(void)
{
	static const uint32_t msrs[] = { 0x10, 0xfe, 0x200, 0x201, 0x250,
					 0x2ff, 0x4b564d01 };
	struct snap_state *s = snap_state_new(2);

	assert_non_null(s);
	s->has_pic = s->has_ioapic = s->has_pit = s->has_clock = true;
	for (uint32_t i = 0; i < 2; i++) {
		struct snap_vcpu *v = &s->vcpus[i];

		assert_int_equal(snap_vcpu_reserve(v, 4096, 7, 0), 0);
		set_xstate_bv(v, 0x7);
		v->n_xcrs = 1;
		v->xcrs[0].index = 0;
		v->xcrs[0].value = 0x7;
		for (uint32_t j = 0; j < 7; j++) {
			v->msrs[j].index = msrs[j];
			v->msrs[j].value = j;
		}
		v->tsc_khz = 2500000;
	}
	return s;
}

static void expect_refusal(const struct vstate_host *h,
			   const struct snap_state *s, int want,
			   const char *msg)
{
	struct snap_err err = { "" };

	assert_int_equal(vstate_check(h, s, &err), want);
	assert_string_equal(err.msg, msg);
}

static void test_check_accepts(void **unused)
{
	struct vstate_host h = host();
	struct snap_state *s = state();
	struct snap_err err = { "" };

	assert_int_equal(vstate_check(&h, s, &err), 0);
	/* A state without XSAVE area, XCRs or MSRs is fine too. */
	assert_int_equal(snap_vcpu_reserve(&s->vcpus[1], 0, 0, 0), 0);
	s->vcpus[1].n_xcrs = 0;
	assert_int_equal(vstate_check(&h, s, &err), 0);
	snap_state_free(s);
}

static void test_check_xsave(void **unused)
{
	struct vstate_host h = host();
	struct snap_state *s = state();

	assert_int_equal(snap_vcpu_reserve(&s->vcpus[1], 8192, 0, 0), 0);
	expect_refusal(&h, s, -ENOTSUP, "vcpu 1: xsave: 8192 bytes, this "
		       "host's KVM takes at most 4096");
	h.xsave_size = 0;
	expect_refusal(&h, s, -ENOTSUP, "vcpu 0: xsave: 4096 bytes, and this "
		       "host's KVM has no XSAVE");
	snap_state_free(s);

	h = host();
	s = state();
	set_xstate_bv(&s->vcpus[1], 0x207);		/* PKRU */
	expect_refusal(&h, s, -ENOTSUP, "vcpu 1: xsave: features 0x200 "
		       "(XSTATE_BV) not supported by this host's KVM (XCR0 "
		       "0x7)");
	snap_state_free(s);
}

static void test_check_xcr0(void **unused)
{
	struct vstate_host h = host();
	struct snap_state *s = state();

	s->vcpus[1].xcrs[0].value = 0xe7;		/* AVX-512 */
	expect_refusal(&h, s, -ENOTSUP, "vcpu 1: xcr0 0xe7: features 0xe0 "
		       "not supported by this host's KVM");
	/* Only XCR0 is checked against XCR0's features. */
	s->vcpus[1].xcrs[0].index = 1;
	expect_refusal(&h, s, 0, "");
	snap_state_free(s);
}

static void test_check_msrs(void **unused)
{
	struct vstate_host h = host();
	struct snap_state *s = state();

	s->vcpus[1].msrs[2].index = 0x4b564d03;	/* steal time */
	s->vcpus[1].msrs[4].index = 0xc0000103;	/* TSC_AUX */
	expect_refusal(&h, s, -ENOTSUP, "vcpu 1: MSR 0x4b564d03 is not "
		       "supported by this host's KVM");
	snap_state_free(s);
}

static void test_check_tsc_khz(void **unused)
{
	struct vstate_host h = host();
	struct snap_state *s = state();

	s->vcpus[1].tsc_khz = UINT32_MAX;
	expect_refusal(&h, s, 0, "");
	s->vcpus[1].tsc_khz = (uint64_t)UINT32_MAX + 1;
	expect_refusal(&h, s, -EINVAL, "vcpu 1: tsc_khz 4294967296, at most "
		       "4294967295 expected");
	snap_state_free(s);
}

static void test_check_chips(void **unused)
{
	struct vstate_host h = host();
	struct snap_state *s = state();

	s->has_pic = false;
	expect_refusal(&h, s, -EINVAL, "pic: missing, and the VM has an "
		       "in-kernel irqchip");
	s->has_pic = true;
	s->has_ioapic = false;
	expect_refusal(&h, s, -EINVAL, "ioapic: missing, and the VM has an "
		       "in-kernel irqchip");
	s->has_ioapic = true;
	s->has_pit = false;
	expect_refusal(&h, s, -EINVAL, "pit: missing, and the VM has an "
		       "in-kernel PIT");
	h.pit = false;
	expect_refusal(&h, s, 0, "");
	s->has_pit = true;
	expect_refusal(&h, s, -ENOTSUP, "pit: saved, but the VM has no "
		       "in-kernel PIT");
	h = host();
	h.irqchip = false;
	expect_refusal(&h, s, -ENOTSUP, "pic: saved, but the VM has no "
		       "in-kernel irqchip");
	snap_state_free(s);
}

/* ---- errors of the ioctls ------------------------------------------------ */

static void test_ioctl_errors(void **unused)
{
	struct vstate_host h = host();
	struct snap_state *s = state();
	struct snap_err err = { "" };

	/* vstate_vcpu_restore checks first, as vstate_check does. */
	s->vcpus[1].msrs[2].index = 0x4b564d03;
	assert_int_equal(vstate_vcpu_restore(&h, -1, &s->vcpus[1], 0, &err),
			 -ENOTSUP);
	assert_string_equal(err.msg, "vcpu 1: MSR 0x4b564d03 is not "
			    "supported by this host's KVM");
	/* Then the first ioctl fails (no CPUID, no TSC scaling: SREGS). */
	assert_int_equal(vstate_vcpu_restore(&h, -1, &s->vcpus[0], 0, &err),
			 -EBADF);
	assert_string_equal(err.msg, "vcpu 0: KVM_SET_SREGS: Bad file "
			    "descriptor");
	assert_int_equal(snap_vcpu_reserve(&s->vcpus[0], 0, 0, 1), 0);
	assert_int_equal(vstate_vcpu_restore(&h, -1, &s->vcpus[0], 0, &err),
			 -EBADF);
	assert_string_equal(err.msg, "vcpu 0: KVM_SET_CPUID2: Bad file "
			    "descriptor");
	assert_int_equal(vstate_vcpu_save(&h, -1, 3, &s->vcpus[0], &err),
			 -EBADF);
	assert_string_equal(err.msg, "vcpu 3: KVM_GET_MP_STATE: Bad file "
			    "descriptor");
	assert_int_equal(vstate_vm_save(-1, NULL, s, &err), -EBADF);
	assert_string_equal(err.msg, "KVM_GET_IRQCHIP (PIC master): Bad file "
			    "descriptor");
	assert_int_equal(vstate_vm_restore(-1, s, &err), -EBADF);
	assert_string_equal(err.msg, "KVM_SET_IRQCHIP (PIC master): Bad file "
			    "descriptor");
	assert_int_equal(vstate_vm_restore_clock(-1, s, 0, &err), -EBADF);
	assert_string_equal(err.msg, "KVM_SET_CLOCK: Bad file descriptor");
	snap_state_free(s);

	assert_int_equal(vstate_host_init(&h, -1, -1, &err), -EBADF);
	assert_string_equal(err.msg, "KVM_GET_MSR_INDEX_LIST: Bad file "
			    "descriptor");
	assert_null(h.msrs);
	vstate_host_release(&h);
}

/*
 * Putting the clocks forward: the save's wall time from the saved clock's
 * realtime when it has one, the TSC moved after the rate is set and before
 * any other state, at a rate that must be known.
 */
static void test_clock_forward(void **unused)
{
	struct vstate_host h = host();
	struct snap_state *s = state();
	struct snap_err err = { "" };
	uint64_t since;

	assert_int_equal(vstate_saved_at(s, 456), 456);	/* older builds */
	s->clock.realtime = 123;
	assert_int_equal(vstate_saved_at(s, 456), 123);
	s->has_clock = false;
	assert_int_equal(vstate_saved_at(s, 456), 456);

	/* The saved rate (no KVM_GET_TSC_KHZ): on to the first ioctl. */
	assert_int_equal(vstate_vcpu_restore(&h, -1, &s->vcpus[0], 1, &err),
			 -EBADF);
	assert_string_equal(err.msg, "vcpu 0: KVM_SET_SREGS: Bad file "
			    "descriptor");
	s->vcpus[0].tsc_khz = 0;
	assert_int_equal(vstate_vcpu_restore(&h, -1, &s->vcpus[0], 1, &err),
			 -ENOTSUP);
	assert_string_equal(err.msg, "vcpu 0: TSC rate unknown, the TSC "
			    "cannot be put forward");
	h.get_tsc_khz = true;		/* the rate KVM gives the vCPU */
	assert_int_equal(vstate_vcpu_restore(&h, -1, &s->vcpus[0], 1, &err),
			 -EBADF);
	assert_string_equal(err.msg, "vcpu 0: KVM_GET_TSC_KHZ: Bad file "
			    "descriptor");
	/*
	 * What vCPU 0's TSC stands for, for kvmclock: read from the vCPU at
	 * the rate KVM gives it, else the saved one; nothing to read (no
	 * saved TSC, or no rate) leaves since as it was.
	 */
	since = 77;
	assert_int_equal(vstate_vcpu_tsc_since(&h, -1, &s->vcpus[0], &since,
					       &err), -EBADF);
	assert_string_equal(err.msg, "vcpu 0: KVM_GET_TSC_KHZ: Bad file "
			    "descriptor");
	h.get_tsc_khz = false;
	assert_int_equal(vstate_vcpu_tsc_since(&h, -1, &s->vcpus[0], &since,
					       &err), 0);
	s->vcpus[0].tsc_khz = 2500000;
	assert_int_equal(vstate_vcpu_tsc_since(&h, -1, &s->vcpus[0], &since,
					       &err), -EBADF);
	assert_string_equal(err.msg, "vcpu 0: KVM_GET_MSRS: the TSC: Bad file "
			    "descriptor");
	s->vcpus[0].msrs[0].index = 0xfd;	/* no TSC saved */
	assert_int_equal(vstate_vcpu_tsc_since(&h, -1, &s->vcpus[0], &since,
					       &err), 0);
	assert_int_equal(since, 77);
	/* Without the flag or the capability there is nothing to tell. */
	assert_int_equal(vstate_vcpu_clock_stopped(&h, -1, 0, &err), 0);
	h.kvmclock_ctrl = true;
	assert_int_equal(vstate_vcpu_clock_stopped(&h, -1, 2, &err), -EBADF);
	assert_string_equal(err.msg, "vcpu 2: KVM_KVMCLOCK_CTRL: Bad file "
			    "descriptor");
	snap_state_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regs),
		cmocka_unit_test(test_sregs),
		cmocka_unit_test(test_fpu),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_debugregs),
		cmocka_unit_test(test_cpuid),
		cmocka_unit_test(test_xcr_and_msr),
		cmocka_unit_test(test_pic),
		cmocka_unit_test(test_ioapic),
		cmocka_unit_test(test_pit),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_check_accepts),
		cmocka_unit_test(test_check_xsave),
		cmocka_unit_test(test_check_xcr0),
		cmocka_unit_test(test_check_msrs),
		cmocka_unit_test(test_check_tsc_khz),
		cmocka_unit_test(test_check_chips),
		cmocka_unit_test(test_ioctl_errors),
		cmocka_unit_test(test_clock_forward),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
