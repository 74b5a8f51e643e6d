/* SPDX-License-Identifier: MIT */
#include "snapshot/format/snapdir.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct snap_writer {
	const struct snap_io *io;
	char final[PATH_MAX];
	char parent[PATH_MAX];
	char tmp[PATH_MAX];
	int memory_fd;
	int disk_fd[SNAP_MAX_DISKS];	/* disk i's file, or -1 */
	char disk_file[SNAP_MAX_DISKS][SNAP_NAME_MAX];
	uint32_t n_disks;
	bool committed;
};

static int join(char *out, const char *dir, const char *name)
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* Split dir into parent and base, ignoring trailing slashes. */
static int split_path(const char *dir, char *parent, char *base)
{
	char copy[PATH_MAX];
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 0 || n >= PATH_MAX)
		return -EINVAL;
	memcpy(copy, dir, n);
	copy[n] = '\0';
	snprintf(base, NAME_MAX + 1, "%s", basename(copy));
	memcpy(copy, dir, n);
	copy[n] = '\0';
	snprintf(parent, PATH_MAX, "%s", dirname(copy));
	if (!strcmp(base, "/") || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EINVAL;
	return 0;
}

int snap_writer_begin(const struct snap_io *io, const char *dir,
		      struct snap_writer **out, struct snap_err *err)
{
	char base[NAME_MAX + 1];
	struct snap_writer *w;
	struct stat st;
	uint32_t rnd;
	int ret;

	w = calloc(1, sizeof(*w));
	if (!w)
		return snap_err_set(err, -ENOMEM, "out of memory");
	w->io = io;
	w->memory_fd = -1;
	for (uint32_t i = 0; i < SNAP_MAX_DISKS; i++)
		w->disk_fd[i] = -1;
	ret = split_path(dir, w->parent, base);
	if (ret) {
		snap_err_set(err, ret, "%s: not a usable snapshot path", dir);
		goto fail;
	}
	snprintf(w->final, sizeof(w->final), "%s", dir);
	if (lstat(dir, &st) == 0) {
		ret = snap_err_set(err, -EEXIST, "%s: already exists", dir);
		goto fail;
	}
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)getpid();
	if (snprintf(w->tmp, sizeof(w->tmp), "%s/.%s.tmp.%d.%08x", w->parent,
		     base, (int)getpid(), rnd) >= (int)sizeof(w->tmp)) {
		ret = snap_err_set(err, -ENAMETOOLONG, "%s: path too long", dir);
		goto fail;
	}
	ret = io->mkdir(io->ctx, w->tmp, 0755);
	if (ret) {
		snap_err_set(err, ret, "%s: cannot create temporary directory: "
			     "%s", dir, strerror(-ret));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	free(w);
	return ret;
}

int snap_writer_disk(struct snap_writer *w, const char *file, int *fd,
		     struct snap_err *err)
{
	const struct snap_io *io = w->io;
	char path[PATH_MAX];
	int ret;

	if (w->n_disks == SNAP_MAX_DISKS)
		return snap_err_set(err, -ENOSPC, "%s: more than %u disks", file,
				    SNAP_MAX_DISKS);
	if (strlen(file) >= SNAP_NAME_MAX || strchr(file, '/'))
		return snap_err_set(err, -EINVAL, "%s: not a plain file name",
				    file);
	ret = join(path, w->tmp, file);
	if (!ret)
		ret = io->open(io->ctx, path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (ret < 0)
		return snap_err_set(err, ret, "%s: %s", file, strerror(-ret));
	w->disk_fd[w->n_disks] = ret;
	strcpy(w->disk_file[w->n_disks], file);
	w->n_disks++;
	*fd = ret;
	return 0;
}

const char *snap_writer_tmpdir(const struct snap_writer *w)
{
	return w->tmp;
}

int snap_writer_memory(struct snap_writer *w, uint64_t size, int *fd,
		       struct snap_err *err)
{
	const struct snap_io *io = w->io;
	char path[PATH_MAX];
	int ret;

