/* SPDX-License-Identifier: MIT */
/*
 * Snapshot directories: write and read back, atomic publication under
 * injected failures and a killed writer, and every read-side check.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/lib/testutil.h"

#define MEM (1u << 20)

static char *path_in(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

static void test_write_read(void **unused)
{
	char *tmp = test_tmpdir(), *dir = path_in(tmp, "snap");
	struct snap_err err = { "" };
	struct snap_manifest m;
	struct snap_state *s = NULL, *want = test_state_sample(3, 9);

	assert_int_equal(test_write_snapshot(&snap_io_posix, dir, 3, MEM, 9,
					     SNAP_MEMORY_DIGEST, &err), 0);
	assert_int_equal(test_count_entries(tmp), 1);	/* no temporary left */
	assert_int_equal(test_count_entries(dir), 3);
	assert_int_equal(snap_read(dir, SNAP_MEMORY_DIGEST, &m, &s, &err), 0);
	assert_int_equal(m.vcpu_count, 3);
	assert_int_equal(m.memory_size, MEM);
	assert_true(m.has_memory_sha256);
	assert_int_equal(s->n_vcpus, 3);
	assert_memory_equal(&s->vcpus[2].regs, &want->vcpus[2].regs,
			    sizeof(want->vcpus[2].regs));
	snap_manifest_release(&m);
	snap_state_free(s);

	/* A second save under the same name is refused; the first stays. */
	assert_int_equal(test_write_snapshot(&snap_io_posix, dir, 1, MEM, 2,
					     SNAP_MEMORY_DIGEST, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "already exists"));
	assert_int_equal(snap_read(dir, 0, &m, NULL, &err), 0);
	assert_int_equal(m.vcpu_count, 3);
	snap_manifest_release(&m);
	assert_int_equal(test_count_entries(tmp), 1);

	snap_state_free(want);
	test_rmtree(tmp);
	free(dir);
	free(tmp);
}

static void test_commit_refuses_mismatch(void **unused)
{
	char *tmp = test_tmpdir(), *dir = path_in(tmp, "snap");
	struct snap_state *s = test_state_sample(2, 1);
	struct snap_err err = { "" };
	struct snap_writer *w;
	struct snap_manifest m;
	int fd;

	test_manifest_sample(&m, 3, MEM, 1);
	assert_int_equal(snap_writer_begin(&snap_io_posix, dir, &w, &err), 0);
	assert_int_equal(snap_writer_memory(w, MEM, &fd, &err), 0);
	assert_int_equal(snap_writer_commit(w, &m, s, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "vcpu_count 3, state has 2"));
	/* memory.bin of the wrong size is refused too */
	m.vcpu_count = 2;
	assert_int_equal(ftruncate(fd, MEM / 2), 0);
	assert_int_equal(snap_writer_commit(w, &m, s, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "memory.bin: 524288 bytes, the "
				"manifest says 1048576"));
	snap_writer_free(w);
	assert_int_equal(test_count_entries(tmp), 0);
	snap_manifest_release(&m);
	snap_state_free(s);
	test_rmtree(tmp);
	free(dir);
	free(tmp);
}

/* ---- failure injection -------------------------------------------------- */

enum op { OP_MKDIR, OP_OPEN, OP_PWRITE, OP_FTRUNCATE, OP_FSYNC, OP_RENAME,
	  OP_COUNT };

static const char *const op_names[OP_COUNT] = {
	"mkdir", "open", "pwrite", "ftruncate", "fsync", "rename",
};

struct faulty {
	enum op op;		/* which operation fails */
	int nth;		/* on its nth call (0-based) */
	int err;		/* with this errno */
	int seen;		/* calls of op so far */
	bool fired;
	bool renamed;		/* the rename to the final name happened */
	bool fired_after_rename;
	bool kill;		/* SIGKILL instead of failing */
};

static bool should_fail(struct faulty *f, enum op op)
{
	if (op != f->op || f->seen++ != f->nth)
		return false;
	f->fired = true;
	f->fired_after_rename = f->renamed;
	if (f->kill)
		raise(SIGKILL);
	return true;
}

