/*
 * Real-mode start of an application processor.
 *
 * smp.c copies the bytes between tramp_start and tramp_end to
 * TRAMPOLINE_ADDR (below 1 MiB, 4 KiB aligned) and sends the AP a
 * STARTUP IPI with vector TRAMPOLINE_ADDR >> 12: the AP starts here in real
 * mode with CS = TRAMPOLINE_ADDR >> 4, IP = 0. It loads the shared GDT,
 * turns protection on and jumps to ap_entry32 (entry32.S), which switches to
 * long mode the same way the bootstrap processor did.
 *
 * The code runs at an address other than its link address, so it only uses
 * offsets from tramp_start (DS = CS) and absolute addresses of the image.
 */
#include "tests/guest/guest.h"

	.text
	.code16
	.globl tramp_start, tramp_end
tramp_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl tramp_gdt_ptr - tramp_start	/* 32-bit base: the GDT is above 1 MiB */
	movl %cr0, %eax
	orl $1, %eax				/* CR0.PE */
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $ap_entry32		/* 32-bit offset, into the image */

	.balign 4
tramp_gdt_ptr:
	.word GDT_ENTRIES * 8 - 1
	.long gdt
tramp_end:

	.section .note.GNU-stack, "", @progbits
