/*
 * The PVH start_info: command line, memory map and ACPI RSDP address.
 *
 * Layout as Xen defines it (xen/include/public/arch-x86/hvm/start_info.h).
 * The loader's copy lives in memory the guest may reuse (the AP trampoline
 * goes below 1 MiB), so what is needed is copied out first thing.
 */
#include "tests/guest/guest.h"

#define HVM_START_MAGIC	0x336ec578
#define E820_RAM	1
#define FALLBACK_RAM	(64ULL * MIB)	/* when the loader gives no map */
#define LOW_4G		0x100000000ULL	/* what the identity map covers */

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;		/* version >= 1 */
	uint32_t memmap_entries;	/* version >= 1 */
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info");

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_entry) == 24, "hvm_memmap_entry");

/* Is [paddr, paddr + len) inside the identity map (and not at 0)? */
static int mapped(uint64_t paddr, uint64_t len)
{
	return paddr != 0 && paddr < LOW_4G && len <= LOW_4G - paddr;
}

static void copy_cmdline(uint64_t paddr, struct boot_info *bi)
{
	const char *s = (const char *)(uintptr_t)paddr;
	size_t i;

	if (!mapped(paddr, sizeof(bi->cmdline)))
		return;
	for (i = 0; i + 1 < sizeof(bi->cmdline) && s[i]; i++)
		bi->cmdline[i] = s[i];
	bi->cmdline[i] = '\0';
}

static void copy_memmap(const struct hvm_start_info *si, struct boot_info *bi)
{
	const struct hvm_memmap_entry *e;
	uint32_t i;

	if (si->version < 1 || si->memmap_entries == 0 ||
	    !mapped(si->memmap_paddr, (uint64_t)si->memmap_entries * sizeof(*e)))
		return;
	e = (const struct hvm_memmap_entry *)(uintptr_t)si->memmap_paddr;
	for (i = 0; i < si->memmap_entries && bi->nr_ram < MAX_RAM_RANGES; i++) {
		if (e[i].type != E820_RAM || e[i].size == 0)
			continue;
		bi->ram[bi->nr_ram].addr = e[i].addr;
		bi->ram[bi->nr_ram].size = e[i].size;
		bi->nr_ram++;
	}
}

void bootinfo_parse(uint32_t start_info_paddr, struct boot_info *bi)
{
	const struct hvm_start_info *si =
		(const struct hvm_start_info *)(uintptr_t)start_info_paddr;

	memset(bi, 0, sizeof(*bi));
	if (start_info_paddr == 0 || si->magic != HVM_START_MAGIC) {
		kprintf("snapfs-guest no PVH start_info at 0x%x\n", start_info_paddr);
	} else {
		copy_cmdline(si->cmdline_paddr, bi);
		bi->rsdp_paddr = si->rsdp_paddr;
		copy_memmap(si, bi);
	}
	if (bi->nr_ram == 0) {
		bi->ram[0].addr = 0;
		bi->ram[0].size = FALLBACK_RAM;
		bi->nr_ram = 1;
	}
}
