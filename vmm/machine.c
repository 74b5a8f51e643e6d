/* SPDX-License-Identifier: MIT */
/*
 * One VM from start to end (machine.h): what snapvm run and snapvm restore
 * share. Each step keeps what it made in struct machine, so that one
 * teardown, in reverse order, serves every failure and the normal end.
 */
#include "vmm/machine.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "vmm/control.h"
#include "vmm/kvm.h"
#include "vmm/mem.h"
#include "vmm/vm.h"

struct machine {
	struct machine_spec spec;
	struct control *ctl;
	struct kvm_host host;
	struct vm *vm;
	struct saver *saver;
};

/* The build step onwards: the VM, its state, the saver, the vCPUs. */
static int machine_start(const struct machine_ops *ops, void *ctx,
			 struct machine *m, struct snap_err *err)
{
	const struct machine_spec *spec = &m->spec;
	unsigned int max = kvm_host_max_vcpus(&m->host);
	int ret;

	if (spec->cpus > max)
		return snap_err_set(err, -EINVAL, "%s %u: at most %u expected "
				    "(KVM_CAP_MAX_VCPUS)", spec->cpus_what,
				    spec->cpus, max);
	ret = vm_create(&m->vm, &m->host, spec->mem, spec->cpus, spec->devs,
			spec->debug, err);
	if (!ret)
		ret = ops->load(ctx, m->vm, err);
	if (!ret && m->ctl) {
		ret = saver_create(&m->saver, m->vm, spec->cmdline,
				   &spec->base, err);
		if (!ret)
			ret = control_start(m->ctl, m->vm, m->saver, err);
	}
	if (!ret && ops->launch)
		ret = ops->launch(ctx, m->vm, err);
	if (ret)
		return ret;
	ret = vm_start(m->vm);
	if (ret)
		return snap_err_set(err, ret, "vCPU threads: %s",
				    strerror(-ret));
	return 0;
}

/* Up to the build step: RAM, the control socket, KVM. */
static int machine_open(const struct machine_ops *ops, void *ctx,
			struct machine *m, struct snap_err *err)
{
	const struct machine_spec *spec = &m->spec;
	int ret;

	ret = ops->open(ctx, &m->spec, err);
	if (ret)
		return ret;
	if (spec->control) {
		ret = control_create(&m->ctl, spec->control, err);
		if (ret)
			return snap_err_prefix(err, ret, "--control %s",
					       spec->control);
	}
	return kvm_host_open_checked(&m->host, kvm_host_path(), NULL, err);
}

int machine_run(const struct machine_ops *ops, void *ctx)
{
	struct machine m = { .host = { .fd = -1, .api_version = -1 } };
	struct snap_err err = { "" };
	int ret, status = 1;

	signal(SIGPIPE, SIG_IGN);
	ret = machine_open(ops, ctx, &m, &err);
	if (!ret) {
		ret = machine_start(ops, ctx, &m, &err);
		if (ret && m.spec.prefix)
			snap_err_prefix(&err, ret, "%s", m.spec.prefix);
	}
	if (!ret)
		status = vm_wait(m.vm);

	control_destroy(m.ctl);		/* before the VM it drives */
	saver_destroy(m.saver);
	vm_destroy(m.vm);
	kvm_host_close(&m.host);
	if (ret)
		mem_remove_created(m.spec.mem);	/* made for nothing */
	mem_destroy(m.spec.mem);
	ops->close(ctx, !ret);
	if (ret) {
		fprintf(stderr, "snapvm: %s\n", err.msg);
		return 1;
	}
	return status;
}
