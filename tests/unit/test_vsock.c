/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock (vmm/dev/virtio_vsock.c and its vsock_*.c) driven from both
 * ends at once: the test is the guest's driver (rings and packets written
 * into guest RAM, registers through pci_mmio) and the host's programs
 * (unix sockets at PATH and PATH_P), with the device thread in between.
 * There is no VM: the bus's vm_fd is -1, so interrupts go nowhere and the
 * driver polls the used rings.
 *
 * Checked: the handshake and bytes both ways; credit both ways; a hostile
 * guest (short headers, lengths past the buffers, unknown ops and ports,
 * other CIDs and types, sends past the credit, a flood of strays) gets
 * resets or nothing, bounded; save quiesces until resume; a restore sends
 * the transport reset and keeps the posted rx buffers. Also the device
 * path's throughput both ways, printed.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/dev/dev.h"
#include "vmm/mem.h"
#include "vmm/pci/pci.h"
#include "vmm/virtio/virtio.h"
#include "tests/lib/testutil.h"

#define RAM		(128ull << 20)
#define QSIZE		256u
#define RINGS		0x100000ull	/* queue q's rings at RINGS + q MiB */
#define BUFS		0x400000ull	/* buffers: slot i of queue q below */
#define SLOT		0x11000ull	/* 64 KiB of payload and a header */
#define BIG		0x6400000ull	/* 100 MiB: one packet past the credit */
#define HDR		44u
#define GUEST_CID	3u

/* The BAR0 layout of virtio.h. */
#define B_COMMON	0x0000u
#define B_DEVICE	0x2000u
#define B_NOTIFY	0x3000u
#define C_GFSELECT	8
#define C_GF		12
#define C_STATUS	20
#define C_Q_SELECT	22
#define C_Q_SIZE	24
#define C_Q_ENABLE	28
#define C_Q_DESC	32
#define C_Q_AVAIL	40
#define C_Q_USED	48
#define D_WRITE		2u
#define D_NEXT		1u

enum { RX, TX, EV };
enum { REQUEST = 1, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE,
       CREDIT_REQUEST };

static void put_le(uint8_t *p, unsigned int n, uint64_t v)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A packet header, as in struct virtio_vsock_hdr. */
struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

static void hdr_put(uint8_t *b, const struct hdr *h)
{
	put_le(b, 8, h->src_cid);
	put_le(b + 8, 8, h->dst_cid);
	put_le(b + 16, 4, h->src_port);
	put_le(b + 20, 4, h->dst_port);
	put_le(b + 24, 4, h->len);
	put_le(b + 28, 2, h->type);
	put_le(b + 30, 2, h->op);
	put_le(b + 32, 4, h->flags);
	put_le(b + 36, 4, h->buf_alloc);
	put_le(b + 40, 4, h->fwd_cnt);
}

static struct hdr hdr_get(const uint8_t *b)
{
	return (struct hdr){
		get_le(b, 8), get_le(b + 8, 8), (uint32_t)get_le(b + 16, 4),
		(uint32_t)get_le(b + 20, 4), (uint32_t)get_le(b + 24, 4),
		(uint16_t)get_le(b + 28, 2), (uint16_t)get_le(b + 30, 2),
		(uint32_t)get_le(b + 32, 4), (uint32_t)get_le(b + 36, 4),
		(uint32_t)get_le(b + 40, 4),
	};
}

/* ---- the guest's driver ----------------------------------------------------- */

struct gq {
	uint64_t desc, avail, used;
	uint16_t avail_idx, last_used;
	uint16_t next_desc;
};

struct rig {
	struct mem *mem;
	struct pci_bus *bus;
	void *dev;
	struct dev_config cfg;
	char *dir;
	char path[108];
	uint64_t bar;
	struct gq q[3];
};

