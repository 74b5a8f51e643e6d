/* SPDX-License-Identifier: MIT */
#include "vmm/vcpu.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/cpuid.h"
#include "vmm/devices.h"
#include "vmm/ioport.h"
#include "vmm/vm.h"

#define KERNEL_SIGSET_SIZE	8	/* what KVM_SET_SIGNAL_MASK takes */

struct vcpu {
	struct vcpus *set;
	unsigned int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool done;		/* the VM is ending: park until stopped */
	bool exit_open;		/* KVM has not yet completed the last exit */
};

struct vcpus {
	struct vm *vm;
	struct vcpu *cpus;
	unsigned int n;
	unsigned int started;	/* threads running */
	size_t run_size;
	uint32_t sig_eax, sig_edx;
	pthread_mutex_t lock;
	pthread_cond_t parked_cv;	/* a vCPU parked */
	pthread_cond_t resume_cv;	/* pause lifted or stopping */
	bool pause;
	bool stop;
	unsigned int parked;
};

/* What an exit handler tells the loop. */
enum { VCPU_CONTINUE, VCPU_DONE };

/* ---- exits -------------------------------------------------------------- */

static int exit_io(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		ioport_access(vm_ioports(c->set->vm), run->io.port, is_write,
			      data, run->io.size);
	return VCPU_CONTINUE;
}

/* Devices on PCI; elsewhere reads see all ones, writes go nowhere. */
static int exit_mmio(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	unsigned int len = run->mmio.len;

	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	if (!devices_mmio(vm_devices(c->set->vm), run->mmio.phys_addr,
			  run->mmio.is_write, run->mmio.data, len) &&
	    !run->mmio.is_write)
		memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
	return VCPU_CONTINUE;
}

/* Interrupted (a kick) or halted without an in-kernel LAPIC: run again. */
static int exit_again(struct vcpu *c)
{
	return VCPU_CONTINUE;
}

static int exit_shutdown(struct vcpu *c)
{
	vm_request_exit(c->set->vm, 0, "guest reset");
	return VCPU_DONE;
}

static int exit_system_event(struct vcpu *c)
{
	struct vm *vm = c->set->vm;
	uint32_t type = c->run->system_event.type;

	if (type == KVM_SYSTEM_EVENT_SHUTDOWN)
		vm_request_exit(vm, 0, "guest powered off");
	else if (type == KVM_SYSTEM_EVENT_RESET)
		vm_request_exit(vm, 0, "guest reset");
	else if (type == KVM_SYSTEM_EVENT_CRASH)
		vm_request_exit(vm, 1, "vcpu %u: guest crashed", c->index);
	else
		vm_request_exit(vm, 1, "vcpu %u: unexpected system event %u",
				c->index, type);
	return VCPU_DONE;
}

static const char *const internal_errors[] = {
	[KVM_INTERNAL_ERROR_EMULATION] = "emulation failure",
	[KVM_INTERNAL_ERROR_SIMUL_EX] = "exception during exception delivery",
	[KVM_INTERNAL_ERROR_DELIVERY_EV] = "event delivery failure",
	[KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON] = "unexpected exit reason",
};

static int exit_internal_error(struct vcpu *c)
{
	uint32_t sub = c->run->internal.suberror;
	const char *what = sub < sizeof(internal_errors) /
				 sizeof(internal_errors[0]) &&
			   internal_errors[sub] ? internal_errors[sub] :
			   "unknown";
	struct kvm_regs regs;

	if (ioctl(c->fd, KVM_GET_REGS, &regs) < 0)
		regs.rip = 0;
	vm_request_exit(c->set->vm, 1, "vcpu %u: KVM internal error %u (%s) "
			"at rip 0x%llx", c->index, sub, what, regs.rip);
	return VCPU_DONE;
}

static int exit_fail_entry(struct vcpu *c)
{
	vm_request_exit(c->set->vm, 1, "vcpu %u: VM entry failed, hardware "
			"reason 0x%llx", c->index,
			c->run->fail_entry.hardware_entry_failure_reason);
	return VCPU_DONE;
}

static const struct vcpu_exit {
	int (*handle)(struct vcpu *c);
} vcpu_exits[] = {
	[KVM_EXIT_IO] = { exit_io },
	[KVM_EXIT_MMIO] = { exit_mmio },
	[KVM_EXIT_HLT] = { exit_again },
	[KVM_EXIT_INTR] = { exit_again },
	[KVM_EXIT_SHUTDOWN] = { exit_shutdown },
	[KVM_EXIT_SYSTEM_EVENT] = { exit_system_event },
	[KVM_EXIT_INTERNAL_ERROR] = { exit_internal_error },
	[KVM_EXIT_FAIL_ENTRY] = { exit_fail_entry },
};

