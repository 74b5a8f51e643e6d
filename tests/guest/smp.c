/*
 * Other processors: count them from the MP table, start them with
 * INIT-SIPI-SIPI through the local APIC.
 *
 * MP table (Intel MultiProcessor Specification 1.4): a 16-byte floating
 * pointer "_MP_" on a 16-byte boundary in the first KiB of the EBDA (or the
 * last KiB of base memory) or in 0xF0000-0xFFFFF points to a "PCMP"
 * configuration table whose processor entries carry APIC ids and an
 * enabled flag. SeaBIOS lists only the first CPU of each package there (QEMU
 * 7.2's -smp N is one package of N cores), so the ACPI MADT, when start_info
 * points to ACPI, is read too and the longer list wins. The command line's
 * cpus=N overrides the count.
 *
 * APs start one at a time: publish a CPU number and a stack, send the IPIs,
 * wait until the AP counts itself in smp_cpus_up (main.c, ap_main).
 */
#include "tests/guest/guest.h"

#define MP_FLOAT_SIG	0x5f504d5f	/* "_MP_" */
#define MP_CONFIG_SIG	0x504d4350	/* "PCMP" */
#define MP_PROCESSOR	0
#define MP_CPU_ENABLED	0x01

#define LAPIC_ID	0x020
#define LAPIC_SVR	0x0f0
#define LAPIC_ICR_LO	0x300
#define LAPIC_ICR_HI	0x310
#define LAPIC_LVT_LINT0	0x350
#define LAPIC_LVT_LINT1	0x360
#define SVR_ENABLE	0x100
#define LVT_EXTINT	0x700
#define LVT_NMI		0x400
#define ICR_BUSY	(1U << 12)
#define ICR_INIT	0xc500	/* INIT, level triggered, assert */
#define ICR_STARTUP	0x0600	/* STARTUP; vector = trampoline page */

volatile uint64_t ap_boot_stack;
volatile uint32_t ap_boot_cpu;
volatile unsigned int smp_cpus_up = 1;

extern const char tramp_start[], tramp_end[];

static uint32_t lapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg) = v;
}

unsigned int smp_bsp_apic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

/* Software-enable the BSP's APIC; the PIC reaches it through LINT0 (ExtINT). */
void lapic_init_bsp(void)
{
	lapic_write(LAPIC_SVR, SVR_ENABLE | VEC_SPURIOUS);
	lapic_write(LAPIC_LVT_LINT0, LVT_EXTINT);
	lapic_write(LAPIC_LVT_LINT1, LVT_NMI);
}

static uint32_t le16(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return le16(p) | le16(p + 2) << 16;
}

static uint8_t checksum(const uint8_t *p, uint32_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return sum;
}

/* Ring 0 is slow on PVM: one aligned 32-bit load per 16-byte step. */
static const uint8_t *mp_scan(uint32_t base, uint32_t len)
{
	const uint32_t *p = (const uint32_t *)(uintptr_t)base;
	const uint32_t *end = p + len / 4;

	for (; p + 4 <= end; p += 4)
		if (*p == MP_FLOAT_SIG && ((const uint8_t *)p)[8] == 1 &&
		    checksum((const uint8_t *)p, 16) == 0)
			return (const uint8_t *)p;
	return NULL;
}

static const uint8_t *mp_find(void)
{
	uint32_t ebda = le16((const uint8_t *)0x40e) << 4;
	uint32_t basemem = le16((const uint8_t *)0x413) * 1024;
	const uint8_t *fp = NULL;

	if (ebda >= 0x80000 && ebda < 0xa0000)
		fp = mp_scan(ebda, 1024);
	else if (basemem >= 0x80000 && basemem <= 0xa0000)
		fp = mp_scan(basemem - 1024, 1024);
	if (!fp)
		fp = mp_scan(0xf0000, 0x10000);
	return fp;
}

