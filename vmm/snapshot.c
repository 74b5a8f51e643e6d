/* SPDX-License-Identifier: MIT */
#include "vmm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/cmd.h"
#include "vmm/devices.h"
#include "vmm/image.h"
#include "vmm/mem.h"
#include "snapshot/format/snapdir.h"
#include "vmm/vm.h"
#include "vmm/vstate.h"

struct saver {
	struct vm *vm;
	char *cmdline;			/* NULL: none */
	struct vstate_host host;
	bool host_ready;
	bool tracking;			/* KVM's dirty log is on */
	uint64_t *pending;		/* pages written since the base */
	size_t pending_words;
	int base_fd;			/* the base image, or -1 */
	uint8_t base_id[SNAP_ID_LEN];
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int saver_create(struct saver **out, struct vm *vm, const char *cmdline,
		 const struct saver_base *base, struct snap_err *err)
{
	uint64_t pages = mem_size(vm_mem(vm)) / IMAGE_PAGE;
	struct saver *s;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return snap_err_set(err, -ENOMEM, "out of memory");
	s->vm = vm;
	s->base_fd = -1;
	s->pending_words = (pages + 63) / 64;
	s->pending = calloc(s->pending_words, sizeof(*s->pending));
	if (!s->pending || (cmdline && !(s->cmdline = strdup(cmdline)))) {
		ret = snap_err_set(err, -ENOMEM, "out of memory");
		goto err;
	}
	if (base && base->memory_path) {
		s->base_fd = open(base->memory_path, O_RDONLY | O_CLOEXEC);
		if (s->base_fd < 0) {
			ret = snap_err_set(err, -errno, "%s: %s",
					   base->memory_path, strerror(errno));
			goto err;
		}
		memcpy(s->base_id, base->id, SNAP_ID_LEN);
		ret = vm_dirty_log_start(vm, err);
		if (ret)
			goto err;
		s->tracking = true;
	}
	*out = s;
	return 0;

err:
	saver_destroy(s);
	return ret;
}

void saver_destroy(struct saver *s)
{
	if (!s)
		return;
	if (s->host_ready)
		vstate_host_release(&s->host);
	if (s->base_fd >= 0)
		close(s->base_fd);
	free(s->pending);
	free(s->cmdline);
	free(s);
}

/* Every vCPU's state, the VM's, and each device's (vCPUs paused). */
static int collect_state(struct saver *s, struct snap_state **out,
			 struct snap_err *err)
{
	unsigned int n = vm_cpus(s->vm);
	int fds[SNAP_MAX_VCPUS];
	struct snap_state *st;
	int ret;

	if (!s->host_ready) {
		ret = vstate_host_init(&s->host, vm_kvm_fd(s->vm),
				       vm_fd(s->vm), err);
		if (ret)
			return ret;
		s->host_ready = true;
	}
	if (n > SNAP_MAX_VCPUS)
		return snap_err_set(err, -EINVAL, "%u vCPUs, a snapshot holds at "
				    "most %u", n, SNAP_MAX_VCPUS);
	st = snap_state_new(n);
	if (!st)
		return snap_err_set(err, -ENOMEM, "out of memory");
	for (unsigned int i = 0; i < n; i++) {
		fds[i] = vm_vcpu_fd(s->vm, i);
		ret = vstate_vcpu_save(&s->host, fds[i], i, &st->vcpus[i], err);
		if (ret)
			goto err;
	}
	ret = vstate_vm_save(vm_fd(s->vm), fds, st, err);
	if (!ret)
		ret = devices_save(vm_devices(s->vm), st, err);
	if (ret)
		goto err;
	*out = st;
	return 0;

err:
	snap_state_free(st);
	return ret;
}

/* A diff must name the base: the parent's manifest id is the base's. */
static int check_parent(struct saver *s, const char *parent,
			struct snap_err *err)
{
	struct snap_manifest pm;
	bool same;
	int ret;

	if (s->base_fd < 0)
		return snap_err_set(err, -EINVAL, "--parent %s: this VM has no "
				    "snapshot to diff against yet (take a full "
				    "one first)", parent);
	ret = snap_read(parent, 0, &pm, NULL, err);
	if (ret)
		return snap_err_prefix(err, ret, "--parent %s", parent);
	same = !memcmp(pm.id, s->base_id, SNAP_ID_LEN);
	snap_manifest_release(&pm);
	if (!same)
		return snap_err_set(err, -EINVAL, "--parent %s: not this VM's "
				    "last snapshot (nor the one it was "
				    "restored from)", parent);
	return 0;
}

/* Fill memory.bin (fd, sized) as the header of snapshot.h says. */
static int write_memory(struct saver *s, int fd, struct saver_result *r,
			struct snap_err *err)
{
	struct mem *mem = vm_mem(s->vm);
	uint64_t size = mem_size(mem);
	int64_t n;

