/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM: the layout around the 32-bit hole, and the backing file rules
 * (created and sized when new, never resized, removed only when ours).
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/mem.h"
#include "tests/lib/testutil.h"

#define GIB (1ull << 30)
#define MIB (1ull << 20)

static void test_layout(void **unused)
{
	struct mem_region r[MEM_MAX_REGIONS];

	assert_int_equal(mem_layout(0, r), 0);
	assert_int_equal(mem_layout(256 * MIB, r), 1);
	assert_int_equal(r[0].gpa, 0);
	assert_int_equal(r[0].size, 256 * MIB);
	assert_int_equal(r[0].offset, 0);

	assert_int_equal(mem_layout(3 * GIB, r), 1);
	assert_int_equal(r[0].size, 3 * GIB);

	assert_int_equal(mem_layout(3 * GIB + 4096, r), 2);
	assert_int_equal(r[0].size, 3 * GIB);
	assert_int_equal(r[1].gpa, 4 * GIB);
	assert_int_equal(r[1].size, 4096);
	assert_int_equal(r[1].offset, 3 * GIB);

	assert_int_equal(mem_layout(16 * GIB, r), 2);
	assert_int_equal(r[1].gpa, 4 * GIB);
	assert_int_equal(r[1].size, 13 * GIB);
}

static void test_layout_contains(void **unused)
{
	struct mem_region r[MEM_MAX_REGIONS];
	unsigned int n = mem_layout(5 * GIB, r);

	assert_true(mem_layout_contains(r, n, 0, 1));
	assert_true(mem_layout_contains(r, n, 0, 3 * GIB));
	assert_false(mem_layout_contains(r, n, 0, 3 * GIB + 1));
	assert_false(mem_layout_contains(r, n, 3 * GIB, 1));	/* the hole */
	assert_false(mem_layout_contains(r, n, 4 * GIB - 1, 2));
	assert_true(mem_layout_contains(r, n, 4 * GIB, 2 * GIB));
	assert_false(mem_layout_contains(r, n, 4 * GIB, 2 * GIB + 1));
	assert_false(mem_layout_contains(r, n, 6 * GIB, 1));
	assert_false(mem_layout_contains(r, n, 0x1000, 0));
	assert_false(mem_layout_contains(r, n, UINT64_MAX, 2));
	assert_false(mem_layout_contains(r, n, 4096, UINT64_MAX));
}

static void test_anonymous(void **unused)
{
	struct snap_err err = { "" };
	struct mem *m;
	uint8_t *p;

	assert_int_equal(mem_create(&m, 64 * MIB, NULL, &err), 0);
	assert_int_equal(mem_size(m), 64 * MIB);
	p = mem_ptr(m, 0x1000, 16);
	assert_ptr_equal(p, mem_host(m) + 0x1000);
	memset(p, 0xab, 16);
	assert_null(mem_ptr(m, 64 * MIB - 8, 16));
	assert_non_null(mem_ptr(m, 64 * MIB - 16, 16));
	mem_remove_created(m);		/* nothing to remove */
	mem_destroy(m);
	mem_destroy(NULL);

	assert_int_equal(mem_create(&m, 4095, NULL, &err), -EINVAL);
	assert_int_equal(mem_create(&m, 0, NULL, &err), -EINVAL);
}

static void test_high_mapping(void **unused)
{
	struct snap_err err = { "" };
	const struct mem_region *r;
	struct mem *m;

	assert_int_equal(mem_create(&m, 3 * GIB + 8 * MIB, NULL, &err), 0);
	assert_int_equal(mem_regions(m, &r), 2);
	assert_ptr_equal(mem_ptr(m, 4 * GIB, 4096), mem_host(m) + 3 * GIB);
	assert_null(mem_ptr(m, 3 * GIB, 4096));
	mem_destroy(m);
}

