/* SPDX-License-Identifier: MIT */
/*
 * snapvm restore: run a VM from a snapshot directory.
 *
 * Everything comes from the snapshot: RAM size and layout, vCPUs, their
 * state, the devices', the command line. All of it is read and checked
 * (libsnap's snap_read, then vstate_check against this host's KVM) before
 * any vCPU exists. memory.bin is mapped MAP_PRIVATE by default: pages load
 * as the guest touches them and the snapshot is never written. --shared
 * maps it MAP_SHARED: the VM runs in place and its writes go to the file.
 *
 * The guest's clocks (--clock): by default its TSC and kvmclock are put
 * forward by the wall time since the save, so that it reads the time of
 * the restore, as after a long stop of the whole VM; with --clock continue
 * they go on from the snapshot's time. Its RTC reads the wall clock either
 * way (dev/rtc.c).
 *
 * Disks: a read-only disk is served from the snapshot's own file, opened
 * read-only. A writable one is first cloned into --disk-dir (a new file of
 * the same name, never an existing one) with copy_file_range, constant
 * time in a snapfs mount, and the VM writes there: the snapshot is never
 * changed, and each restore has disks of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/cmd.h"
#include "vmm/dev/dev.h"
#include "vmm/devices.h"
#include "vmm/image.h"
#include "vmm/machine.h"
#include "vmm/mem.h"
#include "vmm/opts.h"
#include "snapshot/format/snapdir.h"
#include "vmm/vm.h"
#include "vmm/vstate.h"

struct restore_config {
	const char *dir;
	const char *control;
	const char *disk_dir;
	const char *vsock;
	bool trust_disks;
	bool shared;
	bool debug;
	bool clock_continue;	/* --clock continue */
};

enum {
	OPT_CONTROL = 256, OPT_VSOCK, OPT_DISK_DIR, OPT_TRUST_DISKS, OPT_SHARED,
	OPT_DEBUG, OPT_CLOCK, OPT_HELP,
};

static const struct option restore_options[] = {
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "vsock", required_argument, NULL, OPT_VSOCK },
	{ "disk-dir", required_argument, NULL, OPT_DISK_DIR },
	{ "trust-disks", no_argument, NULL, OPT_TRUST_DISKS },
	{ "shared", no_argument, NULL, OPT_SHARED },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ "clock", required_argument, NULL, OPT_CLOCK },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void restore_usage(FILE *f)
{
	fprintf(f, "usage: snapvm restore DIR [--control SOCKET] "
		"[--vsock PATH]\n                      "
		"[--disk-dir DIR] [--trust-disks]\n"
		"                      [--shared] [--debug] "
		"[--clock now|continue]\n");
}

/* Every option with its default; the same as snapvm(1), which a test
 * checks. */
static void restore_help(void)
{
	restore_usage(stdout);
	fputs("\n"
"Run a VM from the snapshot directory DIR (a snapfs mount's or a plain\n"
"one): RAM, vCPUs, devices and command line all come from it, and it is\n"
"never changed. Its console (ttyS0) is this terminal.\n"
"\n"
"  --control SOCKET  listen for pause, resume, snapshot and quit on this\n"
"                    unix socket, mode 0600 (default: none; see snapvm ctl)\n"
"  --vsock PATH      the host socket of the snapshot's virtio-vsock device\n"
"                    (each restored VM its own); needed when it has one\n"
"  --disk-dir DIR    where the VM's own copies of the snapshot's writable\n"
"                    disks go (new files named as in the snapshot); needed\n"
"                    when it has any\n"
"  --trust-disks     check the disks' sizes but not their digests (which\n"
"                    reads them whole): for a store that checks what it\n"
"                    reads, as snapfs does (default: digests checked)\n"
"  --shared          map memory.bin shared: the VM runs in place and its\n"
"                    writes go to the snapshot's file (default: private,\n"
"                    pages load as the guest touches them)\n"
"  --clock now|continue\n"
"                    the guest's clocks: now (the default) puts its TSC and\n"
"                    kvmclock forward by the wall time since the snapshot,\n"
"                    as after a long stop; continue goes on from the\n"
"                    snapshot's time, the time between unseen (its RTC\n"
"                    reads the wall clock either way)\n"
OPTS_HELP_TAIL, stdout);
}

