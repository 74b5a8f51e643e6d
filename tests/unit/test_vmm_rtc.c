/* SPDX-License-Identifier: MIT */
/*
 * The MC146818 RTC model through its device ops, on a fake VM: it reads
 * the host's UTC time in each format, is set as Linux sets it, keeps its
 * offset (not the saved time) across save and restore, shows UIP, raises
 * IRQ 8 for the update, alarm and periodic interrupts, and refuses a
 * hostile payload with one line. Against the real clock: a second or two
 * of slack, and waits of a few seconds at most.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/dev/dev.h"
#include "snapshot/format/state.h"

#define SEC	0x00
#define SEC_A	0x01
#define MIN	0x02
#define MIN_A	0x03
#define HOUR	0x04
#define HOUR_A	0x05
#define MDAY	0x07
#define MON	0x08
#define YEAR	0x09
#define REG_A	0x0a
#define REG_B	0x0b
#define REG_C	0x0c
#define REG_D	0x0d
#define CENTURY	0x32

/* The fake VM; the RTC's thread raises the line too. */
static struct {
	pthread_mutex_t lock;
	unsigned int irq;
	int level;
	unsigned int edges;
} vm = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int fake_irq_line(void *opaque, unsigned int irq, int level)
{
	pthread_mutex_lock(&vm.lock);
	vm.irq = irq;
	if (level && !vm.level)
		vm.edges++;
	vm.level = level;
	pthread_mutex_unlock(&vm.lock);
	return 0;
}

static void fake_request_exit(void *opaque, int status, const char *why)
{
}

static const struct dev_host host = {
	.vm = &vm,
	.irq_line = fake_irq_line,
	.request_exit = fake_request_exit,
};

static unsigned int edges(void)
{
	unsigned int n;

	pthread_mutex_lock(&vm.lock);
	n = vm.edges;
	pthread_mutex_unlock(&vm.lock);
	return n;
}

static int setup(void **state)
{
	struct snap_err err;

	vm.irq = 0;
	vm.level = 0;
	vm.edges = 0;
	return dev_rtc.create(&host, state, &err);
}

static int teardown(void **state)
{
	dev_rtc.destroy(*state);
	return 0;
}

static uint8_t rd(void *rtc, uint8_t reg)
{
	uint8_t v = reg;

	dev_rtc.io(rtc, 0, true, &v, 1);
	dev_rtc.io(rtc, 1, false, &v, 1);
	return v;
}

static void wr(void *rtc, uint8_t reg, uint8_t v)
{
	dev_rtc.io(rtc, 0, true, &reg, 1);
	dev_rtc.io(rtc, 1, true, &v, 1);
}

static int bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 15);
}

/* The RTC's time (BCD, 24 hours, century register) as seconds. */
static time_t rtc_time(void *rtc)
{
	struct tm tm = { 0 };
	uint8_t s;

	do {	/* as Linux reads it: the same second before and after */
		s = rd(rtc, SEC);
		tm.tm_sec = bcd(s);
		tm.tm_min = bcd(rd(rtc, MIN));
		tm.tm_hour = bcd(rd(rtc, HOUR));
		tm.tm_mday = bcd(rd(rtc, MDAY));
		tm.tm_mon = bcd(rd(rtc, MON)) - 1;
		tm.tm_year = bcd(rd(rtc, CENTURY)) * 100 +
			     bcd(rd(rtc, YEAR)) - 1900;
	} while (rd(rtc, SEC) != s);
	return timegm(&tm);
}

static void assert_near(time_t got, time_t want, time_t slack)
{
	if (got < want - slack || got > want + slack)
		fail_msg("time %lld, %lld +-%lld expected", (long long)got,
			 (long long)want, (long long)slack);
}

/* Set the RTC as Linux's mc146818_set_time does (Intel's way). */
static void set_time(void *rtc, time_t t)
{
	struct tm tm;
	uint8_t b = rd(rtc, REG_B), a;

	gmtime_r(&t, &tm);
	wr(rtc, REG_B, b | 0x80);
	a = rd(rtc, REG_A);
	wr(rtc, REG_A, a | 0x70);		/* divider in reset */
	wr(rtc, YEAR, (uint8_t)(tm.tm_year % 100 / 10 << 4 | tm.tm_year % 10));
	wr(rtc, MON, (uint8_t)((tm.tm_mon + 1) / 10 << 4 | (tm.tm_mon + 1) % 10));
	wr(rtc, MDAY, (uint8_t)(tm.tm_mday / 10 << 4 | tm.tm_mday % 10));
	wr(rtc, HOUR, (uint8_t)(tm.tm_hour / 10 << 4 | tm.tm_hour % 10));
	wr(rtc, MIN, (uint8_t)(tm.tm_min / 10 << 4 | tm.tm_min % 10));
	wr(rtc, SEC, (uint8_t)(tm.tm_sec / 10 << 4 | tm.tm_sec % 10));
	wr(rtc, REG_B, b);
	wr(rtc, REG_A, a);
}

