/*
 * The ring-3 worker of every CPU: a memory pattern and live registers that
 * the guest checks itself, so that a snapshot restore which loses a page or a
 * register is reported on the console as "snapfs-guest MISMATCH ...".
 *
 * Memory: touch=MIB mebibytes from 64 MiB up (or from the end of the image,
 * whichever is higher), split evenly between the CPUs. Pass g over a CPU's
 * share writes every page with the content of (cpu, page, g): a 16-byte
 * header (cpu << 32 | page, g) and 510 words of xorshift64 seeded from all
 * three (pattern.h, which the host's checker shares). Before writing, the
 * page must still hold (cpu, page, g - 1).
 * Writes are paced to rate=PAGES_PER_SEC in total with CPU 0's timer ticks
 * (a small token bucket; rate=0: as fast as possible).
 *
 * Registers: r12-r15 and xmm8-xmm15 (ymm8-ymm15 with AVX) hold values derived
 * from (cpu, n), n counting iterations. Every iteration reads them back
 * (regs.S), compares, and loads the values of n + 1.
 *
 * selftest=1 proves the checks work: each worker loads wrong values into
 * r13, xmm9 (and ymm9's upper half) once, at iteration SELFTEST_ITER, and
 * flips a word of its page 0 after its first pass; the guest must report
 * each of them.
 */
#include "tests/guest/guest.h"
#include "tests/guest/pattern.h"

#define REGION_MIN	(64ULL * MIB)
#define REGION_ALIGN	(2ULL * MIB)
#define REGION_LIMIT	0xc0000000ULL	/* RAM below the 32-bit hole, identity mapped */
#define WORDS_PER_PAGE	(PAGE_SIZE / 8)
#define PRINT_WINDOW	(5 * TIMER_HZ)	/* pass lines: at most one per CPU per 5 s */
#define MISMATCH_LINES	16		/* mismatch lines per CPU per window */
#define SELFTEST_ITER	1000

static uint64_t region_base;
static uint64_t pages_per_cpu;
static unsigned int work_ncpus = 1;
static unsigned long work_rate;
static unsigned long work_touch_mib;
static long work_halt_after = -1;
static unsigned long work_selftest;
static volatile int work_go;		/* CPU 0 has printed "ready" */

/* Per-CPU state that the reporting helpers share. */
struct worker {
	unsigned int cpu;
	uint64_t window_start;		/* jiffies when the print window began */
	unsigned int lines;		/* mismatch lines printed in this window */
	uint64_t mismatches;		/* all of them, printed or not */
};

/* ---- setup, in ring 0 ---- */

void work_setup(const struct boot_info *bi, const struct options *opt,
		unsigned int ncpus)
{
	uint64_t start = (uint64_t)(uintptr_t)_image_end, avail = 0;
	unsigned int i;

	if (start < REGION_MIN)
		start = REGION_MIN;
	start = (start + REGION_ALIGN - 1) & ~(REGION_ALIGN - 1);
	for (i = 0; i < bi->nr_ram; i++) {
		uint64_t end = bi->ram[i].addr + bi->ram[i].size;

		if (end > REGION_LIMIT)
			end = REGION_LIMIT;
		if (bi->ram[i].addr <= start && start < end)
			avail = end - start;
	}

	work_touch_mib = opt->touch_mib;
	if ((uint64_t)work_touch_mib * MIB > avail) {
		work_touch_mib = avail / MIB;
		kprintf("snapfs-guest touch=%lu does not fit in RAM from 0x%lx, using touch=%lu\n",
			opt->touch_mib, start, work_touch_mib);
	}
	region_base = start;
	work_ncpus = ncpus;
	work_rate = opt->rate;
	work_halt_after = opt->halt_after;
	work_selftest = opt->selftest;
	pages_per_cpu = (uint64_t)work_touch_mib * (MIB / PAGE_SIZE) / ncpus;
}

/* ---- the pattern ---- */

/*
 * Write generation gen of the page; when gen > 0, check in the same sweep
 * that it held generation gen - 1. Returns nonzero on a difference.
 */
static int page_update(uint64_t *p, unsigned int cpu, uint64_t page, uint64_t gen)
{
	uint64_t hdr = pattern_header(cpu, page);
	uint64_t next = pattern_seed(cpu, page, gen), prev, bad = 0;
	unsigned int i;

	if (gen == 0) {
		p[0] = hdr;
		p[1] = 0;
		for (i = 2; i < WORDS_PER_PAGE; i++)
			p[i] = next = pattern_next(next);
		return 0;
	}
	prev = pattern_seed(cpu, page, gen - 1);
	bad = (p[0] ^ hdr) | (p[1] ^ (gen - 1));
	p[0] = hdr;
	p[1] = gen;
	for (i = 2; i < WORDS_PER_PAGE; i++) {
		prev = pattern_next(prev);
		next = pattern_next(next);
		bad |= p[i] ^ prev;
		p[i] = next;
	}
	return bad != 0;
}

/* ---- the registers ---- */

static void regs_expected(uint64_t *img, unsigned int cpu, uint64_t n)
{
	uint64_t base = pattern_mix64((uint64_t)cpu << 56 ^ n);
	unsigned int i;

	for (i = 0; i < REGS_WORDS; i++)
		img[i] = base + (i + 1) * 0x9e3779b97f4a7c15ULL;
}

