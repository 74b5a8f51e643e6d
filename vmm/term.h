/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_TERM_H
#define SNAPVM_TERM_H

/*
 * The host's terminal on stdin. When stdin is a terminal it is put in raw
 * mode (no echo, no line editing, no signals from ^C: every key goes to
 * the guest), output post-processing kept so "\n" still returns the
 * carriage; term_destroy puts it back. Ctrl-A x ends snapvm, Ctrl-A Ctrl-A
 * sends one Ctrl-A (as QEMU's -nographic does). Nothing changes when stdin
 * is not a terminal: every byte goes to the guest.
 */

#include <stdbool.h>
#include <stdint.h>

struct term;

int term_create(struct term **out, int fd);
void term_destroy(struct term *t);	/* t may be NULL */

enum term_action {
	TERM_SEND,	/* give the byte to the guest */
	TERM_DROP,	/* part of an escape */
	TERM_QUIT,	/* the user asked to end snapvm */
};

/* What to do with byte c read from the terminal. */
enum term_action term_filter(struct term *t, uint8_t c);

#endif
