/* SPDX-License-Identifier: MIT */
/*
 * The Linux x86 boot protocol (Documentation/arch/x86/boot.rst): a bzImage
 * entered through its 64-bit entry point.
 *
 * A bzImage is (setup_sects + 1) 512-byte sectors of real-mode setup code,
 * which holds the setup header at 0x1f1, then the protected-mode kernel
 * (the payload). We never run the setup code: the payload goes to its load
 * address, a zero page (struct boot_params) describes the machine, and the
 * kernel starts at the load address + 0x200 in 64-bit mode with RSI = the
 * zero page, on identity page tables and a GDT with __BOOT_CS at 0x10 and
 * __BOOT_DS at 0x18 (long64.c).
 *
 * The setup header fields read and written (offsets in the file and in the
 * zero page alike, little-endian):
 *
 *   0x1f1  u8  setup_sects        setup code sectors after the boot sector,
 *                                 0 meaning 4
 *   0x1fe  u16 boot_flag          0xaa55
 *   0x200  u8  jump               0xeb; the header ends at 0x202 + the
 *                                 byte at 0x201
 *   0x202  u32 header             "HdrS"
 *   0x206  u16 version            protocol, 0x020c for 2.12
 *   0x210  u8  type_of_loader     written: 0xff, a loader without an id
 *   0x211  u8  loadflags          LOADED_HIGH (bit 0) must be set;
 *                                 CAN_USE_HEAP (bit 7) stays clear
 *   0x218  u32 ramdisk_image      written: the initrd's address
 *   0x21c  u32 ramdisk_size       written: its size
 *   0x228  u32 cmd_line_ptr       written: the command line's address
 *   0x22c  u32 initrd_addr_max    the highest address the initrd may touch
 *   0x230  u32 kernel_alignment   for a relocatable kernel
 *   0x234  u8  relocatable_kernel
 *   0x236  u16 xloadflags         XLF_KERNEL_64 (bit 0): the 64-bit entry
 *   0x238  u32 cmdline_size       longest command line, without its NUL
 *   0x258  u64 pref_address       where the kernel wants to run
 *   0x260  u32 init_size          bytes it needs from where it runs
 *
 * and of the rest of the zero page, which starts out all zero:
 *
 *   0x0c0  u32 ext_ramdisk_image  the initrd's address >> 32
 *   0x0c4  u32 ext_ramdisk_size   its size >> 32
 *   0x0c8  u32 ext_cmd_line_ptr   the command line's address >> 32
 *   0x1e8  u8  e820_entries
 *   0x2d0      e820_table         20 bytes each: u64 addr, u64 size,
 *                                 u32 type
 *
 * No ACPI tables: Linux finds no RSDP and reads the MP table.
 */
#include <errno.h>
#include <string.h>

#include "vmm/boot/e820.h"
#include "vmm/boot/le.h"
#include "vmm/boot/loader.h"

#define BZ_SETUP_SECTS		0x1f1
#define BZ_BOOT_FLAG		0x1fe
#define BZ_JUMP_OFFSET		0x201
#define BZ_HEADER		0x202
#define BZ_VERSION		0x206
#define BZ_TYPE_OF_LOADER	0x210
#define BZ_LOADFLAGS		0x211
#define BZ_RAMDISK_IMAGE	0x218
#define BZ_RAMDISK_SIZE		0x21c
#define BZ_CMD_LINE_PTR		0x228
#define BZ_INITRD_ADDR_MAX	0x22c
#define BZ_KERNEL_ALIGNMENT	0x230
#define BZ_RELOCATABLE		0x234
#define BZ_XLOADFLAGS		0x236
#define BZ_CMDLINE_SIZE		0x238
#define BZ_PREF_ADDRESS		0x258
#define BZ_INIT_SIZE		0x260

#define ZP_EXT_RAMDISK_IMAGE	0x0c0
#define ZP_EXT_RAMDISK_SIZE	0x0c4
#define ZP_EXT_CMD_LINE_PTR	0x0c8
#define ZP_E820_ENTRIES		0x1e8
#define ZP_E820_TABLE		0x2d0
#define ZP_E820_ENTRY_SIZE	20
#define ZP_SIZE			4096
#define ZP_HEADER_END_MAX	0x290	/* edd_mbr_sig_buffer follows */

