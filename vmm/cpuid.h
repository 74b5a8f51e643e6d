/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_CPUID_H
#define SNAPVM_CPUID_H

/*
 * The CPUID a vCPU sees: what KVM_GET_SUPPORTED_CPUID reports, adjusted for
 * this vCPU and the VM's topology by a table of leaf fixups (cpuid.c).
 *
 * Topology: one package of ncpus cores, one thread per core, APIC id = vCPU
 * index. Leaf 1 carries the APIC id, the logical count and the hypervisor
 * bit; leaf 4 the cores per package; leaves 0xB and 0x1F (when KVM reports
 * them) are generated: SMT level (1 thread), core level (ncpus), end; AMD's
 * 0x80000008 and 0x8000001E the same facts. KVM's paravirt leaves
 * (0x40000000, "KVMKVMKVM", and 0x40000001) are kept as KVM reports them.
 * Pure: no KVM calls.
 */

#include <linux/kvm.h>

/* Extra entries cpuid_fixup may add (generated topology sub-leaves). */
#define CPUID_EXTRA	8

/*
 * Write the CPUID of vCPU cpu (0 <= cpu < ncpus) into out (room for max
 * entries). Returns the number of entries, -EINVAL for a bad cpu or ncpus,
 * -ENOSPC when max is too small.
 */
int cpuid_fixup(const struct kvm_cpuid_entry2 *in, unsigned int n,
		struct kvm_cpuid_entry2 *out, unsigned int max,
		unsigned int cpu, unsigned int ncpus);

/* Bits of the APIC id that number the cores of ncpus (0 for 1). */
unsigned int cpuid_core_bits(unsigned int ncpus);

#endif
