/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock's packets (vsock.h): the guest's, from the tx queue, and
 * ours, into the rx and event queues (virtio 1.2, 5.10.6).
 *
 * Every field of the guest's headers is checked before it is used: a
 * packet from a CID not the guest's is dropped; one to another CID, of
 * another type or for no connection gets an RST; a length beyond its
 * buffers, an op out of place or bytes past the credit reset the
 * connection. Resets for strays are owed in a ring of RST_MAX: the tx
 * queue is left alone while it is full, so a flood waits on the guest's
 * own rx buffers instead of growing anything here.
 */
#include <string.h>

#include "vmm/dev/vsock.h"

#define PKT_MAX			(64u << 10)	/* payload of a packet we send */
#define EVENT_TRANSPORT_RESET	0u

static uint64_t get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, unsigned int n, uint64_t v)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void pkt_decode(const uint8_t *b, struct pkt *p)
{
	p->src_cid = get_le(b, 8);
	p->dst_cid = get_le(b + 8, 8);
	p->src_port = (uint32_t)get_le(b + 16, 4);
	p->dst_port = (uint32_t)get_le(b + 20, 4);
	p->len = (uint32_t)get_le(b + 24, 4);
	p->type = (uint16_t)get_le(b + 28, 2);
	p->op = (uint16_t)get_le(b + 30, 2);
	p->flags = (uint32_t)get_le(b + 32, 4);
	p->buf_alloc = (uint32_t)get_le(b + 36, 4);
	p->fwd_cnt = (uint32_t)get_le(b + 40, 4);
}

static void pkt_encode(const struct pkt *p, uint8_t *b)
{
	put_le(b, 8, p->src_cid);
	put_le(b + 8, 8, p->dst_cid);
	put_le(b + 16, 4, p->src_port);
	put_le(b + 20, 4, p->dst_port);
	put_le(b + 24, 4, p->len);
	put_le(b + 28, 2, p->type);
	put_le(b + 30, 2, p->op);
	put_le(b + 32, 4, p->flags);
	put_le(b + 36, 4, p->buf_alloc);
	put_le(b + 40, 4, p->fwd_cnt);
}

/*
 * An RST for a packet of no connection, from where it went: the guest
 * matches a reply by both addresses, so a connect to a CID that is not
 * there fails at once instead of timing out.
 */
static void owe_rst(struct vsock *s, const struct pkt *p)
{
	if (p->op == OP_RST || s->n_rst == RST_MAX)
		return;
	s->rst[s->n_rst++] = (struct pkt){
		.src_cid = p->dst_cid, .src_port = p->dst_port,
		.dst_port = p->src_port, .op = OP_RST,
	};
}

/* ---- the guest's packets ------------------------------------------------------ */

/* A packet that belongs to no connection: a REQUEST, or a stray. */
static void tx_new(struct vsock *s, const struct pkt *p)
{
	struct conn *c;

	if (p->op != OP_REQUEST || !(c = vsock_conn_connect(s, p))) {
		owe_rst(s, p);	/* refused, or nothing to answer */
		return;
	}
	c->peer_buf_alloc = p->buf_alloc;
	c->peer_fwd_cnt = p->fwd_cnt;
}

void vsock_tx_packet(struct vsock *s, const struct virtq_req *r)
{
	uint8_t hdr[HDR_LEN];
	struct conn *c;
	struct pkt p;

	if (virtq_req_read(r, 0, hdr, HDR_LEN) != HDR_LEN)
		return;		/* no header: nothing to answer */
	pkt_decode(hdr, &p);
	if (p.src_cid != s->guest_cid)
		return;		/* not from our guest's address */
	if (p.dst_cid != HOST_CID || p.type != TYPE_STREAM) {
		owe_rst(s, &p);
		return;
	}
	c = vsock_conn_find(s, p.dst_port, p.src_port);
	if (!c) {
		tx_new(s, &p);
		return;
	}
	if (c->state == CONN_DEAD)
		return;		/* its RST is on its way */
	c->peer_buf_alloc = p.buf_alloc;
	c->peer_fwd_cnt = p.fwd_cnt;
	if (p.len > r->out_len - HDR_LEN) {
		vsock_conn_reset(c);	/* a length beyond its buffers */
		return;
	}
	switch (p.op) {
	case OP_RESPONSE:
		if (c->state == CONN_REQUEST && !(c->owe & OWE_REQUEST))
			vsock_conn_accepted(c);
		else
			vsock_conn_reset(c);
		break;
	case OP_RST:
		vsock_conn_free(c);	/* a refusal closes the host client */
		break;
	case OP_SHUTDOWN:
		if (c->state == CONN_OPEN)
			vsock_conn_shutdown(c, p.flags);
		else
			vsock_conn_reset(c);
		break;
	case OP_RW:
		vsock_conn_write(c, r, p.len);
		break;
	case OP_CREDIT_UPDATE:
		break;		/* every packet brings the credit */
	case OP_CREDIT_REQUEST:
		c->owe |= OWE_CREDIT;
		break;
	default:		/* a second REQUEST, INVALID, unknown */
		vsock_conn_reset(c);
		break;
	}
}

/* ---- our packets --------------------------------------------------------------- */

