/* SPDX-License-Identifier: MIT */
/*
 * snapfs-agent exec, put, get, sync, ping: the host's end.
 *
 *   snapfs-agent exec [CONN] [--] CMD...       CMD's words joined by spaces
 *   snapfs-agent put [CONN] [--mode M] LOCAL REMOTE    LOCAL - is stdin
 *   snapfs-agent get [CONN] REMOTE [LOCAL]     no LOCAL, or -, is stdout
 *   snapfs-agent sync [CONN]
 *   snapfs-agent ping [CONN]
 *
 * CONN is --socket PATH (the VMM's vsock unix socket: "CONNECT PORT\n",
 * then "OK <n>\n") or --unix PATH (an agent's own unix socket, no
 * handshake), with --port P (52) and --wait SECONDS (retry the connection
 * until the agent answers, for a guest that is still booting; 0).
 *
 * exec's status is the remote command's; when there is none (no
 * connection, an error frame, a cut reply) it is 255, as ssh's. The other
 * commands give 0, or 1 on failure. Wrong usage gives 2. Each failure is
 * one line on stderr.
 */
#include "tests/guest/agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ERR_MAX		512u

struct conn {
	const char *socket;	/* the VMM's vsock socket */
	const char *unix_path;	/* an agent's unix socket */
	unsigned int port;
	double wait;
	const char *mode;	/* put --mode */
	struct wire_in in;
};

static void fail(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s: ", AGENT_PROG, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- options -------------------------------------------------------------- */

/* The options of cmd into c: argv's index of the first operand, or -1. */
static int parse_conn(const char *cmd, int argc, char **argv, struct conn *c,
		      bool has_mode)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "unix", required_argument, NULL, 'u' },
		{ "port", required_argument, NULL, 'p' },
		{ "wait", required_argument, NULL, 'w' },
		{ "mode", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int o;

	memset(c, 0, sizeof(*c));
	c->port = AGENT_PORT;
	while ((o = getopt_long(argc, argv, "+p:", longopts, NULL)) != -1) {
		switch (o) {
		case 's':
			c->socket = optarg;
			break;
		case 'u':
			c->unix_path = optarg;
			break;
		case 'p':
			errno = 0;
			unsigned long p = strtoul(optarg, &end, 10);

			if (errno || *end || end == optarg || p > 0xffffffffu) {
				fail(cmd, "bad port %s", optarg);
				return -1;
			}
			c->port = (unsigned int)p;
			break;
		case 'w':
			c->wait = strtod(optarg, &end);
			if (*end || end == optarg || !(c->wait >= 0)) {
				fail(cmd, "bad --wait %s", optarg);
				return -1;
			}
			break;
		case 'm':
			if (!has_mode) {
				fail(cmd, "no --mode here");
				return -1;
			}
			c->mode = optarg;
			break;
		default:
			return -1;
		}
	}
	if (!c->socket == !c->unix_path) {
		fail(cmd, "give one of --socket PATH and --unix PATH");
		return -1;
	}
	return optind;
}

/* ---- the connection ------------------------------------------------------- */

