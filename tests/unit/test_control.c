/* SPDX-License-Identifier: MIT */
/*
 * The control socket's access checks (vmm/control.c) through a real
 * socket, on a fake VM (the vm_* and saver_save below): the socket's mode
 * whatever the umask, and SO_PEERCRED, which serves snapvm's own uid and
 * root only. The checks across uids switch uid in forked children: they
 * need root and are skipped without it.
 */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/control.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"
#include "tests/lib/testutil.h"

#define NOBODY		65534
#define OTHER		65533
#define STATUS_OK	"ok running cpus=2 mem=67108864"

/* ---- the fake VM -------------------------------------------------------- */

bool vm_paused(struct vm *vm) { return false; }
unsigned int vm_cpus(const struct vm *vm) { return 2; }
uint64_t vm_mem_size(const struct vm *vm) { return 64 << 20; }
int vm_pause(struct vm *vm) { return 0; }
void vm_resume(struct vm *vm) { }
void vm_request_exit(struct vm *vm, int status, const char *fmt, ...) { }

int saver_save(struct saver *s, const char *dir, const char *parent,
	       struct saver_result *r, struct snap_err *err)
{
	return snap_err_set(err, -ENOTSUP, "not in this test");
}

/* ---- clients ------------------------------------------------------------ */

/*
 * Ask "status" on path: 0 and the response line (without '\n') in resp,
 * or the negative errno of connect. A send error is not one: a refused
 * client's line is still there to read.
 */
static int ask(const char *path, char *resp, size_t len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t got = 0;
	ssize_t n;
	int fd, ret = 0;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = -errno;
		goto out;
	}
	send(fd, "status\n", 7, MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);		/* snapvm closes when we do */
	while (got + 1 < len && (n = recv(fd, resp + got, len - 1 - got, 0)) > 0)
		got += (size_t)n;
	resp[got] = '\0';
	resp[strcspn(resp, "\n")] = '\0';
out:
	close(fd);
	return ret;
}

/* Become uid (and gid uid, no other groups); aborts the child on failure. */
static void become(uid_t uid)
{
	if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0) {
		perror("become");
		_exit(99);
	}
}

/* ask() from a child running as uid; *pid is that child's. */
static int ask_as(uid_t uid, const char *path, char *resp, size_t len,
		  pid_t *pid)
{
	int p[2], status, ret;
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	*pid = fork();
	assert_true(*pid >= 0);
	if (*pid == 0) {
		close(p[0]);
		become(uid);
		ret = ask(path, resp, len);
		if (ret)
			snprintf(resp, len, "connect %d", -ret);
		_exit(write(p[1], resp, strlen(resp)) < 0);
	}
	close(p[1]);
	n = read(p[0], resp, len - 1);
	close(p[0]);
	resp[n > 0 ? n : 0] = '\0';
	assert_int_equal(waitpid(*pid, &status, 0), *pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (sscanf(resp, "connect %d", &ret) == 1)
		return -ret;
	return 0;
}

/* ---- servers ------------------------------------------------------------ */

struct server {
	char *dir;		/* world-writable when the server is forked */
	char path[256];		/* the socket */
	char log[256];		/* a forked server's stderr */
	struct control *c;	/* an in-process server */
	pid_t pid;		/* a forked server */
};

static int setup(void **state)
{
	struct server *s = calloc(1, sizeof(*s));

	s->dir = test_tmpdir();
	snprintf(s->path, sizeof(s->path), "%s/vm.sock", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/stderr", s->dir);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct server *s = *state;

	control_destroy(s->c);
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
	}
	test_rmtree(s->dir);
	free(s->dir);
	free(s);
	return 0;
}

/* Serve s->path in this process. */
static void serve_here(struct server *s)
{
	struct snap_err err;

	assert_int_equal(control_create(&s->c, s->path, &err), 0);
	assert_int_equal(control_start(s->c, NULL, NULL, &err), 0);
}

/*
 * Serve s->path from a child running as uid, its stderr in s->log, until
 * teardown. Returns once it listens.
 */
static void serve_as(struct server *s, uid_t uid)
{
	struct control *c;
	struct snap_err err;
	char up[8] = "";
	int p[2];

	assert_int_equal(chmod(s->dir, 01777), 0);
	assert_int_equal(pipe(p), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		close(p[0]);
		become(uid);
		if (!freopen(s->log, "w", stderr))
			_exit(98);
		setvbuf(stderr, NULL, _IONBF, 0);
		if (control_create(&c, s->path, &err) ||
		    control_start(c, NULL, NULL, &err) ||
		    write(p[1], "up", 2) != 2)
			_exit(97);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], up, sizeof(up) - 1), 2);
	close(p[0]);
}

static void skip_unless_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "# skipped: switching uids needs root\n");
		skip();
	}
}

/* ---- tests -------------------------------------------------------------- */

/* Under umask 000 the socket is still 0600, and the umask is put back. */
static void test_mode_under_umask_000(void **state)
{
	struct server *s = *state;
	struct snap_err err;
	struct stat st;

	umask(0);
	assert_int_equal(control_create(&s->c, s->path, &err), 0);
	assert_int_equal(umask(022), 0);
	assert_int_equal(lstat(s->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_own_uid_served(void **state)
{
	struct server *s = *state;
	char resp[256];

	serve_here(s);
	assert_int_equal(ask(s->path, resp, sizeof(resp)), 0);
	assert_string_equal(resp, STATUS_OK);
}

/*
 * snapvm as root: nobody cannot connect to the 0600 socket; once its mode
 * is widened, nobody connects and is refused by its uid, with one line
 * each way; root is still served.
 */
static void test_other_uid_refused(void **state)
{
	struct server *s = *state;
	char resp[256], want[512];
	uint8_t *log;
	size_t len;
	pid_t pid;

	skip_unless_root();
	serve_as(s, 0);
	assert_int_equal(ask_as(NOBODY, s->path, resp, sizeof(resp), &pid),
			 -EACCES);
	assert_int_equal(chmod(s->path, 0666), 0);
	assert_int_equal(ask_as(NOBODY, s->path, resp, sizeof(resp), &pid), 0);
	assert_string_equal(resp, "error permission denied: uid 65534 is "
			    "neither snapvm's user nor root");
	snprintf(want, sizeof(want), "snapvm: --control %s: refused a client "
		 "of uid 65534 (pid %d)\n", s->path, (int)pid);
	log = test_read_file(s->log, &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(log, want, len);
	free(log);
	assert_int_equal(ask(s->path, resp, sizeof(resp)), 0);
	assert_string_equal(resp, STATUS_OK);
}

/* snapvm as nobody: nobody and root are served, another uid is not. */
static void test_own_uid_and_root_served(void **state)
{
	struct server *s = *state;
	char resp[256];
	pid_t pid;

	skip_unless_root();
	serve_as(s, NOBODY);
	assert_int_equal(ask_as(NOBODY, s->path, resp, sizeof(resp), &pid), 0);
	assert_string_equal(resp, STATUS_OK);
	assert_int_equal(ask(s->path, resp, sizeof(resp)), 0);
	assert_string_equal(resp, STATUS_OK);
	assert_int_equal(chmod(s->path, 0666), 0);
	assert_int_equal(ask_as(OTHER, s->path, resp, sizeof(resp), &pid), 0);
	assert_string_equal(resp, "error permission denied: uid 65533 is "
			    "neither snapvm's user nor root");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mode_under_umask_000,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_uid_served, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_other_uid_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_own_uid_and_root_served,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
