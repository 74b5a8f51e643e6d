/* SPDX-License-Identifier: MIT */
/*
 * snapvm's option values (sizes, counts) and the port bus: pure helpers,
 * no KVM.
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

#include "vmm/ioport.h"
#include "vmm/opts.h"

static void test_parse_size(void **unused)
{
	static const struct {
		const char *s;
		int ret;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "1K", 0, 1024 },
		{ "1k", 0, 1024 },
		{ "256M", 0, 256ull << 20 },
		{ "1G", 0, 1ull << 30 },
		{ "2g", 0, 2ull << 30 },
		{ "1T", 0, 1ull << 40 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "17179869184G", -ERANGE, 0 },
		{ "16777215T", 0, 16777215ull << 40 },
		{ "", -EINVAL, 0 },
		{ "1X", -EINVAL, 0 },
		{ "K", -EINVAL, 0 },
		{ "1KB", -EINVAL, 0 },
		{ "1KiB", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int ret = opts_parse_size(cases[i].s, &v);

		if (ret != cases[i].ret)
			fail_msg("'%s': %d, %d expected", cases[i].s, ret,
				 cases[i].ret);
		if (!ret && v != cases[i].v)
			fail_msg("'%s': %llu", cases[i].s,
				 (unsigned long long)v);
	}
}

static void test_parse_count(void **unused)
{
	unsigned int v = 7;

	assert_int_equal(opts_parse_count("1", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(opts_parse_count("4294967295", &v), 0);
	assert_int_equal(v, 4294967295u);
	assert_int_equal(opts_parse_count("4294967296", &v), -ERANGE);
	assert_int_equal(opts_parse_count("99999999999999999999999", &v),
			 -ERANGE);
	assert_int_equal(opts_parse_count("", &v), -EINVAL);
	assert_int_equal(opts_parse_count("1a", &v), -EINVAL);
	assert_int_equal(opts_parse_count("2M", &v), -EINVAL);
	assert_int_equal(opts_parse_count("-2", &v), -EINVAL);
}

static void test_format_size(void **unused)
{
	static const struct {
		uint64_t n;
		const char *s;
	} cases[] = {
		{ 1ull << 30, "1 GiB" },
		{ 256ull << 20, "256 MiB" },
		{ 3584ull << 20, "3584 MiB" },
		{ 4096, "4 KiB" },
		{ 2ull << 40, "2 TiB" },
		{ 1000, "1000 bytes" },
		{ 1, "1 byte" },
		{ 0, "0 bytes" },
		{ UINT64_MAX, "18446744073709551615 bytes" },
	};
	char buf[OPTS_SIZE_STR];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(opts_format_size(cases[i].n, buf,
						     sizeof(buf)), cases[i].s);
}

struct seen {
	unsigned int calls;
	uint16_t offset;
	bool is_write;
	unsigned int size;
	uint8_t value;
};

static void record(void *opaque, uint16_t offset, bool is_write,
		   uint8_t *data, unsigned int size)
{
	struct seen *s = opaque;

	s->calls++;
	s->offset = offset;
	s->is_write = is_write;
	s->size = size;
	if (is_write)
		s->value = data[0];
	else
		memset(data, 0x5a, size);
}

static void test_ioport_dispatch(void **unused)
{
	struct ioport_bus *bus;
	struct seen a = { 0 }, b = { 0 };
	uint8_t data[4];

	assert_int_equal(ioport_bus_create(&bus), 0);
	assert_int_equal(ioport_register(bus, 0x3f8, 8, "a", record, &a), 0);
	assert_int_equal(ioport_register(bus, 0x60, 1, "b", record, &b), 0);
	assert_int_equal(ioport_register(bus, 0x64, 1, "b", record, &b), 0);
	/* Overlaps, at either end and inside, are refused. */
	assert_int_equal(ioport_register(bus, 0x3f0, 9, "x", record, &b),
			 -EBUSY);
	assert_int_equal(ioport_register(bus, 0x3ff, 1, "x", record, &b),
			 -EBUSY);
	assert_int_equal(ioport_register(bus, 0x3fa, 1, "x", record, &b),
			 -EBUSY);
	assert_int_equal(ioport_register(bus, 0x3f0, 8, "x", record, &b), 0);
	assert_int_equal(ioport_register(bus, 0xffff, 2, "x", record, &b),
			 -EINVAL);
	assert_int_equal(ioport_register(bus, 0x10, 0, "x", record, &b),
			 -EINVAL);

	data[0] = 'h';
	ioport_access(bus, 0x3f8, true, data, 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.offset, 0);
	assert_true(a.is_write);
	assert_int_equal(a.value, 'h');
	ioport_access(bus, 0x3fd, false, data, 2);
	assert_int_equal(a.calls, 2);
	assert_int_equal(a.offset, 5);
	assert_int_equal(a.size, 2);
	assert_int_equal(data[1], 0x5a);
	ioport_access(bus, 0x64, true, data, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.offset, 0);
	ioport_bus_destroy(bus);
	ioport_bus_destroy(NULL);
}

static void test_ioport_unclaimed(void **unused)
{
	struct ioport_bus *bus;
	struct seen a = { 0 };
	uint8_t data[4] = { 1, 2, 3, 4 };
	char *report = NULL;
	size_t len = 0;
	FILE *f;

	assert_int_equal(ioport_bus_create(&bus), 0);
	assert_int_equal(ioport_register(bus, 0x3f8, 8, "a", record, &a), 0);
	ioport_access(bus, 0x80, true, data, 1);
	ioport_access(bus, 0x80, true, data, 1);
	ioport_access(bus, 0x70, false, data, 4);
	assert_memory_equal(data, "\xff\xff\xff\xff", 4);
	ioport_access(bus, 0x70, true, data, 1);
	ioport_access(bus, 0xcf8, false, data, 4);
	assert_int_equal(a.calls, 0);

	f = open_memstream(&report, &len);
	assert_non_null(f);
	ioport_report(bus, f);
	fclose(f);
	assert_string_equal(report,
			    "snapvm: unclaimed port 0x70: 1 read, 1 write\n"
			    "snapvm: unclaimed port 0x80: 2 writes\n"
			    "snapvm: unclaimed port 0xcf8: 1 read\n");
	free(report);
	ioport_bus_destroy(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_count),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_ioport_dispatch),
		cmocka_unit_test(test_ioport_unclaimed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
