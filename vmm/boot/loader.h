/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_BOOT_LOADER_H
#define SNAPVM_BOOT_LOADER_H

/*
 * Inside boot/: what boot.c shares with each kernel loader. Not for the
 * rest of snapvm.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/mem.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/elf.h"

struct boot_file {
	const char *path;
	const uint8_t *data;	/* mapped read-only, NULL when absent */
	size_t size;
};

/* What bzimage.c's prepare found, for its load. */
struct bzimage_info {
	size_t setup_size;	/* the payload starts here in the file */
	size_t header_end;	/* the setup header is [0x1f1, header_end) */
	uint64_t load_addr;	/* where the payload goes */
	uint64_t runtime_start;	/* where the kernel runs: init_size from here */
	uint32_t init_size;
};

struct boot_image {
	const struct boot_loader *loader;
	struct boot_file kernel;
	struct boot_file initrd;
	const char *cmdline;	/* never NULL */
	uint64_t mem_size;
	struct mem_region regions[MEM_MAX_REGIONS];
	unsigned int n_regions;
	uint64_t initrd_addr;	/* chosen by prepare */
	union {
		struct elf_info elf;	/* pvh */
		struct bzimage_info bz;	/* bzimage */
	} u;
};

struct boot_loader {
	const char *name;
	/* Is this the loader's format? Only a cheap look at the magic. */
	bool (*probe)(const struct boot_file *kernel);
	/* Check everything against img's RAM layout; nothing written yet. */
	int (*prepare)(struct boot_image *img, struct snap_err *err);
	int (*load)(struct boot_image *img, struct mem *mem,
		    const struct mptable_cpus *cpus, struct boot_entry *entry,
		    struct snap_err *err);
};

extern const struct boot_loader boot_pvh_loader;
extern const struct boot_loader boot_bzimage_loader;

/* No limit for boot_place_initrd but the end of low RAM. */
#define BOOT_INITRD_NO_LIMIT	UINT64_MAX

/*
 * Place the initrd at the top of RAM below 3 GiB and below limit (the
 * address its last byte must stay under, from the kernel), page aligned,
 * above kernel_end. Sets img->initrd_addr; errors name the initrd and,
 * when it is what got in the way, limit.
 */
int boot_place_initrd(struct boot_image *img, uint64_t kernel_end,
		      uint64_t limit, struct snap_err *err);

/*
 * Write the 64-bit entry's GDT and identity page tables (boot.h, long64.c)
 * and set entry's mode, cr3 and GDT.
 */
int boot_write_long64(struct mem *mem, struct boot_entry *entry,
		      struct snap_err *err);

/* Zero the BIOS page and area and write the MP table. */
int boot_write_low(struct mem *mem, const struct mptable_cpus *cpus,
		   struct snap_err *err);

#endif
