/* SPDX-License-Identifier: MIT */
/*
 * vsock_peer: both ends of snapvm's vsock tests (tests/integration/
 * snapvm_vsock.sh), one static program for the guest and the host.
 *
 * In the guest (AF_VSOCK), `vsock_peer serve` listens on
 *   5000  echo: every byte back, until the end of input
 *   5001  sink: reads to the end, answers "<sha256> <bytes>\n"
 *   5002  source: reads "N\n", sends N bytes of the stream, closes
 *   5003  dial: reads "CID PORT N\n", connects to CID:PORT, sends N bytes
 *         of the stream, shuts its writing side, reads the answer to the
 *         end; answers "ok <answer>\n" or "error <errno name>\n"
 * and says on stderr (the console) how each connection ended when it did
 * not end well: "vsock_peer: port P: read: Connection reset by peer".
 *
 * On the host, through snapvm's unix socket PATH (Firecracker's scheme):
 *   connect PATH PORT       CONNECT, then stdin to it and it to stdout;
 *                           exit 3 when refused (closed before "OK")
 *   send PATH PORT N        N stream bytes to a sink: "<answer> <MiB/s>"
 *   recv PATH PORT N        N bytes from a source: "<sha256> <bytes> <MiB/s>"
 *   ping PATH PORT COUNT    one byte echoed COUNT times: "median_us p99_us"
 *   hold PATH PORT FILE     echo, "held", waits for FILE, echo: "ok"
 *   dial PATH CID PORT N    asks the guest (5003) to dial: its answer
 *   listen PATH             serves one guest connection as a sink at
 *                           PATH (PATH_<port>): "<sha256> <bytes> <MiB/s>"
 *   stream N                the stream's first N bytes, to stdout
 *   cid                     (in the guest) the guest's CID
 *
 * The stream is xorshift64 output, so both ends know what was sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define CHUNK	(64u << 10)

/* ---- SHA-256 (FIPS 180-4) ------------------------------------------------- */

struct sha {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	unsigned int n;
};

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))

static void sha_block(struct sha *s, const uint8_t *p)
{
	uint32_t w[64], v[8];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++)
		w[i] = w[i - 16] + w[i - 7] +
		       (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ w[i - 15] >> 3) +
		       (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ w[i - 2] >> 10);
	memcpy(v, s->h, sizeof(v));
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = v[7] + (ROR(v[4], 6) ^ ROR(v[4], 11) ^ ROR(v[4], 25)) +
			      ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i];
		uint32_t t2 = (ROR(v[0], 2) ^ ROR(v[0], 13) ^ ROR(v[0], 22)) +
			      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));

		memmove(v + 1, v, 7 * sizeof(v[0]));
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		s->h[i] += v[i];
}

static void sha_init(struct sha *s)
{
	static const uint32_t h0[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(s->h, h0, sizeof(h0));
	s->len = 0;
	s->n = 0;
}

static void sha_add(struct sha *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->len += len;
	while (len) {
		size_t take = 64 - s->n < len ? 64 - s->n : len;

		if (s->n == 0 && len >= 64) {
			sha_block(s, p);
			p += 64;
			len -= 64;
			continue;
		}
		memcpy(s->buf + s->n, p, take);
		s->n += (unsigned int)take;
		p += take;
		len -= take;
		if (s->n == 64) {
			sha_block(s, s->buf);
			s->n = 0;
		}
	}
}

static void sha_hex(struct sha *s, char out[65])
{
	uint64_t bits = s->len * 8;
	uint8_t pad = 0x80, zero = 0, len[8];

	sha_add(s, &pad, 1);
	while (s->n != 56)
		sha_add(s, &zero, 1);
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha_add(s, len, 8);
	for (int i = 0; i < 8; i++)
		sprintf(out + 8 * i, "%08x", s->h[i]);
}

/* ---- the stream and small helpers ----------------------------------------- */

struct stream {
	uint64_t x;
};

static void stream_fill(struct stream *st, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t x = st->x;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		st->x = x;
		memcpy(buf + i, &x, len - i < 8 ? len - i : 8);
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "vsock_peer: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A line of at most max - 1 bytes, read a byte at a time (nothing after). */
static int read_line(int fd, char *line, size_t max)
{
	size_t n = 0;

	while (n + 1 < max) {
		ssize_t r = read(fd, line + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (line[n] == '\n') {
			line[n] = '\0';
			return (int)n;
		}
		n++;
	}
	return -1;
}

/* Send n stream bytes. */
static int send_stream(int fd, uint64_t n)
{
	static uint8_t buf[CHUNK];
	struct stream st = { 0x9e3779b97f4a7c15ull };

	while (n) {
		size_t take = n < CHUNK ? (size_t)n : CHUNK;

		stream_fill(&st, buf, CHUNK);
		if (write_all(fd, buf, take))
			return -1;
		n -= take;
	}
	return 0;
}

/* Read to the end: the SHA-256 and byte count, -1 on an error. */
static int sink(int fd, char hex[65], uint64_t *bytes)
{
	static uint8_t buf[CHUNK];
	struct sha s;

	sha_init(&s);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		sha_add(&s, buf, (size_t)n);
	}
	*bytes = s.len;
	sha_hex(&s, hex);
	return 0;
}

/* ---- the guest ------------------------------------------------------------- */

static void say_end(unsigned int port, const char *what)
{
	fprintf(stderr, "vsock_peer: port %u: %s: %s\n", port, what,
		strerror(errno));
}

static void serve_echo(int fd)
{
	static uint8_t buf[CHUNK];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			say_end(5000, "read");
			return;
		}
		if (n == 0)
			return;
		if (write_all(fd, buf, (size_t)n)) {
			say_end(5000, "write");
			return;
		}
	}
}