/* APIC ids of the enabled processors the MP table lists; how many. */
static unsigned int mp_cpus(uint32_t *ids, unsigned int max)
{
	const uint8_t *fp = mp_find(), *cfg, *e, *end;
	unsigned int n = 0, i, count;

	if (!fp)
		return 0;
	if (fp[11] != 0) {		/* a default configuration: two CPUs */
		ids[0] = 0;
		ids[1] = 1;
		return 2;
	}
	cfg = (const uint8_t *)(uintptr_t)le32(fp + 4);
	if (cfg == NULL || (uintptr_t)cfg >= 0xc0000000 || le32(cfg) != MP_CONFIG_SIG ||
	    checksum(cfg, le16(cfg + 4)) != 0)
		return 0;
	count = le16(cfg + 34);
	e = cfg + 44;
	end = cfg + le16(cfg + 4);
	for (i = 0; i < count && e < end && n < max; i++) {
		if (e[0] == MP_PROCESSOR) {
			if (e[3] & MP_CPU_ENABLED)
				ids[n++] = e[1];
			e += 20;
		} else if (e[0] <= 4) {
			e += 8;		/* bus, I/O APIC, interrupt assignments */
		} else {
			break;		/* unknown entry: its size is unknown */
		}
	}
	return n;
}

static int id_listed(const uint32_t *ids, unsigned int n, uint32_t id)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* The CPUs to run, BSP first: the table's order, cut or extended to cpus=N. */
static unsigned int cpu_list(const struct boot_info *bi, unsigned long cpus_opt,
			     uint32_t *ids)
{
	uint32_t table[MAX_CPUS], madt[MAX_CPUS];
	unsigned int nt = mp_cpus(table, MAX_CPUS), n = 1, i;
	unsigned int nm = acpi_cpus(bi->rsdp_paddr, madt, MAX_CPUS);
	unsigned int want;
	uint32_t next = 0;

	if (nm > nt) {
		memcpy(table, madt, sizeof(table));
		nt = nm;
	}
	want = cpus_opt ? (unsigned int)cpus_opt : (nt ? nt : 1);
	if (want > MAX_CPUS)
		want = MAX_CPUS;
	ids[0] = smp_bsp_apic_id();
	for (i = 0; i < nt && n < want; i++)
		if (table[i] != ids[0])
			ids[n++] = table[i];
	/* More asked than listed: assume the next unused APIC ids. */
	while (n < want) {
		if (!id_listed(ids, n, next))
			ids[n++] = next;
		next++;
	}
	return n;
}

static void lapic_ipi(uint32_t apic_id, uint32_t icr)
{
	int i;

	lapic_write(LAPIC_ICR_HI, apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr);
	for (i = 0; i < 100000 && (lapic_read(LAPIC_ICR_LO) & ICR_BUSY); i++)
		cpu_relax();
}

/* Wait up to ticks timer interrupts for the count of CPUs up to pass old. */
static int wait_up(unsigned int old, uint64_t ticks)
{
	uint64_t start = timer_jiffies;

	while (smp_cpus_up == old)
		if (timer_jiffies - start > ticks)
			return 0;
		else
			cpu_relax();
	return 1;
}

unsigned int smp_boot(const struct boot_info *bi, unsigned long cpus_opt,
		      uint64_t (*stack_for)(unsigned int))
{
	uint32_t ids[MAX_CPUS];
	unsigned int n = cpu_list(bi, cpus_opt, ids), i;

	if (n < 2)
		return 1;
	memcpy((void *)(uintptr_t)TRAMPOLINE_ADDR, tramp_start,
	       (size_t)(tramp_end - tramp_start));
	for (i = 1; i < n; i++) {
		unsigned int cpu = smp_cpus_up;

		ap_boot_cpu = cpu;
		ap_boot_stack = stack_for(cpu);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		/* INIT, then STARTUP; a second STARTUP only if the first was missed
		 * (a CPU that is already running ignores it anyway). */
		lapic_ipi(ids[i], ICR_INIT);
		lapic_ipi(ids[i], ICR_STARTUP | (TRAMPOLINE_ADDR >> 12));
		if (wait_up(cpu, 2))
			continue;
		lapic_ipi(ids[i], ICR_STARTUP | (TRAMPOLINE_ADDR >> 12));
		if (!wait_up(cpu, TIMER_HZ))
			kprintf("snapfs-guest cpu apic=%u did not start\n", ids[i]);
	}
	return smp_cpus_up;
}
