/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_VSTATE_H
#define SNAPVM_VSTATE_H

/*
 * A VM's KVM state into and out of libsnap's struct snap_state (state.h):
 * every vCPU's registers, FPU/XSAVE, XCRs, MSRs, LAPIC, events, MP state,
 * debug registers, CPUID and TSC rate, and the VM's PIC, IOAPIC, PIT and
 * kvmclock. Only KVM ioctls and copies: memory, devices and the order of a
 * whole save or restore belong to the caller.
 *
 * Saving, with no vCPU in KVM_RUN (vm_pause):
 *   vstate_host_init; vstate_vcpu_save for each vCPU; vstate_vm_save.
 *
 * Restoring into a new VM whose irqchip, PIT and memory slots exist (the
 * guest's RAM must be in place: MSRs such as kvmclock's and PV EOI's make
 * KVM map guest pages):
 *   1. vstate_host_init, then vstate_check, before any vCPU is created:
 *      whatever this host cannot take is refused while nothing is built;
 *   2. create the vCPUs (not run; a CPUID set on them is replaced);
 *   3. vstate_vm_restore: PIC, IOAPIC, PIT. After the vCPUs exist and before
 *      their state: KVM_SET_IRQCHIP delivers the IOAPIC's pending lines to
 *      the LAPICs there are, and each vCPU's KVM_SET_LAPIC then puts back
 *      exactly the IRR that was saved;
 *   4. vstate_vcpu_restore for each vCPU (and, when the clocks jump,
 *      vstate_vcpu_clock_stopped);
 *   5. the devices;
 *   6. vstate_vcpu_tsc_since for vCPU 0, for the next step;
 *   7. vstate_vm_restore_clock, immediately before starting the vCPUs.
 *
 * The guest's clocks: since_ns is the wall time (CLOCK_REALTIME, ns) that
 * the saved TSC and kvmclock stand for, and each is put where it would be
 * had it run from then to the moment it is written. They are written
 * milliseconds apart (the TSC with its vCPU, kvmclock last), so both must
 * be moved, or the guest's clocksource watchdog sees them disagree by that
 * much and gives up on the TSC. As KVM may not take a TSC exactly as
 * written (in the rig, vCPU 0's fell 0.4 to 5 ms behind), kvmclock
 * follows vCPU 0's TSC as it is (vstate_vcpu_tsc_since); each is read or
 * written within CLOCK_WINDOW_US (50 us) of a reading of the wall clock,
 * again when a host took the CPU away in between. snapvm restore passes
 * the time of the save (vstate_saved_at) for --clock now: both jump by
 * the time since, as after a long stop of the whole VM, and the guest's
 * wall clock reads the time of the restore; or the time just before the
 * first TSC is written, for --clock continue: the guest goes on from the
 * moment of its snapshot.
 * since_ns 0 writes both exactly as saved.
 * A jump longer than the guest's clocksource converts in one step
 * (kvm-clock's max_cycles, about half an hour) overflows that conversion
 * in kernels that do not guard it (Linux 6.1 does not): such a guest may
 * read a wrong time until its next tick puts its timekeeping right.
 *
 * Errors are one line without a file name ("vcpu 1: KVM_SET_MSRS: MSR
 * 0x4b564d01 refused"); the caller puts "state.bin: " or the snapshot's
 * directory in front. Returns are 0 or a negative errno.
 */

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "snapshot/format/error.h"
#include "snapshot/format/state.h"

