/* SPDX-License-Identifier: MIT */
/*
 * What import and export share: the files of a snapshot, the helpers of
 * their block loops, and the progress bar they draw on a terminal.
 */
#include "tools/snapctl/snapctl.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/format/snapdir.h"

#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define BAR_WIDTH	30
#define REDRAW_EVERY	0.1	/* seconds */

const char *const transfer_files[TRANSFER_NFILES] = {
	SNAP_MEMORY_FILE, SNAP_STATE_FILE, SNAP_MANIFEST_FILE,
};

bool transfer_is_memory(const char *file)
{
	return !strcmp(file, SNAP_MEMORY_FILE);
}

bool transfer_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* Each byte zero and equal to the next: all zero. */
	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

size_t transfer_next_run(const uint8_t *buf, size_t len, size_t unit,
			 size_t *pos, size_t *start)
{
	size_t p = *pos;

	while (p < len && transfer_is_zero(buf + p, MIN(unit, len - p)))
		p += MIN(unit, len - p);
	*start = p;
	while (p < len && !transfer_is_zero(buf + p, MIN(unit, len - p)))
		p += MIN(unit, len - p);
	*pos = p;
	return p - *start;
}

static int name_is(void *arg, const char *entry)
{
	return !strcmp(entry, (const char *)arg);
}

int transfer_snapshot_exists(struct snap_store *s, const char *name,
			     struct snap_err *err)
{
	return snap_store_list(s, NULL, name_is, (void *)name, err);
}

/* ---- progress ----------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void draw(struct progress *p, double t)
{
	double frac = p->total ? (double)p->done / (double)p->total : 1.0;
	double secs = t - p->start;
	char done[FMT_SIZE_LEN], total[FMT_SIZE_LEN], bar[BAR_WIDTH + 1];
	int fill = (int)(frac * BAR_WIDTH);

	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r%s [%s] %3d%%  %s / %s  %.0f MB/s\033[K",
		p->label, bar, (int)(frac * 100), fmt_size(p->done, done),
		fmt_size(p->total, total),
		secs > 0 ? (double)p->done / secs / 1e6 : 0.0);
	fflush(stderr);
	p->drawn = t;
}

void progress_begin(struct progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total;
	p->tty = isatty(STDERR_FILENO);
	p->start = now();
	if (p->tty)
		draw(p, p->start);
}

void progress_add(struct progress *p, uint64_t bytes)
{
	double t;

	p->done += bytes;
	if (!p->tty)
		return;
	t = now();
	if (t - p->drawn >= REDRAW_EVERY || p->done == p->total)
		draw(p, t);
}

double progress_end(struct progress *p)
{
	if (p->tty) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	return now() - p->start;
}

void progress_summary(FILE *out, uint64_t bytes, double seconds)
{
	char size[FMT_SIZE_LEN];

	fprintf(out, "%" PRIu64 " bytes (%s) in %.3f s, %.2f GB/s", bytes,
		fmt_size(bytes, size), seconds,
		seconds > 0 ? (double)bytes / seconds / 1e9 : 0.0);
}
