/*
 * snapfs test guest: declarations shared by its files.
 *
 * The guest is a small freestanding x86-64 kernel booted through the PVH
 * entry (see entry32.S). Ring 0 sets up the CPUs, the timer and the other
 * processors; each CPU then runs a worker in ring 3 (work.c) that writes and
 * checks a memory pattern and keeps live values in its registers, so that a
 * snapshot restore that loses a page or a register is reported by the guest.
 *
 * All C code is built with -mgeneral-regs-only (the kernel never touches the
 * SSE/AVX registers the worker keeps live) and -ffixed-r12..r15 (no C code
 * ever uses r12-r15, which hold the worker's live values).
 */
#ifndef GUEST_H
#define GUEST_H

#define MAX_CPUS	64
#define PAGE_SIZE	4096
#define MIB		(1024 * 1024)

/* Segment selectors of the one GDT (entry32.S lays it out). */
#define SEL_CODE32	0x08
#define SEL_DATA	0x10
#define SEL_CODE64	0x18
#define SEL_UDATA	0x23	/* ring-3 data, RPL 3 */
#define SEL_UCODE	0x2b	/* ring-3 64-bit code, RPL 3 */
#define SEL_TSS(cpu)	(0x30 + 16 * (cpu))
#define GDT_FIXED	6	/* null, code32, data, code64, udata, ucode */
#define GDT_ENTRIES	(GDT_FIXED + 2 * MAX_CPUS)	/* + a 16-byte TSS each */

#define KSTACK_SIZE	8192	/* per-CPU ring-0 stack (TSS.RSP0) */
#define USTACK_SIZE	16384	/* per-CPU ring-3 stack */

/* Interrupt vectors. */
#define VEC_PIC_BASE	32	/* legacy PIC IRQ 0-15 -> vectors 32-47 */
#define VEC_TIMER	VEC_PIC_BASE
#define VEC_SPURIOUS	0xff	/* local APIC spurious vector */

#define TIMER_HZ	100	/* PIT rate; a "tick" line every 10 interrupts */

/* Where the AP real-mode trampoline is copied (below 1 MiB, 4 KiB aligned). */
#define TRAMPOLINE_ADDR	0x8000

#define LAPIC_BASE	0xfee00000

#ifndef __ASSEMBLER__

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* The operand of lgdt and lidt: limit and linear base. */
struct desc_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

/* ---- port I/O and small CPU helpers ---- */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

static inline void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* ---- string.c: what the compiler may call ---- */

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* ---- serial.c: 8250 UART at 0x3f8, polled, whole lines under a lock ---- */

void serial_init(void);
/*
 * printf subset: %d %u %x %s %c, 0 and width, the l modifier. One call
 * writes one whole line under the serial lock, waiting for it; never call
 * it from an interrupt handler (CPU 0 may hold the lock in the code it
 * interrupted). kprintf_try is for those: it prints only if the lock is
 * free at once and returns whether it did.
 */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kprintf_try(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- bootinfo.c: the PVH start_info ---- */

struct mem_range {
	uint64_t addr;
	uint64_t size;
};

#define MAX_RAM_RANGES 32

struct boot_info {
	char cmdline[512];
	struct mem_range ram[MAX_RAM_RANGES];	/* type-1 entries of the map */
	unsigned int nr_ram;
	uint64_t rsdp_paddr;			/* ACPI, 0 when none */
};

/* Copy what the guest needs out of start_info (before anything overwrites it). */
void bootinfo_parse(uint32_t start_info_paddr, struct boot_info *bi);

/* ---- cmdline.c ---- */

struct options {
	unsigned long touch_mib;	/* touch=MIB, default 0 */
	unsigned long rate;		/* rate=PAGES_PER_SEC, default 1000, 0 = unpaced */
	unsigned long cpus;		/* cpus=N, 0 when absent */
	long halt_after;		/* halt_after=TICKS, -1 when absent */
	unsigned long selftest;		/* selftest=1: corrupt once, to see MISMATCH */
};

void cmdline_parse(const char *s, struct options *opt);

/* ---- cpu.c: per-CPU descriptor tables and SIMD state ---- */

extern int cpu_has_avx;		/* set by cpu_init on CPU 0, same on every CPU */

/* Load the GDT, this CPU's TSS and the IDT; enable SSE (and AVX when present). */
void cpu_init(unsigned int cpu, uint64_t kernel_stack_top);
/* iretq to fn(cpu) in ring 3 on the given stack; IF set when intr is nonzero. */
void cpu_enter_user(unsigned int cpu, void (*fn)(unsigned int), uint64_t stack_top,
		    int intr) __attribute__((noreturn));

/* ---- idt.c ---- */

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

void idt_init(void);
void idt_load(void);
void trap_dispatch(struct trap_frame *f);	/* called by irq.S */

/* ---- timer.c: PIC, PIT, ticks, poweroff ---- */

extern volatile uint64_t timer_jiffies;		/* PIT interrupts on CPU 0 */

void timer_init(void);
void timer_interrupt(void);
/* From now on print "tick N" every 100 ms (called once, at ready). */
void timer_start_ticks(long halt_after);

/* ---- acpi.c ---- */

/* APIC ids of the enabled CPUs the ACPI MADT lists (at most max); 0 if none. */
unsigned int acpi_cpus(uint64_t rsdp_paddr, uint32_t *ids, unsigned int max);

/* ---- smp.c ---- */

unsigned int smp_bsp_apic_id(void);
void lapic_init_bsp(void);
/* Start the other CPUs; returns how many CPUs run (BSP included). */
unsigned int smp_boot(const struct boot_info *bi, unsigned long cpus_opt,
		      uint64_t (*stack_for)(unsigned int));
extern volatile unsigned int smp_cpus_up;

/* ---- start64.S and main.c ---- */

extern uint8_t kernel_stacks[MAX_CPUS][KSTACK_SIZE];	/* CPU 0's is kmain's */
void kmain(uint32_t start_info_paddr) __attribute__((noreturn));

void ap_main(unsigned int cpu) __attribute__((noreturn));
extern volatile uint64_t ap_boot_stack;	/* read by ap_start64 */
extern volatile uint32_t ap_boot_cpu;

/* ---- work.c: the ring-3 worker ---- */

void work_setup(const struct boot_info *bi, const struct options *opt,
		unsigned int ncpus);
void work_main(unsigned int cpu) __attribute__((noreturn));

/* ---- regs.S: the worker's live register image ---- */

/*
 * The image is r12, r13, r14, r15, then xmm8..xmm15 as 32 bytes each (the
 * upper 16 bytes are the upper halves of ymm8..ymm15, used when avx != 0).
 */
#define REGS_NGPR	4
#define REGS_NVEC	8
#define REGS_WORDS	(REGS_NGPR + REGS_NVEC * 4)
void regs_put(const uint64_t *img, int avx);
void regs_get(uint64_t *img, int avx);

/* Symbols of the linker script. */
extern char _image_end[];

#endif /* __ASSEMBLER__ */
#endif