#define BZ_BOOT_FLAG_MAGIC	0xaa55
#define BZ_MIN_VERSION		0x020c	/* 2.12: xloadflags */
#define BZ_SECTOR		512
#define BZ_DEFAULT_SECTS	4
#define BZ_HEADER_END_MIN	(BZ_INIT_SIZE + 4)
#define BZ_LOADED_HIGH		0x01
#define BZ_CAN_USE_HEAP		0x80
#define BZ_XLF_KERNEL_64	0x0001
#define BZ_LOADER_UNKNOWN	0xff
#define BZ_ENTRY64		0x200	/* after the load address */
#define BZ_LOAD_LOW		0x100000ull

_Static_assert(BOOT_ZERO_PAGE_ADDR + ZP_SIZE <= BOOT_CMDLINE_ADDR,
	       "the zero page overlaps the command line");
_Static_assert(ZP_E820_TABLE + E820_MAX * ZP_E820_ENTRY_SIZE <= ZP_SIZE,
	       "the e820 table does not fit in the zero page");

static bool bz_probe(const struct boot_file *kernel)
{
	return kernel->size >= BZ_HEADER + 4 &&
	       le16_get(kernel->data + BZ_BOOT_FLAG) == BZ_BOOT_FLAG_MAGIC &&
	       memcmp(kernel->data + BZ_HEADER, "HdrS", 4) == 0;
}

/* The format: version, header size, setup size; the header is in the file. */
static int check_format(struct boot_image *img, struct snap_err *err)
{
	const struct boot_file *k = &img->kernel;
	struct bzimage_info *bz = &img->u.bz;
	unsigned int version, sects;

	if (k->size < BZ_VERSION + 2)
		return snap_err_set(err, -ENOEXEC, "--kernel %s: bzImage of "
				    "%zu bytes, truncated", k->path, k->size);
	version = le16_get(k->data + BZ_VERSION);
	if (version < BZ_MIN_VERSION)
		return snap_err_set(err, -ENOEXEC, "--kernel %s: boot protocol "
				    "%u.%02u, 2.12 or later expected", k->path,
				    version >> 8, version & 0xff);
	bz->header_end = BZ_HEADER + k->data[BZ_JUMP_OFFSET];
	if (bz->header_end < BZ_HEADER_END_MIN ||
	    bz->header_end > ZP_HEADER_END_MAX)
		return snap_err_set(err, -ENOEXEC, "--kernel %s: setup header "
				    "ends at 0x%zx, between 0x%x and 0x%x "
				    "expected", k->path, bz->header_end,
				    BZ_HEADER_END_MIN, ZP_HEADER_END_MAX);
	sects = k->data[BZ_SETUP_SECTS];
	bz->setup_size = ((sects ? sects : BZ_DEFAULT_SECTS) + 1) * BZ_SECTOR;
	if (k->size <= bz->setup_size)
		return snap_err_set(err, -ENOEXEC, "--kernel %s: bzImage of "
				    "%zu bytes, truncated: %zu bytes of setup, "
				    "then the kernel expected", k->path,
				    k->size, bz->setup_size);
	return 0;
}

/* What the kernel asks of its loader that we do not or cannot give. */
static int check_flags(const struct boot_image *img, struct snap_err *err)
{
	const uint8_t *h = img->kernel.data;
	uint32_t align = le32_get(h + BZ_KERNEL_ALIGNMENT);

	if (!(le16_get(h + BZ_XLOADFLAGS) & BZ_XLF_KERNEL_64))
		return snap_err_set(err, -ENOEXEC, "--kernel %s: no 64-bit "
				    "entry (XLF_KERNEL_64 clear in xloadflags)",
				    img->kernel.path);
	if (!(h[BZ_LOADFLAGS] & BZ_LOADED_HIGH))
		return snap_err_set(err, -ENOEXEC, "--kernel %s: loads below "
				    "1 MiB (LOADED_HIGH clear in loadflags), "
				    "a bzImage expected", img->kernel.path);
	if (h[BZ_RELOCATABLE] && (align == 0 || (align & (align - 1))))
		return snap_err_set(err, -ENOEXEC, "--kernel %s: kernel_"
				    "alignment 0x%x, a power of two expected",
				    img->kernel.path, align);
	return 0;
}

