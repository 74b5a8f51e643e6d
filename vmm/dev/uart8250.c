/* SPDX-License-Identifier: MIT */
/*
 * An 8250/16550A UART at COM1 (0x3f8-0x3ff, ISA IRQ 4): the guest's ttyS0.
 *
 * Transmit is instant: each byte written to THR goes to stdout with one
 * write(2) and THR is empty again at once. Receive comes from stdin through
 * a thread that reads only when the receive FIFO has room (no busy wait;
 * SNAP_UART_FIFO_MAX bytes, more than a 16550's 16). Registers: RBR/THR,
 * IER, IIR/FCR, LCR with DLAB (DLL, DLM), MCR with loopback, LSR, MSR, SCR.
 * Interrupts, by priority: line status, received data, THR empty (raised
 * when THRE is enabled or a byte is sent, cleared by reading IIR), none
 * for modem status. The IRQ line follows IIR's "interrupt pending".
 *
 * The register file is libsnap's struct snap_uart8250 itself, so save and
 * restore are its payload codec under the device lock.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/term.h"
#include "vmm/dev/dev.h"
#include "snapshot/format/state.h"

#define UART_BASE	0x3f8
#define UART_IRQ	4

/* Register offsets. */
#define UART_RX		0	/* RBR, THR; DLL with DLAB */
#define UART_IER	1	/* DLM with DLAB */
#define UART_IIR	2	/* FCR on write */
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_MSR	6
#define UART_SCR	7

#define IER_RDI		0x01
#define IER_THRI	0x02
#define IER_RLSI	0x04
#define IER_MASK	0x0f
#define IIR_NO_INT	0x01
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_RLSI	0x06
#define IIR_FIFO	0xc0
#define FCR_ENABLE	0x01
#define FCR_CLEAR_RX	0x02
#define FCR_CLEAR_TX	0x04
#define LCR_DLAB	0x80
#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10
#define MCR_MASK	0x1f
#define LSR_DR		0x01
#define LSR_ERRORS	0x1e
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80

struct uart {
	struct dev_host host;
	pthread_mutex_t lock;
	pthread_cond_t room;		/* the FIFO has room, or closing */
	struct snap_uart8250 r;		/* registers and FIFO: the state */
	struct term *term;
	pthread_t input;
	bool has_input;
	bool closing;
	int stop_fd;			/* eventfd: the input thread ends */
};

static const struct dev_ports uart_ports[] = {
	{ UART_BASE, 8 },
	{ 0, 0 },
};

static uint8_t uart_iir(const struct uart *u)
{
	const struct snap_uart8250 *r = &u->r;

	if ((r->ier & IER_RLSI) && (r->lsr & LSR_ERRORS))
		return IIR_RLSI;
	if ((r->ier & IER_RDI) && r->rx_len)
		return IIR_RDI;
	if ((r->ier & IER_THRI) && r->thr_irq_pending)
		return IIR_THRI;
	return IIR_NO_INT;
}

/* Bring LSR, IIR and the IRQ line up to date. Lock held. */
static void uart_update(struct uart *u)
{
	struct snap_uart8250 *r = &u->r;
	bool level;

	r->lsr = (uint8_t)((r->lsr & LSR_ERRORS) | LSR_THRE | LSR_TEMT |
			   (r->rx_len ? LSR_DR : 0));
	r->iir = uart_iir(u);
	level = !(r->iir & IIR_NO_INT);
	if (level != r->irq_level) {
		r->irq_level = level;
		u->host.irq_line(u->host.vm, UART_IRQ, level);
	}
}

static void rx_push(struct uart *u, uint8_t c)
{
	if (u->r.rx_len < SNAP_UART_FIFO_MAX)
		u->r.rx_fifo[u->r.rx_len++] = c;
}

static uint8_t rx_pop(struct uart *u)
{
	uint8_t c;

	if (!u->r.rx_len)
		return 0;
	c = u->r.rx_fifo[0];
	memmove(u->r.rx_fifo, u->r.rx_fifo + 1, --u->r.rx_len);
	pthread_cond_signal(&u->room);
	return c;
}

