/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_MEM_H
#define SNAPVM_MEM_H

/*
 * Guest RAM: its layout in guest physical memory and its backing.
 *
 * RAM is one host mapping of mem_size bytes. Below the 32-bit hole for
 * devices (3 GiB to 4 GiB) the guest sees it one to one; what does not fit
 * below 3 GiB continues at 4 GiB. The backing, and memory.bin, hold the
 * regions back to back: region 1 (at 4 GiB) starts at offset 3 GiB.
 *
 * The backing is anonymous memory (private, not reserved) or a file mapped
 * MAP_SHARED, so that the guest's writes reach the file. A file that is
 * not there is created and sized (sparse); an existing file must already
 * have the RAM's size: it is never resized.
 */

#include <stdbool.h>
#include <stdint.h>

#include "snapshot/format/error.h"

#define MEM_HOLE_START	0xc0000000ull	/* 3 GiB: start of the 32-bit hole */
#define MEM_HIGH_START	0x100000000ull	/* 4 GiB: RAM above the hole */
#define MEM_MAX_REGIONS	2
#define MEM_MIN_SIZE	(2ull << 20)	/* BIOS area, boot data and a kernel */
#define MEM_MAX_SIZE	(1ull << 40)
#define MEM_ALIGN	4096ull

struct mem_region {
	uint64_t gpa;		/* guest physical address */
	uint64_t size;
	uint64_t offset;	/* in the backing and in memory.bin */
};

/* Split size bytes of RAM around the hole; returns 1 or 2 (0 for size 0). */
unsigned int mem_layout(uint64_t size, struct mem_region r[MEM_MAX_REGIONS]);

/* Does [gpa, gpa + len) lie inside one of the regions? len 0 never does. */
bool mem_layout_contains(const struct mem_region *r, unsigned int n,
			 uint64_t gpa, uint64_t len);

struct mem;

enum mem_mode {
	MEM_ANON,		/* anonymous memory */
	MEM_FILE,		/* a file, created when missing, MAP_SHARED */
	MEM_IMAGE_PRIVATE,	/* an existing image, MAP_PRIVATE: never written */
	MEM_IMAGE_SHARED,	/* an existing image, MAP_SHARED: runs in place */
};

/*
 * Map size bytes of RAM (a multiple of MEM_ALIGN), from path when it is not
 * NULL. Errors say what is wrong ("size 1 GiB, 2 GiB expected"); the
 * caller names the file.
 */
int mem_create(struct mem **out, uint64_t size, const char *path,
	       struct snap_err *err);

/*
 * Map the existing RAM image at path (a snapshot's memory.bin), which must
 * be size bytes long, with mode MEM_IMAGE_PRIVATE or MEM_IMAGE_SHARED.
 */
int mem_open_image(struct mem **out, uint64_t size, const char *path,
		   enum mem_mode mode, struct snap_err *err);

/* Unmap; the file, if any, stays. m may be NULL. */
void mem_destroy(struct mem *m);

/* Remove the file when mem_create created it (on a failed start). */
void mem_remove_created(struct mem *m);

uint64_t mem_size(const struct mem *m);
uint8_t *mem_host(const struct mem *m);		/* the whole backing */

/* The backing file, open (read-only for a private image), or -1. */
int mem_fd(const struct mem *m);

/* Do the guest's writes reach the backing file (MEM_FILE, MEM_IMAGE_SHARED)? */
bool mem_file_shared(const struct mem *m);
unsigned int mem_regions(const struct mem *m, const struct mem_region **r);

/* Host address of [gpa, gpa + len) when it lies in one region, else NULL. */
void *mem_ptr(const struct mem *m, uint64_t gpa, uint64_t len);

/*
 * The same for a device about to write there: KVM's dirty log sees only
 * the guest's own writes, so the pages are also marked in the devices'
 * log, which mem_dirty_take ORs into bitmap (one bit per 4 KiB page of the
 * backing, as vm_dirty_log_fetch) and clears. Any thread.
 */
void *mem_ptr_write(struct mem *m, uint64_t gpa, uint64_t len);
void mem_dirty_take(struct mem *m, uint64_t *bitmap);

#endif