/*
 * Where the kernel runs and where we load it. boot.rst's description of
 * init_size says where a kernel runs: a relocatable one at the load
 * address raised to pref_address and aligned up to kernel_alignment, any
 * other at pref_address; Linux's decompressor moves itself there before
 * anything else. So a relocatable kernel is loaded right there, at
 * pref_address (or 0x100000 when it names none), aligned: loading it lower,
 * at 0x100000, would save no RAM (init_size bytes are needed at
 * pref_address all the same) and only add a copy. A kernel that is not
 * relocatable is loaded at 0x100000, the protocol's address for it, and
 * moves itself to pref_address.
 */
static void choose_addresses(struct bzimage_info *bz, const uint8_t *h)
{
	uint64_t pref = le64_get(h + BZ_PREF_ADDRESS);
	uint64_t align = le32_get(h + BZ_KERNEL_ALIGNMENT);
	uint64_t start = pref > BZ_LOAD_LOW ? pref : BZ_LOAD_LOW;

	if (!h[BZ_RELOCATABLE]) {
		bz->load_addr = BZ_LOAD_LOW;
		bz->runtime_start = start;
		return;
	}
	if (start < MEM_HOLE_START)	/* else it fails the RAM check */
		start = (start + align - 1) & ~(align - 1);
	bz->load_addr = bz->runtime_start = start;
}

static int check_in_ram(const struct boot_image *img, const char *what,
			uint64_t addr, uint64_t len, struct snap_err *err)
{
	/* Low RAM only: below 3 GiB and inside the 4 GiB identity map. */
	if (mem_layout_contains(img->regions, 1, addr, len))
		return 0;
	return snap_err_set(err, -E2BIG, "--kernel %s: %s [0x%llx, 0x%llx) "
			    "outside RAM (%llu MiB): RAM too small for the "
			    "image", img->kernel.path, what,
			    (unsigned long long)addr,
			    (unsigned long long)(addr + len),
			    (unsigned long long)(img->mem_size >> 20));
}

static int bz_prepare(struct boot_image *img, struct snap_err *err)
{
	struct bzimage_info *bz = &img->u.bz;
	const uint8_t *h = img->kernel.data;
	uint64_t payload, kernel_end, initrd_limit;
	uint32_t cmdline_size;
	int ret;

	ret = check_format(img, err);
	if (ret)
		return ret;
	ret = check_flags(img, err);
	if (ret)
		return ret;
	choose_addresses(bz, h);
	bz->init_size = le32_get(h + BZ_INIT_SIZE);
	payload = img->kernel.size - bz->setup_size;
	ret = check_in_ram(img, "kernel", bz->load_addr, payload, err);
	if (ret)
		return ret;
	ret = check_in_ram(img, "init_size", bz->runtime_start,
			   bz->init_size ? bz->init_size : 1, err);
	if (ret)
		return ret;
	cmdline_size = le32_get(h + BZ_CMDLINE_SIZE);
	if (strlen(img->cmdline) > cmdline_size)
		return snap_err_set(err, -E2BIG, "--cmdline: %zu bytes, at "
				    "most %u expected (the kernel's "
				    "cmdline_size)", strlen(img->cmdline),
				    cmdline_size);
	kernel_end = bz->runtime_start + bz->init_size;
	if (bz->load_addr + payload > kernel_end)
		kernel_end = bz->load_addr + payload;
	initrd_limit = (uint64_t)le32_get(h + BZ_INITRD_ADDR_MAX) + 1;
	return boot_place_initrd(img, kernel_end, initrd_limit, err);
}

