/* SPDX-License-Identifier: MIT */
/*
 * The VM's own KVM state (vstate.h): the in-kernel irqchip (PIC, IOAPIC),
 * the PIT, and the guest's clocks, the TSCs and kvmclock read together.
 */
#include "vmm/vstate.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "vmm/kvm.h"
#include "vmm/vstate_int.h"

static const char *const chip_names[] = {
	[KVM_IRQCHIP_PIC_MASTER] = "PIC master",
	[KVM_IRQCHIP_PIC_SLAVE] = "PIC slave",
	[KVM_IRQCHIP_IOAPIC] = "IOAPIC",
};

/* 1 when read, 0 when the VM has no in-kernel irqchip, or an error. */
static int get_chip(int vm_fd, uint32_t id, struct kvm_irqchip *chip,
		    struct snap_err *err)
{
	memset(chip, 0, sizeof(*chip));
	chip->chip_id = id;
	if (ioctl(vm_fd, KVM_GET_IRQCHIP, chip) == 0)
		return 1;
	if (errno == ENXIO)
		return 0;
	return snap_err_set(err, -errno, "KVM_GET_IRQCHIP (%s): %s",
			    chip_names[id], strerror(errno));
}

static int set_chip(int vm_fd, struct kvm_irqchip *chip, struct snap_err *err)
{
	if (ioctl(vm_fd, KVM_SET_IRQCHIP, chip) == 0)
		return 0;
	return snap_err_set(err, -errno, "KVM_SET_IRQCHIP (%s): %s",
			    chip_names[chip->chip_id], strerror(errno));
}

/* Where v saved MSR_IA32_TSC, or NULL. */
static struct snap_msr *saved_tsc(const struct snap_vcpu *v)
{
	for (uint32_t i = 0; i < v->n_msrs; i++)
		if (v->msrs[i].index == MSR_IA32_TSC)
			return &v->msrs[i];
	return NULL;
}

/* vCPU fd's TSC now into *tsc. */
static int read_tsc(int fd, uint32_t id, uint64_t *tsc, struct snap_err *err)
{
	struct {
		struct kvm_msrs head;
		struct kvm_msr_entry entry;
	} m = { .head.nmsrs = 1, .entry.index = MSR_IA32_TSC };
	int n;

	n = ioctl(fd, KVM_GET_MSRS, &m);
	if (n == 1) {
		*tsc = m.entry.data;
		return 0;
	}
	return snap_err_set(err, n < 0 ? -errno : -EIO, "vcpu %u: KVM_GET_MSRS: "
			    "the TSC: %s", id, n < 0 ? strerror(errno) :
			    "not read");
}

/* TSC ticks at khz in CLOCK_WINDOW_US; 0 when the rate is unknown. */
static uint64_t window_ticks(uint64_t khz)
{
	return khz * CLOCK_WINDOW_US / 1000u;
}

/*
 * kvmclock into *clock and every vCPU's TSC into its saved MSR, for one
 * instant. The TSCs are read before and after KVM_GET_CLOCK and each is
 * taken halfway; should the two readings of one be further apart than
 * CLOCK_WINDOW_US (a host that took the CPU away in between), the three
 * are read again, and the closest of CLOCK_TRIES is kept.
 */
static int save_clock(int vm_fd, const int *vcpu_fds, struct snap_state *s,
		      struct kvm_clock_data *clock, struct snap_err *err)
{
	uint32_t n = vcpu_fds ? s->n_vcpus : 0;
	uint64_t *before, *after, *best;
	uint64_t best_gap = UINT64_MAX;
	struct kvm_clock_data now;
	int ret = 0;