/* What one VM on this host can save and take, found once per VM. */
struct vstate_host {
	uint32_t *msrs;		/* MSRs to save, in restore order: the */
	uint32_t n_msrs;	/* table in vstate.c that KVM supports */
	uint32_t *kvm_msrs;	/* KVM_GET_MSR_INDEX_LIST, sorted */
	uint32_t n_kvm_msrs;
	uint32_t xsave_size;	/* bytes of KVM's XSAVE area; 0: no XSAVE */
	bool xsave2;		/* KVM_GET_XSAVE2 (else KVM_GET_XSAVE) */
	uint64_t xcr0;		/* XCR0 features KVM supports */
	bool xcrs;		/* KVM_CAP_XCRS */
	bool debugregs;		/* KVM_CAP_DEBUGREGS */
	bool vcpu_events;	/* KVM_CAP_VCPU_EVENTS */
	bool get_tsc_khz;	/* KVM_CAP_GET_TSC_KHZ */
	bool tsc_control;	/* KVM_CAP_TSC_CONTROL: KVM_SET_TSC_KHZ scales */
	bool kvmclock_ctrl;	/* KVM_CAP_KVMCLOCK_CTRL */
	bool irqchip;		/* the VM has an in-kernel PIC and IOAPIC */
	bool pit;		/* the VM has an in-kernel PIT */
};

/*
 * Fill h from /dev/kvm (kvm_fd) and the VM (vm_fd), after the VM's irqchip
 * and PIT are created (h says whether a state must carry theirs).
 */
int vstate_host_init(struct vstate_host *h, int kvm_fd, int vm_fd,
		     struct snap_err *err);

/* Free what vstate_host_init allocated; h may be zeroed or released. */
void vstate_host_release(struct vstate_host *h);

/*
 * Refuse, with one line, a state this host cannot restore: an XSAVE area
 * larger than the host's or with features (XSTATE_BV) its XCR0 lacks, an
 * XCR0 with such features, an MSR KVM does not list (the first is named;
 * MTRRs, which KVM emulates without listing them, are taken), a TSC rate
 * KVM cannot be given, a missing PIC, IOAPIC or PIT the VM has, or one it
 * has not. -ENOTSUP for what the host lacks, -EINVAL for a value out of
 * range. Pure: no KVM calls.
 */
int vstate_check(const struct vstate_host *h, const struct snap_state *s,
		 struct snap_err *err);

/*
 * Read every part of vCPU vcpu_fd (id is its index, for v->id and errors)
 * into v, replacing v's XSAVE, MSR and CPUID arrays; v is unchanged on
 * error. KVM_GET_MSRS reading fewer MSRs than asked is an error naming the
 * first one it could not read.
 *
 * The vCPU must not be in KVM_RUN, and the exit it last returned with must
 * be complete: KVM finishes an I/O or MMIO exit (IN's data into RAX, RIP
 * past the instruction) only at the next KVM_RUN, in state no ioctl reads.
 * A vCPU paused after such an exit needs one KVM_RUN with immediate_exit
 * set (it returns EINTR at once, having run no guest instruction) before
 * it is saved; otherwise a restored guest runs the instruction again.
 */
int vstate_vcpu_save(const struct vstate_host *h, int vcpu_fd, uint32_t id,
		     struct snap_vcpu *v, struct snap_err *err);