static int f_mkdir(void *ctx, const char *path, mode_t mode)
{
	if (should_fail(ctx, OP_MKDIR))
		return -((struct faulty *)ctx)->err;
	return snap_io_posix.mkdir(NULL, path, mode);
}

static int f_open(void *ctx, const char *path, int flags, mode_t mode)
{
	if (should_fail(ctx, OP_OPEN))
		return -((struct faulty *)ctx)->err;
	return snap_io_posix.open(NULL, path, flags, mode);
}

static ssize_t f_pwrite(void *ctx, int fd, const void *buf, size_t len,
			off_t off)
{
	if (should_fail(ctx, OP_PWRITE))
		return -((struct faulty *)ctx)->err;
	return snap_io_posix.pwrite(NULL, fd, buf, len, off);
}

static int f_ftruncate(void *ctx, int fd, off_t len)
{
	if (should_fail(ctx, OP_FTRUNCATE))
		return -((struct faulty *)ctx)->err;
	return snap_io_posix.ftruncate(NULL, fd, len);
}

static int f_fsync(void *ctx, int fd)
{
	if (should_fail(ctx, OP_FSYNC))
		return -((struct faulty *)ctx)->err;
	return snap_io_posix.fsync(NULL, fd);
}

static int f_rename(void *ctx, const char *from, const char *to)
{
	struct faulty *f = ctx;
	int ret;

	if (should_fail(f, OP_RENAME))
		return -f->err;
	ret = snap_io_posix.rename_noreplace(NULL, from, to);
	f->renamed = ret == 0;
	return ret;
}

static struct snap_io faulty_io(struct faulty *f)
{
	struct snap_io io = snap_io_posix;

	io.mkdir = f_mkdir;
	io.open = f_open;
	io.pwrite = f_pwrite;
	io.ftruncate = f_ftruncate;
	io.fsync = f_fsync;
	io.rename_noreplace = f_rename;
	io.ctx = f;
	return io;
}

/* Digest of every file of a snapshot, to prove it never changed. */
static void digest_snapshot(const char *dir, uint8_t out[3][SNAP_DIGEST_LEN])
{
	static const char *const files[] = {
		SNAP_MANIFEST_FILE, SNAP_STATE_FILE, SNAP_MEMORY_FILE,
	};

	for (int i = 0; i < 3; i++) {
		char *p = path_in(dir, files[i]);
		int fd = open(p, O_RDONLY);
		struct stat st;

		assert_true(fd >= 0 && fstat(fd, &st) == 0);
		assert_int_equal(snap_digest_fd(fd, (uint64_t)st.st_size,
						out[i]), 0);
		close(fd);
		free(p);
	}
}

/*
 * Fail each call of each operation in turn while saving "new" beside an
 * existing "old": the save reports an error, "old" is untouched, no
 * temporary is left, and "new" is either absent or complete.
 */
static void test_injected_failures(void **unused)
{
	char *tmp = test_tmpdir();
	char *old = path_in(tmp, "old"), *new = path_in(tmp, "new");
	uint8_t before[3][SNAP_DIGEST_LEN], after[3][SNAP_DIGEST_LEN];
	static const int errnos[] = { EIO, ENOSPC };
	int injected = 0;

	assert_int_equal(test_write_snapshot(&snap_io_posix, old, 2, MEM, 1,
					     SNAP_MEMORY_DIGEST, NULL), 0);
	digest_snapshot(old, before);

	for (int op = 0; op < OP_COUNT; op++) {
		for (int nth = 0;; nth++) {
			struct faulty f = {
				.op = op, .nth = nth, .err = errnos[nth % 2],
			};
			struct snap_io io = faulty_io(&f);
			struct snap_err err = { "" };
			struct snap_manifest m;
			int ret;

			ret = test_write_snapshot(&io, new, 2, MEM, 2,
					     SNAP_MEMORY_DIGEST, &err);
			if (!f.fired) {
				/* Past the last call of op: a clean save. */
				assert_int_equal(ret, 0);
				test_rmtree(new);
				break;
			}
			injected++;
			if (ret == 0)
				fail_msg("%s #%d failed and the save "
					 "succeeded", op_names[op], nth);
			assert_true(err.msg[0] != '\0');
			if (f.fired_after_rename) {
				/* Only the parent's fsync (open, fsync) comes
				 * after the rename: the snapshot is complete. */
				assert_int_equal(snap_read(new,
							   SNAP_MEMORY_DIGEST,
							   &m, NULL, NULL), 0);
				snap_manifest_release(&m);
				test_rmtree(new);
			} else {
				assert_int_equal(access(new, F_OK), -1);
			}
			assert_int_equal(test_count_entries(tmp), 1);
			digest_snapshot(old, after);
			assert_memory_equal(before, after, sizeof(before));
		}
	}
	/* mkdir 1, open 4, pwrite 16+, ftruncate 1, fsync 5, rename 1 */
	assert_true(injected >= 28);
	test_rmtree(tmp);
	free(old);
	free(new);
	free(tmp);
}

