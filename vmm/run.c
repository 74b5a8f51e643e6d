/* SPDX-License-Identifier: MIT */
/*
 * snapvm run: boot a kernel in a new VM and run it until it powers off,
 * resets, or is told to quit.
 *
 * Everything that can be checked without KVM is checked first (options,
 * the kernel and initrd, the memory file, the control socket), so those
 * errors read the same on any machine.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vmm/boot/boot.h"
#include "vmm/cmd.h"
#include "vmm/control.h"
#include "vmm/dev/dev.h"
#include "vmm/kvm.h"
#include "vmm/mem.h"
#include "vmm/opts.h"
#include "vmm/snapshot.h"
#include "snapshot/format/state_virtio.h"
#include "vmm/vm.h"

#define RUN_MEM_DEFAULT	(256 * MIB)
#define VSOCK_CID_DEFAULT	3u	/* the first a guest may have */

struct run_config {
	struct boot_config boot;
	uint64_t mem_size;
	const char *mem_file;
	unsigned int cpus;
	const char *control;
	struct dev_config devs;
	bool debug;
};

enum {
	OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_MEM_FILE,
	OPT_CPUS, OPT_CONTROL, OPT_DISK, OPT_RNG, OPT_VSOCK, OPT_CID,
	OPT_DEBUG, OPT_HELP,
};

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "mem-file", required_argument, NULL, OPT_MEM_FILE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "vsock", required_argument, NULL, OPT_VSOCK },
	{ "cid", required_argument, NULL, OPT_CID },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void run_usage(FILE *f)
{
	fprintf(f, "usage: snapvm run --kernel PATH [--initrd PATH] "
		"[--cmdline STRING]\n"
		"                  [--mem SIZE] [--mem-file PATH] [--cpus N]\n"
		"                  [--control SOCKET] [--disk PATH[,ro]]... "
		"[--rng]\n"
		"                  [--vsock PATH [--cid N]] [--debug]\n");
}

/* Every option with its default; the same as snapvm(1), which a test
 * checks. */
static void run_help(void)
{
	run_usage(stdout);
	fputs("\n"
"Boot a kernel in a new KVM virtual machine whose console (ttyS0) is this\n"
"terminal. snapvm ends when the guest resets or powers off, or on quit.\n"
"\n"
"  --kernel PATH     the kernel: a bzImage, or an ELF with a PVH entry\n"
"                    (required)\n"
"  --initrd PATH     an initramfs for the kernel (default: none)\n"
"  --cmdline STRING  the kernel's command line, e.g. \"console=ttyS0\"\n"
"                    (default: empty)\n"
"  --mem SIZE        guest RAM, a multiple of 4K, from 2M to 1T, with an\n"
"                    optional K, M or G suffix (default: 256M)\n"
"  --mem-file PATH   keep guest RAM in this file, mapped shared: made when\n"
"                    missing, else it must be SIZE bytes; in a snapfs mount\n"
"                    it lives in the store (default: anonymous memory)\n"
"  --cpus N          vCPUs, 1 to 254 (default: 1)\n"
"  --control SOCKET  listen for pause, resume, snapshot and quit on this\n"
"                    unix socket, mode 0600 (default: none; see snapvm ctl)\n"
"  --disk PATH[,ro]  a virtio-blk disk over a raw image file, read-only\n"
"                    with ,ro; repeat for more, up to 8 (default: none)\n"
"  --rng             a virtio-rng device fed from the host's getrandom\n"
"                    (default: none)\n"
"  --vsock PATH      a virtio-vsock device; host programs reach the guest\n"
"                    through the unix socket PATH (default: none)\n"
"  --cid N           the guest's vsock address, 3 to 4294967294, only with\n"
"                    --vsock (default: 3)\n"
OPTS_HELP_TAIL, stdout);
}

static int bad_usage(const char *what, const char *problem)
{
	fprintf(stderr, "snapvm run: %s: %s\n", what, problem);
	run_usage(stderr);
	return 2;
}

