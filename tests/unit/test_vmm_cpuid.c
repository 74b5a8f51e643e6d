/* SPDX-License-Identifier: MIT */
/*
 * The CPUID each vCPU sees: KVM's supported list with the leaf fixups of
 * vmm/cpuid.c, checked field by field against the SDM and APM layouts.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/cpuid.h"

#define SIG_INDEX KVM_CPUID_FLAG_SIGNIFCANT_INDEX

/* What a host KVM might report (a mix of Intel and AMD leaves). */
static const struct kvm_cpuid_entry2 supported[] = {
	{ .function = 0, .eax = 0x1f, .ebx = 0x756e6547 },
	{ .function = 1, .eax = 0x000806f8, .ebx = 0xff3f0800,
	  .ecx = 0x7ffaf203, .edx = 0x1f8bfbff },
	{ .function = 4, .index = 0, .flags = SIG_INDEX, .eax = 0xfc004121 },
	{ .function = 4, .index = 1, .flags = SIG_INDEX, .eax = 0xfc004122 },
	{ .function = 4, .index = 2, .flags = SIG_INDEX, .eax = 0xfc01c143 },
	{ .function = 4, .index = 3, .flags = SIG_INDEX, .eax = 0xfc3fc163,
	  .ebx = 0x3c0003f },
	{ .function = 4, .index = 4, .flags = SIG_INDEX, .eax = 0 },
	{ .function = 0xb, .index = 0, .flags = SIG_INDEX, .eax = 1,
	  .ebx = 2, .ecx = 0x100, .edx = 9 },
	{ .function = 0xb, .index = 1, .flags = SIG_INDEX, .eax = 7,
	  .ebx = 96, .ecx = 0x201, .edx = 9 },
	{ .function = 0x1f, .index = 0, .flags = SIG_INDEX, .eax = 1,
	  .ebx = 2, .ecx = 0x100, .edx = 9 },
	{ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b,
	  .ecx = 0x564b4d56, .edx = 0x4d },
	{ .function = 0x40000001, .eax = 0x01007afb },
	{ .function = 0x80000000, .eax = 0x80000021 },
	{ .function = 0x80000008, .eax = 0x3030, .ecx = 0x0000f00f },
	{ .function = 0x8000001e, .eax = 5, .ebx = 0x105, .ecx = 0x301 },
};

#define N_SUPPORTED (sizeof(supported) / sizeof(supported[0]))
#define MAX_OUT (N_SUPPORTED + CPUID_EXTRA)

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid_entry2 *e,
					   int n, uint32_t function,
					   uint32_t index)
{
	for (int i = 0; i < n; i++)
		if (e[i].function == function && e[i].index == index)
			return &e[i];
	return NULL;
}

static int count(const struct kvm_cpuid_entry2 *e, int n, uint32_t function)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		c += e[i].function == function;
	return c;
}

static void check_ext_topo(const struct kvm_cpuid_entry2 *out, int n,
			   uint32_t function, unsigned int cpu,
			   unsigned int ncpus)
{
	const struct kvm_cpuid_entry2 *smt = find(out, n, function, 0);
	const struct kvm_cpuid_entry2 *core = find(out, n, function, 1);
	const struct kvm_cpuid_entry2 *end = find(out, n, function, 2);

	assert_int_equal(count(out, n, function), 3);
	assert_non_null(smt);
	assert_non_null(core);
	assert_non_null(end);
	/* SMT level: shift 0, one thread, level type 1, level 0. */
	assert_int_equal(smt->eax, 0);
	assert_int_equal(smt->ebx, 1);
	assert_int_equal(smt->ecx, 0x100);
	assert_int_equal(smt->edx, cpu);
	/* Core level: shift covers ncpus, ncpus processors, type 2. */
	assert_int_equal(core->eax, cpuid_core_bits(ncpus));
	assert_true((1u << core->eax) >= ncpus);
	assert_int_equal(core->ebx, ncpus);
	assert_int_equal(core->ecx, 0x201);
	assert_int_equal(core->edx, cpu);
	/* The end: type 0. */
	assert_int_equal(end->eax, 0);
	assert_int_equal(end->ebx, 0);
	assert_int_equal(end->ecx, 2);
	assert_int_equal(end->edx, cpu);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(find(out, n, function, i)->flags, SIG_INDEX);
}

