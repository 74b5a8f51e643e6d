/* SPDX-License-Identifier: MIT */
/*
 * snapvm's Linux boot protocol loader, byte by byte: a synthetic bzImage
 * (setup sectors with a setup header, then a payload) loaded into RAM, its
 * zero page against Documentation/arch/x86/boot.rst and zero-page.rst, the
 * 64-bit entry's page tables and GDT, the loader's errors, and Debian's
 * real bzImage when `make guest` fetched it. Nothing here needs KVM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/boot/boot.h"
#include "vmm/boot/le.h"
#include "vmm/boot/mptable.h"
#include "vmm/mem.h"
#include "tests/lib/testutil.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

/* The synthetic kernel: 4 setup sectors (setup_sects 0), 8 KiB payload. */
#define BZ_SETUP	(5 * 512)
#define BZ_PAYLOAD	0x2000
#define BZ_LEN		(BZ_SETUP + BZ_PAYLOAD)
#define BZ_HDR_END	0x26c		/* 0x202 + the jump's 0x6a */
#define BZ_PREF		0x1000000	/* 16 MiB */
#define BZ_INIT_SIZE	0x400000	/* 4 MiB */
#define BZ_CMDLINE_SIZE	255

#define REAL_VMLINUZ	"build/guest/vmlinuz"

struct bz {
	uint8_t b[BZ_LEN];
};

/*
 * Every byte a pattern, so that the header copy is checked, then the fields
 * the loader reads. 0x1ef (the zero page's sentinel) is 0xff, as in Linux.
 */
static void make_bz(struct bz *k)
{
	for (size_t i = 0; i < sizeof(k->b); i++)
		k->b[i] = (uint8_t)(i * 7 + 3);
	k->b[0x1ef] = 0xff;
	k->b[0x1f1] = 0;			/* setup_sects: 4 */
	le16_put(k->b + 0x1fe, 0xaa55);
	k->b[0x200] = 0xeb;
	k->b[0x201] = BZ_HDR_END - 0x202;
	memcpy(k->b + 0x202, "HdrS", 4);
	le16_put(k->b + 0x206, 0x020f);
	k->b[0x210] = 0;			/* type_of_loader */
	k->b[0x211] = 0x01;			/* LOADED_HIGH */
	le32_put(k->b + 0x218, 0);		/* ramdisk_image */
	le32_put(k->b + 0x21c, 0);		/* ramdisk_size */
	le32_put(k->b + 0x228, 0);		/* cmd_line_ptr */
	le32_put(k->b + 0x22c, 0x7fffffff);	/* initrd_addr_max */
	le32_put(k->b + 0x230, 0x200000);	/* kernel_alignment */
	k->b[0x234] = 1;			/* relocatable_kernel */
	le16_put(k->b + 0x236, 0x0001);		/* XLF_KERNEL_64 */
	le32_put(k->b + 0x238, BZ_CMDLINE_SIZE);
	le64_put(k->b + 0x258, BZ_PREF);
	le32_put(k->b + 0x260, BZ_INIT_SIZE);
}

struct files {
	char *dir;
	char kernel[4096];
	char initrd[4096];
};

static uint8_t rd_byte(size_t i)
{
	return (uint8_t)(i * 13 + 1);
}

static void write_files(struct files *f, const void *kernel, size_t len,
			size_t initrd_len)
{
	uint8_t *rd = malloc(initrd_len + 1);

	f->dir = test_tmpdir();
	snprintf(f->kernel, sizeof(f->kernel), "%s/bzImage", f->dir);
	snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);
	test_write_file(f->kernel, kernel, len);
	for (size_t i = 0; i < initrd_len; i++)
		rd[i] = rd_byte(i);
	test_write_file(f->initrd, rd, initrd_len);
	free(rd);
}

static void drop_files(struct files *f)
{
	test_rmtree(f->dir);
	free(f->dir);
}

/* Open and load cfg into a new RAM of mem bytes; the caller frees both. */
static void load(const struct boot_config *cfg, uint64_t mem,
		 struct boot_image **img, struct mem **m,
		 struct boot_entry *entry)
{
	struct mptable_cpus cpus = { 2, 0x806f8, 0 };
	struct snap_err err = { "" };

