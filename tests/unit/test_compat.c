/* SPDX-License-Identifier: MIT */
/*
 * Snapshots written by earlier revisions (tests/compat/) must load in every
 * later build, with the values they were written with.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

struct vcpu_expect {
	uint64_t rip, rsp, cr3;
	uint16_t cs_selector;
	uint64_t msr5;
	uint8_t lapic0;
};

static const struct fixture {
	const char *name;
	const char *id;
	uint64_t created_unix_ns;
	uint32_t vcpus;
	uint64_t memory_size;
	uint64_t state_size;
	uint32_t xsave_size, n_msrs, n_cpuid;
	struct vcpu_expect vcpu[2];
	uint8_t pit_mode2;
	uint64_t clock;
	uint64_t ioapic_pin23;
} fixtures[] = {
	{
		.name = "2026-11-v1-sample",
		.id = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a",
		.created_unix_ns = 1795540969065411720ull,
		.vcpus = 2, .memory_size = 65536, .state_size = 20289,
		.xsave_size = 4096, .n_msrs = 41, .n_cpuid = 61,
		.vcpu = {
			{ 0xcfbf27f43460e940, 0x8db6ec216e840276,
			  0xa193b980f0cb6e18, 0x1a83, 0x2a8ac201a95bee70, 155 },
			{ 0x67f8b9b5aacda002, 0x0ce9da3f218149ee,
			  0x9bec20016dd1e8b8, 0xb626, 0x152b666ee7f6bf2f, 16 },
		},
		.pit_mode2 = 60, .clock = 0xf3f66f2a46363c17,
		.ioapic_pin23 = 0x1c2879a91023526a,
	},
};

#define N_FIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static const char *compat_dir(void)
{
	const char *d = getenv("SNAP_COMPAT_DIR");

	return d ? d : "tests/compat";
}

static void check_fixture(const struct fixture *f)
{
	struct snap_err err = { "" };
	struct snap_state *s = NULL;
	struct snap_manifest m;
	const struct snap_device *uart;
	struct snap_uart8250 u;
	char *dir, id[2 * SNAP_ID_LEN + 1];

	if (asprintf(&dir, "%s/%s", compat_dir(), f->name) < 0)
		abort();
	if (snap_read(dir, SNAP_MEMORY_DIGEST, &m, &s, &err))
		fail_msg("%s: %s", dir, err.msg);
	snap_hex(m.id, SNAP_ID_LEN, id);
	assert_string_equal(id, f->id);
	assert_int_equal(m.created_unix_ns, f->created_unix_ns);
	assert_int_equal(m.vcpu_count, f->vcpus);
	assert_int_equal(m.memory_size, f->memory_size);
	assert_int_equal(m.state_size, f->state_size);
	assert_true(m.has_memory_sha256);
	assert_int_equal(s->n_vcpus, f->vcpus);
	for (uint32_t i = 0; i < f->vcpus && i < 2; i++) {
		const struct snap_vcpu *v = &s->vcpus[i];

		assert_int_equal(v->regs.rip, f->vcpu[i].rip);
		assert_int_equal(v->regs.rsp, f->vcpu[i].rsp);
		assert_int_equal(v->sregs.cr3, f->vcpu[i].cr3);
		assert_int_equal(v->sregs.cs.selector, f->vcpu[i].cs_selector);
		assert_int_equal(v->xsave_size, f->xsave_size);
		assert_int_equal(v->n_msrs, f->n_msrs);
		assert_int_equal(v->n_cpuid, f->n_cpuid);
		assert_int_equal(v->msrs[5].value, f->vcpu[i].msr5);
		assert_int_equal(v->lapic[0], f->vcpu[i].lapic0);
	}
	assert_int_equal(s->pit.channels[2].mode, f->pit_mode2);
	assert_int_equal(s->clock.clock, f->clock);
	assert_int_equal(s->ioapic.redirtbl[23], f->ioapic_pin23);
	uart = snap_state_find_device(s, "uart8250@0x3f8");
	assert_non_null(uart);
	assert_int_equal(snap_uart8250_decode(uart->payload, uart->len, &u,
					      &err), 0);
	assert_memory_equal(u.rx_fifo, "hello", 5);
	snap_manifest_release(&m);
	snap_state_free(s);
	free(dir);
}

static void test_fixtures_load(void **unused)
{
	for (size_t i = 0; i < N_FIXTURES; i++)
		check_fixture(&fixtures[i]);
}

/* Every directory in tests/compat has expectations, and none vanished. */
static void test_fixture_list_complete(void **unused)
{
	DIR *d = opendir(compat_dir());
	struct dirent *e;
	size_t seen = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		bool known = false;

		if (e->d_name[0] == '.' || e->d_type != DT_DIR)
			continue;
		for (size_t i = 0; i < N_FIXTURES; i++)
			known |= !strcmp(fixtures[i].name, e->d_name);
		if (!known)
			fail_msg("tests/compat/%s has no expected values",
				 e->d_name);
		seen++;
	}
	closedir(d);
	assert_int_equal(seen, N_FIXTURES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures_load),
		cmocka_unit_test(test_fixture_list_complete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
