/* SPDX-License-Identifier: MIT */
#include "vmm/control.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/control_req.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

#define CONTROL_MAX_CLIENTS	8
#define CONTROL_BACKLOG		8

struct control_client {
	int fd;			/* -1: free */
	size_t len;
	char buf[CONTROL_LINE_MAX];
};

struct control {
	char *path;
	int listen_fd;
	int stop_fd;
	struct vm *vm;
	struct saver *saver;
	pthread_t thread;
	bool started;
	struct control_client clients[CONTROL_MAX_CLIENTS];
};

/* ---- requests ----------------------------------------------------------- */

static void req_status(struct control *c, const struct control_request *r,
		       char *resp, size_t len)
{
	snprintf(resp, len, "ok %s cpus=%u mem=%llu",
		 vm_paused(c->vm) ? "paused" : "running", vm_cpus(c->vm),
		 (unsigned long long)vm_mem_size(c->vm));
}

static void req_pause(struct control *c, const struct control_request *r,
		      char *resp, size_t len)
{
	int ret = vm_pause(c->vm);

	if (ret)
		snprintf(resp, len, "error pause: %s", strerror(-ret));
	else
		snprintf(resp, len, "ok paused");
}

static void req_resume(struct control *c, const struct control_request *r,
		       char *resp, size_t len)
{
	vm_resume(c->vm);
	snprintf(resp, len, "ok running");
}

static void req_quit(struct control *c, const struct control_request *r,
		     char *resp, size_t len)
{
	snprintf(resp, len, "ok quitting");
	vm_request_exit(c->vm, 0, NULL);
}

static void hex_id(const uint8_t *id, char *out)
{
	for (unsigned int i = 0; i < SNAP_ID_LEN; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
}

static void req_snapshot(struct control *c, const struct control_request *r,
			 char *resp, size_t len)
{
	char id[2 * SNAP_ID_LEN + 1];
	struct saver_result res;
	struct snap_err err;

	if (!c->saver) {
		snprintf(resp, len, "error snapshot: not available");
		return;
	}
	if (saver_save(c->saver, r->dir, r->parent, &res, &err)) {
		snprintf(resp, len, "error snapshot %.1024s: %.2048s", r->dir,
			 err.msg);
		return;
	}
	hex_id(res.id, id);
	snprintf(resp, len, "ok snapshot %.2048s id=%s kind=%s copied=%llu "
		 "written=%llu paused_ms=%llu.%03llu", r->dir, id,
		 res.diff ? "diff" : "full", (unsigned long long)res.copied,
		 (unsigned long long)res.written,
		 (unsigned long long)(res.paused_us / 1000),
		 (unsigned long long)(res.paused_us % 1000));
}

/* What runs each command of control_req.h. */
static void (*const control_run[])(struct control *c,
				   const struct control_request *r,
				   char *resp, size_t len) = {
	[CONTROL_STATUS] = req_status,
	[CONTROL_PAUSE] = req_pause,
	[CONTROL_RESUME] = req_resume,
	[CONTROL_QUIT] = req_quit,
	[CONTROL_SNAPSHOT] = req_snapshot,
};

/* Answer one request line (no '\n') into resp. */
static void control_dispatch(struct control *c, char *line, char *resp,
			     size_t len)
{
	struct control_request r;

	if (!control_parse(line, &r, resp, len))
		control_run[r.cmd](c, &r, resp, len);
}

/* ---- the socket --------------------------------------------------------- */

static void client_close(struct control_client *cl)
{
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
}

static void client_reply(struct control_client *cl, const char *resp)
{
	char line[CONTROL_LINE_MAX + 1];
	int n = snprintf(line, sizeof(line), "%s\n", resp);

	if (send(cl->fd, line, (size_t)n, MSG_NOSIGNAL) != n)
		client_close(cl);
}

/* Read what the client sent; answer every complete line. */
static void client_input(struct control *c, struct control_client *cl)
{
	char resp[CONTROL_LINE_MAX - 1];
	ssize_t n;
	char *nl;

	n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, 0);
	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		client_close(cl);
		return;
	}
	cl->len += (size_t)n;
	while (cl->fd >= 0 && (nl = memchr(cl->buf, '\n', cl->len))) {
		size_t used = (size_t)(nl - cl->buf) + 1;

		*nl = '\0';
		if (nl > cl->buf && nl[-1] == '\r')
			nl[-1] = '\0';
		control_dispatch(c, cl->buf, resp, sizeof(resp));
		client_reply(cl, resp);
		memmove(cl->buf, cl->buf + used, cl->len - used);
		cl->len -= used;
	}
	if (cl->fd >= 0 && cl->len == sizeof(cl->buf)) {
		client_reply(cl, "error request too long");
		if (cl->fd >= 0)
			client_close(cl);
	}
}

/*
 * Only snapvm's own user and root may drive the VM: a request can pause it
 * or have snapvm write a snapshot wherever snapvm may write. The socket's
 * mode (0600) keeps other users out already; this holds when someone
 * widened that mode, or when a connection reached us some other way. A
 * refused client gets one error line; snapvm logs one line naming it.
 */
