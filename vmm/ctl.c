/* SPDX-License-Identifier: MIT */
/*
 * snapvm ctl SOCKET COMMAND [ARG...]: the control socket's client. Sends
 * the words as one request line, prints the one response line; exit 0 on
 * "ok ...", 1 on "error ..." or when the socket does not answer, 2 on bad
 * usage.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/cmd.h"
#include "vmm/control.h"
#include "snapshot/format/error.h"

static int ctl_usage(void)
{
	fprintf(stderr, "usage: snapvm ctl SOCKET COMMAND [ARG...]\n"
		"commands: status, pause, resume, quit, "
		"snapshot DIR [--parent DIR] (see docs/control.md)\n");
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

/*
 * snapshot's paths are the client's, relative to its working directory,
 * which is not snapvm's: make them absolute. Words are replaced by new
 * strings (freed by free_words); false when out of memory.
 */
static bool absolute_paths(char **words, int n, char **owned)
{
	char cwd[PATH_MAX];

	if (n == 0 || strcmp(words[0], "snapshot"))
		return true;
	if (!getcwd(cwd, sizeof(cwd)))
		return false;
	for (int i = 1; i < n; i++) {
		if (words[i][0] == '/' || words[i][0] == '-')
			continue;
		if (asprintf(&owned[i], "%s/%s", cwd, words[i]) < 0) {
			owned[i] = NULL;
			return false;
		}
		words[i] = owned[i];
	}
	return true;
}

/* Write all of buf to fd: 0 or a negative errno. */
static int send_all(int fd, const char *buf, size_t len)
{
	size_t sent = 0;

	while (sent < len) {
		ssize_t n = send(fd, buf + sent, len - sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		sent += (size_t)n;
	}
	return 0;
}

/* Send request, read one line back into resp (without its '\n'). */
static int control_request(const char *path, const char *request,
			   char *resp, size_t len, struct snap_err *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t got = 0;
	int fd, ret = 0, sent_ret;

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
	/*
	 * snapvm may refuse a client (its uid, too many clients) and close
	 * before reading the request: the send then fails, but the refusal's
	 * line is there to read, and says more than EPIPE.
	 */
	sent_ret = send_all(fd, request, strlen(request));
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
	if (!resp[0] && sent_ret)
		ret = snap_err_set(err, sent_ret, "%s: %s", path,
				   strerror(-sent_ret));
	else if (!resp[0])
		ret = snap_err_set(err, -EPROTO, "%s: no response", path);
out:
	close(fd);
	return ret;
}

int cmd_ctl(int argc, char **argv)
{
	char request[CONTROL_LINE_MAX], resp[CONTROL_LINE_MAX];
	char *owned[CONTROL_LINE_MAX / 2] = { NULL };
	struct snap_err err;
	bool built;

	if (argc < 3 || argv[1][0] == '-')
		return ctl_usage();
	if (argc - 2 > (int)(sizeof(owned) / sizeof(owned[0]))) {
		fprintf(stderr, "snapvm: ctl: too many words\n");
		return 2;
	}
	if (!absolute_paths(argv + 2, argc - 2, owned)) {
		fprintf(stderr, "snapvm: ctl: %s\n", strerror(errno));
		return 1;
	}
	built = build_request(argv + 2, argc - 2, request, sizeof(request));
	for (int i = 0; i < argc - 2; i++)
		free(owned[i]);
	if (!built) {
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