/* A writer killed at each step leaves nothing under the final name. */
static void test_killed_writer(void **unused)
{
	char *tmp = test_tmpdir(), *dir = path_in(tmp, "snap");

	for (int op = 0; op < OP_COUNT; op++) {
		struct faulty f = { .op = op, .nth = 0, .kill = true };
		struct snap_io io = faulty_io(&f);
		int status;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0)
			_exit(test_write_snapshot(&io, dir, 1, MEM, 3,
					     SNAP_MEMORY_DIGEST, NULL)
			      ? 1 : 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
		assert_int_equal(access(dir, F_OK), -1);
	}
	test_rmtree(tmp);
	free(dir);
	free(tmp);
}

/* ---- the reader's checks ------------------------------------------------ */

static void expect_read_error(const char *dir, int ret, const char *what)
{
	struct snap_err err = { "" };
	struct snap_state *s = NULL;
	struct snap_manifest m;

	assert_int_equal(snap_read(dir, SNAP_MEMORY_DIGEST, &m, &s, &err), ret);
	assert_null(s);
	if (!strstr(err.msg, what))
		fail_msg("\"%s\" not in \"%s\"", what, err.msg);
}

static void test_read_errors(void **unused)
{
	char *tmp = test_tmpdir(), *dir = path_in(tmp, "s");
	char *manifest = path_in(dir, SNAP_MANIFEST_FILE);
	char *state = path_in(dir, SNAP_STATE_FILE);
	char *memory = path_in(dir, SNAP_MEMORY_FILE);
	char *other = path_in(tmp, "other");
	char *other_state = path_in(other, SNAP_STATE_FILE);
	uint8_t *saved;
	size_t len;
	int fd;

	expect_read_error(dir, -ENOENT, "manifest.bin: No such file");
	assert_int_equal(test_write_snapshot(&snap_io_posix, dir, 2, MEM, 1,
					     SNAP_MEMORY_DIGEST, NULL), 0);
	assert_int_equal(test_write_snapshot(&snap_io_posix, other, 2, MEM, 2,
					     SNAP_MEMORY_DIGEST, NULL), 0);

	/* state.bin with one byte changed, and another snapshot's */
	saved = test_read_file(state, &len);
	saved[len / 2] ^= 0x40;
	test_write_file(state, saved, len);
	expect_read_error(dir, -EBADMSG, "state.bin: digest mismatch");
	saved[len / 2] ^= 0x40;
	{
		size_t olen;
		uint8_t *o = test_read_file(other_state, &olen);

		test_write_file(state, o, olen);
		expect_read_error(dir, -EBADMSG, "state.bin:");
		free(o);
	}
	test_write_file(state, saved, len - 1);
	{
		char want[96];

		snprintf(want, sizeof(want), "state.bin: %zu bytes, the "
			 "manifest says %zu", len - 1, len);
		expect_read_error(dir, -EBADMSG, want);
	}
	assert_int_equal(unlink(state), 0);
	expect_read_error(dir, -ENOENT, "state.bin: No such file");
	test_write_file(state, saved, len);
	free(saved);

	/* memory.bin: wrong size, missing, not a file, corrupt */
	fd = open(memory, O_RDWR);
	assert_int_equal(ftruncate(fd, MEM + 4096), 0);
	expect_read_error(dir, -EINVAL, "memory.bin: 1052672 bytes, the "
			  "manifest says 1048576");
	assert_int_equal(ftruncate(fd, MEM), 0);
	assert_int_equal(pwrite(fd, "x", 1, 12345), 1);
	expect_read_error(dir, -EBADMSG, "memory.bin: digest mismatch");
	{
		struct snap_manifest m;

		/* Without the digest flag the cheap checks pass. */
		assert_int_equal(snap_read(dir, 0, &m, NULL, NULL), 0);
		snap_manifest_release(&m);
	}
	close(fd);
	assert_int_equal(unlink(memory), 0);
	expect_read_error(dir, -ENOENT, "memory.bin: No such file");
	assert_int_equal(mkdir(memory, 0755), 0);
	expect_read_error(dir, -EINVAL, "memory.bin: not a regular file");
	rmdir(memory);
	assert_int_equal(mkfifo(memory, 0644), 0);
	expect_read_error(dir, -EINVAL, "memory.bin: not a regular file");
	unlink(memory);

	/* manifest.bin as a directory, and too large */
	saved = test_read_file(manifest, &len);
	assert_int_equal(unlink(manifest), 0);
	assert_int_equal(mkdir(manifest, 0755), 0);
	expect_read_error(dir, -EINVAL, "manifest.bin: not a regular file");
	rmdir(manifest);
	assert_int_equal(mkfifo(manifest, 0644), 0);
	expect_read_error(dir, -EINVAL, "manifest.bin: not a regular file");
	unlink(manifest);
	fd = open(manifest, O_CREAT | O_WRONLY, 0644);
	assert_int_equal(ftruncate(fd, SNAP_MANIFEST_MAX + 1), 0);
	close(fd);
	expect_read_error(dir, -EFBIG, "manifest.bin: size 1048577");
	free(saved);

	test_rmtree(tmp);
	free(manifest);
	free(state);
	free(memory);
	free(other_state);
	free(other);
	free(dir);
	free(tmp);
}