static void check_cpu(unsigned int cpu, unsigned int ncpus)
{
	struct kvm_cpuid_entry2 out[MAX_OUT];
	const struct kvm_cpuid_entry2 *e;
	int n = cpuid_fixup(supported, N_SUPPORTED, out, MAX_OUT, cpu, ncpus);

	assert_true(n > 0);

	e = find(out, n, 1, 0);
	assert_int_equal(e->eax, 0x000806f8);
	assert_int_equal(e->ebx >> 24, cpu);
	assert_int_equal((e->ebx >> 16) & 0xff, ncpus);
	assert_int_equal(e->ebx & 0xffff, 0x0800);	/* CLFLUSH size kept */
	assert_int_equal(!!(e->edx & (1u << 28)), ncpus > 1);	/* HTT */
	assert_true(e->ecx & (1u << 31));			/* hypervisor */
	assert_int_equal(e->ecx & 0x7fffffff, 0x7ffaf203);

	for (uint32_t i = 0; i < 4; i++) {
		uint32_t level, in_low = find(supported, N_SUPPORTED, 4,
					      i)->eax & 0x3fff;

		e = find(out, n, 4, i);
		level = (e->eax >> 5) & 7;
		assert_int_equal(e->eax >> 26, ncpus - 1);
		assert_int_equal((e->eax >> 14) & 0xfff,
				 level == 3 ? ncpus - 1 : 0);
		assert_int_equal(e->eax & 0x3fff, in_low);
	}
	assert_int_equal(find(out, n, 4, 4)->eax, 0);	/* the end, untouched */

	check_ext_topo(out, n, 0xb, cpu, ncpus);
	check_ext_topo(out, n, 0x1f, cpu, ncpus);

	/* KVM's own leaves exactly as KVM reported them. */
	assert_memory_equal(find(out, n, 0x40000000, 0),
			    find(supported, N_SUPPORTED, 0x40000000, 0),
			    sizeof(struct kvm_cpuid_entry2));
	assert_memory_equal(find(out, n, 0x40000001, 0),
			    find(supported, N_SUPPORTED, 0x40000001, 0),
			    sizeof(struct kvm_cpuid_entry2));
	assert_memory_equal(find(out, n, 0, 0), &supported[0],
			    sizeof(struct kvm_cpuid_entry2));

	e = find(out, n, 0x80000008, 0);
	assert_int_equal(e->eax, 0x3030);
	assert_int_equal(e->ecx & 0xff, ncpus - 1);
	assert_int_equal((e->ecx >> 12) & 0xf, cpuid_core_bits(ncpus));
	e = find(out, n, 0x8000001e, 0);
	assert_int_equal(e->eax, cpu);
	assert_int_equal(e->ebx, cpu);
	assert_int_equal(e->ecx, 0);

	/* Everything else in the same order, one entry each. */
	assert_int_equal(n, (int)N_SUPPORTED - 3 + 6);
}

static void test_topologies(void **unused)
{
	static const unsigned int counts[] = { 1, 2, 3, 4, 6, 16, 64 };

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		for (unsigned int cpu = 0; cpu < counts[i]; cpu++)
			check_cpu(cpu, counts[i]);
}

static void test_kvm_signature(void **unused)
{
	struct kvm_cpuid_entry2 out[MAX_OUT];
	const struct kvm_cpuid_entry2 *e;
	char sig[13];
	int n = cpuid_fixup(supported, N_SUPPORTED, out, MAX_OUT, 0, 1);

	e = find(out, n, 0x40000000, 0);
	memcpy(sig, &e->ebx, 4);
	memcpy(sig + 4, &e->ecx, 4);
	memcpy(sig + 8, &e->edx, 4);
	sig[12] = '\0';
	assert_string_equal(sig, "KVMKVMKVM");
}

static void test_core_bits(void **unused)
{
	assert_int_equal(cpuid_core_bits(1), 0);
	assert_int_equal(cpuid_core_bits(2), 1);
	assert_int_equal(cpuid_core_bits(3), 2);
	assert_int_equal(cpuid_core_bits(4), 2);
	assert_int_equal(cpuid_core_bits(5), 3);
	assert_int_equal(cpuid_core_bits(128), 7);
	assert_int_equal(cpuid_core_bits(254), 8);
}

static void test_errors(void **unused)
{
	struct kvm_cpuid_entry2 out[MAX_OUT];

	assert_int_equal(cpuid_fixup(supported, N_SUPPORTED, out, MAX_OUT, 2, 2),
			 -EINVAL);
	assert_int_equal(cpuid_fixup(supported, N_SUPPORTED, out, MAX_OUT, 0, 0),
			 -EINVAL);
	assert_int_equal(cpuid_fixup(supported, N_SUPPORTED, out,
				     N_SUPPORTED + 2, 0, 1), -ENOSPC);
	assert_int_equal(cpuid_fixup(supported, N_SUPPORTED, out, 0, 0, 1),
			 -ENOSPC);
	assert_int_equal(cpuid_fixup(supported, 0, out, 0, 0, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topologies),
		cmocka_unit_test(test_kvm_signature),
		cmocka_unit_test(test_core_bits),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