	if (boot_open(img, cfg, mem, &err))
		fail_msg("boot_open: %s", err.msg);
	assert_string_equal(boot_format(*img), "bzimage");
	assert_int_equal(mem_create(m, mem, NULL, &err), 0);
	memset(mem_host(*m), 0xaa, 32 * MIB);	/* an old guest's leftovers */
	if (boot_load(*img, *m, &cpus, entry, &err))
		fail_msg("boot_load: %s", err.msg);
}

/* ---- the zero page ------------------------------------------------------ */

/* Header bytes the loader writes rather than copies. */
static bool written(size_t off)
{
	return off == 0x210 || off == 0x211 ||
	       (off >= 0x218 && off < 0x220) || (off >= 0x228 && off < 0x22c);
}

static void check_header_copy(const uint8_t *zp, const uint8_t *file,
			      size_t end)
{
	for (size_t i = 0x1f1; i < end; i++)
		if (!written(i) && zp[i] != file[i])
			fail_msg("zero page 0x%zx: 0x%02x, 0x%02x in the file",
				 i, zp[i], file[i]);
	assert_int_equal(zp[0x210], 0xff);		/* type_of_loader */
	assert_int_equal(zp[0x211], file[0x211] & 0x7f);  /* no CAN_USE_HEAP */
}

static void check_zero_bytes(const uint8_t *zp, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (zp[i] != 0)
			fail_msg("zero page 0x%zx: 0x%02x, 0 expected", i,
				 zp[i]);
}

/* e820 entry i: u64 addr, u64 size, u32 type, 20 bytes from 0x2d0. */
static void check_e820(const uint8_t *zp, int i, uint64_t addr, uint64_t size,
		       uint32_t type)
{
	const uint8_t *e = zp + 0x2d0 + 20 * i;

	assert_int_equal(le64_get(e), addr);
	assert_int_equal(le64_get(e + 8), size);
	assert_int_equal(le32_get(e + 16), type);
}

/* ---- page tables and GDT ------------------------------------------------ */

static void check_page_tables(const uint8_t *ram, const struct boot_entry *e)
{
	const uint8_t *pml4 = ram + e->cr3, *pdpt, *pd;

	assert_int_equal(e->cr3 % 4096, 0);
	assert_int_equal(le64_get(pml4) & 0xfff, 0x003);	/* P, RW */
	for (int i = 1; i < 512; i++)
		assert_int_equal(le64_get(pml4 + 8 * i), 0);
	pdpt = ram + (le64_get(pml4) & ~0xfffull);
	for (int i = 0; i < 512; i++) {
		uint64_t pdpte = le64_get(pdpt + 8 * i);

		if (i >= 4) {
			assert_int_equal(pdpte, 0);
			continue;
		}
		assert_int_equal(pdpte & 0xfff, 0x003);
		pd = ram + (pdpte & ~0xfffull);
		/* 2 MiB pages, P, RW, PS: the identity map of 4 GiB. */
		for (uint64_t j = 0; j < 512; j++)
			assert_int_equal(le64_get(pd + 8 * j),
					 ((i * 512 + j) << 21) | 0x83);
	}
}

struct desc {
	uint32_t base, limit;
	unsigned int type, s, dpl, p, l, db, g;
};

static struct desc decode(uint64_t d)
{
	return (struct desc){
		.limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000)),
		.base = (uint32_t)(((d >> 16) & 0xffffff) |
				   ((d >> 32) & 0xff000000)),
		.type = (d >> 40) & 0xf,
		.s = (d >> 44) & 1,
		.dpl = (d >> 45) & 3,
		.p = (d >> 47) & 1,
		.l = (d >> 53) & 1,
		.db = (d >> 54) & 1,
		.g = (d >> 55) & 1,
	};
}