static uint8_t *ram(struct rig *r, uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(r->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static void cfg_io(struct rig *r, unsigned int reg, bool wr, unsigned int size,
		   uint32_t *val)
{
	uint8_t a[4], d[4] = { 0 };

	put_le(a, 4, 0x80000000u | 1u << 11 | (reg & 0xfc));	/* slot 1 */
	pci_bus_config_io(r->bus, 0, true, a, 4);
	if (wr)
		put_le(d, size, *val);
	pci_bus_config_io(r->bus, (uint16_t)(4 + (reg & 3)), wr, d, size);
	if (!wr)
		*val = (uint32_t)get_le(d, size);
}

static uint64_t mmio(struct rig *r, uint32_t off, bool wr, unsigned int size,
		     uint64_t val)
{
	uint8_t d[8];

	put_le(d, size, val);
	assert_true(pci_mmio(r->bus, r->bar + off, wr, d, size));
	return get_le(d, size);
}

/* Probe, take VERSION_1 alone, set the three queues up, DRIVER_OK. */
static void bring_up(struct rig *r)
{
	uint32_t v;

	cfg_io(r, PCI_VENDOR_ID, false, 4, &v);
	assert_int_equal(v, 0x1af4u | 0x1053u << 16);	/* 0x1040 + 19 */
	cfg_io(r, PCI_BAR0, false, 4, &v);
	r->bar = v & ~0xfu;
	v = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	cfg_io(r, PCI_COMMAND, true, 2, &v);
	mmio(r, C_STATUS, true, 1, 0);
	mmio(r, C_STATUS, true, 1, VIRTIO_STATUS_ACKNOWLEDGE |
	     VIRTIO_STATUS_DRIVER);
	mmio(r, C_GFSELECT, true, 4, 1);
	mmio(r, C_GF, true, 4, 1);	/* VERSION_1 */
	mmio(r, C_STATUS, true, 1, VIRTIO_STATUS_ACKNOWLEDGE |
	     VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned int q = 0; q < 3; q++) {
		struct gq *g = &r->q[q];

		*g = (struct gq){ .desc = RINGS + q * 0x100000ull };
		g->avail = g->desc + 0x4000;
		g->used = g->desc + 0x8000;
		memset(ram(r, g->desc, 0x10000), 0, 0x10000);
		mmio(r, C_Q_SELECT, true, 2, q);
		mmio(r, C_Q_SIZE, true, 2, QSIZE);
		mmio(r, C_Q_DESC, true, 8, g->desc);
		mmio(r, C_Q_AVAIL, true, 8, g->avail);
		mmio(r, C_Q_USED, true, 8, g->used);
		mmio(r, C_Q_ENABLE, true, 2, 1);
	}
	mmio(r, C_STATUS, true, 1, VIRTIO_STATUS_ACKNOWLEDGE |
	     VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	     VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(mmio(r, C_STATUS, false, 1, 0) &
			 VIRTIO_STATUS_NEEDS_RESET, 0);
}

static uint64_t slot_gpa(unsigned int q, unsigned int i)
{
	return BUFS + (q * QSIZE + i % QSIZE) * SLOT;
}

/*
 * Post a chain on queue q: n buffers of lens[] one after another in RAM
 * from gpa, device-writable when write. The chain's head.
 */
static uint16_t post_at(struct rig *r, unsigned int q, uint64_t gpa,
			unsigned int n, const uint32_t *lens, bool write)
{
	struct gq *g = &r->q[q];
	uint16_t head = g->next_desc % QSIZE;
	uint8_t *avail = ram(r, g->avail, 6 + 2 * QSIZE);

	for (unsigned int k = 0; k < n; k++) {
		uint16_t d = (uint16_t)((head + k) % QSIZE);
		uint8_t *e = ram(r, g->desc + 16u * d, 16);

		put_le(e, 8, gpa);
		put_le(e + 8, 4, lens[k]);
		put_le(e + 12, 2, (write ? D_WRITE : 0) |
		       (k + 1 < n ? D_NEXT : 0));
		put_le(e + 14, 2, (d + 1) % QSIZE);
		gpa += lens[k];
	}
	g->next_desc = (uint16_t)(g->next_desc + n);
	put_le(avail + 4 + 2 * (g->avail_idx % QSIZE), 2, head);
	g->avail_idx++;
	__atomic_store_n((uint16_t *)(avail + 2), g->avail_idx,
			 __ATOMIC_RELEASE);
	mmio(r, B_NOTIFY + 4 * q, true, 2, q);
	return head;
}

/* The same at the slot of the chain's head descriptor. */
static uint16_t post(struct rig *r, unsigned int q, unsigned int n,
		     const uint32_t *lens, bool write)
{
	return post_at(r, q, slot_gpa(q, r->q[q].next_desc % QSIZE), n, lens,
		       write);
}

/* An rx buffer of len bytes (one descriptor). */
static void post_rx(struct rig *r, uint32_t len)
{
	post(r, RX, 1, &len, true);
}

/* A packet h from the guest, header and payload in two descriptors. */
static void send_pkt(struct rig *r, struct hdr h, const void *data)
{
	uint32_t lens[2] = { HDR, h.len };
	struct gq *g = &r->q[TX];
	uint8_t *b = ram(r, slot_gpa(TX, g->next_desc % QSIZE), HDR + h.len);

	if (!h.src_cid)
		h.src_cid = GUEST_CID;
	if (!h.dst_cid)
		h.dst_cid = 2;
	if (!h.type)
		h.type = 1;
	hdr_put(b, &h);
	if (h.len)
		memcpy(b + HDR, data, h.len);
	post(r, TX, h.len ? 2 : 1, lens, false);
}

/* The next used entry of q within ms: its id and len; false at timeout. */
static bool used(struct rig *r, unsigned int q, unsigned int ms,
		 uint16_t *id, uint32_t *len)
{
	struct gq *g = &r->q[q];
	uint8_t *u = ram(r, g->used, 6 + 8 * QSIZE);
	uint64_t end = now_us() + ms * 1000ull;

	/* A driver polling: spin a little, then sleep between looks. */
	for (unsigned int spins = 0;
	     __atomic_load_n((uint16_t *)(u + 2), __ATOMIC_ACQUIRE) ==
	     g->last_used; spins++) {
		if (now_us() > end)
			return false;
		if (spins < 2000)
			sched_yield();
		else
			usleep(50);
	}
	*id = (uint16_t)get_le(u + 4 + 8 * (g->last_used % QSIZE), 4);
	*len = (uint32_t)get_le(u + 8 + 8 * (g->last_used % QSIZE), 4);
	g->last_used++;
	return true;
}

/* The next packet on rx within ms, its payload copied to data (if any). */
static bool recv_pkt(struct rig *r, unsigned int ms, struct hdr *h,
		     void *data)
{
	uint16_t id;
	uint32_t len;
	uint8_t *b;

	if (!used(r, RX, ms, &id, &len))
		return false;
	assert_true(len >= HDR);
	b = ram(r, slot_gpa(RX, id), len);
	*h = hdr_get(b);
	assert_int_equal(h->len, len - HDR);
	assert_int_equal(h->src_cid == 2 || h->op == RST, 1);
	assert_int_equal(h->dst_cid, GUEST_CID);
	assert_int_equal(h->type, 1);
	if (data)
		memcpy(data, b + HDR, h->len);
	return true;
}

/* Every tx buffer posted so far came back. */
static void tx_drained(struct rig *r)
{
	struct gq *g = &r->q[TX];
	uint16_t id;
	uint32_t len;

	while (g->last_used != g->avail_idx)
		assert_true(used(r, TX, 2000, &id, &len));
}

/* ---- set-up ----------------------------------------------------------------- */

static struct rig *rig_new(void)
{
	struct snap_err err = { "" };
	struct rig *r = calloc(1, sizeof(*r));
	struct dev_host host;

	assert_non_null(r);
	assert_int_equal(mem_create(&r->mem, RAM, NULL, &err), 0);
	assert_int_equal(pci_bus_create(&r->bus, -1, &err), 0);
	r->dir = test_tmpdir();
	snprintf(r->path, sizeof(r->path), "%s/v.sock", r->dir);
	r->cfg = (struct dev_config){ .vsock = r->path,
				      .vsock_cid = GUEST_CID };
	host = (struct dev_host){ .pci = r->bus, .mem = r->mem,
				  .cfg = &r->cfg };
	if (dev_virtio_vsock.create(&host, &r->dev, &err))
		fail_msg("create: %s", err.msg);
	return r;
}

static void rig_free(struct rig *r)
{
	struct stat st;

	dev_virtio_vsock.destroy(r->dev);
	assert_int_equal(stat(r->path, &st), -1);	/* PATH removed */
	pci_bus_destroy(r->bus);
	mem_destroy(r->mem);
	test_rmtree(r->dir);
	free(r->dir);
	free(r);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

/* Read exactly len bytes from fd within ms; false at its end or timeout. */
static bool read_full(int fd, void *buf, size_t len, unsigned int ms)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, (int)ms) <= 0)
			return false;
		n = read(fd, (uint8_t *)buf + got, len - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* Is fd at its end (closed by snapvm) within ms? */
static bool closed(int fd, unsigned int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c;

	return poll(&p, 1, (int)ms) == 1 && read(fd, &c, 1) == 0;
}

/*
 * A host client connected to guest port 52 and accepted by the guest (it
 * answered the REQUEST with buf_alloc): the client's fd, the host port.
 */
static int host_open(struct rig *r, uint32_t buf_alloc, uint32_t *port)
{
	int fd = unix_connect(r->path);
	char line[32];
	struct hdr h;
	int n;

	assert_int_equal(write(fd, "CONNECT 52\n", 11), 11);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, REQUEST);
	assert_int_equal(h.dst_port, 52);
	assert_true(h.src_port >= 1u << 30);
	assert_int_equal(h.buf_alloc, 256u << 10);
	*port = h.src_port;
	send_pkt(r, (struct hdr){ .src_port = 52, .dst_port = *port,
				  .op = RESPONSE, .buf_alloc = buf_alloc }, NULL);
	n = snprintf(line, sizeof(line), "OK %u\n", *port);
	{
		char got[32] = { 0 };

		assert_true(read_full(fd, got, (size_t)n, 2000));
		assert_string_equal(got, line);
	}
	return fd;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_create_refusals(void **unused)
{
	struct snap_err err = { "" };
	struct dev_config cfg = { 0 };
	struct dev_host host = { .cfg = &cfg };
	char *dir = test_tmpdir(), path[200];
	struct stat st;
	void *dev;

	assert_int_equal(dev_virtio_vsock.create(&host, &dev, &err),
			 DEV_ABSENT);
	snprintf(path, sizeof(path), "%s/file", dir);
	test_write_file(path, "x", 1);
	cfg.vsock = path;
	assert_int_equal(dev_virtio_vsock.create(&host, &dev, &err),
			 -EADDRINUSE);
	assert_non_null(strstr(err.msg, "already exists"));
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	memset(path, 'a', 97);
	path[97] = '\0';
	assert_int_equal(dev_virtio_vsock.create(&host, &dev, &err),
			 -ENAMETOOLONG);
	assert_non_null(strstr(err.msg, "longer than 96 bytes"));
	assert_null(strchr(err.msg, '\n'));
	test_rmtree(dir);
	free(dir);
}

static void test_host_to_guest(void **unused)
{
	struct rig *r = rig_new();
	uint8_t data[64];
	uint32_t port, v = 0;
	struct stat st;
	struct hdr h;
	int fd;

	assert_int_equal(stat(r->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	bring_up(r);
	/* The CID in the configuration, le64. */
	v = (uint32_t)mmio(r, B_DEVICE, false, 4, 0);
	assert_int_equal(v, GUEST_CID);
	assert_int_equal(mmio(r, B_DEVICE + 4, false, 4, 0), 0);
	for (int i = 0; i < 8; i++)
		post_rx(r, 4096 + HDR);
	fd = host_open(r, 65536, &port);

	assert_int_equal(write(fd, "ping", 4), 4);
	assert_true(recv_pkt(r, 2000, &h, data));
	assert_int_equal(h.op, RW);
	assert_int_equal(h.len, 4);
	assert_memory_equal(data, "ping", 4);
	assert_int_equal(h.src_port, port);
	assert_int_equal(h.dst_port, 52);

	send_pkt(r, (struct hdr){ .src_port = 52, .dst_port = port, .op = RW,
				  .len = 4, .buf_alloc = 65536 }, "pong");
	assert_true(read_full(fd, data, 4, 2000));
	assert_memory_equal(data, "pong", 4);

	/* A credit request is answered with our fwd_cnt: 4 bytes went on. */
	send_pkt(r, (struct hdr){ .src_port = 52, .dst_port = port,
				  .op = CREDIT_REQUEST,
				  .buf_alloc = 65536 }, NULL);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, CREDIT_UPDATE);
	assert_int_equal(h.fwd_cnt, 4);

	/* The host's end: a SHUTDOWN; the guest's full shutdown: an RST. */
	shutdown(fd, SHUT_WR);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, SHUTDOWN);
	assert_true(h.flags & 2);
	send_pkt(r, (struct hdr){ .src_port = 52, .dst_port = port,
				  .op = SHUTDOWN, .flags = 3 }, NULL);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, RST);
	assert_true(closed(fd, 2000));
	close(fd);

	/* A guest that refuses: the client sees the end, no "OK". */
	fd = unix_connect(r->path);
	assert_int_equal(write(fd, "CONNECT 9\n", 10), 10);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, REQUEST);
	send_pkt(r, (struct hdr){ .src_port = 9, .dst_port = h.src_port,
				  .op = RST }, NULL);
	assert_true(closed(fd, 2000));
	close(fd);

	/* A guest that never answers: closed after 2 s, and an RST for it. */
	fd = unix_connect(r->path);
	assert_int_equal(write(fd, "CONNECT 10\n", 11), 11);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, REQUEST);
	assert_false(closed(fd, 1500));
	assert_true(closed(fd, 1500));
	close(fd);
	port = h.src_port;
	assert_true(recv_pkt(r, 500, &h, NULL));
	assert_int_equal(h.op, RST);
	assert_int_equal(h.src_port, port);

	/* Not a CONNECT line: closed, the guest hears nothing. */
	fd = unix_connect(r->path);
	assert_int_equal(write(fd, "CONNECT x\n", 10), 10);
	assert_true(closed(fd, 2000));
	close(fd);
	assert_false(recv_pkt(r, 100, &h, NULL));
	tx_drained(r);
	rig_free(r);
}

