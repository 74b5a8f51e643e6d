/* SPDX-License-Identifier: MIT */
#include "vmm/boot/elf.h"

#include <errno.h>
#include <string.h>

#include "vmm/boot/le.h"

/* Identification and header fields used here (System V gABI). */
#define EI_CLASS	4
#define EI_DATA		5
#define EI_VERSION	6
#define EI_NIDENT	16
#define ELFCLASS32	1
#define ELFCLASS64	2
#define ELFDATA2LSB	1
#define ET_EXEC		2
#define EM_386		3
#define EM_X86_64	62
#define PT_LOAD		1
#define PT_NOTE		4
#define NOTE_HEADER	12	/* namesz, descsz, type */

/* Where the fields are in each class. */
static const struct elf_layout {
	unsigned int class;
	unsigned int machine;
	size_t ehsize;
	size_t phentsize;
	/* in the file header */
	size_t e_entry, e_phoff, e_phentsize, e_phnum;
	/* in a program header */
	size_t p_offset, p_paddr, p_filesz, p_memsz, p_align;
} elf_layouts[] = {
	{ 32, EM_386, 52, 32, 24, 28, 42, 44, 4, 12, 16, 20, 28 },
	{ 64, EM_X86_64, 64, 56, 24, 32, 54, 56, 8, 24, 32, 40, 48 },
};

static uint64_t word(const struct elf_layout *l, const uint8_t *p)
{
	return l->class == 64 ? le64_get(p) : le32_get(p);
}

bool elf_is_elf(const uint8_t *buf, size_t len)
{
	return len >= 4 && memcmp(buf, "\177ELF", 4) == 0;
}

/* Is [off, off + n) inside a file of len bytes? */
static bool in_file(uint64_t off, uint64_t n, size_t len)
{
	return off <= len && n <= len - off;
}

static int check_ident(const uint8_t *buf, size_t len,
		       const struct elf_layout **lp, struct snap_err *err)
{
	const struct elf_layout *l = NULL;

	if (!elf_is_elf(buf, len))
		return snap_err_set(err, -ENOEXEC, "not an ELF file");
	if (len < EI_NIDENT)
		return snap_err_set(err, -ENOEXEC, "ELF file of %zu bytes, "
				    "truncated", len);
	if (buf[EI_CLASS] != ELFCLASS32 && buf[EI_CLASS] != ELFCLASS64)
		return snap_err_set(err, -ENOEXEC, "ELF class %u, 1 or 2 "
				    "expected", buf[EI_CLASS]);
	if (buf[EI_DATA] != ELFDATA2LSB)
		return snap_err_set(err, -ENOEXEC, "ELF data encoding %u, "
				    "little-endian (1) expected", buf[EI_DATA]);
	if (buf[EI_VERSION] != 1)
		return snap_err_set(err, -ENOEXEC, "ELF version %u, 1 expected",
				    buf[EI_VERSION]);
	l = &elf_layouts[buf[EI_CLASS] == ELFCLASS64];
	if (len < l->ehsize)
		return snap_err_set(err, -ENOEXEC, "ELF file of %zu bytes, "
				    "shorter than its %zu-byte header", len,
				    l->ehsize);
	if (le16_get(buf + 16) != ET_EXEC)
		return snap_err_set(err, -ENOEXEC, "ELF type %u, an executable "
				    "(2) expected", le16_get(buf + 16));
	if (le16_get(buf + 18) != l->machine)
		return snap_err_set(err, -ENOEXEC, "ELF%u machine %u, %u "
				    "expected", l->class, le16_get(buf + 18),
				    l->machine);
	*lp = l;
	return 0;
}

/* Walk the notes of one PT_NOTE segment, looking for the PVH entry. */
static int scan_notes(const uint8_t *p, uint64_t size, uint64_t align,
		      unsigned int phdr, struct elf_info *info,
		      struct snap_err *err)
{
	uint64_t pos = 0;

	if (align != 8)
		align = 4;
	while (size - pos >= NOTE_HEADER) {
		uint64_t namesz = le32_get(p + pos);
		uint64_t descsz = le32_get(p + pos + 4);
		uint32_t type = le32_get(p + pos + 8);
		uint64_t name = pos + NOTE_HEADER;
		uint64_t desc = name + ((namesz + align - 1) & ~(align - 1));
		uint64_t next = desc + ((descsz + align - 1) & ~(align - 1));

		if (desc > size || descsz > size - desc)
			return snap_err_set(err, -ENOEXEC, "program header %u: "
					    "note at offset %llu runs past its "
					    "segment", phdr,
					    (unsigned long long)pos);
		if (namesz == 4 && memcmp(p + name, "Xen", 4) == 0 &&
		    type == ELF_NOTE_PHYS32_ENTRY && !info->has_phys32_entry) {
			uint64_t v;

			if (descsz != 4 && descsz != 8)
				return snap_err_set(err, -ENOEXEC, "PVH entry "
						    "note of %llu bytes, 4 or 8 "
						    "expected",
						    (unsigned long long)descsz);
			v = descsz == 8 ? le64_get(p + desc) : le32_get(p + desc);
			if (v > UINT32_MAX)
				return snap_err_set(err, -ENOEXEC, "PVH entry "
						    "0x%llx above 4 GiB",
						    (unsigned long long)v);
			info->has_phys32_entry = true;
			info->phys32_entry = (uint32_t)v;
		}
		if (next >= size)
			break;
		pos = next;
	}
	return 0;
}

