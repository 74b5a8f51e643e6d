/* SPDX-License-Identifier: MIT */
/*
 * snapvm ctl SOCKET COMMAND [ARG...]: the control socket's client. Sends
 * the words as one request line, prints the one response line; exit 0 on
 * "ok ...", 1 on "error ..." or when the socket does not answer, 2 on bad
 * usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd.h"
#include "control.h"
#include "error.h"

static int ctl_usage(void)
{
	fprintf(stderr, "usage: snapvm ctl SOCKET COMMAND [ARG...]\n"
		"commands: status, pause, resume, quit (see docs/control.md)\n");
	return 2;
}

/* Join the words into "w1 w2 ...\n"; false when it does not fit. */
static bool build_request(char **words, int n, char *buf, size_t len)
{
	size_t used = 0;

	for (int i = 0; i < n; i++) {
		size_t w = strlen(words[i]);

		if (strchr(words[i], '\n') || used + w + 2 > len)
			return false;
		if (i)
			buf[used++] = ' ';
		memcpy(buf + used, words[i], w);
		used += w;
	}
	buf[used++] = '\n';
	buf[used] = '\0';
	return true;
}

/* Send request, read one line back into resp (without its '\n'). */
static int control_request(const char *path, const char *request,
			   char *resp, size_t len, struct snap_err *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t got = 0, sent = 0, rlen = strlen(request);
	int fd, ret = 0;

	if (strlen(path) >= sizeof(addr.sun_path))
		return snap_err_set(err, -ENAMETOOLONG, "%s: path too long",
				    path);
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return snap_err_set(err, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = snap_err_set(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	while (sent < rlen) {
		ssize_t n = send(fd, request + sent, rlen - sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = snap_err_set(err, -errno, "%s: %s", path,
					   strerror(errno));
			goto out;
		}
		sent += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	while (got + 1 < len) {
		ssize_t n = recv(fd, resp + got, len - 1 - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(resp + got - (size_t)n, '\n', (size_t)n))
			break;
	}
	resp[got] = '\0';
	resp[strcspn(resp, "\n")] = '\0';
	if (!resp[0])
		ret = snap_err_set(err, -EPROTO, "%s: no response", path);
out:
	close(fd);
	return ret;
}

int cmd_ctl(int argc, char **argv)
{
	char request[CONTROL_LINE_MAX], resp[CONTROL_LINE_MAX];
	struct snap_err err;

	if (argc < 3 || argv[1][0] == '-')
		return ctl_usage();
	if (!build_request(argv + 2, argc - 2, request, sizeof(request))) {
		fprintf(stderr, "snapvm: ctl: request too long or with a "
			"newline\n");
		return 2;
	}
	if (control_request(argv[1], request, resp, sizeof(resp), &err)) {
		fprintf(stderr, "snapvm: ctl %s\n", err.msg);
		return 1;
	}
	printf("%s\n", resp);
	return strncmp(resp, "ok", 2) == 0 && (resp[2] == ' ' || !resp[2]) ?
	       0 : 1;
}