	before = calloc(3 * (size_t)n + 1, sizeof(*before));
	if (!before)
		return snap_err_set(err, -ENOMEM, "out of memory");
	after = before + n;
	best = after + n;
	for (unsigned int t = 0; !ret && t < CLOCK_TRIES; t++) {
		uint64_t gap = 0;

		for (uint32_t i = 0; !ret && i < n; i++)
			if (saved_tsc(&s->vcpus[i]))
				ret = read_tsc(vcpu_fds[i], s->vcpus[i].id,
					       &before[i], err);
		memset(&now, 0, sizeof(now));
		if (!ret && ioctl(vm_fd, KVM_GET_CLOCK, &now) < 0)
			ret = snap_err_set(err, -errno, "KVM_GET_CLOCK: %s",
					   strerror(errno));
		/* Without KVM's reading of the wall clock at that instant,
		 * ours, a moment later: a restore puts the clocks forward
		 * from it. */
		if (!(now.flags & KVM_CLOCK_REALTIME))
			now.realtime = vstate_wall_ns();
		for (uint32_t i = 0; !ret && i < n; i++) {
			uint64_t w;

			if (!saved_tsc(&s->vcpus[i]))
				continue;
			ret = read_tsc(vcpu_fds[i], s->vcpus[i].id, &after[i],
				       err);
			w = window_ticks(s->vcpus[i].tsc_khz);
			if (!ret && w && after[i] - before[i] > w &&
			    (after[i] - before[i]) / w > gap)
				gap = (after[i] - before[i]) / w;
		}
		if (ret || gap >= best_gap)
			continue;
		best_gap = gap;
		*clock = now;
		for (uint32_t i = 0; i < n; i++)
			best[i] = before[i] + (after[i] - before[i]) / 2;
		if (!gap)
			break;
	}
	for (uint32_t i = 0; !ret && i < n; i++) {
		struct snap_msr *tsc = saved_tsc(&s->vcpus[i]);

		if (tsc)
			tsc->value = best[i];
	}
	free(before);
	return ret;
}

int vstate_vm_save(int vm_fd, const int *vcpu_fds, struct snap_state *s,
		   struct snap_err *err)
{
	struct kvm_irqchip master, slave, ioapic;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	int ret;

	ret = get_chip(vm_fd, KVM_IRQCHIP_PIC_MASTER, &master, err);
	if (ret > 0)
		ret = get_chip(vm_fd, KVM_IRQCHIP_PIC_SLAVE, &slave, err);
	if (ret > 0)
		ret = get_chip(vm_fd, KVM_IRQCHIP_IOAPIC, &ioapic, err);
	if (ret < 0)
		return ret;
	s->has_pic = s->has_ioapic = ret;
	if (ret) {
		vstate_pic_to_snap(&master.chip.pic, &s->pic_master);
		vstate_pic_to_snap(&slave.chip.pic, &s->pic_slave);
		vstate_ioapic_to_snap(&ioapic.chip.ioapic, &s->ioapic);
	}
	ret = vstate_vm_has(vm_fd, KVM_GET_PIT2, &pit, "KVM_GET_PIT2", err);
	if (ret < 0)
		return ret;
	s->has_pit = ret;
	if (ret)
		vstate_pit_to_snap(&pit, &s->pit);
	ret = save_clock(vm_fd, vcpu_fds, s, &clock, err);
	if (ret)
		return ret;
	vstate_clock_to_snap(&clock, &s->clock);
	s->has_clock = true;
	return 0;
}

int vstate_vm_restore(int vm_fd, const struct snap_state *s,
		      struct snap_err *err)
{
	struct kvm_irqchip chip;
	struct kvm_pit_state2 pit;
	int ret;

	if (s->has_pic) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = KVM_IRQCHIP_PIC_MASTER;
		vstate_pic_to_kvm(&s->pic_master, &chip.chip.pic);
		ret = set_chip(vm_fd, &chip, err);
		if (ret)
			return ret;
		chip.chip_id = KVM_IRQCHIP_PIC_SLAVE;
		vstate_pic_to_kvm(&s->pic_slave, &chip.chip.pic);
		ret = set_chip(vm_fd, &chip, err);
		if (ret)
			return ret;
	}
	if (s->has_ioapic) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = KVM_IRQCHIP_IOAPIC;
		vstate_ioapic_to_kvm(&s->ioapic, &chip.chip.ioapic);
		ret = set_chip(vm_fd, &chip, err);
		if (ret)
			return ret;
	}
	if (s->has_pit) {
		vstate_pit_to_kvm(&s->pit, &pit);
		if (ioctl(vm_fd, KVM_SET_PIT2, &pit) < 0)
			return snap_err_set(err, -errno, "KVM_SET_PIT2: %s",
					    strerror(errno));
	}
	return 0;
}

