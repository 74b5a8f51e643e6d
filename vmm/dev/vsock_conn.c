/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock's connections and the host's side of them (vsock.h): the
 * unix sockets, host clients and their CONNECT line, and credit.
 *
 * Host sockets are edge-triggered in epoll: c->readable and c->writable
 * keep an edge until a read or write finds the socket empty or full. A
 * connection's bytes for the host go straight to its socket; what it does
 * not take waits in a ring of CONN_BUF bytes, the buf_alloc the guest is
 * told, allocated the first time it is needed. A guest that sends more
 * than that credit is reset, so the ring never overflows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "vmm/dev/vsock.h"

/* Tell the guest of bytes forwarded once this many have gone unheard. */
#define CREDIT_THRESHOLD	(CONN_BUF / 4)
#define LINE_MAX_LEN		32	/* "CONNECT 4294967295\n" fits */
#define LINE_TIMEOUT_MS		5000	/* for a host client's CONNECT line */
#define CONNECT_TIMEOUT_MS	2000	/* for the guest's answer to it */
#define LOCAL_PORT_BASE		(1u << 30)	/* host ends of host connects */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* At most len bytes of iov (n buffers) from offset off, as dst. */
static int iov_slice(const struct iovec *iov, unsigned int n, size_t off,
		     size_t len, struct iovec *dst)
{
	int k = 0;

	for (unsigned int i = 0; i < n && len; i++) {
		size_t take;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - off;
		if (take > len)
			take = len;
		dst[k++] = (struct iovec){ (uint8_t *)iov[i].iov_base + off,
					   take };
		len -= take;
		off = 0;
	}
	return k;
}

/* ---- the table ---------------------------------------------------------------- */

uint64_t vsock_conn_tag(const struct vsock *s, const struct conn *c)
{
	return (uint64_t)c->gen << 32 | (uint32_t)(c - s->conns);
}

struct conn *vsock_conn_find(struct vsock *s, uint32_t local, uint32_t peer)
{
	for (unsigned int i = 0; i < CONN_MAX; i++) {
		struct conn *c = &s->conns[i];

		if (c->state != CONN_FREE && c->state != CONN_LINE &&
		    c->local_port == local && c->peer_port == peer)
			return c;
	}
	return NULL;
}

/* A slot for a new connection on fd, watched by epoll; NULL when full. */
static struct conn *conn_new(struct vsock *s, int fd, enum conn_state state)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
					    EPOLLET };

	for (unsigned int i = 0; i < CONN_MAX; i++) {
		struct conn *c = &s->conns[i];

		if (c->state != CONN_FREE)
			continue;
		*c = (struct conn){ .state = state, .gen = c->gen + 1, .fd = fd,
				    .readable = true, .writable = true };
		ev.data.u64 = vsock_conn_tag(s, c);
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			c->state = CONN_FREE;
			return NULL;
		}
		return c;
	}
	return NULL;
}

static void close_host(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);	/* which takes it out of the epoll set */
	c->fd = -1;
	free(c->ring);
	c->ring = NULL;
}

void vsock_conn_free(struct conn *c)
{
	close_host(c);
	c->state = CONN_FREE;
}

void vsock_conn_reset(struct conn *c)
{
	if (c->state == CONN_LINE ||
	    (c->state == CONN_REQUEST && (c->owe & OWE_REQUEST))) {
		vsock_conn_free(c);	/* the guest never heard of it */
		return;
	}
	close_host(c);
	c->state = CONN_DEAD;
	c->owe = 0;
}

void vsock_conn_drop_all(struct vsock *s)
{
	for (unsigned int i = 0; i < CONN_MAX; i++)
		if (s->conns[i].state != CONN_FREE)
			vsock_conn_free(&s->conns[i]);
	s->n_rst = 0;
}

uint32_t vsock_conn_credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	/* A fwd_cnt ahead of what we sent wraps to a huge in_flight: 0. */
	return in_flight >= c->peer_buf_alloc ? 0 :
	       c->peer_buf_alloc - in_flight;
}

/* ---- the guest's bytes to the host ---------------------------------------------- */

static void forwarded(struct conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	if (c->fwd_cnt - c->fwd_told >= CREDIT_THRESHOLD)
		c->owe |= OWE_CREDIT;
}