static int add_load(struct elf_info *info, const struct elf_segment *s,
		    struct snap_err *err)
{
	for (unsigned int i = 0; i < info->n_loads; i++) {
		const struct elf_segment *o = &info->loads[i];

		if (s->paddr < o->paddr + o->memsz &&
		    o->paddr < s->paddr + s->memsz)
			return snap_err_set(err, -ENOEXEC, "program headers %u "
					    "and %u: segments overlap", o->phdr,
					    s->phdr);
	}
	if (info->n_loads == ELF_MAX_LOADS)
		return snap_err_set(err, -ENOEXEC, "more than %u loadable "
				    "segments", ELF_MAX_LOADS);
	info->loads[info->n_loads++] = *s;
	return 0;
}

static int check_phdr(const uint8_t *buf, size_t len,
		      const struct elf_layout *l, unsigned int i,
		      const uint8_t *ph, struct elf_info *info,
		      struct snap_err *err)
{
	uint32_t type = le32_get(ph);
	struct elf_segment s = {
		.phdr = i,
		.offset = word(l, ph + l->p_offset),
		.paddr = word(l, ph + l->p_paddr),
		.filesz = word(l, ph + l->p_filesz),
		.memsz = word(l, ph + l->p_memsz),
	};

	if (type != PT_LOAD && type != PT_NOTE)
		return 0;
	if (!in_file(s.offset, s.filesz, len))
		return snap_err_set(err, -ENOEXEC, "program header %u: bytes "
				    "[%llu, +%llu) beyond the end of the file "
				    "(%zu bytes)", i,
				    (unsigned long long)s.offset,
				    (unsigned long long)s.filesz, len);
	if (type == PT_NOTE)
		return scan_notes(buf + s.offset, s.filesz,
				  word(l, ph + l->p_align), i, info, err);
	if (s.filesz > s.memsz)
		return snap_err_set(err, -ENOEXEC, "program header %u: file "
				    "size %llu larger than memory size %llu", i,
				    (unsigned long long)s.filesz,
				    (unsigned long long)s.memsz);
	if (s.memsz == 0)
		return 0;
	if (s.paddr + s.memsz < s.paddr)
		return snap_err_set(err, -ENOEXEC, "program header %u: "
				    "segment at 0x%llx wraps around", i,
				    (unsigned long long)s.paddr);
	return add_load(info, &s, err);
}

int elf_parse(const uint8_t *buf, size_t len, struct elf_info *info,
	      struct snap_err *err)
{
	const struct elf_layout *l = NULL;
	uint64_t phoff;
	unsigned int phnum, phentsize;
	int ret;

	memset(info, 0, sizeof(*info));
	ret = check_ident(buf, len, &l, err);
	if (ret)
		return ret;
	info->class = l->class;
	info->entry = word(l, buf + l->e_entry);
	phoff = word(l, buf + l->e_phoff);
	phentsize = le16_get(buf + l->e_phentsize);
	phnum = le16_get(buf + l->e_phnum);
	if (phnum == 0)
		return snap_err_set(err, -ENOEXEC, "no program headers");
	if (phnum > ELF_MAX_PHDRS)
		return snap_err_set(err, -ENOEXEC, "%u program headers, at "
				    "most %u expected", phnum, ELF_MAX_PHDRS);
	if (phentsize != l->phentsize)
		return snap_err_set(err, -ENOEXEC, "program header size %u, "
				    "%zu expected", phentsize, l->phentsize);
	if (!in_file(phoff, (uint64_t)phnum * phentsize, len))
		return snap_err_set(err, -ENOEXEC, "program headers at offset "
				    "%llu beyond the end of the file (%zu bytes)",
				    (unsigned long long)phoff, len);
	for (unsigned int i = 0; i < phnum; i++) {
		ret = check_phdr(buf, len, l, i, buf + phoff + i * phentsize,
				 info, err);
		if (ret)
			return ret;
	}
	if (info->n_loads == 0)
		return snap_err_set(err, -ENOEXEC, "no loadable segment");
	if (info->has_phys32_entry) {
		for (unsigned int i = 0; i < info->n_loads; i++) {
			const struct elf_segment *s = &info->loads[i];

			if (info->phys32_entry >= s->paddr &&
			    info->phys32_entry - s->paddr < s->filesz)
				return 0;
		}
		return snap_err_set(err, -ENOEXEC, "PVH entry 0x%x outside "
				    "the loaded segments", info->phys32_entry);
	}
	return 0;
}
