/* SPDX-License-Identifier: MIT */
#include "vmm/vm.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "vmm/devices.h"
#include "vmm/ioport.h"
#include "vmm/mem.h"
#include "vmm/vcpu.h"

#define VM_TSS_ADDR		0xfffbd000ull
#define VM_IDENTITY_MAP_ADDR	0xfffbc000ull
#define VM_EXIT_MSG_MAX		256

#define IRQCHIP_PIC_MASTER	0
#define IRQCHIP_PIC_SLAVE	1
#define IRQCHIP_IOAPIC		2
#define ISA_IRQS		16
#define IOAPIC_PINS		24
#define ISA_CASCADE		2

struct vm {
	int fd;
	int kvm_fd;		/* the host's /dev/kvm, owned by the caller */
	struct mem *mem;
	unsigned int cpus;
	bool debug;
	struct ioport_bus *bus;
	struct devices *devices;
	struct vcpus *vcpus;
	int exit_fd;		/* eventfd: an exit was requested */
	int signal_fd;		/* SIGINT, SIGTERM, SIGHUP */
	pthread_mutex_t exit_lock;
	bool exiting;
	int exit_status;
	char exit_msg[VM_EXIT_MSG_MAX];
};

/* The signals that end snapvm, read from signal_fd. */
static const struct {
	int sig;
	const char *name;
} vm_signals[] = {
	{ SIGINT, "SIGINT" },
	{ SIGTERM, "SIGTERM" },
	{ SIGHUP, "SIGHUP" },
};

#define N_SIGNALS (sizeof(vm_signals) / sizeof(vm_signals[0]))

static int block_signals(struct vm *vm, struct snap_err *err)
{
	sigset_t set, ends;

	sigemptyset(&set);
	sigemptyset(&ends);
	for (size_t i = 0; i < N_SIGNALS; i++) {
		sigaddset(&set, vm_signals[i].sig);
		sigaddset(&ends, vm_signals[i].sig);
	}
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	vm->signal_fd = signalfd(-1, &ends, SFD_CLOEXEC);
	if (vm->signal_fd < 0)
		return snap_err_set(err, -errno, "signalfd: %s",
				    strerror(errno));
	return 0;
}

/*
 * GSI routing matching the MP table: ISA IRQs to the PICs (but the cascade,
 * IRQ 2) and to the IOAPIC's same pins, IRQ 0 to IOAPIC pin 2; the other
 * IOAPIC pins as GSIs 16-23.
 */
static int set_routing(struct vm *vm, struct snap_err *err)
{
	struct kvm_irq_routing *rt;
	struct kvm_irq_routing_entry *e;
	int ret = 0;

	rt = calloc(1, sizeof(*rt) + 2 * IOAPIC_PINS * sizeof(*e));
	if (!rt)
		return snap_err_set(err, -ENOMEM, "out of memory");
	e = rt->entries;
	for (uint32_t irq = 0; irq < ISA_IRQS; irq++) {
		if (irq == ISA_CASCADE)
			continue;
		e->gsi = irq;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = irq < 8 ? IRQCHIP_PIC_MASTER :
						 IRQCHIP_PIC_SLAVE;
		e->u.irqchip.pin = irq % 8;
		e++;
	}
	for (uint32_t gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		if (gsi == ISA_CASCADE)
			continue;
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = IRQCHIP_IOAPIC;
		e->u.irqchip.pin = gsi == 0 ? MPTABLE_IRQ0_PIN : gsi;
		e++;
	}
	rt->nr = (uint32_t)(e - rt->entries);
	if (ioctl(vm->fd, KVM_SET_GSI_ROUTING, rt) < 0)
		ret = snap_err_set(err, -errno, "KVM_SET_GSI_ROUTING: %s",
				   strerror(errno));
	free(rt);
	return ret;
}

/* One KVM memory slot per RAM region, slot i for region i. */
static int set_memory(struct vm *vm, uint32_t flags, struct snap_err *err)
{
	const struct mem_region *r;
	unsigned int n = mem_regions(vm->mem, &r);

	for (unsigned int i = 0; i < n; i++) {
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.flags = flags,
			.guest_phys_addr = r[i].gpa,
			.memory_size = r[i].size,
			.userspace_addr = (uintptr_t)(mem_host(vm->mem) +
						      r[i].offset),
		};

		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return snap_err_set(err, -errno, "memory slot %u: %s",
					    i, strerror(errno));
	}
	return 0;
}

