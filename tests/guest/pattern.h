/*
 * The test guest's memory pattern, shared by the guest (work.c) and the
 * host's checker (tests/guest/check/patcheck.c), so both agree on every byte.
 *
 * Generation gen of page `page` of CPU `cpu`'s share is 512 little-endian
 * words: word 0 = cpu << 32 | page, word 1 = gen, words 2..511 the xorshift64
 * sequence that follows pattern_seed(cpu, page, gen).
 */
#ifndef GUEST_PATTERN_H
#define GUEST_PATTERN_H

#include <stdint.h>

#define PATTERN_WORDS	512	/* one 4 KiB page */

static inline uint64_t pattern_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static inline uint64_t pattern_next(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static inline uint64_t pattern_seed(unsigned int cpu, uint64_t page, uint64_t gen)
{
	return pattern_mix64(pattern_mix64((uint64_t)cpu << 40 ^ page) ^
			     gen * 0x9e3779b97f4a7c15ULL) | 1;
}

static inline uint64_t pattern_header(unsigned int cpu, uint64_t page)
{
	return (uint64_t)cpu << 32 | (uint32_t)page;
}

#endif
