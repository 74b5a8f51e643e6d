/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock (--vsock PATH): stream sockets between the guest and host
 * programs, served in userspace as Firecracker does, over unix sockets:
 *
 *   the guest connects to CID 2 port P  ->  snapvm connects to PATH_P
 *   a host program connects to PATH and writes "CONNECT P\n"  ->  the
 *     guest's port P; once the guest accepts, snapvm answers
 *     "OK <host port>\n"; a refusal closes the connection
 *
 * then bytes both ways. Three queues: rx (packets to the guest), tx (from
 * it), event (the transport reset after a restore); the configuration is
 * the guest's CID. docs/snapvm.md has the host's side; vsock.h says which
 * file does what.
 *
 * Threads: the vCPU that notifies only kicks the device thread (an
 * eventfd). The device thread waits in epoll on the listening socket, the
 * connections and the kick, and does all the work under v->lock, a
 * bounded batch at a time. Descriptors are popped and pushed within one
 * hold of the lock, so none is in flight while the lock is free.
 *
 * Flow control is the spec's credit scheme both ways: the guest gets at
 * most its buf_alloc - (tx_cnt - fwd_cnt) bytes, and a host socket is
 * read only while that credit and an rx buffer exist; the guest may send
 * what fits the CONN_BUF we advertise (vsock_conn.c). Nothing grows with
 * what the guest says: connections, owed resets and a pass are bounded.
 *
 * At a snapshot, save stops the thread from touching guest memory
 * (quiesced) until resume, so RAM is written as the transport state says.
 * Connections are not saved. A restore resets every connection the guest
 * had by sending VIRTIO_VSOCK_EVENT_TRANSPORT_RESET once the guest has an
 * event buffer posted; the rx buffers it had posted stay posted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/dev/dev.h"
#include "vmm/dev/vsock.h"

#define VSOCK_QUEUES		3
#define VSOCK_CONFIG_LEN	8	/* le64 guest_cid */
#define BATCH			256	/* packets a pass moves, then unlock */

#define TAG_LISTEN		(~0ull)
#define TAG_KICK		(~0ull - 1)

static void kick(struct vsock *s)
{
	eventfd_write(s->kick_fd, 1);
}

/* ---- the device thread ---------------------------------------------------------- */

static void mark(struct vsock *s, const struct epoll_event *ev)
{
	struct conn *c;
	eventfd_t n;

	if (ev->data.u64 == TAG_KICK) {
		eventfd_read(s->kick_fd, &n);
		return;
	}
	if (ev->data.u64 == TAG_LISTEN) {
		s->accept_ready = true;
		return;
	}
	c = &s->conns[(uint32_t)ev->data.u64 % CONN_MAX];
	if (c->state == CONN_FREE || c->gen != ev->data.u64 >> 32)
		return;		/* closed since: a stale event */
	if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	if (ev->events & EPOLLHUP)
		c->hup = true;
}

/* One pass: at most BATCH packets, then the lock goes to the vCPUs. */
static int work(struct vsock *s)
{
	unsigned int budget = BATCH, n;
	int timeout;

	if (s->accept_ready)
		vsock_conn_accept(s);
	for (unsigned int i = 0; i < CONN_MAX; i++) {
		struct conn *c = &s->conns[i];

		if (c->state == CONN_LINE && c->readable)
			vsock_conn_read_line(s, c);
	}
	timeout = vsock_conn_expire(s);
	vsock_event_fill(s);
	do {
		n = 0;
		/* Resets for strays are bounded: leave tx packets queued. */
		while (n < budget && s->n_rst < RST_MAX &&
		       virtq_pop(&s->v, Q_TX, &s->req) == 1) {
			vsock_tx_packet(s, &s->req);
			virtq_push(&s->v, Q_TX, s->req.head, 0);
			n++;
		}
		for (unsigned int i = 0; i < CONN_MAX; i++)
			if (s->conns[i].state == CONN_OPEN)
				vsock_conn_flush(&s->conns[i]);
		n += vsock_rx_fill(s, budget - n);
		budget -= n;
	} while (n && budget);
	virtq_notify(&s->v, Q_TX);
	virtq_notify(&s->v, Q_RX);
	if (!budget) {
		kick(s);	/* more to do once the vCPUs had their turn */
		timeout = 0;
	}
	return timeout;
}