static bool peer_allowed(const struct control *c, int fd)
{
	char line[128];
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int n;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		fprintf(stderr, "snapvm: --control %s: SO_PEERCRED: %s\n",
			c->path, strerror(errno));
		return false;
	}
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	fprintf(stderr, "snapvm: --control %s: refused a client of uid %u "
		"(pid %d)\n", c->path, (unsigned int)cr.uid, (int)cr.pid);
	n = snprintf(line, sizeof(line), "error permission denied: uid %u is "
		     "neither snapvm's user nor root\n", (unsigned int)cr.uid);
	send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	return false;
}

static void control_accept(struct control *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (!peer_allowed(c, fd)) {
		close(fd);
		return;
	}
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (c->clients[i].fd < 0) {
			c->clients[i].fd = fd;
			c->clients[i].len = 0;
			return;
		}
	}
	send(fd, "error too many clients\n", 23, MSG_NOSIGNAL);
	close(fd);
}

static void *control_thread(void *arg)
{
	struct control *c = arg;
	struct pollfd pfd[2 + CONTROL_MAX_CLIENTS];
	int slot[2 + CONTROL_MAX_CLIENTS];

	for (;;) {
		nfds_t n = 0;

		pfd[n++] = (struct pollfd){ .fd = c->stop_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
		for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
			if (c->clients[i].fd < 0)
				continue;
			slot[n] = i;
			pfd[n++] = (struct pollfd){ .fd = c->clients[i].fd,
						    .events = POLLIN };
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		for (nfds_t i = 2; i < n; i++)
			if (pfd[i].revents)
				client_input(c, &c->clients[slot[i]]);
		if (pfd[1].revents & POLLIN)
			control_accept(c);
	}
	return NULL;
}

/* Is someone listening on the socket at path? */
static int socket_in_use(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	ret = ret == 0 ? 1 : errno == ECONNREFUSED ? 0 : -errno;
	close(fd);
	return ret;
}

static int prepare_path(const char *path, const struct sockaddr_un *addr,
			struct snap_err *err)
{
	struct stat st;
	int ret;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : snap_err_set(err, -errno, "%s",
							  strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return snap_err_set(err, -EEXIST, "exists and is not a socket");
	ret = socket_in_use(addr);
	if (ret > 0)
		return snap_err_set(err, -EADDRINUSE, "in use (another process "
				    "is listening)");
	if (ret < 0)
		return snap_err_set(err, ret, "%s", strerror(-ret));
	if (unlink(path) < 0)				/* stale */
		return snap_err_set(err, -errno, "%s", strerror(errno));
	return 0;
}

/*
 * Bind under umask 0177, so that the socket is 0600 from the moment it
 * exists whatever snapvm's umask: a chmod after bind() would leave a
 * moment in which anyone allowed by the umask could connect. The umask is
 * the process's, not the thread's; this is safe because control_create
 * runs before snapvm starts any thread (control.h), so nothing else can
 * create a file under the narrowed umask.
 */
static int bind_private(int fd, const struct sockaddr_un *addr)
{
	mode_t old = umask(0177);
	int ret = bind(fd, (const struct sockaddr *)addr, sizeof(*addr));
	int saved = errno;

	umask(old);
	return ret < 0 ? -saved : 0;
}

int control_create(struct control **out, const char *path,
		   struct snap_err *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct control *c;
	int ret;

	if (strlen(path) >= sizeof(addr.sun_path))
		return snap_err_set(err, -ENAMETOOLONG, "path longer than %zu "
				    "bytes", sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	ret = prepare_path(path, &addr, err);
	if (ret)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c)
		return snap_err_set(err, -ENOMEM, "out of memory");
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	c->stop_fd = -1;
	c->path = strdup(path);
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!c->path || c->listen_fd < 0) {
		ret = snap_err_set(err, c->path ? -errno : -ENOMEM, "%s",
				   c->path ? strerror(errno) : "out of memory");
		goto err_free;
	}
	ret = bind_private(c->listen_fd, &addr);
	if (ret) {
		ret = snap_err_set(err, ret, "%s", ret == -EADDRINUSE ?
				   "in use" : strerror(-ret));
		goto err_free;
	}
	if (listen(c->listen_fd, CONTROL_BACKLOG) < 0) {
		ret = snap_err_set(err, -errno, "%s", strerror(errno));
		goto err_unlink;
	}
	*out = c;
	return 0;

err_unlink:
	unlink(path);
err_free:
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	free(c->path);
	free(c);
	return ret;
}

int control_start(struct control *c, struct vm *vm, struct saver *saver,
		  struct snap_err *err)
{
	int ret;

	c->vm = vm;
	c->saver = saver;
	c->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (c->stop_fd < 0)
		return snap_err_set(err, -errno, "eventfd: %s", strerror(errno));
	ret = -pthread_create(&c->thread, NULL, control_thread, c);
	if (ret)
		return snap_err_set(err, ret, "control thread: %s",
				    strerror(-ret));
	c->started = true;
	return 0;
}

void control_destroy(struct control *c)
{
	if (!c)
		return;
	if (c->started) {
		eventfd_write(c->stop_fd, 1);
		pthread_join(c->thread, NULL);
	}
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0)
			close(c->clients[i].fd);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	close(c->listen_fd);
	unlink(c->path);
	free(c->path);
	free(c);
}
