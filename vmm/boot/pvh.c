/* SPDX-License-Identifier: MIT */
/*
 * PVH boot of an ELF kernel (Xen's "HVM direct boot", which QEMU, Firecracker
 * and cloud-hypervisor also use for Linux's vmlinux).
 *
 * The kernel names its 32-bit entry in an ELF note (owner "Xen", type 18,
 * XEN_ELFNOTE_PHYS32_ENTRY). The loader puts each PT_LOAD segment at its
 * physical address, writes struct hvm_start_info and enters the kernel in
 * flat 32-bit protected mode, paging off, with EBX = start_info's address.
 *
 * hvm_start_info, version 1 (xen/include/public/arch-x86/hvm/start_info.h),
 * little-endian:
 *
 *    0  u32 magic           0x336ec578
 *    4  u32 version         1
 *    8  u32 flags           0
 *   12  u32 nr_modules      0, or 1 for an initrd
 *   16  u64 modlist_paddr   array of nr_modules hvm_modlist_entry
 *   24  u64 cmdline_paddr   NUL-terminated command line
 *   32  u64 rsdp_paddr      0: no ACPI (the MP table describes the CPUs)
 *   40  u64 memmap_paddr    array of memmap_entries hvm_memmap_entry
 *   48  u32 memmap_entries
 *   52  u32 reserved        0
 *
 * hvm_modlist_entry (32 bytes): u64 paddr, u64 size, u64 cmdline_paddr (0),
 * u64 reserved. hvm_memmap_entry (24 bytes): u64 addr, u64 size, u32 type
 * (e820 types: 1 RAM, 2 reserved), u32 reserved.
 */
#include <errno.h>
#include <string.h>

#include "vmm/boot/e820.h"
#include "vmm/boot/le.h"
#include "vmm/boot/loader.h"

#define PVH_MAGIC		0x336ec578u
#define PVH_VERSION		1u
#define PVH_START_INFO_SIZE	56u
#define PVH_MODLIST_SIZE	32u
#define PVH_MEMMAP_ENTRY_SIZE	24u

#define PVH_START_INFO_ADDR	BOOT_DATA_START			/* 0x1000 */
#define PVH_MODLIST_ADDR	(BOOT_DATA_START + 0x100u)	/* 0x1100 */
#define PVH_MEMMAP_ADDR		(BOOT_DATA_START + 0x200u)	/* 0x1200 */

_Static_assert(PVH_MEMMAP_ADDR + E820_MAX * PVH_MEMMAP_ENTRY_SIZE <=
	       BOOT_CMDLINE_ADDR, "PVH memmap overlaps the command line");

/* Guest memory no segment may cover: boot data and the BIOS area. */
static const struct {
	uint64_t start, end;
	const char *what;
} pvh_reserved[] = {
	{ BOOT_DATA_START, BOOT_DATA_END, "the boot data" },
	{ E820_LOW_END, E820_BIOS_END, "the BIOS area" },
};

static bool pvh_probe(const struct boot_file *kernel)
{
	return elf_is_elf(kernel->data, kernel->size);
}

static int check_segment(const struct boot_image *img,
			 const struct elf_segment *s, struct snap_err *err)
{
	const char *path = img->kernel.path;
	unsigned long long a = s->paddr, b = s->paddr + s->memsz;

	if (!mem_layout_contains(img->regions, img->n_regions, s->paddr,
				 s->memsz))
		return snap_err_set(err, -E2BIG, "--kernel %s: segment %u "
				    "[0x%llx, 0x%llx) outside RAM (%llu MiB): "
				    "RAM too small for the image", path, s->phdr,
				    a, b, (unsigned long long)(img->mem_size >> 20));
	for (size_t i = 0; i < sizeof(pvh_reserved) / sizeof(pvh_reserved[0]);
	     i++)
		if (a < pvh_reserved[i].end && pvh_reserved[i].start < b)
			return snap_err_set(err, -EINVAL, "--kernel %s: segment "
					    "%u [0x%llx, 0x%llx) overlaps %s",
					    path, s->phdr, a, b,
					    pvh_reserved[i].what);
	return 0;
}