static void *vsock_thread(void *arg)
{
	struct vsock *s = arg;
	struct epoll_event ev[64];
	int timeout = -1;

	for (;;) {
		int n = epoll_wait(s->epfd, ev, 64, timeout);

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "snapvm: %s: epoll_wait: %m; the device "
				"stops\n", s->v.name);
			return NULL;
		}
		pthread_mutex_lock(&s->v.lock);
		if (s->stopping) {
			pthread_mutex_unlock(&s->v.lock);
			return NULL;
		}
		for (int i = 0; i < n; i++)
			mark(s, &ev[i]);
		timeout = s->quiesced ? -1 : work(s);
		pthread_mutex_unlock(&s->v.lock);
	}
}

/* ---- virtio callbacks (vCPU threads, v->lock held) --------------------------- */

static void vsock_notify(struct virtio_dev *v, unsigned int q)
{
	kick((struct vsock *)v);
}

static void vsock_driver_ok(struct virtio_dev *v)
{
	kick((struct vsock *)v);
}

/* The driver reset the device: its connections are gone with it. */
static void vsock_reset(struct virtio_dev *v)
{
	struct vsock *s = (struct vsock *)v;

	vsock_conn_drop_all(s);
	s->reset_pending = false;
}

/* The guest's CID, le64 (offset and size within it: virtio.c checks). */
static void vsock_config_read(struct virtio_dev *v, uint32_t offset,
			      uint8_t *data, unsigned int size)
{
	uint64_t cid = ((struct vsock *)v)->guest_cid;

	for (unsigned int i = 0; i < size; i++)
		data[i] = (uint8_t)(cid >> (8 * (offset + i)));
}

static const struct virtio_ops vsock_virtio_ops = {
	.notify = vsock_notify,
	.config_read = vsock_config_read,
	.reset = vsock_reset,
	.driver_ok = vsock_driver_ok,
};

/* ---- the device ------------------------------------------------------------------ */

static void vsock_destroy(void *state)
{
	struct vsock *s = state;

	if (s->thread_started) {
		pthread_mutex_lock(&s->v.lock);
		s->stopping = true;
		pthread_mutex_unlock(&s->v.lock);
		kick(s);
		pthread_join(s->thread, NULL);
	}
	vsock_conn_drop_all(s);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->kick_fd >= 0)
		close(s->kick_fd);
	if (s->v_ready)
		virtio_release(&s->v);
	free(s);
}

/* Listen at PATH, a new socket only the user may use. */
static int vsock_listen(struct vsock *s, struct snap_err *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	strcpy(addr.sun_path, s->path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
			      SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		return snap_err_set(err, -errno, "--vsock %s: %m", s->path);
	/* The mode of the socket's inode is the file's at bind (Linux). */
	if (fchmod(s->listen_fd, 0600) < 0 ||
	    bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;

		close(s->listen_fd);
		s->listen_fd = -1;
		return snap_err_set(err, -e, "--vsock %s: %s", s->path,
				    e == EADDRINUSE ? "already exists" :
				    strerror(e));
	}
	if (listen(s->listen_fd, CONN_MAX) < 0)
		return snap_err_set(err, -errno, "--vsock %s: %m", s->path);
	return 0;
}

static int vsock_watch(struct vsock *s, int fd, uint64_t tag,
		       struct snap_err *err)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET,
				  .data.u64 = tag };

	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return snap_err_set(err, -errno, "%s: epoll: %m", s->v.name);
	return 0;
}

static int vsock_create(const struct dev_host *host, void **state,
			struct snap_err *err)
{
	const struct dev_config *cfg = host->cfg;
	struct vsock *s;
	int ret;

