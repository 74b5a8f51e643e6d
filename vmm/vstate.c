/* SPDX-License-Identifier: MIT */
/*
 * A VM's KVM state into and out of struct snap_state (vstate.h): the table
 * of MSRs worth saving, the host's checks, and each vCPU's ioctls of save
 * and restore, each an ordered table of steps. The VM's own (irqchip, PIT,
 * clock) are in vstate_vm.c, the structure conversions in vstate_conv.c.
 */
#include "vmm/vstate.h"

#include <asm/kvm_para.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "vmm/kvm.h"
#include "vmm/vstate_int.h"

_Static_assert(SNAP_LAPIC_SIZE == KVM_APIC_REG_SIZE, "LAPIC page size");

#define XSAVE_LEGACY_SIZE	4096u	/* KVM_GET_XSAVE's struct kvm_xsave */
#define XSAVE_XSTATE_BV		512u	/* offset in the XSAVE header */
#define XCR_XCR0		0u
#define CPUID_1_EDX_MTRR	(1u << 12)

_Static_assert(sizeof(struct kvm_xsave) == XSAVE_LEGACY_SIZE, "kvm_xsave");

/* ---- the MSRs ------------------------------------------------------------ */

/* Architectural MSRs (Intel SDM vol. 4; AMD APM vol. 2, appendix A). */
#define MSR_IA32_TSC_ADJUST		0x0000003bu
#define MSR_IA32_SPEC_CTRL		0x00000048u
#define MSR_MTRRCAP			0x000000feu
#define MSR_IA32_SYSENTER_CS		0x00000174u
#define MSR_IA32_SYSENTER_ESP		0x00000175u
#define MSR_IA32_SYSENTER_EIP		0x00000176u
#define MSR_IA32_MISC_ENABLE		0x000001a0u
#define MSR_MTRR_PHYSBASE0		0x00000200u
#define MSR_MTRR_FIX64K_00000		0x00000250u
#define MSR_MTRR_FIX16K_80000		0x00000258u
#define MSR_MTRR_FIX16K_A0000		0x00000259u
#define MSR_MTRR_FIX4K_C0000		0x00000268u	/* ... F8000: 0x26f */
#define MSR_IA32_PAT			0x00000277u
#define MSR_MTRR_DEF_TYPE		0x000002ffu
#define MSR_IA32_TSC_DEADLINE		0x000006e0u
#define MSR_STAR			0xc0000081u
#define MSR_LSTAR			0xc0000082u
#define MSR_CSTAR			0xc0000083u
#define MSR_SYSCALL_MASK		0xc0000084u
#define MSR_KERNEL_GS_BASE		0xc0000102u
#define MSR_TSC_AUX			0xc0000103u

/* Variable MTRR pairs (base, mask) from 0x200 up to the fixed ones. */
#define MTRR_VAR_MAX	((MSR_MTRR_FIX64K_00000 - MSR_MTRR_PHYSBASE0) / 2)
#define MTRRCAP_VCNT	0xffu

#define MSR_UNLISTED	(1u << 0)	/* KVM emulates it without listing it */
#define MSR_READ_ONLY	(1u << 1)	/* saved for the record, never written */
#define MSR_LATE	(1u << 2)	/* written after the LAPIC */
#define MSR_MTRR	(1u << 3)	/* when the vCPU's CPUID has MTRRs */

/*
 * The MSRs that carry guest state, in the order they are written back.
 * EFER and the APIC base are in sregs. An MSR is saved when KVM lists it
 * (KVM_GET_MSR_INDEX_LIST) or it is MSR_UNLISTED.
 */