	if (s->base_fd >= 0) {
		n = image_copy_file(s->base_fd, fd, size);
		if (n < 0)
			return snap_err_set(err, (int)n, "memory.bin: copying "
					    "the base: %s", strerror((int)-n));
		r->copied = (uint64_t)n;
		n = image_write_pages(mem_host(mem), size, s->pending, fd);
	} else if (mem_file_shared(mem)) {
		n = image_copy_file(mem_fd(mem), fd, size);
		if (n >= 0)
			r->copied = (uint64_t)n;
		n = n < 0 ? n : 0;
	} else {
		n = image_write_nonzero(mem_host(mem), size, fd);
	}
	if (n < 0)
		return snap_err_set(err, (int)n, "memory.bin: %s",
				    strerror((int)-n));
	r->written = (uint64_t)n;
	return 0;
}

static int fill_manifest(struct saver *s, struct snap_manifest *m,
			 const char *parent, struct snap_err *err)
{
	const struct mem_region *reg;
	unsigned int n = mem_regions(vm_mem(s->vm), &reg);

	if (snap_manifest_init(m, "snapvm", SNAPVM_VERSION))
		return snap_err_set(err, -ENOMEM, "out of memory");
	m->vcpu_count = vm_cpus(s->vm);
	m->memory_size = mem_size(vm_mem(s->vm));
	m->n_regions = n;
	for (unsigned int i = 0; i < n; i++)
		m->regions[i] = (struct snap_region){ reg[i].gpa, reg[i].size,
						      reg[i].offset };
	if (parent) {
		m->has_parent = true;
		memcpy(m->parent_id, s->base_id, SNAP_ID_LEN);
		if (snap_manifest_set_text(&m->parent_hint, parent))
			return snap_err_set(err, -ENOMEM, "out of memory");
	}
	if (s->cmdline && snap_manifest_set_text(&m->cmdline, s->cmdline))
		return snap_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

/* The new snapshot becomes the base: its image, its id, nothing pending. */
static void rebase(struct saver *s, const char *dir, const uint8_t *id)
{
	char path[PATH_MAX];
	int fd = -1;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
			     SNAP_MEMORY_FILE) < sizeof(path))
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->base_fd >= 0)
		close(s->base_fd);
	s->base_fd = fd;		/* -1: the next save is a full one */
	memcpy(s->base_id, id, SNAP_ID_LEN);
	memset(s->pending, 0, s->pending_words * sizeof(*s->pending));
}

/* A save between its paused part and its commit. */
struct save_job {
	struct snap_writer *w;
	struct snap_state *st;
	struct snap_manifest m;
};

static void save_job_release(struct save_job *j)
{
	snap_writer_free(j->w);
	snap_manifest_release(&j->m);
	snap_state_free(j->st);
}

/*
 * Everything a save must do while the vCPUs are parked: the state, memory
 * and the devices' disks, all of the same instant.
 */
static int save_paused(struct saver *s, const char *dir, const char *parent,
		       struct saver_result *r, struct save_job *j,
		       struct snap_err *err)
{
	int fd, ret;

	if (s->tracking) {
		ret = vm_dirty_log_fetch(s->vm, s->pending, err);
		if (ret)
			return ret;
	}
	if (parent) {
		ret = check_parent(s, parent, err);
		if (ret)
			return ret;
	}
	ret = collect_state(s, &j->st, err);
	if (ret)
		return ret;
	ret = snap_writer_begin(&snap_io_posix, dir, &j->w, err);
	if (!ret)
		ret = snap_writer_memory(j->w, mem_size(vm_mem(s->vm)), &fd,
					 err);
	if (!ret)
		ret = write_memory(s, fd, r, err);
	if (!ret && !s->tracking) {
		/* From now on KVM logs the pages the next save must write. */
		ret = vm_dirty_log_start(s->vm, err);
		s->tracking = !ret;
	}
	if (!ret)
		ret = fill_manifest(s, &j->m, parent, err);
	if (!ret)
		ret = devices_capture(vm_devices(s->vm), j->w, &j->m, err);
	return ret;
}

int saver_save(struct saver *s, const char *dir, const char *parent,
	       struct saver_result *r, struct snap_err *err)
{
	bool was_paused = vm_paused(s->vm);
	uint64_t t0 = now_us();
	struct save_job j;
	int ret;

	memset(r, 0, sizeof(*r));
	if (dir[0] != '/' || (parent && parent[0] != '/'))
		return snap_err_set(err, -EINVAL, "%s: an absolute path "
				    "expected", dir[0] != '/' ? dir : parent);
	memset(&j, 0, sizeof(j));
	ret = vm_pause(s->vm);
	if (ret)
		return snap_err_set(err, ret, "pause: %s", strerror(-ret));
	ret = save_paused(s, dir, parent, r, &j, err);
	devices_resume(vm_devices(s->vm));
	if (!was_paused)		/* a VM paused by its user stays so */
		vm_resume(s->vm);
	r->paused_us = now_us() - t0;
	/*
	 * What was captured no longer changes with the VM: syncing it, the
	 * disks' digests and publishing happen while the VM runs.
	 */
	if (!ret)
		ret = snap_writer_commit(j.w, &j.m, j.st, 0, err);
	if (!ret) {
		memcpy(r->id, j.m.id, SNAP_ID_LEN);
		r->diff = parent != NULL;
		rebase(s, dir, j.m.id);
	}
	save_job_release(&j);
	return ret;
}