/*
 * Put v into vCPU vcpu_fd, which has never run, in the order KVM needs:
 *
 *   CPUID          first: KVM checks later CRs, EFER, XCR0, XSAVE
 *                  features and some MSRs against the guest's CPUID, and
 *                  takes no other CPUID once the vCPU has run;
 *   TSC rate       KVM_SET_TSC_KHZ when the rate differs and KVM can scale
 *                  (KVM_CAP_TSC_CONTROL); without scaling the guest runs at
 *                  this host's rate. Before the MSRs: KVM turns the guest
 *                  TSC value into an offset at the rate in force;
 *   sregs          CRs, EFER and APIC base, before the LAPIC: the base's
 *                  x2APIC bit says how KVM_SET_LAPIC reads the APIC ID;
 *   MSRs           all but read-only ones (MTRRcap) and TSC_DEADLINE. The
 *                  TSC goes back as MSR_IA32_TSC, the saved guest value,
 *                  as QEMU and Firecracker do: KVM turns a host write into
 *                  the TSC offset (matching the vCPUs written within a
 *                  second of each other as synchronized) and leaves
 *                  TSC_ADJUST alone, which is written back as saved: the
 *                  guest sees its TSC continue from the snapshot, paused
 *                  time invisible, as kvmclock (vstate_vm_restore_clock).
 *                  With since_ns, the value is the saved one plus the wall
 *                  time since since_ns at the rate KVM now gives the vCPU
 *                  (KVM_GET_TSC_KHZ after the rate step), worked out just
 *                  before the ioctl, as kvmclock's is;
 *   regs           general registers, RIP, RFLAGS (KVM_SET_REGS drops a
 *                  pending exception: before events);
 *   XSAVE          the whole area (zero-padded to the host's size), or
 *                  KVM_SET_FPU when the state has none;
 *   XCRs;
 *   LAPIC          after sregs;
 *   TSC_DEADLINE   after the LAPIC: KVM ignores it unless the LAPIC timer
 *                  is already in TSC-deadline mode;
 *   events         with the validity flags KVM reported on save (shadow,
 *                  SMM, and payload or triple fault when the VM enabled
 *                  them), plus NMI_PENDING and SIPI_VECTOR, which KVM
 *                  always fills in on save (older kernels without saying);
 *   debug regs;
 *   MP state       last: KVM_SET_SREGS can change it.
 *
 * Before any ioctl, v is refused as vstate_check would refuse it. Every
 * failing ioctl gives one line naming the vCPU and the ioctl.
 */
int vstate_vcpu_restore(const struct vstate_host *h, int vcpu_fd,
			const struct snap_vcpu *v, uint64_t since_ns,
			struct snap_err *err);

/*
 * Tell the guest on vCPU vcpu_fd, restored, that it was stopped
 * (KVM_KVMCLOCK_CTRL: kvmclock's PVCLOCK_GUEST_STOPPED flag), so that
 * Linux's soft lockup and RCU stall watchdogs take its clocks' jump for a
 * stop. Nothing when KVM lacks it or the guest has no kvmclock there.
 */
int vstate_vcpu_clock_stopped(const struct vstate_host *h, int vcpu_fd,
			      uint32_t id, struct snap_err *err);

/*
 * The wall time (CLOCK_REALTIME, ns) that vCPU vcpu_fd's TSC, as KVM has
 * it now, stands for: when it read v's saved value, at the vCPU's rate.
 * KVM may not take a TSC as written: it works the value out into an
 * offset at the ioctl, a host that takes the CPU away between the reading
 * of the wall clock and the ioctl leaves the TSC behind, and a vCPU
 * written within a second of another gets that one's offset. kvmclock
 * follows vCPU 0's TSC when given this. *since_ns is left as it was when
 * v has no saved TSC or its rate is unknown.
 */
int vstate_vcpu_tsc_since(const struct vstate_host *h, int vcpu_fd,
			  const struct snap_vcpu *v, uint64_t *since_ns,
			  struct snap_err *err);

/*
 * The wall time (CLOCK_REALTIME, ns) at which s was saved: the saved
 * kvmclock's realtime (vstate_vm_save), else, in snapshots of builds that
 * did not fill it, created_ns (the manifest's created_unix_ns, taken once
 * memory.bin was written, so late by the time that took). 0 when neither
 * is known.
 */
uint64_t vstate_saved_at(const struct snap_state *s, uint64_t created_ns);

/*
 * Read the PICs and IOAPIC (KVM_GET_IRQCHIP), the PIT (KVM_GET_PIT2) and
 * kvmclock (KVM_GET_CLOCK) into s, setting has_pic, has_ioapic, has_pit
 * and has_clock; a VM without an in-kernel irqchip or PIT leaves them
 * false. The clock's realtime is the host's wall time at that reading:
 * KVM's when it gives it (the KVM_CLOCK_REALTIME flag: Linux 5.16 on, a
 * host whose clocksource is the TSC), else read just after the ioctl.
 * After the vCPUs' saves: each vCPU's TSC is read again from vcpu_fds
 * (one per vCPU of s; NULL: not) just before and just after kvmclock and
 * taken halfway, so that the TSCs and kvmclock stand for one instant; the
 * three are read again (8 times at most) while one TSC's two readings are
 * more than 50 us apart, a host that took the CPU away in between.
 */
