/* SPDX-License-Identifier: MIT */
/*
 * snapvm's control socket requests (vmm/control_req.c): the input is what
 * a client sends, cut into lines as the server cuts it (at '\n', a '\r'
 * before it dropped, a line longer than CONTROL_LINE_MAX with its '\n'
 * refused before parsing, an unfinished last line never parsed), each line parsed by control_parse. A request that
 * parses names a command of the table and, for snapshot, a directory that
 * is a word of the line; one that does not gets an "error ..." response.
 *
 * No FUZZ_FIX variant: a request carries no checksum.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/control.h"
#include "vmm/control_req.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static bool inside(const char *p, const char *line, size_t len)
{
	return p >= line && p < line + len;
}

/* A word of the line: not empty, no space, not an option. */
static void check_word(const char *w, const char *line, size_t len)
{
	if (!inside(w, line, len) || !*w || strchr(w, ' '))
		fuzz_die("control_parse: a word outside its line, or empty");
}

static void parse(const char *data, size_t len)
{
	char *line = malloc(len + 1), resp[CONTROL_LINE_MAX - 1];
	struct control_request r;

	if (!line)
		fuzz_die("out of memory");
	memcpy(line, data, len);
	line[len] = '\0';
	resp[0] = '\0';
	if (control_parse(line, &r, resp, sizeof(resp))) {
		if (strncmp(resp, "error ", 6))
			fuzz_die("control_parse: refused without an error "
				 "response: \"%s\"", resp);
	} else if (r.cmd > CONTROL_SNAPSHOT) {
		fuzz_die("control_parse: command %d", (int)r.cmd);
	} else if (r.cmd == CONTROL_SNAPSHOT) {
		check_word(r.dir, line, len);
		if (r.dir[0] == '-')
			fuzz_die("control_parse: an option as the directory");
		if (r.parent)
			check_word(r.parent, line, len);
	}
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;

	for (; p < end; p = nl + 1) {
		size_t n;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;		/* never a request */
		n = (size_t)(nl - p);
		if (n + 1 > CONTROL_LINE_MAX)
			break;		/* "error request too long", closed */
		if (n && p[n - 1] == '\r')
			n--;
		parse(p, n);
	}
	return 0;
}
