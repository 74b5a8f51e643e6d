/* SPDX-License-Identifier: MIT */
/*
 * The data operations: write, read, truncate, mapped reads and writes,
 * copy_file_range, fsync and close. Each draws its arguments, says what
 * it does (fsx_note), does it to the mount and to the model, and checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fsx/fsx.h"

void io_pwrite(struct fsx *fsx, int fd, const void *buf, size_t len,
	       size_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fsx_fail_errno(fsx, "pwrite");
		if (n == 0)
			fsx_fail(fsx, "pwrite wrote nothing");
		done += (size_t)n;
	}
}

/* Reads until len bytes or the end of the file; how many it read. */
size_t io_pread(struct fsx *fsx, int fd, void *buf, size_t len, size_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fsx_fail_errno(fsx, "pread");
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return done;
}

/* copy_file_range until len bytes or the source's end, as cp loops. */
size_t io_copy(struct fsx *fsx, int in, size_t off_in, int out,
	       size_t off_out, size_t len)
{
	loff_t oi = (loff_t)off_in, oo = (loff_t)off_out;
	size_t done = 0;

	while (done < len) {
		ssize_t n = copy_file_range(in, &oi, out, &oo, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fsx_fail_errno(fsx, "copy_file_range");
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return done;
}

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/*
 * Copy n bytes (the caller knows them to be there; len when n is 0, which
 * must copy nothing) from file src at so to file dst at doff, as io_copy.
 * Both become layered: they may share a chain in the store. Under
 * --avoid cutadopt a copy the store would adopt goes in two pieces, the
 * first short of the whole and of 64 chunks, so chunks are shared by key
 * instead; one byte goes by pwrite.
 */
size_t fsx_copy(struct fsx *fsx, int src, size_t so, int dst, size_t doff,
		size_t n, size_t len)
{
	int in = model_fd(fsx, src), out = model_fd(fsx, dst);
	size_t first;

	fsx->files[src].layered = fsx->files[dst].layered = true;
	if (!n || !model_no_adopt(fsx, src, so, dst, n))
		return io_copy(fsx, in, so, out, doff, n ? n : len);
	if (n == 1) {
		io_pwrite(fsx, out, fsx->files[src].data + so, 1, doff);
		return 1;
	}
	first = min_sz(n - 1, 63 * fsx->chunk);
	first = io_copy(fsx, in, so, out, doff, first);
	return first + io_copy(fsx, in, so + first, out, doff + first,
			       n - first);
}

/*
 * An offset below limit: anywhere, on a chunk boundary, near the file's
 * end, or inside the file; boundaries and ends are where bugs live.
 */
static size_t pick_off(struct fsx *fsx, size_t size, size_t limit)
{
	size_t off;

	switch (fsx_below(fsx, 4)) {
	case 0:
		off = fsx_below(fsx, limit);
		break;
	case 1:
		off = fsx_below(fsx, limit / fsx->chunk + 1) * fsx->chunk;
		break;
	case 2:
		off = size + fsx_below(fsx, 2 * fsx->page);
		off = off > fsx->page ? off - fsx->page : 0;
		break;
	default:
		off = fsx_below(fsx, size + 1);
		break;
	}
	return off < limit ? off : limit - 1;
}

/* A length from 1 to min(maxio, room): small, whole chunks, or any. */
static size_t pick_len(struct fsx *fsx, size_t room)
{
	size_t max = min_sz(fsx->maxio, room), len;

	switch (fsx_below(fsx, 4)) {
	case 0:
		len = 1 + fsx_below(fsx, 64);
		break;
	case 1:
		len = (1 + fsx_below(fsx, 4)) * fsx->chunk;
		break;
	default:
		len = 1 + fsx_below(fsx, max);
		break;
	}
	return len < max ? len : max;
}

int op_write(struct fsx *fsx)
{
	int file = model_pick_file(fsx);
	size_t off, len;

	if (file < 0)
		return 1;
	off = pick_off(fsx, fsx->files[file].size, fsx->maxlen);
	len = pick_len(fsx, fsx->maxlen - off);
	fsx_fill(fsx, fsx->buf, len);
	fsx_note(fsx, "write %s at %zu len %zu", model_label(fsx, file), off,
		 len);
	io_pwrite(fsx, model_fd(fsx, file), fsx->buf, len, off);
	model_write(fsx, file, off, fsx->buf, len);
	check_size(fsx, file);
	return 0;
}

int op_read(struct fsx *fsx)
{
	int file = model_pick_file(fsx), fd, other;
	size_t size, off, len, n, want;
	char path[FSX_PATH_LEN];

	if (file < 0)
		return 1;
	size = fsx->files[file].size;
	off = pick_off(fsx, size, fsx->maxlen);
	len = pick_len(fsx, fsx->maxlen - off);
	/* Sometimes through a new open of any of its names. */
	other = fsx_below(fsx, 8) == 0 && fsx->files[file].nlink;
	fsx_note(fsx, "read %s at %zu len %zu%s", model_label(fsx, file), off,
		 len, other ? " (new open)" : "");
	if (other) {
		model_file_path(fsx, file, path);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			fsx_fail_errno(fsx, "open");
	} else {
		fd = model_fd(fsx, file);
	}
	n = io_pread(fsx, fd, fsx->buf, len, off);
	if (other)
		close(fd);
	want = off < size ? min_sz(len, size - off) : 0;
	if (n != want)
		fsx_fail(fsx, "read %zu bytes, expected %zu (size %zu)", n,
			 want, size);
	check_bytes(fsx, file, off, fsx->buf, n, "read");
	return 0;
}

int op_truncate(struct fsx *fsx)
{
	static const char *const hows[] = { "ftruncate", "ftruncate",
					    "truncate", "open O_TRUNC" };
	int file = model_pick_file(fsx), how, fd;
	size_t size, to;
	char path[FSX_PATH_LEN];

	if (file < 0)
		return 1;
	size = fsx->files[file].size;
	switch (fsx_below(fsx, 4)) {
	case 0:
		to = fsx_below(fsx, size + 1);
		break;
	case 1:
		to = size + fsx_below(fsx, fsx->maxlen - size + 1);
		break;
	case 2:
		to = fsx_below(fsx, fsx->maxlen / fsx->chunk + 1) * fsx->chunk;
		break;
	default:
		to = fsx_below(fsx, fsx->maxlen + 1);
		break;
	}
	if (to > fsx->maxlen)
		to = fsx->maxlen;
	how = (int)fsx_below(fsx, 4);
	if (how >= 2 && !fsx->files[file].nlink)
		how = 0;	/* an orphan has no path */
	if (how == 3)
		to = 0;
	fsx_note(fsx, "truncate %s from %zu to %zu by %s",
		 model_label(fsx, file), size, to, hows[how]);
	model_file_path(fsx, file, path);
	if (how <= 1) {
		if (ftruncate(model_fd(fsx, file), (off_t)to))
			fsx_fail_errno(fsx, "ftruncate");
	} else if (how == 2) {
		if (truncate(path, (off_t)to))
			fsx_fail_errno(fsx, "truncate");
	} else {
		fd = open(path, O_WRONLY | O_TRUNC);
		if (fd < 0)
			fsx_fail_errno(fsx, "open O_TRUNC");
		if (close(fd))
			fsx_fail_errno(fsx, "close");
	}
	model_resize(fsx, file, to);
	check_size(fsx, file);
	return 0;
}

/* Map [off, off + len) of file; *base gets the page-aligned start. */
static uint8_t *map(struct fsx *fsx, int file, size_t off, size_t len,
		    int prot, int flags, size_t *mlen)
{
	size_t pg = off & ~(fsx->page - 1);
	void *p;

	*mlen = off + len - pg;
	p = mmap(NULL, *mlen, prot, flags, model_fd(fsx, file), (off_t)pg);
	if (p == MAP_FAILED)
		fsx_fail_errno(fsx, "mmap");
	return (uint8_t *)p + (off - pg);
}

static void unmap(struct fsx *fsx, uint8_t *p, size_t off, size_t mlen)
{
	if (munmap(p - (off & (fsx->page - 1)), mlen))
		fsx_fail_errno(fsx, "munmap");
}

/*
 * A mapped read, private or shared; a shared mapping also sees a write
 * or a copy_file_range into its range done through an fd while it is
 * mapped (the page cache is one).
 */
int op_mapread(struct fsx *fsx)
{
	static const char *const changes[] = { "", ", then pwrite under it",
					       ", then copy_file_range from " };
	int file = model_pick_file(fsx), shared, change, src = -1;
	size_t size, off, len, mlen, tail, so = 0, n = 0;
	uint8_t *p;

	if (file < 0 || !fsx->files[file].size)
		return 1;
	size = fsx->files[file].size;
	off = fsx_below(fsx, size);
	len = pick_len(fsx, size - off);
	shared = (int)fsx_below(fsx, 2);
	change = shared ? (int)fsx_below(fsx, 3) : 0;
	if (change == 2) {
		src = model_pick_file(fsx);
		so = pick_off(fsx, fsx->files[src].size, fsx->maxlen);
		if (src == file)
			change = 0;	/* ranges may overlap: EINVAL */
		else if (so < fsx->files[src].size)
			n = min_sz(len, fsx->files[src].size - so);
	}
	fsx_note(fsx, "mapread %s at %zu len %zu %s%s%s",
		 model_label(fsx, file), off, len, shared ? "MAP_SHARED" : "MAP_PRIVATE",
		 changes[change], change == 2 ? model_label(fsx, src) : "");
	p = map(fsx, file, off, len, PROT_READ,
		shared ? MAP_SHARED : MAP_PRIVATE, &mlen);
	check_bytes(fsx, file, off, p, len, "mapped read");
	/* The last page past the end of the file reads as zeros. */
	if (off + len == size && size % fsx->page) {
		tail = fsx->page - size % fsx->page;
		for (size_t i = 0; i < tail; i++)
			if (p[len + i])
				fsx_fail(fsx, "mapped byte %zu past the end "
					 "(size %zu) is 0x%02x, expected 0",
					 size + i, size, p[len + i]);
	}
	if (change == 1) {
		fsx_fill(fsx, fsx->buf, len);
		io_pwrite(fsx, model_fd(fsx, file), fsx->buf, len, off);
		model_write(fsx, file, off, fsx->buf, len);
	} else if (change == 2) {
		size_t got = fsx_copy(fsx, src, so, file, off, n, len);

		if (got != n)
			fsx_fail(fsx, "copied %zu bytes, expected %zu", got, n);
		if (n)
			model_write(fsx, file, off, fsx->files[src].data + so,
				    n);
	}
	if (change)
		check_bytes(fsx, file, off, p, len,
			    "shared mapping after a change under it");
	unmap(fsx, p, off, mlen);
	return 0;
}

int op_mapwrite(struct fsx *fsx)
{
	static const char *const syncs[] = { "msync MS_SYNC", "msync MS_ASYNC",
					     "no msync" };
	int file = model_pick_file(fsx), sync;
	struct mfile *f;
	size_t off, len, mlen;
	uint8_t *p;

	if (file < 0)
		return 1;
	f = &fsx->files[file];
	off = pick_off(fsx, f->size, fsx->maxlen);
	len = pick_len(fsx, fsx->maxlen - off);
	sync = (int)fsx_below(fsx, 3);
	fsx_fill(fsx, fsx->buf, len);
	fsx_note(fsx, "mapwrite %s at %zu len %zu MAP_SHARED, %s%s",
		 model_label(fsx, file), off, len, syncs[sync],
		 off + len > f->size ? ", grown by ftruncate first" : "");
	/* A mapping cannot grow a file: grow it first, as fsx does. */
	if (off + len > f->size) {
		if (ftruncate(model_fd(fsx, file), (off_t)(off + len)))
			fsx_fail_errno(fsx, "ftruncate");
		model_resize(fsx, file, off + len);
	}
	p = map(fsx, file, off, len, PROT_READ | PROT_WRITE, MAP_SHARED,
		&mlen);
	memcpy(p, fsx->buf, len);
	model_write(fsx, file, off, fsx->buf, len);
	if (sync < 2 && msync(p - (off & (fsx->page - 1)), mlen,
			      sync ? MS_ASYNC : MS_SYNC))
		fsx_fail_errno(fsx, "msync");
	/*
	 * MS_SYNC is an fsync of the mapped range: the whole file is
	 * durable only when no other mapped write is still in the page
	 * cache (the daemon syncs the whole image, but the kernel writes
	 * back only this range first).
	 */
	if (sync == 0 && !f->mapdirty)
		model_synced(fsx, file);
	else if (sync != 0)
		f->mapdirty = true;
	unmap(fsx, p, off, mlen);
	check_size(fsx, file);
	return 0;
}

/* A private mapping's writes are its own: the file must not change. */
int op_mappriv(struct fsx *fsx)
{
	int file = model_pick_file(fsx);
	size_t size, off, len, mlen;
	uint8_t *p;

	if (file < 0 || !fsx->files[file].size)
		return 1;
	size = fsx->files[file].size;
	off = fsx_below(fsx, size);
	len = pick_len(fsx, size - off);
	fsx_fill(fsx, fsx->buf, len);
	fsx_note(fsx, "mapwrite %s at %zu len %zu MAP_PRIVATE",
		 model_label(fsx, file), off, len);
	p = map(fsx, file, off, len, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		&mlen);
	check_bytes(fsx, file, off, p, len, "private mapping before write");
	memcpy(p, fsx->buf, len);
	if (memcmp(p, fsx->buf, len))
		fsx_fail(fsx, "a private mapping lost its own write");
	unmap(fsx, p, off, mlen);
	if (io_pread(fsx, model_fd(fsx, file), fsx->buf2, len, off) != len)
		fsx_fail(fsx, "short read after a private mapping's write");
	check_bytes(fsx, file, off, fsx->buf2, len,
		    "read after a private mapping's write");
	return 0;
}

int op_copy(struct fsx *fsx)
{
	int src = model_pick_file(fsx), dst = model_pick_file(fsx);
	size_t ssize, so, doff, len, n, got;
	char sl[FSX_PATH_LEN + 32];
	bool aligned;

	if (src < 0)
		return 1;
	ssize = fsx->files[src].size;
	aligned = fsx_below(fsx, 3) == 0;
	so = pick_off(fsx, ssize, fsx->maxlen);
	doff = pick_off(fsx, fsx->files[dst].size, fsx->maxlen);
	len = pick_len(fsx, fsx->maxlen - doff);
	if (aligned) {
		/* whole chunks: shared by key, not copied */
		so -= so % fsx->chunk;
		doff -= doff % fsx->chunk;
		len = (len + fsx->chunk - 1) / fsx->chunk * fsx->chunk;
		len = min_sz(len, fsx->maxlen - doff);
	}
	n = so < ssize ? min_sz(len, ssize - so) : 0;
	/* The kernel refuses overlapping ranges of one file (EINVAL). */
	if (src == dst && n && doff < so + n && so < doff + n)
		return 1;
	snprintf(sl, sizeof(sl), "%s", model_label(fsx, src));
	fsx_note(fsx, "copy_file_range %s at %zu len %zu to %s at %zu%s", sl,
		 so, len, src == dst ? "itself" : model_label(fsx, dst), doff,
		 aligned ? " (chunk-aligned)" : "");
	/*
	 * Ask for what lies before the source's end (the kernel cuts len
	 * there), and loop on short copies only up to it: a copy past a
	 * file's own end grows it, so looping on len would go on copying
	 * what it just wrote. Past the end, the copy must be empty.
	 */
	got = fsx_copy(fsx, src, so, dst, doff, n, len);
	if (got != n)
		fsx_fail(fsx, "copied %zu bytes, expected %zu (source size "
			 "%zu)", got, n, ssize);
	if (n)
		model_write(fsx, dst, doff, fsx->files[src].data + so, n);
	check_size(fsx, dst);
	return 0;
}

int op_fsync(struct fsx *fsx)
{
	int file = model_pick_file(fsx), how;

	if (file < 0)
		return 1;
	how = (int)fsx_below(fsx, 4);
	fsx_note(fsx, "%s %s", how ? "fsync" : "fdatasync",
		 model_label(fsx, file));
	if ((how ? fsync : fdatasync)(model_fd(fsx, file)))
		fsx_fail_errno(fsx, how ? "fsync" : "fdatasync");
	fsx->files[file].mapdirty = false;
	model_synced(fsx, file);
	return 0;
}

int op_close(struct fsx *fsx)
{
	int file = model_pick_file(fsx);

	if (file < 0 || fsx->files[file].fd < 0)
		return 1;
	fsx_note(fsx, "close %s", model_label(fsx, file));
	model_close(fsx, file);
	return 0;
}