static void test_file(void **unused)
{
	char *dir = test_tmpdir(), path[4096];
	struct snap_err err = { "" };
	struct stat st;
	struct mem *m;
	uint8_t *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/memory.bin", dir);

	/* New: created, sized, sparse; the guest's writes reach the file. */
	assert_int_equal(mem_create(&m, 2 * MIB, path, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2 * MIB);
	assert_true((uint64_t)st.st_blocks * 512 < 2 * MIB);
	memcpy(mem_ptr(m, MIB, 5), "hello", 5);
	mem_destroy(m);
	buf = test_read_file(path, &len);
	assert_int_equal(len, 2 * MIB);
	assert_memory_equal(buf + MIB, "hello", 5);
	free(buf);

	/* Existing with the right size: used as it is. */
	assert_int_equal(mem_create(&m, 2 * MIB, path, &err), 0);
	assert_memory_equal(mem_ptr(m, MIB, 5), "hello", 5);
	mem_remove_created(m);		/* not ours: stays */
	mem_destroy(m);
	assert_int_equal(access(path, F_OK), 0);

	/* Existing with another size: refused, never resized. */
	assert_int_equal(mem_create(&m, 4 * MIB, path, &err), -EINVAL);
	assert_string_equal(err.msg, "size 2 MiB, 4 MiB expected");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2 * MIB);

	/* Not a regular file. */
	assert_int_equal(mem_create(&m, 2 * MIB, dir, &err), -EISDIR);
	assert_string_equal(err.msg, "Is a directory");
	assert_int_equal(mem_create(&m, 2 * MIB, "/dev/null", &err), -EINVAL);
	assert_string_equal(err.msg, "not a regular file");

	/* A directory that is not there. */
	snprintf(path, sizeof(path), "%s/no/memory.bin", dir);
	assert_int_equal(mem_create(&m, 2 * MIB, path, &err), -ENOENT);
	assert_string_equal(err.msg, "No such file or directory");

	/* Ours and given up: removed. */
	snprintf(path, sizeof(path), "%s/new.bin", dir);
	assert_int_equal(mem_create(&m, 2 * MIB, path, &err), 0);
	mem_remove_created(m);
	mem_destroy(m);
	assert_int_equal(access(path, F_OK), -1);

	test_rmtree(dir);
	free(dir);
}

/* A snapshot's image: private never writes it, shared runs in place. */
static void test_image(void **unused)
{
	char *dir = test_tmpdir(), path[4096];
	struct snap_err err = { "" };
	struct mem *m;
	uint8_t *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/memory.bin", dir);
	buf = calloc(1, 2 * MIB);
	memcpy(buf + MIB, "saved", 5);
	test_write_file(path, buf, 2 * MIB);
	free(buf);
	assert_int_equal(chmod(path, 0400), 0);	/* private needs no write */

	assert_int_equal(mem_open_image(&m, 2 * MIB, path, MEM_IMAGE_PRIVATE,
					&err), 0);
	assert_memory_equal(mem_ptr(m, MIB, 5), "saved", 5);
	assert_false(mem_file_shared(m));
	assert_true(mem_fd(m) >= 0);
	memcpy(mem_ptr(m, MIB, 5), "guest", 5);
	mem_destroy(m);
	buf = test_read_file(path, &len);
	assert_memory_equal(buf + MIB, "saved", 5);
	free(buf);

	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(mem_open_image(&m, 2 * MIB, path, MEM_IMAGE_SHARED,
					&err), 0);
	assert_true(mem_file_shared(m));
	memcpy(mem_ptr(m, MIB, 5), "guest", 5);
	mem_remove_created(m);		/* not ours: stays */
	mem_destroy(m);
	buf = test_read_file(path, &len);
	assert_int_equal(len, 2 * MIB);
	assert_memory_equal(buf + MIB, "guest", 5);
	free(buf);

	/* Never created, never resized. */
	assert_int_equal(mem_open_image(&m, 4 * MIB, path, MEM_IMAGE_PRIVATE,
					&err), -EINVAL);
	assert_string_equal(err.msg, "size 2 MiB, 4 MiB expected");
	snprintf(path, sizeof(path), "%s/none.bin", dir);
	assert_int_equal(mem_open_image(&m, 2 * MIB, path, MEM_IMAGE_SHARED,
					&err), -ENOENT);
	assert_int_equal(access(path, F_OK), -1);

	/* Anonymous RAM has no file. */
	assert_int_equal(mem_create(&m, 2 * MIB, NULL, &err), 0);
	assert_int_equal(mem_fd(m), -1);
	assert_false(mem_file_shared(m));
	mem_destroy(m);

	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_layout_contains),
		cmocka_unit_test(test_anonymous),
		cmocka_unit_test(test_high_mapping),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_image),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
