/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_CONTROL_H
#define SNAPVM_CONTROL_H

/*
 * The control socket (--control PATH): a unix stream socket where each
 * request is one line and gets one line back, "ok ..." or "error ...".
 * The protocol is documented in docs/control.md; the commands are a table
 * in control.c. Requests are served on a thread of their own, one at a
 * time, so a pause never races a resume.
 */

#include "snapshot/format/error.h"

#define CONTROL_LINE_MAX	4096	/* a request or response, with '\n' */

struct vm;
struct saver;
struct control;

/*
 * Bind and listen on path. A socket there that accepts connections is in
 * use: an error. A stale one (nobody listening) is replaced. Anything else
 * at path is left alone: an error. Errors say what is wrong ("in use ...");
 * the caller names the path.
 *
 * The socket is created 0600 whatever the umask, and only clients of
 * snapvm's own (effective) uid or uid 0 are served (SO_PEERCRED); others
 * get "error permission denied: ..." and are closed. Call it while the
 * process has a single thread: it narrows the process's umask around
 * bind().
 */
int control_create(struct control **out, const char *path,
		   struct snap_err *err);

/* Serve requests for vm (snapshots through saver) until control_destroy. */
int control_start(struct control *c, struct vm *vm, struct saver *saver,
		  struct snap_err *err);

/* Stop serving, close, remove the socket. c may be NULL. */
void control_destroy(struct control *c);

#endif
