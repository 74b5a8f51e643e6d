/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_BOOT_H
#define SNAPVM_BOOT_H

/*
 * Booting a kernel: read and check the kernel (and initrd, command line)
 * before anything else exists, then write it and its boot structures into
 * guest RAM and say how the boot vCPU starts.
 *
 * Kernel formats come from a table of loaders (boot.c): an ELF with a PVH
 * entry note (pvh.c: our test guest, Linux's vmlinux), then a bzImage of
 * the Linux boot protocol entered in 64-bit mode (bzimage.c).
 *
 * Guest physical memory the loaders use below 1 MiB:
 *
 *   [0x1000, 0x5000)    boot data: PVH start_info, module list and memory
 *                       map, or the Linux zero page (BOOT_ZERO_PAGE_ADDR);
 *                       the command line (BOOT_CMDLINE_ADDR, up to 12 KiB)
 *   [0x5000, 0x8000)    free
 *   [0x8000, 0x9000)    free, for the guest's AP trampoline
 *   [0x9000, 0x10000)   64-bit entry (long64.c): the GDT, then identity
 *                       page tables for the first 4 GiB (PML4, PDPT, 4 PDs)
 *   [0xf0000, ...)      the MP table (mptable.h)
 *
 * The rest of low memory stays free for the guest; Linux's decompressor,
 * for one, puts its paging trampoline just below 0x9f000. An initrd goes
 * at the top of RAM below 3 GiB.
 *
 * The e820 map calls all of [0, 640 KiB) RAM: nothing here has to outlive
 * the kernel's first steps. Linux copies the zero page and the command line
 * before it allocates any memory and has its own GDT and page tables by
 * then (since 5.13 it also keeps the first 1 MiB to itself); the MP table
 * is in the reserved BIOS area.
 */

#include <stdint.h>

#include "snapshot/format/error.h"
#include "vmm/boot/mptable.h"

#define BOOT_DATA_START		0x1000u
#define BOOT_DATA_END		0x5000u
#define BOOT_CMDLINE_ADDR	0x2000u
#define BOOT_CMDLINE_MAX	(BOOT_DATA_END - BOOT_CMDLINE_ADDR)	/* with NUL */
#define BOOT_ZERO_PAGE_ADDR	BOOT_DATA_START		/* 4 KiB, to 0x2000 */

#define BOOT_LONG64_START	0x9000u
#define BOOT_GDT_ADDR		0x9000u		/* 4 descriptors */
#define BOOT_PML4_ADDR		0xa000u
#define BOOT_PDPT_ADDR		0xb000u
#define BOOT_PD_ADDR		0xc000u		/* 4 PDs of 2 MiB pages */
#define BOOT_LONG64_END		0x10000u

/* The 64-bit entry's selectors (the Linux boot protocol's __BOOT_CS/DS). */
#define BOOT_SEL_CODE64		0x10u
#define BOOT_SEL_DATA64		0x18u

struct mem;

/* How the boot vCPU starts. */
enum boot_mode {
	BOOT_PROTECTED32,	/* flat 32-bit protected mode, paging off */
	BOOT_LONG64,		/* 64-bit mode, identity map, flat segments */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t rbx;		/* PVH: start_info's address */
	uint64_t rsi;		/* Linux boot protocol: the zero page */
	/* BOOT_LONG64: the tables written into guest memory */
	uint64_t cr3;		/* the PML4 */
	uint64_t gdt_base;
	uint16_t gdt_limit;	/* bytes - 1 */
};

/* What to boot, as given on the command line (errors name the options). */
struct boot_config {
	const char *kernel;
	const char *initrd;	/* NULL: none */
	const char *cmdline;	/* NULL: empty */
};

struct boot_image;

/*
 * Read the kernel and initrd and check that they can boot in mem_size bytes
 * of RAM: a known format, every segment inside RAM, room for the initrd.
 * Errors are one line: "--kernel PATH: not an ELF file".
 */
int boot_open(struct boot_image **out, const struct boot_config *cfg,
	      uint64_t mem_size, struct snap_err *err);

/* The loader's name ("pvh", "bzimage"). */
const char *boot_format(const struct boot_image *img);

/*
 * Write the kernel, initrd, command line, memory map and MP table for cpus
 * into mem (of the size given to boot_open) and fill *entry.
 */
int boot_load(struct boot_image *img, struct mem *mem,
	      const struct mptable_cpus *cpus, struct boot_entry *entry,
	      struct snap_err *err);

/* Release the files. img may be NULL. */
void boot_close(struct boot_image *img);

/* Set the boot vCPU's registers (KVM_SET_SREGS, KVM_SET_REGS) for entry. */
int boot_set_regs(int vcpu_fd, const struct boot_entry *entry);

#endif
