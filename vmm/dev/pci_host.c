/* SPDX-License-Identifier: MIT */
/*
 * The PCI host bridge's configuration ports, 0xcf8-0xcff (mechanism #1),
 * in front of the bus that devices.c makes (pci/pci.h). Its state is the
 * address latched at 0xcf8: a guest paused between writing it and
 * reading 0xcfc reads the same register after a restore.
 */
#include "vmm/pci/pci.h"
#include "vmm/dev/dev.h"
#include "snapshot/format/state_virtio.h"

static const struct dev_ports pci_ports[] = {
	{ 0xcf8, 8 },
	{ 0, 0 },
};

static int pci_host_create(const struct dev_host *host, void **state,
			   struct snap_err *err)
{
	*state = host->pci;
	return 0;
}

static void pci_host_destroy(void *state)
{
}

static int pci_host_save(void *state, uint8_t **buf, size_t *len)
{
	return snap_pci_host_encode(pci_bus_config_address(state), buf, len);
}

static int pci_host_restore(void *state, const uint8_t *buf, size_t len,
			    struct snap_err *err)
{
	uint32_t address;
	int ret = snap_pci_host_decode(buf, len, &address, err);

	if (!ret)
		pci_bus_set_config_address(state, address);
	return ret;
}

const struct dev_ops dev_pci = {
	.name = "pci",
	.ports = pci_ports,
	.create = pci_host_create,
	.destroy = pci_host_destroy,
	.io = pci_bus_config_io,
	.save = pci_host_save,
	.restore = pci_host_restore,
};