static void tx(struct uart *u, uint8_t c)
{
	if (u->r.mcr & MCR_LOOP) {
		rx_push(u, c);
	} else {
		while (write(STDOUT_FILENO, &c, 1) < 0 && errno == EINTR)
			;
	}
	u->r.thr_irq_pending = true;
}

static uint8_t msr(const struct uart *u)
{
	uint8_t mcr = u->r.mcr;

	if (!(mcr & MCR_LOOP))
		return u->r.msr;
	return (uint8_t)((mcr & MCR_RTS ? MSR_CTS : 0) |
			 (mcr & MCR_DTR ? MSR_DSR : 0) |
			 (mcr & MCR_OUT1 ? MSR_RI : 0) |
			 (mcr & MCR_OUT2 ? MSR_DCD : 0));
}

static uint8_t uart_read(struct uart *u, uint16_t off)
{
	struct snap_uart8250 *r = &u->r;
	bool dlab = r->lcr & LCR_DLAB;
	uint8_t v;

	switch (off) {
	case UART_RX:
		return dlab ? r->dll : rx_pop(u);
	case UART_IER:
		return dlab ? r->dlm : r->ier;
	case UART_IIR:
		v = uart_iir(u);
		if (v == IIR_THRI)
			r->thr_irq_pending = false;
		return v | (r->fcr & FCR_ENABLE ? IIR_FIFO : 0);
	case UART_LCR:
		return r->lcr;
	case UART_MCR:
		return r->mcr;
	case UART_LSR:
		v = r->lsr;
		r->lsr &= (uint8_t)~LSR_ERRORS;
		return v;
	case UART_MSR:
		return msr(u);
	default:
		return r->scr;
	}
}

static void uart_write(struct uart *u, uint16_t off, uint8_t v)
{
	struct snap_uart8250 *r = &u->r;
	bool dlab = r->lcr & LCR_DLAB;

	switch (off) {
	case UART_RX:
		if (dlab)
			r->dll = v;
		else
			tx(u, v);
		break;
	case UART_IER:
		if (dlab) {
			r->dlm = v;
			break;
		}
		if ((v & IER_THRI) && !(r->ier & IER_THRI))
			r->thr_irq_pending = true;
		r->ier = v & IER_MASK;
		break;
	case UART_IIR:
		if (v & FCR_CLEAR_RX) {
			r->rx_len = 0;
			pthread_cond_signal(&u->room);
		}
		r->fcr = v & (uint8_t)~(FCR_CLEAR_RX | FCR_CLEAR_TX);
		break;
	case UART_LCR:
		r->lcr = v;
		break;
	case UART_MCR:
		r->mcr = v & MCR_MASK;
		break;
	case UART_SCR:
		r->scr = v;
		break;
	default:			/* LSR and MSR: read only */
		break;
	}
}

static void uart_io(void *opaque, uint16_t off, bool is_write, uint8_t *data,
		    unsigned int size)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	if (is_write) {
		uart_write(u, off, data[0]);
	} else {
		memset(data, 0, size);
		data[0] = uart_read(u, off);
	}
	uart_update(u);
	pthread_mutex_unlock(&u->lock);
}

/* Wait for room in the FIFO; how much, 0 when closing. */
static size_t wait_room(struct uart *u)
{
	size_t room;

	pthread_mutex_lock(&u->lock);
	while (!u->closing && u->r.rx_len >= SNAP_UART_FIFO_MAX)
		pthread_cond_wait(&u->room, &u->lock);
	room = u->closing ? 0 : SNAP_UART_FIFO_MAX - u->r.rx_len;
	pthread_mutex_unlock(&u->lock);
	return room;
}

/* Give bytes read from stdin to the guest; false on the quit escape. */
static bool receive(struct uart *u, const uint8_t *buf, size_t n)
{
	bool quit = false;

	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < n && !quit; i++) {
		switch (term_filter(u->term, buf[i])) {
		case TERM_SEND:
			rx_push(u, buf[i]);
			break;
		case TERM_DROP:
			break;
		case TERM_QUIT:
			quit = true;
			break;
		}
	}
	uart_update(u);
	pthread_mutex_unlock(&u->lock);
	return !quit;
}

