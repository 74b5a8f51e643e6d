/* SPDX-License-Identifier: MIT */
/*
 * Kernel files, the table of kernel loaders, and what every loader shares:
 * the initrd's place and the low memory with the MP table.
 */
#include "vmm/boot/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/opts.h"
#include "vmm/boot/e820.h"

/* Tried in order; the first whose probe says yes loads the kernel. */
static const struct boot_loader *const boot_loaders[] = {
	&boot_pvh_loader,
	&boot_bzimage_loader,
};

#define N_LOADERS (sizeof(boot_loaders) / sizeof(boot_loaders[0]))

#define PAGE_MASK	0xfffull

static int file_map(struct boot_file *f, const char *opt, const char *path,
		    struct snap_err *err)
{
	struct stat st;
	void *p;
	int fd, ret;

	f->path = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return snap_err_set(err, -errno, "%s %s: %s", opt, path,
				    strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = snap_err_set(err, -errno, "%s %s: %s", opt, path,
				   strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = snap_err_set(err, -EINVAL, "%s %s: not a regular file",
				   opt, path);
		goto out;
	}
	if (st.st_size == 0) {
		ret = snap_err_set(err, -ENOEXEC, "%s %s: empty file", opt,
				   path);
		goto out;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		ret = snap_err_set(err, -errno, "%s %s: %s", opt, path,
				   strerror(errno));
		goto out;
	}
	f->data = p;
	f->size = (size_t)st.st_size;
	ret = 0;
out:
	close(fd);
	return ret;
}

static void file_unmap(struct boot_file *f)
{
	if (f->data)
		munmap((void *)f->data, f->size);
	f->data = NULL;
}

int boot_open(struct boot_image **out, const struct boot_config *cfg,
	      uint64_t mem_size, struct snap_err *err)
{
	struct boot_image *img;
	size_t i;
	int ret;

	img = calloc(1, sizeof(*img));
	if (!img)
		return snap_err_set(err, -ENOMEM, "out of memory");
	img->cmdline = cfg->cmdline ? cfg->cmdline : "";
	img->mem_size = mem_size;
	img->n_regions = mem_layout(mem_size, img->regions);
	if (strlen(img->cmdline) >= BOOT_CMDLINE_MAX) {
		ret = snap_err_set(err, -E2BIG, "--cmdline: %zu bytes, at most "
				   "%u expected", strlen(img->cmdline),
				   BOOT_CMDLINE_MAX - 1);
		goto err_free;
	}
	ret = file_map(&img->kernel, "--kernel", cfg->kernel, err);
	if (ret)
		goto err_free;
	if (cfg->initrd) {
		ret = file_map(&img->initrd, "--initrd", cfg->initrd, err);
		if (ret)
			goto err_kernel;
	}
	for (i = 0; i < N_LOADERS; i++)
		if (boot_loaders[i]->probe(&img->kernel))
			break;
	if (i == N_LOADERS) {
		ret = snap_err_set(err, -ENOEXEC, "--kernel %s: not a kernel "
				   "snapvm can boot (an ELF with a PVH entry "
				   "note or a bzImage expected)", cfg->kernel);
		goto err_initrd;
	}
	img->loader = boot_loaders[i];
	ret = img->loader->prepare(img, err);
	if (ret)
		goto err_initrd;
	*out = img;
	return 0;

err_initrd:
	file_unmap(&img->initrd);
err_kernel:
	file_unmap(&img->kernel);
err_free:
	free(img);
	return ret;
}

const char *boot_format(const struct boot_image *img)
{
	return img->loader->name;
}

int boot_load(struct boot_image *img, struct mem *mem,
	      const struct mptable_cpus *cpus, struct boot_entry *entry,
	      struct snap_err *err)
{
	if (mem_size(mem) != img->mem_size)
		return snap_err_set(err, -EINVAL, "RAM of %llu bytes, %llu "
				    "checked", (unsigned long long)mem_size(mem),
				    (unsigned long long)img->mem_size);
	memset(entry, 0, sizeof(*entry));
	return img->loader->load(img, mem, cpus, entry, err);
}

void boot_close(struct boot_image *img)
{
	if (!img)
		return;
	file_unmap(&img->initrd);
	file_unmap(&img->kernel);
	free(img);
}

int boot_place_initrd(struct boot_image *img, uint64_t kernel_end,
		      uint64_t limit, struct snap_err *err)
{
	char have[OPTS_SIZE_STR], room[OPTS_SIZE_STR];
	uint64_t top = img->regions[0].size;	/* low RAM ends here */
	uint64_t bottom = (kernel_end + PAGE_MASK) & ~PAGE_MASK;
	uint64_t size = img->initrd.size, avail;
	bool limited = limit < top;

	if (!img->initrd.data)
		return 0;
	if (limited)
		top = limit;
	if (bottom < E820_BIOS_END)
		bottom = E820_BIOS_END;
	avail = bottom > top ? 0 : (top - bottom) & ~PAGE_MASK;
	if (size > avail) {
		opts_format_size(size, have, sizeof(have));
		opts_format_size(avail, room, sizeof(room));
		if (limited)
			return snap_err_set(err, -E2BIG, "--initrd %s: %s do "
					    "not fit in RAM between the kernel "
					    "and its initrd limit 0x%llx (%s "
					    "free)", img->initrd.path, have,
					    (unsigned long long)limit, room);
		return snap_err_set(err, -E2BIG, "--initrd %s: %s do not fit "
				    "in RAM above the kernel (%s free)",
				    img->initrd.path, have, room);
	}
	img->initrd_addr = (top - size) & ~PAGE_MASK;
	return 0;
}

int boot_write_low(struct mem *mem, const struct mptable_cpus *cpus,
		   struct snap_err *err)
{
	uint64_t bios = E820_BIOS_END - E820_LOW_END;
	uint8_t *page0 = mem_ptr(mem, 0, BOOT_DATA_END);
	uint8_t *area = mem_ptr(mem, E820_LOW_END, bios);
	long n;

	if (!page0 || !area)
		return snap_err_set(err, -EINVAL, "RAM below 1 MiB missing");
	memset(page0, 0, BOOT_DATA_END);
	memset(area, 0, bios);
	n = mptable_build(area + (MPTABLE_ADDR - E820_LOW_END),
			  (size_t)(E820_BIOS_END - MPTABLE_ADDR), MPTABLE_ADDR,
			  cpus);
	if (n < 0)
		return snap_err_set(err, (int)n, "MP table for %u vCPUs: %s",
				    cpus->count, strerror((int)-n));
	return 0;
}