static void check_gdt(const uint8_t *ram, const struct boot_entry *e)
{
	const uint8_t *gdt = ram + e->gdt_base;
	struct desc cs, ds;

	/* __BOOT_CS 0x10 and __BOOT_DS 0x18, as the 64-bit protocol asks. */
	assert_int_equal(e->gdt_limit, 4 * 8 - 1);
	assert_int_equal(le64_get(gdt), 0);
	assert_int_equal(le64_get(gdt + 8), 0);
	cs = decode(le64_get(gdt + BOOT_SEL_CODE64));
	ds = decode(le64_get(gdt + BOOT_SEL_DATA64));
	assert_int_equal(BOOT_SEL_CODE64, 0x10);
	assert_int_equal(BOOT_SEL_DATA64, 0x18);
	assert_int_equal(cs.base, 0);
	assert_int_equal(cs.limit, 0xfffff);
	assert_int_equal(cs.g, 1);
	assert_int_equal(cs.type, 0xb);		/* execute/read, accessed */
	assert_int_equal(cs.s, 1);
	assert_int_equal(cs.dpl, 0);
	assert_int_equal(cs.p, 1);
	assert_int_equal(cs.l, 1);
	assert_int_equal(cs.db, 0);
	assert_int_equal(ds.base, 0);
	assert_int_equal(ds.limit, 0xfffff);
	assert_int_equal(ds.g, 1);
	assert_int_equal(ds.type, 0x3);		/* read/write, accessed */
	assert_int_equal(ds.s, 1);
	assert_int_equal(ds.p, 1);
	assert_int_equal(ds.l, 0);
	assert_int_equal(ds.db, 1);
}

/* No two of the boot structures overlap, and 0x8000 stays free. */
static void test_layout(void **unused)
{
	const struct {
		uint64_t start, end;
	} r[] = {
		{ BOOT_ZERO_PAGE_ADDR, BOOT_ZERO_PAGE_ADDR + 4096 },
		{ BOOT_CMDLINE_ADDR, BOOT_CMDLINE_ADDR + BOOT_CMDLINE_MAX },
		{ BOOT_GDT_ADDR, BOOT_GDT_ADDR + 32 },
		{ BOOT_PML4_ADDR, BOOT_PML4_ADDR + 4096 },
		{ BOOT_PDPT_ADDR, BOOT_PDPT_ADDR + 4096 },
		{ BOOT_PD_ADDR, BOOT_PD_ADDR + 4 * 4096 },
		{ 0x8000, 0x9000 },		/* the AP trampoline's */
		{ MPTABLE_ADDR, 0x100000 },
	};
	size_t n = sizeof(r) / sizeof(r[0]);

	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (r[i].start < r[j].end && r[j].start < r[i].end)
				fail_msg("[0x%llx, 0x%llx) overlaps [0x%llx, "
					 "0x%llx)",
					 (unsigned long long)r[i].start,
					 (unsigned long long)r[i].end,
					 (unsigned long long)r[j].start,
					 (unsigned long long)r[j].end);
	assert_true(BOOT_PD_ADDR + 4 * 4096 <= 0xa0000);  /* below 640 KiB */
}

/* ---- loads -------------------------------------------------------------- */