static void *uart_input(void *arg)
{
	struct uart *u = arg;
	struct pollfd pfd[2] = {
		{ .fd = STDIN_FILENO, .events = POLLIN },
		{ .fd = u->stop_fd, .events = POLLIN },
	};
	uint8_t buf[SNAP_UART_FIFO_MAX];
	size_t room;
	ssize_t n;

	while ((room = wait_room(u)) > 0) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents || !(pfd[0].revents & (POLLIN | POLLHUP)))
			break;
		n = read(STDIN_FILENO, buf, room);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;			/* end of input */
		if (!receive(u, buf, (size_t)n)) {
			u->host.request_exit(u->host.vm, 0,
					     "quit from the console");
			break;
		}
	}
	return NULL;
}

static int uart_create(const struct dev_host *host, void **state,
		       struct snap_err *err)
{
	struct uart *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return snap_err_set(err, -ENOMEM, "out of memory");
	u->host = *host;
	u->r.lsr = LSR_THRE | LSR_TEMT;
	u->r.msr = MSR_DCD | MSR_DSR | MSR_CTS;
	u->r.iir = IIR_NO_INT;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->room, NULL);
	u->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (u->stop_fd < 0) {
		ret = snap_err_set(err, -errno, "uart8250: eventfd: %s",
				   strerror(errno));
		goto err_free;
	}
	ret = term_create(&u->term, STDIN_FILENO);
	if (ret) {
		snap_err_set(err, ret, "uart8250: terminal: %s", strerror(-ret));
		goto err_close;
	}
	ret = -pthread_create(&u->input, NULL, uart_input, u);
	if (ret) {
		snap_err_set(err, ret, "uart8250: input thread: %s",
			     strerror(-ret));
		goto err_term;
	}
	u->has_input = true;
	*state = u;
	return 0;

err_term:
	term_destroy(u->term);
err_close:
	close(u->stop_fd);
err_free:
	pthread_cond_destroy(&u->room);
	pthread_mutex_destroy(&u->lock);
	free(u);
	return ret;
}

static void uart_destroy(void *state)
{
	struct uart *u = state;

	pthread_mutex_lock(&u->lock);
	u->closing = true;
	pthread_cond_broadcast(&u->room);
	pthread_mutex_unlock(&u->lock);
	if (u->has_input) {
		eventfd_write(u->stop_fd, 1);
		pthread_join(u->input, NULL);
	}
	term_destroy(u->term);
	close(u->stop_fd);
	pthread_cond_destroy(&u->room);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static int uart_save(void *state, uint8_t **buf, size_t *len)
{
	struct uart *u = state;
	struct snap_uart8250 copy;

	pthread_mutex_lock(&u->lock);
	copy = u->r;
	pthread_mutex_unlock(&u->lock);
	return snap_uart8250_encode(&copy, buf, len);
}

static int uart_restore(void *state, const uint8_t *buf, size_t len,
			struct snap_err *err)
{
	struct uart *u = state;
	struct snap_uart8250 r;
	int ret;

	ret = snap_uart8250_decode(buf, len, &r, err);
	if (ret)
		return ret;
	pthread_mutex_lock(&u->lock);
	u->r = r;
	u->r.ier &= IER_MASK;
	u->r.mcr &= MCR_MASK;
	/* Make KVM's line agree with the restored level, then follow IIR. */
	u->host.irq_line(u->host.vm, UART_IRQ, u->r.irq_level);
	uart_update(u);
	pthread_cond_broadcast(&u->room);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

const struct dev_ops dev_uart8250 = {
	.name = "uart8250",
	.ports = uart_ports,
	.create = uart_create,
	.destroy = uart_destroy,
	.io = uart_io,
	.save = uart_save,
	.restore = uart_restore,
};