static void put_e820(uint8_t *zp, const struct e820_entry *e, int n)
{
	uint8_t *p = zp + ZP_E820_TABLE;

	zp[ZP_E820_ENTRIES] = (uint8_t)n;
	for (int i = 0; i < n; i++, p += ZP_E820_ENTRY_SIZE) {
		le64_put(p, e[i].addr);
		le64_put(p + 8, e[i].size);
		le32_put(p + 16, e[i].type);
	}
}

/* The zero page: the kernel's setup header, then what we tell it. */
static void put_zero_page(uint8_t *zp, const struct boot_image *img)
{
	const struct bzimage_info *bz = &img->u.bz;
	uint64_t rd = img->initrd.data ? img->initrd_addr : 0;
	uint64_t rd_size = img->initrd.data ? img->initrd.size : 0;

	memset(zp, 0, ZP_SIZE);
	memcpy(zp + BZ_SETUP_SECTS, img->kernel.data + BZ_SETUP_SECTS,
	       bz->header_end - BZ_SETUP_SECTS);
	zp[BZ_TYPE_OF_LOADER] = BZ_LOADER_UNKNOWN;
	/* The heap is the setup code's, which a 64-bit entry skips. */
	zp[BZ_LOADFLAGS] &= (uint8_t)~BZ_CAN_USE_HEAP;
	le32_put(zp + BZ_CMD_LINE_PTR, BOOT_CMDLINE_ADDR);
	le32_put(zp + ZP_EXT_CMD_LINE_PTR, 0);
	le32_put(zp + BZ_RAMDISK_IMAGE, (uint32_t)rd);
	le32_put(zp + ZP_EXT_RAMDISK_IMAGE, (uint32_t)(rd >> 32));
	le32_put(zp + BZ_RAMDISK_SIZE, (uint32_t)rd_size);
	le32_put(zp + ZP_EXT_RAMDISK_SIZE, (uint32_t)(rd_size >> 32));
}

static int bz_load(struct boot_image *img, struct mem *mem,
		   const struct mptable_cpus *cpus, struct boot_entry *entry,
		   struct snap_err *err)
{
	const struct bzimage_info *bz = &img->u.bz;
	size_t payload = img->kernel.size - bz->setup_size;
	const struct mem_region *r;
	struct e820_entry map[E820_MAX];
	unsigned int n_regions = mem_regions(mem, &r);
	uint8_t *zp, *p;
	int n, ret;

	ret = boot_write_low(mem, cpus, err);
	if (ret)
		return ret;
	p = mem_ptr(mem, bz->load_addr, payload);
	if (!p)
		return snap_err_set(err, -E2BIG, "--kernel %s: outside RAM",
				    img->kernel.path);
	memcpy(p, img->kernel.data + bz->setup_size, payload);
	if (img->initrd.data) {
		p = mem_ptr(mem, img->initrd_addr, img->initrd.size);
		if (!p)
			return snap_err_set(err, -E2BIG, "--initrd %s: outside "
					    "RAM", img->initrd.path);
		memcpy(p, img->initrd.data, img->initrd.size);
	}

	n = e820_build(r, n_regions, map);
	if (n < 0)
		return snap_err_set(err, n, "no memory map for this RAM");
	zp = mem_ptr(mem, BOOT_ZERO_PAGE_ADDR, BOOT_DATA_END - BOOT_DATA_START);
	if (!zp)
		return snap_err_set(err, -EINVAL, "RAM below 1 MiB missing");
	put_zero_page(zp, img);
	put_e820(zp, map, n);
	memcpy(zp + (BOOT_CMDLINE_ADDR - BOOT_ZERO_PAGE_ADDR), img->cmdline,
	       strlen(img->cmdline) + 1);

	ret = boot_write_long64(mem, entry, err);
	if (ret)
		return ret;
	entry->rip = bz->load_addr + BZ_ENTRY64;
	entry->rsi = BOOT_ZERO_PAGE_ADDR;
	return 0;
}

const struct boot_loader boot_bzimage_loader = {
	.name = "bzimage",
	.probe = bz_probe,
	.prepare = bz_prepare,
	.load = bz_load,
};
