/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_OPTS_H
#define SNAPVM_OPTS_H

/*
 * Values of command-line options: sizes and counts, and sizes printed back
 * the way people write them. Pure functions, no I/O.
 */

#include <stddef.h>
#include <stdint.h>

#define KIB	(1ull << 10)
#define MIB	(1ull << 20)
#define GIB	(1ull << 30)

/*
 * Parse a size: decimal digits with an optional suffix K, M, G or T (also
 * lower case; powers of 1024), nothing else. Returns 0, -EINVAL when s is
 * not a size, -ERANGE when it does not fit in 64 bits.
 */
int opts_parse_size(const char *s, uint64_t *out);

/* Parse a decimal count (digits only). -EINVAL or -ERANGE as above. */
int opts_parse_count(const char *s, unsigned int *out);

/*
 * Format a size as "256 MiB" when it is a whole number of KiB, MiB, GiB or
 * TiB, otherwise as "1000 bytes". Returns buf.
 */
const char *opts_format_size(uint64_t n, char *buf, size_t len);

/* Room opts_format_size needs at most. */
#define OPTS_SIZE_STR	32

/* The end of snapvm run's and restore's --help: the options they share
 * and the exit status. */
#define OPTS_HELP_TAIL \
"  --debug           say on stderr how the VM was built, when the guest\n" \
"                    first runs and, at the end, the I/O ports it used\n" \
"  --help            this text\n" \
"\n" \
"exit status: 0 when the guest resets or powers off or on quit, 1 failure,\n" \
"2 wrong usage\n"

#endif
