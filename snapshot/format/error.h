/* SPDX-License-Identifier: MIT */
#ifndef SNAP_ERROR_H
#define SNAP_ERROR_H

/*
 * Error reporting for libsnap.
 *
 * Every function that can fail returns 0 or a negative errno and, when it
 * is given a struct snap_err, writes one line saying what failed, in the
 * style "state.bin: vcpu 3: xsave size 4096, expected 2688". Callers add
 * their own context in front (the directory, the program name).
 *
 * Errno values used: -EINVAL (a field out of range), -EBADMSG (a digest
 * mismatch or undecodable bytes), -ENOTSUP (an unknown required feature),
 * -ENOENT, -EEXIST, -EFBIG, -ENOMEM, and whatever the system returned.
 */

#include <stddef.h>

#define SNAP_ERR_MAX 512

struct snap_err {
	char msg[SNAP_ERR_MAX];
};

/* Format msg into err (when err is not NULL) and return ret (negative). */
int snap_err_set(struct snap_err *err, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Prepend "prefix: " to the message already in err (empty: strerror of
 * ret, so an unfilled message still makes a line). Returns ret. A struct
 * snap_err the caller never cleared holds no message: give it { "" }.
 */
int snap_err_prefix(struct snap_err *err, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
