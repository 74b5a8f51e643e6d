/*
 * The guest's command line: "touch=MIB rate=PAGES_PER_SEC cpus=N
 * halt_after=TICKS selftest=1", words separated by spaces, unknown words
 * ignored. selftest=1 makes every worker corrupt its own state once (work.c),
 * so a test can see that the checks fire.
 */
#include "tests/guest/guest.h"

/* A decimal number ending at a space or the end; 0 when not all digits. */
static int parse_num(const char *s, unsigned long *out)
{
	unsigned long v = 0;

	if (*s < '0' || *s > '9')
		return 0;
	for (; *s && *s != ' '; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	*out = v;
	return 1;
}

/* Does the word at s start with key (which includes its '=')? */
static const char *value_of(const char *s, const char *key)
{
	size_t n = strlen(key);

	return memcmp(s, key, n) == 0 ? s + n : NULL;
}

void cmdline_parse(const char *s, struct options *opt)
{
	opt->touch_mib = 0;
	opt->rate = 1000;
	opt->cpus = 0;
	opt->halt_after = -1;
	opt->selftest = 0;

	while (*s) {
		const char *v;
		unsigned long n;

		while (*s == ' ')
			s++;
		if ((v = value_of(s, "touch=")) && parse_num(v, &n))
			opt->touch_mib = n;
		else if ((v = value_of(s, "rate=")) && parse_num(v, &n))
			opt->rate = n;
		else if ((v = value_of(s, "cpus=")) && parse_num(v, &n))
			opt->cpus = n;
		else if ((v = value_of(s, "halt_after=")) && parse_num(v, &n))
			opt->halt_after = (long)n;
		else if ((v = value_of(s, "selftest=")) && parse_num(v, &n))
			opt->selftest = n;
		while (*s && *s != ' ')
			s++;
	}
}
