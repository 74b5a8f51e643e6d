/* SPDX-License-Identifier: MIT */
#include "vmm/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/opts.h"

struct mem {
	uint8_t *host;
	uint64_t size;
	struct mem_region regions[MEM_MAX_REGIONS];
	unsigned int n_regions;
	char *path;		/* the backing file, NULL when anonymous */
	int fd;			/* open on it, or -1 */
	bool created;		/* mem_create made the file */
	bool shared;		/* the guest's writes reach the file */
	uint64_t *dev_dirty;	/* pages devices wrote, by backing offset */
};

unsigned int mem_layout(uint64_t size, struct mem_region r[MEM_MAX_REGIONS])
{
	if (size == 0)
		return 0;
	if (size <= MEM_HOLE_START) {
		r[0] = (struct mem_region){ 0, size, 0 };
		return 1;
	}
	r[0] = (struct mem_region){ 0, MEM_HOLE_START, 0 };
	r[1] = (struct mem_region){ MEM_HIGH_START, size - MEM_HOLE_START,
				    MEM_HOLE_START };
	return 2;
}

/* The region holding [gpa, gpa + len), or NULL. */
static const struct mem_region *find_region(const struct mem_region *r,
					    unsigned int n, uint64_t gpa,
					    uint64_t len)
{
	if (len == 0)
		return NULL;
	for (unsigned int i = 0; i < n; i++)
		if (gpa >= r[i].gpa && gpa - r[i].gpa < r[i].size &&
		    len <= r[i].size - (gpa - r[i].gpa))
			return &r[i];
	return NULL;
}

bool mem_layout_contains(const struct mem_region *r, unsigned int n,
			 uint64_t gpa, uint64_t len)
{
	return find_region(r, n, gpa, len) != NULL;
}

/*
 * Open the backing file: with create, creating and sizing it when it is
 * not there; read-only for a private mapping (MEM_IMAGE_PRIVATE).
 */
static int open_backing(struct mem *m, const char *path, bool create,
			struct snap_err *err)
{
	char want[OPTS_SIZE_STR], have[OPTS_SIZE_STR];
	struct stat st;
	int fd, ret;

	if (create) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			m->created = true;
			if (ftruncate(fd, (off_t)m->size) < 0)
				goto fail_errno;
			return fd;
		}
		if (errno != EEXIST)
			return snap_err_set(err, -errno, "%s", strerror(errno));
	}
	fd = open(path, (m->shared ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return snap_err_set(err, -errno, "%s", strerror(errno));
	if (fstat(fd, &st) < 0)
		goto fail_errno;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return snap_err_set(err, -EINVAL, "not a regular file");
	}
	if ((uint64_t)st.st_size != m->size) {
		close(fd);
		return snap_err_set(err, -EINVAL, "size %s, %s expected",
				    opts_format_size((uint64_t)st.st_size,
							   have, sizeof(have)),
				    opts_format_size(m->size, want,
						     sizeof(want)));
	}
	return fd;

fail_errno:
	ret = snap_err_set(err, -errno, "%s", strerror(errno));
	close(fd);
	return ret;
}

/* Map size bytes, of path when it is not NULL, as mode says. */
static int mem_map(struct mem **out, uint64_t size, const char *path,
		   enum mem_mode mode, struct snap_err *err)
{
	int prot = PROT_READ | PROT_WRITE;
	struct mem *m;
	void *host;
	int ret;