/* A manifest and a state that disagree on the vCPU count. */
static void test_vcpu_count_disagrees(void **unused)
{
	char *tmp = test_tmpdir(), *dir = path_in(tmp, "s");
	char *p;
	struct snap_state *s = test_state_sample(3, 4);
	struct snap_manifest m;
	uint8_t *state, *manifest;
	size_t state_len, manifest_len;
	int fd;

	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(snap_state_encode(s, &state, &state_len, NULL), 0);
	test_manifest_sample(&m, 2, MEM, 4);
	m.state_size = state_len;
	snap_sha256(state, state_len, m.state_sha256);
	assert_int_equal(snap_manifest_encode(&m, &manifest, &manifest_len,
					      NULL), 0);
	p = path_in(dir, SNAP_STATE_FILE);
	test_write_file(p, state, state_len);
	free(p);
	p = path_in(dir, SNAP_MANIFEST_FILE);
	test_write_file(p, manifest, manifest_len);
	free(p);
	p = path_in(dir, SNAP_MEMORY_FILE);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_int_equal(ftruncate(fd, MEM), 0);
	close(fd);
	free(p);
	expect_read_error(dir, -EINVAL, "state.bin: 3 vcpus, the manifest "
			  "says 2");
	free(state);
	free(manifest);
	snap_manifest_release(&m);
	snap_state_free(s);
	test_rmtree(tmp);
	free(dir);
	free(tmp);
}

static void test_bad_paths(void **unused)
{
	struct snap_writer *w = NULL;
	struct snap_err err = { "" };

	assert_int_equal(snap_writer_begin(&snap_io_posix, "/", &w, &err),
			 -EINVAL);
	assert_int_equal(snap_writer_begin(&snap_io_posix, "", &w, &err),
			 -EINVAL);
	assert_int_equal(snap_writer_begin(&snap_io_posix,
					   "/nonexistent-dir/x/snap", &w,
					   &err), -ENOENT);
	assert_non_null(strstr(err.msg, "cannot create temporary directory"));
	assert_null(w);
	snap_writer_free(NULL);
}

/* ---- disks --------------------------------------------------------------- */

#define DISK_SIZE(i)	((uint64_t)((i) + 1) * 65536)

