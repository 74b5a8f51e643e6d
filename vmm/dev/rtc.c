/* SPDX-License-Identifier: MIT */
/*
 * The MC146818 real-time clock and its 128 bytes of CMOS RAM: index port
 * 0x70 (bit 7, the NMI mask, is ignored), data port 0x71, ISA IRQ 8.
 *
 * Its time is the host's wall clock (CLOCK_REALTIME) plus an offset: the
 * guest changes the offset, and nothing else, by setting the time (SET in
 * register B, the divider held in reset by register A, or a time register
 * written while the clock runs). So the state is the CMOS bytes and that
 * offset, and a restored RTC reads the wall time of the restore, plus the
 * guest's offset, never the time of its snapshot.
 *
 * Registers: seconds to year, century at 0x32, in BCD or binary and 12 or
 * 24 hours as register B says (read as that format at every read, as if
 * the chip had been set in it); the alarm at 1, 3 and 5 (0xc0-0xff: any
 * value); A with UIP high in the 244 us before each second, as on the
 * chip; B; C's flags, cleared by reading it; D always "valid RAM and
 * time". The update (UF), alarm (AF) and periodic (PF, rate from A) flags
 * are worked out from the clock whenever the registers are used; a thread
 * wakes at the next second or period only while one of their interrupts
 * is enabled, so IRQ 8 rises when it should. IRQ 8 follows IRQF: high
 * from the event until the guest reads C.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/dev/dev.h"
#include "snapshot/format/state.h"

#define RTC_BASE	0x70
#define RTC_IRQ		8

/* Registers. */
#define REG_SEC		0x00
#define REG_SEC_ALARM	0x01
#define REG_MIN		0x02
#define REG_MIN_ALARM	0x03
#define REG_HOUR	0x04
#define REG_HOUR_ALARM	0x05
#define REG_WDAY	0x06
#define REG_MDAY	0x07
#define REG_MON		0x08
#define REG_YEAR	0x09
#define REG_A		0x0a
#define REG_B		0x0b
#define REG_C		0x0c
#define REG_D		0x0d
#define REG_CENTURY	0x32

#define A_UIP		0x80
#define A_DV_RESET	0x60	/* DV2 and DV1: divider chain held in reset */
#define A_RS		0x0f	/* periodic rate */
#define B_SET		0x80
#define B_PIE		0x40
#define B_AIE		0x20
#define B_UIE		0x10
#define B_BINARY	0x04
#define B_24H		0x02
#define B_IRQS		(B_PIE | B_AIE | B_UIE)
#define C_IRQF		0x80	/* C's PF, AF and UF are B's enable bits */
#define D_VRT		0x80

#define NS		1000000000ll
#define UIP_NS		244000ll	/* UIP is high before the update */
#define ALARM_ANY	0xc0

struct rtc {
	struct dev_host host;
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* the next event moved, or closing */
	struct snap_rtc r;		/* CMOS bytes, offset, index: the state */
	int64_t seen_ns;		/* C's flags are up to date to this
					 * clock time */
	bool irq_level;
	bool closing;
	pthread_t thread;
};

static const struct dev_ports rtc_ports[] = {
	{ RTC_BASE, 2 },
	{ 0, 0 },
};

static int64_t now_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static int64_t wall_ns(void)
{
	return now_ns(CLOCK_REALTIME);
}

