/* SPDX-License-Identifier: MIT */
#include "vmm/control_req.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	bool takes_args;
} control_cmds[] = {
	[CONTROL_STATUS] = { "status", false },
	[CONTROL_PAUSE] = { "pause", false },
	[CONTROL_RESUME] = { "resume", false },
	[CONTROL_QUIT] = { "quit", false },
	[CONTROL_SNAPSHOT] = { "snapshot", true },
};

/* "DIR", "DIR --parent PDIR" or "--parent PDIR DIR": 0, or -EINVAL. */
static int snapshot_args(char *args, struct control_request *r)
{
	char *save = NULL, *w;

	r->dir = r->parent = NULL;
	for (w = strtok_r(args, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (!strcmp(w, "--parent")) {
			r->parent = strtok_r(NULL, " ", &save);
			if (!r->parent)
				return -EINVAL;
		} else if (!r->dir && w[0] != '-') {
			r->dir = w;
		} else {
			return -EINVAL;
		}
	}
	return r->dir ? 0 : -EINVAL;
}

int control_parse(char *line, struct control_request *r, char *resp,
		  size_t len)
{
	size_t n;
	char *args;

	line += strspn(line, " ");
	n = strcspn(line, " ");
	args = line + n + strspn(line + n, " ");
	line[n] = '\0';
	if (n == 0) {
		snprintf(resp, len, "error empty request");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(control_cmds) / sizeof(control_cmds[0]);
	     i++) {
		if (strcmp(line, control_cmds[i].name))
			continue;
		if (!control_cmds[i].takes_args && *args) {
			snprintf(resp, len, "error %s takes no arguments",
				 control_cmds[i].name);
			return -EINVAL;
		}
		r->cmd = (enum control_cmd)i;
		if (r->cmd == CONTROL_SNAPSHOT && snapshot_args(args, r)) {
			snprintf(resp, len,
				 "error usage: snapshot DIR [--parent DIR]");
			return -EINVAL;
		}
		return 0;
	}
	snprintf(resp, len, "error unknown command '%.64s'", line);
	return -EINVAL;
}