static int parse_mem(const char *s, uint64_t *out)
{
	char min[OPTS_SIZE_STR], max[OPTS_SIZE_STR];
	int ret = opts_parse_size(s, out);

	opts_format_size(MEM_MIN_SIZE, min, sizeof(min));
	opts_format_size(MEM_MAX_SIZE, max, sizeof(max));
	if (ret == -EINVAL) {
		fprintf(stderr, "snapvm: --mem %s: not a size (digits with an "
			"optional K, M or G suffix)\n", s);
		return 1;
	}
	if (ret || *out > MEM_MAX_SIZE) {
		fprintf(stderr, "snapvm: --mem %s: at most %s expected\n", s,
			max);
		return 1;
	}
	if (*out < MEM_MIN_SIZE) {
		fprintf(stderr, "snapvm: --mem %s: at least %s expected\n", s,
			min);
		return 1;
	}
	if (*out % MEM_ALIGN) {
		fprintf(stderr, "snapvm: --mem %s: not a multiple of 4 KiB\n",
			s);
		return 1;
	}
	return 0;
}

static int parse_cpus(const char *s, unsigned int *out)
{
	int ret = opts_parse_count(s, out);

	if (ret == -EINVAL) {
		fprintf(stderr, "snapvm: --cpus %s: not a count\n", s);
		return 1;
	}
	if (ret || *out > MPTABLE_MAX_CPUS) {
		fprintf(stderr, "snapvm: --cpus %s: at most %u expected\n", s,
			MPTABLE_MAX_CPUS);
		return 1;
	}
	if (*out == 0) {
		fprintf(stderr, "snapvm: --cpus %s: at least 1 expected\n", s);
		return 1;
	}
	return 0;
}

/* --disk PATH or PATH,ro: a virtio-blk device over a raw image file. */
static int parse_disk(char *s, struct dev_config *devs)
{
	size_t n = strlen(s);
	bool ro = n > 3 && !strcmp(s + n - 3, ",ro");

	if (devs->n_disks == SNAP_MAX_DISKS) {
		fprintf(stderr, "snapvm: --disk %s: at most %u disks\n", s,
			SNAP_MAX_DISKS);
		return 1;
	}
	if (ro)
		s[n - 3] = '\0';
	if (!*s) {
		fprintf(stderr, "snapvm: --disk: a file name expected\n");
		return 1;
	}
	devs->disks[devs->n_disks++] = (struct dev_disk){ s, ro };
	return 0;
}

/* --cid N: the guest's vsock address; 0-2 are reserved, 2^32 - 1 is "any". */
static int parse_cid(const char *s, uint32_t *out)
{
	unsigned int cid;
	int ret = opts_parse_count(s, &cid);

	if (ret == -EINVAL) {
		fprintf(stderr, "snapvm: --cid %s: not a number\n", s);
		return 1;
	}
	if (ret || cid < SNAP_VSOCK_CID_MIN || cid > SNAP_VSOCK_CID_MAX) {
		fprintf(stderr, "snapvm: --cid %s: 3 to %u expected\n", s,
			SNAP_VSOCK_CID_MAX);
		return 1;
	}
	*out = cid;
	return 0;
}

/* 0, or the exit status: 1 for a bad value, 2 for bad usage. */
static int parse_run(int argc, char **argv, struct run_config *cfg)
{
	int opt, ret;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+:", run_options, NULL)) != -1) {
		switch (opt) {
		case OPT_KERNEL:
			cfg->boot.kernel = optarg;
			break;
		case OPT_INITRD:
			cfg->boot.initrd = optarg;
			break;
		case OPT_CMDLINE:
			cfg->boot.cmdline = optarg;
			break;
		case OPT_MEM:
			ret = parse_mem(optarg, &cfg->mem_size);
			if (ret)
				return ret;
			break;
		case OPT_MEM_FILE:
			cfg->mem_file = optarg;
			break;
		case OPT_CPUS:
			ret = parse_cpus(optarg, &cfg->cpus);
			if (ret)
				return ret;
			break;
		case OPT_CONTROL:
			cfg->control = optarg;
			break;
		case OPT_DISK:
			ret = parse_disk(optarg, &cfg->devs);
			if (ret)
				return ret;
			break;
		case OPT_RNG:
			cfg->devs.rng = true;
			break;
		case OPT_VSOCK:
			cfg->devs.vsock = optarg;
			break;
		case OPT_CID:
			ret = parse_cid(optarg, &cfg->devs.vsock_cid);
			if (ret)
				return ret;
			break;
		case OPT_DEBUG:
			cfg->debug = true;
			break;
		case OPT_HELP:
			run_help();
			return -1;
		case ':':
			return bad_usage(argv[optind - 1], "needs a value");
		default:
			return bad_usage(argv[optind - 1], "unknown option");
		}
	}
	if (optind < argc)
		return bad_usage(argv[optind], "unexpected argument");
	if (!cfg->boot.kernel)
		return bad_usage("--kernel", "required");
	if (cfg->devs.vsock_cid && !cfg->devs.vsock)
		return bad_usage("--cid", "only with --vsock");
	if (cfg->devs.vsock && !cfg->devs.vsock_cid)
		cfg->devs.vsock_cid = VSOCK_CID_DEFAULT;
	return 0;
}