static const struct msr_spec {
	uint32_t index;
	unsigned int flags;
} msr_table[] = {
	/* TSC: the guest's counter, then its TSC_ADJUST; both written back
	 * as saved (see vstate_vcpu_restore). */
	{ MSR_IA32_TSC, 0 },
	{ MSR_IA32_TSC_ADJUST, 0 },
	/* SYSENTER/SYSEXIT: code segment, stack, entry point. */
	{ MSR_IA32_SYSENTER_CS, 0 },
	{ MSR_IA32_SYSENTER_ESP, 0 },
	{ MSR_IA32_SYSENTER_EIP, 0 },
	/* SYSCALL/SYSRET: segments, 64-bit and compat entries, RFLAGS mask. */
	{ MSR_STAR, 0 },
	{ MSR_LSTAR, 0 },
	{ MSR_CSTAR, 0 },
	{ MSR_SYSCALL_MASK, 0 },
	/* SWAPGS's other GS base. */
	{ MSR_KERNEL_GS_BASE, 0 },
	/* RDTSCP's and RDPID's value (the CPU number, for Linux). */
	{ MSR_TSC_AUX, 0 },
	/* Memory types: PAT. */
	{ MSR_IA32_PAT, 0 },
	/* Fast strings, MWAIT and friends. */
	{ MSR_IA32_MISC_ENABLE, 0 },
	/* MTRRs: emulated by KVM but absent from its list. MTRRcap, read
	 * only, gives the number of variable pairs (VCNT) saved after the
	 * table; then the default type and the eleven fixed ranges. */
	{ MSR_MTRRCAP, MSR_UNLISTED | MSR_READ_ONLY | MSR_MTRR },
	{ MSR_MTRR_DEF_TYPE, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX64K_00000, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX16K_80000, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX16K_A0000, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX4K_C0000 + 0, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX4K_C0000 + 1, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX4K_C0000 + 2, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX4K_C0000 + 3, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX4K_C0000 + 4, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX4K_C0000 + 5, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX4K_C0000 + 6, MSR_UNLISTED | MSR_MTRR },
	{ MSR_MTRR_FIX4K_C0000 + 7, MSR_UNLISTED | MSR_MTRR },
	/* The LAPIC timer's deadline, which KVM only takes in TSC-deadline
	 * mode: after the LAPIC. */
	{ MSR_IA32_TSC_DEADLINE, MSR_LATE },
	/* Speculation control (IBRS, STIBP, SSBD). */
	{ MSR_IA32_SPEC_CTRL, 0 },
	/* KVM's paravirtual clock: wall clock and per-vCPU system time, by
	 * their new and old numbers (each pair reads the same value). */
	{ MSR_KVM_WALL_CLOCK_NEW, 0 },
	{ MSR_KVM_SYSTEM_TIME_NEW, 0 },
	{ MSR_KVM_WALL_CLOCK, 0 },
	{ MSR_KVM_SYSTEM_TIME, 0 },
	/* Asynchronous page faults: the "page ready" vector before the
	 * enable that may ask for delivery by that interrupt. */
	{ MSR_KVM_ASYNC_PF_INT, 0 },
	{ MSR_KVM_ASYNC_PF_EN, 0 },
	/* Steal time, paravirtual EOI, halt polling control. */
	{ MSR_KVM_STEAL_TIME, 0 },
	{ MSR_KVM_PV_EOI_EN, 0 },
	{ MSR_KVM_POLL_CONTROL, 0 },
};

#define N_MSR_TABLE (sizeof(msr_table) / sizeof(msr_table[0]))

static unsigned int msr_flags(uint32_t index)
{
	for (size_t i = 0; i < N_MSR_TABLE; i++)
		if (msr_table[i].index == index)
			return msr_table[i].flags;
	if (index >= MSR_MTRR_PHYSBASE0 &&
	    index < MSR_MTRR_PHYSBASE0 + 2 * MTRR_VAR_MAX)
		return MSR_UNLISTED | MSR_MTRR;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool kvm_lists(const struct vstate_host *h, uint32_t index)
{
	return h->n_kvm_msrs && bsearch(&index, h->kvm_msrs, h->n_kvm_msrs,
					sizeof(index), cmp_u32);
}

/* Can this host's KVM_SET_MSRS take index back (or is it never written)? */
static bool host_takes_msr(const struct vstate_host *h, uint32_t index)
{
	return (msr_flags(index) & (MSR_UNLISTED | MSR_READ_ONLY)) ||
	       kvm_lists(h, index);
}

static struct kvm_msrs *msrs_new(uint32_t n)
{
	return calloc(1, sizeof(struct kvm_msrs) +
			 n * sizeof(struct kvm_msr_entry));
}

/* ---- the host ------------------------------------------------------------ */

static bool has_cap(int fd, int cap)
{
	return ioctl(fd, KVM_CHECK_EXTENSION, cap) > 0;
}

static int read_msr_list(struct vstate_host *h, int kvm_fd,
			 struct snap_err *err)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;
	int ret = 0;

	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 &&
	    errno != E2BIG)
		return snap_err_set(err, -errno, "KVM_GET_MSR_INDEX_LIST: %s",
				    strerror(errno));
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	h->kvm_msrs = calloc(probe.nmsrs ? probe.nmsrs : 1, sizeof(uint32_t));
	h->msrs = calloc(N_MSR_TABLE, sizeof(uint32_t));
	if (!list || !h->kvm_msrs || !h->msrs) {
		ret = snap_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	list->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		ret = snap_err_set(err, -errno, "KVM_GET_MSR_INDEX_LIST: %s",
				   strerror(errno));
		goto out;
	}
	memcpy(h->kvm_msrs, list->indices, list->nmsrs * sizeof(uint32_t));
	h->n_kvm_msrs = list->nmsrs;
	qsort(h->kvm_msrs, h->n_kvm_msrs, sizeof(uint32_t), cmp_u32);
	for (size_t i = 0; i < N_MSR_TABLE; i++)
		if ((msr_table[i].flags & MSR_UNLISTED) ||
		    kvm_lists(h, msr_table[i].index))
			h->msrs[h->n_msrs++] = msr_table[i].index;
