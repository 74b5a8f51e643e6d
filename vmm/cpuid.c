/* SPDX-License-Identifier: MIT */
#include "vmm/cpuid.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define LEAF1_EDX_HTT		(1u << 28)
#define LEAF1_ECX_HYPERVISOR	(1u << 31)
#define TOPO_LEVEL_SMT		1u
#define TOPO_LEVEL_CORE		2u
#define TOPO_SUBLEAVES		3u	/* SMT, core, the end */

struct cpuid_topo {
	unsigned int apic_id;
	unsigned int ncpus;
	unsigned int core_bits;
};

unsigned int cpuid_core_bits(unsigned int ncpus)
{
	unsigned int bits = 0;

	while (ncpus > 1 && (1u << bits) < ncpus)
		bits++;
	return bits;
}

static unsigned int min_u(unsigned int a, unsigned int b)
{
	return a < b ? a : b;
}

/* Leaf 1: APIC id, logical processors per package, HTT, hypervisor. */
static void fix_features(struct kvm_cpuid_entry2 *e, const struct cpuid_topo *t)
{
	e->ebx &= 0x0000ffffu;
	e->ebx |= (t->apic_id & 0xffu) << 24;
	e->ebx |= min_u(t->ncpus, 0xff) << 16;
	if (t->ncpus > 1)
		e->edx |= LEAF1_EDX_HTT;
	else
		e->edx &= ~LEAF1_EDX_HTT;
	e->ecx |= LEAF1_ECX_HYPERVISOR;
}

/* Leaf 4: cores per package; L1 and L2 per core, L3 shared by all. */
static void fix_cache(struct kvm_cpuid_entry2 *e, const struct cpuid_topo *t)
{
	unsigned int level = (e->eax >> 5) & 7;
	unsigned int sharing = level >= 3 ? t->ncpus - 1 : 0;

	if ((e->eax & 0x1f) == 0)		/* no cache: the end */
		return;
	e->eax &= 0x00003fffu;
	e->eax |= min_u(t->ncpus - 1, 0x3f) << 26;
	e->eax |= min_u(sharing, 0xfff) << 14;
}

/* Leaf 0x80000008: ECX NC (cores - 1) and ApicIdCoreIdSize. */
static void fix_amd_size(struct kvm_cpuid_entry2 *e,
			 const struct cpuid_topo *t)
{
	e->ecx &= ~0x0000f0ffu;
	e->ecx |= min_u(t->ncpus - 1, 0xff);
	e->ecx |= (t->core_bits & 0xfu) << 12;
}

/* Leaf 0x8000001E: extended APIC id, core id, one thread, one node. */
static void fix_amd_topo(struct kvm_cpuid_entry2 *e,
			 const struct cpuid_topo *t)
{
	e->eax = t->apic_id;
	e->ebx = t->apic_id & 0xffu;
	e->ecx = 0;
	e->edx = 0;
}

/* Sub-leaf i of 0xB or 0x1F: SMT level, core level, then the end. */
static void make_ext_topo(struct kvm_cpuid_entry2 *e, uint32_t function,
			  uint32_t i, const struct cpuid_topo *t)
{
	memset(e, 0, sizeof(*e));
	e->function = function;
	e->index = i;
	e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e->edx = t->apic_id;
	e->ecx = i & 0xffu;
	if (i == 0) {
		e->eax = 0;
		e->ebx = 1;
		e->ecx |= TOPO_LEVEL_SMT << 8;
	} else if (i == 1) {
		e->eax = t->core_bits;
		e->ebx = t->ncpus;
		e->ecx |= TOPO_LEVEL_CORE << 8;
	}
}

/*
 * The fixups, by leaf. fix adjusts an entry KVM reported (every sub-leaf);
 * a leaf with regenerate set is replaced as a whole by TOPO_SUBLEAVES
 * entries of make_ext_topo, whatever sub-leaves KVM reported.
 */
static const struct cpuid_fixup {
	uint32_t function;
	void (*fix)(struct kvm_cpuid_entry2 *e, const struct cpuid_topo *t);
	bool regenerate;
} cpuid_fixups[] = {
	{ 0x00000001, fix_features, false },
	{ 0x00000004, fix_cache, false },
	{ 0x0000000b, NULL, true },
	{ 0x0000001f, NULL, true },
	{ 0x80000008, fix_amd_size, false },
	{ 0x8000001e, fix_amd_topo, false },
};

static const struct cpuid_fixup *find_fixup(uint32_t function)
{
	for (size_t i = 0; i < sizeof(cpuid_fixups) / sizeof(cpuid_fixups[0]);
	     i++)
		if (cpuid_fixups[i].function == function)
			return &cpuid_fixups[i];
	return NULL;
}

/* Was function already seen in in[0, upto)? */
static bool seen_before(const struct kvm_cpuid_entry2 *in, unsigned int upto,
			uint32_t function)
{
	for (unsigned int i = 0; i < upto; i++)
		if (in[i].function == function)
			return true;
	return false;
}

int cpuid_fixup(const struct kvm_cpuid_entry2 *in, unsigned int n,
		struct kvm_cpuid_entry2 *out, unsigned int max,
		unsigned int cpu, unsigned int ncpus)
{
	struct cpuid_topo t = {
		.apic_id = cpu,
		.ncpus = ncpus,
		.core_bits = cpuid_core_bits(ncpus),
	};
	unsigned int o = 0;

	if (ncpus == 0 || cpu >= ncpus)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++) {
		const struct cpuid_fixup *f = find_fixup(in[i].function);

		if (f && f->regenerate) {
			if (seen_before(in, i, in[i].function))
				continue;
			if (max - o < TOPO_SUBLEAVES)
				return -ENOSPC;
			for (uint32_t s = 0; s < TOPO_SUBLEAVES; s++)
				make_ext_topo(&out[o++], in[i].function, s, &t);
			continue;
		}
		if (o == max)
			return -ENOSPC;
		out[o] = in[i];
		if (f)
			f->fix(&out[o], &t);
		o++;
	}
	return (int)o;
}
