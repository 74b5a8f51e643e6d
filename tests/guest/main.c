/*
 * Ring-0 sequencing of the test guest.
 *
 * CPU 0 (kmain): serial, start_info and command line, descriptor tables, the
 * timer, the other CPUs, the worker's memory region; then ring 3. Each other
 * CPU (ap_main): its descriptor tables and SIMD state, count itself up, ring 3.
 * Ring 0 is emulated and slow on PVM-based KVM: everything here runs once.
 */
#include "tests/guest/guest.h"

uint8_t kernel_stacks[MAX_CPUS][KSTACK_SIZE] __attribute__((aligned(16)));
static uint8_t user_stacks[MAX_CPUS][USTACK_SIZE] __attribute__((aligned(16)));

static struct boot_info boot_info;
static struct options options;

static uint64_t kernel_stack_top(unsigned int cpu)
{
	return (uint64_t)(uintptr_t)&kernel_stacks[cpu][KSTACK_SIZE];
}

static uint64_t user_stack_top(unsigned int cpu)
{
	return (uint64_t)(uintptr_t)&user_stacks[cpu][USTACK_SIZE];
}

void kmain(uint32_t start_info_paddr)
{
	unsigned int ncpus;

	serial_init();
	bootinfo_parse(start_info_paddr, &boot_info);
	cmdline_parse(boot_info.cmdline, &options);

	idt_init();
	cpu_init(0, kernel_stack_top(0));

	/* The timer runs from here on: smp_boot's timeouts count its ticks. */
	timer_init();
	lapic_init_bsp();
	__asm__ volatile("sti");

	ncpus = smp_boot(&boot_info, options.cpus, kernel_stack_top);
	work_setup(&boot_info, &options, ncpus);
	cpu_enter_user(0, work_main, user_stack_top(0), 1);
}

void ap_main(unsigned int cpu)
{
	cpu_init(cpu, kernel_stack_top(cpu));
	__atomic_add_fetch(&smp_cpus_up, 1, __ATOMIC_SEQ_CST);
	/* Interrupts stay off on APs: only CPU 0 takes the timer. */
	cpu_enter_user(cpu, work_main, user_stack_top(cpu), 0);
}