/* The guest never gets more than its credit; more after CREDIT_UPDATE. */
static void test_credit_to_guest(void **unused)
{
	struct rig *r = rig_new();
	static uint8_t big[20000];
	uint32_t port, got = 0;
	struct hdr h;
	int fd;

	bring_up(r);
	for (int i = 0; i < 16; i++)
		post_rx(r, 4096 + HDR);
	fd = host_open(r, 3000, &port);
	memset(big, 0x5a, sizeof(big));
	assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	while (recv_pkt(r, 300, &h, NULL)) {
		assert_int_equal(h.op, RW);
		got += h.len;
	}
	assert_int_equal(got, 3000);
	/* The guest read 2000 of them: 2000 more may come. */
	send_pkt(r, (struct hdr){ .src_port = 52, .dst_port = port,
				  .op = CREDIT_UPDATE, .buf_alloc = 3000,
				  .fwd_cnt = 2000 }, NULL);
	while (recv_pkt(r, 300, &h, NULL))
		got += h.len;
	assert_int_equal(got, 5000);
	/* A fwd_cnt ahead of what was sent gives no credit at all. */
	send_pkt(r, (struct hdr){ .src_port = 52, .dst_port = port,
				  .op = CREDIT_UPDATE, .buf_alloc = 3000,
				  .fwd_cnt = 90000 }, NULL);
	assert_false(recv_pkt(r, 300, &h, NULL));
	close(fd);
	rig_free(r);
}

