/* SPDX-License-Identifier: MIT */
/*
 * The 8250 UART device model through its device ops, on a fake VM: the
 * registers as Linux's 8250 driver probes them, the interrupt line, output
 * to stdout, input from stdin, and save/restore through libsnap's codec.
 * stdin and stdout are pipes for the length of each test.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/dev/dev.h"

#define RBR 0
#define IER 1
#define IIR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

/* The fake VM: what the device asked of it. */
static struct {
	unsigned int irq;
	int level;
	unsigned int edges;
	int exit_status;
} vm;

static int fake_irq_line(void *opaque, unsigned int irq, int level)
{
	vm.irq = irq;
	if (level && !vm.level)
		vm.edges++;
	vm.level = level;
	return 0;
}

static void fake_request_exit(void *opaque, int status, const char *why)
{
	vm.exit_status = status;
}

static const struct dev_host host = {
	.vm = &vm,
	.irq_line = fake_irq_line,
	.request_exit = fake_request_exit,
};

struct fixture {
	void *uart;
	int saved_in, saved_out;
	int in_w;		/* what the "user" types */
	int out_r;		/* what the guest printed */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct snap_err err;
	int in[2], out[2];

	memset(&vm, 0, sizeof(vm));
	fflush(stdout);
	if (!f || pipe(in) || pipe(out))
		return -1;
	f->saved_in = dup(STDIN_FILENO);
	f->saved_out = dup(STDOUT_FILENO);
	dup2(in[0], STDIN_FILENO);
	dup2(out[1], STDOUT_FILENO);
	close(in[0]);
	close(out[1]);
	f->in_w = in[1];
	f->out_r = out[0];
	fcntl(f->out_r, F_SETFL, O_NONBLOCK);
	if (dev_uart8250.create(&host, &f->uart, &err))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dev_uart8250.destroy(f->uart);
	dup2(f->saved_in, STDIN_FILENO);
	dup2(f->saved_out, STDOUT_FILENO);
	close(f->saved_in);
	close(f->saved_out);
	close(f->in_w);
	close(f->out_r);
	free(f);
	return 0;
}

static uint8_t rd(void *uart, uint16_t off)
{
	uint8_t v = 0xee;

	dev_uart8250.io(uart, off, false, &v, 1);
	return v;
}

static void wr(void *uart, uint16_t off, uint8_t v)
{
	dev_uart8250.io(uart, off, true, &v, 1);
}

static void test_reset_values(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f->uart, IER), 0);
	assert_int_equal(rd(f->uart, IIR), 0x01);	/* nothing pending */
	assert_int_equal(rd(f->uart, LCR), 0);
	assert_int_equal(rd(f->uart, MCR), 0);
	assert_int_equal(rd(f->uart, LSR), 0x60);	/* THR and TX empty */
	assert_int_equal(rd(f->uart, MSR), 0xb0);	/* DCD, DSR, CTS */
	assert_int_equal(vm.level, 0);
}

static void test_divisor_and_scratch(void **state)
{
	struct fixture *f = *state;

	wr(f->uart, LCR, 0x80);				/* DLAB */
	wr(f->uart, RBR, 0x01);
	wr(f->uart, IER, 0x02);
	assert_int_equal(rd(f->uart, RBR), 0x01);
	assert_int_equal(rd(f->uart, IER), 0x02);
	wr(f->uart, LCR, 0x03);
	assert_int_equal(rd(f->uart, IER), 0);		/* not the DLM */
	assert_int_equal(vm.level, 0);			/* no THRE enabled */
	wr(f->uart, SCR, 0x5a);
	assert_int_equal(rd(f->uart, SCR), 0x5a);
	wr(f->uart, IER, 0xff);
	assert_int_equal(rd(f->uart, IER), 0x0f);
}

static void test_transmit(void **state)
{
	struct fixture *f = *state;
	char buf[16];

	for (const char *p = "hi\n"; *p; p++) {
		assert_true(rd(f->uart, LSR) & 0x20);
		wr(f->uart, RBR, (uint8_t)*p);
	}
	assert_int_equal(read(f->out_r, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "hi\n", 3);
}

static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;

	wr(f->uart, IER, 0x02);
	assert_int_equal(vm.irq, 4);
	assert_int_equal(vm.level, 1);
	assert_int_equal(rd(f->uart, IIR), 0x02);	/* clears it */
	assert_int_equal(vm.level, 0);
	assert_int_equal(rd(f->uart, IIR), 0x01);
	wr(f->uart, RBR, 'x');				/* empty again at once */
	assert_int_equal(vm.level, 1);
	assert_int_equal(vm.edges, 2);
	wr(f->uart, IER, 0);
	assert_int_equal(vm.level, 0);
	assert_int_equal(rd(f->uart, IIR), 0x01);
}

