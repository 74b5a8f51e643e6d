/* SPDX-License-Identifier: MIT */
#include "devices.h"

#include <errno.h>
#include <stdlib.h>

#include "dev/dev.h"
#include "ioport.h"
#include "vm.h"

/* Every device of a VM, in the order they are created and saved. */
static const struct dev_ops *const dev_table[] = {
	&dev_uart8250,
	&dev_i8042,
	&dev_post,
};

#define N_DEVICES (sizeof(dev_table) / sizeof(dev_table[0]))

struct devices {
	struct dev_host host;
	void *state[N_DEVICES];
	unsigned int n;		/* created so far */
};

static int host_irq_line(void *vm, unsigned int irq, int level)
{
	return vm_irq_line(vm, irq, level);
}

static void host_request_exit(void *vm, int status, const char *why)
{
	vm_request_exit(vm, status, "%s", why);
}

static int claim_ports(struct ioport_bus *bus, const struct dev_ops *ops,
		       void *state, struct snap_err *err)
{
	for (const struct dev_ports *p = ops->ports; p && p->len; p++) {
		int ret = ioport_register(bus, p->base, p->len, ops->name,
					  ops->io, state);

		if (ret)
			return snap_err_set(err, ret, "%s: ports 0x%x-0x%x: %s",
					    ops->name, p->base,
					    p->base + p->len - 1,
					    ret == -EBUSY ? "already claimed" :
					    "cannot be claimed");
	}
	return 0;
}

int devices_create(struct devices **out, struct vm *vm,
		   struct ioport_bus *bus, struct snap_err *err)
{
	struct devices *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return snap_err_set(err, -ENOMEM, "out of memory");
	d->host = (struct dev_host){
		.vm = vm,
		.irq_line = host_irq_line,
		.request_exit = host_request_exit,
	};
	for (; d->n < N_DEVICES; d->n++) {
		const struct dev_ops *ops = dev_table[d->n];

		ret = ops->create(&d->host, &d->state[d->n], err);
		if (ret)
			goto err_destroy;
		ret = claim_ports(bus, ops, d->state[d->n], err);
		if (ret) {
			d->n++;
			goto err_destroy;
		}
	}
	*out = d;
	return 0;

err_destroy:
	devices_destroy(d);
	return ret;
}

void devices_destroy(struct devices *d)
{
	if (!d)
		return;
	while (d->n--)
		dev_table[d->n]->destroy(d->state[d->n]);
	free(d);
}

int devices_save(struct devices *d, struct snap_state *s,
		 struct snap_err *err)
{
	for (unsigned int i = 0; i < d->n; i++) {
		const struct dev_ops *ops = dev_table[i];
		uint8_t *buf;
		size_t len;
		int ret;

		if (!ops->save)
			continue;
		ret = ops->save(d->state[i], &buf, &len);
		if (ret)
			return snap_err_set(err, ret, "device %s: save failed",
					    ops->name);
		ret = snap_state_add_device(s, ops->name, buf, len);
		free(buf);
		if (ret)
			return snap_err_set(err, ret, "device %s: cannot be "
					    "added to the state", ops->name);
	}
	return 0;
}

int devices_restore(struct devices *d, const struct snap_state *s,
		    struct snap_err *err)
{
	for (unsigned int i = 0; i < d->n; i++) {
		const struct dev_ops *ops = dev_table[i];
		const struct snap_device *sd;
		int ret;

		if (!ops->restore)
			continue;
		sd = snap_state_find_device(s, ops->name);
		if (!sd)
			return snap_err_set(err, -EINVAL, "state.bin: device "
					    "%s missing", ops->name);
		ret = ops->restore(d->state[i], sd->payload, sd->len, err);
		if (ret)
			return ret;
	}
	return 0;
}
