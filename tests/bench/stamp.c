/*
 * stamp: run a command and time its output lines.
 *
 *   stamp [-t SECONDS] [-o FILE] PATTERN... -- COMMAND [ARG...]
 *
 * Starts COMMAND with its stdout and stderr on a pipe (stdin is ours) and
 * prints one line: for each PATTERN, in order, the milliseconds from the
 * fork to the end of the first output line containing PATTERN, or "-" when
 * no line did. The clock is CLOCK_MONOTONIC, read just before the fork.
 *
 * COMMAND gets SIGTERM (and SIGKILL 5 s later) as soon as every pattern has
 * been seen, or after SECONDS (default 60); it may also end by itself. With
 * -o, everything it printed is copied to FILE.
 *
 * Exit status: 0 when every pattern was seen, 1 when one was not (a message
 * on stderr says why), 2 on a usage or system error. Used by
 * the scripts in tests/bench; built static so that it runs in the rig.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN	4096	/* longer lines are matched on their start */
#define KILL_GRACE_MS	5000

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(void)
{
	fprintf(stderr, "usage: stamp [-t SECONDS] [-o FILE] PATTERN... "
		"-- COMMAND [ARG...]\n");
	exit(2);
}

/* Start argv with stdout and stderr on a new pipe; *fd is its read end. */
static pid_t spawn(char **argv, int *fd)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		execvp(argv[0], argv);
		fprintf(stderr, "stamp: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	*fd = p[0];
	return pid;
}

/*
 * SIGTERM, then SIGKILL when it has not ended in KILL_GRACE_MS; when its
 * output has ended it is exiting by itself: no SIGTERM, so that its own
 * exit status is the one returned.
 */
static int stop(pid_t pid, int ended)
{
	int64_t end = now_ms() + KILL_GRACE_MS;
	struct timespec tick = { 0, 10 * 1000000 };
	int status;

	if (!ended)
		kill(pid, SIGTERM);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		nanosleep(&tick, NULL);
	}
	return status;
}

int main(int argc, char **argv)
{
	char line[LINE_MAX_LEN], buf[4096];
	size_t len = 0;
	int64_t *at, start, deadline;
	char **pat, **cmd;
	long seconds = 60;
	FILE *copy = NULL;
	int npat, seen = 0, ended = 0, fd, status, opt, i;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+t:o:")) != -1) {
		switch (opt) {
		case 't':
			seconds = strtol(optarg, NULL, 10);
			if (seconds <= 0)
				usage();
			break;
		case 'o':
			copy = fopen(optarg, "w");
			if (!copy) {
				fprintf(stderr, "stamp: %s: %s\n", optarg,
					strerror(errno));
				return 2;
			}
			break;
		default:
			usage();
		}
	}
	for (npat = 0; optind + npat < argc; npat++)
		if (strcmp(argv[optind + npat], "--") == 0)
			break;
	if (npat == 0 || optind + npat + 1 >= argc)
		usage();
	pat = argv + optind;
	cmd = argv + optind + npat + 1;

	at = calloc(npat, sizeof(*at));
	if (!at)
		return 2;
	for (i = 0; i < npat; i++)
		at[i] = -1;

	start = now_ms();
	deadline = start + seconds * 1000;
	pid = spawn(cmd, &fd);
	if (pid < 0) {
		fprintf(stderr, "stamp: %s: %s\n", cmd[0], strerror(errno));
		return 2;
	}

	while (seen < npat) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			for (i = 0; at[i] >= 0; i++)
				;
			fprintf(stderr, "stamp: %s: no '%s' in %ld s\n",
				cmd[0], pat[i], seconds);
			break;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ended = 1;
			break;
		}
		int64_t t = now_ms() - start;

		if (copy)
			fwrite(buf, 1, n, copy);
		for (ssize_t k = 0; k < n; k++) {
			if (buf[k] != '\n') {
				if (len < sizeof(line) - 1)
					line[len++] = buf[k];
				continue;
			}
			line[len] = '\0';
			len = 0;
			for (i = 0; i < npat; i++) {
				if (at[i] < 0 && strstr(line, pat[i])) {
					at[i] = t;
					seen++;
				}
			}
		}
	}

	status = stop(pid, ended);
	close(fd);
	if (copy)
		fclose(copy);
	if (ended && WIFEXITED(status))
		fprintf(stderr, "stamp: %s: ended, exit status %d\n", cmd[0],
			WEXITSTATUS(status));
	else if (ended)
		fprintf(stderr, "stamp: %s: ended by signal %d\n", cmd[0],
			WTERMSIG(status));
	for (i = 0; i < npat; i++) {
		if (at[i] < 0)
			printf("%s-", i ? " " : "");
		else
			printf("%s%lld", i ? " " : "", (long long)at[i]);
	}
	printf("\n");
	free(at);
	return seen == npat ? 0 : 1;
}