static void test_power_on(void **state)
{
	void *rtc = *state;

	assert_int_equal(rd(rtc, REG_A) & 0x7f, 0x26);
	assert_int_equal(rd(rtc, REG_B), 0x02);		/* BCD, 24 hours */
	assert_int_equal(rd(rtc, REG_C), 0);
	assert_int_equal(rd(rtc, REG_D), 0x80);		/* Linux: bit 6 clear */
	assert_near(rtc_time(rtc), time(NULL), 1);
	assert_int_equal(vm.level, 0);
}

static void test_formats(void **state)
{
	void *rtc = *state;
	time_t now = time(NULL);
	struct tm tm;
	uint8_t h;

	/* Binary, 12 hours: the same time, read as that format. */
	wr(rtc, REG_B, 0x04);
	gmtime_r(&now, &tm);
	h = rd(rtc, HOUR);
	if (rd(rtc, MIN) == tm.tm_min) {	/* no hour ended in between */
		assert_int_equal(h & 0x7f, tm.tm_hour % 12 ? tm.tm_hour % 12 : 12);
		assert_int_equal(!!(h & 0x80), tm.tm_hour >= 12);
	}
	assert_int_equal(rd(rtc, YEAR), (tm.tm_year + 1900) % 100);
	assert_int_equal(rd(rtc, CENTURY), (tm.tm_year + 1900) / 100);

	/* Set 23:59:58 in binary 12-hour form: 11 PM. */
	wr(rtc, REG_B, 0x84);
	wr(rtc, HOUR, 0x80 | 11);
	wr(rtc, MIN, 59);
	wr(rtc, SEC, 58);
	assert_int_equal(rd(rtc, HOUR), 0x80 | 11);	/* stopped: as written */
	/* Runs again from what was written in the format it was written
	 * in, and reads in the new one. */
	wr(rtc, REG_B, 0x06);				/* binary, 24 hours */
	h = rd(rtc, HOUR);
	assert_true(h == 23 || (h == 0 && rd(rtc, MIN) == 0));
}

static void test_set_and_offset(void **state)
{
	void *rtc = *state;
	time_t want = 981173106;			/* 2001-02-03 04:05:06 */
	struct snap_rtc r;
	struct snap_err err;
	uint8_t *buf;
	size_t len;

	set_time(rtc, want);
	assert_near(rtc_time(rtc), want, 1);
	assert_int_equal(dev_rtc.save(rtc, &buf, &len), 0);
	assert_int_equal(snap_rtc_decode(buf, len, &r, &err), 0);
	free(buf);
	assert_near((time_t)(r.offset_ns / 1000000000), want - time(NULL), 1);

	/* A field written while the clock runs: the rest goes on. */
	wr(rtc, MIN, 0x30);
	assert_near(rtc_time(rtc), want + 25 * 60, 2);
}

static void test_save_restore(void **state)
{
	void *rtc = *state, *other;
	struct snap_rtc r;
	struct snap_err err;
	uint8_t *buf, v = 0;
	size_t len;

	wr(rtc, 0x40, 0x5a);				/* CMOS RAM */
	set_time(rtc, time(NULL) + 3600);
	assert_int_equal(dev_rtc.save(rtc, &buf, &len), 0);

	/* The saved registers say "an hour ahead, at the save"; restored
	 * later, the clock reads an hour ahead of now, not the saved time. */
	assert_int_equal(snap_rtc_decode(buf, len, &r, &err), 0);
	free(buf);
	r.cmos[HOUR] = 0x00;				/* ignored: it runs */
	r.index = REG_D;
	assert_int_equal(snap_rtc_encode(&r, &buf, &len), 0);
	assert_int_equal(setup(&other), 0);
	assert_int_equal(dev_rtc.restore(other, buf, len, &err), 0);
	free(buf);
	dev_rtc.io(other, 1, false, &v, 1);		/* the index too */
	assert_int_equal(v, 0x80);
	assert_near(rtc_time(other), time(NULL) + 3600, 1);
	assert_int_equal(rd(other, 0x40), 0x5a);

	/* A clock stopped by SET stays stopped at its registers. */
	wr(rtc, REG_B, 0x82);
	wr(rtc, HOUR, 0x07);
	wr(rtc, MIN, 0x00);
	assert_int_equal(dev_rtc.save(rtc, &buf, &len), 0);
	assert_int_equal(dev_rtc.restore(other, buf, len, &err), 0);
	free(buf);
	assert_int_equal(rd(other, HOUR), 0x07);
	wr(other, REG_B, 0x02);
	assert_int_equal(rd(other, HOUR), 0x07);
	teardown(&other);
}

