/*
 * The worker's live register image: put it into the registers, read it back.
 *
 * Image layout (uint64_t words): r12, r13, r14, r15, then for each of
 * xmm8..xmm15 four words: the low 128 bits (the xmm register) and the upper
 * 128 bits of the ymm register. With avx == 0 only the low 128 bits move.
 *
 * No C code of the guest uses r12-r15 (-ffixed-*) or any vector register
 * (-mgeneral-regs-only), and interrupt entry saves and restores r12-r15, so
 * between regs_put and regs_get these registers change only if something
 * outside the guest (a snapshot restore) changes them.
 */
	.text
	.code64

/* void regs_put(const uint64_t *img, int avx) */
	.globl regs_put
regs_put:
	movq 0(%rdi), %r12
	movq 8(%rdi), %r13
	movq 16(%rdi), %r14
	movq 24(%rdi), %r15
	testl %esi, %esi
	jz 1f
	vmovdqu 32(%rdi), %ymm8
	vmovdqu 64(%rdi), %ymm9
	vmovdqu 96(%rdi), %ymm10
	vmovdqu 128(%rdi), %ymm11
	vmovdqu 160(%rdi), %ymm12
	vmovdqu 192(%rdi), %ymm13
	vmovdqu 224(%rdi), %ymm14
	vmovdqu 256(%rdi), %ymm15
	ret
1:	movdqu 32(%rdi), %xmm8
	movdqu 64(%rdi), %xmm9
	movdqu 96(%rdi), %xmm10
	movdqu 128(%rdi), %xmm11
	movdqu 160(%rdi), %xmm12
	movdqu 192(%rdi), %xmm13
	movdqu 224(%rdi), %xmm14
	movdqu 256(%rdi), %xmm15
	ret

/* void regs_get(uint64_t *img, int avx) */
	.globl regs_get
regs_get:
	movq %r12, 0(%rdi)
	movq %r13, 8(%rdi)
	movq %r14, 16(%rdi)
	movq %r15, 24(%rdi)
	testl %esi, %esi
	jz 1f
	vmovdqu %ymm8, 32(%rdi)
	vmovdqu %ymm9, 64(%rdi)
	vmovdqu %ymm10, 96(%rdi)
	vmovdqu %ymm11, 128(%rdi)
	vmovdqu %ymm12, 160(%rdi)
	vmovdqu %ymm13, 192(%rdi)
	vmovdqu %ymm14, 224(%rdi)
	vmovdqu %ymm15, 256(%rdi)
	ret
1:	movdqu %xmm8, 32(%rdi)
	movdqu %xmm9, 64(%rdi)
	movdqu %xmm10, 96(%rdi)
	movdqu %xmm11, 128(%rdi)
	movdqu %xmm12, 160(%rdi)
	movdqu %xmm13, 192(%rdi)
	movdqu %xmm14, 224(%rdi)
	movdqu %xmm15, 256(%rdi)
	ret

	.section .note.GNU-stack, "", @progbits
