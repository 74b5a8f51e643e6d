/*
 * Interrupt and exception entry stubs.
 *
 * Every stub leaves the same frame (struct trap_frame in guest.h): a vector
 * number and an error code (0 when the CPU pushes none), then all general
 * registers. trap_dispatch() in idt.c does the rest. All general registers
 * come back unchanged, r12-r15 included (they hold the worker's live values);
 * the C code never touches the SSE/AVX registers, so they need no saving.
 */
#include "tests/guest/guest.h"

/* Exceptions for which the CPU pushes an error code. */
#define HAS_ERR(n) ((n) == 8 || (n) == 10 || (n) == 11 || (n) == 12 || \
		    (n) == 13 || (n) == 14 || (n) == 17 || (n) == 21 || \
		    (n) == 29 || (n) == 30)

	.macro STUB n
	.balign 8
trap_stub_\n:
	.if HAS_ERR(\n)
	pushq $\n
	.else
	pushq $0
	pushq $\n
	.endif
	jmp trap_common
	.endm

	.text
	.code64
trap_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	movq %rsp, %rdi
	call trap_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp			/* vector and error code */
	iretq

	/* Vectors 0-31 (exceptions), 32-47 (the PIC's IRQs), 255 (APIC spurious). */
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	STUB \n
	.endr
	.irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,255
	STUB \n
	.endr

	/* Their addresses, for idt.c: entries 0-47, then vector 255's. */
	.section .rodata
	.balign 8
	.globl trap_stubs
trap_stubs:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad trap_stub_\n
	.endr
	.irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,255
	.quad trap_stub_\n
	.endr

	.section .note.GNU-stack, "", @progbits
