/* SPDX-License-Identifier: MIT */
/*
 * snapvm's boot structures, byte by byte: the PVH start_info, memory map,
 * command line and initrd module against Xen's layout, the e820 map and
 * the MP table against the Intel MP spec 1.4, and the loader's errors.
 * Nothing here needs KVM.
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

#include "vmm/boot/boot.h"
#include "vmm/boot/e820.h"
#include "vmm/boot/mptable.h"
#include "vmm/mem.h"
#include "tests/unit/test_vmm_elf.h"
#include "tests/lib/testutil.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

/* ---- e820 --------------------------------------------------------------- */

static void check_e820(uint64_t mem, const struct e820_entry *want, int n)
{
	struct mem_region r[MEM_MAX_REGIONS];
	struct e820_entry map[E820_MAX];
	int got = e820_build(r, mem_layout(mem, r), map);

	assert_int_equal(got, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(map[i].addr, want[i].addr);
		assert_int_equal(map[i].size, want[i].size);
		assert_int_equal(map[i].type, want[i].type);
	}
}

static void test_e820(void **unused)
{
	const struct e820_entry small[] = {
		{ 0, 0xa0000, E820_RAM },
		{ 0xa0000, 0x60000, E820_RESERVED },
		{ 0x100000, 64 * MIB - 0x100000, E820_RAM },
	};
	const struct e820_entry three[] = {
		{ 0, 0xa0000, E820_RAM },
		{ 0xa0000, 0x60000, E820_RESERVED },
		{ 0x100000, 3 * GIB - 0x100000, E820_RAM },
	};
	const struct e820_entry big[] = {
		{ 0, 0xa0000, E820_RAM },
		{ 0xa0000, 0x60000, E820_RESERVED },
		{ 0x100000, 3 * GIB - 0x100000, E820_RAM },
		{ 4 * GIB, 2 * GIB, E820_RAM },
	};
	struct mem_region r[MEM_MAX_REGIONS];
	struct e820_entry map[E820_MAX];

	check_e820(64 * MIB, small, 3);
	check_e820(3 * GIB, three, 3);
	check_e820(5 * GIB, big, 4);
	assert_int_equal(e820_build(r, mem_layout(MIB, r), map), -EINVAL);
	assert_int_equal(e820_build(r, 0, map), -EINVAL);
}

/* ---- the MP table ------------------------------------------------------- */

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static void check_mptable(unsigned int ncpus)
{
	struct mptable_cpus cpus = { ncpus, 0x000806f8, 0x1f8bfbff };
	uint8_t buf[8192], *cfg, *e;
	unsigned int entries, procs = 0, irqs = 0;
	uint32_t irq_seen = 0;
	long n;

	memset(buf, 0xcc, sizeof(buf));
	n = mptable_build(buf, sizeof(buf), MPTABLE_ADDR, &cpus);
	assert_int_equal(n, (long)mptable_size(ncpus));

	/* Floating pointer: 16 bytes, spec 1.4, table right after it. */
	assert_memory_equal(buf, "_MP_", 4);
	assert_int_equal(le32_get(buf + 4), MPTABLE_ADDR + 16);
	assert_int_equal(buf[8], 1);
	assert_int_equal(buf[9], 4);
	assert_int_equal(sum(buf, 16), 0);
	assert_int_equal(buf[11], 0);		/* a table, not a default */
	assert_int_equal(buf[12], 0);		/* virtual wire mode */

	cfg = buf + 16;
	assert_memory_equal(cfg, "PCMP", 4);
	assert_int_equal(le16_get(cfg + 4), n - 16);
	assert_int_equal(cfg[6], 4);
	assert_int_equal(sum(cfg, le16_get(cfg + 4)), 0);
	assert_int_equal(le32_get(cfg + 28), 0);	/* no OEM table */
	entries = le16_get(cfg + 34);
	assert_int_equal(entries, ncpus + 1 + 1 + 15 + 2);
	assert_int_equal(le32_get(cfg + 36), 0xfee00000);
	assert_int_equal(le16_get(cfg + 40), 0);	/* no extended table */

	e = cfg + 44;
	for (unsigned int i = 0; i < entries; i++) {
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], procs);
			assert_int_equal(e[2], 0x14);
			assert_int_equal(e[3], procs == 0 ? 3 : 1);
			assert_int_equal(le32_get(e + 4), 0x000806f8);
			assert_int_equal(le32_get(e + 8), 0x1f8bfbff);
			procs++;
			e += 20;
			continue;
		case 1:
			assert_int_equal(e[1], 0);
			assert_memory_equal(e + 2, "ISA   ", 6);
			break;
		case 2:
			assert_int_equal(e[1], ncpus);
			assert_int_equal(e[2], 0x11);
			assert_int_equal(e[3], 1);
			assert_int_equal(le32_get(e + 4), 0xfec00000);
			break;
		case 3:
			assert_int_equal(e[1], 0);		/* INT */
			assert_int_equal(le16_get(e + 2), 0);
			assert_int_equal(e[4], 0);		/* bus ISA */
			assert_int_equal(e[6], ncpus);		/* the IOAPIC */
			assert_int_equal(e[7], e[5] == 0 ? 2 : e[5]);
			assert_int_not_equal(e[5], 2);
			irq_seen |= 1u << e[5];
			irqs++;
			break;
		case 4:
			assert_int_equal(e[6], 0xff);
			assert_int_equal(e[1], e[7] == 0 ? 3 : 1); /* ExtINT, NMI */
			break;
		default:
			fail_msg("entry %u of type %u", i, e[0]);
		}
		e += 8;
	}
	assert_int_equal(procs, ncpus);
	assert_int_equal(irqs, 15);
	assert_int_equal(irq_seen, 0xfffb);
	assert_int_equal(e - buf, n);
	assert_int_equal(buf[n], 0xcc);			/* nothing past it */
}