/* Disk i's contents: a pattern of its own. */
static uint8_t *disk_bytes(uint32_t i)
{
	uint8_t *b = malloc(DISK_SIZE(i));

	assert_non_null(b);
	for (uint64_t k = 0; k < DISK_SIZE(i); k++)
		b[k] = (uint8_t)(k * 7 + i * 13 + k / 4096);
	return b;
}

/*
 * Begin a snapshot of dir with memory.bin and n disks diskI.img written,
 * and a manifest m listing the same n disks (disk 1 read-only).
 */
static struct snap_writer *begin_with_disks(const char *dir, uint32_t n,
					    struct snap_manifest *m)
{
	struct snap_err err = { "" };
	struct snap_writer *w;
	int fd;

	test_manifest_sample(m, 2, MEM, 5);
	assert_int_equal(snap_writer_begin(&snap_io_posix, dir, &w, &err), 0);
	assert_int_equal(snap_writer_memory(w, MEM, &fd, &err), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct snap_disk *d = &m->disks[i];
		uint8_t *b = disk_bytes(i);

		snprintf(d->file, sizeof(d->file), "disk%u.img", i);
		d->size = DISK_SIZE(i);
		d->read_only = i == 1;
		assert_int_equal(snap_writer_disk(w, d->file, &fd, &err), 0);
		assert_int_equal(snap_io_write_all(&snap_io_posix, fd, b,
						   DISK_SIZE(i), 0), 0);
		free(b);
	}
	m->n_disks = n;
	return w;
}

static void test_disks_write_read(void **unused)
{
	char *tmp = test_tmpdir(), *dir = path_in(tmp, "snap");
	struct snap_state *s = test_state_sample(2, 5), *rs = NULL;
	struct snap_err err = { "" };
	struct snap_manifest m, r;
	struct snap_writer *w;

	w = begin_with_disks(dir, 2, &m);
	assert_int_equal(snap_writer_commit(w, &m, s, SNAP_MEMORY_DIGEST,
					    &err), 0);
	snap_writer_free(w);
	assert_int_equal(test_count_entries(tmp), 1);
	assert_int_equal(test_count_entries(dir), 5);

	assert_int_equal(snap_read(dir, SNAP_MEMORY_DIGEST | SNAP_DISK_DIGEST,
				   &r, &rs, &err), 0);
	assert_int_equal(r.n_disks, 2);
	for (uint32_t i = 0; i < 2; i++) {
		uint8_t want[SNAP_DIGEST_LEN], *b = disk_bytes(i), *f;
		char *p = path_in(dir, r.disks[i].file);
		size_t len;

		snap_sha256(b, DISK_SIZE(i), want);
		assert_memory_equal(r.disks[i].sha256, want, sizeof(want));
		/* commit filled the caller's manifest too */
		assert_memory_equal(m.disks[i].sha256, want, sizeof(want));
		assert_int_equal(r.disks[i].size, DISK_SIZE(i));
		assert_int_equal(r.disks[i].read_only, i == 1);
		f = test_read_file(p, &len);
		assert_int_equal(len, DISK_SIZE(i));
		assert_memory_equal(f, b, len);
		free(f);
		free(b);
		free(p);
	}
	assert_string_equal(r.disks[0].file, "disk0.img");
	assert_string_equal(r.disks[1].file, "disk1.img");
	snap_manifest_release(&r);
	snap_state_free(rs);
	snap_manifest_release(&m);
	snap_state_free(s);
	test_rmtree(tmp);
	free(dir);
	free(tmp);
}

/* Mutations of the manifest's disk list that commit must refuse. */
static void list_fewer(struct snap_manifest *m) { m->n_disks = 1; }

static void list_more(struct snap_manifest *m)
{
	m->disks[2] = m->disks[1];
	strcpy(m->disks[2].file, "disk2.img");
	m->n_disks = 3;
}

static void list_swapped(struct snap_manifest *m)
{
	struct snap_disk d = m->disks[0];

	m->disks[0] = m->disks[1];
	m->disks[1] = d;
}

static void list_size(struct snap_manifest *m) { m->disks[1].size += 512; }
static void list_none(struct snap_manifest *m) { m->n_disks = 0; }