static int bad_usage(const char *what, const char *problem)
{
	fprintf(stderr, "snapvm restore: %s: %s\n", what, problem);
	restore_usage(stderr);
	return 2;
}

/* 0, -1 after --help, or the exit status of bad usage. */
static int parse_restore(int argc, char **argv, struct restore_config *cfg)
{
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":", restore_options,
				  NULL)) != -1) {
		switch (opt) {
		case OPT_CONTROL:
			cfg->control = optarg;
			break;
		case OPT_VSOCK:
			cfg->vsock = optarg;
			break;
		case OPT_DISK_DIR:
			cfg->disk_dir = optarg;
			break;
		case OPT_TRUST_DISKS:
			cfg->trust_disks = true;
			break;
		case OPT_SHARED:
			cfg->shared = true;
			break;
		case OPT_DEBUG:
			cfg->debug = true;
			break;
		case OPT_CLOCK:
			if (strcmp(optarg, "now") && strcmp(optarg, "continue"))
				return bad_usage("--clock", "now or continue "
						 "expected");
			cfg->clock_continue = !strcmp(optarg, "continue");
			break;
		case OPT_HELP:
			restore_help();
			return -1;
		case ':':
			return bad_usage(argv[optind - 1], "needs a value");
		default:
			return bad_usage(argv[optind - 1], "unknown option");
		}
	}
	if (optind == argc)
		return bad_usage("DIR", "required");
	cfg->dir = argv[optind++];
	if (optind < argc)
		return bad_usage(argv[optind], "unexpected argument");
	return 0;
}

/* The manifest's RAM must be laid out as snapvm lays out that much RAM. */
static int check_layout(const struct snap_manifest *m, struct snap_err *err)
{
	struct mem_region want[MEM_MAX_REGIONS];
	unsigned int n;

	if (m->memory_size < MEM_MIN_SIZE || m->memory_size > MEM_MAX_SIZE ||
	    m->memory_size % MEM_ALIGN)
		return snap_err_set(err, -EINVAL, "manifest.bin: memory_size "
				    "%llu: not a RAM size snapvm can run",
				    (unsigned long long)m->memory_size);
	n = mem_layout(m->memory_size, want);
	if (m->n_regions != n)
		goto differs;
	for (unsigned int i = 0; i < n; i++)
		if (m->regions[i].gpa != want[i].gpa ||
		    m->regions[i].size != want[i].size ||
		    m->regions[i].offset != want[i].offset)
			goto differs;
	return 0;
differs:
	return snap_err_set(err, -EINVAL, "manifest.bin: regions: not the "
			    "layout snapvm gives %llu bytes of RAM",
			    (unsigned long long)m->memory_size);
}

/*
 * Put every piece of state back, in the order KVM needs (vstate.h); the
 * guest's clocks from *since_ns, and told they were stopped if they jump.
 * *since_ns is then what vCPU 0's TSC stands for as KVM took it, for
 * kvmclock to follow.
 */
static int restore_state(struct vm *vm, const struct snap_state *st,
			 uint64_t *since_ns, bool jump, struct snap_err *err)
{
	struct vstate_host host;
	int ret;

	ret = vstate_host_init(&host, vm_kvm_fd(vm), vm_fd(vm), err);
	if (ret)
		return ret;
	ret = vstate_check(&host, st, err);
	if (ret)
		snap_err_prefix(err, ret, "state.bin");
	if (!ret)
		ret = vstate_vm_restore(vm_fd(vm), st, err);
	for (unsigned int i = 0; !ret && i < st->n_vcpus; i++) {
		ret = vstate_vcpu_restore(&host, vm_vcpu_fd(vm, i),
					  &st->vcpus[i], *since_ns, err);
		if (!ret && jump)
			ret = vstate_vcpu_clock_stopped(&host, vm_vcpu_fd(vm, i),
							st->vcpus[i].id, err);
	}
	if (!ret && st->n_vcpus)
		ret = vstate_vcpu_tsc_since(&host, vm_vcpu_fd(vm, 0),
					    &st->vcpus[0], since_ns, err);
	if (!ret)
		ret = devices_restore(vm_devices(vm), st, err);
	vstate_host_release(&host);
	return ret;
}

