/*
 * stamp: run a command and time its output lines.
 *
 *   stamp [-t SECONDS] [-o FILE] PATTERN... -- COMMAND [ARG...]
 *
 * Starts COMMAND (stdin is ours) and prints one line: for each PATTERN, in
 * order, the milliseconds from the fork to the end of the first output
 * line containing PATTERN, or "-" when no line did. The clock is
 * CLOCK_MONOTONIC, read just before the fork. COMMAND's stdout and stderr
 * are read on two pipes, each split into lines of its own, and a PATTERN
 * matches a line of either: a monitor's message on stderr (snapvm restore
 * --debug: "first KVM_RUN") cannot tear a guest's console line written a
 * byte at a time on stdout, nor be torn by one.
 *
 * COMMAND gets SIGTERM (and SIGKILL 5 s later) as soon as every pattern has
 * been seen, or after SECONDS (default 60); it may also end by itself. With
 * -o, everything it printed on either stream is copied to FILE, in the
 * order it was read.
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

/* One of COMMAND's output streams: its pipe and the line being read. */
struct stream {
	int fd;			/* -1 once it has ended */
	size_t len;
	char line[LINE_MAX_LEN];
};

/* Start argv with stdout on out[0]'s new pipe and stderr on out[1]'s. */
static pid_t spawn(char **argv, struct stream out[2])
{
	int p[2][2];
	pid_t pid;

	if (pipe(p[0]) < 0)
		return -1;
	if (pipe(p[1]) < 0) {
		close(p[0][0]);
		close(p[0][1]);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		dup2(p[0][1], STDOUT_FILENO);
		dup2(p[1][1], STDERR_FILENO);
		for (int i = 0; i < 4; i++)
			close(p[i / 2][i % 2]);
		execvp(argv[0], argv);
		fprintf(stderr, "stamp: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < 2; i++) {
		close(p[i][1]);
		if (pid < 0)
			close(p[i][0]);
		out[i].fd = p[i][0];
		out[i].len = 0;
	}
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

/*
 * Split n bytes of s's output into lines; the first line containing
 * pat[i] sets at[i] to t. Returns how many patterns were seen now.
 */
static int scan(struct stream *s, const char *buf, ssize_t n, char **pat,
		int64_t *at, int npat, int64_t t)
{
	int seen = 0;

	for (ssize_t k = 0; k < n; k++) {
		if (buf[k] != '\n') {
			if (s->len < sizeof(s->line) - 1)
				s->line[s->len++] = buf[k];
			continue;
		}
		s->line[s->len] = '\0';
		s->len = 0;
		for (int i = 0; i < npat; i++) {
			if (at[i] < 0 && strstr(s->line, pat[i])) {
				at[i] = t;
				seen++;
			}
		}
	}
	return seen;
}

int main(int argc, char **argv)
{
	struct stream out[2];
	char buf[4096];
	int64_t *at, start, deadline;
	char **pat, **cmd;
	long seconds = 60;
	FILE *copy = NULL;
	int npat, seen = 0, ended = 0, status, opt, i;
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
	pid = spawn(cmd, out);
	if (pid < 0) {
		fprintf(stderr, "stamp: %s: %s\n", cmd[0], strerror(errno));
		return 2;
	}

	while (seen < npat && ended < 2) {
		struct pollfd pfd[2] = {
			{ .fd = out[0].fd, .events = POLLIN },
			{ .fd = out[1].fd, .events = POLLIN },
		};
		int64_t left = deadline - now_ms();

		if (left <= 0 || poll(pfd, 2, (int)left) == 0) {
			for (i = 0; at[i] >= 0; i++)
				;
			fprintf(stderr, "stamp: %s: no '%s' in %ld s\n",
				cmd[0], pat[i], seconds);
			break;
		}
		for (int s = 0; s < 2; s++) {
			ssize_t n;

			if (out[s].fd < 0 || !pfd[s].revents)
				continue;
			n = read(out[s].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(out[s].fd);
				out[s].fd = -1;	/* poll ignores it now */
				ended++;
				continue;
			}
			if (copy)
				fwrite(buf, 1, n, copy);
			seen += scan(&out[s], buf, n, pat, at, npat,
				     now_ms() - start);
		}
	}

	status = stop(pid, ended == 2);
	for (int s = 0; s < 2; s++)
		if (out[s].fd >= 0)
			close(out[s].fd);
	if (copy)
		fclose(copy);
	if (ended == 2 && WIFEXITED(status))
		fprintf(stderr, "stamp: %s: ended, exit status %d\n", cmd[0],
			WEXITSTATUS(status));
	else if (ended == 2)
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