static int pvh_prepare(struct boot_image *img, struct snap_err *err)
{
	struct elf_info *elf = &img->u.elf;
	uint64_t low_end = 0;
	int ret;

	ret = elf_parse(img->kernel.data, img->kernel.size, elf, err);
	if (ret)
		return snap_err_prefix(err, ret, "--kernel %s", img->kernel.path);
	if (!elf->has_phys32_entry)
		return snap_err_set(err, -ENOEXEC, "--kernel %s: ELF without a "
				    "PVH entry note (Xen note type 18)",
				    img->kernel.path);
	for (unsigned int i = 0; i < elf->n_loads; i++) {
		const struct elf_segment *s = &elf->loads[i];

		ret = check_segment(img, s, err);
		if (ret)
			return ret;
		if (s->paddr < img->regions[0].size &&
		    s->paddr + s->memsz > low_end)
			low_end = s->paddr + s->memsz;
	}
	return boot_place_initrd(img, low_end, BOOT_INITRD_NO_LIMIT, err);
}

static void put_memmap(uint8_t *p, const struct e820_entry *e, int n)
{
	for (int i = 0; i < n; i++, p += PVH_MEMMAP_ENTRY_SIZE) {
		le64_put(p, e[i].addr);
		le64_put(p + 8, e[i].size);
		le32_put(p + 16, e[i].type);
		le32_put(p + 20, 0);
	}
}

static int pvh_load(struct boot_image *img, struct mem *mem,
		    const struct mptable_cpus *cpus, struct boot_entry *entry,
		    struct snap_err *err)
{
	const struct mem_region *r;
	struct e820_entry map[E820_MAX];
	unsigned int n_regions = mem_regions(mem, &r);
	size_t cmdline_len = strlen(img->cmdline) + 1;
	uint8_t *si, *p;
	int n, ret;

	ret = boot_write_low(mem, cpus, err);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < img->u.elf.n_loads; i++) {
		const struct elf_segment *s = &img->u.elf.loads[i];

		p = mem_ptr(mem, s->paddr, s->memsz);
		if (!p)
			return snap_err_set(err, -E2BIG, "--kernel %s: segment "
					    "%u outside RAM", img->kernel.path,
					    s->phdr);
		memcpy(p, img->kernel.data + s->offset, s->filesz);
		memset(p + s->filesz, 0, s->memsz - s->filesz);
	}

	n = e820_build(r, n_regions, map);
	if (n < 0)
		return snap_err_set(err, n, "no memory map for this RAM");
	si = mem_ptr(mem, PVH_START_INFO_ADDR, BOOT_DATA_END - BOOT_DATA_START);
	if (!si)
		return snap_err_set(err, -EINVAL, "RAM below 1 MiB missing");
	put_memmap(si + (PVH_MEMMAP_ADDR - PVH_START_INFO_ADDR), map, n);
	memcpy(si + (BOOT_CMDLINE_ADDR - PVH_START_INFO_ADDR), img->cmdline,
	       cmdline_len);

	le32_put(si, PVH_MAGIC);
	le32_put(si + 4, PVH_VERSION);
	le32_put(si + 8, 0);
	le32_put(si + 12, img->initrd.data ? 1 : 0);
	le64_put(si + 16, img->initrd.data ? PVH_MODLIST_ADDR : 0);
	le64_put(si + 24, BOOT_CMDLINE_ADDR);
	le64_put(si + 32, 0);
	le64_put(si + 40, PVH_MEMMAP_ADDR);
	le32_put(si + 48, (uint32_t)n);
	le32_put(si + 52, 0);

	if (img->initrd.data) {
		uint8_t *mod = si + (PVH_MODLIST_ADDR - PVH_START_INFO_ADDR);

		p = mem_ptr(mem, img->initrd_addr, img->initrd.size);
		if (!p)
			return snap_err_set(err, -E2BIG, "--initrd %s: outside "
					    "RAM", img->initrd.path);
		memcpy(p, img->initrd.data, img->initrd.size);
		le64_put(mod, img->initrd_addr);
		le64_put(mod + 8, img->initrd.size);
		le64_put(mod + 16, 0);
		le64_put(mod + 24, 0);
	}

	entry->mode = BOOT_PROTECTED32;
	entry->rip = img->u.elf.phys32_entry;
	entry->rbx = PVH_START_INFO_ADDR;
	return 0;
}

const struct boot_loader boot_pvh_loader = {
	.name = "pvh",
	.probe = pvh_probe,
	.prepare = pvh_prepare,
	.load = pvh_load,
};