static void test_mptable(void **unused)
{
	struct mptable_cpus cpus = { 0, 0, 0 };
	uint8_t buf[16384];

	check_mptable(1);
	check_mptable(2);
	check_mptable(4);
	check_mptable(MPTABLE_MAX_CPUS);
	assert_int_equal(mptable_build(buf, sizeof(buf), MPTABLE_ADDR, &cpus),
			 -EINVAL);
	cpus.count = MPTABLE_MAX_CPUS + 1;
	assert_int_equal(mptable_build(buf, sizeof(buf), MPTABLE_ADDR, &cpus),
			 -EINVAL);
	cpus.count = 2;
	assert_int_equal(mptable_build(buf, mptable_size(2) - 1, MPTABLE_ADDR,
				       &cpus), -ENOSPC);
}

/* ---- PVH load into RAM -------------------------------------------------- */

struct files {
	char *dir;
	char kernel[4096];
	char initrd[4096];
};

static void write_files(struct files *f, const struct img *g,
			size_t initrd_len)
{
	uint8_t *rd = malloc(initrd_len + 1);

	f->dir = test_tmpdir();
	snprintf(f->kernel, sizeof(f->kernel), "%s/kernel.elf", f->dir);
	snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);
	test_write_file(f->kernel, g->b, g->len);
	for (size_t i = 0; i < initrd_len; i++)
		rd[i] = (uint8_t)(i * 13 + 1);
	test_write_file(f->initrd, rd, initrd_len);
	free(rd);
}

static void drop_files(struct files *f)
{
	test_rmtree(f->dir);
	free(f->dir);
}