static void test_hostile_payload(void **state)
{
	struct snap_err err = { "" };
	struct snap_rtc r = { .offset_ns = 0 };
	uint8_t *buf;
	size_t len;

	assert_int_equal(snap_rtc_encode(&r, &buf, &len), 0);
	assert_int_equal(dev_rtc.restore(*state, buf, len - 1, &err), -EBADMSG);
	free(buf);
	assert_non_null(strstr(err.msg, "state.bin: rtc: "));
	assert_null(strchr(err.msg, '\n'));
	assert_near(rtc_time(*state), time(NULL), 1);	/* unchanged */
}

static void test_index_and_uip(void **state)
{
	void *rtc = *state;
	uint8_t v = 0x80 | REG_D;			/* NMI mask bit: ignored */
	struct timespec t0, t;
	bool uip = false;

	dev_rtc.io(rtc, 0, true, &v, 1);
	dev_rtc.io(rtc, 1, false, &v, 1);
	assert_int_equal(v, 0x80);
	/* UIP shows for 244 us before each second. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		uip = rd(rtc, REG_A) & 0x80;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (!uip && t.tv_sec - t0.tv_sec < 3);
	assert_true(uip);
	/* Not while the clock is being set. */
	wr(rtc, REG_B, 0x82);
	for (int i = 0; i < 100000; i++)
		assert_false(rd(rtc, REG_A) & 0x80);
}

/* Wait up to s seconds for the n-th edge on IRQ 8. */
static bool wait_edges(unsigned int n, int s)
{
	for (int i = 0; i < s * 100 && edges() < n; i++)
		usleep(10000);
	return edges() >= n && vm.irq == 8;
}

static void test_interrupts(void **state)
{
	void *rtc = *state;
	time_t at;
	struct tm tm;
	uint8_t c;

	/* Update-ended: once a second, until C is read. */
	wr(rtc, REG_B, 0x12);
	assert_true(wait_edges(1, 3));
	assert_int_equal(vm.level, 1);
	c = rd(rtc, REG_C);
	assert_int_equal(c & 0x90, 0x90);		/* IRQF, UF */
	assert_int_equal(vm.level, 0);
	assert_true(wait_edges(2, 3));
	rd(rtc, REG_C);

	/* The alarm, two seconds ahead; "any hour" in the hours alarm. */
	wr(rtc, REG_B, 0x02);
	rd(rtc, REG_C);
	at = rtc_time(rtc) + 2;
	gmtime_r(&at, &tm);
	wr(rtc, SEC_A, (uint8_t)(tm.tm_sec / 10 << 4 | tm.tm_sec % 10));
	wr(rtc, MIN_A, (uint8_t)(tm.tm_min / 10 << 4 | tm.tm_min % 10));
	wr(rtc, HOUR_A, 0xff);
	wr(rtc, REG_B, 0x22);
	assert_true(wait_edges(3, 5));
	c = rd(rtc, REG_C);
	assert_int_equal(c & 0xa0, 0xa0);		/* IRQF, AF */
	assert_near(rtc_time(rtc), at, 1);

	/* Periodic, 2 Hz. */
	wr(rtc, REG_A, 0x2f);
	wr(rtc, REG_B, 0x42);
	assert_true(wait_edges(4, 2));
	assert_int_equal(rd(rtc, REG_C) & 0xc0, 0xc0);	/* IRQF, PF */
	assert_true(wait_edges(5, 2));
	wr(rtc, REG_B, 0x02);
	rd(rtc, REG_C);					/* the last one */
	usleep(600000);
	assert_int_equal(rd(rtc, REG_C) & 0x80, 0);	/* none enabled */
	assert_int_equal(vm.level, 0);
	assert_int_equal(edges(), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_power_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_formats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_and_offset, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_save_restore, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_payload, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_index_and_uip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_interrupts, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
