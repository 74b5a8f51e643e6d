/*
 * CPUs from the ACPI MADT, the second source after the MP table (smp.c).
 *
 * Only read when start_info gives the RSDP's address (QEMU's PVH loader does;
 * the guest never scans for it): RSDP -> RSDT or XSDT -> "APIC" table, whose
 * type-0 entries (processor local APIC) carry an APIC id and an enabled flag.
 * Every table's signature and checksum is checked before use.
 */
#include "tests/guest/guest.h"

#define LOW_4G		0x100000000ULL
#define SDT_HEADER	36		/* signature, length, ..., creator revision */
#define MADT_ENTRIES	44		/* + local APIC address, flags */
#define MADT_LAPIC	0
#define LAPIC_ENABLED	0x01

static uint32_t le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int sum_ok(const uint8_t *p, uint32_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return sum == 0;
}

/* A system description table at paddr with this signature, or NULL. */
static const uint8_t *sdt(uint64_t paddr, const char *sig)
{
	const uint8_t *t = (const uint8_t *)(uintptr_t)paddr;
	uint32_t len;

	if (paddr == 0 || paddr >= LOW_4G - SDT_HEADER || memcmp(t, sig, 4) != 0)
		return NULL;
	len = le32(t + 4);
	if (len < SDT_HEADER || len > LOW_4G - paddr || len > 1024 * 1024 ||
	    !sum_ok(t, len))
		return NULL;
	return t;
}

/* The MADT through the XSDT (ACPI 2+) or else the RSDT. */
static const uint8_t *find_madt(uint64_t rsdp_paddr)
{
	const uint8_t *rsdp = (const uint8_t *)(uintptr_t)rsdp_paddr;
	const uint8_t *root;
	unsigned int width, i, n;

	if (rsdp_paddr == 0 || rsdp_paddr >= LOW_4G - 36 ||
	    memcmp(rsdp, "RSD PTR ", 8) != 0 || !sum_ok(rsdp, 20))
		return NULL;
	root = NULL;
	width = 8;
	if (rsdp[15] >= 2 && sum_ok(rsdp, 36))
		root = sdt(le64(rsdp + 24), "XSDT");
	if (!root) {
		root = sdt(le32(rsdp + 16), "RSDT");
		width = 4;
	}
	if (!root)
		return NULL;
	n = (le32(root + 4) - SDT_HEADER) / width;
	for (i = 0; i < n; i++) {
		const uint8_t *e = root + SDT_HEADER + i * width;
		const uint8_t *t = sdt(width == 8 ? le64(e) : le32(e), "APIC");

		if (t)
			return t;
	}
	return NULL;
}

unsigned int acpi_cpus(uint64_t rsdp_paddr, uint32_t *ids, unsigned int max)
{
	const uint8_t *madt = find_madt(rsdp_paddr), *e, *end;
	unsigned int n = 0;

	if (!madt)
		return 0;
	end = madt + le32(madt + 4);
	for (e = madt + MADT_ENTRIES; e + 2 <= end && e[1] >= 2 && n < max; e += e[1])
		if (e[0] == MADT_LAPIC && e[1] >= 8 && e + 8 <= end &&
		    (le32(e + 4) & LAPIC_ENABLED))
			ids[n++] = e[3];
	return n;
}