/* The guest connects to PATH_P; refused where nobody listens. */
static void test_guest_to_host(void **unused)
{
	struct rig *r = rig_new();
	char lpath[108], buf[16];
	struct hdr h;
	int lfd, fd;

	assert_true((size_t)snprintf(lpath, sizeof(lpath), "%s_7000",
				     r->path) < sizeof(lpath));
	lfd = unix_listen(lpath);
	bring_up(r);
	for (int i = 0; i < 8; i++)
		post_rx(r, 4096 + HDR);
	send_pkt(r, (struct hdr){ .src_port = 1234, .dst_port = 7000,
				  .op = REQUEST, .buf_alloc = 65536 }, NULL);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, RESPONSE);
	assert_int_equal(h.src_port, 7000);
	assert_int_equal(h.dst_port, 1234);
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	send_pkt(r, (struct hdr){ .src_port = 1234, .dst_port = 7000,
				  .op = RW, .len = 5, .buf_alloc = 65536 },
		 "hello");
	assert_true(read_full(fd, buf, 5, 2000));
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(write(fd, "back", 4), 4);
	assert_true(recv_pkt(r, 2000, &h, buf));
	assert_int_equal(h.op, RW);
	assert_memory_equal(buf, "back", 4);

	/* No PATH_7001: an RST, at once. */
	send_pkt(r, (struct hdr){ .src_port = 1235, .dst_port = 7001,
				  .op = REQUEST }, NULL);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, RST);
	assert_int_equal(h.src_port, 7001);
	assert_int_equal(h.dst_port, 1235);
	close(fd);
	close(lfd);
	rig_free(r);
}