/* selftest: registers that differ from want in r13, xmm9 and ymm9's upper half. */
static void regs_corrupt(const uint64_t *want, unsigned int cpu, int avx)
{
	uint64_t bad[REGS_WORDS];

	kprintf("snapfs-guest selftest cpu=%u: corrupting r13 xmm9%s and page 0\n",
		cpu, avx ? " ymm9" : "");
	memcpy(bad, want, sizeof(bad));
	bad[1] ^= 1;				/* r13 */
	bad[REGS_NGPR + 4 * 1 + 0] ^= 2;	/* xmm9, low word */
	bad[REGS_NGPR + 4 * 1 + 2] ^= 4;	/* ymm9, upper half */
	regs_put(bad, avx);
}

/* ---- reporting, rate-limited so a broken restore does not flood ---- */

static int may_print(struct worker *w)
{
	uint64_t now = timer_jiffies;

	w->mismatches++;
	if (now - w->window_start >= PRINT_WINDOW) {
		w->window_start = now;
		w->lines = 0;
	}
	return w->lines++ < MISMATCH_LINES;
}

static void regs_compare(struct worker *w, const uint64_t *want, const uint64_t *got,
			 int avx)
{
	unsigned int i;

	for (i = 0; i < REGS_NGPR; i++)
		if (got[i] != want[i] && may_print(w))
			kprintf("snapfs-guest MISMATCH reg=r%u cpu=%u want=0x%lx got=0x%lx\n",
				12 + i, w->cpu, want[i], got[i]);
	for (i = 0; i < REGS_NVEC; i++) {
		const uint64_t *g = got + REGS_NGPR + 4 * i, *x = want + REGS_NGPR + 4 * i;

		if ((g[0] != x[0] || g[1] != x[1]) && may_print(w))
			kprintf("snapfs-guest MISMATCH reg=xmm%u cpu=%u want=0x%lx%016lx got=0x%lx%016lx\n",
				8 + i, w->cpu, x[1], x[0], g[1], g[0]);
		if (avx && (g[2] != x[2] || g[3] != x[3]) && may_print(w))
			kprintf("snapfs-guest MISMATCH reg=ymm%u cpu=%u (upper half)\n",
				8 + i, w->cpu);
	}
}

/* ---- the loop ---- */

/*
 * The APs get here before CPU 0 has run work_setup: they wait for "ready",
 * and only then read the setup.
 */
static void wait_ready(unsigned int cpu)
{
	if (cpu == 0) {
		kprintf("snapfs-guest ready cpus=%u touch=%lu rate=%lu\n",
			work_ncpus, work_touch_mib, work_rate);
		timer_start_ticks(work_halt_after);
		__atomic_store_n(&work_go, 1, __ATOMIC_RELEASE);
	} else {
		while (!__atomic_load_n(&work_go, __ATOMIC_ACQUIRE))
			cpu_relax();
	}
}

void work_main(unsigned int cpu)
{
	uint64_t want[REGS_WORDS], got[REGS_WORDS];
	uint64_t *share, cost, cap;
	uint64_t n = 0, page = 0, gen = 0, credit = 0, last, last_pass_print = 0;
	struct worker w = { .cpu = cpu };
	int avx = cpu_has_avx;

	wait_ready(cpu);
	share = (uint64_t *)(uintptr_t)(region_base + cpu * pages_per_cpu * PAGE_SIZE);
	cost = (uint64_t)TIMER_HZ * work_ncpus;		/* credit per page */
	cap = (uint64_t)work_rate * 10;			/* at most 100 ms of backlog */
	if (cap < cost)
		cap = cost;
	last = w.window_start = timer_jiffies;

	regs_expected(want, cpu, n);
	regs_put(want, avx);
	for (;;) {
		uint64_t now = timer_jiffies;
		int due = work_rate == 0;

		/* Pacing: each timer tick adds rate credits, a page costs HZ * ncpus. */
		if (now != last) {
			credit += (uint64_t)work_rate * (now - last);
			if (credit > cap)
				credit = cap;
			last = now;
		}
		if (!due && credit >= cost) {
			credit -= cost;
			due = 1;
		}

		if (pages_per_cpu && due) {
			if (page_update(share + page * WORDS_PER_PAGE, cpu, page, gen) &&
			    may_print(&w))
				kprintf("snapfs-guest MISMATCH mem cpu=%u page=%lu gen=%lu addr=0x%lx\n",
					cpu, page, gen,
					(uint64_t)(uintptr_t)(share + page * WORDS_PER_PAGE));
			if (++page == pages_per_cpu) {
				page = 0;
				gen++;
				if (work_selftest && gen == 1)
					share[WORDS_PER_PAGE / 2] ^= 1;
				if (gen == 1 || now - last_pass_print >= PRINT_WINDOW) {
					last_pass_print = now;
					kprintf("snapfs-guest pass %lu cpu=%u pages=%lu mismatches=%lu\n",
						gen, cpu, pages_per_cpu, w.mismatches);
				}
			}
		}

		/* One unit of work done: the registers must still hold n's values. */
		regs_get(got, avx);
		regs_compare(&w, want, got, avx);
		n++;
		regs_expected(want, cpu, n);
		if (work_selftest && n == SELFTEST_ITER)
			regs_corrupt(want, cpu, avx);
		else
			regs_put(want, avx);
	}
}
