/* SPDX-License-Identifier: MIT */
/* KVM and a VM played for vmm/vcpu.c: see vcpu_fake.h. */
#include "tests/unit/vcpu_fake.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RUN_SIZE	8192	/* kvm_run, then the page of port data */
#define IO_DATA		4096	/* data_offset: where port data is */
#define MAX_DONE	(sizeof(fake.cpu[0].done) / sizeof(fake.cpu[0].done[0]))

struct fake fake;
pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t fake_cv = PTHREAD_COND_INITIALIZER;

void fake_after_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += ms * 1000000;
	ts->tv_sec += ts->tv_nsec / 1000000000;
	ts->tv_nsec %= 1000000000;
}

void fake_reset(void)
{
	memset(&fake, 0, sizeof(fake));
	fake.fail_create = -1;
}

void fake_release(void)
{
	for (unsigned int i = 0; i < FAKE_CPUS; i++) {
		if (fake.cpu[i].run)
			munmap(fake.cpu[i].run, RUN_SIZE);
		fake.cpu[i].run = NULL;
	}
}

/* ---- KVM: every call under fake_lock ------------------------------------ */

static int fails(int e)
{
	errno = e;
	return -1;
}

static struct fake_cpu *cpu_of(int fd)
{
	for (unsigned int i = 0; i < fake.created; i++)
		if (fake.cpu[i].fd == fd)
			return &fake.cpu[i];
	return NULL;
}

/* The vCPU descriptor: a memfd, which vcpu.c maps as its kvm_run. */
static int kvm_create_vcpu(unsigned long index)
{
	struct fake_cpu *c;

	if (index >= FAKE_CPUS || (int)index == fake.fail_create)
		return fails(EEXIST);
	c = &fake.cpu[index];
	c->fd = memfd_create("kvm_run", MFD_CLOEXEC);
	if (c->fd < 0 || ftruncate(c->fd, RUN_SIZE) < 0)
		return -1;
	c->run = mmap(NULL, RUN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		return -1;
	}
	fake.created = (unsigned int)index + 1;
	return c->fd;
}

static int kvm_set_cpuid(struct fake_cpu *c, const struct kvm_cpuid2 *cpuid)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		if (cpuid->entries[i].function == 1) {
			c->apic_id = cpuid->entries[i].ebx >> 24;
			c->sig_eax = cpuid->entries[i].eax;
			c->sig_edx = cpuid->entries[i].edx;
		}
	}
	return 0;
}

static int kvm_get_regs(struct kvm_regs *regs)
{
	memset(regs, 0, sizeof(*regs));
	regs->rip = FAKE_RIP;
	return 0;
}

/* As KVM at every KVM_RUN: an open IN or MMIO read reaches the guest. */
static void complete(struct fake_cpu *c)
{
	struct kvm_run *run = c->run;
	struct completion *d = &c->done[c->n_done];
	unsigned int len = 0;

	if (c->n_done == MAX_DONE)
		return;
	if (c->open_exit == KVM_EXIT_IO &&
	    run->io.direction == KVM_EXIT_IO_IN) {
		len = run->io.size * run->io.count;
		memcpy(d->data, (uint8_t *)run + run->io.data_offset, len);
	} else if (c->open_exit == KVM_EXIT_MMIO && !run->mmio.is_write) {
		len = run->mmio.len;
		memcpy(d->data, run->mmio.data, len);
	}
	if (len) {
		d->len = len;
		c->n_done++;
	}
	c->open_exit = 0;
}

/* KVM_RUN: complete the last exit, then the script's next step. */
static int kvm_run(struct fake_cpu *c)
{
	struct kvm_run *run = c->run;
	struct timespec ts;
	int ret;

	c->runs++;
	complete(c);
	if (__atomic_load_n(&run->immediate_exit, __ATOMIC_RELAXED)) {
		c->immediate++;
		return fails(EINTR);
	}
	ret = c->script(run, c->steps++);
	if (ret < 0)
		return fails(-ret);
	if (ret == GUEST_RUNS) {
		c->in_guest = true;
		pthread_cond_broadcast(&fake_cv);
		/* A kick sets immediate_exit; its signal stays blocked. */
		while (!__atomic_load_n(&run->immediate_exit,
					__ATOMIC_RELAXED)) {
			fake_after_ms(&ts, 1);
			pthread_cond_timedwait(&fake_cv, &fake_lock, &ts);
		}
		c->in_guest = false;
		pthread_cond_broadcast(&fake_cv);
		return fails(EINTR);
	}
	c->open_exit = run->exit_reason;
	return 0;
}