/* A snapshot to run: what restore keeps while the machine starts. */
struct restore {
	struct restore_config cfg;
	struct snap_manifest m;
	struct dev_config devs;
	char disk_path[SNAP_MAX_DISKS][PATH_MAX];
	bool disk_made[SNAP_MAX_DISKS];	/* a copy we made, for a failure */
	struct snap_state *st;
	char memory_path[PATH_MAX];
	uint64_t since_ns;		/* what the saved clocks stand for */
};

/*
 * Put the snapshot's state into the VM. What the saved TSC and kvmclock
 * stand for (vstate.h): the time of the save, so that they jump to now; or
 * this moment, just before they are written, so that they go on from the
 * snapshot together (--clock continue, or a snapshot that does not say
 * when it was).
 */
static int restore_load(void *ctx, struct vm *vm, struct snap_err *err)
{
	struct restore *r = ctx;
	bool jump = !r->cfg.clock_continue;
	struct timespec ts;
	uint64_t since;
	int ret;

	r->since_ns = 0;
	if (jump)
		r->since_ns = vstate_saved_at(r->st, r->m.created_unix_ns);
	if (!r->since_ns) {
		clock_gettime(CLOCK_REALTIME, &ts);
		r->since_ns = (uint64_t)ts.tv_sec * 1000000000u +
			      (uint64_t)ts.tv_nsec;
		jump = false;
	}
	since = r->since_ns;
	ret = restore_state(vm, r->st, &r->since_ns, jump, err);
	if (!ret && r->cfg.debug)
		fprintf(stderr, "snapvm: vCPU 0's TSC %lld us behind the "
			"wall clock, and kvmclock with it\n",
			(long long)(r->since_ns - since) / 1000);
	return ret;
}

/* kvmclock starts running when set: just before the guest does. */
static int restore_launch(void *ctx, struct vm *vm, struct snap_err *err)
{
	struct restore *r = ctx;
	const struct restore_config *cfg = &r->cfg;
	int ret;

	ret = vstate_vm_restore_clock(vm_fd(vm), r->st, r->since_ns, err);
	if (ret)
		return ret;
	if (cfg->debug)
		fprintf(stderr, "snapvm: %s: %u vCPUs, %llu MiB, memory.bin "
			"mapped %s\n", cfg->dir, r->m.vcpu_count,
			(unsigned long long)(r->m.memory_size >> 20),
			cfg->shared ? "shared" : "private");
	snap_state_free(r->st);		/* the VM has it all now */
	r->st = NULL;
	return 0;
}

/* Clone src (size bytes) into the new file dst; *made once it exists. */
static int clone_disk(const char *src, const char *dst, uint64_t size,
		      bool *made, struct snap_err *err)
{
	int in, out, ret = 0;
	int64_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return snap_err_set(err, -errno, "%s: %m", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		ret = snap_err_set(err, -errno, "--disk-dir: %s: %s", dst,
				   errno == EEXIST ? "already exists (each "
				   "restore needs a directory of its own)" :
				   strerror(errno));
		close(in);
		return ret;
	}
	*made = true;
	if (ftruncate(out, (off_t)size))
		ret = snap_err_set(err, -errno, "%s: cannot size: %m", dst);
	if (!ret && (n = image_copy_file(in, out, size)) < 0)
		ret = snap_err_set(err, (int)n, "%s: copying %s: %s", dst, src,
				   strerror((int)-n));
	close(in);
	close(out);
	return ret;
}

/*
 * The devices the snapshot's VM had: its disks (read-only ones from the
 * snapshot, writable ones cloned into --disk-dir) and the virtio devices
 * whose payloads state.bin holds.
 */
