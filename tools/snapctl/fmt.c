/* SPDX-License-Identifier: MIT */
/*
 * Values formatted for people: sizes, times, vCPU states, text from disk.
 */
#include "tools/snapctl/snapctl.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "tools/snapctl/utf8.h"

const char *fmt_size(uint64_t bytes, char out[FMT_SIZE_LEN])
{
	static const char *const units[] = {
		"KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
	};
	unsigned u = 0;

	if (bytes < 1024) {
		snprintf(out, FMT_SIZE_LEN, "%" PRIu64 " byte%s", bytes,
			 bytes == 1 ? "" : "s");
		return out;
	}
	while (u + 1 < ARRAY_SIZE(units) &&
	       bytes >> (10 * (u + 2)) != 0)
		u++;
	if ((bytes & ((1ull << (10 * (u + 1))) - 1)) == 0)
		snprintf(out, FMT_SIZE_LEN, "%" PRIu64 " %s",
			 bytes >> (10 * (u + 1)), units[u]);
	else
		snprintf(out, FMT_SIZE_LEN, "%.1f %s",
			 (double)bytes / (double)(1ull << (10 * (u + 1))),
			 units[u]);
	return out;
}

const char *fmt_time_ns(uint64_t unix_ns, char out[FMT_TIME_LEN])
{
	time_t sec = (time_t)(unix_ns / 1000000000u);
	unsigned nsec = (unsigned)(unix_ns % 1000000000u);
	struct tm tm;
	size_t n;

	if (!gmtime_r(&sec, &tm) ||
	    !(n = strftime(out, FMT_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm))) {
		snprintf(out, FMT_TIME_LEN, "@%" PRIu64 ".%09u", unix_ns /
			 1000000000u, nsec);
		return out;
	}
	snprintf(out + n, FMT_TIME_LEN - n, ".%09uZ", nsec);
	return out;
}

/* Indexed by KVM_MP_STATE_* (linux/kvm.h). */
static const char *const mp_states[] = {
	"runnable", "uninitialized", "init_received", "halted",
	"sipi_received", "stopped", "check_stop", "operating", "load",
	"ap_reset_hold", "suspended",
};

_Static_assert(ARRAY_SIZE(mp_states) ==
	       SNAP_MP_STATE_MAX + 1, "a name for every mp_state");

const char *fmt_mp_state(uint32_t mp_state)
{
	if (mp_state >= ARRAY_SIZE(mp_states))
		return NULL;
	return mp_states[mp_state];
}

/*
 * One byte, C-style unless it is printable ASCII. Returns the columns it
 * takes; with out NULL only counts them.
 */
static size_t put_escaped(FILE *out, unsigned char c)
{
	static const char *const named[0x20] = {
		['\a'] = "\\a", ['\b'] = "\\b", ['\t'] = "\\t", ['\n'] = "\\n",
		['\v'] = "\\v", ['\f'] = "\\f", ['\r'] = "\\r",
	};
	char buf[8];

	if (c == '\\')
		snprintf(buf, sizeof(buf), "\\\\");
	else if (c < 0x20 && named[c])
		snprintf(buf, sizeof(buf), "%s", named[c]);
	else if (c < 0x20 || c >= 0x7f)
		snprintf(buf, sizeof(buf), "\\x%02x", c);
	else
		snprintf(buf, sizeof(buf), "%c", c);
	if (out)
		fputs(buf, out);
	return strlen(buf);
}

/* fmt_text(), or with out NULL only the count of its columns. */
static size_t put_text(FILE *out, const char *s)
{
	size_t cols = 0;

	while (*s) {
		size_t n = utf8_seq_len(s);

		if (n > 1) {
			if (out)
				fwrite(s, 1, n, out);
			cols++;		/* most characters take one column */
			s += n;
		} else {
			cols += put_escaped(out, (unsigned char)*s++);
		}
	}
	return cols;
}

size_t fmt_text(FILE *out, const char *s)
{
	return put_text(out, s);
}

size_t fmt_text_width(const char *s)
{
	return put_text(NULL, s);
}

void fmt_bytes(FILE *out, const uint8_t *bytes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (bytes[i] == '"')
			fputs("\\\"", out);
		else
			put_escaped(out, bytes[i]);
	}
}