static void test_loopback(void **state)
{
	struct fixture *f = *state;
	char buf[4];

	/* Linux's autoconfig: loop, RTS and OUT2 read back as CTS and DCD. */
	wr(f->uart, MCR, 0x10 | 0x0a);
	assert_int_equal(rd(f->uart, MSR) & 0xf0, 0x90);
	wr(f->uart, MCR, 0x10 | 0x05);
	assert_int_equal(rd(f->uart, MSR) & 0xf0, 0x60);

	wr(f->uart, IER, 0x03);
	wr(f->uart, RBR, 'A');
	wr(f->uart, RBR, 'B');
	assert_int_equal(read(f->out_r, buf, sizeof(buf)), -1);	/* looped */
	assert_true(rd(f->uart, LSR) & 0x01);
	assert_int_equal(rd(f->uart, IIR), 0x04);	/* data before THRE */
	assert_int_equal(vm.level, 1);
	assert_int_equal(rd(f->uart, RBR), 'A');
	assert_int_equal(rd(f->uart, RBR), 'B');
	assert_false(rd(f->uart, LSR) & 0x01);
	assert_int_equal(rd(f->uart, IIR), 0x02);
	assert_int_equal(rd(f->uart, IIR), 0x01);
	assert_int_equal(vm.level, 0);
}

static void test_fifo_control(void **state)
{
	struct fixture *f = *state;

	wr(f->uart, 2, 0x07);				/* FCR: enable, clear */
	assert_int_equal(rd(f->uart, IIR), 0xc1);	/* a 16550A */
	wr(f->uart, MCR, 0x10);
	wr(f->uart, RBR, 'z');
	assert_true(rd(f->uart, LSR) & 0x01);
	wr(f->uart, 2, 0x03);				/* clear receive */
	assert_false(rd(f->uart, LSR) & 0x01);
	wr(f->uart, 2, 0);
	assert_int_equal(rd(f->uart, IIR), 0x01);
}

/* Wait up to 5 s for the receive FIFO to hold data. */
static int wait_data(void *uart)
{
	struct timespec ms = { 0, 1000000 };

	for (int i = 0; i < 5000; i++) {
		if (rd(uart, LSR) & 0x01)
			return 1;
		nanosleep(&ms, NULL);
	}
	return 0;
}

static void test_receive(void **state)
{
	struct fixture *f = *state;
	char got[4] = { 0 };

	wr(f->uart, IER, 0x01);
	assert_int_equal(write(f->in_w, "abc", 3), 3);
	for (int i = 0; i < 3; i++) {
		assert_true(wait_data(f->uart));
		assert_int_equal(vm.level, 1);
		got[i] = (char)rd(f->uart, RBR);
	}
	assert_string_equal(got, "abc");
	assert_false(rd(f->uart, LSR) & 0x01);
	assert_int_equal(vm.level, 0);
}

static void test_save_restore(void **state)
{
	struct fixture *f = *state;
	struct snap_err err = { "" };
	uint8_t *buf;
	size_t len;
	void *copy;

	wr(f->uart, LCR, 0x80);
	wr(f->uart, RBR, 0x0c);
	wr(f->uart, LCR, 0x1b);
	wr(f->uart, SCR, 0x42);
	wr(f->uart, MCR, 0x10 | 0x0b);
	wr(f->uart, RBR, 'q');
	wr(f->uart, RBR, 'r');
	wr(f->uart, IER, 0x01);
	assert_int_equal(vm.level, 1);
	assert_int_equal(dev_uart8250.save(f->uart, &buf, &len), 0);

	assert_int_equal(dev_uart8250.create(&host, &copy, &err), 0);
	vm.level = 0;
	assert_int_equal(dev_uart8250.restore(copy, buf, len, &err), 0);
	assert_int_equal(vm.level, 1);			/* line raised again */
	assert_int_equal(rd(copy, LCR), 0x1b);
	assert_int_equal(rd(copy, SCR), 0x42);
	assert_int_equal(rd(copy, MCR), 0x1b);
	assert_int_equal(rd(copy, IER), 0x01);
	assert_int_equal(rd(copy, IIR), 0x04);
	assert_int_equal(rd(copy, RBR), 'q');
	assert_int_equal(rd(copy, RBR), 'r');
	wr(copy, LCR, 0x9b);
	assert_int_equal(rd(copy, RBR), 0x0c);		/* the divisor */

	assert_int_equal(dev_uart8250.restore(copy, (const uint8_t *)"\xff\xff",
					      2, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "uart8250"));
	dev_uart8250.destroy(copy);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_values, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_divisor_and_scratch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_transmit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre_interrupt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_control, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_receive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_restore, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