	if (!cfg || !cfg->vsock)
		return DEV_ABSENT;
	if (strlen(cfg->vsock) + PORT_SUFFIX_MAX >= sizeof(s->path))
		return snap_err_set(err, -ENAMETOOLONG, "--vsock %s: longer "
				    "than %zu bytes (PATH_PORT must fit a unix "
				    "socket address)", cfg->vsock,
				    sizeof(s->path) - PORT_SUFFIX_MAX - 1);
	if (cfg->vsock_cid && cfg->vsock_cid < SNAP_VSOCK_CID_MIN)
		return snap_err_set(err, -EINVAL, "--cid %u: 3 to %u expected",
				    cfg->vsock_cid, SNAP_VSOCK_CID_MAX);
	s = calloc(1, sizeof(*s));
	if (!s)
		return snap_err_set(err, -ENOMEM, "out of memory");
	s->listen_fd = s->epfd = s->kick_fd = -1;
	strcpy(s->path, cfg->vsock);
	s->cfg_cid = cfg->vsock_cid;
	s->guest_cid = cfg->vsock_cid ? cfg->vsock_cid : SNAP_VSOCK_CID_MIN;
	for (unsigned int i = 0; i < CONN_MAX; i++)
		s->conns[i].fd = -1;
	s->v.name = "virtio-vsock";
	s->v.ops = &vsock_virtio_ops;
	s->v.type = VIRTIO_ID_VSOCK;
	s->v.n_queues = VSOCK_QUEUES;
	s->v.config_len = VSOCK_CONFIG_LEN;
	ret = vsock_listen(s, err);
	if (ret)
		goto err;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->epfd < 0 || s->kick_fd < 0) {
		ret = snap_err_set(err, -errno, "%s: %m", s->v.name);
		goto err;
	}
	ret = vsock_watch(s, s->listen_fd, TAG_LISTEN, err);
	if (!ret)
		ret = vsock_watch(s, s->kick_fd, TAG_KICK, err);
	if (!ret)
		ret = virtio_init(&s->v, host->pci, host->mem, err);
	if (ret)
		goto err;
	s->v_ready = true;
	ret = -pthread_create(&s->thread, NULL, vsock_thread, s);
	if (ret) {
		snap_err_set(err, ret, "%s: thread: %s", s->v.name,
			     strerror(-ret));
		goto err;
	}
	s->thread_started = true;
	*state = s;
	return 0;

err:
	vsock_destroy(s);
	return ret;
}

/*
 * Stop the thread from touching guest memory until resume: RAM is written
 * after the payloads, and must hold what the transport state says.
 */
static int vsock_save(void *state, uint8_t **buf, size_t *len)
{
	struct vsock *s = state;
	struct snap_virtio_vsock sv;

	pthread_mutex_lock(&s->v.lock);
	s->quiesced = true;
	sv.guest_cid = s->guest_cid;
	pthread_mutex_unlock(&s->v.lock);
	virtio_save(&s->v, &sv.dev);
	return snap_virtio_vsock_encode(&sv, buf, len);
}

static void vsock_resume(void *state)
{
	struct vsock *s = state;

	pthread_mutex_lock(&s->v.lock);
	s->quiesced = false;
	pthread_mutex_unlock(&s->v.lock);
	kick(s);
}

static int vsock_restore(void *state, const uint8_t *buf, size_t len,
			 struct snap_err *err)
{
	struct vsock *s = state;
	struct snap_virtio_vsock sv;
	int ret;

	ret = snap_virtio_vsock_decode(buf, len, &sv, err);
	if (!ret)
		ret = virtio_restore(&s->v, &sv.dev, err);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->v.lock);
	vsock_conn_drop_all(s);	/* host clients that came too early */
	s->guest_cid = s->cfg_cid ? s->cfg_cid : sv.guest_cid;
	s->reset_pending = s->v.status & VIRTIO_STATUS_DRIVER_OK;
	pthread_mutex_unlock(&s->v.lock);
	kick(s);
	return 0;
}

const struct dev_ops dev_virtio_vsock = {
	.name = "virtio-vsock",
	.feature = SNAP_FEATURE_VIRTIO_VSOCK,
	.create = vsock_create,
	.destroy = vsock_destroy,
	.save = vsock_save,
	.resume = vsock_resume,
	.restore = vsock_restore,
};