int vstate_vm_save(int vm_fd, const int *vcpu_fds, struct snap_state *s,
		   struct snap_err *err);

/*
 * Put back the PICs, IOAPIC and PIT that s has (see the order above). The
 * PIT's counters restart from their saved counts now (KVM ignores the
 * saved load times).
 */
int vstate_vm_restore(int vm_fd, const struct snap_state *s,
		      struct snap_err *err);

/*
 * KVM_SET_CLOCK to the saved kvmclock value, plus the wall time since
 * since_ns when that is not 0 (see the guest's clocks above), when s has
 * one. Last, right before the vCPUs start: kvmclock runs from the moment
 * it is set, vCPUs running or not, and by then every vCPU's TSC and
 * kvmclock MSRs are written, so KVM computes each vCPU's pvclock from
 * their final values at its first entry. Without the KVM_CLOCK_REALTIME
 * flag, whose jump to the wall clock the TSC would not share (and which
 * kernels before 5.16 refuse): the move forward is ours, the TSC's too.
 */
int vstate_vm_restore_clock(int vm_fd, const struct snap_state *s,
			    uint64_t since_ns, struct snap_err *err);

/*
 * The conversions, pure, generated from state.h's field lists; KVM's and
 * libsnap's widths of every field are checked equal at compile time, so
 * neither direction narrows. Padding and reserved fields become zero.
 */
void vstate_regs_to_snap(const struct kvm_regs *k, struct snap_regs *s);
void vstate_regs_to_kvm(const struct snap_regs *s, struct kvm_regs *k);
void vstate_sregs_to_snap(const struct kvm_sregs *k, struct snap_sregs *s);
void vstate_sregs_to_kvm(const struct snap_sregs *s, struct kvm_sregs *k);
void vstate_fpu_to_snap(const struct kvm_fpu *k, struct snap_fpu *s);
void vstate_fpu_to_kvm(const struct snap_fpu *s, struct kvm_fpu *k);
void vstate_events_to_snap(const struct kvm_vcpu_events *k,
			   struct snap_events *s);
void vstate_events_to_kvm(const struct snap_events *s,
			  struct kvm_vcpu_events *k);
void vstate_debugregs_to_snap(const struct kvm_debugregs *k,
			      struct snap_debugregs *s);
void vstate_debugregs_to_kvm(const struct snap_debugregs *s,
			     struct kvm_debugregs *k);
void vstate_cpuid_to_snap(const struct kvm_cpuid_entry2 *k,
			  struct snap_cpuid_entry *s);
void vstate_cpuid_to_kvm(const struct snap_cpuid_entry *s,
			 struct kvm_cpuid_entry2 *k);
void vstate_xcr_to_snap(const struct kvm_xcr *k, struct snap_xcr *s);
void vstate_xcr_to_kvm(const struct snap_xcr *s, struct kvm_xcr *k);
void vstate_msr_to_snap(const struct kvm_msr_entry *k, struct snap_msr *s);
void vstate_msr_to_kvm(const struct snap_msr *s, struct kvm_msr_entry *k);
void vstate_pic_to_snap(const struct kvm_pic_state *k, struct snap_pic *s);
void vstate_pic_to_kvm(const struct snap_pic *s, struct kvm_pic_state *k);
void vstate_ioapic_to_snap(const struct kvm_ioapic_state *k,
			   struct snap_ioapic *s);
void vstate_ioapic_to_kvm(const struct snap_ioapic *s,
			  struct kvm_ioapic_state *k);
void vstate_pit_to_snap(const struct kvm_pit_state2 *k, struct snap_pit *s);
void vstate_pit_to_kvm(const struct snap_pit *s, struct kvm_pit_state2 *k);
void vstate_clock_to_snap(const struct kvm_clock_data *k,
			  struct snap_clock *s);
void vstate_clock_to_kvm(const struct snap_clock *s, struct kvm_clock_data *k);

#endif