/* Build the VM, load the kernel, start the vCPUs and the control socket. */
static int run_start(const struct run_config *cfg, struct boot_image *img,
		     const struct kvm_host *host, struct mem *mem,
		     struct control *ctl, struct vm **vmp,
		     struct saver **saver, struct snap_err *err)
{
	unsigned int max = kvm_host_max_vcpus(host);
	struct boot_entry entry;
	struct mptable_cpus cpus;
	int ret;

	if (max > MPTABLE_MAX_CPUS)
		max = MPTABLE_MAX_CPUS;
	if (cfg->cpus > max)
		return snap_err_set(err, -EINVAL, "--cpus %u: at most %u "
				    "expected (KVM_CAP_MAX_VCPUS)", cfg->cpus,
				    max);
	ret = vm_create(vmp, host, mem, cfg->cpus, &cfg->devs, cfg->debug,
			err);
	if (ret)
		return ret;
	vm_boot_cpus(*vmp, &cpus);
	ret = boot_load(img, mem, &cpus, &entry, err);
	if (ret)
		return ret;
	ret = boot_set_regs(vm_vcpu_fd(*vmp, 0), &entry);
	if (ret)
		return snap_err_set(err, ret, "vcpu 0: boot registers: %s",
				    strerror(-ret));
	if (cfg->debug)
		fprintf(stderr, "snapvm: %s: %s entry 0x%llx, %u vCPUs, %llu "
			"MiB\n", cfg->boot.kernel, boot_format(img),
			(unsigned long long)entry.rip, cfg->cpus,
			(unsigned long long)(cfg->mem_size >> 20));
	if (ctl) {
		ret = saver_create(saver, *vmp, cfg->boot.cmdline, NULL, err);
		if (!ret)
			ret = control_start(ctl, *vmp, *saver, err);
		if (ret)
			return ret;
	}
	ret = vm_start(*vmp);
	if (ret)
		return snap_err_set(err, ret, "vCPU threads: %s", strerror(-ret));
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct run_config cfg = { .mem_size = RUN_MEM_DEFAULT, .cpus = 1 };
	struct kvm_host host = { .fd = -1, .api_version = -1 };
	struct boot_image *img = NULL;
	struct control *ctl = NULL;
	struct saver *saver = NULL;
	struct mem *mem = NULL;
	struct vm *vm = NULL;
	struct snap_err err;
	int ret, status = 1;

	ret = parse_run(argc, argv, &cfg);
	if (ret)
		return ret < 0 ? 0 : ret;
	signal(SIGPIPE, SIG_IGN);

	ret = boot_open(&img, &cfg.boot, cfg.mem_size, &err);
	if (ret)
		goto out_img;
	ret = mem_create(&mem, cfg.mem_size, cfg.mem_file, &err);
	if (ret) {
		if (cfg.mem_file)
			snap_err_prefix(&err, ret, "--mem-file %s", cfg.mem_file);
		else
			snap_err_prefix(&err, ret, "RAM");
		goto out_img;
	}
	if (cfg.control) {
		ret = control_create(&ctl, cfg.control, &err);
		if (ret) {
			snap_err_prefix(&err, ret, "--control %s", cfg.control);
			goto out_mem;
		}
	}
	ret = kvm_host_open_checked(&host, kvm_host_path(), NULL, &err);
	if (ret)
		goto out_vm;
	ret = run_start(&cfg, img, &host, mem, ctl, &vm, &saver, &err);
	if (ret)
		goto out_vm;
	boot_close(img);
	img = NULL;
	status = vm_wait(vm);

out_vm:
	control_destroy(ctl);		/* before the VM it drives */
	saver_destroy(saver);
	vm_destroy(vm);
	kvm_host_close(&host);
out_mem:
	if (ret)
		mem_remove_created(mem);	/* a file made for nothing */
	mem_destroy(mem);
out_img:
	boot_close(img);
	if (ret) {
		fprintf(stderr, "snapvm: %s\n", err.msg);
		return 1;
	}
	return status;
}
