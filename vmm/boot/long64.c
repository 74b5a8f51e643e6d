/* SPDX-License-Identifier: MIT */
/*
 * What a 64-bit entry needs in guest memory: a GDT and page tables that map
 * the first 4 GiB one to one (boot.h has the addresses).
 *
 * GDT (8-byte descriptors, flat: base 0, limit 0xfffff in 4 KiB units):
 *
 *   0x00  null
 *   0x08  null
 *   0x10  code, 64-bit (L=1, D=0), execute/read   BOOT_SEL_CODE64
 *   0x18  data, read/write                        BOOT_SEL_DATA64
 *
 * which is what the Linux boot protocol asks of a 64-bit loader: __BOOT_CS
 * at 0x10 and __BOOT_DS at 0x18.
 *
 * Page tables, 4 levels, 2 MiB pages (1 GiB pages need a CPU feature):
 * PML4[0] -> PDPT, PDPT[0..3] -> 4 PDs, PD i entry j maps
 * (i * 512 + j) * 2 MiB. The IOAPIC and LAPIC at 0xfec00000 and 0xfee00000
 * are mapped like the rest; the guest replaces all of it early.
 */
#include <errno.h>
#include <string.h>

#include "vmm/boot/le.h"
#include "vmm/boot/loader.h"

#define PAGE_SIZE	4096u
#define PT_ENTRIES	512u
#define PT_PRESENT	(1ull << 0)
#define PT_WRITE	(1ull << 1)
#define PT_LARGE	(1ull << 7)	/* in a PD: a 2 MiB page */
#define LARGE_PAGE	(2ull << 20)
#define N_PDS		4u		/* 4 GiB */

#define GDT_ENTRIES	4u
#define GDT_CODE64	0x00af9b000000ffffull	/* G, L, P, S, type 0xb */
#define GDT_DATA	0x00cf93000000ffffull	/* G, D/B, P, S, type 0x3 */

_Static_assert(BOOT_PD_ADDR + N_PDS * PAGE_SIZE == BOOT_LONG64_END,
	       "the page tables do not end where boot.h says");
_Static_assert(BOOT_GDT_ADDR + GDT_ENTRIES * 8 <= BOOT_PML4_ADDR,
	       "the GDT overlaps the page tables");
_Static_assert(BOOT_SEL_CODE64 / 8 < GDT_ENTRIES &&
	       BOOT_SEL_DATA64 / 8 < GDT_ENTRIES, "selectors outside the GDT");

static void write_gdt(uint8_t *gdt)
{
	memset(gdt, 0, PAGE_SIZE);
	le64_put(gdt + BOOT_SEL_CODE64, GDT_CODE64);
	le64_put(gdt + BOOT_SEL_DATA64, GDT_DATA);
}

static void write_tables(uint8_t *pml4, uint8_t *pdpt, uint8_t *pd)
{
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	le64_put(pml4, BOOT_PDPT_ADDR | PT_PRESENT | PT_WRITE);
	for (unsigned int i = 0; i < N_PDS; i++)
		le64_put(pdpt + 8 * i, (BOOT_PD_ADDR + i * PAGE_SIZE) |
				       PT_PRESENT | PT_WRITE);
	for (uint64_t j = 0; j < N_PDS * PT_ENTRIES; j++)
		le64_put(pd + 8 * j, j * LARGE_PAGE | PT_PRESENT | PT_WRITE |
				     PT_LARGE);
}

int boot_write_long64(struct mem *mem, struct boot_entry *entry,
		      struct snap_err *err)
{
	uint8_t *p = mem_ptr(mem, BOOT_LONG64_START,
			     BOOT_LONG64_END - BOOT_LONG64_START);

	if (!p)
		return snap_err_set(err, -EINVAL, "RAM below 1 MiB missing");
	write_gdt(p + (BOOT_GDT_ADDR - BOOT_LONG64_START));
	write_tables(p + (BOOT_PML4_ADDR - BOOT_LONG64_START),
		     p + (BOOT_PDPT_ADDR - BOOT_LONG64_START),
		     p + (BOOT_PD_ADDR - BOOT_LONG64_START));
	entry->mode = BOOT_LONG64;
	entry->cr3 = BOOT_PML4_ADDR;
	entry->gdt_base = BOOT_GDT_ADDR;
	entry->gdt_limit = GDT_ENTRIES * 8 - 1;
	return 0;
}