/* Hostile packets: resets or nothing, and the device goes on. */
static void test_hostile_guest(void **unused)
{
	struct rig *r = rig_new();
	static uint8_t junk[(256u << 10) + 1];
	uint32_t port, lens[1] = { 20 };
	uint16_t id;
	uint32_t len;
	struct hdr h;
	int fd;

	bring_up(r);
	for (int i = 0; i < 16; i++)
		post_rx(r, 4096 + HDR);
	/* A header cut short: taken back, nothing said. */
	post(r, TX, 1, lens, false);
	assert_true(used(r, TX, 2000, &id, &len));
	assert_int_equal(len, 0);
	/* Another CID's address as the source: dropped. */
	send_pkt(r, (struct hdr){ .src_cid = 99, .src_port = 1,
				  .dst_port = 2, .op = RW }, NULL);
	/* An RW for no connection: an RST with the ports swapped. */
	send_pkt(r, (struct hdr){ .src_port = 1, .dst_port = 2, .op = RW },
		 NULL);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, RST);
	assert_int_equal(h.src_port, 2);
	assert_int_equal(h.dst_port, 1);
	/* To CID 5: an RST from CID 5. Of type 2 (seqpacket): an RST too. */
	send_pkt(r, (struct hdr){ .dst_cid = 5, .src_port = 3, .dst_port = 4,
				  .op = REQUEST }, NULL);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, RST);
	assert_int_equal(h.src_cid, 5);
	send_pkt(r, (struct hdr){ .type = 2, .src_port = 3, .dst_port = 4,
				  .op = REQUEST }, NULL);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, RST);
	assert_false(recv_pkt(r, 100, &h, NULL));

	/* On a connection: a len past its buffers resets it. */
	fd = host_open(r, 65536, &port);
	{
		uint32_t two[2] = { HDR, 8 };
		uint8_t *b = ram(r, slot_gpa(TX, r->q[TX].next_desc % QSIZE),
				 HDR + 8);

		hdr_put(b, &(struct hdr){ .src_cid = GUEST_CID, .dst_cid = 2,
					  .src_port = 52, .dst_port = port,
					  .len = 4096, .type = 1, .op = RW });
		post(r, TX, 2, two, false);
	}
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, RST);
	assert_true(closed(fd, 2000));
	close(fd);
	/* An unknown op resets it. */
	fd = host_open(r, 65536, &port);
	send_pkt(r, (struct hdr){ .src_port = 52, .dst_port = port,
				  .op = 99 }, NULL);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, RST);
	assert_true(closed(fd, 2000));
	close(fd);
	/* More than our 256 KiB of credit in one packet resets it. */
	fd = host_open(r, 65536, &port);
	{
		uint32_t two[2] = { HDR, sizeof(junk) };
		uint8_t *b = ram(r, BIG, HDR + sizeof(junk));

		hdr_put(b, &(struct hdr){ .src_cid = GUEST_CID, .dst_cid = 2,
					  .src_port = 52, .dst_port = port,
					  .len = sizeof(junk), .type = 1,
					  .op = RW });
		memcpy(b + HDR, junk, sizeof(junk));
		post_at(r, TX, BIG, 2, two, false);
	}
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, RST);
	assert_true(closed(fd, 2000));
	close(fd);
	tx_drained(r);

	/*
	 * A flood of strays: the device owes at most 64 resets beyond the rx
	 * buffers it has, and leaves the rest of the tx queue alone until the
	 * guest gives it more.
	 */
	while (recv_pkt(r, 100, &h, NULL))
		;
	{
		unsigned int rx_left = (uint16_t)(r->q[RX].avail_idx -
						  r->q[RX].last_used);
		uint16_t tx0 = r->q[TX].last_used, tx_done = 0;
		unsigned int rsts = 0;

		tx_drained(r);
		tx0 = r->q[TX].last_used;
		for (int i = 0; i < 200; i++)
			send_pkt(r, (struct hdr){ .src_port = 100u + i,
						  .dst_port = 9, .op = RW },
				 NULL);
		usleep(300000);
		tx_done = (uint16_t)(__atomic_load_n((uint16_t *)ram(r,
				r->q[TX].used + 2, 2), __ATOMIC_ACQUIRE) - tx0);
		assert_int_equal(tx_done, rx_left + 64);
		while (recv_pkt(r, 100, &h, NULL))
			rsts += h.op == RST;
		assert_int_equal(rsts, rx_left);
		for (int i = 0; i < 200; i++)
			post_rx(r, 4096 + HDR);
		while (recv_pkt(r, 300, &h, NULL)) {
			assert_int_equal(h.op, RST);
			assert_int_equal(h.src_port, 9);
			rsts++;
		}
		assert_int_equal(rsts, 200);
	}
	tx_drained(r);
	assert_int_equal(mmio(r, C_STATUS, false, 1, 0) &
			 VIRTIO_STATUS_NEEDS_RESET, 0);
	rig_free(r);
}

