/* SPDX-License-Identifier: MIT */
/*
 * The boot vCPU's registers at the kernel's entry. The other vCPUs keep
 * KVM's reset state: with the in-kernel LAPIC they wait for the guest's
 * INIT and STARTUP IPIs.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "boot.h"

#define CR0_PE		(1ull << 0)
#define CR0_ET		(1ull << 4)
#define RFLAGS_FIXED	(1ull << 1)
#define SEG_CODE_XRA	0xb	/* execute/read, accessed */
#define SEG_DATA_RWA	0x3	/* read/write, accessed */
#define SEL_CODE	0x08
#define SEL_DATA	0x10

static void flat32(struct kvm_segment *s, uint8_t type, uint16_t selector)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = selector;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = 1;
	s->s = 1;
	s->l = 0;
	s->g = 1;
}

static int set_protected32(int fd, const struct boot_entry *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	flat32(&sregs.cs, SEG_CODE_XRA, SEL_CODE);
	flat32(&sregs.ds, SEG_DATA_RWA, SEL_DATA);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = CR0_PE | CR0_ET;
	sregs.cr3 = 0;
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rflags = RFLAGS_FIXED;
	regs.rip = e->rip;
	regs.rbx = e->rbx;
	regs.rsi = e->rsi;
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

int boot_set_regs(int vcpu_fd, const struct boot_entry *entry)
{
	switch (entry->mode) {
	case BOOT_PROTECTED32:
		return set_protected32(vcpu_fd, entry);
	}
	return -EINVAL;
}
