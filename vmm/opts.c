/* SPDX-License-Identifier: MIT */
#include "vmm/opts.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>

static const struct size_unit {
	char suffix;
	unsigned int shift;
	const char *name;
} size_units[] = {
	{ 'T', 40, "TiB" },
	{ 'G', 30, "GiB" },
	{ 'M', 20, "MiB" },
	{ 'K', 10, "KiB" },
};

#define N_UNITS (sizeof(size_units) / sizeof(size_units[0]))

/* Digits up to the first non-digit; *end points there. */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	*end = s;
	return 0;
}

int opts_parse_size(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int ret;

	ret = parse_digits(s, &v, &end);
	if (ret)
		return ret;
	if (*end == '\0') {
		*out = v;
		return 0;
	}
	if (end[1] != '\0')
		return -EINVAL;
	for (size_t i = 0; i < N_UNITS; i++) {
		const struct size_unit *u = &size_units[i];

		if (*end != u->suffix && *end != u->suffix - 'A' + 'a')
			continue;
		if (v > UINT64_MAX >> u->shift)
			return -ERANGE;
		*out = v << u->shift;
		return 0;
	}
	return -EINVAL;
}

int opts_parse_count(const char *s, unsigned int *out)
{
	const char *end;
	uint64_t v;
	int ret;

	ret = parse_digits(s, &v, &end);
	if (ret)
		return ret;
	if (*end != '\0')
		return -EINVAL;
	if (v > UINT_MAX)
		return -ERANGE;
	*out = (unsigned int)v;
	return 0;
}

const char *opts_format_size(uint64_t n, char *buf, size_t len)
{
	for (size_t i = 0; n && i < N_UNITS; i++) {
		const struct size_unit *u = &size_units[i];
		uint64_t unit = 1ull << u->shift;

		if (n % unit == 0) {
			snprintf(buf, len, "%llu %s",
				 (unsigned long long)(n / unit), u->name);
			return buf;
		}
	}
	snprintf(buf, len, "%llu byte%s", (unsigned long long)n,
		 n == 1 ? "" : "s");
	return buf;
}
