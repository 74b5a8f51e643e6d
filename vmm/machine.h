/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_MACHINE_H
#define SNAPVM_MACHINE_H

/*
 * The one way a VM starts, runs and ends, for snapvm run and snapvm
 * restore alike; each says only what is its own through machine_ops.
 *
 * machine_run goes through these steps, each only when the one before it
 * succeeded:
 *
 *   open     the caller checks and opens everything that needs no KVM (a
 *            kernel, a snapshot, the disks) and maps RAM (ops->open)
 *   control  the control socket is bound (--control), while snapvm still
 *            has a single thread (control.h)
 *   KVM      /dev/kvm is opened and its capabilities checked
 *   build    the VM: RAM slots, interrupt controllers, devices, vCPUs
 *   load     the caller fills RAM and sets every vCPU's state: a kernel
 *            and its boot registers, or a snapshot's state (ops->load)
 *   saver    with a control socket: the saver, and the socket served
 *   launch   the caller's last step before the guest runs (ops->launch)
 *   run      the vCPU threads start; the VM runs until it ends (vm_wait)
 *
 * and then takes down, in this order, what the steps made: the control
 * socket (before the VM it drives), the saver, the VM, KVM, RAM (a
 * --mem-file created for a VM that never ran is removed), and last the
 * caller's own (ops->close), told whether the VM ran.
 *
 * Errors: the step that fails fills one message; machine_run prints it
 * ("snapvm: ...") and returns 1. Otherwise it returns vm_wait's status.
 */

#include <stdbool.h>

#include "snapshot/format/error.h"
#include "vmm/snapshot.h"

struct mem;
struct vm;
struct dev_config;

/* The machine's shape, filled by ops->open. */
struct machine_spec {
	struct mem *mem;		/* RAM: the machine's from then on */
	unsigned int cpus;
	const char *cpus_what;		/* cpus in an error: "--cpus" */
	const struct dev_config *devs;	/* must outlive the machine */
	const char *control;		/* --control SOCKET, or NULL */
	const char *cmdline;		/* for manifests, or NULL */
	struct saver_base base;		/* the saver's first base */
	bool debug;			/* --debug */
	/* Names every error from the build step on ("DIR: ..."), or NULL. */
	const char *prefix;
};

struct machine_ops {
	/*
	 * Check and open what needs no KVM and fill spec. A failure may
	 * leave spec->mem set: it is unmapped all the same.
	 */
	int (*open)(void *ctx, struct machine_spec *spec,
		    struct snap_err *err);
	/* Fill RAM and the vCPUs' state in vm, built and not yet running. */
	int (*load)(void *ctx, struct vm *vm, struct snap_err *err);
	/* Just before the vCPUs first run, control served. May be NULL. */
	int (*launch)(void *ctx, struct vm *vm, struct snap_err *err);
	/*
	 * Release what open made: always called, last. ran is false when
	 * the VM never ran: undo what open created for it (disk copies).
	 */
	void (*close)(void *ctx, bool ran);
};

/* Build, run and end one VM as above; the exit status of snapvm. */
int machine_run(const struct machine_ops *ops, void *ctx);

#endif
