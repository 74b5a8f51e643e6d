/*
 * Per-CPU setup in ring 0: this CPU's TSS, the descriptor tables, SSE/AVX,
 * and the drop to ring 3.
 */
#include "tests/guest/guest.h"

#define CR0_MP		(1UL << 1)
#define CR0_EM		(1UL << 2)
#define CR0_TS		(1UL << 3)
#define CR0_NE		(1UL << 5)
#define CR4_OSFXSR	(1UL << 9)
#define CR4_OSXMMEXCPT	(1UL << 10)
#define CR4_OSXSAVE	(1UL << 18)
#define CPUID1_XSAVE	(1U << 26)
#define CPUID1_AVX	(1U << 28)
#define XCR0_X87	1
#define XCR0_SSE	2
#define XCR0_AVX	4

#define RFLAGS_RSVD	0x0002	/* bit 1, always set */
#define RFLAGS_IF	0x0200
#define RFLAGS_IOPL3	0x3000	/* ring 3 may use in/out (the serial port) */

/* 64-bit TSS: only RSP0 matters (the stack of interrupts from ring 3). */
struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss) == 104, "tss");


extern uint64_t gdt[GDT_ENTRIES];
extern struct desc_ptr gdt_ptr;

static struct tss tss[MAX_CPUS] __attribute__((aligned(64)));

int cpu_has_avx;

/* An available 64-bit TSS descriptor (two GDT slots) for this CPU. */
static void tss_install(unsigned int cpu, uint64_t kernel_stack_top)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss[cpu];
	uint64_t limit = sizeof(struct tss) - 1;
	unsigned int slot = GDT_FIXED + 2 * cpu;

	tss[cpu].rsp[0] = kernel_stack_top;
	tss[cpu].iomap_base = sizeof(struct tss);	/* no I/O bitmap */
	gdt[slot] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
		    (0x89ULL << 40) |			/* present, type 9 */
		    ((limit >> 16) & 0xf) << 48 |
		    ((base >> 24) & 0xff) << 56;
	gdt[slot + 1] = base >> 32;
}

/* SSE always; AVX state in XCR0 when CPUID offers XSAVE and AVX. */
static void simd_enable(void)
{
	unsigned long cr0, cr4;
	uint32_t r[4];

	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	cr0 = (cr0 & ~(CR0_EM | CR0_TS)) | CR0_MP | CR0_NE;
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0));

	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
	cpuid(1, 0, r);
	if ((r[2] & CPUID1_XSAVE) && (r[2] & CPUID1_AVX))
		cr4 |= CR4_OSXSAVE;
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
	__asm__ volatile("fninit");

	cpu_has_avx = 0;
	if (cr4 & CR4_OSXSAVE) {
		uint32_t xcr0 = XCR0_X87 | XCR0_SSE;

		cpuid(0xd, 0, r);	/* r[0]: the XCR0 bits this CPU supports */
		xcr0 |= r[0] & XCR0_AVX;
		__asm__ volatile("xsetbv" : : "c"(0), "a"(xcr0), "d"(0));
		cpu_has_avx = (xcr0 & XCR0_AVX) != 0;
	}
}

void cpu_init(unsigned int cpu, uint64_t kernel_stack_top)
{
	tss_install(cpu, kernel_stack_top);
	/* Reload the GDT in 64-bit mode (full 64-bit base), then TR and IDT. */
	__asm__ volatile("lgdt %0" : : "m"(gdt_ptr));
	__asm__ volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS(cpu)));
	idt_load();
	simd_enable();
}

void cpu_enter_user(unsigned int cpu, void (*fn)(unsigned int), uint64_t stack_top,
		    int intr)
{
	uint64_t rflags = RFLAGS_RSVD | RFLAGS_IOPL3 | (intr ? RFLAGS_IF : 0);
	/* As if fn had been called: RSP + 8 16-byte aligned at its entry. */
	uint64_t rsp = (stack_top & ~15ULL) - 8;

	__asm__ volatile("movl %[ds], %%eax\n\t"
			 "movl %%eax, %%ds\n\t"
			 "movl %%eax, %%es\n\t"
			 "pushq %[ss]\n\t"
			 "pushq %[rsp]\n\t"
			 "pushq %[rflags]\n\t"
			 "pushq %[cs]\n\t"
			 "pushq %[rip]\n\t"
			 "iretq"
			 :
			 : "D"((uint64_t)cpu), [ds] "i"(SEL_UDATA), [ss] "i"(SEL_UDATA),
			   [rsp] "r"(rsp), [rflags] "r"(rflags), [cs] "i"(SEL_UCODE),
			   [rip] "r"((uint64_t)(uintptr_t)fn)
			 : "rax", "memory");
	__builtin_unreachable();
}
