/* SPDX-License-Identifier: MIT */
/*
 * The vCPU threads of vmm/vcpu.c without /dev/kvm, on the KVM and VM that
 * vcpu_fake.c plays through struct vcpu_host. Checked: port and MMIO
 * exits reach the VM's handlers with their data, and what a handler reads
 * reaches the guest at the next KVM_RUN; every exit that ends the VM says
 * why in one line and is the vCPU's last KVM_RUN; a pause parks every
 * vCPU outside KVM_RUN, completing an open exit first, and a resume lets
 * them go on.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/vcpu_fake.h"
#include "vmm/vcpu.h"

/* Create n vCPUs on the fake with these scripts and start them. */
static struct vcpus *start(unsigned int n, fake_script *script0,
			   fake_script *script1)
{
	struct snap_err err = { "" };
	struct vcpus *set = NULL;

	assert_int_equal(vcpus_create(&set, &fake_host, FAKE_KVM_FD,
				      FAKE_VM_FD, n, fake_supported, &err), 0);
	fake.cpu[0].script = script0;
	if (n > 1)
		fake.cpu[1].script = script1;
	fake.set = set;
	assert_int_equal(vcpus_start(set), 0);
	return set;
}

static int setup(void **state)
{
	fake_reset();
	return 0;
}

static int teardown(void **state)
{
	fake_release();
	return 0;
}

/* The kick signal is blocked in every thread but inside KVM_RUN. */
static int group_setup(void **state)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* ---- creation ----------------------------------------------------------- */

static void test_create(void **state)
{
	struct snap_err err = { "" };
	struct vcpus *set;
	uint32_t eax, edx;

	assert_int_equal(vcpus_create(&set, &fake_host, FAKE_KVM_FD,
				      FAKE_VM_FD, 2, fake_supported, &err), 0);
	/* Each vCPU its own descriptor and CPUID, its APIC id its index. */
	for (unsigned int i = 0; i < 2; i++) {
		assert_int_equal(vcpus_fd(set, i), fake.cpu[i].fd);
		assert_int_equal(fake.cpu[i].apic_id, i);
	}
	assert_int_equal(vcpus_fd(set, 2), -1);
	vcpus_signature(set, &eax, &edx);
	assert_int_equal(eax, fake.cpu[0].sig_eax);
	assert_int_equal(edx, fake.cpu[0].sig_edx);
	assert_int_equal(eax, 0x000806f8);
	vcpus_destroy(set);
	vcpus_destroy(NULL);

	/* A vCPU KVM refuses: one line naming it, nothing left behind. */
	fake_release();
	fake_reset();
	fake.fail_create = 1;
	set = NULL;
	assert_int_equal(vcpus_create(&set, &fake_host, FAKE_KVM_FD,
				      FAKE_VM_FD, 2, fake_supported, &err),
			 -EEXIST);
	assert_null(set);
	assert_string_equal(err.msg, "vcpu 1: KVM_CREATE_VCPU: File exists");
}

/* ---- exits -------------------------------------------------------------- */

/* A string OUT, a 4-byte OUT, an IN, two exits that only resume, power-off. */
static int script_io(struct kvm_run *run, unsigned int step)
{
	static const uint8_t word[4] = { 0x78, 0x56, 0x34, 0x12 };

	switch (step) {
	case 0: return fake_io(run, KVM_EXIT_IO_OUT, 0x3f8, 1, 3, "abc");
	case 1: return fake_io(run, KVM_EXIT_IO_OUT, 0xcfc, 4, 1, word);
	case 2: return fake_io(run, KVM_EXIT_IO_IN, 0x71, 2, 1, NULL);
	case 3: return fake_exit(run, KVM_EXIT_HLT);
	case 4: return fake_exit(run, KVM_EXIT_INTR);
	case 5: return fake_event(run, KVM_SYSTEM_EVENT_SHUTDOWN);
	default: return GUEST_RUNS;
	}
}

static void assert_access(unsigned int i, bool is_mmio, uint64_t addr,
			  bool is_write, unsigned int size, const void *data)
{
	const struct access *a = &fake.log[i];

	assert_true(i < fake.n_log);
	assert_int_equal(a->mmio, is_mmio);
	assert_int_equal(a->addr, addr);
	assert_int_equal(a->is_write, is_write);
	assert_int_equal(a->size, size);
	if (data)
		assert_memory_equal(a->data, data, size);
}

/* What KVM handed the guest at its i-th completion. */
static void assert_done(unsigned int i, const void *data, unsigned int len)
{
	const struct completion *d = &fake.cpu[0].done[i];

	assert_true(i < fake.cpu[0].n_done);
	assert_int_equal(d->len, len);
	assert_memory_equal(d->data, data, len);
}

/*
 * Run one vCPU on script until it ends the VM, which must happen once,
 * with status and why; stop and free it (the fake keeps what it saw).
 */