/* The VM-wide KVM setup, in the order KVM wants it. */
static int setup_kvm(struct vm *vm, const struct kvm_host *host,
		     struct snap_err *err)
{
	uint64_t identity = VM_IDENTITY_MAP_ADDR;
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int ret;

	vm->fd = ioctl(host->fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		return snap_err_set(err, -errno, "KVM_CREATE_VM: %s",
				    strerror(errno));
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR) < 0)
		return snap_err_set(err, -errno, "KVM_SET_TSS_ADDR: %s",
				    strerror(errno));
	if (ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
		return snap_err_set(err, -errno, "KVM_SET_IDENTITY_MAP_ADDR: %s",
				    strerror(errno));
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return snap_err_set(err, -errno, "KVM_CREATE_IRQCHIP: %s",
				    strerror(errno));
	ret = set_routing(vm, err);
	if (ret)
		return ret;
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0)
		return snap_err_set(err, -errno, "KVM_CREATE_PIT2: %s",
				    strerror(errno));
	return set_memory(vm, 0, err);
}

/* ---- what the vCPUs ask of the VM (vcpu.h) ------------------------------ */

static void vm_pio(void *opaque, uint16_t port, bool is_write, uint8_t *data,
		   unsigned int size)
{
	struct vm *vm = opaque;

	ioport_access(vm->bus, port, is_write, data, size);
}

static bool vm_mmio(void *opaque, uint64_t addr, bool is_write, uint8_t *data,
		    unsigned int len)
{
	struct vm *vm = opaque;

	return devices_mmio(vm->devices, addr, is_write, data, len);
}

static void vm_request_exit_why(void *vm, int status, const char *why)
{
	vm_request_exit(vm, status, "%s", why);
}

/* The vCPUs, with KVM's CPUID and the VM as their host. */
static int create_vcpus(struct vm *vm, const struct kvm_host *host,
			struct snap_err *err)
{
	const struct vcpu_host vh = {
		.vm = vm,
		.pio = vm_pio,
		.mmio = vm_mmio,
		.request_exit = vm_request_exit_why,
		.debug = vm->debug,
	};
	struct kvm_cpuid2 *cpuid = NULL;
	int ret;

	ret = kvm_host_supported_cpuid(host, &cpuid);
	if (ret)
		return snap_err_set(err, ret, "KVM_GET_SUPPORTED_CPUID: %s",
				    strerror(-ret));
	ret = vcpus_create(&vm->vcpus, &vh, host->fd, vm->fd, vm->cpus, cpuid,
			   err);
	free(cpuid);
	return ret;
}

/* ---- the VM ------------------------------------------------------------- */

int vm_create(struct vm **out, const struct kvm_host *host, struct mem *mem,
	      unsigned int cpus, const struct dev_config *devs, bool debug,
	      struct snap_err *err)
{
	struct vm *vm;
	int ret;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return snap_err_set(err, -ENOMEM, "out of memory");
	vm->fd = vm->exit_fd = vm->signal_fd = -1;
	vm->kvm_fd = host->fd;
	vm->mem = mem;
	vm->cpus = cpus;
	vm->debug = debug;
	pthread_mutex_init(&vm->exit_lock, NULL);
	ret = block_signals(vm, err);
	if (ret)
		goto err_destroy;
	vm->exit_fd = eventfd(0, EFD_CLOEXEC);
	if (vm->exit_fd < 0) {
		ret = snap_err_set(err, -errno, "eventfd: %s", strerror(errno));
		goto err_destroy;
	}
	ret = setup_kvm(vm, host, err);
	if (ret)
		goto err_destroy;
	ret = ioport_bus_create(&vm->bus);
	if (ret) {
		snap_err_set(err, ret, "out of memory");
		goto err_destroy;
	}
	ret = devices_create(&vm->devices, vm, vm->bus, devs, err);
	if (!ret)
		ret = create_vcpus(vm, host, err);
	if (ret)
		goto err_destroy;
	*out = vm;
	return 0;

err_destroy:
	vm_destroy(vm);
	return ret;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	vcpus_destroy(vm->vcpus);
	devices_destroy(vm->devices);
	ioport_bus_destroy(vm->bus);
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->exit_fd >= 0)
		close(vm->exit_fd);
	if (vm->signal_fd >= 0)
		close(vm->signal_fd);
	pthread_mutex_destroy(&vm->exit_lock);
	free(vm);
}

int vm_fd(const struct vm *vm)
{
	return vm->fd;
}

int vm_kvm_fd(const struct vm *vm)
{
	return vm->kvm_fd;
}

