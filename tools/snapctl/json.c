/* SPDX-License-Identifier: MIT */
#include "tools/snapctl/json.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "tools/snapctl/utf8.h"

void json_begin(struct json *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	j->first[0] = true;
}

int json_end(struct json *j)
{
	fputc('\n', j->out);
	if (j->misuse || j->depth != 0)
		return -EINVAL;
	errno = 0;
	if (fflush(j->out) || ferror(j->out))
		return errno ? -errno : -EIO;
	return 0;
}

/* The two-character escapes of RFC 8259; other control bytes get \u00XX. */
static const char *const short_escapes[0x80] = {
	['"'] = "\\\"", ['\\'] = "\\\\", ['\b'] = "\\b", ['\f'] = "\\f",
	['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t",
};

static void put_quoted(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', out);
	while (*s) {
		size_t n = utf8_seq_len((const char *)s);

		if (n == 0) {
			fputs("\\ufffd", out);
			s++;
			continue;
		}
		if (*s < 0x80 && short_escapes[*s])
			fputs(short_escapes[*s], out);
		else if (*s < 0x20)
			fprintf(out, "\\u%04x", *s);
		else
			fwrite(s, 1, n, out);
		s += n;
	}
	fputc('"', out);
}

static void indent(struct json *j)
{
	fputc('\n', j->out);
	for (unsigned i = 0; i < j->depth; i++)
		fputs("  ", j->out);
}

/* Separator, indentation and key before any value. */
static void value_prefix(struct json *j, const char *key)
{
	if (j->depth == 0) {
		if (!j->first[0] || key)
			j->misuse = true;	/* one top-level value, no key */
		j->first[0] = false;
		return;
	}
	if (!j->first[j->depth])
		fputc(',', j->out);
	j->first[j->depth] = false;
	indent(j);
	if (key) {
		put_quoted(j->out, key);
		fputs(": ", j->out);
	}
}

static void open_level(struct json *j, const char *key, char c)
{
	value_prefix(j, key);
	fputc(c, j->out);
	if (j->depth == JSON_MAX_DEPTH) {
		j->misuse = true;
		return;
	}
	j->first[++j->depth] = true;
}

static void close_level(struct json *j, char c)
{
	if (j->depth == 0) {
		j->misuse = true;
		return;
	}
	if (!j->first[j->depth--])
		indent(j);
	fputc(c, j->out);
}

void json_object_begin(struct json *j, const char *key)
{
	open_level(j, key, '{');
}

void json_object_end(struct json *j)
{
	close_level(j, '}');
}

void json_array_begin(struct json *j, const char *key)
{
	open_level(j, key, '[');
}

void json_array_end(struct json *j)
{
	close_level(j, ']');
}

void json_string(struct json *j, const char *key, const char *s)
{
	value_prefix(j, key);
	put_quoted(j->out, s);
}

void json_string_or_null(struct json *j, const char *key, const char *s)
{
	if (s)
		json_string(j, key, s);
	else
		json_null(j, key);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	value_prefix(j, key);
	if (v <= JSON_SAFE_INT_MAX)
		fprintf(j->out, "%llu", (unsigned long long)v);
	else
		fprintf(j->out, "\"0x%llx\"", (unsigned long long)v);
}

void json_double(struct json *j, const char *key, double v)
{
	if (!isfinite(v)) {
		json_null(j, key);	/* JSON has no NaN nor infinity */
		return;
	}
	value_prefix(j, key);
	fprintf(j->out, "%.6g", v);	/* "1e+06" is a JSON number too */
}

void json_bool(struct json *j, const char *key, bool v)
{
	value_prefix(j, key);
	fputs(v ? "true" : "false", j->out);
}

void json_null(struct json *j, const char *key)
{
	value_prefix(j, key);
	fputs("null", j->out);
}

void json_hex(struct json *j, const char *key, const uint8_t *bytes,
	      size_t n)
{
	value_prefix(j, key);
	fputc('"', j->out);
	for (size_t i = 0; i < n; i++)
		fprintf(j->out, "%02x", bytes[i]);
	fputc('"', j->out);
}
