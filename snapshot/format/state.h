/* SPDX-License-Identifier: MIT */
#ifndef SNAP_STATE_H
#define SNAP_STATE_H

/*
 * state.bin: the complete state of an x86-64 KVM guest but its RAM.
 *
 * The structures mirror KVM's (linux/kvm.h, asm/kvm.h) field by field, with
 * libsnap's own types so that libsnap knows nothing of KVM: the monitor
 * copies between the two. Each field list below is an X-macro of
 * (kind, name) pairs that generates the struct here and the codec in
 * state.c, so a field is added in exactly one place (plus the .proto).
 *
 * Kinds: U8, U16, U32 (stored as proto uint32 and range-checked on
 * decode), U64 (uint64), S64 (sint64).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/format/error.h"
#include "snapshot/format/manifest.h"

#define SNAP_LAPIC_SIZE		1024u
#define SNAP_XSAVE_MIN		576u		/* legacy area + header */
#define SNAP_XSAVE_MAX		(1u << 20)
#define SNAP_MAX_XCRS		16u
#define SNAP_MAX_MSRS		1024u
#define SNAP_MAX_CPUID		256u
#define SNAP_IOAPIC_PINS	24u
#define SNAP_PIT_CHANNELS	3u
#define SNAP_DEVICE_MAX		(16u << 20)	/* one payload */
#define SNAP_MAX_DEVICES	256u
#define SNAP_MP_STATE_MAX	10u		/* KVM_MP_STATE_SUSPENDED */
#define SNAP_UART_FIFO_MAX	256u
#define SNAP_RTC_CMOS_SIZE	128u
/* How far an RTC may be from the host's clock: 200 years, in ns. */
#define SNAP_RTC_OFFSET_MAX	(6311390400ll * 1000000000ll)

#define SNAP_CTYPE_U8	uint8_t
#define SNAP_CTYPE_U16	uint16_t
#define SNAP_CTYPE_U32	uint32_t
#define SNAP_CTYPE_U64	uint64_t
#define SNAP_CTYPE_S64	int64_t
#define SNAP_DECLARE(kind, name) SNAP_CTYPE_##kind name;

#define SNAP_REGS_FIELDS(X) \
	X(U64, rax) X(U64, rbx) X(U64, rcx) X(U64, rdx) X(U64, rsi) \
	X(U64, rdi) X(U64, rsp) X(U64, rbp) X(U64, r8) X(U64, r9) \
	X(U64, r10) X(U64, r11) X(U64, r12) X(U64, r13) X(U64, r14) \
	X(U64, r15) X(U64, rip) X(U64, rflags)

#define SNAP_SEGMENT_FIELDS(X) \
	X(U64, base_address) X(U32, limit) X(U16, selector) X(U8, type) \
	X(U8, present) X(U8, dpl) X(U8, db) X(U8, s) X(U8, l) X(U8, g) \
	X(U8, avl) X(U8, unusable)

#define SNAP_DTABLE_FIELDS(X) X(U64, base_address) X(U16, limit)

/* Segments and tables of struct kvm_sregs, by name. */
#define SNAP_SREGS_SEGMENTS(X) X(cs) X(ds) X(es) X(fs) X(gs) X(ss) X(tr) X(ldt)
#define SNAP_SREGS_DTABLES(X) X(gdt) X(idt)
#define SNAP_SREGS_FIELDS(X) \
	X(U64, cr0) X(U64, cr2) X(U64, cr3) X(U64, cr4) X(U64, cr8) \
	X(U64, efer) X(U64, apic_base)

#define SNAP_FPU_FIELDS(X) \
	X(U16, fcw) X(U16, fsw) X(U8, ftwx) X(U16, last_opcode) \
	X(U64, last_ip) X(U64, last_dp) X(U32, mxcsr)

#define SNAP_EVENTS_FIELDS(X) \
	X(U8, exception_injected) X(U8, exception_nr) \
	X(U8, exception_has_error_code) X(U8, exception_pending) \
	X(U32, exception_error_code) X(U8, interrupt_injected) \
	X(U8, interrupt_nr) X(U8, interrupt_soft) X(U8, interrupt_shadow) \
	X(U8, nmi_injected) X(U8, nmi_pending) X(U8, nmi_masked) \
	X(U32, sipi_vector) X(U32, flags) X(U8, smi_smm) X(U8, smi_pending) \
	X(U8, smi_smm_inside_nmi) X(U8, smi_latched_init) \
	X(U8, triple_fault_pending) X(U8, exception_has_payload) \
	X(U64, exception_payload)

