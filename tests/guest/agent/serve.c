/* SPDX-License-Identifier: MIT */
/*
 * snapfs-agent serve: the guest's end.
 *
 *   snapfs-agent serve [-p PORT] [--unix PATH]
 *
 * Listens on AF_VSOCK (any CID, port 52 unless -p) and serves every
 * connection in a child of its own, so a long command holds up no other;
 * children are reaped by the kernel (SIGCHLD ignored). A bad request gets
 * one error frame and the connection closes; the listener never dies of
 * one. --unix PATH listens on a unix socket instead, for tests on a host
 * without vsock: there a first line "CONNECT PORT" is answered as the
 * VMM's vsock socket does ("OK 1073741824"), so the client's handshake
 * is tested too.
 *
 * Quiet: only its own failures go to stderr, which in the guest is the
 * console.
 */
#include "tests/guest/agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define REQUEST_TIMEOUT_S	60	/* for each read of a request */
#define DRAIN_MAX		(1u << 20)	/* read after the command ended */

struct serve_opts {
	unsigned int port;
	const char *unix_path;
};

static char data[AGENT_FRAME_MAX];

/* ---- exec ---------------------------------------------------------------- */

static void run_shell(const char *cmd, int out, int err)
{
	int nul = open("/dev/null", O_RDONLY);

	signal(SIGPIPE, SIG_DFL);	/* ignored dispositions survive exec */
	signal(SIGCHLD, SIG_DFL);
	setsid();			/* its own group, killed on a hang-up */
	if (nul >= 0)
		dup2(nul, 0);
	else
		close(0);
	dup2(out, 1);
	dup2(err, 2);
	if (chdir("/") < 0)
		_exit(127);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	dprintf(2, "%s: /bin/sh: %s\n", AGENT_PROG, strerror(errno));
	_exit(127);
}

/*
 * One read from a pipe of the command into a frame of type; false when the
 * pipe is done (its end, or an error).
 */
static bool pump(int pipe_fd, int sock, const char *type, int *send_err)
{
	ssize_t n;

	do
		n = read(pipe_fd, data, sizeof(data));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return false;
	if (!*send_err)
		*send_err = wire_frame(sock, type, data, (size_t)n);
	return true;
}

/* What the command left in a pipe after it ended (a bounded amount). */
static void drain(int pipe_fd, int sock, const char *type, int *send_err)
{
	size_t got = 0;

	if (pipe_fd < 0)
		return;
	fcntl(pipe_fd, F_SETFL, O_NONBLOCK);
	while (got < DRAIN_MAX && pump(pipe_fd, sock, type, send_err))
		got += sizeof(data);
}