static int vcpu_dispatch(struct vcpu *c)
{
	uint32_t reason = c->run->exit_reason;

	if (reason < sizeof(vcpu_exits) / sizeof(vcpu_exits[0]) &&
	    vcpu_exits[reason].handle)
		return vcpu_exits[reason].handle(c);
	vm_request_exit(c->set->vm, 1, "vcpu %u: unexpected KVM exit reason %u",
			c->index, reason);
	return VCPU_DONE;
}

/* ---- the thread --------------------------------------------------------- */

static void kick_handler(int sig)
{
}

/* Kicks are only taken inside KVM_RUN; drop the ones left pending. */
static void eat_kicks(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	while (sigtimedwait(&set, NULL, &zero) >= 0)
		;
}

/* Inside KVM_RUN: this thread's mask without the kick signal. */
static int set_run_mask(struct vcpu *c)
{
	union {
		struct kvm_signal_mask m;
		uint8_t buf[sizeof(struct kvm_signal_mask) + KERNEL_SIGSET_SIZE];
	} km;
	sigset_t set;

	pthread_sigmask(SIG_BLOCK, NULL, &set);
	sigdelset(&set, VCPU_KICK_SIGNAL);
	km.m.len = KERNEL_SIGSET_SIZE;
	memcpy(km.m.sigset, &set, KERNEL_SIGSET_SIZE);
	return ioctl(c->fd, KVM_SET_SIGNAL_MASK, &km.m) < 0 ? -errno : 0;
}

/*
 * KVM completes an I/O or MMIO exit (IN's data into RAX, RIP past the
 * instruction) only at the next KVM_RUN, in state no ioctl reads. A
 * KVM_RUN with immediate_exit set does that and returns EINTR without
 * running the guest (a string I/O may first exit again: served here), so
 * that a paused vCPU's registers are whole for a snapshot.
 */
static void complete_exit(struct vcpu *c)
{
	__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELAXED);
	while (ioctl(c->fd, KVM_RUN, 0) == 0)
		if (vcpu_dispatch(c) == VCPU_DONE) {
			c->done = true;
			break;
		}
	eat_kicks();
	c->exit_open = false;
}

/* Park while paused or done; true when the thread must end. */
static bool vcpu_park(struct vcpu *c)
{
	struct vcpus *s = c->set;
	bool stop;

	pthread_mutex_lock(&s->lock);
	while (s->pause && !c->done && !s->stop && c->exit_open) {
		pthread_mutex_unlock(&s->lock);
		complete_exit(c);
		pthread_mutex_lock(&s->lock);
	}
	if ((s->pause || c->done) && !s->stop) {
		s->parked++;
		pthread_cond_broadcast(&s->parked_cv);
		while ((s->pause || c->done) && !s->stop)
			pthread_cond_wait(&s->resume_cv, &s->lock);
		s->parked--;
	}
	stop = s->stop;
	if (!stop)
		__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->lock);
	return stop;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct vm *vm = c->set->vm;
	int ret;

	ret = set_run_mask(c);
	if (ret) {
		vm_request_exit(vm, 1, "vcpu %u: KVM_SET_SIGNAL_MASK: %s",
				c->index, strerror(-ret));
		c->done = true;
	}
	/* For benchmarks: the moment the guest first runs, on stderr. */
	if (c->index == 0 && vm_debug(vm))
		fprintf(stderr, "snapvm: vcpu 0: first KVM_RUN\n");
	while (!vcpu_park(c)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				c->exit_open = false;
				eat_kicks();
				continue;
			}
			vm_request_exit(vm, 1, "vcpu %u: KVM_RUN: %s", c->index,
					strerror(errno));
			c->done = true;
			continue;
		}
		c->exit_open = true;
		if (vcpu_dispatch(c) == VCPU_DONE)
			c->done = true;
	}
	return NULL;
}

/* ---- the set ------------------------------------------------------------ */

static int vcpu_init(struct vcpus *s, struct vcpu *c, int vm_fd,
		     const struct kvm_cpuid2 *supported, struct snap_err *err)
{
	unsigned int max = supported->nent + CPUID_EXTRA;
	struct kvm_cpuid2 *cpuid;
	int n, ret = 0;

	c->fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)c->index);
	if (c->fd < 0)
		return snap_err_set(err, -errno, "vcpu %u: KVM_CREATE_VCPU: %s",
				    c->index, strerror(errno));
	c->run = mmap(NULL, s->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		return snap_err_set(err, -errno, "vcpu %u: mmap of kvm_run: %s",
				    c->index, strerror(errno));
	}
	cpuid = calloc(1, sizeof(*cpuid) + max * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return snap_err_set(err, -ENOMEM, "out of memory");
	n = cpuid_fixup(supported->entries, supported->nent, cpuid->entries,
			max, c->index, s->n);
	if (n < 0) {
		ret = snap_err_set(err, n, "vcpu %u: CPUID: %s", c->index,
				   strerror(-n));
		goto out;
	}
	cpuid->nent = (uint32_t)n;
	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0) {
		ret = snap_err_set(err, -errno, "vcpu %u: KVM_SET_CPUID2: %s",
				   c->index, strerror(errno));
		goto out;
	}
	for (int i = 0; c->index == 0 && i < n; i++) {
		if (cpuid->entries[i].function == 1) {
			s->sig_eax = cpuid->entries[i].eax;
			s->sig_edx = cpuid->entries[i].edx;
		}
	}