static void run_to_end(fake_script *script, int status, const char *why)
{
	struct vcpus *set = start(1, script, NULL);

	WAIT_FOR(fake.exits > 0);
	vcpus_stop(set);
	vcpus_destroy(set);
	assert_int_equal(fake.exits, 1);
	assert_int_equal(fake.status, status);
	assert_string_equal(fake.why, why);
}

static void test_io(void **state)
{
	const struct fake_cpu *c = &fake.cpu[0];

	/* The power-off ends the VM and is the last KVM_RUN. */
	run_to_end(script_io, 0, "guest powered off");
	assert_int_equal(c->runs, 6);
	assert_int_equal(c->immediate, 0);
	/* Each element of the string OUT on its own, in order. */
	assert_int_equal(fake.n_log, 5);
	assert_access(0, false, 0x3f8, true, 1, "a");
	assert_access(1, false, 0x3f8, true, 1, "b");
	assert_access(2, false, 0x3f8, true, 1, "c");
	assert_access(3, false, 0xcfc, true, 4, "\x78\x56\x34\x12");
	assert_access(4, false, 0x71, false, 2, NULL);
	/* What the handler read reached the guest at the next KVM_RUN. */
	assert_int_equal(c->n_done, 1);
	assert_done(0, "\x40\x41", 2);
}

/* A write and a read to a device, a read of nothing, a reset. */
static int script_mmio(struct kvm_run *run, unsigned int step)
{
	switch (step) {
	case 0: return fake_mmio(run, 0xe0001000, true, 4, "\xef\xbe\xad\xde");
	case 1: return fake_mmio(run, 0xe0000010, false, 2, NULL);
	case 2: return fake_mmio(run, 0xfed00000, false, 8, NULL);
	case 3: return fake_exit(run, KVM_EXIT_SHUTDOWN);
	default: return GUEST_RUNS;
	}
}

