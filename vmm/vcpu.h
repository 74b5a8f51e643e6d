/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_VCPU_H
#define SNAPVM_VCPU_H

/*
 * A VM's vCPUs: one thread each running KVM_RUN, exits dispatched from a
 * table (vcpu.c), and the pause machinery a snapshot needs.
 *
 * Pausing sets every vCPU's kvm_run->immediate_exit and sends its thread
 * VCPU_KICK_SIGNAL. The signal is blocked in every thread except inside
 * KVM_RUN (KVM_SET_SIGNAL_MASK), so it interrupts KVM_RUN and nothing else;
 * immediate_exit covers a vCPU that is between two KVM_RUNs. Each thread
 * then parks on a condition variable; vcpus_pause returns once all of them
 * are parked, and until vcpus_resume no vCPU is in KVM_RUN: their state
 * can be read and written through vcpus_fd from the pausing thread.
 */

#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "snapshot/format/error.h"

#define VCPU_KICK_SIGNAL SIGUSR1

struct vm;
struct vcpus;

/*
 * Create n vCPUs on vm_fd, each with its CPUID from supported (as KVM
 * reports it) adjusted by cpuid_fixup. kvm_fd is /dev/kvm (for the size
 * of kvm_run). VCPU_KICK_SIGNAL must already be blocked.
 */
int vcpus_create(struct vcpus **out, struct vm *vm, int kvm_fd, int vm_fd,
		 unsigned int n, const struct kvm_cpuid2 *supported,
		 struct snap_err *err);

/* Stop the threads if they run, close everything. v may be NULL. */
void vcpus_destroy(struct vcpus *v);

int vcpus_fd(const struct vcpus *v, unsigned int i);

/* CPUID leaf 1 EAX (signature) and EDX (features) as vCPU 0 sees them. */
void vcpus_signature(const struct vcpus *v, uint32_t *eax, uint32_t *edx);

int vcpus_start(struct vcpus *v);

/* Every vCPU out of KVM_RUN and parked. -ESHUTDOWN when stopping. */
int vcpus_pause(struct vcpus *v);
void vcpus_resume(struct vcpus *v);
bool vcpus_paused(struct vcpus *v);

/* End every thread (paused or not) and wait for them. */
void vcpus_stop(struct vcpus *v);

#endif