static void serve_sink(int fd)
{
	char hex[65], line[128];
	uint64_t bytes;

	if (sink(fd, hex, &bytes)) {
		say_end(5001, "read");
		return;
	}
	snprintf(line, sizeof(line), "%s %llu\n", hex,
		 (unsigned long long)bytes);
	write_all(fd, line, strlen(line));
}

static void serve_source(int fd)
{
	char line[64];

	if (read_line(fd, line, sizeof(line)) < 0)
		return;
	if (send_stream(fd, strtoull(line, NULL, 10)))
		say_end(5002, "write");
}

static void serve_dial(int fd)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK };
	unsigned int cid, port;
	unsigned long long n;
	char line[160], answer[128];
	ssize_t got = 0;
	int s;

	if (read_line(fd, line, sizeof(line)) < 0 ||
	    sscanf(line, "%u %u %llu", &cid, &port, &n) != 3)
		return;
	addr.svm_cid = cid;
	addr.svm_port = port;
	s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    send_stream(s, n) || shutdown(s, SHUT_WR) < 0) {
		snprintf(line, sizeof(line), "error %s\n", strerrorname_np(errno));
		write_all(fd, line, strlen(line));
		if (s >= 0)
			close(s);
		return;
	}
	while ((size_t)got < sizeof(answer) - 1) {
		ssize_t r = read(s, answer + got, sizeof(answer) - 1 - (size_t)got);

		if (r <= 0)
			break;
		got += r;
	}
	answer[got] = '\0';
	answer[strcspn(answer, "\n")] = '\0';
	close(s);
	snprintf(line, sizeof(line), "ok %s\n", answer);
	write_all(fd, line, strlen(line));
}

static int serve(void)
{
	static const unsigned int ports[] = { 5000, 5001, 5002, 5003 };
	void (*const fns[])(int) = { serve_echo, serve_sink, serve_source,
				     serve_dial };
	struct pollfd pfd[4];

	signal(SIGCHLD, SIG_IGN);	/* no zombies */
	for (int i = 0; i < 4; i++) {
		struct sockaddr_vm addr = { .svm_family = AF_VSOCK,
					    .svm_cid = VMADDR_CID_ANY,
					    .svm_port = ports[i] };

		pfd[i].fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		pfd[i].events = POLLIN;
		if (pfd[i].fd < 0 ||
		    bind(pfd[i].fd, (struct sockaddr *)&addr, sizeof(addr)) ||
		    listen(pfd[i].fd, 16))
			die("vsock listen");
	}
	fprintf(stderr, "vsock_peer: serving\n");
	for (;;) {
		if (poll(pfd, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int i = 0; i < 4; i++) {
			int fd;

			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept(pfd[i].fd, NULL, NULL);
			if (fd < 0)
				continue;
			if (fork() == 0) {
				for (int j = 0; j < 4; j++)
					close(pfd[j].fd);
				fns[i](fd);
				close(fd);
				_exit(0);
			}
			close(fd);
		}
	}
}

/* ---- the host ---------------------------------------------------------------- */

/* Connect through snapvm's socket: the fd after "OK", or exit 3. */
static int host_connect(const char *path, const char *port)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char line[64];
	int fd;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die(path);
	snprintf(line, sizeof(line), "CONNECT %s\n", port);
	if (write_all(fd, line, strlen(line)))
		die("CONNECT");
	if (read_line(fd, line, sizeof(line)) < 0) {
		fprintf(stderr, "vsock_peer: port %s: refused\n", port);
		exit(3);
	}
	if (strncmp(line, "OK ", 3)) {
		fprintf(stderr, "vsock_peer: port %s: \"%s\"\n", port, line);
		exit(1);
	}
	return fd;
}

/* stdin to fd and fd to stdout, each until its end. */
static int cmd_connect(const char *path, const char *port)
{
	static uint8_t buf[CHUNK];
	int fd = host_connect(path, port);
	struct pollfd pfd[2] = { { 0, POLLIN, 0 }, { fd, POLLIN, 0 } };
	int open_ends = 2;

	while (open_ends) {
		if (poll(pfd, 2, -1) < 0)
			die("poll");
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (!pfd[i].revents)
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n <= 0) {
				if (i == 0)
					shutdown(fd, SHUT_WR);
				pfd[i].fd = -1;
				open_ends--;
				continue;
			}
			if (write_all(i == 0 ? fd : 1, buf, (size_t)n))
				die("write");
		}
	}
	return 0;
}

