/* SPDX-License-Identifier: MIT */
#include "vmm/boot/mptable.h"

#include <errno.h>
#include <string.h>

#include "vmm/boot/le.h"

#define MP_FLOAT_SIZE	16
#define MP_HEADER_SIZE	44
#define MP_SPEC_REV	4		/* 1.4 */

/* Entry types and sizes. */
#define MP_PROCESSOR	0
#define MP_BUS		1
#define MP_IOAPIC	2
#define MP_IOINTR	3
#define MP_LINTR	4
#define MP_PROC_SIZE	20
#define MP_ENTRY_SIZE	8

#define MP_CPU_ENABLED	0x01
#define MP_CPU_BSP	0x02
#define MP_IOAPIC_EN	0x01
#define MP_INT		0		/* vectored interrupt */
#define MP_NMI		1
#define MP_EXTINT	3
#define MP_ALL_LAPICS	0xff
#define ISA_IRQS	16
#define ISA_CASCADE	2

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

size_t mptable_size(unsigned int ncpus)
{
	return MP_FLOAT_SIZE + MP_HEADER_SIZE + ncpus * MP_PROC_SIZE +
	       MP_ENTRY_SIZE * (1 + 1 + (ISA_IRQS - 1) + 2);
}

static uint8_t *put_processor(uint8_t *p, unsigned int id,
			      const struct mptable_cpus *cpus)
{
	memset(p, 0, MP_PROC_SIZE);
	p[0] = MP_PROCESSOR;
	p[1] = (uint8_t)id;
	p[2] = MPTABLE_LAPIC_VERSION;
	p[3] = MP_CPU_ENABLED | (id == 0 ? MP_CPU_BSP : 0);
	le32_put(p + 4, cpus->signature);
	le32_put(p + 8, cpus->features);
	return p + MP_PROC_SIZE;
}

/* An I/O (type 3) or local (type 4) interrupt entry, flags 0: conforming. */
static uint8_t *put_intr(uint8_t *p, uint8_t entry, uint8_t kind,
			 uint8_t src_irq, uint8_t dst_id, uint8_t dst_pin)
{
	p[0] = entry;
	p[1] = kind;
	le16_put(p + 2, 0);
	p[4] = 0;			/* source bus: ISA */
	p[5] = src_irq;
	p[6] = dst_id;
	p[7] = dst_pin;
	return p + MP_ENTRY_SIZE;
}

long mptable_build(uint8_t *buf, size_t len, uint32_t gpa,
		   const struct mptable_cpus *cpus)
{
	unsigned int n = cpus->count, entries = 0;
	uint8_t ioapic_id = (uint8_t)n;
	size_t size = mptable_size(n);
	uint8_t *fp = buf, *cfg = buf + MP_FLOAT_SIZE, *p;

	if (n == 0 || n > MPTABLE_MAX_CPUS)
		return -EINVAL;
	if (len < size)
		return -ENOSPC;
	memset(buf, 0, size);

	p = cfg + MP_HEADER_SIZE;
	for (unsigned int i = 0; i < n; i++, entries++)
		p = put_processor(p, i, cpus);

	p[0] = MP_BUS;
	p[1] = 0;
	memcpy(p + 2, "ISA   ", 6);
	p += MP_ENTRY_SIZE;
	entries++;

	p[0] = MP_IOAPIC;
	p[1] = ioapic_id;
	p[2] = MPTABLE_IOAPIC_VERSION;
	p[3] = MP_IOAPIC_EN;
	le32_put(p + 4, MPTABLE_IOAPIC_ADDR);
	p += MP_ENTRY_SIZE;
	entries++;

	for (uint8_t irq = 0; irq < ISA_IRQS; irq++) {
		if (irq == ISA_CASCADE)
			continue;
		p = put_intr(p, MP_IOINTR, MP_INT, irq, ioapic_id,
			     irq == 0 ? MPTABLE_IRQ0_PIN : irq);
		entries++;
	}
	p = put_intr(p, MP_LINTR, MP_EXTINT, 0, MP_ALL_LAPICS, 0);
	p = put_intr(p, MP_LINTR, MP_NMI, 0, MP_ALL_LAPICS, 1);
	entries += 2;

	memcpy(cfg, "PCMP", 4);
	le16_put(cfg + 4, (uint16_t)(p - cfg));
	cfg[6] = MP_SPEC_REV;
	memcpy(cfg + 8, "SNAPFS  ", 8);		/* OEM id */
	memcpy(cfg + 16, "SNAPVM      ", 12);	/* product id */
	le16_put(cfg + 34, (uint16_t)entries);
	le32_put(cfg + 36, MPTABLE_LAPIC_ADDR);
	cfg[7] = checksum(cfg, (size_t)(p - cfg));

	memcpy(fp, "_MP_", 4);
	le32_put(fp + 4, gpa + MP_FLOAT_SIZE);
	fp[8] = 1;				/* length in 16-byte units */
	fp[9] = MP_SPEC_REV;
	fp[10] = checksum(fp, MP_FLOAT_SIZE);
	return (long)size;
}
