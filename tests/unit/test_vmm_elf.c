/* SPDX-License-Identifier: MIT */
/*
 * ELF kernels: snapvm's validation of every header field a hostile file
 * can lie in, and a clean answer (never a crash) for every truncation and
 * flipped bit. Run under SAN=1 to catch any read outside the file.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/test_vmm_elf.h"

static int parse(const struct img *g, struct elf_info *info,
		 struct snap_err *err)
{
	/* An exact-size copy, so AddressSanitizer sees any overread. */
	uint8_t *copy = malloc(g->len ? g->len : 1);
	int ret;

	memcpy(copy, g->b, g->len);
	ret = elf_parse(copy, g->len, info, err);
	free(copy);
	return ret;
}

static void test_elf_valid(void **unused)
{
	static const struct {
		unsigned int class;
		uint32_t descsz;
	} kinds[] = { { 64, 4 }, { 64, 8 }, { 32, 4 }, { 32, 8 } };
	struct snap_err err = { "" };
	struct elf_info info;
	struct img g;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		make_img(&g, kinds[i].class, kinds[i].descsz);
		assert_int_equal(parse(&g, &info, &err), 0);
		assert_int_equal(info.class, kinds[i].class);
		assert_int_equal(info.n_loads, 1);
		assert_int_equal(info.loads[0].paddr, IMG_LOAD);
		assert_int_equal(info.loads[0].offset, IMG_TEXT);
		assert_int_equal(info.loads[0].filesz, 0x800);
		assert_int_equal(info.loads[0].memsz, 0x2000);
		assert_true(info.has_phys32_entry);
		assert_int_equal(info.phys32_entry, IMG_ENTRY);
	}
}

/* One way to break the image, and the error it must give. */
struct breakage {
	const char *what;
	void (*apply)(struct img *g);
	const char *msg;
};

static void br_magic(struct img *g) { g->b[1] = 'X'; }
static void br_class(struct img *g) { g->b[4] = 3; }
static void br_endian(struct img *g) { g->b[5] = 2; }
static void br_version(struct img *g) { g->b[6] = 0; }
static void br_type(struct img *g) { le16_put(g->b + 16, 3); }
static void br_machine(struct img *g) { le16_put(g->b + 18, 40); }
static void br_phentsize(struct img *g) { le16_put(g->b + 54, 64); }
static void br_phnum0(struct img *g) { le16_put(g->b + 56, 0); }
static void br_phnum_max(struct img *g) { le16_put(g->b + 56, 0xffff); }
static void br_phoff(struct img *g) { le64_put(g->b + 32, IMG_SIZE - 8); }
static void br_phoff_wrap(struct img *g)
{
	le64_put(g->b + 32, UINT64_MAX - 8);
}
static void br_short(struct img *g) { g->len = 40; }
static void br_ident_only(struct img *g) { g->len = 16; }
static void br_load_off(struct img *g) { le64_put(phdr(g, 0) + 8, IMG_SIZE); }
static void br_load_size(struct img *g)
{
	le64_put(phdr(g, 0) + 32, UINT64_MAX);
}
static void br_filesz(struct img *g) { le64_put(phdr(g, 0) + 40, 0x100); }
static void br_wrap(struct img *g)
{
	le64_put(phdr(g, 0) + 24, UINT64_MAX - 0x1000);
}
static void br_overlap(struct img *g)
{
	add_phdr(g, 1, IMG_TEXT, IMG_LOAD + 0x1000, 0x10, 0x10, 0x1000);
}
static void br_no_load(struct img *g) { le32_put(phdr(g, 0), 6); }
static void br_note_name(struct img *g)
{
	le32_put(g->b + XEN_NOTE, 0x7fffffff);
}
static void br_note_desc(struct img *g)
{
	le32_put(g->b + XEN_NOTE + 4, 0xfffffff0);
}
static void br_note_descsz(struct img *g)
{
	le32_put(g->b + XEN_NOTE + 4, 2);
}
static void br_note_out(struct img *g)
{
	le64_put(phdr(g, 1) + 8, IMG_SIZE - 4);
}
static void br_entry_out(struct img *g)
{
	le32_put(g->b + XEN_DESC, 0x200000);
}
static void br_entry_bss(struct img *g)
{
	le32_put(g->b + XEN_DESC, IMG_LOAD + 0x900);
}
static void br_entry_high(struct img *g)
{
	make_img(g, 64, 8);
	le64_put(g->b + XEN_DESC, 0x100000000ull);
}
static void br_too_many(struct img *g)
{
	for (unsigned int i = 0; i < ELF_MAX_LOADS; i++)
		add_phdr(g, 1, IMG_TEXT, 0x400000 + i * 0x1000, 0x10, 0x10, 0);
}