	if (size == 0 || size % MEM_ALIGN || size > MEM_MAX_SIZE)
		return snap_err_set(err, -EINVAL, "RAM size %llu not usable",
				    (unsigned long long)size);
	m = calloc(1, sizeof(*m));
	if (!m)
		return snap_err_set(err, -ENOMEM, "out of memory");
	m->size = size;
	m->n_regions = mem_layout(size, m->regions);
	m->fd = -1;
	m->dev_dirty = calloc((size / MEM_ALIGN + 63) / 64, sizeof(uint64_t));
	if (!m->dev_dirty) {
		free(m);
		return snap_err_set(err, -ENOMEM, "out of memory");
	}
	m->shared = mode != MEM_IMAGE_PRIVATE;
	if (!path) {
		host = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS |
			    MAP_NORESERVE, -1, 0);
		goto mapped;
	}
	m->path = strdup(path);
	if (!m->path) {
		ret = snap_err_set(err, -ENOMEM, "out of memory");
		goto err_free;
	}
	m->fd = open_backing(m, path, mode == MEM_FILE, err);
	if (m->fd < 0) {
		ret = m->fd;
		goto err_remove;
	}
	host = mmap(NULL, size, prot, (m->shared ? MAP_SHARED : MAP_PRIVATE) |
		    MAP_NORESERVE, m->fd, 0);
mapped:
	if (host == MAP_FAILED) {
		ret = snap_err_set(err, -errno, "mmap of %llu bytes: %s",
				   (unsigned long long)size, strerror(errno));
		goto err_remove;
	}
	m->host = host;
	*out = m;
	return 0;

err_remove:
	if (m->fd >= 0)
		close(m->fd);
	mem_remove_created(m);
err_free:
	free(m->path);
	free(m->dev_dirty);
	free(m);
	return ret;
}

int mem_create(struct mem **out, uint64_t size, const char *path,
	       struct snap_err *err)
{
	return mem_map(out, size, path, path ? MEM_FILE : MEM_ANON, err);
}

int mem_open_image(struct mem **out, uint64_t size, const char *path,
		   enum mem_mode mode, struct snap_err *err)
{
	return mem_map(out, size, path, mode, err);
}

void mem_destroy(struct mem *m)
{
	if (!m)
		return;
	if (m->host)
		munmap(m->host, m->size);
	if (m->fd >= 0)
		close(m->fd);
	free(m->path);
	free(m->dev_dirty);
	free(m);
}

void mem_remove_created(struct mem *m)
{
	if (m && m->created && m->path) {
		unlink(m->path);
		m->created = false;
	}
}

uint64_t mem_size(const struct mem *m)
{
	return m->size;
}

int mem_fd(const struct mem *m)
{
	return m->fd;
}

bool mem_file_shared(const struct mem *m)
{
	return m->fd >= 0 && m->shared;
}

uint8_t *mem_host(const struct mem *m)
{
	return m->host;
}

unsigned int mem_regions(const struct mem *m, const struct mem_region **r)
{
	*r = m->regions;
	return m->n_regions;
}

void *mem_ptr(const struct mem *m, uint64_t gpa, uint64_t len)
{
	const struct mem_region *r = find_region(m->regions, m->n_regions,
						 gpa, len);

	return r ? m->host + r->offset + (gpa - r->gpa) : NULL;
}

void *mem_ptr_write(struct mem *m, uint64_t gpa, uint64_t len)
{
	const struct mem_region *r = find_region(m->regions, m->n_regions,
						 gpa, len);
	uint64_t first, last;

	if (!r)
		return NULL;
	first = (r->offset + (gpa - r->gpa)) / MEM_ALIGN;
	last = (r->offset + (gpa - r->gpa) + len - 1) / MEM_ALIGN;
	for (uint64_t p = first; p <= last; p++)
		__atomic_fetch_or(&m->dev_dirty[p / 64], 1ull << (p % 64),
				  __ATOMIC_RELAXED);
	return m->host + r->offset + (gpa - r->gpa);
}

void mem_dirty_take(struct mem *m, uint64_t *bitmap)
{
	uint64_t words = (m->size / MEM_ALIGN + 63) / 64;

	for (uint64_t w = 0; w < words; w++)
		if (__atomic_load_n(&m->dev_dirty[w], __ATOMIC_RELAXED))
			bitmap[w] |= __atomic_exchange_n(&m->dev_dirty[w], 0,
							 __ATOMIC_RELAXED);
}