struct mem *vm_mem(const struct vm *vm)
{
	return vm->mem;
}

struct devices *vm_devices(const struct vm *vm)
{
	return vm->devices;
}

int vm_dirty_log_start(struct vm *vm, struct snap_err *err)
{
	return set_memory(vm, KVM_MEM_LOG_DIRTY_PAGES, err);
}

int vm_dirty_log_fetch(struct vm *vm, uint64_t *bitmap, struct snap_err *err)
{
	const struct mem_region *r;
	unsigned int n = mem_regions(vm->mem, &r);

	for (unsigned int i = 0; i < n; i++) {
		uint64_t pages = r[i].size / MEM_ALIGN;
		uint64_t words = (pages + 63) / 64;
		uint64_t *out = bitmap + r[i].offset / MEM_ALIGN / 64;
		struct kvm_dirty_log log = { .slot = i };
		uint64_t *slot = calloc(words, sizeof(*slot));

		if (!slot)
			return snap_err_set(err, -ENOMEM, "out of memory");
		log.dirty_bitmap = slot;
		if (ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			int ret = snap_err_set(err, -errno, "memory slot %u: "
					       "KVM_GET_DIRTY_LOG: %s", i,
					       strerror(errno));
			free(slot);
			return ret;
		}
		for (uint64_t w = 0; w < words; w++)
			out[w] |= slot[w];
		free(slot);
	}
	mem_dirty_take(vm->mem, bitmap);
	return 0;
}

int vm_vcpu_fd(const struct vm *vm, unsigned int i)
{
	return vcpus_fd(vm->vcpus, i);
}

void vm_boot_cpus(const struct vm *vm, struct mptable_cpus *out)
{
	out->count = vm->cpus;
	vcpus_signature(vm->vcpus, &out->signature, &out->features);
}

int vm_start(struct vm *vm)
{
	return vcpus_start(vm->vcpus);
}

static const char *signal_name(int sig)
{
	for (size_t i = 0; i < N_SIGNALS; i++)
		if (vm_signals[i].sig == sig)
			return vm_signals[i].name;
	return "a signal";
}

/* Has the VM been asked to end? */
static bool vm_exiting(struct vm *vm)
{
	bool exiting;

	pthread_mutex_lock(&vm->exit_lock);
	exiting = vm->exiting;
	pthread_mutex_unlock(&vm->exit_lock);
	return exiting;
}

int vm_wait(struct vm *vm)
{
	struct pollfd pfd[2] = {
		{ .fd = vm->exit_fd, .events = POLLIN },
		{ .fd = vm->signal_fd, .events = POLLIN },
	};
	struct signalfd_siginfo si;

	while (!vm_exiting(vm)) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if ((pfd[1].revents & POLLIN) &&
		    read(vm->signal_fd, &si, sizeof(si)) == sizeof(si))
			vm_request_exit(vm, 128 + (int)si.ssi_signo,
					"ended by %s",
					signal_name((int)si.ssi_signo));
	}
	vcpus_stop(vm->vcpus);
	pthread_mutex_lock(&vm->exit_lock);
	if (vm->exit_msg[0])
		fprintf(stderr, "snapvm: %s\n", vm->exit_msg);
	pthread_mutex_unlock(&vm->exit_lock);
	if (vm->debug)
		ioport_report(vm->bus, stderr);
	return vm->exit_status;
}

void vm_request_exit(struct vm *vm, int status, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vm->exit_lock);
	if (!vm->exiting) {
		vm->exiting = true;
		vm->exit_status = status;
		if (fmt) {
			va_start(ap, fmt);
			vsnprintf(vm->exit_msg, sizeof(vm->exit_msg), fmt, ap);
			va_end(ap);
		}
		eventfd_write(vm->exit_fd, 1);
	}
	pthread_mutex_unlock(&vm->exit_lock);
}

int vm_pause(struct vm *vm)
{
	return vcpus_pause(vm->vcpus);
}

void vm_resume(struct vm *vm)
{
	vcpus_resume(vm->vcpus);
}

bool vm_paused(struct vm *vm)
{
	return vcpus_paused(vm->vcpus);
}

unsigned int vm_cpus(const struct vm *vm)
{
	return vm->cpus;
}

uint64_t vm_mem_size(const struct vm *vm)
{
	return mem_size(vm->mem);
}

int vm_irq_line(struct vm *vm, unsigned int irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = (uint32_t)level };

	return ioctl(vm->fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}
