/* SPDX-License-Identifier: MIT */
/*
 * The keyboard controller, only as far as guests use it to reset the
 * machine: command 0xfe on port 0x64 pulses the reset line, which ends
 * snapvm with status 0. Both ports read as "no data, nothing pending"
 * (status 0, data 0), so keyboard probes find nothing and give up.
 * No state to save.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"

#define I8042_DATA	0x60
#define I8042_STATUS	0x64	/* command on write */
#define I8042_RESET	0xfe	/* pulse the reset line */

struct i8042 {
	struct dev_host host;
};

static const struct dev_ports i8042_ports[] = {
	{ I8042_DATA, 1 },
	{ I8042_STATUS, 1 },
	{ 0, 0 },
};

/* offset is 0 for either port: each is its own one-port range. */
static void i8042_io(void *opaque, uint16_t offset, bool is_write,
		     uint8_t *data, unsigned int size)
{
	struct i8042 *k = opaque;

	if (!is_write) {
		memset(data, 0, size);
		return;
	}
	if (data[0] == I8042_RESET && size == 1)
		k->host.request_exit(k->host.vm, 0, "guest reset");
}

static int i8042_create(const struct dev_host *host, void **state,
			struct snap_err *err)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return snap_err_set(err, -ENOMEM, "out of memory");
	k->host = *host;
	*state = k;
	return 0;
}

static void i8042_destroy(void *state)
{
	free(state);
}

const struct dev_ops dev_i8042 = {
	.name = "i8042",
	.ports = i8042_ports,
	.create = i8042_create,
	.destroy = i8042_destroy,
	.io = i8042_io,
};