static int64_t div_floor(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

static int64_t mod_floor(int64_t a, int64_t b)
{
	return a - div_floor(a, b) * b;
}

/* The clock runs unless it is being set or its divider is held in reset. */
static bool running(const struct rtc *rt)
{
	return !(rt->r.cmos[REG_B] & B_SET) &&
	       (rt->r.cmos[REG_A] & A_DV_RESET) != A_DV_RESET;
}

static int64_t clock_ns(const struct rtc *rt)
{
	return wall_ns() + rt->r.offset_ns;
}

/* ---- register formats --------------------------------------------------- */

static uint8_t to_reg(const struct rtc *rt, int v)
{
	if (rt->r.cmos[REG_B] & B_BINARY)
		return (uint8_t)v;
	return (uint8_t)((v / 10) << 4 | v % 10);
}

/* Nonsense BCD (0xfa) decodes to a number all the same; timegm copes. */
static int from_reg(const struct rtc *rt, uint8_t v)
{
	if (rt->r.cmos[REG_B] & B_BINARY)
		return v;
	return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t hour_to_reg(const struct rtc *rt, int h)
{
	if (rt->r.cmos[REG_B] & B_24H)
		return to_reg(rt, h);
	return to_reg(rt, h % 12 ? h % 12 : 12) | (h >= 12 ? 0x80 : 0);
}

static int hour_from_reg(const struct rtc *rt, uint8_t v)
{
	if (rt->r.cmos[REG_B] & B_24H)
		return from_reg(rt, v);
	return from_reg(rt, v & 0x7f) % 12 + (v & 0x80 ? 12 : 0);
}

/* Put clock time ns into the time registers. */
static void latch(struct rtc *rt, int64_t ns)
{
	time_t t = (time_t)div_floor(ns, NS);
	uint8_t *c = rt->r.cmos;
	struct tm tm;
	int year;

	gmtime_r(&t, &tm);
	year = tm.tm_year + 1900;
	c[REG_SEC] = to_reg(rt, tm.tm_sec);
	c[REG_MIN] = to_reg(rt, tm.tm_min);
	c[REG_HOUR] = hour_to_reg(rt, tm.tm_hour);
	c[REG_WDAY] = to_reg(rt, tm.tm_wday + 1);
	c[REG_MDAY] = to_reg(rt, tm.tm_mday);
	c[REG_MON] = to_reg(rt, tm.tm_mon + 1);
	c[REG_YEAR] = to_reg(rt, year % 100);
	c[REG_CENTURY] = to_reg(rt, year / 100);
}

/* The time the registers hold (the day of the week is not consulted). */
static int64_t latched_ns(const struct rtc *rt)
{
	const uint8_t *c = rt->r.cmos;
	struct tm tm = {
		.tm_sec = from_reg(rt, c[REG_SEC]),
		.tm_min = from_reg(rt, c[REG_MIN]),
		.tm_hour = hour_from_reg(rt, c[REG_HOUR]),
		.tm_mday = from_reg(rt, c[REG_MDAY]),
		.tm_mon = from_reg(rt, c[REG_MON]) - 1,
		.tm_year = from_reg(rt, c[REG_CENTURY]) * 100 +
			   from_reg(rt, c[REG_YEAR]) - 1900,
	};

	return (int64_t)timegm(&tm) * NS;
}

/* Make the clock read time ns now (kept within the range a save takes). */
static void set_clock(struct rtc *rt, int64_t ns)
{
	int64_t off = ns - wall_ns();

	if (off > SNAP_RTC_OFFSET_MAX)
		off = SNAP_RTC_OFFSET_MAX;
	if (off < -SNAP_RTC_OFFSET_MAX)
		off = -SNAP_RTC_OFFSET_MAX;
	rt->r.offset_ns = off;
	rt->seen_ns = clock_ns(rt);	/* setting the clock is no event */
}

/* ---- flags and the interrupt -------------------------------------------- */

/* The periodic interrupt's period from A's rate bits; 0: none. */
static int64_t period_ns(const struct rtc *rt)
{
	unsigned int rs = rt->r.cmos[REG_A] & A_RS;

	if (!rs)
		return 0;
	if (rs < 3)			/* 1 and 2 repeat 8 and 9 */
		rs += 7;
	return ((int64_t)1 << (rs - 1)) * NS / 32768;
}

static bool alarm_field(uint8_t alarm, uint8_t now)
{
	return (alarm & ALARM_ANY) == ALARM_ANY || alarm == now;
}

/* Did the alarm match at any whole second in [first, last]? */
static bool alarm_between(const struct rtc *rt, int64_t first, int64_t last)
{
	const uint8_t *c = rt->r.cmos;

	if (last - first >= 86400)	/* a whole day holds every h:m:s */
		last = first + 86399;
	for (int64_t s = first; s <= last; s++) {
		int64_t day = mod_floor(s, 86400);

		if (alarm_field(c[REG_SEC_ALARM], to_reg(rt, day % 60)) &&
		    alarm_field(c[REG_MIN_ALARM], to_reg(rt, day / 60 % 60)) &&
		    alarm_field(c[REG_HOUR_ALARM],
				hour_to_reg(rt, (int)(day / 3600))))
			return true;
	}
	return false;
}

static void set_irq(struct rtc *rt)
{
	bool level = rt->r.cmos[REG_C] & C_IRQF;

	if (level != rt->irq_level) {
		rt->irq_level = level;
		rt->host.irq_line(rt->host.vm, RTC_IRQ, level);
	}
}

/*
 * Raise C's flags for what happened between seen_ns and now: a second
 * ended (UF), one matching the alarm (AF), a period (PF); then IRQF and
 * the line. A stopped clock has no updates.
 */
static void catch_up(struct rtc *rt)
{
	uint8_t *c = rt->r.cmos;
	int64_t now, period;

	if (running(rt) && (now = clock_ns(rt)) > rt->seen_ns) {
		int64_t s0 = div_floor(rt->seen_ns, NS);
		int64_t s1 = div_floor(now, NS);

		if (s1 > s0) {
			c[REG_C] |= B_UIE;
			if (alarm_between(rt, s0 + 1, s1))
				c[REG_C] |= B_AIE;
		}
		period = period_ns(rt);
		if (period && div_floor(now, period) >
			      div_floor(rt->seen_ns, period))
			c[REG_C] |= B_PIE;
		rt->seen_ns = now;
	}
	if (c[REG_C] & c[REG_B] & B_IRQS)
		c[REG_C] |= C_IRQF;
	set_irq(rt);
}

/*
 * How long until the next event whose interrupt is enabled, or -1 when
 * none can come: the clock is stopped, no interrupt is enabled, or IRQF
 * is already high (nothing new can reach the line before C is read).
 */
static int64_t next_event(const struct rtc *rt)
{
	uint8_t b = rt->r.cmos[REG_B];
	int64_t now, next = INT64_MAX, period;

	if (!running(rt) || !(b & B_IRQS) || (rt->r.cmos[REG_C] & C_IRQF))
		return -1;
	now = clock_ns(rt);
	if (b & (B_UIE | B_AIE))
		next = (div_floor(now, NS) + 1) * NS;
	period = period_ns(rt);
	if ((b & B_PIE) && period) {
		int64_t p = (div_floor(now, period) + 1) * period;

		if (p < next)
			next = p;
	}
	if (next == INT64_MAX)
		return -1;
	return next - now;
}

static void *rtc_thread(void *arg)
{
	struct rtc *rt = arg;

	pthread_mutex_lock(&rt->lock);
	while (!rt->closing) {
		int64_t wait = next_event(rt);

		/* On the monotonic clock: a step of the host's wall clock
		 * neither delays an event nor fires one early. */
		if (wait >= 0) {
			int64_t at = now_ns(CLOCK_MONOTONIC) + wait;
			struct timespec ts = {
				.tv_sec = (time_t)(at / NS),
				.tv_nsec = (long)(at % NS),
			};

			pthread_cond_timedwait(&rt->wake, &rt->lock, &ts);
		} else {
			pthread_cond_wait(&rt->wake, &rt->lock);
		}
		catch_up(rt);
	}
	pthread_mutex_unlock(&rt->lock);
	return NULL;
}

/* ---- the ports ---------------------------------------------------------- */

static bool is_time_reg(uint8_t i)
{
	return i == REG_SEC || i == REG_MIN || i == REG_HOUR ||
	       i == REG_WDAY || i == REG_MDAY || i == REG_MON ||
	       i == REG_YEAR || i == REG_CENTURY;
}

static uint8_t rtc_read(struct rtc *rt)
{
	uint8_t i = rt->r.index, *c = rt->r.cmos, v;
	int64_t frac;

	switch (i) {
	case REG_A:
		v = c[REG_A];
		if (running(rt)) {
			frac = mod_floor(clock_ns(rt), NS);
			if (frac >= NS - UIP_NS)
				v |= A_UIP;
		}
		return v;
	case REG_C:
		v = c[REG_C];
		c[REG_C] = 0;
		set_irq(rt);
		pthread_cond_signal(&rt->wake);	/* events may rise again */
		return v;
	case REG_D:
		return D_VRT;
	default:
		if (is_time_reg(i) && running(rt))
			latch(rt, clock_ns(rt));
		return c[i];
	}
}

static void rtc_write(struct rtc *rt, uint8_t v)
{
	uint8_t i = rt->r.index, *c = rt->r.cmos;
	bool was_running = running(rt);
	int64_t now, set;

	/* A stopped clock restarts from its registers as they were written,
	 * in the format before this write (which may change it). */
	set = was_running ? 0 : latched_ns(rt);
	switch (i) {
	case REG_A:
		c[REG_A] = v & (uint8_t)~A_UIP;
		break;
	case REG_B:
		/* Setting the clock stops the update interrupt (as SET does). */
		c[REG_B] = v & B_SET ? v & (uint8_t)~B_UIE : v;
		break;
	case REG_C:
	case REG_D:
		return;			/* read only */
	default:
		if (is_time_reg(i) && was_running) {
			/* A field changed on the running clock: the rest and
			 * the fraction of the second go on. */
			now = clock_ns(rt);
			latch(rt, now);
			c[i] = v;
			set_clock(rt, latched_ns(rt) + mod_floor(now, NS));
			pthread_cond_signal(&rt->wake);
			return;
		}
		c[i] = v;
		return;
	}
	/* A or B: the clock may stop (its registers show the time it had, in
	 * the format now in force) or start (from that second's beginning). */
	if (was_running && !running(rt))
		latch(rt, clock_ns(rt));
	else if (!was_running && running(rt))
		set_clock(rt, set);
	pthread_cond_signal(&rt->wake);
}

/* offset 0 is the index port, 1 the data port. */
static void rtc_io(void *opaque, uint16_t offset, bool is_write,
		   uint8_t *data, unsigned int size)
{
	struct rtc *rt = opaque;

	pthread_mutex_lock(&rt->lock);
	catch_up(rt);
	if (offset == 0) {
		if (is_write)
			rt->r.index = data[0] & 0x7f;	/* bit 7: NMI mask */
		else
			memset(data, 0xff, size);	/* write only */
	} else if (is_write) {
		rtc_write(rt, data[0]);
		catch_up(rt);
	} else {
		memset(data, 0, size);
		data[0] = rtc_read(rt);
	}
	pthread_mutex_unlock(&rt->lock);
}

/* ---- the device --------------------------------------------------------- */

static int rtc_create(const struct dev_host *host, void **state,
		      struct snap_err *err)
{
	struct rtc *rt = calloc(1, sizeof(*rt));
	pthread_condattr_t attr;
	int ret;

	if (!rt)
		return snap_err_set(err, -ENOMEM, "out of memory");
	rt->host = *host;
	/* As a BIOS leaves it: 32.768 kHz, 1024 Hz rate, BCD, 24 hours. */
	rt->r.cmos[REG_A] = 0x26;
	rt->r.cmos[REG_B] = B_24H;
	rt->r.cmos[REG_D] = D_VRT;
	rt->seen_ns = clock_ns(rt);
	pthread_mutex_init(&rt->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->wake, &attr);
	pthread_condattr_destroy(&attr);
	ret = -pthread_create(&rt->thread, NULL, rtc_thread, rt);
	if (ret) {
		pthread_cond_destroy(&rt->wake);
		pthread_mutex_destroy(&rt->lock);
		free(rt);
		return snap_err_set(err, ret, "rtc: thread: %s",
				    strerror(-ret));
	}
	*state = rt;
	return 0;
}

static void rtc_destroy(void *state)
{
	struct rtc *rt = state;

	pthread_mutex_lock(&rt->lock);
	rt->closing = true;
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->lock);
	pthread_join(rt->thread, NULL);
	pthread_cond_destroy(&rt->wake);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
}

static int rtc_save(void *state, uint8_t **buf, size_t *len)
{
	struct rtc *rt = state;
	struct snap_rtc copy;

	pthread_mutex_lock(&rt->lock);
	catch_up(rt);
	if (running(rt))	/* for a reader of the snapshot; not restored */
		latch(rt, clock_ns(rt));
	copy = rt->r;
	pthread_mutex_unlock(&rt->lock);
	return snap_rtc_encode(&copy, buf, len);
}

/*
 * A running clock goes on from the offset, so it reads the wall time of
 * the restore plus the guest's offset; a stopped one keeps its registers.
 * Events while the snapshot lay on disk raise no flags.
 */
static int rtc_restore(void *state, const uint8_t *buf, size_t len,
		       struct snap_err *err)
{
	struct rtc *rt = state;
	struct snap_rtc r;
	int ret;

	ret = snap_rtc_decode(buf, len, &r, err);
	if (ret)
		return ret;
	pthread_mutex_lock(&rt->lock);
	rt->r = r;
	rt->r.cmos[REG_A] &= (uint8_t)~A_UIP;
	rt->r.cmos[REG_C] &= C_IRQF | B_IRQS;
	rt->r.cmos[REG_D] = D_VRT;
	rt->seen_ns = clock_ns(rt);
	/* Make KVM's line agree with the restored level, then follow C. */
	rt->irq_level = rt->r.cmos[REG_C] & C_IRQF;
	rt->host.irq_line(rt->host.vm, RTC_IRQ, rt->irq_level);
	catch_up(rt);
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->lock);
	return 0;
}

const struct dev_ops dev_rtc = {
	.name = "rtc",
	.ports = rtc_ports,
	.create = rtc_create,
	.destroy = rtc_destroy,
	.io = rtc_io,
	.save = rtc_save,
	.restore = rtc_restore,
	.payload_optional = true,	/* snapshots from before the RTC */
};