out:
	free(cpuid);
	return ret;
}

int vcpus_create(struct vcpus **out, struct vm *vm, int kvm_fd, int vm_fd,
		 unsigned int n, const struct kvm_cpuid2 *supported,
		 struct snap_err *err)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	struct vcpus *s;
	int size, ret;

	size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run))
		return snap_err_set(err, -EINVAL, "KVM_GET_VCPU_MMAP_SIZE: %d",
				    size);
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return snap_err_set(err, -errno, "sigaction: %s",
				    strerror(errno));
	s = calloc(1, sizeof(*s));
	if (!s)
		return snap_err_set(err, -ENOMEM, "out of memory");
	s->cpus = calloc(n, sizeof(*s->cpus));
	if (!s->cpus) {
		free(s);
		return snap_err_set(err, -ENOMEM, "out of memory");
	}
	s->vm = vm;
	s->n = n;
	s->run_size = (size_t)size;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->parked_cv, NULL);
	pthread_cond_init(&s->resume_cv, NULL);
	for (unsigned int i = 0; i < n; i++) {
		s->cpus[i].set = s;
		s->cpus[i].index = i;
		s->cpus[i].fd = -1;
	}
	for (unsigned int i = 0; i < n; i++) {
		ret = vcpu_init(s, &s->cpus[i], vm_fd, supported, err);
		if (ret) {
			vcpus_destroy(s);
			return ret;
		}
	}
	*out = s;
	return 0;
}

void vcpus_destroy(struct vcpus *s)
{
	if (!s)
		return;
	vcpus_stop(s);
	for (unsigned int i = 0; i < s->n; i++) {
		if (s->cpus[i].run)
			munmap(s->cpus[i].run, s->run_size);
		if (s->cpus[i].fd >= 0)
			close(s->cpus[i].fd);
	}
	pthread_cond_destroy(&s->resume_cv);
	pthread_cond_destroy(&s->parked_cv);
	pthread_mutex_destroy(&s->lock);
	free(s->cpus);
	free(s);
}

int vcpus_fd(const struct vcpus *s, unsigned int i)
{
	return i < s->n ? s->cpus[i].fd : -1;
}

void vcpus_signature(const struct vcpus *s, uint32_t *eax, uint32_t *edx)
{
	*eax = s->sig_eax;
	*edx = s->sig_edx;
}

int vcpus_start(struct vcpus *s)
{
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	for (; s->started < s->n; s->started++) {
		ret = -pthread_create(&s->cpus[s->started].thread, NULL,
				      vcpu_thread, &s->cpus[s->started]);
		if (ret)
			break;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Make vCPU c leave KVM_RUN soon. Lock held. */
static void kick(struct vcpu *c)
{
	__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELAXED);
	pthread_kill(c->thread, VCPU_KICK_SIGNAL);
}

int vcpus_pause(struct vcpus *s)
{
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->stop) {
		ret = -ESHUTDOWN;
		goto out;
	}
	s->pause = true;
	for (unsigned int i = 0; i < s->started; i++)
		kick(&s->cpus[i]);
	while (s->parked < s->started && !s->stop)
		pthread_cond_wait(&s->parked_cv, &s->lock);
	if (s->stop)
		ret = -ESHUTDOWN;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void vcpus_resume(struct vcpus *s)
{
	pthread_mutex_lock(&s->lock);
	s->pause = false;
	pthread_cond_broadcast(&s->resume_cv);
	pthread_mutex_unlock(&s->lock);
}

bool vcpus_paused(struct vcpus *s)
{
	bool paused;

	pthread_mutex_lock(&s->lock);
	paused = s->pause;
	pthread_mutex_unlock(&s->lock);
	return paused;
}

void vcpus_stop(struct vcpus *s)
{
	unsigned int started;

	pthread_mutex_lock(&s->lock);
	s->stop = true;
	for (unsigned int i = 0; i < s->started; i++)
		kick(&s->cpus[i]);
	pthread_cond_broadcast(&s->resume_cv);
	pthread_cond_broadcast(&s->parked_cv);
	started = s->started;
	s->started = 0;
	pthread_mutex_unlock(&s->lock);
	for (unsigned int i = 0; i < started; i++)
		pthread_join(s->cpus[i].thread, NULL);
}
