/*
 * The IDT and the C side of every interrupt.
 *
 * Vectors 0-31: exceptions, reported on the serial port, then the CPU halts.
 * 32-47: the legacy PIC (only IRQ 0, the PIT, is unmasked; the others can
 * only be spurious). 255: the local APIC's spurious vector. Others stay
 * not present, so a stray vector shows up as a #NP fault naming it.
 */
#include "tests/guest/guest.h"

#define NR_STUBS	49	/* irq.S: vectors 0-47, then 255 */
#define GATE_INTR	0x8e	/* present, DPL 0, 64-bit interrupt gate */

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "idt_gate");


extern const uint64_t trap_stubs[NR_STUBS];

static struct idt_gate idt[256] __attribute__((aligned(16)));

static void set_gate(unsigned int vec, uint64_t handler)
{
	idt[vec].off_lo = handler & 0xffff;
	idt[vec].sel = SEL_CODE64;
	idt[vec].ist = 0;
	idt[vec].type = GATE_INTR;
	idt[vec].off_mid = (handler >> 16) & 0xffff;
	idt[vec].off_hi = handler >> 32;
	idt[vec].zero = 0;
}

void idt_init(void)
{
	unsigned int v;

	for (v = 0; v < 48; v++)
		set_gate(v, trap_stubs[v]);
	set_gate(VEC_SPURIOUS, trap_stubs[48]);
}

void idt_load(void)
{
	struct desc_ptr p = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

	__asm__ volatile("lidt %0" : : "m"(p));
}

/* This CPU's number, from the TSS selector it loaded (cpu.c). */
static unsigned int this_cpu(void)
{
	uint16_t tr;

	__asm__ volatile("str %0" : "=r"(tr));
	return tr >= SEL_TSS(0) ? (unsigned int)(tr - SEL_TSS(0)) / 16 : 0;
}

/*
 * Report and stop this CPU. The fault may have hit while this CPU held the
 * serial lock, so only try it, for a while; the other CPUs go on.
 */
static void fault(const struct trap_frame *f)
{
	uint64_t cr2;
	long i;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	for (i = 0; i < 10000000; i++) {
		if (kprintf_try("snapfs-guest FAULT vec=%lu rip=0x%lx err=0x%lx cpu=%u "
				"cs=0x%lx rsp=0x%lx cr2=0x%lx\n", f->vector, f->rip,
				f->error, this_cpu(), f->cs, f->rsp, cr2))
			break;
		cpu_relax();
	}
	halt_forever();
}

void trap_dispatch(struct trap_frame *f)
{
	if (f->vector == VEC_TIMER)
		timer_interrupt();
	else if (f->vector == VEC_PIC_BASE + 15)
		outb(0x20, 0x20);	/* slave spurious: the master saw a real IRQ 2 */
	else if (f->vector > VEC_PIC_BASE)
		;			/* master spurious IRQ 7, APIC spurious: no EOI */
	else
		fault(f);
}
