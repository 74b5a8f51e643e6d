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

#include "../mem.h"
#include "boot.h"
#include "elf.h"

struct boot_file {
	const char *path;
	const uint8_t *data;	/* mapped read-only, NULL when absent */
	size_t size;
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

/*
 * Place the initrd at the top of RAM below 3 GiB, page aligned, above
 * kernel_end. Sets img->initrd_addr; errors name the initrd.
 */
int boot_place_initrd(struct boot_image *img, uint64_t kernel_end,
		      struct snap_err *err);

/* Zero the BIOS page and area and write the MP table. */
int boot_write_low(struct mem *mem, const struct mptable_cpus *cpus,
		   struct snap_err *err);

#endif