/* An rx buffer with room for a header, in s->req; false when none. */
static bool rx_take(struct vsock *s)
{
	/* Bounded: a guest refilling tiny buffers must not keep us here. */
	for (unsigned int i = 0; i < VIRTIO_QUEUE_SIZE &&
	     virtq_pop(&s->v, Q_RX, &s->req) == 1; i++) {
		if (s->req.in_len >= HDR_LEN)
			return true;
		virtq_push(&s->v, Q_RX, s->req.head, 0);
	}
	return false;
}

static void rx_put(struct vsock *s, struct pkt *p)
{
	uint8_t hdr[HDR_LEN];

	p->dst_cid = s->guest_cid;
	p->type = TYPE_STREAM;
	pkt_encode(p, hdr);
	virtq_req_write(&s->req, 0, hdr, HDR_LEN);
	virtq_push(&s->v, Q_RX, s->req.head, HDR_LEN + p->len);
}

/* The header of a packet of c, with our credit, which the guest now has. */
static struct pkt conn_pkt(struct conn *c, uint16_t op)
{
	c->fwd_told = c->fwd_cnt;
	c->owe &= ~OWE_CREDIT;
	return (struct pkt){ .src_cid = HOST_CID, .src_port = c->local_port,
			     .dst_port = c->peer_port, .op = op,
			     .buf_alloc = CONN_BUF, .fwd_cnt = c->fwd_cnt };
}

/* The next control packet c owes, into the buffer taken. */
static void rx_control(struct vsock *s, struct conn *c)
{
	struct pkt p;

	if (c->state == CONN_DEAD) {
		p = conn_pkt(c, OP_RST);
		c->state = CONN_FREE;
	} else if (c->owe & OWE_REQUEST) {
		p = conn_pkt(c, OP_REQUEST);
		c->owe &= ~OWE_REQUEST;
	} else if (c->owe & OWE_RESPONSE) {
		p = conn_pkt(c, OP_RESPONSE);
		c->owe &= ~OWE_RESPONSE;
	} else if (c->owe & OWE_CREDIT) {
		p = conn_pkt(c, OP_CREDIT_UPDATE);
	} else {
		p = conn_pkt(c, OP_SHUTDOWN);
		p.flags = c->shutdown_flags;
		c->owe &= ~OWE_SHUTDOWN;
	}
	rx_put(s, &p);
}

static bool owes(const struct conn *c)
{
	return c->state == CONN_DEAD || (c->state != CONN_FREE && c->owe);
}

/* Bytes of c into the buffer taken, at most want. */
static void rx_data(struct vsock *s, struct conn *c, uint32_t want)
{
	uint64_t room = s->req.in_len - HDR_LEN;
	uint32_t credit = vsock_conn_credit(c);
	struct pkt p;
	ssize_t n;

	if (want > credit)
		want = credit;
	if (want > room)
		want = (uint32_t)room;
	if (want > PKT_MAX)
		want = PKT_MAX;
	n = vsock_conn_read(c, &s->req, want);
	if (n <= 0) {
		/* Gone since the probe: the buffer taken tells the guest. */
		vsock_conn_reset(c);
		p = conn_pkt(c, OP_RST);
		c->state = CONN_FREE;
	} else {
		p = conn_pkt(c, OP_RW);
		p.len = (uint32_t)n;
	}
	rx_put(s, &p);
}

/* Resets owed for strays, then control packets: the packets sent. */
static unsigned int rx_owed(struct vsock *s, unsigned int budget)
{
	unsigned int sent = 0;

	while (s->n_rst && sent < budget && rx_take(s)) {
		rx_put(s, &s->rst[--s->n_rst]);
		sent++;
	}
	for (unsigned int i = 0; i < CONN_MAX && sent < budget; i++) {
		struct conn *c = &s->conns[i];

		while (owes(c) && sent < budget && rx_take(s)) {
			rx_control(s, c);
			sent++;
		}
	}
	return sent;
}

unsigned int vsock_rx_fill(struct vsock *s, unsigned int budget)
{
	unsigned int sent = rx_owed(s, budget);

	for (bool more = true; more && sent < budget;) {
		more = false;
		for (unsigned int k = 0; k < CONN_MAX && sent < budget; k++) {
			struct conn *c = &s->conns[(s->rr + k) % CONN_MAX];
			uint32_t want = vsock_conn_ready(c);

			if (!want)
				continue;
			if (!rx_take(s))
				return sent;
			rx_data(s, c, want);
			sent++;
			more = true;
		}
		s->rr = (s->rr + 1) % CONN_MAX;
	}
	/* A host socket's end, found just now, owes a SHUTDOWN. */
	return sent + rx_owed(s, budget - sent);
}

void vsock_event_fill(struct vsock *s)
{
	uint8_t ev[4];

	if (!s->reset_pending || virtq_pop(&s->v, Q_EVENT, &s->req) != 1)
		return;
	put_le(ev, 4, EVENT_TRANSPORT_RESET);
	virtq_push(&s->v, Q_EVENT, s->req.head,
		   (uint32_t)virtq_req_write(&s->req, 0, ev, sizeof(ev)));
	virtq_notify(&s->v, Q_EVENT);
	s->reset_pending = false;
}
