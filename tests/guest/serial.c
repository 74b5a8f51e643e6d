/*
 * Output on the 8250 UART at 0x3f8 (ttyS0), polled, no interrupts.
 *
 * Several CPUs print (ticks from CPU 0's timer, pass and mismatch lines from
 * every worker), so a line is formatted first and written whole under a
 * spinlock: lines never interleave. Ring 3 prints too (IOPL is 3 there, so
 * in/out are allowed) but never disables interrupts: CPU 0's timer interrupt
 * may arrive while CPU 0 holds the lock, so interrupt context only ever
 * tries the lock (kprintf_try) and prints later when it is busy.
 */
#include "tests/guest/guest.h"

#define COM1		0x3f8
#define UART_THR	0	/* transmit holding register */
#define UART_IER	1
#define UART_FCR	2
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define LSR_THRE	0x20	/* transmitter holding register empty */

static volatile int serial_lock;

void serial_init(void)
{
	outb(COM1 + UART_IER, 0x00);	/* no UART interrupts */
	outb(COM1 + UART_LCR, 0x80);	/* DLAB: the divisor follows */
	outb(COM1 + UART_THR, 0x01);	/* 115200 baud */
	outb(COM1 + UART_IER, 0x00);
	outb(COM1 + UART_LCR, 0x03);	/* 8N1 */
	outb(COM1 + UART_FCR, 0x07);	/* FIFOs on and cleared */
	outb(COM1 + UART_MCR, 0x03);	/* DTR, RTS */
}

static void serial_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & LSR_THRE))
		cpu_relax();
	outb(COM1 + UART_THR, (uint8_t)c);
}

/* ---- a small formatter ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, char c)
{
	if (b->len + 1 < b->cap)
		b->p[b->len++] = c;
}

/* v in base; at least width digits, padded with zeros (pad0) or spaces. */
static void put_num(struct buf *b, uint64_t v, unsigned int base, int neg,
		    unsigned int width, int pad0)
{
	char tmp[24];
	unsigned int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		put(b, '-');
	for (; width > n + (neg != 0); width--)
		put(b, pad0 ? '0' : ' ');
	while (n)
		put(b, tmp[--n]);
}

static void format(struct buf *b, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		unsigned int width = 0;
		int lng = 0, pad0 = 0;

		if (*fmt != '%') {
			put(b, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0') {
			pad0 = 1;
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned int)(*fmt++ - '0');
		while (*fmt == 'l') {
			lng = 1;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			int64_t v = lng ? va_arg(ap, long) : va_arg(ap, int);

			put_num(b, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad0);
			break;
		}
		case 'u':
			put_num(b, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int),
				10, 0, width, pad0);
			break;
		case 'x':
			put_num(b, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int),
				16, 0, width, pad0);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);

			while (*s)
				put(b, *s++);
			break;
		}
		case 'c':
			put(b, (char)va_arg(ap, int));
			break;
		case '%':
			put(b, '%');
			break;
		default:	/* unknown conversion: stop here */
			return;
		}
	}
}

static int lock_try(void)
{
	return !__atomic_exchange_n(&serial_lock, 1, __ATOMIC_ACQUIRE);
}

static void lock_release(void)
{
	__atomic_store_n(&serial_lock, 0, __ATOMIC_RELEASE);
}

static void write_line(const struct buf *b)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		serial_putc(b->p[i]);
}

void kprintf(const char *fmt, ...)
{
	char line[192];
	struct buf b = { line, 0, sizeof(line) };
	va_list ap;

	va_start(ap, fmt);
	format(&b, fmt, ap);
	va_end(ap);

	while (!lock_try())
		while (serial_lock)
			cpu_relax();
	write_line(&b);
	lock_release();
}

int kprintf_try(const char *fmt, ...)
{
	char line[192];
	struct buf b = { line, 0, sizeof(line) };
	va_list ap;

	if (!lock_try())
		return 0;
	va_start(ap, fmt);
	format(&b, fmt, ap);
	va_end(ap);
	write_line(&b);
	lock_release();
	return 1;
}
