/* SPDX-License-Identifier: MIT */
/*
 * The keyboard controller through its device ops, on a fake VM, as
 * Linux's i8042 and atkbd drivers probe it: every command answered at
 * once, no mouse port, a keyboard that does not answer (0xfe with the
 * time-out bit, IRQ 1), and the reset line on 0xfe at port 0x64 only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/dev/dev.h"

#define DATA	0	/* port 0x60 */
#define STATUS	4	/* port 0x64 */

#define OBF	0x01
#define IBF	0x02
#define KEYLOCK	0x10
#define AUXDATA	0x20
#define TIMEOUT	0x40

static struct {
	unsigned int irq;
	int level[16];
	unsigned int edges[16];
	int exits;
	int exit_status;
} vm;

static int fake_irq_line(void *opaque, unsigned int irq, int level)
{
	assert_true(irq < 16);
	if (level && !vm.level[irq])
		vm.edges[irq]++;
	vm.level[irq] = level;
	return 0;
}

static void fake_request_exit(void *opaque, int status, const char *why)
{
	vm.exits++;
	vm.exit_status = status;
}

static const struct dev_host host = {
	.vm = &vm,
	.irq_line = fake_irq_line,
	.request_exit = fake_request_exit,
};

static int setup(void **state)
{
	struct snap_err err;

	memset(&vm, 0, sizeof(vm));
	return dev_i8042.create(&host, state, &err);
}

static int teardown(void **state)
{
	dev_i8042.destroy(*state);
	return 0;
}

static uint8_t rd(void *k, uint16_t port)
{
	uint8_t v = 0xee;

	dev_i8042.io(k, port, false, &v, 1);
	return v;
}

static void wr(void *k, uint16_t port, uint8_t v)
{
	dev_i8042.io(k, port, true, &v, 1);
}

/* A command with an answer, as Linux's i8042_command waits for it. */
static uint8_t ask(void *k, uint8_t cmd)
{
	assert_false(rd(k, STATUS) & IBF);
	wr(k, STATUS, cmd);
	assert_true(rd(k, STATUS) & OBF);
	return rd(k, DATA);
}

static void test_probe(void **state)
{
	void *k = *state;
	uint8_t ctr;

	/* Nothing to flush; the keyboard is not inhibited (no keylock). */
	assert_int_equal(rd(k, STATUS) & (OBF | IBF | KEYLOCK), KEYLOCK);
	ctr = ask(k, 0x20);
	assert_int_equal(ctr, 0x45);	/* XLATE, SYS, KBDINT */
	assert_int_equal(ask(k, 0x20), ctr);
	assert_int_equal(vm.edges[1], 2);	/* answers raise IRQ 1 */
	wr(k, STATUS, 0x60);
	wr(k, DATA, 0x54);		/* KBDDIS, no KBDINT */
	assert_int_equal(ask(k, 0x20), 0x54);
	assert_int_equal(ask(k, 0xaa), 0x55);

	/* The mouse port: the loop comes back as keyboard data (Linux: no
	 * loop), and the interface test says its clock line is stuck. */
	wr(k, STATUS, 0xd3);
	wr(k, DATA, 0x5a);
	assert_int_equal(rd(k, STATUS) & (OBF | AUXDATA), OBF);
	assert_int_equal(ask(k, 0xa9), 0x01);
	assert_int_equal(vm.edges[1], 2);	/* no more: no KBDINT */
	assert_int_equal(vm.edges[12], 0);
	assert_int_equal(vm.level[1], 0);
	assert_int_equal(vm.exits, 0);
}

static void test_no_keyboard(void **state)
{
	void *k = *state;

	wr(k, STATUS, 0x60);
	wr(k, DATA, 0x45);		/* keyboard port on, its interrupt */
	wr(k, DATA, 0xf2);		/* atkbd: GET ID */
	assert_int_equal(rd(k, STATUS) & (OBF | TIMEOUT | AUXDATA),
			 OBF | TIMEOUT);
	assert_int_equal(vm.edges[1], 1);
	assert_int_equal(vm.level[1], 1);
	assert_int_equal(rd(k, DATA), 0xfe);
	assert_int_equal(vm.level[1], 0);
	assert_int_equal(rd(k, STATUS) & (OBF | TIMEOUT), 0);
	wr(k, DATA, 0xfe);		/* a byte for the keyboard, no reset */
	assert_int_equal(vm.exits, 0);
	assert_int_equal(vm.edges[1], 2);
	rd(k, DATA);
}

static void test_reset(void **state)
{
	void *k = *state;

	wr(k, STATUS, 0xff);		/* pulses nothing */
	assert_int_equal(vm.exits, 0);
	wr(k, STATUS, 0xfe);
	assert_int_equal(vm.exits, 1);
	assert_int_equal(vm.exit_status, 0);
	wr(k, STATUS, 0xd1);		/* output port, reset line low */
	wr(k, DATA, 0x02);
	assert_int_equal(vm.exits, 2);
}

static void test_other_ports(void **state)
{
	void *k = *state;

	assert_int_equal(rd(k, 2), 0xff);	/* 0x62: nothing */
	wr(k, 3, 0xfe);
	assert_int_equal(vm.exits, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_keyboard, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_ports, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