/* The client went away (end of input, or more than its request). */
static bool hung_up(int sock)
{
	char c[256];
	ssize_t n = recv(sock, c, sizeof(c), MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static int run_exec(int sock, struct wire_in *in, char *cmd)
{
	int out[2], err[2], status = 0, send_err = 0;
	bool exited = false;
	pid_t pid;

	(void)in;
	if (!*cmd)
		return wire_error(sock, "exec: no command");
	if (pipe2(out, O_CLOEXEC) < 0)
		return wire_error(sock, "exec: pipe: %s", strerror(errno));
	if (pipe2(err, O_CLOEXEC) < 0) {
		close(out[0]);
		close(out[1]);
		return wire_error(sock, "exec: pipe: %s", strerror(errno));
	}
	pid = fork();
	if (pid == 0)
		run_shell(cmd, out[1], err[1]);
	close(out[1]);
	close(err[1]);
	if (pid < 0) {
		close(out[0]);
		close(err[0]);
		return wire_error(sock, "exec: fork: %s", strerror(errno));
	}

	/* Without pidfd_open (before Linux 5.3) the end is polled for. */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p[4] = {
		{ .fd = out[0], .events = POLLIN },
		{ .fd = err[0], .events = POLLIN },
		{ .fd = sock, .events = POLLIN },
		{ .fd = pidfd, .events = POLLIN },
	};

	while (!exited && !send_err) {
		if (poll(p, 4, pidfd >= 0 ? -1 : 20) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++)
			if (p[i].revents && !pump(p[i].fd, sock,
						  i ? "stderr" : "stdout",
						  &send_err)) {
				close(p[i].fd);
				p[i].fd = -1;
			}
		if (p[2].revents && hung_up(sock))
			send_err = -EPIPE;
		if ((pidfd < 0 || p[3].revents) &&
		    waitpid(pid, &status, WNOHANG) == pid)
			exited = true;
	}
	if (!exited) {		/* hung up, or poll failed */
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	drain(p[0].fd, sock, "stdout", &send_err);
	drain(p[1].fd, sock, "stderr", &send_err);
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	if (pidfd >= 0)
		close(pidfd);
	if (send_err)
		return send_err;
	return wire_exit(sock, WIFSIGNALED(status) ? 128 + WTERMSIG(status)
						   : WEXITSTATUS(status));
}

/* ---- put, get, sync, ping ------------------------------------------------ */

/*
 * "MODE SIZE PATH": the body is always read whole, whatever fails, so the
 * client is still reading when the error frame comes.
 */
static int run_put(int sock, struct wire_in *in, char *args)
{
	unsigned long mode;
	unsigned long long size, left;
	char *end, tmp[PATH_MAX];
	int fd = -1, fail = 0;

	errno = 0;
	mode = strtoul(args, &end, 8);
	if (errno || end == args || *end != ' ' || mode > 07777)
		return wire_error(sock, "put: want put MODE SIZE PATH");
	args = end + 1;
	size = strtoull(args, &end, 10);
	if (errno || end == args || *args == '-' || *end != ' ' || !end[1])
		return wire_error(sock, "put: want put MODE SIZE PATH");
	const char *path = end + 1;

	if (snprintf(tmp, sizeof(tmp), "%s.agent-%d", path, (int)getpid()) >=
	    (int)sizeof(tmp))
		fail = ENAMETOOLONG;
	else if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			    0600)) < 0)
		fail = errno;
	for (left = size; left;) {
		ssize_t n = wire_read(in, data, left < sizeof(data) ?
					  (size_t)left : sizeof(data));

		if (n <= 0) {
			if (fd >= 0) {
				close(fd);
				unlink(tmp);
			}
			return wire_error(sock, "put %s: the body ended after "
					  "%llu of %llu bytes", path,
					  size - left, size);
		}
		left -= (unsigned long long)n;
		if (fd >= 0 && !fail)
			fail = -wire_write_all(fd, data, (size_t)n);
	}
	if (fd >= 0) {
		if (!fail && fchmod(fd, (mode_t)mode) < 0)
			fail = errno;
		if (close(fd) < 0 && !fail)
			fail = errno;
		if (!fail && rename(tmp, path) < 0)
			fail = errno;
		if (fail)
			unlink(tmp);
	}
	if (fail)
		return wire_error(sock, "put %s: %s", path, strerror(fail));
	return wire_exit(sock, 0);
}

static int run_get(int sock, struct wire_in *in, char *path)
{
	struct stat st;
	int fd, ret = 0;
	ssize_t n;

	(void)in;
	if (!*path)
		return wire_error(sock, "get: want get PATH");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return wire_error(sock, "get %s: %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return wire_error(sock, "get %s: %s", path, strerror(EISDIR));
	}
	while (!ret && (n = read(fd, data, sizeof(data))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = wire_error(sock, "get %s: %s", path,
					 strerror(errno));
			close(fd);
			return ret;
		}
		ret = wire_frame(sock, "stdout", data, (size_t)n);
	}
	close(fd);
	return ret ? ret : wire_exit(sock, 0);
}

static int run_sync(int sock, struct wire_in *in, char *args)
{
	(void)in;
	if (*args)
		return wire_error(sock, "sync: takes no argument");
	sync();
	return wire_exit(sock, 0);
}

static int run_ping(int sock, struct wire_in *in, char *args)
{
	(void)in;
	if (*args)
		return wire_error(sock, "ping: takes no argument");
	return wire_exit(sock, 0);
}

static const struct {
	const char *verb;
	int (*run)(int sock, struct wire_in *in, char *args);
} requests[] = {
	{ "exec", run_exec },
	{ "put", run_put },
	{ "get", run_get },
	{ "sync", run_sync },
	{ "ping", run_ping },
};

/* ---- connections --------------------------------------------------------- */

/* A request line into line: its length, or 0 when there is none to answer. */
static ssize_t read_request(int sock, struct wire_in *in, char *line)
{
	ssize_t n = wire_read_line(in, line, AGENT_LINE_MAX);

	if (n == -EPROTO)
		wire_error(sock, "bad request: no whole line in %u bytes",
			   AGENT_LINE_MAX);
	else if (n == -EAGAIN || n == -EWOULDBLOCK)
		wire_error(sock, "bad request: none in %d s",
			   REQUEST_TIMEOUT_S);
	else if (n < 0)
		wire_error(sock, "bad request: %s", strerror((int)-n));
	return n > 0 ? n : 0;
}

