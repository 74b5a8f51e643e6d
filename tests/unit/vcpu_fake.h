/* SPDX-License-Identifier: MIT */
#ifndef SNAP_TEST_VCPU_FAKE_H
#define SNAP_TEST_VCPU_FAKE_H

/*
 * KVM and a VM played for vmm/vcpu.c (test_vmm_vcpu.c), through struct
 * vcpu_host. KVM: each vCPU descriptor is a memfd holding its kvm_run;
 * KVM_RUN takes the vCPU's next exit from its script, completes the exit
 * before it at entry as KVM does (what an IN or MMIO read left for the
 * guest is kept in done[]), and with immediate_exit set returns EINTR
 * without a step. The VM: every port and MMIO access is logged; ports
 * read 0x40, 0x41, ...; the MMIO device at 0xe0000000-0xe00fffff reads
 * 0x11, 0x22, ... and nothing else claims an address; exit requests are
 * counted, the first one kept.
 *
 * Everything below is read and written under fake_lock; fake_cv is
 * broadcast on every change a test may wait for (WAIT_FOR).
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "vmm/vcpu.h"

#define FAKE_KVM_FD	1000	/* not descriptors: the fake ioctl */
#define FAKE_VM_FD	1001	/* answers for both */
#define FAKE_RIP	0xfff0ull	/* what KVM_GET_REGS says */
#define FAKE_CPUS	2
#define FAKE_LOG	16
#define GUEST_RUNS	1	/* a step: the guest runs until kicked */
#define WAIT_MS		10000	/* how long a test waits */

/* What KVM handed the guest when it completed an IN or an MMIO read. */
struct completion {
	uint8_t data[8];
	unsigned int len;
};

/* The exit of KVM_RUN number step: 0 (run filled), -errno or GUEST_RUNS. */
typedef int fake_script(struct kvm_run *run, unsigned int step);

struct fake_cpu {
	int fd;				/* the vCPU: a memfd */
	struct kvm_run *run;		/* our own mapping of its kvm_run */
	fake_script *script;
	unsigned int steps;
	unsigned int runs;		/* KVM_RUN calls */
	unsigned int immediate;		/* ... with immediate_exit set */
	bool in_guest;
	uint32_t open_exit;		/* completed at the next KVM_RUN */
	struct completion done[4];
	unsigned int n_done;
	uint32_t apic_id;		/* from the CPUID it was given */
	uint32_t sig_eax, sig_edx;	/* its leaf 1 */
};

struct access {
	bool mmio;
	uint64_t addr;			/* port, or guest physical */
	bool is_write;
	unsigned int size;
	uint8_t data[8];		/* what was written */
};

struct fake {
	struct fake_cpu cpu[FAKE_CPUS];
	unsigned int created;
	int fail_create;		/* this vCPU's creation fails */
	int mask_error;			/* KVM_SET_SIGNAL_MASK's errno */
	struct access log[FAKE_LOG];
	unsigned int n_log;
	bool pio_waits_for_pause;	/* the next port access waits */
	bool in_pio;			/* ... for a pause, and has begun */
	struct vcpus *set;		/* for that wait */
	unsigned int exits;		/* exit requests */
	int status;			/* of the first */
	char why[256];
};

extern struct fake fake;
extern pthread_mutex_t fake_lock;
extern pthread_cond_t fake_cv;
extern const struct vcpu_host fake_host;	/* KVM and the VM */
extern const struct kvm_cpuid2 *const fake_supported;	/* KVM's CPUID */

/* Forget everything (fail_create -1), release the kvm_run mappings. */
void fake_reset(void);
void fake_release(void);

/* The realtime clock ms from now, for pthread_cond_timedwait. */
void fake_after_ms(struct timespec *ts, long ms);

/* Exits to return from a script. */
int fake_io(struct kvm_run *run, uint8_t dir, uint16_t port, uint8_t size,
	    uint32_t count, const void *data);
int fake_mmio(struct kvm_run *run, uint64_t addr, bool is_write,
	      uint32_t len, const void *data);
int fake_exit(struct kvm_run *run, uint32_t reason);
int fake_event(struct kvm_run *run, uint32_t type);	/* a system event */
/* A script: the guest runs until kicked, at every step. */
int fake_guest_runs(struct kvm_run *run, unsigned int step);

/*
 * In a cmocka test: wait until expr (read under fake_lock) holds; fail
 * after WAIT_MS.
 */
#define WAIT_FOR(expr) do {						\
	struct timespec dl_;						\
	bool ok_;							\
									\
	fake_after_ms(&dl_, WAIT_MS);					\
	pthread_mutex_lock(&fake_lock);					\
	while (!(ok_ = (expr)) &&					\
	       pthread_cond_timedwait(&fake_cv, &fake_lock, &dl_) !=	\
	       ETIMEDOUT)						\
		;							\
	ok_ = (expr);							\
	pthread_mutex_unlock(&fake_lock);				\
	assert_true(ok_);						\
} while (0)

#endif
