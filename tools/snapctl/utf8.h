/* SPDX-License-Identifier: MIT */
#ifndef SNAPCTL_UTF8_H
#define SNAPCTL_UTF8_H

#include <stddef.h>

/*
 * Length (1 to 4) of the well-formed UTF-8 sequence that starts at s, or
 * 0 when it is not one (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF). s must be NUL-terminated; a sequence cut short
 * by the NUL is not well formed. An ASCII byte, NUL included, has length 1.
 */
size_t utf8_seq_len(const char *s);

#endif
