/* SPDX-License-Identifier: MIT */
#ifndef SNAPCTL_H
#define SNAPCTL_H

/*
 * snapctl: offline tools for snapshot directories and memory stores.
 *
 * main.c holds the table of subcommands; each subcommand is one function
 * below, in a file of its own, run with argv[0] being its last name word
 * ("inspect") and returning the process exit status:
 *
 *   0  success
 *   1  the operation failed (one line on stderr says why)
 *   2  wrong arguments (one line on stderr, with the usage)
 *
 * cli.c holds what every subcommand shares: argument parsing, error lines
 * in git's style ("snapctl: verify /x: state.bin: digest mismatch ...") and
 * reading a snapshot. fmt.c formats values for people. transfer.c holds
 * what import and export share: the block loop's helpers and the progress
 * bar.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "snapshot/format/manifest.h"
#include "snapshot/format/state.h"
#include "snapshot/store/store.h"

#define SNAPCTL_PROG		"snapctl"
#ifndef SNAPFS_VERSION
#define SNAPFS_VERSION		"0.1.0"
#endif

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#define SNAPCTL_EXIT_OK		0
#define SNAPCTL_EXIT_FAIL	1
#define SNAPCTL_EXIT_USAGE	2

struct snapctl_cmd {
	const char *name;	/* words, as typed: "inspect", "store gc" */
	const char *args;	/* synopsis after the name */
	const char *summary;	/* one line for the usage */
	int (*run)(const struct snapctl_cmd *cmd, int argc, char **argv);
};

/* ---- subcommands -------------------------------------------------------- */

int inspect_run(const struct snapctl_cmd *cmd, int argc, char **argv);
int verify_run(const struct snapctl_cmd *cmd, int argc, char **argv);

/* The memory store (store.c): "store init", "store ls" and so on. */
int store_init_run(const struct snapctl_cmd *cmd, int argc, char **argv);
int store_ls_run(const struct snapctl_cmd *cmd, int argc, char **argv);
int store_stats_run(const struct snapctl_cmd *cmd, int argc, char **argv);
int store_verify_run(const struct snapctl_cmd *cmd, int argc, char **argv);
int store_gc_run(const struct snapctl_cmd *cmd, int argc, char **argv);

/* A snapshot directory into a store (import.c) and back (export.c). */
int import_run(const struct snapctl_cmd *cmd, int argc, char **argv);
int export_run(const struct snapctl_cmd *cmd, int argc, char **argv);

/* True for a device whose payload is a uart8250 (name "uart8250..."). */
bool inspect_is_uart8250(const struct snap_device *d);

/* The JSON form of inspect (inspect_json.c); 0 or a negative errno. */
int inspect_json(const char *dir, const struct snap_manifest *m,
		 const struct snap_state *s);

/* ---- cli.c -------------------------------------------------------------- */

/*
 * An option of a subcommand: "--name" sets *flag; with value non-NULL it
 * takes an argument instead ("--name=V" or "--name V") stored in *value.
 */
struct snapctl_opt {
	const char *name;
	bool *flag;
	const char **value;
};

/*
 * Parse argv[1..] into options and exactly n_operands operands (options
 * may come anywhere; "--" ends them). On a mistake print one usage line
 * and return false with *status set to SNAPCTL_EXIT_USAGE; "-h" and
 * "--help" print the command's usage the same way.
 */
bool cli_parse(const struct snapctl_cmd *cmd, int argc, char **argv,
	       const struct snapctl_opt *opts, size_t n_opts,
	       const char **operands, size_t n_operands, int *status);

/*
 * A wrong argument found after cli_parse(): print "snapctl: CMD: WHAT
 * (usage: ...)" and return SNAPCTL_EXIT_USAGE.
 */
