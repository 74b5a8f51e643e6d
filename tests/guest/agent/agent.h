/* SPDX-License-Identifier: MIT */
/*
 * snapfs-agent: runs commands in a Linux guest for the host, over vsock.
 *
 * One program, both ends: `snapfs-agent serve` in the guest listens on
 * AF_VSOCK port 52; `snapfs-agent exec|put|get|sync|ping` on the host
 * reaches it through the VMM's vsock unix socket (Firecracker's scheme:
 * connect, "CONNECT 52\n", "OK <port>\n"). Every connection carries one
 * request and its reply, then closes.
 *
 * The protocol (also in tests/guest/README.md):
 *
 *   request   one line, at most AGENT_LINE_MAX bytes with its '\n':
 *     exec CMD               /bin/sh -c CMD, stdin /dev/null, cwd /
 *     put MODE SIZE PATH     then SIZE bytes: PATH replaced (rename) by
 *                            a file of MODE (octal) holding them
 *     get PATH               the file's bytes
 *     sync                   sync(2)
 *     ping                   nothing: is the agent there
 *
 *   reply     frames, each a header line "TYPE LEN\n" then LEN bytes:
 *     stdout LEN             output (exec's stdout, get's file)
 *     stderr LEN             exec's stderr
 *     exit LEN               last frame: the status in decimal (exec: the
 *                            command's, 128+N when killed by signal N;
 *                            others 0)
 *     error LEN              last frame: why the request failed, one line
 *                            without its '\n'
 *   A reader skips frames of types it does not know. The agent closes the
 *   connection after the last frame. The client keeps its side open until
 *   then: an end of input before it is a hang-up, and kills the command.
 */
#ifndef SNAPFS_AGENT_H
#define SNAPFS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_PROG	"snapfs-agent"
#define AGENT_PORT	52u
#define AGENT_LINE_MAX	65536u	/* a request line with its '\n' */
#define AGENT_HEAD_MAX	64u	/* a frame header line with its '\n' */
#define AGENT_FRAME_MAX	65536u	/* the data the agent puts in one frame */

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * A buffered reader on a socket: lines and exact byte counts from the same
 * stream, so a request's body is not lost to the read that found its line.
 */
struct wire_in {
	int fd;
	size_t pos, len;
	char buf[16384];
};

void wire_in_init(struct wire_in *in, int fd);

/*
 * The next line into line (at most max bytes with its '\n', which is
 * replaced by '\0'): its length, 0 at the end of input before any byte,
 * -EPROTO when it has no '\n' in max bytes or the input ends inside it,
 * -errno on a read error.
 */
ssize_t wire_read_line(struct wire_in *in, char *line, size_t max);

/* Up to max bytes: how many (0 at the end of input), or -errno. */
ssize_t wire_read(struct wire_in *in, void *buf, size_t max);

/* All of len bytes to fd (send with MSG_NOSIGNAL on sockets): 0 or -errno. */
int wire_write_all(int fd, const void *buf, size_t len);

/* One frame: "TYPE LEN\n" and the bytes. 0 or -errno. */
int wire_frame(int fd, const char *type, const void *data, size_t len);

/* An exit frame with status, or an error frame with a formatted message. */
int wire_exit(int fd, int status);
int wire_error(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * A frame header "TYPE LEN" (without its '\n') into type (at most 15
 * characters) and len: 0, or -EPROTO when it is not one.
 */
int wire_parse_head(const char *head, char type[16], uint64_t *len);

/* The guest side: `serve`. */
int agent_serve(int argc, char **argv);

/* The host side: `exec`, `put`, `get`, `sync`, `ping`. */
int client_exec(int argc, char **argv);
int client_put(int argc, char **argv);
int client_get(int argc, char **argv);
int client_sync(int argc, char **argv);
int client_ping(int argc, char **argv);

#endif
