/* SPDX-License-Identifier: MIT */
#include "vmm/boot/e820.h"

#include <errno.h>

int e820_build(const struct mem_region *r, unsigned int n,
	       struct e820_entry out[E820_MAX])
{
	unsigned int o = 0;

	if (n == 0 || n > MEM_MAX_REGIONS || r[0].gpa != 0 ||
	    r[0].size <= E820_BIOS_END)
		return -EINVAL;
	out[o++] = (struct e820_entry){ 0, E820_LOW_END, E820_RAM };
	out[o++] = (struct e820_entry){ E820_LOW_END,
					E820_BIOS_END - E820_LOW_END,
					E820_RESERVED };
	out[o++] = (struct e820_entry){ E820_BIOS_END,
					r[0].size - E820_BIOS_END, E820_RAM };
	for (unsigned int i = 1; i < n; i++)
		out[o++] = (struct e820_entry){ r[i].gpa, r[i].size, E820_RAM };
	return (int)o;
}
