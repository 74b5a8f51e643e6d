/* SPDX-License-Identifier: MIT */
#include "snapshot/format/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int snap_err_set(struct snap_err *err, int ret, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return ret;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return ret;
}

int snap_err_prefix(struct snap_err *err, int ret, const char *fmt, ...)
{
	char joined[2 * SNAP_ERR_MAX + 2];
	size_t n;
	va_list ap;

	if (!err)
		return ret;
	/* A callee that failed without a word: its errno says something. */
	if (!err->msg[0])
		snprintf(err->msg, sizeof(err->msg), "%s", strerror(-ret));
	va_start(ap, fmt);
	n = (size_t)vsnprintf(joined, SNAP_ERR_MAX, fmt, ap);
	va_end(ap);
	if (n >= SNAP_ERR_MAX)
		n = SNAP_ERR_MAX - 1;
	memcpy(joined + n, ": ", 2);
	memcpy(joined + n + 2, err->msg, SNAP_ERR_MAX);
	joined[sizeof(joined) - 1] = '\0';
	memcpy(err->msg, joined, SNAP_ERR_MAX - 1);
	err->msg[SNAP_ERR_MAX - 1] = '\0';
	return ret;
}
