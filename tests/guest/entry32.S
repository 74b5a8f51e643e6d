/*
 * PVH entry of the test guest, and the switch to long mode.
 *
 * The loader (QEMU, snapvm) finds our 32-bit entry in the Xen ELF note below
 * and enters it in 32-bit protected mode with paging off, flat segments and
 * EBX = physical address of struct hvm_start_info. We assume nothing else:
 * the first thing done is loading our own GDT.
 *
 * The image is linked at its physical address (1 MiB, see guest.ld) and the
 * page tables map the first 4 GiB one to one, so physical, linear and link
 * addresses are all the same everywhere in the guest.
 *
 * The application processors come here too (ap_entry32), from the real-mode
 * trampoline, and share the long-mode switch.
 */
#include "tests/guest/guest.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

#define CR0_PE		0x00000001
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xc0000080
#define EFER_LME	0x00000100
#define EFER_NXE	0x00000800

/* Page-table entry bits. */
#define PTE_P		0x001	/* present */
#define PTE_RW		0x002	/* writable */
#define PTE_US		0x004	/* user: ring 3 may touch all of it (a test guest) */
#define PTE_PWT		0x008
#define PTE_PCD		0x010	/* with PWT: uncached */
#define PTE_PS		0x080	/* 2 MiB page */
#define PTE_TABLE	(PTE_P | PTE_RW | PTE_US)
#define PTE_RAM		(PTE_P | PTE_RW | PTE_US | PTE_PS)
#define PTE_MMIO	(PTE_RAM | PTE_PCD | PTE_PWT)
#define MMIO_START	0xc0000000	/* 3 GiB - 4 GiB: the PCI hole, APIC, IOAPIC */

/*
 * The PVH note: name "Xen", type PHYS32_ENTRY, a 4-byte descriptor holding
 * the entry's physical address. The note is 4-aligned (loaders compute the
 * descriptor's offset with the PT_NOTE segment's alignment, which must stay 4).
 * QEMU reads the descriptor of an ELF64 as 8 bytes straight from the file:
 * guest.ld puts 4 zero bytes right after this section, outside the note.
 */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4				/* namesz: "Xen\0" */
	.long 4				/* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_start32		/* desc: 32-bit physical entry */

/*
 * The one GDT of every CPU and mode. The 32-bit code segment serves the
 * boot and the APs' trampoline; the TSS descriptors are filled by cpu.c.
 * Its pointer has a 64-bit base; 32-bit lgdt reads the low half of it.
 */
	.data
	.balign 16
	.globl gdt
gdt:
	.quad 0				/* null */
	.quad 0x00cf9a000000ffff	/* 0x08 32-bit code, ring 0, flat */
	.quad 0x00cf92000000ffff	/* 0x10 data, ring 0, flat */
	.quad 0x00af9a000000ffff	/* 0x18 64-bit code, ring 0 */
	.quad 0x00cff2000000ffff	/* 0x20 data, ring 3 */
	.quad 0x00affa000000ffff	/* 0x28 64-bit code, ring 3 */
	.fill 2 * MAX_CPUS, 8, 0	/* 0x30: one 16-byte TSS descriptor per CPU */
gdt_end:
	.balign 8
	.globl gdt_ptr
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt

	/* The start_info address EBX held at entry, for kmain. */
	.balign 4
	.globl boot_start_info
boot_start_info:
	.long 0

/*
 * Identity-mapped page tables for the first 4 GiB, built by the assembler so
 * that the (emulated, slow) ring-0 boot does not spend time writing them:
 * PML4[0] -> PDPT, PDPT[0..3] -> four page directories of 2 MiB pages.
 * Everything from 3 GiB up is uncached (MMIO: local APIC at 0xfee00000).
 */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + PTE_TABLE
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + PTE_TABLE
	.quad pd + 0x1000 + PTE_TABLE
	.quad pd + 0x2000 + PTE_TABLE
	.quad pd + 0x3000 + PTE_TABLE
	.fill 508, 8, 0
pd:
	.set addr, 0
	.rept 2048
	.if addr >= MMIO_START
	.quad addr + PTE_MMIO
	.else
	.quad addr + PTE_RAM
	.endif
	.set addr, addr + 0x200000
	.endr

	.section .text.entry32, "ax"
	.code32

/* The bootstrap processor's entry, from the PVH loader. */
	.globl pvh_start32
pvh_start32:
	cli
	cld
	movl %ebx, boot_start_info
	lgdt gdt_ptr
	ljmp $SEL_CODE32, $1f		/* reload CS from our GDT */
1:	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	movl %eax, %ss
	movl $bsp_start64, %esi		/* where long mode continues */
	jmp long_mode_on

/* An application processor's entry, from trampoline.S (GDT already loaded). */
	.globl ap_entry32
ap_entry32:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	movl %eax, %ss
	movl $ap_start64, %esi
	/* fall through */

/*
 * Paging with PAE, EFER.LME (and NXE when the CPU has NX), then paging on:
 * the CPU is in long mode once CS is a 64-bit segment. ESI = 64-bit target.
 */
long_mode_on:
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3

	xorl %edi, %edi			/* extra EFER bits */
	movl $0x80000000, %eax
	cpuid
	cmpl $0x80000001, %eax
	jb 2f
	movl $0x80000001, %eax
	cpuid
	btl $20, %edx			/* NX */
	jnc 2f
	movl $EFER_NXE, %edi
2:	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	orl %edi, %eax
	wrmsr

	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $SEL_CODE64, $long_mode_entry

	.code64
long_mode_entry:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl %esi, %esi			/* upper half undefined after the switch */
	jmp *%rsi

	.section .note.GNU-stack, "", @progbits
