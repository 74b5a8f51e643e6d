/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_KVM_H
#define SNAPVM_KVM_H

/*
 * The host's KVM: opening /dev/kvm and checking the capabilities snapvm
 * relies on (a table in kvm.c, in the order they matter).
 */

#include <stdbool.h>
#include <stdio.h>

struct kvm_host {
	int fd;			/* /dev/kvm */
	int api_version;
};

/* Open path (normally /dev/kvm) and check the API version (12). */
int kvm_host_open(struct kvm_host *h, const char *path);
void kvm_host_close(struct kvm_host *h);

/*
 * Check every capability of the table. Prints one line per capability to
 * out when out is not NULL. Returns 0 when every required one is there,
 * otherwise -ENOTSUP and *missing names the first one missing.
 */
int kvm_host_check(const struct kvm_host *h, FILE *out, const char **missing);

#endif
