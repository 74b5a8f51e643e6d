/* SPDX-License-Identifier: MIT */
#ifndef SNAPCTL_JSON_H
#define SNAPCTL_JSON_H

/*
 * A small streaming JSON writer: one document to a FILE, indented two
 * spaces, keys in the order they are written.
 *
 * Every value call takes a key: the member name inside an object, NULL
 * inside an array or for the top-level value. Strings are written as valid
 * JSON whatever their bytes: quotes, backslashes and control characters are
 * escaped, and bytes that are not well-formed UTF-8 become U+FFFD.
 *
 * Unsigned integers below 2^53 are JSON numbers (exact in every parser);
 * larger ones are the string "0x..." so no reader rounds them.
 *
 * Nesting deeper than JSON_MAX_DEPTH or unbalanced begin/end calls are
 * programming errors; json_end() reports them with -EINVAL, and a failed
 * write with its negative errno (-EIO when the stream does not say).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH		16
#define JSON_SAFE_INT_MAX	((1ull << 53) - 1)

struct json {
	FILE *out;
	unsigned depth;
	bool first[JSON_MAX_DEPTH + 1];	/* no member written yet, per level */
	bool misuse;
};

void json_begin(struct json *j, FILE *out);
/* End the document with a newline and flush: 0 or a negative errno. */
int json_end(struct json *j);

void json_object_begin(struct json *j, const char *key);
void json_object_end(struct json *j);
void json_array_begin(struct json *j, const char *key);
void json_array_end(struct json *j);

void json_string(struct json *j, const char *key, const char *s);
/* The string s, or null when s is NULL. */
void json_string_or_null(struct json *j, const char *key, const char *s);
void json_u64(struct json *j, const char *key, uint64_t v);
/* A number printed with 6 significant digits; null when not finite. */
void json_double(struct json *j, const char *key, double v);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);
/* n bytes as a lower-case hex string. */
void json_hex(struct json *j, const char *key, const uint8_t *bytes,
	      size_t n);

#endif
