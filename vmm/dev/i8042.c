/* SPDX-License-Identifier: MIT */
/*
 * The keyboard controller with nothing plugged into it: data port 0x60,
 * status and command port 0x64, IRQ 1. A guest finds the controller, its
 * command byte and self-test, learns at once that it has no mouse port
 * and that no keyboard answers, and resets the machine through it:
 * command 0xfe (pulse output line 0, the reset line) ends snapvm with
 * status 0.
 *
 * Every answer is immediate, so a guest never waits on a time-out. Linux
 * (drivers/input/serio/i8042.c) reads and writes the command byte, then
 * tests the mouse port: its loop command (0xd3) comes back as keyboard
 * data, which says "no loop", and its interface test (0xa9) says "clock
 * line stuck low", so there is no mouse port and no mouse probe. A byte
 * for the keyboard gets 0xfe with the time-out bit, as from a controller
 * whose keyboard does not answer: atkbd's first command fails at once.
 * The output buffer raises IRQ 1 (IRQ 12 for mouse-port data) while full,
 * when the command byte enables it.
 *
 * Not saved: after its probe a guest only uses the controller to reset.
 * A restore gives the command byte a guest has after the probe (keyboard
 * port enabled, its interrupt on), which is also the power-on one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/dev.h"

#define I8042_DATA	0x60
#define I8042_STATUS	0x64	/* command on write */
#define STATUS_OFF	(I8042_STATUS - I8042_DATA)
#define KBD_IRQ		1
#define AUX_IRQ		12

#define STR_OBF		0x01	/* output buffer full */
#define STR_SYS		0x04	/* system flag: the command byte's */
#define STR_CMD		0x08	/* last write was to the command port */
#define STR_KEYLOCK	0x10	/* set: the keyboard is not inhibited */
#define STR_AUXDATA	0x20
#define STR_TIMEOUT	0x40

#define CTR_KBDINT	0x01
#define CTR_AUXINT	0x02
#define CTR_SYS		0x04
#define CTR_KBDDIS	0x10
#define CTR_AUXDIS	0x20
#define CTR_XLATE	0x40

#define CMD_READ_CTR	0x20
#define CMD_WRITE_CTR	0x60
#define CMD_AUX_DISABLE	0xa7
#define CMD_AUX_ENABLE	0xa8
#define CMD_AUX_TEST	0xa9
#define CMD_SELF_TEST	0xaa
#define CMD_KBD_TEST	0xab
#define CMD_KBD_DISABLE	0xad
#define CMD_KBD_ENABLE	0xae
#define CMD_READ_OUTP	0xd0
#define CMD_WRITE_OUTP	0xd1
#define CMD_WRITE_KBD_OUT 0xd2
#define CMD_WRITE_AUX_OUT 0xd3	/* Linux's AUX_LOOP */
#define CMD_WRITE_AUX	0xd4
#define CMD_PULSE	0xf0	/* 0xf0-0xff: pulse the lines whose bit is 0 */

#define SELF_TEST_OK	0x55
#define AUX_CLOCK_LOW	0x01	/* interface test: clock line stuck low */
#define NO_ANSWER	0xfe	/* with STR_TIMEOUT: the device did not answer */
#define OUTP_RESET	0x01	/* output port line 0: low resets */
#define OUTP_A20	0x02

struct i8042 {
	struct dev_host host;
	pthread_mutex_t lock;
	uint8_t ctr;		/* the command byte */
	uint8_t status;		/* OBF, AUXDATA, TIMEOUT, CMD */
	uint8_t out;		/* the output buffer */
	uint8_t pending;	/* a command waiting for its data byte, or 0 */
	bool kbd_irq, aux_irq;	/* the lines' levels */
};

static const struct dev_ports i8042_ports[] = {
	{ I8042_DATA, I8042_STATUS - I8042_DATA + 1 },
	{ 0, 0 },
};

/* The lines follow the output buffer, as the command byte lets them. */
static void update_irqs(struct i8042 *k)
{
	bool full = k->status & STR_OBF, aux = k->status & STR_AUXDATA;
	bool kbd_irq = full && !aux && (k->ctr & CTR_KBDINT);
	bool aux_irq = full && aux && (k->ctr & CTR_AUXINT);

	if (kbd_irq != k->kbd_irq) {
		k->kbd_irq = kbd_irq;
		k->host.irq_line(k->host.vm, KBD_IRQ, kbd_irq);
	}
	if (aux_irq != k->aux_irq) {
		k->aux_irq = aux_irq;
		k->host.irq_line(k->host.vm, AUX_IRQ, aux_irq);
	}
}

