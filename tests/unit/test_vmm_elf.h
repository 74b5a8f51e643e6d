/* SPDX-License-Identifier: MIT */
#ifndef SNAP_TEST_VMM_ELF_H
#define SNAP_TEST_VMM_ELF_H

/*
 * A small ELF writer for snapvm's boot tests: an x86 kernel image with a
 * PVH entry note, built in memory so that each test can break one field.
 */

#include <stdint.h>
#include <string.h>

#include "vmm/boot/elf.h"
#include "vmm/boot/le.h"

#define IMG_PHOFF	64
#define IMG_TEXT	0x1000	/* file offset of the first segment */
#define IMG_LOAD	0x100000
#define IMG_ENTRY	0x100010
#define IMG_SIZE	0x3000
#define IMG_NOTES	0x800	/* a GNU note, then the Xen note */
#define XEN_NOTE	(IMG_NOTES + 20)
#define XEN_DESC	(XEN_NOTE + 16)

struct img {
	uint8_t b[IMG_SIZE];
	size_t len;
	unsigned int class;
	unsigned int phnum;
};

static inline size_t phsize(const struct img *g)
{
	return g->class == 64 ? 56 : 32;
}

static inline uint8_t *phdr(struct img *g, unsigned int i)
{
	return g->b + IMG_PHOFF + i * phsize(g);
}

static inline void add_phdr(struct img *g, uint32_t type, uint64_t offset,
		     uint64_t paddr, uint64_t filesz, uint64_t memsz,
		     uint64_t align)
{
	uint8_t *p = phdr(g, g->phnum++);

	le32_put(p, type);
	if (g->class == 64) {
		le32_put(p + 4, 7);
		le64_put(p + 8, offset);
		le64_put(p + 16, paddr);
		le64_put(p + 24, paddr);
		le64_put(p + 32, filesz);
		le64_put(p + 40, memsz);
		le64_put(p + 48, align);
		le16_put(g->b + 56, (uint16_t)g->phnum);
	} else {
		le32_put(p + 4, (uint32_t)offset);
		le32_put(p + 8, (uint32_t)paddr);
		le32_put(p + 12, (uint32_t)paddr);
		le32_put(p + 16, (uint32_t)filesz);
		le32_put(p + 20, (uint32_t)memsz);
		le32_put(p + 24, 7);
		le32_put(p + 28, (uint32_t)align);
		le16_put(g->b + 44, (uint16_t)g->phnum);
	}
}

/* A Xen PVH note at file offset off; returns its size. */
static inline size_t put_note(struct img *g, size_t off, uint32_t descsz,
		       uint64_t entry)
{
	uint8_t *p = g->b + off;

	le32_put(p, 4);
	le32_put(p + 4, descsz);
	le32_put(p + 8, ELF_NOTE_PHYS32_ENTRY);
	memcpy(p + 12, "Xen", 4);
	if (descsz == 8)
		le64_put(p + 16, entry);
	else
		le32_put(p + 16, (uint32_t)entry);
	return 16 + ((descsz + 3) & ~3u);
}

/*
 * An x86 kernel: code at 1 MiB (0x800 bytes from the file, 0x2000 in
 * memory), a PT_NOTE before it with the PVH entry (plus a foreign note).
 */
static inline void make_img(struct img *g, unsigned int class, uint32_t descsz)
{
	size_t note = IMG_NOTES, n;

	memset(g, 0, sizeof(*g));
	g->class = class;
	g->len = IMG_TEXT + 0x800;
	memcpy(g->b, "\177ELF", 4);
	g->b[4] = class == 64 ? 2 : 1;
	g->b[5] = 1;
	g->b[6] = 1;
	le16_put(g->b + 16, 2);
	le16_put(g->b + 18, class == 64 ? 62 : 3);
	le32_put(g->b + 20, 1);
	if (class == 64) {
		le64_put(g->b + 24, IMG_LOAD);
		le64_put(g->b + 32, IMG_PHOFF);
		le16_put(g->b + 52, 64);
		le16_put(g->b + 54, 56);
	} else {
		le32_put(g->b + 24, IMG_LOAD);
		le32_put(g->b + 28, IMG_PHOFF);
		le16_put(g->b + 40, 52);
		le16_put(g->b + 42, 32);
	}
	for (size_t i = IMG_TEXT; i < g->len; i++)
		g->b[i] = (uint8_t)(i * 7);
	add_phdr(g, 1, IMG_TEXT, IMG_LOAD, 0x800, 0x2000, 0x1000);
	/* A GNU note first, then the Xen one. */
	le32_put(g->b + note, 4);
	le32_put(g->b + note + 4, 4);
	le32_put(g->b + note + 8, 3);
	memcpy(g->b + note + 12, "GNU", 4);
	n = 20 + put_note(g, note + 20, descsz, IMG_ENTRY);
	add_phdr(g, 4, note, 0, n, n, 4);
}

#endif