/*
 * Once all is written: the guest's SHUTDOWN SEND shuts the host socket's
 * writing side, and both of its flags end the connection with an RST,
 * which is what a Linux guest waits for to let its socket go.
 */
static void check_done(struct conn *c)
{
	if (c->state != CONN_OPEN || c->rx_cnt != c->fwd_cnt)
		return;
	if (c->peer_no_send && !c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
	if (c->peer_no_send && c->peer_no_recv)
		vsock_conn_reset(c);
}

void vsock_conn_shutdown(struct conn *c, uint32_t flags)
{
	c->peer_no_recv |= !!(flags & SHUTDOWN_RCV);
	c->peer_no_send |= !!(flags & SHUTDOWN_SEND);
	check_done(c);
}

void vsock_conn_flush(struct conn *c)
{
	while (c->state == CONN_OPEN && c->writable && c->rx_cnt != c->fwd_cnt) {
		uint32_t held = c->rx_cnt - c->fwd_cnt;
		uint32_t first = CONN_BUF - c->ring_head;
		struct iovec iov[2] = {
			{ c->ring + c->ring_head, first < held ? first : held },
			{ c->ring, first < held ? held - first : 0 },
		};
		ssize_t n = writev(c->fd, iov, first < held ? 2 : 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			c->writable = false;
			break;
		}
		if (n <= 0) {
			vsock_conn_reset(c);	/* the host client is gone */
			return;
		}
		c->ring_head = (uint32_t)((c->ring_head + (size_t)n) % CONN_BUF);
		forwarded(c, (uint32_t)n);
	}
	check_done(c);
}

void vsock_conn_write(struct conn *c, const struct virtq_req *r, uint32_t len)
{
	uint32_t held = c->rx_cnt - c->fwd_cnt, done = 0, rest, tail, first;

	if (c->state != CONN_OPEN || c->peer_no_send || len > CONN_BUF - held) {
		vsock_conn_reset(c);	/* not open, shut, or past its credit */
		return;
	}
	if (!len)
		return;
	c->rx_cnt += len;
	if (!held && c->writable) {
		struct iovec iov[VIRTIO_CHAIN_MAX];
		int n_iov = iov_slice(r->out, r->n_out, HDR_LEN, len, iov);
		ssize_t n;

		do
			n = writev(c->fd, iov, n_iov);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN) {
			vsock_conn_reset(c);
			return;
		}
		if (n > 0) {
			done = (uint32_t)n;
			forwarded(c, done);
		}
		if (done == len)
			return;
		c->writable = false;	/* it took less: it is full */
	}
	if (!c->ring && !(c->ring = malloc(CONN_BUF))) {
		vsock_conn_reset(c);
		return;
	}
	rest = len - done;
	tail = (c->ring_head + (c->rx_cnt - rest - c->fwd_cnt)) % CONN_BUF;
	first = CONN_BUF - tail < rest ? CONN_BUF - tail : rest;
	virtq_req_read(r, HDR_LEN + done, c->ring + tail, first);
	virtq_req_read(r, HDR_LEN + done + first, c->ring, rest - first);
}

/* ---- the host's bytes to the guest ----------------------------------------------- */

uint32_t vsock_conn_ready(struct conn *c)
{
	int queued = 0;
	char byte;
	ssize_t n;

	/* Nothing before the RESPONSE, past the end, or beyond the credit. */
	if (c->state != CONN_OPEN || !c->readable || c->host_eof ||
	    c->peer_no_recv || (c->owe & OWE_RESPONSE) ||
	    !vsock_conn_credit(c))
		return 0;
	if (ioctl(c->fd, FIONREAD, &queued) == 0 && queued > 0)
		return (uint32_t)queued;
	n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		c->readable = false;
		return 0;
	}
	/* The end of the host's bytes (an error is the same to the guest). */
	c->host_eof = true;
	c->owe |= OWE_SHUTDOWN;
	c->shutdown_flags = SHUTDOWN_SEND | (c->hup ? SHUTDOWN_RCV : 0);
	return 0;
}

ssize_t vsock_conn_read(struct conn *c, const struct virtq_req *r,
			uint32_t want)
{
	struct iovec iov[VIRTIO_CHAIN_MAX];
	int n_iov = iov_slice(r->in, r->n_in, HDR_LEN, want, iov);
	ssize_t n;

	do
		n = readv(c->fd, iov, n_iov);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		c->tx_cnt += (uint32_t)n;
	return n;
}