int vstate_vcpu_clock_stopped(const struct vstate_host *h, int vcpu_fd,
			      uint32_t id, struct snap_err *err)
{
	if (!h->kvmclock_ctrl || ioctl(vcpu_fd, KVM_KVMCLOCK_CTRL, 0) == 0)
		return 0;
	if (errno == EINVAL)	/* the guest has no kvmclock on this vCPU */
		return 0;
	return snap_err_set(err, -errno, "vcpu %u: KVM_KVMCLOCK_CTRL: %s", id,
			    strerror(errno));
}

/*
 * Read vcpu_fd's TSC between two readings of the wall clock, into *tsc and
 * the wall time halfway (*at); again while the readings are more than
 * CLOCK_WINDOW_US apart, the closest of CLOCK_TRIES kept.
 */
static int read_tsc_at(int fd, uint32_t id, uint64_t *tsc, uint64_t *at,
		       struct snap_err *err)
{
	uint64_t best = UINT64_MAX, w0, w1, x;
	int ret;

	*tsc = 0;
	*at = 0;
	for (unsigned int t = 0; t < CLOCK_TRIES; t++) {
		w0 = vstate_wall_ns();
		ret = read_tsc(fd, id, &x, err);
		if (ret)
			return ret;
		w1 = vstate_wall_ns();
		/* A wall clock set back in between wraps: the worst. */
		if (t == 0 || w1 - w0 < best) {
			best = w1 - w0;
			*tsc = x;
			*at = w1 >= w0 ? w0 + best / 2 : w0;
		}
		if (best <= CLOCK_WINDOW_US * 1000u)
			break;
	}
	return 0;
}

int vstate_vcpu_tsc_since(const struct vstate_host *h, int vcpu_fd,
			  const struct snap_vcpu *v, uint64_t *since_ns,
			  struct snap_err *err)
{
	const struct snap_msr *saved = saved_tsc(v);
	uint64_t khz, tsc, at, ran_ns;
	int ret;

	if (!saved)
		return 0;
	ret = vstate_tsc_khz(h, vcpu_fd, v->id, v->tsc_khz, &khz, err);
	if (ret || !khz)
		return ret;
	ret = read_tsc_at(vcpu_fd, v->id, &tsc, &at, err);
	if (ret)
		return ret;
	ran_ns = tsc > saved->value ? (uint64_t)((unsigned __int128)
						(tsc - saved->value) *
						1000000u / khz) : 0;
	*since_ns = at > ran_ns ? at - ran_ns : 0;
	return 0;
}

uint64_t vstate_saved_at(const struct snap_state *s, uint64_t created_ns)
{
	if (s->has_clock && s->clock.realtime)
		return s->clock.realtime;
	return created_ns;
}

int vstate_vm_restore_clock(int vm_fd, const struct snap_state *s,
			    uint64_t since_ns, struct snap_err *err)
{
	struct kvm_clock_data clock;
	uint64_t saved, t0;

	if (!s->has_clock)
		return 0;
	vstate_clock_to_kvm(&s->clock, &clock);
	clock.flags = 0;	/* not KVM_CLOCK_REALTIME: see vstate.h */
	clock.realtime = 0;
	clock.host_tsc = 0;
	saved = clock.clock;
	/* Again while a host that took the CPU away kept it behind. */
	for (unsigned int t = 0; t < CLOCK_TRIES; t++) {
		t0 = vstate_wall_ns();
		clock.clock = saved;
		if (since_ns)
			clock.clock += vstate_wall_since(since_ns);
		if (ioctl(vm_fd, KVM_SET_CLOCK, &clock) < 0)
			return snap_err_set(err, -errno, "KVM_SET_CLOCK: %s",
					    strerror(errno));
		if (!since_ns ||
		    vstate_wall_ns() - t0 <= CLOCK_WINDOW_US * 1000u)
			break;
	}
	return 0;
}