static void test_disks_commit_mismatch(void **unused)
{
	static const struct {
		void (*mutate)(struct snap_manifest *m);
		const char *what;
	} cases[] = {
		{ list_fewer, "the manifest names 1 disks, 2 were written" },
		{ list_more, "the manifest names 3 disks, 2 were written" },
		{ list_none, "the manifest names 0 disks, 2 were written" },
		{ list_swapped, "disk 0: the manifest says disk1.img, "
				"disk0.img was written" },
		{ list_size, "disk1.img: 131072 bytes, the manifest says "
			     "131584" },
	};
	char *tmp = test_tmpdir(), *dir = path_in(tmp, "snap");
	struct snap_state *s = test_state_sample(2, 5);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct snap_err err = { "" };
		struct snap_manifest m;
		struct snap_writer *w = begin_with_disks(dir, 2, &m);

		cases[i].mutate(&m);
		assert_int_equal(snap_writer_commit(w, &m, s, 0, &err),
				 -EINVAL);
		if (!strstr(err.msg, cases[i].what))
			fail_msg("case %zu: \"%s\" not in \"%s\"", i,
				 cases[i].what, err.msg);
		assert_null(strchr(err.msg, '\n'));
		assert_int_equal(access(dir, F_OK), -1);
		/* The temporary, disks included, goes with the writer. */
		assert_int_equal(test_count_entries(tmp), 1);
		snap_writer_free(w);
		assert_int_equal(test_count_entries(tmp), 0);
		snap_manifest_release(&m);
	}
	snap_state_free(s);
	test_rmtree(tmp);
	free(dir);
	free(tmp);
}

static void test_disks_writer_refusals(void **unused)
{
	char *tmp = test_tmpdir(), *dir = path_in(tmp, "snap");
	struct snap_state *s = test_state_sample(2, 5);
	struct snap_err err = { "" };
	char name[SNAP_NAME_MAX + 1];
	struct snap_manifest m;
	struct snap_writer *w;
	int fd = -1;

	w = begin_with_disks(dir, 2, &m);
	assert_int_equal(snap_writer_disk(w, "a/b", &fd, &err), -EINVAL);
	assert_string_equal(err.msg, "a/b: not a plain file name");
	memset(name, 'n', SNAP_NAME_MAX);
	name[SNAP_NAME_MAX] = 0;
	assert_int_equal(snap_writer_disk(w, name, &fd, &err), -EINVAL);
	assert_int_equal(snap_writer_disk(w, "disk0.img", &fd, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "disk0.img: File exists"));
	assert_int_equal(snap_writer_disk(w, SNAP_MEMORY_FILE, &fd, &err),
			 -EEXIST);
	for (uint32_t i = 2; i < SNAP_MAX_DISKS; i++) {
		snprintf(name, sizeof(name), "more%u", i);
		assert_int_equal(snap_writer_disk(w, name, &fd, &err), 0);
	}
	assert_int_equal(snap_writer_disk(w, "ninth", &fd, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "ninth: more than 8 disks"));
	snap_writer_free(w);
	assert_int_equal(test_count_entries(tmp), 0);
	snap_manifest_release(&m);

	/*
	 * A disk the writer accepts under a name the snapshot uses itself
	 * ("state.bin", created before commit writes its own) is refused by
	 * the manifest's validation, and removed with the temporary.
	 */
	w = begin_with_disks(dir, 1, &m);
	assert_int_equal(snap_writer_disk(w, SNAP_STATE_FILE, &fd, &err), 0);
	strcpy(m.disks[1].file, SNAP_STATE_FILE);
	m.disks[1].size = 0;
	m.n_disks = 2;
	assert_true(snap_writer_commit(w, &m, s, 0, &err) < 0);
	assert_int_equal(access(dir, F_OK), -1);
	snap_writer_free(w);
	assert_int_equal(test_count_entries(tmp), 0);
	snap_manifest_release(&m);

	snap_state_free(s);
	test_rmtree(tmp);
	free(dir);
	free(tmp);
}

static void expect_disk_error(const char *dir, unsigned flags, int ret,
			      const char *what)
{
	struct snap_err err = { "" };
	struct snap_state *s = NULL;
	struct snap_manifest m;

	assert_int_equal(snap_read(dir, flags, &m, &s, &err), ret);
	assert_null(s);
	assert_null(strchr(err.msg, '\n'));
	if (strcmp(err.msg, what))
		fail_msg("\"%s\", \"%s\" expected", err.msg, what);
}

