/* SPDX-License-Identifier: MIT */
#include "vmm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVM_API_EXPECTED	12
#define KVM_CPUID_MAX		1024	/* entries; KVM reports E2BIG above */
#define KVM_VCPUS_FALLBACK	4	/* KVM's documented minimum */

struct kvm_cap_req {
	const char *name;
	int cap;
	bool required;
	const char *why;
};

#define CAP(c, req, why) { #c, KVM_CAP_##c, req, why }

/* What snapvm needs of KVM, and what it uses when present. */
static const struct kvm_cap_req kvm_caps[] = {
	CAP(USER_MEMORY, true, "guest RAM from a file mapping"),
	CAP(SET_TSS_ADDR, true, "x86 TSS region"),
	CAP(SET_IDENTITY_MAP_ADDR, true, "x86 identity map region"),
	CAP(IRQCHIP, true, "in-kernel PIC, IOAPIC and LAPIC"),
	CAP(IRQ_ROUTING, true, "ISA IRQ 0 on IOAPIC pin 2"),
	CAP(PIT2, true, "in-kernel PIT"),
	CAP(PIT_STATE2, true, "save and restore of the PIT"),
	CAP(EXT_CPUID, true, "CPUID from KVM_GET_SUPPORTED_CPUID"),
	CAP(MP_STATE, true, "save and restore of vCPU run states"),
	CAP(VCPU_EVENTS, true, "save and restore of pending events"),
	CAP(DEBUGREGS, true, "save and restore of debug registers"),
	CAP(XSAVE, true, "save and restore of the XSAVE area"),
	CAP(XCRS, true, "save and restore of XCR0"),
	CAP(ADJUST_CLOCK, true, "save and restore of kvmclock"),
	CAP(IMMEDIATE_EXIT, true, "pausing vCPUs without races"),
	CAP(SYNC_MMU, true, "file-backed RAM that follows the file"),
	CAP(XSAVE2, false, "XSAVE areas beyond 4 KiB"),
	CAP(MANUAL_DIRTY_LOG_PROTECT2, false, "cheaper dirty logging"),
	CAP(TSC_CONTROL, false, "keeping the TSC rate on restore"),
	CAP(NR_VCPUS, false, "recommended vCPU limit"),
	CAP(MAX_VCPUS, false, "vCPU limit"),
};

const char *kvm_host_path(void)
{
	const char *p = getenv("SNAPVM_KVM");

	return p && *p ? p : "/dev/kvm";
}

int kvm_host_open(struct kvm_host *h, const char *path)
{
	h->fd = open(path, O_RDWR | O_CLOEXEC);
	if (h->fd < 0)
		return -errno;
	h->api_version = ioctl(h->fd, KVM_GET_API_VERSION, 0);
	if (h->api_version != KVM_API_EXPECTED) {
		close(h->fd);
		h->fd = -1;
		return -EPROTO;
	}
	return 0;
}

int kvm_host_open_checked(struct kvm_host *h, const char *path, FILE *out,
			  struct snap_err *err)
{
	const char *missing;
	int ret;

	ret = kvm_host_open(h, path);
	if (ret == -EPROTO && h->api_version < 0)
		return snap_err_set(err, ret, "%s: not a KVM device", path);
	if (ret == -EPROTO)
		return snap_err_set(err, ret, "%s: KVM API version %d, %d "
				    "expected", path, h->api_version,
				    KVM_API_EXPECTED);
	if (ret)
		return snap_err_set(err, ret, "%s: %s%s", path, strerror(-ret),
				    ret == -ENOENT ? " (KVM is not available "
				    "on this machine)" : "");
	if (out)
		fprintf(out, "%s: KVM API version %d\n", path, h->api_version);
	ret = kvm_host_check(h, out, &missing);
	if (ret) {
		kvm_host_close(h);
		return snap_err_set(err, ret, "%s: capability %s missing",
				    path, missing);
	}
	return 0;
}

void kvm_host_close(struct kvm_host *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}

int kvm_host_check(const struct kvm_host *h, FILE *out, const char **missing)
{
	int ret = 0;

	*missing = NULL;
	for (size_t i = 0; i < sizeof(kvm_caps) / sizeof(kvm_caps[0]); i++) {
		const struct kvm_cap_req *c = &kvm_caps[i];
		int v = ioctl(h->fd, KVM_CHECK_EXTENSION, c->cap);

		if (v < 0)
			v = 0;
		if (out)
			fprintf(out, "  %-26s %-8s %6d  %s\n", c->name,
				v ? "yes" : c->required ? "MISSING" : "no", v,
				c->why);
		if (!v && c->required && !*missing) {
			*missing = c->name;
			ret = -ENOTSUP;
		}
	}
	return ret;
}

unsigned int kvm_host_max_vcpus(const struct kvm_host *h)
{
	int n = ioctl(h->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);

	if (n <= 0)
		n = ioctl(h->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	return n > 0 ? (unsigned int)n : KVM_VCPUS_FALLBACK;
}

/*
 * KVM emulates the LAPIC's TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER)
 * but leaves CPUID.1:ECX bit 24 out of the supported CPUID, for the monitor
 * to set. Without it Linux calibrates the LAPIC timer against the PIT,
 * which fails on a slow host ("APIC timer disabled due to verification
 * failure") and leaves every CPU on the PIT.
 */
#define CPUID_1_ECX_TSC_DEADLINE	(1u << 24)

static void add_tsc_deadline(const struct kvm_host *h, struct kvm_cpuid2 *c)
{
	if (ioctl(h->fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) <= 0)
		return;
	for (__u32 i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ecx |= CPUID_1_ECX_TSC_DEADLINE;
}

int kvm_host_supported_cpuid(const struct kvm_host *h, struct kvm_cpuid2 **out)
{
	struct kvm_cpuid2 *c;

	c = calloc(1, sizeof(*c) + KVM_CPUID_MAX * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = KVM_CPUID_MAX;
	if (ioctl(h->fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int ret = -errno;

		free(c);
		return ret;
	}
	add_tsc_deadline(h, c);
	*out = c;
	return 0;
}