	if (w->memory_fd >= 0) {
		*fd = w->memory_fd;
		return 0;
	}
	ret = join(path, w->tmp, SNAP_MEMORY_FILE);
	if (!ret)
		ret = io->open(io->ctx, path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (ret < 0)
		return snap_err_set(err, ret, "memory.bin: %s", strerror(-ret));
	w->memory_fd = ret;
	ret = io->ftruncate(io->ctx, w->memory_fd, (off_t)size);
	if (ret)
		return snap_err_set(err, ret, "memory.bin: cannot size to %llu "
				    "bytes: %s", (unsigned long long)size,
				    strerror(-ret));
	*fd = w->memory_fd;
	return 0;
}

/* Create name in the temporary directory holding buf, durably. */
static int write_small(struct snap_writer *w, const char *name,
		       const uint8_t *buf, size_t len, struct snap_err *err)
{
	const struct snap_io *io = w->io;
	char path[PATH_MAX];
	int fd, ret;

	ret = join(path, w->tmp, name);
	if (ret)
		return snap_err_set(err, ret, "%s: path too long", name);
	fd = io->open(io->ctx, path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return snap_err_set(err, fd, "%s: %s", name, strerror(-fd));
	ret = snap_io_write_all(io, fd, buf, len, 0);
	if (ret)
		snap_err_set(err, ret, "%s: write: %s", name, strerror(-ret));
	if (!ret) {
		ret = io->fsync(io->ctx, fd);
		if (ret)
			snap_err_set(err, ret, "%s: fsync: %s", name,
				     strerror(-ret));
	}
	if (io->close(io->ctx, fd) && !ret)
		ret = snap_err_set(err, -EIO, "%s: close failed", name);
	return ret;
}

static int finish_memory(struct snap_writer *w, struct snap_manifest *m,
			 unsigned flags, struct snap_err *err)
{
	const struct snap_io *io = w->io;
	struct stat st;
	int ret;

	if (w->memory_fd < 0)
		return snap_err_set(err, -EINVAL, "memory.bin: never written");
	ret = io->fsync(io->ctx, w->memory_fd);
	if (ret)
		return snap_err_set(err, ret, "memory.bin: fsync: %s",
				    strerror(-ret));
	if (fstat(w->memory_fd, &st))
		return snap_err_set(err, -errno, "memory.bin: %m");
	if ((uint64_t)st.st_size != m->memory_size)
		return snap_err_set(err, -EINVAL, "memory.bin: %lld bytes, the "
				    "manifest says %llu", (long long)st.st_size,
				    (unsigned long long)m->memory_size);
	if (flags & SNAP_MEMORY_DIGEST) {
		ret = snap_digest_fd(w->memory_fd, m->memory_size,
				     m->memory_sha256);
		if (ret)
			return snap_err_set(err, ret, "memory.bin: digest: %s",
					    strerror(-ret));
		m->has_memory_sha256 = true;
	}
	return 0;
}

/*
 * Each disk file made with snap_writer_disk: synced, the size the manifest
 * gives, its digest into the manifest.
 */
static int finish_disks(struct snap_writer *w, struct snap_manifest *m,
			struct snap_err *err)
{
	const struct snap_io *io = w->io;

	if (m->n_disks != w->n_disks)
		return snap_err_set(err, -EINVAL, "the manifest names %u disks, "
				    "%u were written", m->n_disks, w->n_disks);
	for (uint32_t i = 0; i < w->n_disks; i++) {
		struct snap_disk *d = &m->disks[i];
		struct stat st;
		int ret;

		if (strcmp(d->file, w->disk_file[i]))
			return snap_err_set(err, -EINVAL, "disk %u: the manifest "
					    "says %s, %s was written", i,
					    d->file, w->disk_file[i]);
		ret = io->fsync(io->ctx, w->disk_fd[i]);
		if (ret)
			return snap_err_set(err, ret, "%s: fsync: %s", d->file,
					    strerror(-ret));
		if (fstat(w->disk_fd[i], &st))
			return snap_err_set(err, -errno, "%s: %m", d->file);
		if ((uint64_t)st.st_size != d->size)
			return snap_err_set(err, -EINVAL, "%s: %lld bytes, the "
					    "manifest says %llu", d->file,
					    (long long)st.st_size,
					    (unsigned long long)d->size);
		ret = snap_digest_fd(w->disk_fd[i], d->size, d->sha256);
		if (ret)
			return snap_err_set(err, ret, "%s: digest: %s",
					    d->file, strerror(-ret));
	}
	return 0;
}

int snap_writer_commit(struct snap_writer *w, struct snap_manifest *m,
		       const struct snap_state *s, unsigned flags,
		       struct snap_err *err)
{
	const struct snap_io *io = w->io;
	uint8_t *state = NULL, *manifest = NULL;
	size_t state_len, manifest_len;
	int ret;

	if (m->vcpu_count != s->n_vcpus)
		return snap_err_set(err, -EINVAL, "manifest vcpu_count %u, "
				    "state has %u vcpus", m->vcpu_count,
				    s->n_vcpus);
	ret = finish_disks(w, m, err);
	if (ret)
		return ret;
	ret = snap_state_encode(s, &state, &state_len, err);
	if (ret)
		return ret;
	m->state_size = state_len;
	snap_sha256(state, state_len, m->state_sha256);
	ret = snap_manifest_encode(m, &manifest, &manifest_len, err);
	if (ret)
		goto out;

	ret = write_small(w, SNAP_STATE_FILE, state, state_len, err);
	if (!ret)
		ret = finish_memory(w, m, flags, err);
	if (ret)
		goto out;
	if (flags & SNAP_MEMORY_DIGEST) {	/* the digest joins the manifest */
		free(manifest);
		manifest = NULL;
		ret = snap_manifest_encode(m, &manifest, &manifest_len, err);
		if (ret)
			goto out;
	}
	ret = write_small(w, SNAP_MANIFEST_FILE, manifest, manifest_len, err);
	if (ret)
		goto out;
	ret = snap_io_fsync_path(io, w->tmp);
	if (ret) {
		snap_err_set(err, ret, "fsync of the temporary directory: %s",
			     strerror(-ret));
		goto out;
	}
	ret = io->rename_noreplace(io->ctx, w->tmp, w->final);
	if (ret) {
		snap_err_set(err, ret, "%s: cannot publish: %s", w->final,
			     ret == -EEXIST ? "it already exists" :
			     strerror(-ret));
		goto out;
	}
	w->committed = true;
	/*
	 * The snapshot is complete under its final name now; a failed fsync of
	 * the parent only means the name may not survive a power cut.
	 */
	ret = snap_io_fsync_path(io, w->parent);
	if (ret)
		snap_err_set(err, ret, "%s: fsync of the parent directory: %s",
			     w->final, strerror(-ret));
out:
	free(state);
	free(manifest);
	return ret;
}

void snap_writer_free(struct snap_writer *w)
{
	static const char *const files[] = {
		SNAP_MANIFEST_FILE, SNAP_STATE_FILE, SNAP_MEMORY_FILE,
	};
	const struct snap_io *io;
	char path[PATH_MAX];

	if (!w)
		return;
	io = w->io;
	if (w->memory_fd >= 0)
		io->close(io->ctx, w->memory_fd);
	for (uint32_t i = 0; i < w->n_disks; i++) {
		io->close(io->ctx, w->disk_fd[i]);
		if (!w->committed && !join(path, w->tmp, w->disk_file[i]))
			io->unlink(io->ctx, path);
	}
	if (!w->committed) {
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
			if (!join(path, w->tmp, files[i]))
				io->unlink(io->ctx, path);
		io->rmdir(io->ctx, w->tmp);
	}
	free(w);
}

/* ---- reading ------------------------------------------------------------ */

static int check_memory(const char *dir, const struct snap_manifest *m,
			unsigned flags, struct snap_err *err)
{
	uint8_t digest[SNAP_DIGEST_LEN];
	char path[PATH_MAX];
	struct stat st;
	int fd, ret = 0;

	if (join(path, dir, SNAP_MEMORY_FILE))
		return snap_err_set(err, -ENAMETOOLONG, "path too long");
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return snap_err_set(err, -errno, "memory.bin: %m");
	if (fstat(fd, &st)) {
		ret = snap_err_set(err, -errno, "memory.bin: %m");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = snap_err_set(err, -EINVAL, "memory.bin: not a regular "
				   "file");
		goto out;
	}
	if ((uint64_t)st.st_size != m->memory_size) {
		ret = snap_err_set(err, -EINVAL, "memory.bin: %lld bytes, the "
				   "manifest says %llu", (long long)st.st_size,
				   (unsigned long long)m->memory_size);
		goto out;
	}
	if ((flags & SNAP_MEMORY_DIGEST) && m->has_memory_sha256) {
		ret = snap_digest_fd(fd, m->memory_size, digest);
		if (ret)
			snap_err_set(err, ret, "memory.bin: %s", strerror(-ret));
		else if (memcmp(digest, m->memory_sha256, sizeof(digest)))
			ret = snap_err_set(err, -EBADMSG, "memory.bin: digest "
					   "mismatch (the file is corrupt)");
	}
out:
	close(fd);
	return ret;
}

/* Each disk: a regular file of the manifest's size (and digest). */
static int check_disks(const char *dir, const struct snap_manifest *m,
		       unsigned flags, struct snap_err *err)
{
	for (uint32_t i = 0; i < m->n_disks; i++) {
		const struct snap_disk *d = &m->disks[i];
		uint8_t digest[SNAP_DIGEST_LEN];
		char path[PATH_MAX];
		struct stat st;
		int fd, ret = 0;

		if (join(path, dir, d->file))
			return snap_err_set(err, -ENAMETOOLONG, "path too long");
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return snap_err_set(err, -errno, "%s: %m", d->file);
		if (fstat(fd, &st))
			ret = snap_err_set(err, -errno, "%s: %m", d->file);
		else if (!S_ISREG(st.st_mode))
			ret = snap_err_set(err, -EINVAL, "%s: not a regular "
					   "file", d->file);
		else if ((uint64_t)st.st_size != d->size)
			ret = snap_err_set(err, -EINVAL, "%s: %lld bytes, the "
					   "manifest says %llu", d->file,
					   (long long)st.st_size,
					   (unsigned long long)d->size);
		else if (flags & SNAP_DISK_DIGEST) {
			ret = snap_digest_fd(fd, d->size, digest);
			if (ret)
				snap_err_set(err, ret, "%s: %s", d->file,
					     strerror(-ret));
			else if (memcmp(digest, d->sha256, sizeof(digest)))
				ret = snap_err_set(err, -EBADMSG, "%s: digest "
						   "mismatch (the disk is "
						   "corrupt or was changed)",
						   d->file);
		}
		close(fd);
		if (ret)
			return ret;
	}
	return 0;
}

static int read_state(const char *dir, const struct snap_manifest *m,
		      struct snap_state **s, struct snap_err *err)
{
	uint8_t digest[SNAP_DIGEST_LEN];
	char path[PATH_MAX];
	uint8_t *buf = NULL;
	size_t len;
	int ret;

	if (join(path, dir, SNAP_STATE_FILE))
		return snap_err_set(err, -ENAMETOOLONG, "path too long");
	ret = snap_read_file(path, SNAP_STATE_FILE, SNAP_STATE_MAX, &buf, &len,
			     err);
	if (ret)
		return ret;
	if (len != m->state_size) {
		ret = snap_err_set(err, -EBADMSG, "state.bin: %zu bytes, the "
				   "manifest says %llu", len,
				   (unsigned long long)m->state_size);
		goto out;
	}
	snap_sha256(buf, len, digest);
	if (memcmp(digest, m->state_sha256, sizeof(digest))) {
		ret = snap_err_set(err, -EBADMSG, "state.bin: digest mismatch "
				   "(the file is corrupt)");
		goto out;
	}
	ret = snap_state_decode(buf, len, s, err);
	if (!ret && (*s)->n_vcpus != m->vcpu_count) {
		ret = snap_err_set(err, -EINVAL, "state.bin: %u vcpus, the "
				   "manifest says %u", (*s)->n_vcpus,
				   m->vcpu_count);
		snap_state_free(*s);
		*s = NULL;
	}
out:
	free(buf);
	return ret;
}

int snap_read(const char *dir, unsigned flags, struct snap_manifest *m,
	      struct snap_state **s, struct snap_err *err)
{
	struct snap_state *state = NULL;
	char path[PATH_MAX];
	uint8_t *buf = NULL;
	size_t len;
	int ret;

	memset(m, 0, sizeof(*m));
	if (join(path, dir, SNAP_MANIFEST_FILE))
		return snap_err_set(err, -ENAMETOOLONG, "path too long");
	ret = snap_read_file(path, SNAP_MANIFEST_FILE, SNAP_MANIFEST_MAX, &buf,
			     &len, err);
	if (ret)
		return ret;
	ret = snap_manifest_decode(buf, len, m, err);
	free(buf);
	if (ret)
		return ret;
	ret = read_state(dir, m, &state, err);
	if (!ret)
		ret = check_memory(dir, m, flags, err);
	if (!ret)
		ret = check_disks(dir, m, flags, err);
	if (ret) {
		snap_state_free(state);
		snap_manifest_release(m);
		return ret;
	}
	if (s)
		*s = state;
	else
		snap_state_free(state);
	return 0;
}