static const struct breakage breakages[] = {
	{ "magic", br_magic, "not an ELF file" },
	{ "class", br_class, "ELF class 3, 1 or 2 expected" },
	{ "byte order", br_endian, "little-endian (1) expected" },
	{ "version", br_version, "ELF version 0, 1 expected" },
	{ "type", br_type, "ELF type 3, an executable (2) expected" },
	{ "machine", br_machine, "ELF64 machine 40, 62 expected" },
	{ "phentsize", br_phentsize, "program header size 64, 56 expected" },
	{ "no phdrs", br_phnum0, "no program headers" },
	{ "phnum", br_phnum_max, "65535 program headers" },
	{ "phoff", br_phoff, "program headers at offset" },
	{ "phoff wraps", br_phoff_wrap, "program headers at offset" },
	{ "short header", br_short, "shorter than its 64-byte header" },
	{ "ident only", br_ident_only, "shorter than its 64-byte header" },
	{ "load offset", br_load_off, "program header 0: bytes" },
	{ "load size", br_load_size, "beyond the end of the file" },
	{ "filesz", br_filesz, "file size 2048 larger than memory size 256" },
	{ "wraps", br_wrap, "wraps around" },
	{ "overlap", br_overlap, "program headers 0 and 2: segments overlap" },
	{ "no load", br_no_load, "no loadable segment" },
	{ "note name", br_note_name, "runs past its segment" },
	{ "note desc", br_note_desc, "runs past its segment" },
	{ "descsz", br_note_descsz, "PVH entry note of 2 bytes" },
	{ "note outside", br_note_out, "program header 1: bytes" },
	{ "entry outside", br_entry_out, "PVH entry 0x200000 outside" },
	{ "entry in bss", br_entry_bss, "PVH entry 0x100900 outside" },
	{ "entry high", br_entry_high, "PVH entry 0x100000000 above 4 GiB" },
	{ "too many", br_too_many, "more than 32 loadable segments" },
};

static void test_elf_errors(void **unused)
{
	struct snap_err err;
	struct elf_info info;
	struct img g;

	for (size_t i = 0; i < sizeof(breakages) / sizeof(breakages[0]); i++) {
		make_img(&g, 64, 4);
		breakages[i].apply(&g);
		memset(&err, 0, sizeof(err));
		if (parse(&g, &info, &err) != -ENOEXEC)
			fail_msg("%s: accepted", breakages[i].what);
		if (!strstr(err.msg, breakages[i].msg))
			fail_msg("%s: '%s', '%s' expected", breakages[i].what,
				 err.msg, breakages[i].msg);
	}
}

/* Every truncation and every byte flipped: an answer, never a crash. */
static void test_elf_corruption(void **unused)
{
	struct snap_err err;
	struct elf_info info;
	struct img g, bad;
	size_t full;

	make_img(&g, 64, 8);
	full = g.len;
	for (size_t len = 0; len < full; len++) {
		bad = g;
		bad.len = len;
		assert_int_not_equal(parse(&bad, &info, &err), 0);
	}
	for (size_t i = 0; i < XEN_DESC + 8; i++) {
		for (unsigned int bit = 0; bit < 8; bit += 3) {
			bad = g;
			bad.b[i] ^= (uint8_t)(1u << bit);
			if (parse(&bad, &info, &err) == 0) {
				assert_true(info.n_loads >= 1);
				assert_true(info.n_loads <= ELF_MAX_LOADS);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf_valid),
		cmocka_unit_test(test_elf_errors),
		cmocka_unit_test(test_elf_corruption),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
