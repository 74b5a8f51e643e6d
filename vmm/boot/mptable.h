/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_BOOT_MPTABLE_H
#define SNAPVM_BOOT_MPTABLE_H

/*
 * The Intel MultiProcessor Specification 1.4 table, which tells the guest
 * its processors and interrupt routing when there is no ACPI:
 *
 *   floating pointer "_MP_" (16 bytes) at gpa, pointing to the table after it
 *   configuration table "PCMP" (44-byte header), then its entries:
 *     one processor per vCPU (APIC id = index, enabled, BSP flag on 0)
 *     bus 0 "ISA"
 *     the IOAPIC, id = ncpus, version 0x11, at 0xfec00000
 *     I/O interrupts: ISA IRQ 0 -> IOAPIC pin 2, IRQ 1 and 3-15 -> same pin
 *       (IRQ 2 is the PICs' cascade and reaches no pin)
 *     local interrupts: ExtINT on LINT0, NMI on LINT1 of every LAPIC
 *
 * Both checksums make their bytes sum to zero. The KVM GSI routing that
 * matches it is set up in vm.c.
 */

#include <stddef.h>
#include <stdint.h>

#define MPTABLE_ADDR		0xf0000u	/* BIOS area: where guests scan */
#define MPTABLE_MAX_CPUS	254u		/* APIC ids 0..253, IOAPIC 254 */
#define MPTABLE_IOAPIC_ADDR	0xfec00000u
#define MPTABLE_LAPIC_ADDR	0xfee00000u
#define MPTABLE_IOAPIC_VERSION	0x11u
#define MPTABLE_LAPIC_VERSION	0x14u
#define MPTABLE_IRQ0_PIN	2u

struct mptable_cpus {
	unsigned int count;
	uint32_t signature;	/* CPUID 1 EAX: family, model, stepping */
	uint32_t features;	/* CPUID 1 EDX */
};

/* Bytes of the floating pointer and table for ncpus processors. */
size_t mptable_size(unsigned int ncpus);

/*
 * Write the floating pointer and the table for it to live at guest address
 * gpa into buf. Returns the bytes written, -EINVAL for 0 or more than
 * MPTABLE_MAX_CPUS processors, -ENOSPC when len is too small.
 */
long mptable_build(uint8_t *buf, size_t len, uint32_t gpa,
		   const struct mptable_cpus *cpus);

#endif