/*
 * After the reply: whatever the client still sends is read, for a while,
 * so that closing does not reset the connection before it has read the
 * reply (a bad request's unread rest would).
 */
static void linger(int sock)
{
	struct timeval tv = { .tv_sec = 2 };
	size_t got = 0;
	ssize_t n;

	shutdown(sock, SHUT_WR);
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < DRAIN_MAX && (n = read(sock, data, sizeof(data))) > 0)
		got += (size_t)n;
}

static void serve_conn(int sock, const struct serve_opts *o)
{
	struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_S };
	static struct wire_in in;
	char *line = malloc(AGENT_LINE_MAX);

	if (!line) {
		wire_error(sock, "out of memory");
		return;
	}
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	wire_in_init(&in, sock);
	if (!read_request(sock, &in, line))
		return;
	if (o->unix_path && !strncmp(line, "CONNECT ", 8)) {
		char ok[] = "OK 1073741824\n";

		if (strtoul(line + 8, NULL, 10) != o->port ||
		    wire_write_all(sock, ok, strlen(ok)) ||
		    !read_request(sock, &in, line))
			return;
	}

	size_t vlen = strcspn(line, " ");
	char *args = line + vlen + (line[vlen] == ' ');

	for (size_t i = 0; i < ARRAY_SIZE(requests); i++)
		if (strlen(requests[i].verb) == vlen &&
		    !strncmp(line, requests[i].verb, vlen)) {
			requests[i].run(sock, &in, args);
			return;
		}
	wire_error(sock, "bad request: unknown verb \"%.*s\"",
		   vlen > 32 ? 32 : (int)vlen, line);
}

static int listen_on(const struct serve_opts *o)
{
	int fd, type = SOCK_STREAM | SOCK_CLOEXEC;

	if (o->unix_path) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };

		if (strlen(o->unix_path) >= sizeof(a.sun_path)) {
			fprintf(stderr, "%s: serve: %s: name too long\n",
				AGENT_PROG, o->unix_path);
			return -1;
		}
		strcpy(a.sun_path, o->unix_path);
		unlink(o->unix_path);
		fd = socket(AF_UNIX, type, 0);
		if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			close(fd);
			fd = -1;
		}
	} else {
		struct sockaddr_vm a = {
			.svm_family = AF_VSOCK,
			.svm_cid = VMADDR_CID_ANY,
			.svm_port = o->port,
		};

		fd = socket(AF_VSOCK, type, 0);
		if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0 && listen(fd, 64) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		if (o->unix_path)
			fprintf(stderr, "%s: serve: unix socket %s: %s\n",
				AGENT_PROG, o->unix_path, strerror(errno));
		else
			fprintf(stderr, "%s: serve: vsock port %u: %s\n",
				AGENT_PROG, o->port, strerror(errno));
	}
	return fd;
}

int agent_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "unix", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	struct serve_opts o = { .port = AGENT_PORT };
	char *end;
	int c, lfd;

	while ((c = getopt_long(argc, argv, "+p:", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			errno = 0;
			unsigned long p = strtoul(optarg, &end, 10);

			if (errno || *end || end == optarg || p > 0xffffffffu) {
				fprintf(stderr, "%s: serve: bad port %s\n",
					AGENT_PROG, optarg);
				return 2;
			}
			o.port = (unsigned int)p;
			break;
		case 'u':
			o.unix_path = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s serve [-p PORT] "
				"[--unix PATH]\n", AGENT_PROG);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: %s serve [-p PORT] [--unix PATH]\n",
			AGENT_PROG);
		return 2;
	}
	lfd = listen_on(&o);
	if (lfd < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN);	/* the kernel reaps the children */
	setenv("PATH", "/sbin:/bin:/usr/sbin:/usr/bin", 0);
	if (chdir("/") < 0)
		return 1;

	for (;;) {
		int sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (sock < 0) {
			if (errno == EBADF || errno == EINVAL ||
			    errno == ENOTSOCK) {
				fprintf(stderr, "%s: serve: accept: %s\n",
					AGENT_PROG, strerror(errno));
				return 1;
			}
			if (errno != EINTR && errno != ECONNABORTED &&
			    errno != EAGAIN)
				usleep(100000);	/* out of files or memory */
			continue;
		}
		pid_t pid = fork();

		if (pid == 0) {
			signal(SIGCHLD, SIG_DFL);	/* exec waits for its own */
			close(lfd);
			serve_conn(sock, &o);
			linger(sock);
			_exit(0);
		}
		if (pid < 0)
			wire_error(sock, "fork: %s", strerror(errno));
		close(sock);
	}
}
