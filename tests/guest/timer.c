/*
 * The timer: legacy PIC and PIT channel 0 at 100 Hz, on CPU 0 only.
 *
 * The handler runs in ring 0, which is emulated (slow) on PVM-based KVM, so it
 * does little: count, and on every 10th interrupt after "ready" print
 * "tick N", or power off when halt_after says so. When the serial lock is
 * busy (CPU 0 may hold it in the code interrupted) the line waits for the
 * next interrupt, 10 ms later; its number does not change.
 */
#include "tests/guest/guest.h"

#define PIC1_CMD	0x20
#define PIC1_DATA	0x21
#define PIC2_CMD	0xa0
#define PIC2_DATA	0xa1
#define PIC_EOI		0x20
#define PIT_CH0		0x40
#define PIT_CMD		0x43
#define PIT_HZ		1193182
#define I8042_STATUS	0x64
#define I8042_RESET	0xfe

volatile uint64_t timer_jiffies;

static volatile int ticking;	/* set at ready */
static unsigned int sub_ticks;	/* PIT interrupts since the last 100 ms mark */
static unsigned int ticks_due;	/* 100 ms marks not printed yet */
static uint64_t tick_no;	/* number of the next "tick" line */
static long halt_at = -1;

void timer_init(void)
{
	unsigned int div = (PIT_HZ + TIMER_HZ / 2) / TIMER_HZ;

	/* PIC: ICW1 (init, ICW4 follows), ICW2 (vector base), ICW3 (cascade
	 * on IRQ 2), ICW4 (8086 mode); then mask everything but IRQ 0. */
	outb(PIC1_CMD, 0x11);
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, VEC_PIC_BASE);
	outb(PIC2_DATA, VEC_PIC_BASE + 8);
	outb(PIC1_DATA, 0x04);
	outb(PIC2_DATA, 0x02);
	outb(PIC1_DATA, 0x01);
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, 0xfe);
	outb(PIC2_DATA, 0xff);

	/* PIT channel 0: lobyte/hibyte, mode 2 (rate generator). */
	outb(PIT_CMD, 0x34);
	outb(PIT_CH0, div & 0xff);
	outb(PIT_CH0, div >> 8);
}

/* Called on CPU 0, which takes the timer: the flag goes last. */
void timer_start_ticks(long halt_after)
{
	halt_at = halt_after;
	sub_ticks = 0;
	ticks_due = 0;
	tick_no = 0;
	__atomic_store_n(&ticking, 1, __ATOMIC_RELEASE);
}

/* The reset line through the keyboard controller: QEMU -no-reboot and snapvm end. */
static void poweroff(void)
{
	int i;

	for (i = 0; i < 1000 && (inb(I8042_STATUS) & 0x02); i++)
		cpu_relax();
	outb(I8042_STATUS, I8042_RESET);
	halt_forever();
}

void timer_interrupt(void)
{
	timer_jiffies++;
	if (ticking && ++sub_ticks == TIMER_HZ / 10) {
		sub_ticks = 0;
		ticks_due++;
	}
	while (ticks_due) {
		if (halt_at >= 0 && tick_no == (uint64_t)halt_at) {
			if (!kprintf_try("snapfs-guest poweroff\n"))
				break;
			poweroff();
		}
		if (!kprintf_try("tick %lu\n", tick_no))
			break;
		tick_no++;
		ticks_due--;
	}
	outb(PIC1_CMD, PIC_EOI);
}
