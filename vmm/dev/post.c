/* SPDX-License-Identifier: MIT */
/*
 * Port 0x80, the POST code port: firmware writes progress codes there and
 * Linux writes to it as an I/O delay, thousands of times. It absorbs the
 * writes (so they are not reported as unclaimed) and reads as all ones.
 * No state to save.
 */
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/dev.h"

#define POST_PORT	0x80

static const struct dev_ports post_ports[] = {
	{ POST_PORT, 1 },
	{ 0, 0 },
};

static void post_io(void *opaque, uint16_t offset, bool is_write,
		    uint8_t *data, unsigned int size)
{
	if (!is_write)
		memset(data, 0xff, size);
}

static int post_create(const struct dev_host *host, void **state,
		       struct snap_err *err)
{
	*state = NULL;
	return 0;
}

static void post_destroy(void *state)
{
}

const struct dev_ops dev_post = {
	.name = "post",
	.ports = post_ports,
	.create = post_create,
	.destroy = post_destroy,
	.io = post_io,
};