/* Save quiesces until resume; a restore resets the guest's connections. */
static void test_save_restore(void **unused)
{
	struct rig *r = rig_new(), *r2;
	struct snap_err err = { "" };
	uint8_t *buf, *ev;
	uint32_t port;
	size_t len;
	struct hdr h;
	uint16_t id, rx_at_save;
	uint32_t ulen;
	int fd;

	bring_up(r);
	for (int i = 0; i < 8; i++)
		post_rx(r, 4096 + HDR);
	{
		uint32_t four = 4;

		post(r, EV, 1, &four, true);
	}
	fd = host_open(r, 65536, &port);
	assert_int_equal(dev_virtio_vsock.save(r->dev, &buf, &len), 0);
	rx_at_save = r->q[RX].last_used;
	assert_int_equal(write(fd, "late", 4), 4);
	assert_false(recv_pkt(r, 300, &h, NULL));	/* quiesced */
	dev_virtio_vsock.resume(r->dev);
	assert_true(recv_pkt(r, 2000, &h, NULL));
	assert_int_equal(h.op, RW);
	dev_virtio_vsock.destroy(r->dev);
	pci_bus_destroy(r->bus);
	close(fd);

	/*
	 * Restored in the same RAM, on a new bus with a new socket: the
	 * queues are as they were at the save (the rx buffer used since is
	 * available again) and the event buffer still waits.
	 */
	r2 = calloc(1, sizeof(*r2));
	assert_non_null(r2);
	*r2 = *r;
	assert_int_equal(pci_bus_create(&r2->bus, -1, &err), 0);
	snprintf(r2->path, sizeof(r2->path), "%s/v2.sock", r->dir);
	r2->cfg = (struct dev_config){ .vsock = r2->path };
	{
		struct dev_host host = { .pci = r2->bus, .mem = r->mem,
					 .cfg = &r2->cfg };

		if (dev_virtio_vsock.create(&host, &r2->dev, &err))
			fail_msg("create: %s", err.msg);
	}
	/* RAM as it was at the save: the used rx entry after it undone. */
	r2->q[RX].last_used = rx_at_save;
	put_le(ram(r, r->q[RX].used + 2, 2), 2, rx_at_save);
	if (dev_virtio_vsock.restore(r2->dev, buf, len, &err))
		fail_msg("restore: %s", err.msg);
	free(buf);
	assert_true(used(r2, EV, 2000, &id, &ulen));
	assert_int_equal(ulen, 4);
	ev = ram(r2, slot_gpa(EV, id), 4);
	assert_int_equal(get_le(ev, 4), 0);	/* TRANSPORT_RESET */
	/* The CID is the snapshot's, and the device goes on. */
	assert_int_equal(mmio(r2, B_DEVICE, false, 4, 0), GUEST_CID);
	fd = unix_connect(r2->path);
	assert_int_equal(write(fd, "CONNECT 52\n", 11), 11);
	assert_true(recv_pkt(r2, 2000, &h, NULL));
	assert_int_equal(h.op, REQUEST);
	close(fd);
	rig_free(r2);		/* r's device and bus went already */
	free(r);
}

