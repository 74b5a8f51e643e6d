/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_VM_H
#define SNAPVM_VM_H

/*
 * One virtual machine: the KVM VM (TSS and identity-map pages, in-kernel
 * PIC, IOAPIC and PIT, the GSI routing that matches the MP table), its RAM
 * slots, its port bus and devices, its vCPUs, and how it ends.
 *
 * Threads: the caller's thread builds, waits (vm_wait) and destroys; each
 * vCPU has a thread; devices (which see the VM only through the narrow
 * struct dev_host of dev/dev.h) and the control socket may have their own.
 * The VM ends with the first vm_request_exit from any thread, or with
 * SIGINT, SIGTERM or SIGHUP.
 */

#include <stdbool.h>
#include <stdint.h>

#include "vmm/boot/mptable.h"
#include "snapshot/format/error.h"
#include "vmm/kvm.h"

struct mem;
struct devices;
struct dev_config;
struct ioport_bus;

struct vm;

/*
 * Build the VM on host with RAM mem (which must outlive it), cpus vCPUs
 * (1 to kvm_host_max_vcpus) and the devices devs asks for (may be NULL;
 * it must outlive the VM). Blocks the signals snapvm handles in the
 * calling thread: call it before any other thread exists. With debug,
 * vm_wait reports unclaimed port accesses.
 */
int vm_create(struct vm **out, const struct kvm_host *host, struct mem *mem,
	      unsigned int cpus, const struct dev_config *devs, bool debug,
	      struct snap_err *err);

/* Stop the vCPUs if they run, then free everything. vm may be NULL. */
void vm_destroy(struct vm *vm);

/* The VM's KVM descriptor, the host's /dev/kvm, its RAM and devices. */
int vm_fd(const struct vm *vm);
int vm_kvm_fd(const struct vm *vm);
struct mem *vm_mem(const struct vm *vm);
struct devices *vm_devices(const struct vm *vm);

/*
 * KVM's log of the pages the guest writes: start it on every RAM slot;
 * fetch ORs the pages written since the previous fetch (or the start) into
 * bitmap, one bit per 4 KiB page of the backing in its order (mem.h), and
 * clears KVM's log; the pages devices wrote (mem_ptr_write) are added too.
 * Call both with the vCPUs paused or not yet started.
 */
int vm_dirty_log_start(struct vm *vm, struct snap_err *err);
int vm_dirty_log_fetch(struct vm *vm, uint64_t *bitmap, struct snap_err *err);

/* The vCPU file descriptor of vCPU i (for boot registers and state). */
int vm_vcpu_fd(const struct vm *vm, unsigned int i);

/* What the MP table says of the processors. */
void vm_boot_cpus(const struct vm *vm, struct mptable_cpus *out);

/* Start every vCPU thread. */
int vm_start(struct vm *vm);

/*
 * Wait until the VM ends, stop every vCPU, print the reason's one line to
 * stderr (and the --debug report) and return the exit status.
 */
int vm_wait(struct vm *vm);

/*
 * End the VM with status; fmt (may be NULL) is the one line vm_wait
 * prints after "snapvm: ". Only the first request counts. Any thread.
 */
void vm_request_exit(struct vm *vm, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Pause: when it returns 0 every vCPU is out of KVM_RUN and parked, so
 * its state can be read. Resume lets them go on. Any thread but a vCPU's.
 */
int vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
bool vm_paused(struct vm *vm);

unsigned int vm_cpus(const struct vm *vm);
bool vm_debug(const struct vm *vm);	/* --debug */
uint64_t vm_mem_size(const struct vm *vm);
struct ioport_bus *vm_ioports(struct vm *vm);

/* Drive an ISA interrupt line (PIC and IOAPIC) to level 0 or 1. */
int vm_irq_line(struct vm *vm, unsigned int irq, int level);

#endif
