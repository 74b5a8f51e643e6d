/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_BOOT_H
#define SNAPVM_BOOT_H

/*
 * Booting a kernel: read and check the kernel (and initrd, command line)
 * before anything else exists, then write it and its boot structures into
 * guest RAM and say how the boot vCPU starts.
 *
 * Kernel formats come from a table of loaders (boot.c): an ELF with a PVH
 * entry note (pvh.c: our test guest, Linux's vmlinux). The Linux boot
 * protocol (bzImage) is the next entry of that table.
 *
 * Guest physical memory the loaders use below 1 MiB:
 *
 *   [0x1000, 0x5000)    boot data: PVH start_info, module list, memory map,
 *                       command line (BOOT_CMDLINE_ADDR, up to 12 KiB)
 *   [0xf0000, ...)      the MP table (mptable.h)
 *
 * 0x8000 and the rest of low memory stay free for the guest (an AP
 * trampoline, say). An initrd goes at the top of RAM below 3 GiB.
 */

#include <stdint.h>

#include "error.h"
#include "mptable.h"

#define BOOT_DATA_START		0x1000u
#define BOOT_DATA_END		0x5000u
#define BOOT_CMDLINE_ADDR	0x2000u
#define BOOT_CMDLINE_MAX	(BOOT_DATA_END - BOOT_CMDLINE_ADDR)	/* with NUL */

struct mem;

/* How the boot vCPU starts. */
enum boot_mode {
	BOOT_PROTECTED32,	/* flat 32-bit protected mode, paging off */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t rbx;		/* PVH: start_info's address */
	uint64_t rsi;		/* Linux boot protocol: the zero page */
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

/* The loader's name ("pvh"). */
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