/* One try: the connected socket, or -1 with why in err. */
static int dial_once(struct conn *c, char *err)
{
	const char *path = c->socket ? c->socket : c->unix_path;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char line[AGENT_HEAD_MAX], req[32];
	int fd;
	ssize_t n;

	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(err, ERR_MAX, "%s: name too long", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(err, ERR_MAX, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	wire_in_init(&c->in, fd);
	if (!c->socket)
		return fd;

	snprintf(req, sizeof(req), "CONNECT %u\n", c->port);
	n = wire_write_all(fd, req, strlen(req));
	if (!n)
		n = wire_read_line(&c->in, line, sizeof(line));
	if (n > 0 && !strncmp(line, "OK ", 3))
		return fd;
	if (n == 0)
		snprintf(err, ERR_MAX, "%s: CONNECT %u: closed (nothing "
			 "listens on vsock port %u?)", path, c->port, c->port);
	else if (n > 0)
		snprintf(err, ERR_MAX, "%s: CONNECT %u: answered \"%.64s\"",
			 path, c->port, line);
	else
		snprintf(err, ERR_MAX, "%s: CONNECT %u: %s", path, c->port,
			 n == -EPROTO ? "no whole answer line" :
			 strerror((int)-n));
	close(fd);
	return -1;
}

/* Connected, retrying for --wait seconds: the socket, or -1 (said why). */
static int dial(const char *cmd, struct conn *c)
{
	double end = now_s() + c->wait;
	char err[ERR_MAX];

	for (;;) {
		int fd = dial_once(c, err);

		if (fd >= 0)
			return fd;
		if (now_s() >= end) {
			fail(cmd, "%s", err);
			return -1;
		}
		usleep(100000);
	}
}

/* All of buf, or "-1" having said why. */
static int send_all(const char *cmd, int fd, const void *buf, size_t len)
{
	int ret = wire_write_all(fd, buf, len);

	if (ret)
		fail(cmd, "send: %s", strerror(-ret));
	return ret ? -1 : 0;
}

/*
 * The reply's frames: stdout ones to out, stderr ones to our stderr.
 * The exit frame's status, or -1 having said why there is none.
 */
static int read_reply(const char *cmd, struct conn *c, int out)
{
	char head[AGENT_HEAD_MAX], type[16], msg[ERR_MAX], buf[65536];
	uint64_t len;

	for (;;) {
		ssize_t n = wire_read_line(&c->in, head, sizeof(head));

		if (n == 0) {
			fail(cmd, "the agent closed the connection before "
			     "the end of its reply");
			return -1;
		}
		if (n < 0 || wire_parse_head(head, type, &len)) {
			fail(cmd, "bad reply: %s", n < 0 && n != -EPROTO ?
			     strerror((int)-n) : "not a frame header");
			return -1;
		}
		bool is_out = !strcmp(type, "stdout"),
		     is_err = !strcmp(type, "stderr"),
		     final = !strcmp(type, "exit") || !strcmp(type, "error");
		uint64_t kept = 0;

		if (final && len >= ERR_MAX) {
			fail(cmd, "bad reply: a %s frame of %llu bytes", type,
			     (unsigned long long)len);
			return -1;
		}
		while (len) {
			n = wire_read(&c->in, buf, len < sizeof(buf) ?
				      (size_t)len : sizeof(buf));
			if (n <= 0) {
				fail(cmd, "the agent closed the connection "
				     "inside a frame");
				return -1;
			}
			len -= (uint64_t)n;
			if (final) {
				memcpy(msg + kept, buf, (size_t)n);
				kept += (uint64_t)n;
			} else if (is_out || is_err) {
				int ret = wire_write_all(is_out ? out : 2, buf,
							 (size_t)n);

				if (ret) {
					fail(cmd, "write: %s", strerror(-ret));
					return -1;
				}
			}
		}
		if (!final)
			continue;	/* and frames of unknown types */
		msg[kept] = '\0';
		if (!strcmp(type, "error")) {	/* it names the request */
			fprintf(stderr, "%s: %s\n", AGENT_PROG, msg);
			return -1;
		}
		char *end;
		long status = strtol(msg, &end, 10);

		if (*end || end == msg || status < 0 || status > 255) {
			fail(cmd, "bad reply: exit \"%.32s\"", msg);
			return -1;
		}
		return (int)status;
	}
}

/* Connect, send line (and len bytes of body from body_fd), read the reply. */
static int request(const char *cmd, struct conn *c, const char *line,
		   int body_fd, uint64_t len, int out)
{
	char buf[65536];
	int fd = dial(cmd, c), ret = -1;

	if (fd < 0)
		return -1;
	if (send_all(cmd, fd, line, strlen(line)))
		goto out;
	while (len) {
		ssize_t n = read(body_fd, buf, len < sizeof(buf) ?
				 (size_t)len : sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fail(cmd, "read: %s", n ? strerror(errno) :
			     "the file became shorter");
			goto out;
		}
		if (send_all(cmd, fd, buf, (size_t)n))
			goto out;
		len -= (uint64_t)n;
	}
	ret = read_reply(cmd, c, out);
out:
	close(fd);
	return ret;
}

/* A request line of prefix and the rest, or NULL (said why). */
static char *join(const char *cmd, const char *prefix, char **words, int n)
{
	size_t len = strlen(prefix) + 2;
	char *line, *p;

	for (int i = 0; i < n; i++)
		len += strlen(words[i]) + 1;
	if (len > AGENT_LINE_MAX) {
		fail(cmd, "the request is longer than %u bytes",
		     AGENT_LINE_MAX);
		return NULL;
	}
	line = malloc(len);
	if (!line) {
		fail(cmd, "out of memory");
		return NULL;
	}
	p = line + sprintf(line, "%s", prefix);
	for (int i = 0; i < n; i++) {
		if (strchr(words[i], '\n')) {
			fail(cmd, "no newline in a request");
			free(line);
			return NULL;
		}
		p += sprintf(p, "%s%s", i ? " " : "", words[i]);
	}
	strcpy(p, "\n");
	return line;
}

/* ---- the commands --------------------------------------------------------- */

int client_exec(int argc, char **argv)
{
	struct conn c;
	int i = parse_conn("exec", argc, argv, &c, false);
	char *line;

	if (i < 0)
		return 2;
	if (i == argc) {
		fail("exec", "no command");
		return 2;
	}
	line = join("exec", "exec ", argv + i, argc - i);
	if (!line)
		return 255;
	int status = request("exec", &c, line, -1, 0, 1);

	free(line);
	return status < 0 ? 255 : status;
}

int client_put(int argc, char **argv)
{
	struct conn c;
	int i = parse_conn("put", argc, argv, &c, true), fd, status;
	unsigned long mode;
	struct stat st;
	char *line, *end, size[32], modestr[16];
	FILE *spool = NULL;

	if (i < 0)
		return 2;
	if (argc - i != 2) {
		fail("put", "want put [--mode M] LOCAL REMOTE");
		return 2;
	}
	const char *local = argv[i], *remote = argv[i + 1];

	fd = strcmp(local, "-") ? open(local, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fail("put", "%s: %s", local, strerror(errno));
		return 1;
	}
	if (!S_ISREG(st.st_mode)) {	/* stdin, a pipe: its size first */
		char buf[65536];
		ssize_t n;

		spool = tmpfile();
		while (spool && (n = read(fd, buf, sizeof(buf))) > 0)
			if (fwrite(buf, 1, (size_t)n, spool) != (size_t)n)
				break;
		if (!spool || ferror(spool) || fflush(spool) ||
		    fstat(fileno(spool), &st) < 0) {
			fail("put", "%s: %s", local, strerror(errno));
			return 1;
		}
		fd = fileno(spool);
		lseek(fd, 0, SEEK_SET);
		st.st_mode = 0644;
	}
	mode = st.st_mode & 07777;
	if (c.mode) {
		errno = 0;
		mode = strtoul(c.mode, &end, 8);
		if (errno || *end || end == c.mode || mode > 07777) {
			fail("put", "bad --mode %s (octal)", c.mode);
			return 2;
		}
	}
	snprintf(modestr, sizeof(modestr), "%lo", mode);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)st.st_size);
	char *words[] = { modestr, size, (char *)remote };

	line = join("put", "put ", words, 3);
	if (!line)
		return 1;
	status = request("put", &c, line, fd, (uint64_t)st.st_size, 1);
	free(line);
	if (spool)
		fclose(spool);
	else if (fd > 0)
		close(fd);
	return status == 0 ? 0 : 1;
}

