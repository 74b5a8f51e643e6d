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

#include "vmm/boot/boot.h"

#define CR0_PE		(1ull << 0)
#define CR0_ET		(1ull << 4)
#define CR0_PG		(1ull << 31)
#define CR4_PAE		(1ull << 5)
#define EFER_LME	(1ull << 8)
#define EFER_LMA	(1ull << 10)
#define RFLAGS_FIXED	(1ull << 1)	/* and IF clear: interrupts off */
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

/* Flat segments, paging off; the GDT KVM's reset left (none in memory). */
static void protected32(struct kvm_sregs *sregs, const struct boot_entry *e)
{
	flat32(&sregs->cs, SEG_CODE_XRA, SEL_CODE);
	flat32(&sregs->ds, SEG_DATA_RWA, SEL_DATA);
	sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;
	sregs->cr0 = CR0_PE | CR0_ET;
	sregs->cr3 = 0;
	sregs->cr4 = 0;
	sregs->efer = 0;
}

/*
 * 64-bit mode on e's page tables; the segment registers hold what the
 * descriptors of e's GDT (long64.c) say, as if loaded from it.
 */
static void long64(struct kvm_sregs *sregs, const struct boot_entry *e)
{
	flat32(&sregs->cs, SEG_CODE_XRA, BOOT_SEL_CODE64);
	sregs->cs.db = 0;
	sregs->cs.l = 1;
	flat32(&sregs->ds, SEG_DATA_RWA, BOOT_SEL_DATA64);
	sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;
	sregs->gdt.base = e->gdt_base;
	sregs->gdt.limit = e->gdt_limit;
	sregs->cr0 = CR0_PE | CR0_PG | CR0_ET;
	sregs->cr3 = e->cr3;
	sregs->cr4 = CR4_PAE;
	sregs->efer = EFER_LME | EFER_LMA;
}

int boot_set_regs(int vcpu_fd, const struct boot_entry *entry)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	switch (entry->mode) {
	case BOOT_PROTECTED32:
		protected32(&sregs, entry);
		break;
	case BOOT_LONG64:
		long64(&sregs, entry);
		break;
	default:
		return -EINVAL;
	}
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rflags = RFLAGS_FIXED;
	regs.rip = entry->rip;
	regs.rbx = entry->rbx;
	regs.rsi = entry->rsi;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}