static int kvm_ioctl(void *vm, int fd, unsigned long req, void *arg)
{
	struct fake_cpu *c;
	int ret;

	pthread_mutex_lock(&fake_lock);
	c = cpu_of(fd);
	if (req == KVM_GET_VCPU_MMAP_SIZE && fd == FAKE_KVM_FD)
		ret = RUN_SIZE;
	else if (req == KVM_CREATE_VCPU && fd == FAKE_VM_FD)
		ret = kvm_create_vcpu((unsigned long)arg);
	else if (req == KVM_SET_CPUID2 && c)
		ret = kvm_set_cpuid(c, arg);
	else if (req == KVM_SET_SIGNAL_MASK && c)
		ret = fake.mask_error ? fails(fake.mask_error) : 0;
	else if (req == KVM_RUN && c)
		ret = kvm_run(c);
	else if (req == KVM_GET_REGS && c)
		ret = kvm_get_regs(arg);
	else
		ret = fails(ENOTTY);
	pthread_mutex_unlock(&fake_lock);
	return ret;
}

/* ---- the VM ------------------------------------------------------------- */

static void log_access(bool mmio, uint64_t addr, bool is_write,
		       const uint8_t *data, unsigned int size)
{
	struct access *a;

	pthread_mutex_lock(&fake_lock);
	if (fake.n_log < FAKE_LOG) {
		a = &fake.log[fake.n_log];
		*a = (struct access){ mmio, addr, is_write, size, { 0 } };
		if (is_write)
			memcpy(a->data, data, size);
		fake.n_log++;
	}
	pthread_mutex_unlock(&fake_lock);
}

static void host_pio(void *vm, uint16_t port, bool is_write, uint8_t *data,
		     unsigned int size)
{
	bool wait;

	log_access(false, port, is_write, data, size);
	pthread_mutex_lock(&fake_lock);
	wait = fake.pio_waits_for_pause;
	fake.pio_waits_for_pause = false;
	fake.in_pio = wait;
	pthread_cond_broadcast(&fake_cv);
	pthread_mutex_unlock(&fake_lock);
	/* Paused while this exit is open: the pause must complete it. */
	for (int i = 0; wait && !vcpus_paused(fake.set) && i < WAIT_MS; i++)
		usleep(1000);
	for (unsigned int i = 0; !is_write && i < size; i++)
		data[i] = (uint8_t)(0x40 + i);
}

static bool host_mmio(void *vm, uint64_t addr, bool is_write, uint8_t *data,
		      unsigned int len)
{
	bool claimed = addr >= 0xe0000000u && addr < 0xe0100000u;

	log_access(true, addr, is_write, data, len);
	for (unsigned int i = 0; claimed && !is_write && i < len; i++)
		data[i] = (uint8_t)(0x11 * (i + 1));
	return claimed;
}

static void host_request_exit(void *vm, int status, const char *why)
{
	pthread_mutex_lock(&fake_lock);
	if (fake.exits++ == 0) {
		fake.status = status;
		snprintf(fake.why, sizeof(fake.why), "%s", why);
	}
	pthread_cond_broadcast(&fake_cv);
	pthread_mutex_unlock(&fake_lock);
}

const struct vcpu_host fake_host = {
	.vm = &fake,
	.pio = host_pio,
	.mmio = host_mmio,
	.request_exit = host_request_exit,
	.ioctl = kvm_ioctl,
};

/* What KVM_GET_SUPPORTED_CPUID might say (enough for cpuid_fixup). */
static const struct {
	struct kvm_cpuid2 head;
	struct kvm_cpuid_entry2 entries[2];
} supported = {
	{ .nent = 2 },
	{ { .function = 0, .eax = 1, .ebx = 0x756e6547 },
	  { .function = 1, .eax = 0x000806f8, .ebx = 0x00000800,
	    .ecx = 0x7ffaf203, .edx = 0x1f8bfbff } },
};

const struct kvm_cpuid2 *const fake_supported = &supported.head;

/* ---- exits for scripts -------------------------------------------------- */

int fake_io(struct kvm_run *run, uint8_t dir, uint16_t port, uint8_t size,
	    uint32_t count, const void *data)
{
	uint8_t *out = (uint8_t *)run + IO_DATA;

	run->io.direction = dir;
	run->io.port = port;
	run->io.size = size;
	run->io.count = count;
	run->io.data_offset = IO_DATA;
	if (data)
		memcpy(out, data, (size_t)size * count);
	else
		memset(out, 0x77, (size_t)size * count);
	return fake_exit(run, KVM_EXIT_IO);
}

int fake_mmio(struct kvm_run *run, uint64_t addr, bool is_write,
	      uint32_t len, const void *data)
{
	run->mmio.phys_addr = addr;
	run->mmio.is_write = is_write;
	run->mmio.len = len;
	memset(run->mmio.data, 0x77, sizeof(run->mmio.data));
	if (data)
		memcpy(run->mmio.data, data, len);
	return fake_exit(run, KVM_EXIT_MMIO);
}

int fake_exit(struct kvm_run *run, uint32_t reason)
{
	run->exit_reason = reason;
	return 0;
}

int fake_event(struct kvm_run *run, uint32_t type)
{
	run->system_event.type = type;
	return fake_exit(run, KVM_EXIT_SYSTEM_EVENT);
}

int fake_guest_runs(struct kvm_run *run, unsigned int step)
{
	return GUEST_RUNS;
}