static int restore_devices(const struct restore_config *cfg,
			   struct restore *r, struct snap_err *err)
{
	r->devs.rng = snap_state_find_device(r->st, "virtio-rng") != NULL;
	/* Connections are not in snapshots: a clone gets a socket of its own. */
	if (snap_state_find_device(r->st, "virtio-vsock") && !cfg->vsock)
		return snap_err_set(err, -EINVAL, "%s: the VM has virtio-vsock: "
				    "--vsock PATH is needed for its host "
				    "socket", cfg->dir);
	if (cfg->vsock && !snap_state_find_device(r->st, "virtio-vsock"))
		return snap_err_set(err, -EINVAL, "--vsock %s: the VM in %s "
				    "has no virtio-vsock", cfg->vsock,
				    cfg->dir);
	r->devs.vsock = cfg->vsock;	/* its CID is the snapshot's */
	for (uint32_t i = 0; i < r->m.n_disks; i++) {
		const struct snap_disk *d = &r->m.disks[i];
		char src[PATH_MAX], dst[PATH_MAX];
		int ret;

		if ((size_t)snprintf(src, sizeof(src), "%s/%s", cfg->dir,
				     d->file) >= sizeof(src))
			return snap_err_set(err, -ENAMETOOLONG, "%s: path too "
					    "long", cfg->dir);
		if (d->read_only) {
			strcpy(r->disk_path[i], src);
		} else {
			if (!cfg->disk_dir)
				return snap_err_set(err, -EINVAL, "%s: disk %s is "
						    "writable: --disk-dir DIR "
						    "is needed for the VM's "
						    "own copy", cfg->dir,
						    d->file);
			/* Built aside: d->file lives in r too (-Wrestrict). */
			if ((size_t)snprintf(dst, sizeof(dst), "%s/%s",
					     cfg->disk_dir, d->file) >=
			    sizeof(dst))
				return snap_err_set(err, -ENAMETOOLONG,
						    "--disk-dir %s: path too "
						    "long", cfg->disk_dir);
			strcpy(r->disk_path[i], dst);
			ret = clone_disk(src, r->disk_path[i], d->size,
					 &r->disk_made[i], err);
			if (ret)
				return ret;
		}
		r->devs.disks[i] = (struct dev_disk){ r->disk_path[i],
						      d->read_only };
	}
	r->devs.n_disks = r->m.n_disks;
	return 0;
}

/* Read and check the snapshot, make the disks, map its memory. */
static int restore_open(void *ctx, struct machine_spec *spec,
			struct snap_err *err)
{
	struct restore *r = ctx;
	const struct restore_config *cfg = &r->cfg;
	int ret;

	ret = snap_read(cfg->dir, cfg->trust_disks ? 0 : SNAP_DISK_DIGEST,
			&r->m, &r->st, err);
	if (!ret)
		ret = check_layout(&r->m, err);
	if (ret)
		return snap_err_prefix(err, ret, "%s", cfg->dir);
	ret = restore_devices(cfg, r, err);
	if (ret)
		return ret;
	if ((size_t)snprintf(r->memory_path, sizeof(r->memory_path), "%s/%s",
			     cfg->dir, SNAP_MEMORY_FILE) >= sizeof(r->memory_path))
		return snap_err_set(err, -ENAMETOOLONG, "%s: path too long",
				    cfg->dir);
	ret = mem_open_image(&spec->mem, r->m.memory_size, r->memory_path,
			     cfg->shared ? MEM_IMAGE_SHARED : MEM_IMAGE_PRIVATE,
			     err);
	if (ret)
		return snap_err_prefix(err, ret, "%s", r->memory_path);
	spec->cpus = r->m.vcpu_count;
	spec->cpus_what = "manifest.bin: vcpu_count";
	spec->devs = &r->devs;
	spec->control = cfg->control;
	spec->cmdline = r->m.cmdline;
	/* Mapped private, memory.bin stays what RAM was: the first base. */
	if (!cfg->shared) {
		spec->base.memory_path = r->memory_path;
		memcpy(spec->base.id, r->m.id, SNAP_ID_LEN);
	}
	spec->debug = cfg->debug;
	spec->prefix = cfg->dir;
	return 0;
}

static void restore_close(void *ctx, bool ran)
{
	struct restore *r = ctx;

	snap_state_free(r->st);
	for (uint32_t i = 0; !ran && i < SNAP_MAX_DISKS; i++)
		if (r->disk_made[i])	/* a copy made for a VM that never ran */
			unlink(r->disk_path[i]);
	snap_manifest_release(&r->m);
}

static const struct machine_ops restore_machine = {
	.open = restore_open,
	.load = restore_load,
	.launch = restore_launch,
	.close = restore_close,
};

int cmd_restore(int argc, char **argv)
{
	struct restore r = { 0 };
	int ret;

	ret = parse_restore(argc, argv, &r.cfg);
	if (ret)
		return ret < 0 ? 0 : ret;
	return machine_run(&restore_machine, &r);
}