static void test_bz_load(void **unused)
{
	struct boot_config cfg = { .cmdline = "console=ttyS0 panic=-1" };
	const size_t rd_len = 5000;
	struct boot_image *img;
	struct boot_entry entry;
	struct files f;
	struct mem *m;
	uint8_t *ram, *zp;
	uint64_t rd;
	struct bz k;

	make_bz(&k);
	write_files(&f, k.b, sizeof(k.b), rd_len);
	cfg.kernel = f.kernel;
	cfg.initrd = f.initrd;
	load(&cfg, 64 * MIB, &img, &m, &entry);
	ram = mem_host(m);

	/* The 64-bit entry: load address + 0x200, RSI = the zero page. */
	assert_int_equal(entry.mode, BOOT_LONG64);
	assert_int_equal(entry.rip, BZ_PREF + 0x200);
	assert_int_equal(entry.rsi, BOOT_ZERO_PAGE_ADDR);
	assert_int_equal(entry.rbx, 0);
	assert_int_equal(entry.cr3, BOOT_PML4_ADDR);
	assert_int_equal(entry.gdt_base, BOOT_GDT_ADDR);

	/* The payload at pref_address, and nothing after it. */
	assert_memory_equal(ram + BZ_PREF, k.b + BZ_SETUP, BZ_PAYLOAD);
	assert_int_equal(ram[BZ_PREF + BZ_PAYLOAD], 0xaa);
	assert_int_equal(ram[BZ_PREF - 1], 0xaa);

	zp = ram + entry.rsi;
	check_header_copy(zp, k.b, BZ_HDR_END);
	check_zero_bytes(zp, 0, 0xc0);
	check_zero_bytes(zp, 0xc8, 0x1e8);	/* ext_cmd_line_ptr, sentinel */
	check_zero_bytes(zp, 0x1e9, 0x1f1);
	check_zero_bytes(zp, BZ_HDR_END, 0x2d0);
	check_zero_bytes(zp, 0x2d0 + 3 * 20, 4096);

	/* The command line. */
	assert_int_equal(le32_get(zp + 0x228), BOOT_CMDLINE_ADDR);
	assert_string_equal((char *)ram + BOOT_CMDLINE_ADDR, cfg.cmdline);

	/* The initrd: at the top of RAM, page aligned, above the kernel. */
	rd = le32_get(zp + 0x218) | (uint64_t)le32_get(zp + 0x0c0) << 32;
	assert_int_equal(le32_get(zp + 0x21c), rd_len);
	assert_int_equal(le32_get(zp + 0x0c4), 0);
	assert_int_equal(rd % 4096, 0);
	assert_int_equal(rd, (64 * MIB - rd_len) & ~0xfffull);
	assert_true(rd >= BZ_PREF + BZ_INIT_SIZE);
	for (size_t i = 0; i < rd_len; i++)
		assert_int_equal(ram[rd + i], rd_byte(i));

	/* The e820 map: three entries. */
	assert_int_equal(zp[0x1e8], 3);
	check_e820(zp, 0, 0, 0xa0000, 1);
	check_e820(zp, 1, 0xa0000, 0x60000, 2);
	check_e820(zp, 2, 0x100000, 63 * MIB, 1);

	check_page_tables(ram, &entry);
	check_gdt(ram, &entry);

	/* The MP table where guests scan; [0x5000, 0x9000) not written. */
	assert_memory_equal(ram + MPTABLE_ADDR, "_MP_", 4);
	for (uint64_t a = BOOT_DATA_END; a < BOOT_LONG64_START; a++)
		assert_int_equal(ram[a], 0xaa);

	boot_close(img);
	mem_destroy(m);
	drop_files(&f);
}

/* 3 GiB + 16 MiB: four e820 entries; the initrd below initrd_addr_max. */
static void test_bz_high_ram(void **unused)
{
	struct boot_config cfg = { 0 };
	const size_t rd_len = 3 * 4096 + 1;
	uint64_t mem = 3 * GIB + 16 * MIB, rd;
	struct boot_image *img;
	struct boot_entry entry;
	struct files f;
	struct mem *m;
	uint8_t *ram, *zp;
	struct bz k;

	make_bz(&k);
	write_files(&f, k.b, sizeof(k.b), rd_len);
	cfg.kernel = f.kernel;
	cfg.initrd = f.initrd;
	load(&cfg, mem, &img, &m, &entry);
	ram = mem_host(m);
	zp = ram + entry.rsi;

	rd = le32_get(zp + 0x218);
	assert_int_equal(le32_get(zp + 0x0c0), 0);
	assert_true(rd + rd_len <= 0x80000000);	/* initrd_addr_max + 1 */
	assert_true(rd + rd_len > 0x80000000 - 4096);
	assert_int_equal(ram[rd + rd_len - 1], rd_byte(rd_len - 1));
	assert_string_equal((char *)ram + le32_get(zp + 0x228), "");

	assert_int_equal(zp[0x1e8], 4);
	check_e820(zp, 2, 0x100000, 3 * GIB - MIB, 1);
	check_e820(zp, 3, 4 * GIB, 16 * MIB, 1);

	boot_close(img);
	mem_destroy(m);
	drop_files(&f);
}

static uint64_t entry_of(const struct bz *k, uint64_t mem)
{
	struct boot_config cfg = { 0 };
	struct boot_image *img;
	struct boot_entry entry;
	struct files f;
	struct mem *m;

	write_files(&f, k->b, sizeof(k->b), 0);
	cfg.kernel = f.kernel;
	load(&cfg, mem, &img, &m, &entry);
	boot_close(img);
	mem_destroy(m);
	drop_files(&f);
	return entry.rip;
}

