/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_CONTROL_REQ_H
#define SNAPVM_CONTROL_REQ_H

/*
 * The control socket's request lines (docs/control.md), parsed apart from
 * serving them: no VM and no socket here, so that tests/fuzz can drive the
 * parser alone. control.c runs what it returns.
 */

#include <stddef.h>

enum control_cmd {
	CONTROL_STATUS,
	CONTROL_PAUSE,
	CONTROL_RESUME,
	CONTROL_QUIT,
	CONTROL_SNAPSHOT,
};

struct control_request {
	enum control_cmd cmd;
	const char *dir;	/* snapshot: DIR, inside the line */
	const char *parent;	/* snapshot: PDIR, or NULL */
};

/*
 * Parse one request line (its '\n' and any '\r' before it removed),
 * splitting it in place: 0 and *r, or -EINVAL with the whole "error ..."
 * response in resp (len bytes).
 */
int control_parse(char *line, struct control_request *r, char *resp,
		  size_t len);

#endif
