/* SPDX-License-Identifier: MIT */
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVM_API_EXPECTED 12

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