#define SNAP_DEBUGREGS_FIELDS(X) X(U64, dr6) X(U64, dr7) X(U64, flags)

#define SNAP_CPUID_FIELDS(X) \
	X(U32, function) X(U32, index) X(U32, flags) X(U32, eax) \
	X(U32, ebx) X(U32, ecx) X(U32, edx)

#define SNAP_XCR_FIELDS(X) X(U32, index) X(U64, value)
#define SNAP_MSR_FIELDS(X) X(U32, index) X(U64, value)

#define SNAP_PIC_FIELDS(X) \
	X(U8, last_irr) X(U8, irr) X(U8, imr) X(U8, isr) X(U8, priority_add) \
	X(U8, irq_base) X(U8, read_reg_select) X(U8, poll) \
	X(U8, special_mask) X(U8, init_state) X(U8, auto_eoi) \
	X(U8, rotate_on_auto_eoi) X(U8, special_fully_nested_mode) \
	X(U8, init4) X(U8, elcr) X(U8, elcr_mask)

#define SNAP_IOAPIC_FIELDS(X) \
	X(U64, base_address) X(U32, ioregsel) X(U32, id) X(U32, irr)

#define SNAP_PIT_CHANNEL_FIELDS(X) \
	X(U32, count) X(U16, latched_count) X(U8, count_latched) \
	X(U8, status_latched) X(U8, status) X(U8, read_state) \
	X(U8, write_state) X(U8, write_latch) X(U8, rw_mode) X(U8, mode) \
	X(U8, bcd) X(U8, gate) X(S64, count_load_time)

#define SNAP_PIT_FIELDS(X) X(U32, flags)

#define SNAP_CLOCK_FIELDS(X) \
	X(U64, clock) X(U32, flags) X(U64, realtime) X(U64, host_tsc)

#define SNAP_UART_FIELDS(X) \
	X(U8, ier) X(U8, iir) X(U8, lcr) X(U8, mcr) X(U8, lsr) X(U8, msr) \
	X(U8, scr) X(U8, dll) X(U8, dlm) X(U8, fcr)

struct snap_regs { SNAP_REGS_FIELDS(SNAP_DECLARE) };
struct snap_segment { SNAP_SEGMENT_FIELDS(SNAP_DECLARE) };
struct snap_dtable { SNAP_DTABLE_FIELDS(SNAP_DECLARE) };

struct snap_sregs {
#define SNAP_DECLARE_SEGMENT(name) struct snap_segment name;
#define SNAP_DECLARE_DTABLE(name) struct snap_dtable name;
	SNAP_SREGS_SEGMENTS(SNAP_DECLARE_SEGMENT)
	SNAP_SREGS_DTABLES(SNAP_DECLARE_DTABLE)
	SNAP_SREGS_FIELDS(SNAP_DECLARE)
	uint64_t interrupt_bitmap[4];
};

struct snap_fpu {
	SNAP_FPU_FIELDS(SNAP_DECLARE)
	uint8_t fpr[8][16];
	uint8_t xmm[16][16];
};

struct snap_events { SNAP_EVENTS_FIELDS(SNAP_DECLARE) };

struct snap_debugregs {
	uint64_t db[4];
	SNAP_DEBUGREGS_FIELDS(SNAP_DECLARE)
};

struct snap_cpuid_entry { SNAP_CPUID_FIELDS(SNAP_DECLARE) };
struct snap_xcr { SNAP_XCR_FIELDS(SNAP_DECLARE) };
struct snap_msr { SNAP_MSR_FIELDS(SNAP_DECLARE) };
struct snap_pic { SNAP_PIC_FIELDS(SNAP_DECLARE) };

struct snap_ioapic {
	SNAP_IOAPIC_FIELDS(SNAP_DECLARE)
	uint64_t redirtbl[SNAP_IOAPIC_PINS];
};

struct snap_pit_channel { SNAP_PIT_CHANNEL_FIELDS(SNAP_DECLARE) };

