/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_BOOT_ELF_H
#define SNAPVM_BOOT_ELF_H

/*
 * ELF kernels: the headers of an ELF32 or ELF64 x86 executable, validated
 * against the file's size, its loadable segments, and the Xen PVH entry
 * note (XEN_ELFNOTE_PHYS32_ENTRY, type 18, owner "Xen"). Pure: works on a
 * buffer holding the whole file; never reads outside it, whatever the
 * headers say.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/format/error.h"

#define ELF_MAX_PHDRS		256
#define ELF_MAX_LOADS		32
#define ELF_NOTE_PHYS32_ENTRY	18

struct elf_segment {
	unsigned int phdr;	/* its program header's index */
	uint64_t offset;	/* in the file */
	uint64_t paddr;		/* where it goes in guest physical memory */
	uint64_t filesz;	/* bytes from the file; the rest is zeroed */
	uint64_t memsz;
};

struct elf_info {
	unsigned int class;	/* 32 or 64 */
	uint64_t entry;		/* e_entry */
	struct elf_segment loads[ELF_MAX_LOADS];	/* PT_LOAD, memsz > 0 */
	unsigned int n_loads;
	bool has_phys32_entry;
	uint32_t phys32_entry;	/* the PVH entry, a physical address */
};

/* Does buf start with the ELF magic? */
bool elf_is_elf(const uint8_t *buf, size_t len);

/*
 * Validate buf (len bytes) as an x86 ELF executable and describe it in
 * *info. Checks: identification, type and machine; program headers inside
 * the file; each PT_LOAD's file bytes inside the file, filesz <= memsz, no
 * wrap-around, no overlap with another; notes inside their segment; the
 * PVH entry, when there is one, below 4 GiB and inside a loaded segment.
 * Returns 0 or -ENOEXEC with one line in err ("program header 3: ...").
 */
int elf_parse(const uint8_t *buf, size_t len, struct elf_info *info,
	      struct snap_err *err);

#endif