/*
 * Each read-side check of a disk gives one line naming the disk's file.
 * A changed byte is noticed only with SNAP_DISK_DIGEST, which reads every
 * disk whole; snapvm restore asks for it unless told --trust-disks.
 */
static void test_disks_read_errors(void **unused)
{
	const unsigned all = SNAP_MEMORY_DIGEST | SNAP_DISK_DIGEST;
	char *tmp = test_tmpdir(), *dir = path_in(tmp, "snap");
	char *disk1 = path_in(dir, "disk1.img"), *disk0 = path_in(dir,
								 "disk0.img");
	struct snap_state *s = test_state_sample(2, 5);
	struct snap_manifest m;
	struct snap_writer *w;
	uint8_t *b = disk_bytes(1);

	w = begin_with_disks(dir, 2, &m);
	assert_int_equal(snap_writer_commit(w, &m, s, 0, NULL), 0);
	snap_writer_free(w);
	snap_manifest_release(&m);
	assert_int_equal(snap_read(dir, all, &m, NULL, NULL), 0);
	snap_manifest_release(&m);

	assert_int_equal(unlink(disk1), 0);
	expect_disk_error(dir, 0, -ENOENT, "disk1.img: No such file or "
			  "directory");
	test_write_file(disk1, b, 4096);
	expect_disk_error(dir, 0, -EINVAL, "disk1.img: 4096 bytes, the "
			  "manifest says 131072");
	test_write_file(disk1, b, DISK_SIZE(1));
	assert_int_equal(truncate(disk1, DISK_SIZE(1) + 512), 0);
	expect_disk_error(dir, all, -EINVAL, "disk1.img: 131584 bytes, the "
			  "manifest says 131072");
	assert_int_equal(unlink(disk1), 0);
	assert_int_equal(mkdir(disk1, 0755), 0);
	expect_disk_error(dir, 0, -EINVAL, "disk1.img: not a regular file");
	assert_int_equal(rmdir(disk1), 0);
	/* A FIFO is refused, not waited on (its open would block). */
	assert_int_equal(mkfifo(disk1, 0644), 0);
	expect_disk_error(dir, 0, -EINVAL, "disk1.img: not a regular file");
	assert_int_equal(unlink(disk1), 0);

	/* One flipped byte, in the last sector. */
	b[DISK_SIZE(1) - 3] ^= 0x10;
	test_write_file(disk1, b, DISK_SIZE(1));
	expect_disk_error(dir, SNAP_DISK_DIGEST, -EBADMSG, "disk1.img: digest "
			  "mismatch (the disk is corrupt or was changed)");
	assert_int_equal(snap_read(dir, SNAP_MEMORY_DIGEST, &m, NULL, NULL),
			 0);
	snap_manifest_release(&m);
	b[DISK_SIZE(1) - 3] ^= 0x10;
	test_write_file(disk1, b, DISK_SIZE(1));
	assert_int_equal(snap_read(dir, all, &m, NULL, NULL), 0);
	snap_manifest_release(&m);

	/* The first disk is checked too, and named. */
	free(b);
	b = disk_bytes(0);
	b[0] ^= 1;
	test_write_file(disk0, b, DISK_SIZE(0));
	expect_disk_error(dir, all, -EBADMSG, "disk0.img: digest mismatch "
			  "(the disk is corrupt or was changed)");

	free(b);
	snap_state_free(s);
	test_rmtree(tmp);
	free(disk0);
	free(disk1);
	free(dir);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_commit_refuses_mismatch),
		cmocka_unit_test(test_injected_failures),
		cmocka_unit_test(test_killed_writer),
		cmocka_unit_test(test_read_errors),
		cmocka_unit_test(test_vcpu_count_disagrees),
		cmocka_unit_test(test_bad_paths),
		cmocka_unit_test(test_disks_write_read),
		cmocka_unit_test(test_disks_commit_mismatch),
		cmocka_unit_test(test_disks_writer_refusals),
		cmocka_unit_test(test_disks_read_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
