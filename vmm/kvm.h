/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_KVM_H
#define SNAPVM_KVM_H

/*
 * The host's KVM: opening /dev/kvm and checking the capabilities snapvm
 * relies on (a table in kvm.c, in the order they matter).
 */

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>

#include "snapshot/format/error.h"

struct kvm_host {
	int fd;			/* /dev/kvm */
	int api_version;
};

/* The KVM device: $SNAPVM_KVM when set (for tests), else /dev/kvm. */
const char *kvm_host_path(void);

/*
 * Open path (normally /dev/kvm) and check the API version (12). -EPROTO
 * with api_version < 0: not a KVM device; >= 0: the wrong version.
 */
int kvm_host_open(struct kvm_host *h, const char *path);

/*
 * kvm_host_open, then kvm_host_check: everything snapvm needs, or one line
 * in err ("/dev/kvm: No such file or directory (KVM is not available on
 * this machine)", "/dev/kvm: capability IRQCHIP missing"). With out, the
 * API version and the capability table are printed there.
 */
int kvm_host_open_checked(struct kvm_host *h, const char *path, FILE *out,
			  struct snap_err *err);

void kvm_host_close(struct kvm_host *h);

/*
 * Check every capability of the table. Prints one line per capability to
 * out when out is not NULL. Returns 0 when every required one is there,
 * otherwise -ENOTSUP and *missing names the first one missing.
 */
int kvm_host_check(const struct kvm_host *h, FILE *out, const char **missing);

/* Most vCPUs one VM may have (KVM_CAP_MAX_VCPUS, else NR_VCPUS, else 4). */
unsigned int kvm_host_max_vcpus(const struct kvm_host *h);

/* KVM_GET_SUPPORTED_CPUID into a new buffer (the caller frees it). */
int kvm_host_supported_cpuid(const struct kvm_host *h, struct kvm_cpuid2 **out);

#endif