/* Where the payload goes for other headers. */
static void test_bz_load_address(void **unused)
{
	struct bz k;

	/* Relocatable, no pref_address: 0x100000 aligned up to 2 MiB. */
	make_bz(&k);
	le64_put(k.b + 0x258, 0);
	assert_int_equal(entry_of(&k, 64 * MIB), 0x200000 + 0x200);

	/* An unaligned pref_address is aligned up to kernel_alignment. */
	le64_put(k.b + 0x258, 0x1100000);
	assert_int_equal(entry_of(&k, 64 * MIB), 0x1200000 + 0x200);

	/* Not relocatable: at 0x100000; it moves itself to pref_address. */
	make_bz(&k);
	k.b[0x234] = 0;
	assert_int_equal(entry_of(&k, 64 * MIB), 0x100000 + 0x200);

	/* setup_sects 7: the payload starts at 8 * 512. */
	make_bz(&k);
	k.b[0x1f1] = 7;
	assert_int_equal(entry_of(&k, 64 * MIB), BZ_PREF + 0x200);
}

/* ---- errors ------------------------------------------------------------- */

static void expect_error(const struct boot_config *cfg, uint64_t mem,
			 int ret, const char *msg)
{
	struct snap_err err = { "" };
	struct boot_image *img = NULL;

	if (boot_open(&img, cfg, mem, &err) != ret)
		fail_msg("'%s' expected, got '%s'", msg, err.msg);
	if (!strstr(err.msg, msg))
		fail_msg("'%s' expected, got '%s'", msg, err.msg);
	if (strchr(err.msg, '\n'))
		fail_msg("more than one line: '%s'", err.msg);
	assert_null(img);
}

static void expect_kernel_error(struct files *f, const struct bz *k,
				size_t len, uint64_t mem, int ret,
				const char *msg)
{
	struct boot_config cfg = { .kernel = f->kernel };

	test_write_file(f->kernel, k->b, len);
	expect_error(&cfg, mem, ret, msg);
}

static void test_bz_format_errors(void **unused)
{
	struct files f;
	struct bz k;

	make_bz(&k);
	write_files(&f, k.b, sizeof(k.b), 0);

	/* Truncated: in the header, in the setup, right after the setup. */
	expect_kernel_error(&f, &k, 0x207, 64 * MIB, -ENOEXEC,
			    "bzImage of 519 bytes, truncated");
	expect_kernel_error(&f, &k, 0x400, 64 * MIB, -ENOEXEC,
			    "bzImage of 1024 bytes, truncated: 2560 bytes of "
			    "setup, then the kernel expected");
	expect_kernel_error(&f, &k, BZ_SETUP, 64 * MIB, -ENOEXEC,
			    "bzImage of 2560 bytes, truncated");

	/* Protocol 2.11: no xloadflags. */
	le16_put(k.b + 0x206, 0x020b);
	expect_kernel_error(&f, &k, sizeof(k.b), 64 * MIB, -ENOEXEC,
			    "bzImage: boot protocol 2.11, 2.12 or later "
			    "expected");

	/* No 64-bit entry. */
	make_bz(&k);
	le16_put(k.b + 0x236, 0x0002);
	expect_kernel_error(&f, &k, sizeof(k.b), 64 * MIB, -ENOEXEC,
			    "no 64-bit entry (XLF_KERNEL_64 clear in "
			    "xloadflags)");

	/* A zImage. */
	make_bz(&k);
	k.b[0x211] = 0;
	expect_kernel_error(&f, &k, sizeof(k.b), 64 * MIB, -ENOEXEC,
			    "LOADED_HIGH clear in loadflags");

	/* A header that ends too early or runs into the zero page's rest. */
	make_bz(&k);
	k.b[0x201] = 0x60;
	expect_kernel_error(&f, &k, sizeof(k.b), 64 * MIB, -ENOEXEC,
			    "setup header ends at 0x262, between 0x264 and "
			    "0x290 expected");
	k.b[0x201] = 0x8f;
	expect_kernel_error(&f, &k, sizeof(k.b), 64 * MIB, -ENOEXEC,
			    "setup header ends at 0x291");

	/* An alignment that is no power of two. */
	make_bz(&k);
	le32_put(k.b + 0x230, 0x300000);
	expect_kernel_error(&f, &k, sizeof(k.b), 64 * MIB, -ENOEXEC,
			    "kernel_alignment 0x300000, a power of two "
			    "expected");

	/* The boot flag without "HdrS": neither format. */
	make_bz(&k);
	memcpy(k.b + 0x202, "HdrT", 4);
	expect_kernel_error(&f, &k, sizeof(k.b), 64 * MIB, -ENOEXEC,
			    "not a kernel snapvm can boot (an ELF with a PVH "
			    "entry note or a bzImage expected)");
	drop_files(&f);
}

