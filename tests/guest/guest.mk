# The test guest: a freestanding x86-64 kernel booted through the PVH entry.
#
#   make guest                       build/guest/testguest.elf, and
#                                    build/guest/patcheck (host checker)
#   make -f tests/guest/guest.mk guest   the same, standalone
#
# Included by the top Makefile; it uses only its own GUEST_* variables (the
# guest is never built with the host's CFLAGS or sanitizers).

BUILD      ?= build
WERROR     ?= 1
GUEST_CC   ?= gcc
GUEST_LD   ?= ld

GUEST_SRC  := tests/guest
GUEST_OUT  := $(BUILD)/guest
GUEST_ELF  := $(GUEST_OUT)/testguest.elf

GUEST_WARNINGS := -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes \
		  -Wundef -Wshadow -Wpointer-arith -Wvla
ifeq ($(WERROR),1)
GUEST_WARNINGS += -Werror
endif

# Freestanding, linked at its physical address (small code model, no PIC).
# -mgeneral-regs-only: no C code touches SSE/AVX registers, which the worker
# keeps live; -ffixed-r12..r15: nor r12-r15 (see regs.S and work.c).
# --param=min-pagesize=0: the BIOS data area at 0x40e is a real address.
GUEST_CFLAGS := -std=gnu11 -O2 -g -ffreestanding -nostdlib -fno-pic -fno-pie \
		-mcmodel=small -mno-red-zone -mgeneral-regs-only \
		-ffixed-r12 -ffixed-r13 -ffixed-r14 -ffixed-r15 \
		-fno-stack-protector -fno-asynchronous-unwind-tables \
		-fcf-protection=none --param=min-pagesize=0 \
		-MMD -MP $(GUEST_WARNINGS) -I.
GUEST_ASFLAGS := -MMD -MP -I.
GUEST_LDFLAGS := -m elf_x86_64 -nostdlib -static --build-id=none \
		 -z max-page-size=0x1000 -z noexecstack -T $(GUEST_SRC)/guest.ld

GUEST_OBJS := $(patsubst $(GUEST_SRC)/%.S,$(GUEST_OUT)/%.o,$(wildcard $(GUEST_SRC)/*.S)) \
	      $(patsubst $(GUEST_SRC)/%.c,$(GUEST_OUT)/%.o,$(wildcard $(GUEST_SRC)/*.c))

.PHONY: guest
guest: $(GUEST_ELF) $(GUEST_OUT)/patcheck

$(GUEST_OUT)/%.o: $(GUEST_SRC)/%.c
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OUT)/%.o: $(GUEST_SRC)/%.S
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_ASFLAGS) -c -o $@ $<

$(GUEST_ELF): $(GUEST_OBJS) $(GUEST_SRC)/guest.ld
	$(GUEST_LD) $(GUEST_LDFLAGS) -o $@ $(GUEST_OBJS)

# The host's checker of the guest's memory pattern; static, so that it runs
# inside the rig as it is.
$(GUEST_OUT)/patcheck: $(GUEST_SRC)/check/patcheck.c $(GUEST_SRC)/pattern.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -static $(GUEST_WARNINGS) -I. -o $@ $<

# New flags rebuild everything.
$(GUEST_OBJS): $(GUEST_SRC)/guest.mk

-include $(GUEST_OBJS:.o=.d)