/* ---- the device path's throughput ---------------------------------------------- */

struct pump {
	int fd;
	uint64_t bytes;
};

static void *host_writer(void *arg)
{
	struct pump *p = arg;
	static uint8_t chunk[1 << 16];
	uint64_t left = p->bytes;

	while (left) {
		ssize_t n = write(p->fd, chunk, left < sizeof(chunk) ?
				  left : sizeof(chunk));

		if (n <= 0)
			break;
		left -= (uint64_t)n;
	}
	return NULL;
}

static void *host_reader(void *arg)
{
	struct pump *p = arg;
	static uint8_t chunk[1 << 16];

	for (;;) {
		ssize_t n = read(p->fd, chunk, sizeof(chunk));

		if (n <= 0)
			break;
		p->bytes += (uint64_t)n;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_throughput(void **unused)
{
	const uint64_t total = 256ull << 20;
	struct rig *r = rig_new();
	struct pump p;
	pthread_t t;
	uint64_t got = 0, t0, sent = 0;
	uint32_t port, fwd = 0;
	struct hdr h;
	int fd;

	bring_up(r);
	for (int i = 0; i < 32; i++)
		post_rx(r, (64u << 10) + HDR);
	fd = host_open(r, 1u << 20, &port);

	/* Round trips: a byte from the host, echoed by the guest. */
	{
		static uint64_t us[1000];
		char c = 'x';

		for (unsigned int i = 0; i < 1000; i++) {
			uint64_t t1 = now_us();

			assert_int_equal(write(fd, &c, 1), 1);
			assert_true(recv_pkt(r, 2000, &h, &c));
			post_rx(r, (64u << 10) + HDR);
			send_pkt(r, (struct hdr){ .src_port = 52,
						  .dst_port = port, .op = RW,
						  .len = 1,
						  .buf_alloc = 1u << 20,
						  .fwd_cnt = i + 1 }, &c);
			assert_true(read_full(fd, &c, 1, 2000));
			us[i] = now_us() - t1;
		}
		qsort(us, 1000, sizeof(us[0]), cmp_u64);
		print_message("# device path, round trip host-guest-host: "
			      "median %llu us, p99 %llu us\n",
			      (unsigned long long)us[500],
			      (unsigned long long)us[990]);
		got = 1000;
	}
	p = (struct pump){ fd, total };
	assert_int_equal(pthread_create(&t, NULL, host_writer, &p), 0);
	t0 = now_us();
	while (got < total + 1000) {
		assert_true(recv_pkt(r, 2000, &h, NULL));
		assert_int_equal(h.op, RW);
		got += h.len;
		fwd += h.len;
		post_rx(r, (64u << 10) + HDR);
		if (fwd >= 256u << 10) {	/* as Linux: credit now and then */
			send_pkt(r, (struct hdr){ .src_port = 52,
						  .dst_port = port,
						  .op = CREDIT_UPDATE,
						  .buf_alloc = 1u << 20,
						  .fwd_cnt = (uint32_t)got },
				 NULL);
			fwd = 0;
		}
	}
	pthread_join(t, NULL);
	print_message("# device path, host to guest: %.0f MiB/s (256 MiB, "
		      "64 KiB rx buffers)\n", (double)total / (1 << 20) /
		      ((double)(now_us() - t0) / 1e6));
	tx_drained(r);

	/* Guest to host: 64 KiB packets within our 256 KiB of credit. */
	{
		static uint8_t payload[64u << 10];
		uint32_t peer_fwd = 0;

		p = (struct pump){ fd, 0 };
		assert_int_equal(pthread_create(&t, NULL, host_reader, &p), 0);
		t0 = now_us();
		while (sent < total) {
			uint16_t id;
			uint32_t len;

			while (sent - peer_fwd + sizeof(payload) > 256u << 10) {
				assert_true(recv_pkt(r, 2000, &h, NULL));
				post_rx(r, (64u << 10) + HDR);
				if (h.op == CREDIT_UPDATE || h.op == RW)
					peer_fwd = h.fwd_cnt;
			}
			while ((uint16_t)(r->q[TX].avail_idx -
					  r->q[TX].last_used) > QSIZE / 2 - 2)
				assert_true(used(r, TX, 2000, &id, &len));
			send_pkt(r, (struct hdr){ .src_port = 52,
						  .dst_port = port, .op = RW,
						  .len = sizeof(payload),
						  .buf_alloc = 1u << 20,
						  .fwd_cnt = (uint32_t)got },
				 payload);
			sent += sizeof(payload);
		}
		tx_drained(r);
		send_pkt(r, (struct hdr){ .src_port = 52, .dst_port = port,
					  .op = SHUTDOWN, .flags = 3 }, NULL);
		pthread_join(t, NULL);
		assert_int_equal(p.bytes, total);
		print_message("# device path, guest to host: %.0f MiB/s (256 "
			      "MiB, 64 KiB packets)\n",
			      (double)total / (1 << 20) /
			      ((double)(now_us() - t0) / 1e6));
	}
	close(fd);
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_refusals),
		cmocka_unit_test(test_host_to_guest),
		cmocka_unit_test(test_credit_to_guest),
		cmocka_unit_test(test_guest_to_host),
		cmocka_unit_test(test_hostile_guest),
		cmocka_unit_test(test_save_restore),
		cmocka_unit_test(test_throughput),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
