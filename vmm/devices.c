/* SPDX-License-Identifier: MIT */
#include "vmm/devices.h"

#include <errno.h>
#include <stdlib.h>

#include "vmm/dev/dev.h"
#include "vmm/ioport.h"
#include "vmm/pci/pci.h"
#include "vmm/vm.h"

/* Every device of a VM, in the order they are created and saved. */
static const struct dev_ops *const dev_table[] = {
	&dev_uart8250,
	&dev_i8042,
	&dev_post,
	&dev_rtc,
	&dev_pci,		/* before the devices on the bus */
	&dev_virtio_blk,	/* PCI slots in this order: a restore */
	&dev_virtio_rng,	/* finds each function where it was */
	&dev_virtio_vsock,
};

#define N_DEVICES (sizeof(dev_table) / sizeof(dev_table[0]))

struct devices {
	struct dev_host host;
	struct pci_bus *pci;
	void *state[N_DEVICES];
	bool present[N_DEVICES];
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
		   struct ioport_bus *bus, const struct dev_config *cfg,
		   struct snap_err *err)
{
	struct devices *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return snap_err_set(err, -ENOMEM, "out of memory");
	ret = pci_bus_create(&d->pci, vm_fd(vm), err);
	if (ret) {
		free(d);
		return ret;
	}
	d->host = (struct dev_host){
		.vm = vm,
		.irq_line = host_irq_line,
		.request_exit = host_request_exit,
		.pci = d->pci,
		.mem = vm_mem(vm),
		.cfg = cfg,
	};
	for (; d->n < N_DEVICES; d->n++) {
		const struct dev_ops *ops = dev_table[d->n];

		ret = ops->create(&d->host, &d->state[d->n], err);
		if (ret == DEV_ABSENT)
			continue;
		if (ret)
			goto err_destroy;
		d->present[d->n] = true;
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
		if (d->present[d->n])
			dev_table[d->n]->destroy(d->state[d->n]);
	pci_bus_destroy(d->pci);
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

		if (!ops->save || !d->present[i])
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

		sd = snap_state_find_device(s, ops->name);
		if (!d->present[i]) {
			if (sd)
				return snap_err_set(err, -EINVAL, "state.bin: "
						    "device %s: the snapshot "
						    "has one, this VM has not",
						    ops->name);
			continue;
		}
		if (!ops->restore)
			continue;
		if (!sd && ops->payload_optional)
			continue;
		if (!sd)
			return snap_err_set(err, -EINVAL, "state.bin: device "
					    "%s missing", ops->name);
		ret = ops->restore(d->state[i], sd->payload, sd->len, err);
		if (ret)
			return ret;
	}
	return 0;
}

void devices_resume(struct devices *d)
{
	for (unsigned int i = 0; i < d->n; i++)
		if (d->present[i] && dev_table[i]->resume)
			dev_table[i]->resume(d->state[i]);
}

int devices_capture(struct devices *d, struct snap_writer *w,
		    struct snap_manifest *m, struct snap_err *err)
{
	for (unsigned int i = 0; i < d->n; i++) {
		const struct dev_ops *ops = dev_table[i];
		int ret;

		if (!d->present[i])
			continue;
		if (ops->feature &&
		    snap_manifest_add_feature(&m->required_features,
					      &m->n_required, ops->feature))
			return snap_err_set(err, -ENOMEM, "out of memory");
		if (!ops->capture)
			continue;
		ret = ops->capture(d->state[i], w, m, err);
		if (ret)
			return ret;
	}
	return 0;
}

bool devices_mmio(struct devices *d, uint64_t addr, bool is_write,
		  uint8_t *data, unsigned int size)
{
	return pci_mmio(d->pci, addr, is_write, data, size);
}