int client_get(int argc, char **argv)
{
	struct conn c;
	int i = parse_conn("get", argc, argv, &c, false), out = 1, status;
	char tmp[PATH_MAX], *line;
	const char *local;

	if (i < 0)
		return 2;
	if (argc - i != 1 && argc - i != 2) {
		fail("get", "want get REMOTE [LOCAL]");
		return 2;
	}
	local = argc - i == 2 && strcmp(argv[i + 1], "-") ? argv[i + 1] : NULL;
	line = join("get", "get ", argv + i, 1);
	if (!line)
		return 1;
	if (local) {	/* a whole file or none: beside it, then renamed */
		if (snprintf(tmp, sizeof(tmp), "%s.get-%d", local,
			     (int)getpid()) >= (int)sizeof(tmp)) {
			fail("get", "%s: %s", local, strerror(ENAMETOOLONG));
			free(line);
			return 1;
		}
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (out < 0) {
			fail("get", "%s: %s", local, strerror(errno));
			free(line);
			return 1;
		}
	}
	status = request("get", &c, line, -1, 0, out);
	free(line);
	if (local) {
		if (close(out) < 0 && status == 0) {
			fail("get", "%s: %s", local, strerror(errno));
			status = -1;
		}
		if (status == 0 && rename(tmp, local) < 0) {
			fail("get", "%s: %s", local, strerror(errno));
			status = -1;
		}
		if (status != 0)
			unlink(tmp);
	}
	return status == 0 ? 0 : 1;
}

static int simple(const char *cmd, int argc, char **argv)
{
	struct conn c;
	int i = parse_conn(cmd, argc, argv, &c, false);
	char line[16];

	if (i < 0)
		return 2;
	if (i != argc) {
		fail(cmd, "takes no argument");
		return 2;
	}
	snprintf(line, sizeof(line), "%s\n", cmd);
	return request(cmd, &c, line, -1, 0, 1) == 0 ? 0 : 1;
}

int client_sync(int argc, char **argv)
{
	return simple("sync", argc, argv);
}

int client_ping(int argc, char **argv)
{
	return simple("ping", argc, argv);
}
