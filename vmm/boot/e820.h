/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_BOOT_E820_H
#define SNAPVM_BOOT_E820_H

/*
 * The guest's physical memory map in e820 terms, shared by the boot
 * protocols (PVH's memmap now, the Linux zero page later):
 *
 *   RAM       [0, 640 KiB)
 *   reserved  [640 KiB, 1 MiB)      VGA hole and BIOS area (the MP table)
 *   RAM       [1 MiB, end of low RAM)   low RAM ends at 3 GiB at most
 *   RAM       [4 GiB, ...)          when there is more than 3 GiB
 *
 * The 32-bit hole [3 GiB, 4 GiB) with the IOAPIC and LAPIC is left out.
 */

#include <stdint.h>

#include "vmm/mem.h"

#define E820_RAM	1
#define E820_RESERVED	2
#define E820_MAX	8

#define E820_LOW_END	0xa0000ull	/* 640 KiB */
#define E820_BIOS_END	0x100000ull	/* 1 MiB */

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/*
 * Build the map of the RAM regions r[0, n) (from mem_layout; the first one
 * starting at 0 and larger than 1 MiB) into out. Returns the number of
 * entries, or -EINVAL when the regions cannot be described.
 */
int e820_build(const struct mem_region *r, unsigned int n,
	       struct e820_entry out[E820_MAX]);

#endif