out:
	free(list);
	return ret;
}

/* XCR0 as KVM supports it: CPUID leaf 0xD, sub-leaf 0, EDX:EAX. */
static int read_xcr0(struct vstate_host *h, int kvm_fd, struct snap_err *err)
{
	struct kvm_host kvm = { .fd = kvm_fd };
	struct kvm_cpuid2 *c;
	int ret = kvm_host_supported_cpuid(&kvm, &c);

	if (ret)
		return snap_err_set(err, ret, "KVM_GET_SUPPORTED_CPUID: %s",
				    strerror(-ret));
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0xd && c->entries[i].index == 0)
			h->xcr0 = c->entries[i].eax |
				  (uint64_t)c->entries[i].edx << 32;
	free(c);
	return 0;
}

int vstate_vm_has(int vm_fd, unsigned long req, void *arg, const char *name,
		  struct snap_err *err)
{
	if (ioctl(vm_fd, req, arg) == 0)
		return 1;
	if (errno == ENXIO)
		return 0;
	return snap_err_set(err, -errno, "%s: %s", name, strerror(errno));
}

int vstate_host_init(struct vstate_host *h, int kvm_fd, int vm_fd,
		     struct snap_err *err)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_PIC_MASTER };
	struct kvm_pit_state2 pit;
	int n, ret;

	memset(h, 0, sizeof(*h));
	ret = read_msr_list(h, kvm_fd, err);
	if (!ret)
		ret = read_xcr0(h, kvm_fd, err);
	if (ret)
		goto fail;
	n = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if (n > 0) {
		h->xsave2 = true;
		h->xsave_size = (uint32_t)n;
	} else if (has_cap(vm_fd, KVM_CAP_XSAVE)) {
		h->xsave_size = XSAVE_LEGACY_SIZE;
	}
	if (h->xsave_size > SNAP_XSAVE_MAX) {
		ret = snap_err_set(err, -ENOTSUP, "KVM_CAP_XSAVE2: an XSAVE "
				   "area of %u bytes, at most %u can be saved",
				   h->xsave_size, SNAP_XSAVE_MAX);
		goto fail;
	}
	h->xcrs = has_cap(vm_fd, KVM_CAP_XCRS);
	h->debugregs = has_cap(vm_fd, KVM_CAP_DEBUGREGS);
	h->vcpu_events = has_cap(vm_fd, KVM_CAP_VCPU_EVENTS);
	h->get_tsc_khz = has_cap(vm_fd, KVM_CAP_GET_TSC_KHZ);
	h->tsc_control = has_cap(vm_fd, KVM_CAP_TSC_CONTROL);
	h->kvmclock_ctrl = has_cap(vm_fd, KVM_CAP_KVMCLOCK_CTRL);
	ret = vstate_vm_has(vm_fd, KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP", err);
	if (ret < 0)
		goto fail;
	h->irqchip = ret;
	ret = vstate_vm_has(vm_fd, KVM_GET_PIT2, &pit, "KVM_GET_PIT2", err);
	if (ret < 0)
		goto fail;
	h->pit = ret;
	return 0;
fail:
	vstate_host_release(h);
	return ret;
}

void vstate_host_release(struct vstate_host *h)
{
	free(h->msrs);
	free(h->kvm_msrs);
	memset(h, 0, sizeof(*h));
}

/* ---- checks -------------------------------------------------------------- */

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int check_vcpu(const struct vstate_host *h, const struct snap_vcpu *v,
		      struct snap_err *err)
{
	uint64_t extra;

	if (v->xsave_size && !h->xsave_size)
		return snap_err_set(err, -ENOTSUP, "vcpu %u: xsave: %u bytes, "
				    "and this host's KVM has no XSAVE", v->id,
				    v->xsave_size);
	if (v->xsave_size > h->xsave_size)
		return snap_err_set(err, -ENOTSUP, "vcpu %u: xsave: %u bytes, "
				    "this host's KVM takes at most %u", v->id,
				    v->xsave_size, h->xsave_size);
	extra = v->xsave_size ? le64(v->xsave + XSAVE_XSTATE_BV) & ~h->xcr0 : 0;
	if (extra)
		return snap_err_set(err, -ENOTSUP, "vcpu %u: xsave: features "
				    "0x%llx (XSTATE_BV) not supported by this "
				    "host's KVM (XCR0 0x%llx)", v->id,
				    (unsigned long long)extra,
				    (unsigned long long)h->xcr0);
	for (uint32_t i = 0; i < v->n_xcrs; i++) {
		extra = v->xcrs[i].value & ~h->xcr0;
		if (v->xcrs[i].index == XCR_XCR0 && extra)
			return snap_err_set(err, -ENOTSUP, "vcpu %u: xcr0 "
					    "0x%llx: features 0x%llx not "
					    "supported by this host's KVM",
					    v->id,
					    (unsigned long long)v->xcrs[i].value,
					    (unsigned long long)extra);
	}
	for (uint32_t i = 0; i < v->n_msrs; i++)
		if (!host_takes_msr(h, v->msrs[i].index))
			return snap_err_set(err, -ENOTSUP, "vcpu %u: MSR 0x%x "
					    "is not supported by this host's "
					    "KVM", v->id, v->msrs[i].index);
	if (v->tsc_khz > UINT32_MAX)
		return snap_err_set(err, -EINVAL, "vcpu %u: tsc_khz %llu, at "
				    "most %u expected", v->id,
				    (unsigned long long)v->tsc_khz, UINT32_MAX);
	return 0;
}