static void test_mmio(void **state)
{
	run_to_end(script_mmio, 0, "guest reset");
	assert_int_equal(fake.cpu[0].runs, 4);
	assert_int_equal(fake.n_log, 3);
	assert_access(0, true, 0xe0001000, true, 4, "\xef\xbe\xad\xde");
	assert_access(1, true, 0xe0000010, false, 2, NULL);
	assert_access(2, true, 0xfed00000, false, 8, NULL);
	/* The device's answer, then all ones where nothing answers. */
	assert_int_equal(fake.cpu[0].n_done, 2);
	assert_done(0, "\x11\x22", 2);
	assert_done(1, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
}

/*
 * How vCPU 1's first KVM_RUN ends the VM (an exit with its detail, or
 * KVM_RUN failing with run_error), and the line that says so.
 */
static const struct end_case {
	uint32_t reason;
	uint64_t detail;	/* event type, suberror, hardware reason */
	int run_error;
	int status;
	const char *why;
} end_cases[] = {
	{ KVM_EXIT_SHUTDOWN, 0, 0, 0, "guest reset" },
	{ KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_SHUTDOWN, 0, 0,
	  "guest powered off" },
	{ KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_RESET, 0, 0, "guest reset" },
	{ KVM_EXIT_SYSTEM_EVENT, KVM_SYSTEM_EVENT_CRASH, 0, 1,
	  "vcpu 1: guest crashed" },
	{ KVM_EXIT_SYSTEM_EVENT, 42, 0, 1,
	  "vcpu 1: unexpected system event 42" },
	{ KVM_EXIT_INTERNAL_ERROR, KVM_INTERNAL_ERROR_EMULATION, 0, 1,
	  "vcpu 1: KVM internal error 1 (emulation failure) at rip 0xfff0" },
	{ KVM_EXIT_INTERNAL_ERROR, 77, 0, 1,
	  "vcpu 1: KVM internal error 77 (unknown) at rip 0xfff0" },
	{ KVM_EXIT_FAIL_ENTRY, 0x80000021, 0, 1,
	  "vcpu 1: VM entry failed, hardware reason 0x80000021" },
	{ 200, 0, 0, 1, "vcpu 1: unexpected KVM exit reason 200" },
	{ 0, 0, EFAULT, 1, "vcpu 1: KVM_RUN: Bad address" },
};

static const struct end_case *end_case;

static int script_end(struct kvm_run *run, unsigned int step)
{
	const struct end_case *e = end_case;

	if (step > 0)
		return GUEST_RUNS;
	if (e->run_error)
		return -e->run_error;
	if (e->reason == KVM_EXIT_SYSTEM_EVENT)
		return fake_event(run, (uint32_t)e->detail);
	if (e->reason == KVM_EXIT_INTERNAL_ERROR)
		run->internal.suberror = (uint32_t)e->detail;
	else if (e->reason == KVM_EXIT_FAIL_ENTRY)
		run->fail_entry.hardware_entry_failure_reason = e->detail;
	return fake_exit(run, e->reason);
}

/*
 * Each ends the VM in one line; vCPU 1 never enters KVM_RUN again, vCPU 0
 * runs on until stopped, and a pause (a snapshot of the ended VM) still
 * finds every vCPU parked.
 */
static void test_ends(void **state)
{
	for (size_t i = 0; i < sizeof(end_cases) / sizeof(end_cases[0]); i++) {
		struct vcpus *set;

		setup(state);
		end_case = &end_cases[i];
		set = start(2, fake_guest_runs, script_end);
		WAIT_FOR(fake.exits > 0 && fake.cpu[0].in_guest);
		assert_int_equal(fake.status, end_case->status);
		assert_string_equal(fake.why, end_case->why);
		assert_int_equal(vcpus_pause(set), 0);
		assert_false(fake.cpu[0].in_guest);
		vcpus_resume(set);
		WAIT_FOR(fake.cpu[0].in_guest);
		vcpus_stop(set);
		assert_int_equal(fake.exits, 1);
		assert_int_equal(fake.cpu[1].runs, 1);
		vcpus_destroy(set);
		teardown(state);
	}
}

/* KVM_RUN interrupted or to be retried: run again, nothing ends. */
static int script_retry(struct kvm_run *run, unsigned int step)
{
	switch (step) {
	case 0: return -EINTR;
	case 1: return -EAGAIN;
	case 2: return fake_exit(run, KVM_EXIT_SHUTDOWN);
	default: return GUEST_RUNS;
	}
}

static void test_retry(void **state)
{
	run_to_end(script_retry, 0, "guest reset");
	assert_int_equal(fake.cpu[0].runs, 3);
}

/* No signal mask for KVM_RUN: a kick could never reach it, so no KVM_RUN. */
static void test_no_signal_mask(void **state)
{
	struct vcpus *set;

	fake.mask_error = EINVAL;
	set = start(1, fake_guest_runs, NULL);
	WAIT_FOR(fake.exits > 0);
	assert_int_equal(fake.status, 1);
	assert_string_equal(fake.why, "vcpu 0: KVM_SET_SIGNAL_MASK: Invalid "
			    "argument");
	assert_int_equal(vcpus_pause(set), 0);
	vcpus_stop(set);
	assert_int_equal(fake.cpu[0].runs, 0);
	vcpus_destroy(set);
}

/* ---- pause and resume --------------------------------------------------- */

static void test_pause(void **state)
{
	struct vcpus *set = start(2, fake_guest_runs, fake_guest_runs);
	unsigned int runs[2];

	WAIT_FOR(fake.cpu[0].in_guest && fake.cpu[1].in_guest);
	assert_false(vcpus_paused(set));
	assert_int_equal(vcpus_pause(set), 0);
	/* Parked: out of KVM_RUN, and none enters it while paused. */
	assert_true(vcpus_paused(set));
	pthread_mutex_lock(&fake_lock);
	assert_false(fake.cpu[0].in_guest || fake.cpu[1].in_guest);
	runs[0] = fake.cpu[0].runs;
	runs[1] = fake.cpu[1].runs;
	pthread_mutex_unlock(&fake_lock);
	usleep(50000);
	pthread_mutex_lock(&fake_lock);
	assert_int_equal(fake.cpu[0].runs, runs[0]);
	assert_int_equal(fake.cpu[1].runs, runs[1]);
	pthread_mutex_unlock(&fake_lock);
	/* Resumed: both back in the guest, without immediate_exit. */
	vcpus_resume(set);
	assert_false(vcpus_paused(set));
	WAIT_FOR(fake.cpu[0].in_guest && fake.cpu[1].in_guest);
	assert_int_equal(fake.cpu[0].immediate + fake.cpu[1].immediate, 0);
	assert_int_equal(fake.exits, 0);
	vcpus_stop(set);
	assert_int_equal(vcpus_pause(set), -ESHUTDOWN);
	vcpus_destroy(set);
}

/* An IN whose handler is still at work when the pause comes. */
static int script_in(struct kvm_run *run, unsigned int step)
{
	return step == 0 ? fake_io(run, KVM_EXIT_IO_IN, 0x60, 1, 1, NULL) :
			   GUEST_RUNS;
}

/*
 * KVM finishes an exit (the IN's value into RAX) only at the next KVM_RUN:
 * a vCPU paused with an exit open enters KVM_RUN once with immediate_exit
 * set before it parks, so that the saved registers are whole.
 */
static void test_pause_completes_exit(void **state)
{
	const struct fake_cpu *c = &fake.cpu[0];
	struct vcpus *set;

	fake.pio_waits_for_pause = true;
	set = start(1, script_in, NULL);
	WAIT_FOR(fake.in_pio);
	assert_int_equal(vcpus_pause(set), 0);
	pthread_mutex_lock(&fake_lock);
	assert_int_equal(c->runs, 2);
	assert_int_equal(c->immediate, 1);
	assert_int_equal(c->n_done, 1);
	assert_done(0, "\x40", 1);
	pthread_mutex_unlock(&fake_lock);
	vcpus_resume(set);
	WAIT_FOR(c->in_guest);
	assert_int_equal(c->runs, 3);
	assert_int_equal(c->n_done, 1);		/* completed once */
	vcpus_stop(set);
	vcpus_destroy(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_signal_mask, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pause, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_completes_exit,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}

