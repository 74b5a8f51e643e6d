/* SPDX-License-Identifier: MIT */
/*
 * Writing RAM images: the non-zero pages of RAM, the pages of a dirty
 * bitmap, and a sparse copy of another image. Each must give back exactly
 * the bytes it was given, leave holes where it wrote nothing, and count
 * what it moved.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/image.h"
#include "tests/lib/testutil.h"

#define PAGES	200u			/* not a multiple of 64 */
#define SIZE	((uint64_t)PAGES * IMAGE_PAGE)

struct fixture {
	char *dir;
	uint8_t *ram;
	char path[512];
	int fd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = test_tmpdir();
	f->ram = calloc(1, SIZE);
	snprintf(f->path, sizeof(f->path), "%s/memory.bin", f->dir);
	f->fd = open(f->path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(f->fd >= 0);
	assert_int_equal(ftruncate(f->fd, (off_t)SIZE), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->fd);
	test_rmtree(f->dir);
	free(f->dir);
	free(f->ram);
	free(f);
	return 0;
}

/* Page i gets bytes derived from (i, tag), never all zero. */
static void fill_page(uint8_t *ram, unsigned int i, uint8_t tag)
{
	for (unsigned int b = 0; b < IMAGE_PAGE; b++)
		ram[(uint64_t)i * IMAGE_PAGE + b] = (uint8_t)(i * 7 + b + tag) | 1;
}

static void assert_file_is(int fd, const uint8_t *want)
{
	uint8_t *got = malloc(SIZE);

	assert_int_equal(pread(fd, got, SIZE, 0), (ssize_t)SIZE);
	assert_memory_equal(got, want, SIZE);
	free(got);
}

/* Is page i of fd inside a hole? (ext4 and tmpfs report holes exactly.) */
static int is_hole(int fd, unsigned int i)
{
	off_t data = lseek(fd, (off_t)i * IMAGE_PAGE, SEEK_DATA);

	return data < 0 ? errno == ENXIO : data >= (off_t)(i + 1) * IMAGE_PAGE;
}

static void test_nonzero(void **state)
{
	struct fixture *f = *state;
	static const unsigned int used[] = { 0, 1, 63, 64, 130, PAGES - 1 };

	for (size_t i = 0; i < sizeof(used) / sizeof(used[0]); i++)
		fill_page(f->ram, used[i], 0);
	f->ram[100 * IMAGE_PAGE + IMAGE_PAGE - 1] = 0x80;	/* last byte only */

	assert_int_equal(image_write_nonzero(f->ram, SIZE, f->fd),
			 7 * IMAGE_PAGE);
	assert_file_is(f->fd, f->ram);
	assert_true(is_hole(f->fd, 2));
	assert_true(is_hole(f->fd, 99));
	assert_false(is_hole(f->fd, 100));
	assert_true(is_hole(f->fd, PAGES - 2));

	/* All zero: nothing written. */
	memset(f->ram, 0, SIZE);
	assert_int_equal(image_write_nonzero(f->ram, SIZE, f->fd + 1000), 0);
}

static void set_bit(uint64_t *bm, unsigned int i)
{
	bm[i / 64] |= 1ull << (i % 64);
}

static void test_pages(void **state)
{
	struct fixture *f = *state;
	uint64_t bm[(PAGES + 63) / 64] = { 0 };
	uint8_t *want = calloc(1, SIZE);
	static const unsigned int dirty[] = { 5, 62, 63, 64, 65, 128, PAGES - 1 };

	for (unsigned int i = 0; i < PAGES; i++)
		fill_page(f->ram, i, 3);
	for (size_t i = 0; i < sizeof(dirty) / sizeof(dirty[0]); i++) {
		set_bit(bm, dirty[i]);
		memcpy(want + (uint64_t)dirty[i] * IMAGE_PAGE,
		       f->ram + (uint64_t)dirty[i] * IMAGE_PAGE, IMAGE_PAGE);
	}
	assert_int_equal(image_write_pages(f->ram, SIZE, bm, f->fd),
			 7 * IMAGE_PAGE);
	assert_file_is(f->fd, want);
	assert_true(is_hole(f->fd, 6));

	/* An empty bitmap writes nothing, even to a bad descriptor. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(image_write_pages(f->ram, SIZE, bm, -1), 0);
	/* A bad descriptor is an error, not a short count. */
	set_bit(bm, 3);
	assert_int_equal(image_write_pages(f->ram, SIZE, bm, -1), -EBADF);
	free(want);
}

static void test_copy(void **state)
{
	struct fixture *f = *state;
	char path[600];
	int dst;

	/* A sparse source: data at pages 0-2, 70, and the last one. */
	for (unsigned int i = 0; i < 3; i++)
		fill_page(f->ram, i, 9);
	fill_page(f->ram, 70, 9);
	fill_page(f->ram, PAGES - 1, 9);
	assert_int_equal(image_write_nonzero(f->ram, SIZE, f->fd),
			 5 * IMAGE_PAGE);

	snprintf(path, sizeof(path), "%s/copy.bin", f->dir);
	dst = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(dst >= 0);
	assert_int_equal(ftruncate(dst, (off_t)SIZE), 0);
	assert_int_equal(image_copy_file(f->fd, dst, SIZE), 5 * IMAGE_PAGE);
	assert_file_is(dst, f->ram);
	assert_true(is_hole(dst, 3));
	assert_true(is_hole(dst, 69));
	assert_true(is_hole(dst, PAGES - 2));

	/* Only the first size bytes are copied. */
	assert_int_equal(ftruncate(dst, 0), 0);
	assert_int_equal(ftruncate(dst, (off_t)SIZE), 0);
	assert_int_equal(image_copy_file(f->fd, dst, 2 * IMAGE_PAGE),
			 2 * IMAGE_PAGE);
	assert_true(is_hole(dst, 2));
	close(dst);

	/* A destination open read-only: an error. */
	dst = open(path, O_RDONLY);
	assert_true(image_copy_file(f->fd, dst, SIZE) < 0);
	close(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nonzero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
