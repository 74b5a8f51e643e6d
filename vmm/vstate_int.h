/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_VSTATE_INT_H
#define SNAPVM_VSTATE_INT_H

/* What vstate.c and vstate_vm.c share, and nobody else sees. */

#include <stdint.h>

#include "snapshot/format/error.h"
#include "vmm/vstate.h"

#define MSR_IA32_TSC	0x00000010u

/*
 * How long a clock's reading or writing may take (Linux's clocksource
 * watchdog calls the TSC unstable when it and kvmclock disagree by a few
 * hundred us), and how often to try again when a host took the CPU away
 * in the middle of one.
 */
#define CLOCK_WINDOW_US		50u
#define CLOCK_TRIES		8u

/* CLOCK_REALTIME in ns. */
uint64_t vstate_wall_ns(void);

/* Wall-clock nanoseconds since since_ns; 0 if the clock is behind it. */
uint64_t vstate_wall_since(uint64_t since_ns);

/*
 * The TSC rate (kHz) of vCPU fd into *khz: KVM's for it now where KVM
 * tells (KVM_GET_TSC_KHZ), else saved_khz.
 */
int vstate_tsc_khz(const struct vstate_host *h, int fd, uint32_t id,
		   uint64_t saved_khz, uint64_t *khz, struct snap_err *err);

/* Does the VM have it? Yes (1), no (0: ENXIO) or an error. */
int vstate_vm_has(int vm_fd, unsigned long req, void *arg, const char *name,
		  struct snap_err *err);

#endif