static void test_pvh_load(void **unused)
{
	struct mptable_cpus cpus = { 2, 0x806f8, 0 };
	struct boot_config cfg = { .cmdline = "console=ttyS0 touch=1" };
	struct snap_err err = { "" };
	struct boot_image *img;
	struct boot_entry entry;
	struct files f;
	struct mem *m;
	uint8_t *ram, *si, *mm;
	struct img g;

	make_img(&g, 64, 8);
	write_files(&f, &g, 0);
	cfg.kernel = f.kernel;
	assert_int_equal(boot_open(&img, &cfg, 64 * MIB, &err), 0);
	assert_string_equal(boot_format(img), "pvh");
	assert_int_equal(mem_create(&m, 64 * MIB, NULL, &err), 0);
	ram = mem_host(m);
	memset(ram, 0xaa, 4 * MIB);	/* an old guest's leftovers */
	assert_int_equal(boot_load(img, m, &cpus, &entry, &err), 0);

	assert_int_equal(entry.mode, BOOT_PROTECTED32);
	assert_int_equal(entry.rip, IMG_ENTRY);
	assert_int_equal(entry.rbx, BOOT_DATA_START);

	/* The segment: file bytes, then zeros up to memsz. */
	assert_memory_equal(ram + IMG_LOAD, g.b + IMG_TEXT, 0x800);
	for (size_t i = 0x800; i < 0x2000; i++)
		assert_int_equal(ram[IMG_LOAD + i], 0);
	assert_int_equal(ram[IMG_LOAD + 0x2000], 0xaa);

	/* start_info. */
	si = ram + entry.rbx;
	assert_int_equal(le32_get(si), 0x336ec578);
	assert_int_equal(le32_get(si + 4), 1);
	assert_int_equal(le32_get(si + 8), 0);
	assert_int_equal(le32_get(si + 12), 0);		/* no modules */
	assert_int_equal(le64_get(si + 16), 0);
	assert_string_equal((char *)ram + le64_get(si + 24), cfg.cmdline);
	assert_int_equal(le64_get(si + 32), 0);		/* no RSDP */
	assert_int_equal(le32_get(si + 48), 3);
	assert_int_equal(le32_get(si + 52), 0);
	/* Boot data stays inside [0x1000, 0x5000), clear of 0x8000. */
	assert_true(le64_get(si + 24) >= BOOT_DATA_START);
	assert_true(le64_get(si + 24) + strlen(cfg.cmdline) < BOOT_DATA_END);
	assert_true(le64_get(si + 40) >= BOOT_DATA_START + 56);
	assert_true(le64_get(si + 40) + 3 * 24 <= BOOT_CMDLINE_ADDR);

	/* The memory map, 24-byte entries. */
	mm = ram + le64_get(si + 40);
	assert_int_equal(le64_get(mm), 0);
	assert_int_equal(le64_get(mm + 8), 0xa0000);
	assert_int_equal(le32_get(mm + 16), 1);
	assert_int_equal(le32_get(mm + 20), 0);
	assert_int_equal(le64_get(mm + 24), 0xa0000);
	assert_int_equal(le64_get(mm + 32), 0x60000);
	assert_int_equal(le32_get(mm + 40), 2);
	assert_int_equal(le64_get(mm + 48), 0x100000);
	assert_int_equal(le64_get(mm + 56), 63 * MIB);
	assert_int_equal(le32_get(mm + 64), 1);

	/* The MP table, where guests scan for it; low memory cleared. */
	assert_memory_equal(ram + MPTABLE_ADDR, "_MP_", 4);
	assert_int_equal(sum(ram + MPTABLE_ADDR, 16), 0);
	assert_int_equal(ram[0x40e], 0);
	assert_int_equal(ram[0x413], 0);
	assert_int_equal(ram[0xfffff], 0);

	boot_close(img);
	mem_destroy(m);
	drop_files(&f);
}

static void test_pvh_initrd_and_high_ram(void **unused)
{
	struct mptable_cpus cpus = { 1, 0, 0 };
	struct boot_config cfg = { 0 };
	struct snap_err err = { "" };
	const size_t rd_len = 5000;
	uint64_t mem = 3 * GIB + 16 * MIB, rd;
	struct boot_image *img;
	struct boot_entry entry;
	struct files f;
	struct mem *m;
	uint8_t *ram, *si, *mod, *mm;
	struct img g;

	make_img(&g, 32, 4);
	write_files(&f, &g, rd_len);
	cfg.kernel = f.kernel;
	cfg.initrd = f.initrd;
	assert_int_equal(boot_open(&img, &cfg, mem, &err), 0);
	assert_int_equal(mem_create(&m, mem, NULL, &err), 0);
	assert_int_equal(boot_load(img, m, &cpus, &entry, &err), 0);
	ram = mem_host(m);
	si = ram + entry.rbx;

	assert_int_equal(le32_get(si + 12), 1);
	mod = ram + le64_get(si + 16);
	rd = le64_get(mod);
	assert_int_equal(rd % 4096, 0);
	assert_true(rd + rd_len <= 3 * GIB);		/* top of low RAM */
	assert_true(rd + rd_len > 3 * GIB - 8192);
	assert_int_equal(le64_get(mod + 8), rd_len);
	assert_int_equal(le64_get(mod + 16), 0);
	assert_int_equal(le64_get(mod + 24), 0);
	assert_int_equal(ram[rd], 1);
	assert_int_equal(ram[rd + rd_len - 1], (uint8_t)((rd_len - 1) * 13 + 1));
	assert_string_equal((char *)ram + le64_get(si + 24), "");

	/* Four map entries: the last is RAM above the hole. */
	assert_int_equal(le32_get(si + 48), 4);
	mm = ram + le64_get(si + 40);
	assert_int_equal(le64_get(mm + 56), 3 * GIB - MIB);
	assert_int_equal(le64_get(mm + 72), 4 * GIB);
	assert_int_equal(le64_get(mm + 80), 16 * MIB);
	assert_int_equal(le32_get(mm + 88), 1);

	boot_close(img);
	mem_destroy(m);
	drop_files(&f);
}

