/* SPDX-License-Identifier: MIT */
/*
 * snapfs-agent: the stream both ends share, lines in and frames out
 * (the protocol is in agent.h).
 */
#include "tests/guest/agent/agent.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void wire_in_init(struct wire_in *in, int fd)
{
	in->fd = fd;
	in->pos = 0;
	in->len = 0;
}

/* More bytes into the buffer: how many, 0 at the end of input, or -errno. */
static ssize_t fill(struct wire_in *in)
{
	ssize_t n;

	if (in->pos == in->len)
		in->pos = in->len = 0;
	do
		n = read(in->fd, in->buf + in->len, sizeof(in->buf) - in->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	in->len += (size_t)n;
	return n;
}

ssize_t wire_read_line(struct wire_in *in, char *line, size_t max)
{
	size_t got = 0;

	for (;;) {
		while (in->pos < in->len) {
			char c = in->buf[in->pos++];

			if (c == '\n') {
				line[got] = '\0';
				return (ssize_t)got;
			}
			if (got + 1 >= max)	/* no room for the '\n' */
				return -EPROTO;
			line[got++] = c;
		}
		ssize_t n = fill(in);

		if (n < 0)
			return n;
		if (n == 0)
			return got ? -EPROTO : 0;
	}
}

ssize_t wire_read(struct wire_in *in, void *buf, size_t max)
{
	if (in->pos == in->len) {
		ssize_t n = fill(in);

		if (n <= 0)
			return n;
	}
	size_t n = in->len - in->pos;

	if (n > max)
		n = max;
	memcpy(buf, in->buf + in->pos, n);
	in->pos += n;
	return (ssize_t)n;
}

int wire_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int wire_frame(int fd, const char *type, const void *data, size_t len)
{
	char head[AGENT_HEAD_MAX];
	int n = snprintf(head, sizeof(head), "%s %zu\n", type, len);
	int ret = wire_write_all(fd, head, (size_t)n);

	return ret ? ret : wire_write_all(fd, data, len);
}

int wire_exit(int fd, int status)
{
	char s[16];
	int n = snprintf(s, sizeof(s), "%d", status);

	return wire_frame(fd, "exit", s, (size_t)n);
}

int wire_error(int fd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)	/* one line, whatever was quoted */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return wire_frame(fd, "error", msg, strlen(msg));
}

int wire_parse_head(const char *head, char type[16], uint64_t *len)
{
	size_t tlen = strcspn(head, " ");
	const char *num = head + tlen;
	char *end;

	if (tlen == 0 || tlen > 15 || *num != ' ' || num[1] < '0' ||
	    num[1] > '9')
		return -EPROTO;
	errno = 0;
	*len = strtoull(num + 1, &end, 10);
	if (errno || *end)
		return -EPROTO;
	memcpy(type, head, tlen);
	type[tlen] = '\0';
	return 0;
}