static void test_bz_ram_errors(void **unused)
{
	struct boot_config cfg = { 0 };
	char cmdline[BZ_CMDLINE_SIZE + 2];
	struct snap_err err = { "" };
	struct boot_image *img;
	struct files f;
	struct bz k;

	make_bz(&k);
	write_files(&f, k.b, sizeof(k.b), 5 * MIB);
	cfg.kernel = f.kernel;

	/* init_size from pref_address needs 20 MiB of RAM. */
	expect_error(&cfg, 18 * MIB, -E2BIG, "bzImage: init_size [0x1000000, "
		     "0x1400000) outside RAM (18 MiB): RAM too small for the "
		     "image");
	le32_put(k.b + 0x260, 0x200000);
	test_write_file(f.kernel, k.b, sizeof(k.b));
	expect_error(&cfg, 16 * MIB, -E2BIG, "kernel [0x1000000, 0x1002000) "
		     "outside RAM (16 MiB): RAM too small for the image");

	/* An initrd larger than the room below initrd_addr_max. */
	make_bz(&k);
	le32_put(k.b + 0x22c, 0x17fffff);
	test_write_file(f.kernel, k.b, sizeof(k.b));
	cfg.initrd = f.initrd;
	expect_error(&cfg, 64 * MIB, -E2BIG, "5 MiB do not fit in RAM between "
		     "the kernel and its initrd limit 0x1800000 (4 MiB free)");
	/* Without the limit, only RAM's end counts. */
	expect_error(&cfg, 24 * MIB, -E2BIG, "5 MiB do not fit in RAM above "
		     "the kernel (4 MiB free)");

	/* A command line longer than cmdline_size. */
	make_bz(&k);
	test_write_file(f.kernel, k.b, sizeof(k.b));
	cfg.initrd = NULL;
	memset(cmdline, 'x', sizeof(cmdline) - 1);
	cmdline[sizeof(cmdline) - 1] = '\0';
	cfg.cmdline = cmdline;
	expect_error(&cfg, 64 * MIB, -E2BIG, "--cmdline: 256 bytes, at most "
		     "255 expected (the kernel's cmdline_size)");
	cmdline[sizeof(cmdline) - 2] = '\0';		/* 255: fits */
	assert_int_equal(boot_open(&img, &cfg, 64 * MIB, &err), 0);
	boot_close(img);
	drop_files(&f);
}

/* ---- Debian's bzImage --------------------------------------------------- */

static void test_real_vmlinuz(void **unused)
{
	struct boot_config cfg = { .kernel = REAL_VMLINUZ,
				   .cmdline = "console=ttyS0" };
	struct boot_image *img;
	struct boot_entry entry;
	struct mem *m;
	uint8_t *file, *zp;
	size_t len;

	if (access(REAL_VMLINUZ, R_OK) != 0) {
		fprintf(stderr, "test_real_vmlinuz: %s missing (make guest "
			"fetches it): skipped\n", REAL_VMLINUZ);
		skip();
	}
	load(&cfg, 256 * MIB, &img, &m, &entry);
	file = test_read_file(REAL_VMLINUZ, &len);
	zp = mem_host(m) + entry.rsi;
	assert_int_equal(entry.mode, BOOT_LONG64);
	assert_int_equal(entry.rip, le64_get(file + 0x258) + 0x200);
	check_header_copy(zp, file, 0x202 + file[0x201]);
	assert_int_equal(zp[0x1ef], 0);		/* the file's sentinel stays */
	assert_int_equal(zp[0x1e8], 3);
	boot_close(img);
	mem_destroy(m);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_bz_load),
		cmocka_unit_test(test_bz_high_ram),
		cmocka_unit_test(test_bz_load_address),
		cmocka_unit_test(test_bz_format_errors),
		cmocka_unit_test(test_bz_ram_errors),
		cmocka_unit_test(test_real_vmlinuz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