static void expect_open_error(const struct boot_config *cfg, uint64_t mem,
			      int ret, const char *msg)
{
	struct snap_err err = { "" };
	struct boot_image *img = NULL;

	if (boot_open(&img, cfg, mem, &err) != ret)
		fail_msg("'%s' expected, got '%s'", msg, err.msg);
	if (!strstr(err.msg, msg))
		fail_msg("'%s' expected, got '%s'", msg, err.msg);
	assert_null(img);
}

static void test_boot_errors(void **unused)
{
	struct boot_config cfg = { 0 };
	char cmdline[BOOT_CMDLINE_MAX + 1];
	struct files f;
	struct img g;

	make_img(&g, 64, 4);
	write_files(&f, &g, 3 * MIB);
	cfg.kernel = f.kernel;

	/* RAM too small: the segment ends above 1 MiB + 8 KiB. */
	le64_put(phdr(&g, 0) + 40, 2 * MIB);
	test_write_file(f.kernel, g.b, g.len);
	expect_open_error(&cfg, 2 * MIB, -E2BIG, "segment 0 [0x100000, "
			  "0x300000) outside RAM (2 MiB): RAM too small");

	/* A segment over the boot data, or the BIOS area. */
	make_img(&g, 64, 4);
	le64_put(phdr(&g, 0) + 24, 0x4000);
	le32_put(g.b + XEN_DESC, 0x4010);
	test_write_file(f.kernel, g.b, g.len);
	expect_open_error(&cfg, 64 * MIB, -EINVAL, "overlaps the boot data");
	le64_put(phdr(&g, 0) + 24, 0xf0000);
	le32_put(g.b + XEN_DESC, 0xf0010);
	test_write_file(f.kernel, g.b, g.len);
	expect_open_error(&cfg, 64 * MIB, -EINVAL, "overlaps the BIOS area");

	/* No PVH note. */
	make_img(&g, 64, 4);
	le32_put(g.b + XEN_NOTE + 8, 17);
	test_write_file(f.kernel, g.b, g.len);
	expect_open_error(&cfg, 64 * MIB, -ENOEXEC, "without a PVH entry note");

	/* Not ELF at all; a broken ELF names the file. */
	test_write_file(f.kernel, "MZ garbage, not a kernel", 24);
	expect_open_error(&cfg, 64 * MIB, -ENOEXEC, "not a kernel snapvm can "
			  "boot");
	test_write_file(f.kernel, "\177ELF\003", 5);
	expect_open_error(&cfg, 64 * MIB, -ENOEXEC, "kernel.elf: ELF file of "
			  "5 bytes, truncated");
	test_write_file(f.kernel, "", 0);
	expect_open_error(&cfg, 64 * MIB, -ENOEXEC, "empty file");
	cfg.kernel = f.dir;
	expect_open_error(&cfg, 64 * MIB, -EINVAL, "not a regular file");
	cfg.kernel = "/nonexistent/kernel";
	expect_open_error(&cfg, 64 * MIB, -ENOENT, "--kernel /nonexistent/"
			  "kernel: No such file or directory");

	/* An initrd that does not fit above the kernel. */
	make_img(&g, 64, 4);
	test_write_file(f.kernel, g.b, g.len);
	cfg.kernel = f.kernel;
	cfg.initrd = f.initrd;
	expect_open_error(&cfg, 4 * MIB, -E2BIG, "3 MiB do not fit in RAM "
			  "above the kernel (3064 KiB free)");
	cfg.initrd = "/nonexistent/initrd";
	expect_open_error(&cfg, 64 * MIB, -ENOENT, "--initrd /nonexistent/");
	cfg.initrd = NULL;

	/* A command line longer than its room. */
	memset(cmdline, 'x', sizeof(cmdline) - 1);
	cmdline[sizeof(cmdline) - 1] = '\0';
	cfg.cmdline = cmdline;
	expect_open_error(&cfg, 64 * MIB, -E2BIG, "--cmdline: 12288 bytes, "
			  "at most 12287 expected");
	drop_files(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e820),
		cmocka_unit_test(test_mptable),
		cmocka_unit_test(test_pvh_load),
		cmocka_unit_test(test_pvh_initrd_and_high_ram),
		cmocka_unit_test(test_boot_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
