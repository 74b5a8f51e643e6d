/* SPDX-License-Identifier: MIT */
#include "vmm/term.h"

#include <errno.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#define TERM_ESCAPE	0x01	/* Ctrl-A */

struct term {
	int fd;
	bool raw;		/* saved holds the settings to restore */
	bool escape;		/* the last byte was the escape */
	struct termios saved;
};

int term_create(struct term **out, int fd)
{
	struct term *t = calloc(1, sizeof(*t));
	struct termios raw;

	if (!t)
		return -ENOMEM;
	t->fd = fd;
	if (isatty(fd) && tcgetattr(fd, &t->saved) == 0) {
		raw = t->saved;
		cfmakeraw(&raw);
		raw.c_oflag |= OPOST;
		if (tcsetattr(fd, TCSANOW, &raw) == 0)
			t->raw = true;
	}
	*out = t;
	return 0;
}

void term_destroy(struct term *t)
{
	if (!t)
		return;
	if (t->raw)
		tcsetattr(t->fd, TCSANOW, &t->saved);
	free(t);
}

enum term_action term_filter(struct term *t, uint8_t c)
{
	if (!t->raw)
		return TERM_SEND;
	if (t->escape) {
		t->escape = false;
		if (c == 'x' || c == 'X')
			return TERM_QUIT;
		return c == TERM_ESCAPE ? TERM_SEND : TERM_DROP;
	}
	if (c == TERM_ESCAPE) {
		t->escape = true;
		return TERM_DROP;
	}
	return TERM_SEND;
}