struct snap_pit {
	struct snap_pit_channel channels[SNAP_PIT_CHANNELS];
	SNAP_PIT_FIELDS(SNAP_DECLARE)
};

struct snap_clock { SNAP_CLOCK_FIELDS(SNAP_DECLARE) };

struct snap_vcpu {
	uint32_t id;
	struct snap_regs regs;
	struct snap_sregs sregs;
	struct snap_fpu fpu;
	uint8_t *xsave;			/* NULL when xsave_size is 0 */
	uint32_t xsave_size;
	struct snap_xcr xcrs[SNAP_MAX_XCRS];
	uint32_t n_xcrs;
	struct snap_msr *msrs;
	uint32_t n_msrs;
	uint8_t lapic[SNAP_LAPIC_SIZE];
	struct snap_events events;
	uint32_t mp_state;
	struct snap_debugregs debugregs;
	struct snap_cpuid_entry *cpuid;
	uint32_t n_cpuid;
	uint64_t tsc_khz;
};

struct snap_device {
	char name[SNAP_NAME_MAX];
	uint8_t *payload;
	size_t len;
};

struct snap_state {
	struct snap_vcpu *vcpus;
	uint32_t n_vcpus;
	bool has_pic;
	struct snap_pic pic_master;
	struct snap_pic pic_slave;
	bool has_ioapic;
	struct snap_ioapic ioapic;
	bool has_pit;
	struct snap_pit pit;
	bool has_clock;
	struct snap_clock clock;
	struct snap_device *devices;
	uint32_t n_devices;
};

struct snap_uart8250 {
	SNAP_UART_FIELDS(SNAP_DECLARE)
	uint8_t rx_fifo[SNAP_UART_FIFO_MAX];
	uint32_t rx_len;
	bool thr_irq_pending;
	bool irq_level;
};

/*
 * The MC146818 RTC: its CMOS bytes, registers A-D and RAM, and the offset
 * of its time from the host's CLOCK_REALTIME, within SNAP_RTC_OFFSET_MAX
 * either way.
 */
struct snap_rtc {
	uint8_t cmos[SNAP_RTC_CMOS_SIZE];
	int64_t offset_ns;
	uint8_t index;			/* below SNAP_RTC_CMOS_SIZE */
};

/* A zeroed state with n_vcpus zeroed vCPUs; NULL when out of memory. */
struct snap_state *snap_state_new(uint32_t n_vcpus);

/* Free the state and everything it owns; s may be NULL. */
void snap_state_free(struct snap_state *s);

/*
 * Give a vCPU room for an XSAVE area, MSRs and CPUID entries (zeroed;
 * replaces what it had). Sizes are checked as validation would.
 */
int snap_vcpu_reserve(struct snap_vcpu *v, uint32_t xsave_size,
		      uint32_t n_msrs, uint32_t n_cpuid);

/* Append a device with a copy of its payload. */
int snap_state_add_device(struct snap_state *s, const char *name,
			  const void *payload, size_t len);

/* The device called name, or NULL. */
const struct snap_device *snap_state_find_device(const struct snap_state *s,
						 const char *name);

/* Check every field; errors say "state.bin: vcpu N: FIELD: ...". */
int snap_state_validate(const struct snap_state *s, struct snap_err *err);

/* Encode s (validated first) into a new buffer holding state.bin. */
int snap_state_encode(const struct snap_state *s, uint8_t **buf, size_t *len,
		      struct snap_err *err);

/* Decode and validate state.bin into a new state. */
int snap_state_decode(const uint8_t *buf, size_t len, struct snap_state **s,
		      struct snap_err *err);

/* Payload codec of the "uart8250" device type. */
int snap_uart8250_encode(const struct snap_uart8250 *u, uint8_t **buf,
			 size_t *len);
int snap_uart8250_decode(const uint8_t *buf, size_t len,
			 struct snap_uart8250 *u, struct snap_err *err);

/*
 * Payload codec of the "rtc" device type. Encode refuses (-EINVAL) what
 * decode would: an offset or index out of range.
 */
int snap_rtc_encode(const struct snap_rtc *r, uint8_t **buf, size_t *len);
int snap_rtc_decode(const uint8_t *buf, size_t len, struct snap_rtc *r,
		    struct snap_err *err);

#endif
