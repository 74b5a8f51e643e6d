/*
 * First 64-bit code of each CPU: a stack, then C.
 *
 * The bootstrap processor runs kmain on CPU 0's ring-0 stack; an AP takes the
 * stack and CPU number that smp.c published before it sent the SIPI.
 */
#include "tests/guest/guest.h"

	.text
	.code64
	.globl bsp_start64
bsp_start64:
	movq $(kernel_stacks + KSTACK_SIZE), %rsp
	xorl %ebp, %ebp
	movl boot_start_info(%rip), %edi
	call kmain
	jmp 1f

	.globl ap_start64
ap_start64:
	movq ap_boot_stack(%rip), %rsp
	xorl %ebp, %ebp
	movl ap_boot_cpu(%rip), %edi
	call ap_main
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
