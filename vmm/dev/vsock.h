/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_VSOCK_H
#define SNAPVM_VSOCK_H

/*
 * The insides of virtio-vsock (--vsock), shared by its three files:
 *
 *   virtio_vsock.c  the device: its thread, virtio callbacks, save/restore
 *   vsock_pkt.c     packets: the guest's (tx queue), ours (rx, event)
 *   vsock_conn.c    connections: the host's sockets and clients, credit
 *
 * Everything here runs with s->v.lock held: on the device thread, or in a
 * virtio callback on a vCPU thread. Host sockets are non-blocking; guest
 * memory is reached only through the virtq API.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "vmm/virtio/virtio.h"

#define Q_RX			0
#define Q_TX			1
#define Q_EVENT			2

#define HOST_CID		2u
#define HDR_LEN			44u	/* struct virtio_vsock_hdr */
#define TYPE_STREAM		1u

enum {
	OP_INVALID, OP_REQUEST, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW,
	OP_CREDIT_UPDATE, OP_CREDIT_REQUEST,
};

#define SHUTDOWN_RCV		1u
#define SHUTDOWN_SEND		2u

#define CONN_MAX		128		/* connections at once */
#define CONN_BUF		(256u << 10)	/* our buf_alloc */
#define RST_MAX			64	/* resets owed for strays at once */
#define PORT_SUFFIX_MAX		11	/* "_4294967295" after PATH */

/* The header of every packet, decoded (little endian on the wire). */
struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

enum conn_state {
	CONN_FREE,
	CONN_LINE,	/* a host client: reading its CONNECT line */
	CONN_REQUEST,	/* a REQUEST for the guest, waiting for its answer */
	CONN_OPEN,
	CONN_DEAD,	/* the host side gone, an RST owed to the guest */
};

/* Control packets a connection owes the guest. */
#define OWE_REQUEST		1u
#define OWE_RESPONSE		2u
#define OWE_CREDIT		4u
#define OWE_SHUTDOWN		8u

struct conn {
	enum conn_state state;
	uint32_t gen;		/* tells a slot's users apart in epoll */
	int fd;
	uint32_t local_port;	/* the host's end */
	uint32_t peer_port;	/* the guest's */
	unsigned int owe;
	uint32_t shutdown_flags;	/* of the SHUTDOWN owed */
	bool readable, writable, hup;	/* edges seen, not yet used up */
	bool host_eof;		/* read to the end of the host's bytes */
	bool peer_no_send, peer_no_recv;	/* the guest's SHUTDOWN */
	bool wr_shut;		/* the host socket's writing side shut */
	uint64_t deadline;	/* CONN_LINE, CONN_REQUEST: ms */
	/* The guest's credit, from its last packet, and what we sent it. */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;
	/* The guest's bytes: received, forwarded, and what it knows of it. */
	uint32_t rx_cnt, fwd_cnt, fwd_told;
	uint8_t *ring;		/* CONN_BUF bytes, rx_cnt - fwd_cnt held */
	uint32_t ring_head;
};

struct vsock {
	struct virtio_dev v;		/* first: ops get &v */
	bool v_ready;			/* virtio_init done */
	uint64_t guest_cid;
	uint32_t cfg_cid;		/* the option's; 0: the snapshot's */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd, epfd, kick_fd;
	pthread_t thread;
	bool thread_started;
	/* Under v.lock from here on. */
	bool stopping, quiesced;
	bool accept_ready;
	bool reset_pending;		/* a transport reset to send */
	uint32_t next_port;
	unsigned int rr;		/* round robin over connections */
	struct pkt rst[RST_MAX];	/* resets owed for strays */
	unsigned int n_rst;
	struct conn conns[CONN_MAX];
	struct virtq_req req;
};

/* ---- vsock_conn.c ---------------------------------------------------------- */

/* The epoll tag of c: its slot and generation. */
uint64_t vsock_conn_tag(const struct vsock *s, const struct conn *c);

/* The connection of these ports (not a host client's still in CONN_LINE). */
struct conn *vsock_conn_find(struct vsock *s, uint32_t local, uint32_t peer);

/* Forget c without a word to the guest (it reset, or never knew of it). */
void vsock_conn_free(struct conn *c);

/* Close the host side and owe the guest an RST (if it knew of c). */
void vsock_conn_reset(struct conn *c);

/* Every connection freed, no reset owed: a device reset or a restore. */
void vsock_conn_drop_all(struct vsock *s);

/* Bytes the guest will take now: its buf_alloc less what is in flight. */
uint32_t vsock_conn_credit(const struct conn *c);

/*
 * The guest connects to the host's port p->dst_port: PATH_<port>. NULL
 * when that cannot be (no listener, a full backlog, no room).
 */
struct conn *vsock_conn_connect(struct vsock *s, const struct pkt *p);

/* The guest accepted a host client's connection: tell the client. */
void vsock_conn_accepted(struct conn *c);

/* The guest's bytes (len, after the header of r) to the host socket. */
void vsock_conn_write(struct conn *c, const struct virtq_req *r,
		      uint32_t len);

/* The guest shut its side(s); c may be done (reset) when all is written. */
void vsock_conn_shutdown(struct conn *c, uint32_t flags);

/* Write out what the ring holds, as far as the host socket takes it. */
void vsock_conn_flush(struct conn *c);

/*
 * Bytes c has for the guest now (0: none, or not now), probing the host
 * socket without taking them. At the socket's end c owes a SHUTDOWN.
 */
uint32_t vsock_conn_ready(struct conn *c);

/* At most want bytes of c into the buffers of r after the header. */
ssize_t vsock_conn_read(struct conn *c, const struct virtq_req *r,
			uint32_t want);

/* Accept host clients from the listening socket. */
void vsock_conn_accept(struct vsock *s);

/* Read a host client's CONNECT line; c owes a REQUEST once it has one. */
void vsock_conn_read_line(struct vsock *s, struct conn *c);

/* Drop what waited too long; the ms until the next deadline, or -1. */
int vsock_conn_expire(struct vsock *s);

/* ---- vsock_pkt.c ------------------------------------------------------------ */

/* Serve one packet of the guest's, taken from the tx queue. */
void vsock_tx_packet(struct vsock *s, const struct virtq_req *r);

/*
 * Fill rx buffers, at most budget packets: resets and control packets
 * owed, then data, a packet a connection a round. Returns the count.
 */
unsigned int vsock_rx_fill(struct vsock *s, unsigned int budget);

/* The transport reset a restore owes the guest, once it has a buffer. */
void vsock_event_fill(struct vsock *s);

#endif