static int cmd_send(const char *path, const char *port, uint64_t n)
{
	int fd = host_connect(path, port);
	double t0 = now_s(), t;
	char line[128];

	if (send_stream(fd, n) || shutdown(fd, SHUT_WR))
		die("send");
	if (read_line(fd, line, sizeof(line)) < 0)
		die("answer");
	t = now_s() - t0;
	printf("%s %.1f\n", line, (double)n / (1 << 20) / t);
	return 0;
}

static int cmd_recv(const char *path, const char *port, uint64_t n)
{
	int fd = host_connect(path, port);
	char line[64], hex[65];
	uint64_t bytes;
	double t0 = now_s(), t;

	snprintf(line, sizeof(line), "%llu\n", (unsigned long long)n);
	if (write_all(fd, line, strlen(line)) || sink(fd, hex, &bytes))
		die("recv");
	t = now_s() - t0;
	printf("%s %llu %.1f\n", hex, (unsigned long long)bytes,
	       (double)bytes / (1 << 20) / t);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmd_ping(const char *path, const char *port, unsigned int count)
{
	int fd = host_connect(path, port);
	double *us = calloc(count, sizeof(*us));
	char c = 'x';

	if (!us || !count)
		die("ping");
	for (unsigned int i = 0; i < count; i++) {
		double t0 = now_s();

		if (write_all(fd, &c, 1) || read(fd, &c, 1) != 1)
			die("ping");
		us[i] = (now_s() - t0) * 1e6;
	}
	qsort(us, count, sizeof(*us), cmp_double);
	printf("%.0f %.0f\n", us[count / 2], us[count * 99 / 100]);
	return 0;
}

static int echo_once(int fd, const char *msg)
{
	char buf[64];
	size_t len = strlen(msg), got = 0;

	if (write_all(fd, msg, len))
		return -1;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return memcmp(buf, msg, len) ? -1 : 0;
}

static int cmd_hold(const char *path, const char *port, const char *file)
{
	int fd = host_connect(path, port);
	struct stat st;

	if (echo_once(fd, "before\n"))
		die("echo before");
	printf("held\n");
	fflush(stdout);
	while (stat(file, &st) < 0)
		usleep(100000);
	if (echo_once(fd, "after\n"))
		die("echo after");
	printf("ok\n");
	return 0;
}

static int cmd_dial(const char *path, const char *cid, const char *port,
		    const char *n)
{
	int fd = host_connect(path, "5003");
	char line[160];

	snprintf(line, sizeof(line), "%s %s %s\n", cid, port, n);
	if (write_all(fd, line, strlen(line)) ||
	    read_line(fd, line, sizeof(line)) < 0)
		die("dial");
	printf("%s\n", line);
	return 0;
}

static int cmd_listen(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char hex[65], line[128];
	uint64_t bytes;
	double t0, t;
	int lfd, fd;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(lfd, 4))
		die(path);
	printf("listening\n");
	fflush(stdout);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	t0 = now_s();
	if (sink(fd, hex, &bytes))
		die("read");
	t = now_s() - t0;
	snprintf(line, sizeof(line), "%s %llu\n", hex,
		 (unsigned long long)bytes);
	write_all(fd, line, strlen(line));
	close(fd);
	unlink(path);
	printf("%s %llu %.1f\n", hex, (unsigned long long)bytes,
	       (double)bytes / (1 << 20) / t);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";

	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(c, "serve") && argc == 2)
		return serve();
	if (!strcmp(c, "connect") && argc == 4)
		return cmd_connect(argv[2], argv[3]);
	if (!strcmp(c, "send") && argc == 5)
		return cmd_send(argv[2], argv[3], strtoull(argv[4], NULL, 10));
	if (!strcmp(c, "recv") && argc == 5)
		return cmd_recv(argv[2], argv[3], strtoull(argv[4], NULL, 10));
	if (!strcmp(c, "ping") && argc == 5)
		return cmd_ping(argv[2], argv[3],
				(unsigned int)strtoul(argv[4], NULL, 10));
	if (!strcmp(c, "hold") && argc == 5)
		return cmd_hold(argv[2], argv[3], argv[4]);
	if (!strcmp(c, "dial") && argc == 6)
		return cmd_dial(argv[2], argv[3], argv[4], argv[5]);
	if (!strcmp(c, "listen") && argc == 3)
		return cmd_listen(argv[2]);
	if (!strcmp(c, "cid") && argc == 2) {
		unsigned int cid;
		int fd = open("/dev/vsock", O_RDONLY);

		if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid))
			die("/dev/vsock");
		printf("%u\n", cid);
		return 0;
	}
	if (!strcmp(c, "stream") && argc == 3) {
		uint64_t n = strtoull(argv[2], NULL, 10);

		return send_stream(1, n) ? 1 : 0;
	}
	fprintf(stderr, "usage: vsock_peer serve | connect PATH PORT | send "
		"PATH PORT N | recv PATH PORT N\n"
		"       | ping PATH PORT COUNT | hold PATH PORT FILE | dial "
		"PATH CID PORT N\n"
		"       | listen PATH | stream N | cid\n");
	return 2;
}