/* ---- connections the guest makes ------------------------------------------------- */

struct conn *vsock_conn_connect(struct vsock *s, const struct pkt *p)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct conn *c = NULL;
	int fd = -1;

	/* It fits: create checked the path's length with the longest port. */
	if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u",
			     s->path, p->dst_port) < sizeof(addr.sun_path))
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    0);
	/* A unix connect does not wait: it is done, or refused (EAGAIN). */
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    !(c = conn_new(s, fd, CONN_OPEN))) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	c->local_port = p->dst_port;
	c->peer_port = p->src_port;
	c->owe = OWE_RESPONSE;
	return c;
}

/* ---- connections host clients make ------------------------------------------------ */

void vsock_conn_accept(struct vsock *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0)
			break;	/* EAGAIN, or out of descriptors */
		c = conn_new(s, fd, CONN_LINE);
		if (!c) {
			close(fd);	/* no room: the client sees the end */
			continue;
		}
		c->deadline = now_ms() + LINE_TIMEOUT_MS;
	}
	s->accept_ready = false;
}

/* A host port for a host client's connection, not in use. */
static uint32_t alloc_port(struct vsock *s)
{
	for (;;) {
		uint32_t p;
		bool used = false;

		if (s->next_port < LOCAL_PORT_BASE)	/* the first, or wrapped */
			s->next_port = LOCAL_PORT_BASE;
		p = s->next_port++;
		for (unsigned int i = 0; i < CONN_MAX && !used; i++)
			used = s->conns[i].state != CONN_FREE &&
			       s->conns[i].local_port == p;
		if (!used)
			return p;
	}
}

/* "CONNECT <port>\n": 0 and the port, or -1. */
static int parse_connect(const char *line, uint32_t *port)
{
	unsigned long long v = 0;
	const char *p;

	if (strncmp(line, "CONNECT ", 8))
		return -1;
	for (p = line + 8; *p >= '0' && *p <= '9' && p - line < 8 + 10; p++)
		v = v * 10 + (unsigned int)(*p - '0');
	if (p == line + 8 || *p != '\n' || v > UINT32_MAX)
		return -1;
	*port = (uint32_t)v;
	return 0;
}

void vsock_conn_read_line(struct vsock *s, struct conn *c)
{
	char line[LINE_MAX_LEN + 1];
	uint32_t port;
	ssize_t n;
	char *nl;

	/* Peek: what follows the line stays queued, the connection's bytes. */
	n = recv(c->fd, line, LINE_MAX_LEN, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		c->readable = false;
		return;
	}
	if (n <= 0) {
		vsock_conn_free(c);
		return;
	}
	line[n] = '\0';
	nl = memchr(line, '\n', (size_t)n);
	if (!nl) {
		if (n == LINE_MAX_LEN)
			vsock_conn_free(c);	/* no line this long is ours */
		else
			c->readable = false;	/* the rest comes later */
		return;
	}
	nl[1] = '\0';
	if (recv(c->fd, line, (size_t)(nl - line + 1), MSG_DONTWAIT) !=
	    nl - line + 1 || parse_connect(line, &port)) {
		vsock_conn_free(c);
		return;
	}
	c->state = CONN_REQUEST;
	c->local_port = alloc_port(s);
	c->peer_port = port;
	c->owe = OWE_REQUEST;
	c->deadline = now_ms() + CONNECT_TIMEOUT_MS;
}

void vsock_conn_accepted(struct conn *c)
{
	char line[LINE_MAX_LEN];
	int n = snprintf(line, sizeof(line), "OK %u\n", c->local_port);

	c->state = CONN_OPEN;
	/* A socket that has sent us nothing but its line takes ours. */
	if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		vsock_conn_reset(c);
}

int vsock_conn_expire(struct vsock *s)
{
	uint64_t now = now_ms(), next = UINT64_MAX;

	for (unsigned int i = 0; i < CONN_MAX; i++) {
		struct conn *c = &s->conns[i];

		if (c->state != CONN_LINE && c->state != CONN_REQUEST)
			continue;
		if (c->deadline <= now)
			vsock_conn_reset(c);
		else if (c->deadline < next)
			next = c->deadline;
	}
	return next == UINT64_MAX ? -1 : (int)(next - now);
}