int vstate_check(const struct vstate_host *h, const struct snap_state *s,
		 struct snap_err *err)
{
	int ret;

	if (h->irqchip && !s->has_pic)
		return snap_err_set(err, -EINVAL, "pic: missing, and the VM "
				    "has an in-kernel irqchip");
	if (h->irqchip && !s->has_ioapic)
		return snap_err_set(err, -EINVAL, "ioapic: missing, and the VM "
				    "has an in-kernel irqchip");
	if (!h->irqchip && (s->has_pic || s->has_ioapic))
		return snap_err_set(err, -ENOTSUP, "%s: saved, but the VM has "
				    "no in-kernel irqchip",
				    s->has_pic ? "pic" : "ioapic");
	if (h->pit && !s->has_pit)
		return snap_err_set(err, -EINVAL, "pit: missing, and the VM "
				    "has an in-kernel PIT");
	if (!h->pit && s->has_pit)
		return snap_err_set(err, -ENOTSUP, "pit: saved, but the VM has "
				    "no in-kernel PIT");
	for (uint32_t i = 0; i < s->n_vcpus; i++) {
		ret = check_vcpu(h, &s->vcpus[i], err);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- one vCPU ------------------------------------------------------------ */

/* One vCPU's state as KVM's ioctls take it. */
struct vcpu_io {
	struct kvm_mp_state mp_state;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xsave *xsave;	/* h->xsave_size bytes, or NULL */
	struct kvm_xcrs xcrs;
	struct kvm_cpuid2 *cpuid;	/* NULL: none to restore */
	struct kvm_msrs *msrs;		/* all; on restore, the early ones */
	struct kvm_msrs *late_msrs;	/* on restore, after the LAPIC */
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	uint64_t tsc_khz;
};

struct vcpu_ctx {
	const struct vstate_host *h;
	int fd;
	uint32_t id;
	struct vcpu_io io;
	uint64_t since_ns;	/* restore: what the saved TSC stands for */
	struct kvm_msr_entry *tsc;	/* its entry, to move at the write */
	uint64_t tsc_khz;	/* the rate to move it at */
	struct snap_err *err;
};

static void vcpu_io_free(struct vcpu_io *io)
{
	free(io->xsave);
	free(io->cpuid);
	free(io->msrs);
	free(io->late_msrs);
}

static int vcpu_ioctl(struct vcpu_ctx *c, unsigned long req, void *arg,
		      const char *name)
{
	if (ioctl(c->fd, req, arg) >= 0)
		return 0;
	return snap_err_set(c->err, -errno, "vcpu %u: %s: %s", c->id, name,
			    strerror(errno));
}

#define VCPU_IOCTL(c, req, arg) vcpu_ioctl(c, req, arg, #req)

/*
 * A step of a save or a restore: an ioctl whose argument is a part of
 * struct vcpu_io, done when the host has the capability (a bool of struct
 * vstate_host, by offset); or a function, for the steps that do more.
 */
struct vcpu_step {
	const char *name;
	unsigned long req;
	size_t part;
	size_t cap;
	int (*run)(struct vcpu_ctx *c);
};

#define ALWAYS		SIZE_MAX
#define HOST_HAS(cap)	offsetof(struct vstate_host, cap)
#define IOCTL_STEP(req, part, cap) \
	{ #req, req, offsetof(struct vcpu_io, part), cap, NULL }
#define RUN_STEP(fn)	{ NULL, 0, 0, ALWAYS, fn }
#define N_STEPS(steps)	(sizeof(steps) / sizeof(steps[0]))

static int vcpu_run_steps(struct vcpu_ctx *c, const struct vcpu_step *steps,
			  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct vcpu_step *s = &steps[i];
		int ret;

		if (s->cap != ALWAYS &&
		    !*(const bool *)((const char *)c->h + s->cap))
			continue;
		ret = s->run ? s->run(c) : vcpu_ioctl(c, s->req,
						       (char *)&c->io + s->part,
						       s->name);
		if (ret)
			return ret;
	}
	return 0;
}

/* KVM_GET_MSRS or KVM_SET_MSRS: all of them or the first one failed. */
static int vcpu_msrs(struct vcpu_ctx *c, unsigned long req, const char *name,
		     struct kvm_msrs *m)
{
	int n;

	if (!m || !m->nmsrs)
		return 0;
	n = ioctl(c->fd, req, m);
	if (n < 0)
		return snap_err_set(c->err, -errno, "vcpu %u: %s: %s", c->id,
				    name, strerror(errno));
	if ((uint32_t)n < m->nmsrs)
		return snap_err_set(c->err, req == KVM_GET_MSRS ? -ENOTSUP :
				    -EINVAL, "vcpu %u: %s: MSR 0x%x %s", c->id,
				    name, m->entries[n].index,
				    req == KVM_GET_MSRS ? "could not be read" :
				    "refused");
	return 0;
}

static int out_of_memory(struct vcpu_ctx *c)
{
	return snap_err_set(c->err, -ENOMEM, "vcpu %u: out of memory", c->id);
}

static bool cpuid_has_mtrr(const struct kvm_cpuid2 *cpuid)
{
	for (uint32_t i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == 1)
			return cpuid->entries[i].edx & CPUID_1_EDX_MTRR;
	return false;
}

/* ---- saving -------------------------------------------------------------- */

static int get_xsave(struct vcpu_ctx *c)
{
	if (!c->h->xsave_size)
		return 0;
	c->io.xsave = calloc(1, c->h->xsave_size);
	if (!c->io.xsave)
		return out_of_memory(c);
	if (c->h->xsave2)
		return VCPU_IOCTL(c, KVM_GET_XSAVE2, c->io.xsave);
	return VCPU_IOCTL(c, KVM_GET_XSAVE, c->io.xsave);
}

/* KVM_GET_CPUID2 with room for n entries: 0, -E2BIG (too few) or an error. */
static int read_cpuid(struct vcpu_ctx *c, uint32_t n)
{
	c->io.cpuid->nent = n;
	if (ioctl(c->fd, KVM_GET_CPUID2, c->io.cpuid) == 0)
		return 0;
	if (errno == E2BIG)
		return -E2BIG;
	return snap_err_set(c->err, -errno, "vcpu %u: KVM_GET_CPUID2: %s",
			    c->id, strerror(errno));
}

/*
 * What was given to KVM_SET_CPUID2. KVM refuses (E2BIG) room for fewer
 * entries than the vCPU has, but kernels before 6.4 report the count
 * neither then nor on success (nent stays as given): the count is the
 * least room KVM accepts, found by bisection when nent comes back as is.
 */
static int get_cpuid(struct vcpu_ctx *c)
{
	uint32_t lo = 0, hi = SNAP_MAX_CPUID;
	int ret;

	c->io.cpuid = calloc(1, sizeof(*c->io.cpuid) + SNAP_MAX_CPUID *
				sizeof(c->io.cpuid->entries[0]));
	if (!c->io.cpuid)
		return out_of_memory(c);
	ret = read_cpuid(c, hi);
	if (ret == -E2BIG)
		return snap_err_set(c->err, -ENOSPC, "vcpu %u: KVM_GET_CPUID2: "
				    "more than %u entries", c->id,
				    SNAP_MAX_CPUID);
	if (ret || c->io.cpuid->nent < hi)
		return ret;
	while (lo < hi) {		/* hi is enough, lo - 1 is not */
		uint32_t mid = lo + (hi - lo) / 2;

		ret = read_cpuid(c, mid);
		if (ret && ret != -E2BIG)
			return ret;
		if (ret)
			lo = mid + 1;
		else
			hi = mid;
	}
	return read_cpuid(c, hi);
}

/* The host's list, less MTRRs without CPUID's MTRR, plus VCNT pairs. */
static int get_msrs(struct vcpu_ctx *c)
{
	const struct vstate_host *h = c->h;
	bool mtrr = cpuid_has_mtrr(c->io.cpuid);
	uint32_t vcnt = 0, n = 0;
	struct kvm_msrs *m;
	int ret;

	if (mtrr) {
		m = msrs_new(1);
		if (!m)
			return out_of_memory(c);
		m->nmsrs = 1;
		m->entries[0].index = MSR_MTRRCAP;
		ret = vcpu_msrs(c, KVM_GET_MSRS, "KVM_GET_MSRS", m);
		vcnt = (uint32_t)(m->entries[0].data & MTRRCAP_VCNT);
		free(m);
		if (ret)
			return ret;
		if (vcnt > MTRR_VAR_MAX)
			vcnt = MTRR_VAR_MAX;
	}
	m = msrs_new(h->n_msrs + 2 * vcnt);
	if (!m)
		return out_of_memory(c);
	c->io.msrs = m;
	for (uint32_t i = 0; i < h->n_msrs; i++)
		if (mtrr || !(msr_flags(h->msrs[i]) & MSR_MTRR))
			m->entries[n++].index = h->msrs[i];
	for (uint32_t i = 0; i < 2 * vcnt; i++)
		m->entries[n++].index = MSR_MTRR_PHYSBASE0 + i;
	m->nmsrs = n;
	return vcpu_msrs(c, KVM_GET_MSRS, "KVM_GET_MSRS", m);
}

static int get_tsc_khz(struct vcpu_ctx *c)
{
	int khz;

	if (!c->h->get_tsc_khz)
		return 0;
	khz = ioctl(c->fd, KVM_GET_TSC_KHZ, 0);
	if (khz < 0)
		return snap_err_set(c->err, -errno, "vcpu %u: KVM_GET_TSC_KHZ: "
				    "%s", c->id, strerror(errno));
	c->io.tsc_khz = (uint64_t)khz;
	return 0;
}

static const struct vcpu_step save_steps[] = {
	/* First: KVM_GET_MP_STATE takes a pending INIT or SIPI, which may
	 * reset the registers; everything after sees the vCPU it left. */
	IOCTL_STEP(KVM_GET_MP_STATE, mp_state, ALWAYS),
	IOCTL_STEP(KVM_GET_REGS, regs, ALWAYS),
	IOCTL_STEP(KVM_GET_SREGS, sregs, ALWAYS),
	IOCTL_STEP(KVM_GET_FPU, fpu, ALWAYS),
	RUN_STEP(get_xsave),
	IOCTL_STEP(KVM_GET_XCRS, xcrs, HOST_HAS(xcrs)),
	RUN_STEP(get_cpuid),
	RUN_STEP(get_msrs),		/* after CPUID: its MTRR bit */
	IOCTL_STEP(KVM_GET_LAPIC, lapic, ALWAYS),
	IOCTL_STEP(KVM_GET_VCPU_EVENTS, events, HOST_HAS(vcpu_events)),
	IOCTL_STEP(KVM_GET_DEBUGREGS, debugregs, HOST_HAS(debugregs)),
	RUN_STEP(get_tsc_khz),
};

static int vcpu_io_to_snap(struct vcpu_ctx *c, struct snap_vcpu *v)
{
	const struct vcpu_io *io = &c->io;
	uint32_t n_msrs = io->msrs->nmsrs, n_cpuid = io->cpuid->nent;
	int ret;

	if (io->xcrs.nr_xcrs > SNAP_MAX_XCRS || n_msrs > SNAP_MAX_MSRS)
		return snap_err_set(c->err, -ENOSPC, "vcpu %u: %u XCRs and %u "
				    "MSRs, at most %u and %u can be saved",
				    c->id, io->xcrs.nr_xcrs, n_msrs,
				    SNAP_MAX_XCRS, SNAP_MAX_MSRS);
	ret = snap_vcpu_reserve(v, io->xsave ? c->h->xsave_size : 0, n_msrs,
				n_cpuid);
	if (ret)
		return out_of_memory(c);
	v->id = c->id;
	vstate_regs_to_snap(&io->regs, &v->regs);
	vstate_sregs_to_snap(&io->sregs, &v->sregs);
	vstate_fpu_to_snap(&io->fpu, &v->fpu);
	if (io->xsave)
		memcpy(v->xsave, io->xsave, v->xsave_size);
	v->n_xcrs = io->xcrs.nr_xcrs;
	for (uint32_t i = 0; i < v->n_xcrs; i++)
		vstate_xcr_to_snap(&io->xcrs.xcrs[i], &v->xcrs[i]);
	for (uint32_t i = 0; i < n_msrs; i++)
		vstate_msr_to_snap(&io->msrs->entries[i], &v->msrs[i]);
	memcpy(v->lapic, io->lapic.regs, sizeof(v->lapic));
	vstate_events_to_snap(&io->events, &v->events);
	v->mp_state = io->mp_state.mp_state;
	vstate_debugregs_to_snap(&io->debugregs, &v->debugregs);
	for (uint32_t i = 0; i < n_cpuid; i++)
		vstate_cpuid_to_snap(&io->cpuid->entries[i], &v->cpuid[i]);
	v->tsc_khz = io->tsc_khz;
	return 0;
}

int vstate_vcpu_save(const struct vstate_host *h, int vcpu_fd, uint32_t id,
		     struct snap_vcpu *v, struct snap_err *err)
{
	struct vcpu_ctx c = { .h = h, .fd = vcpu_fd, .id = id, .err = err };
	int ret;

	ret = vcpu_run_steps(&c, save_steps, N_STEPS(save_steps));
	if (!ret)
		ret = vcpu_io_to_snap(&c, v);
	vcpu_io_free(&c.io);
	return ret;
}

/* ---- restoring ----------------------------------------------------------- */

/*
 * The flags KVM_GET_VCPU_EVENTS sets for the parts it filled in, which go
 * back as they came (PAYLOAD and TRIPLE_FAULT only appear when the VM
 * enabled them, and KVM_SET_VCPU_EVENTS wants them only then); and the
 * parts KVM always fills in, which older kernels do not flag.
 */
#define EVENTS_SAVED_FLAGS (KVM_VCPUEVENT_VALID_SHADOW |		\
			    KVM_VCPUEVENT_VALID_SMM |			\
			    KVM_VCPUEVENT_VALID_PAYLOAD |		\
			    KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
#define EVENTS_ALWAYS_FLAGS (KVM_VCPUEVENT_VALID_NMI_PENDING |		\
			     KVM_VCPUEVENT_VALID_SIPI_VECTOR)

static int vcpu_io_from_snap(struct vcpu_ctx *c, const struct snap_vcpu *v)
{
	struct vcpu_io *io = &c->io;

	io->msrs = msrs_new(v->n_msrs);
	io->late_msrs = msrs_new(v->n_msrs);
	if (!io->msrs || !io->late_msrs)
		return out_of_memory(c);
	for (uint32_t i = 0; i < v->n_msrs; i++) {
		unsigned int flags = msr_flags(v->msrs[i].index);
		struct kvm_msrs *m = flags & MSR_LATE ? io->late_msrs : io->msrs;

		if (!(flags & MSR_READ_ONLY))
			vstate_msr_to_kvm(&v->msrs[i],
					  &m->entries[m->nmsrs++]);
	}
	if (v->n_cpuid) {
		io->cpuid = calloc(1, sizeof(*io->cpuid) + v->n_cpuid *
					  sizeof(io->cpuid->entries[0]));
		if (!io->cpuid)
			return out_of_memory(c);
		io->cpuid->nent = v->n_cpuid;
		for (uint32_t i = 0; i < v->n_cpuid; i++)
			vstate_cpuid_to_kvm(&v->cpuid[i],
					    &io->cpuid->entries[i]);
	}
	if (v->xsave_size) {
		io->xsave = calloc(1, c->h->xsave_size);
		if (!io->xsave)
			return out_of_memory(c);
		memcpy(io->xsave, v->xsave, v->xsave_size);
	}
	vstate_regs_to_kvm(&v->regs, &io->regs);
	vstate_sregs_to_kvm(&v->sregs, &io->sregs);
	vstate_fpu_to_kvm(&v->fpu, &io->fpu);
	io->xcrs.nr_xcrs = v->n_xcrs;
	for (uint32_t i = 0; i < v->n_xcrs; i++)
		vstate_xcr_to_kvm(&v->xcrs[i], &io->xcrs.xcrs[i]);
	memcpy(io->lapic.regs, v->lapic, sizeof(io->lapic.regs));
	vstate_events_to_kvm(&v->events, &io->events);
	io->events.flags = (v->events.flags & EVENTS_SAVED_FLAGS) |
			   EVENTS_ALWAYS_FLAGS;
	io->mp_state.mp_state = v->mp_state;
	vstate_debugregs_to_kvm(&v->debugregs, &io->debugregs);
	io->tsc_khz = v->tsc_khz;
	return 0;
}

static int set_cpuid(struct vcpu_ctx *c)
{
	return c->io.cpuid ? VCPU_IOCTL(c, KVM_SET_CPUID2, c->io.cpuid) : 0;
}

static int set_tsc_khz(struct vcpu_ctx *c)
{
	int now;

	if (!c->io.tsc_khz || !c->h->tsc_control)
		return 0;
	if (c->h->get_tsc_khz) {
		now = ioctl(c->fd, KVM_GET_TSC_KHZ, 0);
		if (now < 0)
			return snap_err_set(c->err, -errno, "vcpu %u: "
					    "KVM_GET_TSC_KHZ: %s", c->id,
					    strerror(errno));
		if ((uint64_t)now == c->io.tsc_khz)
			return 0;
	}
	if (ioctl(c->fd, KVM_SET_TSC_KHZ, (unsigned long)c->io.tsc_khz) < 0)
		return snap_err_set(c->err, -errno, "vcpu %u: KVM_SET_TSC_KHZ: "
				    "%llu kHz: %s", c->id,
				    (unsigned long long)c->io.tsc_khz,
				    strerror(errno));
	return 0;
}

uint64_t vstate_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int vstate_tsc_khz(const struct vstate_host *h, int fd, uint32_t id,
		   uint64_t saved_khz, uint64_t *khz, struct snap_err *err)
{
	int n;

	*khz = saved_khz;
	if (!h->get_tsc_khz)
		return 0;
	n = ioctl(fd, KVM_GET_TSC_KHZ, 0);
	if (n < 0)
		return snap_err_set(err, -errno, "vcpu %u: KVM_GET_TSC_KHZ: %s",
				    id, strerror(errno));
	*khz = (uint64_t)n;
	return 0;
}

uint64_t vstate_wall_since(uint64_t since_ns)
{
	uint64_t now = vstate_wall_ns();

	return now > since_ns ? now - since_ns : 0;
}

/*
 * With since_ns, the TSC goes where it would be had it run since then, at
 * the rate KVM gives the vCPU now (set_tsc_khz came first; without scaling
 * it is this host's): here the rate and the entry, before the sregs, so
 * that set_msrs has only the sum to do.
 */
static int tsc_rate(struct vcpu_ctx *c)
{
	int ret;

	if (!c->since_ns || !c->io.msrs)
		return 0;
	for (uint32_t i = 0; i < c->io.msrs->nmsrs; i++)
		if (c->io.msrs->entries[i].index == MSR_IA32_TSC)
			c->tsc = &c->io.msrs->entries[i];
	if (!c->tsc)
		return 0;		/* none saved: KVM's own goes on */
	ret = vstate_tsc_khz(c->h, c->fd, c->id, c->io.tsc_khz, &c->tsc_khz,
			     c->err);
	if (ret)
		return ret;
	if (!c->tsc_khz)
		return snap_err_set(c->err, -ENOTSUP, "vcpu %u: TSC rate "
				    "unknown, the TSC cannot be put forward",
				    c->id);
	return 0;
}

/*
 * The TSC's value is worked out from the wall clock just before the ioctl
 * that writes it, as kvmclock's is before KVM_SET_CLOCK: the two then
 * agree to within microseconds, where Linux's clocksource watchdog calls
 * the TSC unstable at a few hundred. It comes before TSC_DEADLINE (a late
 * MSR), so a deadline that passed meanwhile fires at once.
 */
static int set_msrs(struct vcpu_ctx *c)
{
	if (c->tsc)
		c->tsc->data += (uint64_t)((unsigned __int128)
					   vstate_wall_since(c->since_ns) *
					   c->tsc_khz / 1000000u);
	return vcpu_msrs(c, KVM_SET_MSRS, "KVM_SET_MSRS", c->io.msrs);
}

static int set_xsave_or_fpu(struct vcpu_ctx *c)
{
	if (c->io.xsave)
		return VCPU_IOCTL(c, KVM_SET_XSAVE, c->io.xsave);
	return VCPU_IOCTL(c, KVM_SET_FPU, &c->io.fpu);
}

static int set_late_msrs(struct vcpu_ctx *c)
{
	return vcpu_msrs(c, KVM_SET_MSRS, "KVM_SET_MSRS", c->io.late_msrs);
}

/* The order, and why, is in vstate.h at vstate_vcpu_restore. */
static const struct vcpu_step restore_steps[] = {
	RUN_STEP(set_cpuid),
	RUN_STEP(set_tsc_khz),
	RUN_STEP(tsc_rate),
	IOCTL_STEP(KVM_SET_SREGS, sregs, ALWAYS),
	RUN_STEP(set_msrs),
	IOCTL_STEP(KVM_SET_REGS, regs, ALWAYS),
	RUN_STEP(set_xsave_or_fpu),
	IOCTL_STEP(KVM_SET_XCRS, xcrs, HOST_HAS(xcrs)),
	IOCTL_STEP(KVM_SET_LAPIC, lapic, ALWAYS),
	RUN_STEP(set_late_msrs),
	IOCTL_STEP(KVM_SET_VCPU_EVENTS, events, HOST_HAS(vcpu_events)),
	IOCTL_STEP(KVM_SET_DEBUGREGS, debugregs, HOST_HAS(debugregs)),
	IOCTL_STEP(KVM_SET_MP_STATE, mp_state, ALWAYS),
};

int vstate_vcpu_restore(const struct vstate_host *h, int vcpu_fd,
			const struct snap_vcpu *v, uint64_t since_ns,
			struct snap_err *err)
{
	struct vcpu_ctx c = { .h = h, .fd = vcpu_fd, .id = v->id,
			      .since_ns = since_ns, .err = err };
	int ret;

	ret = check_vcpu(h, v, err);
	if (!ret)
		ret = vcpu_io_from_snap(&c, v);
	if (!ret)
		ret = vcpu_run_steps(&c, restore_steps, N_STEPS(restore_steps));
	vcpu_io_free(&c.io);
	return ret;
}