/* Put a byte in the output buffer; flags: STR_AUXDATA, STR_TIMEOUT. */
static void output(struct i8042 *k, uint8_t v, uint8_t flags)
{
	k->out = v;
	k->status = (uint8_t)((k->status & STR_CMD) | STR_OBF | flags);
}

static void reset_line(struct i8042 *k)
{
	k->host.request_exit(k->host.vm, 0, "guest reset");
}

static void command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR:
		output(k, k->ctr, 0);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTP:
	case CMD_WRITE_KBD_OUT:
	case CMD_WRITE_AUX_OUT:
	case CMD_WRITE_AUX:
		k->pending = cmd;
		break;
	case CMD_AUX_DISABLE:
		k->ctr |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		k->ctr &= (uint8_t)~CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
		output(k, AUX_CLOCK_LOW, 0);
		break;
	case CMD_SELF_TEST:
		output(k, SELF_TEST_OK, 0);
		break;
	case CMD_KBD_TEST:
		output(k, 0, 0);
		break;
	case CMD_KBD_DISABLE:
		k->ctr |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		k->ctr &= (uint8_t)~CTR_KBDDIS;
		break;
	case CMD_READ_OUTP:
		output(k, OUTP_RESET | OUTP_A20, 0);
		break;
	default:
		if (cmd >= CMD_PULSE && !(cmd & OUTP_RESET))
			reset_line(k);
		break;			/* the rest: not implemented, ignored */
	}
}

/* A byte on the data port: a command's parameter, or for the keyboard. */
static void data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;

	k->pending = 0;
	switch (cmd) {
	case CMD_WRITE_CTR:
		k->ctr = v;
		break;
	case CMD_WRITE_OUTP:
		if (!(v & OUTP_RESET))
			reset_line(k);
		break;
	case CMD_WRITE_KBD_OUT:
	case CMD_WRITE_AUX_OUT:	/* no mouse port: comes back as keyboard's */
		output(k, v, 0);
		break;
	case CMD_WRITE_AUX:
		output(k, NO_ANSWER, STR_AUXDATA | STR_TIMEOUT);
		break;
	default:		/* for the keyboard, which is not there */
		output(k, NO_ANSWER, STR_TIMEOUT);
		break;
	}
}

/*
 * One range from the data port to the status port, so that the handler
 * knows which is which; 0x61 between them is the in-kernel PIT's (KVM
 * serves it, it never reaches us), 0x62 and 0x63 read as nothing.
 */
static void i8042_io(void *opaque, uint16_t offset, bool is_write,
		     uint8_t *v, unsigned int size)
{
	struct i8042 *k = opaque;

	if (!is_write)
		memset(v, offset == 0 || offset == STATUS_OFF ? 0 : 0xff, size);
	if (offset != 0 && offset != STATUS_OFF)
		return;
	pthread_mutex_lock(&k->lock);
	if (is_write && offset == STATUS_OFF) {
		k->status |= STR_CMD;
		command(k, v[0]);
	} else if (is_write) {
		k->status &= (uint8_t)~STR_CMD;
		data(k, v[0]);
	} else if (offset == STATUS_OFF) {
		v[0] = k->status | STR_KEYLOCK | (k->ctr & CTR_SYS ? STR_SYS : 0);
	} else {
		v[0] = k->out;
		k->status &= (uint8_t)~(STR_OBF | STR_AUXDATA | STR_TIMEOUT);
	}
	update_irqs(k);
	pthread_mutex_unlock(&k->lock);
}

static int i8042_create(const struct dev_host *host, void **state,
			struct snap_err *err)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return snap_err_set(err, -ENOMEM, "out of memory");
	k->host = *host;
	/* As a BIOS leaves it, and as Linux leaves it after its probe. */
	k->ctr = CTR_XLATE | CTR_SYS | CTR_KBDINT;
	pthread_mutex_init(&k->lock, NULL);
	*state = k;
	return 0;
}

static void i8042_destroy(void *state)
{
	struct i8042 *k = state;

	pthread_mutex_destroy(&k->lock);
	free(k);
}

const struct dev_ops dev_i8042 = {
	.name = "i8042",
	.ports = i8042_ports,
	.create = i8042_create,
	.destroy = i8042_destroy,
	.io = i8042_io,
};