int cli_usage(const struct snapctl_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Flush stdout: 0, or a negative errno when anything written was lost. */
int cli_flush_stdout(void);

/* Print "snapctl: " and the formatted message as one line on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * snap_read(dir, flags, m, s) for subcommand cmd. On failure print
 * "snapctl: CMD DIR: MESSAGE" and return the negative errno.
 */
int cli_read(const struct snapctl_cmd *cmd, const char *dir, unsigned flags,
	     struct snap_manifest *m, struct snap_state **s);

/*
 * Print "snapctl: CMD WHERE: MESSAGE" for a call that returned ret with
 * err (NULL or empty: strerror), WHERE said once even when the message
 * starts with it. Returns SNAPCTL_EXIT_FAIL.
 */
int cli_fail(const struct snapctl_cmd *cmd, const char *where, int ret,
	     const struct snap_err *err);

/*
 * snap_store_open(dir) with flags (SNAP_STORE_RDONLY or 0) for subcommand
 * cmd. On failure print "snapctl: CMD DIR: MESSAGE" and return the
 * negative errno.
 */
int cli_store_open(const struct snapctl_cmd *cmd, const char *dir,
		   unsigned flags, struct snap_store **s);

/*
 * True when name can name a snapshot in a store: 1 to SNAP_STORE_NAME_MAX
 * bytes,
 * no '/', neither "." nor "..". Otherwise false with *why set.
 */
bool cli_snapshot_name_ok(const char *name, const char **why);

/*
 * From now on SIGINT, SIGTERM and SIGHUP only set a flag, which long
 * loops poll with cli_interrupted() so they can clean up and fail.
 */
void cli_catch_signals(void);
bool cli_interrupted(void);

/* ---- fmt.c -------------------------------------------------------------- */

#define FMT_SIZE_LEN	32	/* "1023.9 KiB", "16 EiB" */
#define FMT_TIME_LEN	48	/* "2025-01-31T23:59:59.123456789Z" */
#define FMT_DIGEST_LEN	(2 * SNAP_DIGEST_LEN + 1)

/* Human size: "512 bytes", "8 MiB", "1.5 GiB" (binary units). */
const char *fmt_size(uint64_t bytes, char out[FMT_SIZE_LEN]);

/* UTC ISO 8601 with nanoseconds: "2025-01-31T23:59:59.123456789Z". */
const char *fmt_time_ns(uint64_t unix_ns, char out[FMT_TIME_LEN]);

/* KVM_MP_STATE_* as a lower-case name ("runnable"), NULL if unknown. */
const char *fmt_mp_state(uint32_t mp_state);

/*
 * Write s to out with control bytes and backslashes escaped C-style
 * ("\n", "\x01"), so text from disk cannot play tricks on a terminal;
 * well-formed UTF-8 passes through, any other byte is escaped ("\xff").
 * Returns the number of columns written, taking a character as one.
 */
size_t fmt_text(FILE *out, const char *s);

/* The columns fmt_text() would write for s. */
size_t fmt_text_width(const char *s);

/*
 * n raw bytes, for printing between double quotes: any byte but printable
 * ASCII is escaped, and so is '"'.
 */
void fmt_bytes(FILE *out, const uint8_t *bytes, size_t n);

/* ---- transfer.c --------------------------------------------------------- */

#define TRANSFER_BLOCK		(4u << 20)	/* bytes per read and write */
#define TRANSFER_NFILES		3

/* A snapshot's files in the order they are copied: the manifest last. */
extern const char *const transfer_files[TRANSFER_NFILES];

/* True when the file of that name is memory.bin (sparse, zeros skipped). */
bool transfer_is_memory(const char *file);

/* True when all len bytes of buf are zero. */
bool transfer_is_zero(const void *buf, size_t len);

/*
 * The next run of whole non-zero units (unit bytes, the last one maybe
 * shorter) of buf's len bytes at or after *pos: its length (0: none left),
 * its offset in *start; *pos moves past it.
 */
size_t transfer_next_run(const uint8_t *buf, size_t len, size_t unit,
			 size_t *pos, size_t *start);

/* 1 when the store has a snapshot called name, 0 when not, or -errno. */
int transfer_snapshot_exists(struct snap_store *s, const char *name,
			     struct snap_err *err);


/*
 * A progress bar on stderr, drawn only when stderr is a terminal: bytes
 * done of total and the rate in MB/s, redrawn at most ten times a second.
 */
struct progress {
	const char *label;
	uint64_t total;
	uint64_t done;
	double start;		/* seconds, CLOCK_MONOTONIC */
	double drawn;		/* when the bar was last drawn */
	bool tty;
};

void progress_begin(struct progress *p, const char *label, uint64_t total);
void progress_add(struct progress *p, uint64_t bytes);
/* Erase the bar (when one was drawn); returns the seconds since begin. */
double progress_end(struct progress *p);

/* "N bytes (SIZE) in S s, R GB/s" for the summary line of a transfer. */
void progress_summary(FILE *out, uint64_t bytes, double seconds);

#endif
