# snapfs: one non-recursive Makefile for the whole tree.
#
#   make            build build/snapvm, build/snapfs, build/snapctl, libsnap
#   make test       install missing packages, build, run every test
#   make test SAN=1 the same under AddressSanitizer + UBSan (in build/san/)
#   make test-linux only the Linux guest's tests (in the rig without KVM)
#   make demo       install missing packages, build, show what works
#   make bench      run the benchmarks (tests/bench/*.sh), print their tables
#   make check-proto  fail when a committed .proto field changed
#   make fuzz       fuzz every parser of untrusted bytes, print a table
#                   (tests/fuzz/fuzz.mk has the rest)
#   make soak-fsx   a long snapfsx run over real mounts (tests/fsx/fsx.mk)
#   make WERROR=0   warnings stay warnings

CC      ?= gcc
PROTOC  ?= protoc-c
SAN     ?= 0
WERROR  ?= 1

BUILD   := build
ifeq ($(SAN),1)
BUILD   := build/san
endif

WARNINGS := -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wundef \
	    -Wshadow -Wformat=2 -Wpointer-arith -Wvla -Wno-unused-parameter
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

PKGS     := libprotobuf-c libzstd libcrypto
DEP_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# librados (the RADOS chunk backend): Debian's librados-dev has no .pc.
DEP_LIBS   += -lrados

CFLAGS   := -std=gnu11 -O2 -g -D_GNU_SOURCE -MMD -MP $(WARNINGS) \
	    -I. -I$(BUILD) $(DEP_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  := $(EXTRA_LDFLAGS)
ifeq ($(SAN),1)
CFLAGS   += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
	    -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif

.DEFAULT_GOAL := all
.PHONY: all install uninstall deps test run-tests test-linux run-test-linux demo run-demo bench \
	check-proto proto-lock clean
.SECONDARY:

# ---- generated protobuf-c code ---------------------------------------------

PROTOS     := $(wildcard proto/*.proto)
PROTO_C    := $(patsubst proto/%.proto,$(BUILD)/proto/%.pb-c.c,$(PROTOS))
PROTO_H    := $(PROTO_C:.c=.h)

$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(@D)
	$(PROTOC) -Iproto --c_out=$(BUILD)/proto $<

# The "future" schemas of tests/proto extend ours with fields of every kind.
FUTURE_PROTOS := $(wildcard tests/proto/*.proto)
FUTURE_C      := $(patsubst tests/proto/%.proto,$(BUILD)/tproto/%.pb-c.c,$(FUTURE_PROTOS))

$(BUILD)/tproto/%.pb-c.c $(BUILD)/tproto/%.pb-c.h: tests/proto/%.proto
	@mkdir -p $(@D)
	$(PROTOC) -Itests/proto --c_out=$(BUILD)/tproto $<

# ---- compile rules -----------------------------------------------------------

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: $(BUILD)/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# ---- libsnap -----------------------------------------------------------------

LIBSNAP_SRCS := $(wildcard snapshot/format/*.c snapshot/store/*.c)
LIBSNAP_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(LIBSNAP_SRCS)) $(PROTO_C:.c=.o)
LIBSNAP      := $(BUILD)/libsnap.a

$(LIBSNAP): $(LIBSNAP_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# ---- programs ----------------------------------------------------------------

SNAPCTL_SRCS := $(wildcard tools/snapctl/*.c)
SNAPVM_SRCS  := $(wildcard vmm/*.c vmm/boot/*.c vmm/dev/*.c vmm/pci/*.c \
			vmm/virtio/*.c)
SNAPFS_SRCS  := $(wildcard fs/*.c)
TOOL_SRCS    := tools/protolock.c

$(BUILD)/snapctl: $(patsubst %.c,$(BUILD)/%.o,$(SNAPCTL_SRCS)) $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

$(BUILD)/snapvm: $(patsubst %.c,$(BUILD)/%.o,$(SNAPVM_SRCS)) $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lpthread

$(BUILD)/snapfs: $(patsubst %.c,$(BUILD)/%.o,$(SNAPFS_SRCS)) $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) $(shell pkg-config --libs fuse3 2>/dev/null)
$(patsubst %.c,$(BUILD)/%.o,$(SNAPFS_SRCS)): CFLAGS += $(shell pkg-config --cflags fuse3 2>/dev/null)

$(BUILD)/protolock: $(BUILD)/tools/protolock.o $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

PROGRAMS := $(BUILD)/snapctl $(BUILD)/snapvm $(BUILD)/snapfs
all: $(PROGRAMS)

# make install [PREFIX=/usr/local] [DESTDIR=]: the programs and their
# manual pages (docs/man; tests/integration/manuals.sh checks them).
PREFIX ?= /usr/local
BINDIR := $(PREFIX)/bin
MANDIR := $(PREFIX)/share/man
MAN1   := docs/man/snapvm.1 docs/man/snapctl.1
MAN8   := docs/man/snapfs.8

install: $(PROGRAMS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(BINDIR)
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1
	install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGRAMS))) \
	      $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1))) \
	      $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8)))

# ---- tests -------------------------------------------------------------------

TESTLIB_SRCS := tests/lib/testutil.c
UNIT_SRCS    := $(filter-out $(TESTLIB_SRCS),$(wildcard tests/unit/test_*.c))
UNIT_BINS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TESTLIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(TESTLIB_SRCS))

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(TESTLIB_OBJS) $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lcmocka

# The memory store's tests share a fixture (tests/lib/store_fx.c).
STORE_FX_OBJ    := $(BUILD)/tests/lib/store_fx.o
STORE_UNIT_BINS := $(filter-out $(BUILD)/tests/test_store_ws,\
		   $(filter $(BUILD)/tests/test_store%,$(UNIT_BINS)))

$(STORE_UNIT_BINS): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(STORE_FX_OBJ) \
		    $(TESTLIB_OBJS) $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lcmocka

# The compatibility test decodes messages of the extended schemas.
$(BUILD)/tests/unit/test_future.o: $(FUTURE_C:.c=.h)
$(BUILD)/tests/test_future: $(FUTURE_C:.c=.o)

# snapvm's unit tests link the snapvm objects they test (none needs KVM),
# before libsnap, which those objects use.
VMM_TESTED_OBJS := $(patsubst %.c,$(BUILD)/%.o,vmm/opts.c vmm/mem.c \
		   vmm/cpuid.c vmm/ioport.c vmm/term.c vmm/image.c \
		   vmm/kvm.c vmm/vstate.c vmm/vstate_vm.c vmm/vstate_conv.c \
		   vmm/dev/uart8250.c \
		   vmm/dev/rtc.c vmm/dev/i8042.c $(wildcard vmm/boot/*.c))
VMM_UNIT_BINS   := $(filter $(BUILD)/tests/test_vmm_%,$(UNIT_BINS))

$(VMM_UNIT_BINS): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o \
		  $(VMM_TESTED_OBJS) $(TESTLIB_OBJS) $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lcmocka

# The vCPU test plays KVM and the VM (vcpu_fake.c) through vcpu.c's
# struct vcpu_host.
$(BUILD)/tests/test_vmm_vcpu: $(BUILD)/vmm/vcpu.o \
			      $(BUILD)/tests/unit/vcpu_fake.o

# The virtio test drives PCI bus 0 and the virtio-pci transport as a guest
# driver would, in anonymous guest RAM (no KVM).
VIRTIO_TESTED_OBJS := $(patsubst %.c,$(BUILD)/%.o,vmm/virtio/virtio.c \
		      vmm/pci/pci.c vmm/mem.c vmm/opts.c)

$(BUILD)/tests/test_virtio: $(BUILD)/tests/unit/test_virtio.o \
			    $(VIRTIO_TESTED_OBJS) $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lcmocka -lpthread

# The vsock test drives virtio-vsock from both ends, the guest's driver and
# the host's programs, with its device thread in between (no KVM).
VSOCK_TESTED_OBJS := $(VIRTIO_TESTED_OBJS) $(patsubst %.c,$(BUILD)/%.o,\
		     vmm/dev/virtio_vsock.c vmm/dev/vsock_conn.c \
		     vmm/dev/vsock_pkt.c)

$(BUILD)/tests/test_vsock: $(BUILD)/tests/unit/test_vsock.o \
			   $(VSOCK_TESTED_OBJS) $(TESTLIB_OBJS) $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lcmocka -lpthread

# The control socket's test links control.c (and its request parser)
# with a fake VM of its own.
$(BUILD)/tests/test_control: $(BUILD)/tests/unit/test_control.o \
			     $(BUILD)/vmm/control.o $(BUILD)/vmm/control_req.o \
			     $(TESTLIB_OBJS) $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lcmocka -lpthread

TEST_BINS := $(UNIT_BINS) $(BUILD)/protolock $(BUILD)/tests/mksnap \
	     $(BUILD)/tests/chunkctl \
	     $(BUILD)/tests/snapedit

# snapfsx, the exerciser of a real mount, and make soak-fsx.
include tests/fsx/fsx.mk

# ---- guests ------------------------------------------------------------------

# Debian's stock kernel (downloaded, never installed) for Linux guests and
# for the rig (tests/rig/rig.sh), which gives tests a real KVM anywhere.
GUEST_LINUX := build/guest/vmlinuz

$(GUEST_LINUX): tools/fetch-linux.sh
	@sh tools/fetch-linux.sh build/guest

# The Linux guest's modules, from the same package (guest.order names them
# in load order).
GUEST_MODULES := build/guest/modules/guest.order

$(GUEST_MODULES): $(GUEST_LINUX)
	@sh tools/fetch-linux.sh build/guest

.PHONY: guest
guest: $(GUEST_LINUX) $(GUEST_MODULES)

# The test guest (build/guest/testguest.elf).
include tests/guest/guest.mk

# The Linux guest's agent (tests/guest/agent/): static, so that the same
# file runs in the guest (serve) and on the host or in the rig (exec, put,
# get). Never sanitized: it is not linked with the host's objects.
AGENT_SRCS  := $(wildcard tests/guest/agent/*.c)
GUEST_AGENT := $(BUILD)/guest/snapfs-agent

$(GUEST_AGENT): $(AGENT_SRCS) tests/guest/agent/agent.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -D_GNU_SOURCE $(WARNINGS) -I. -static -s -o $@ \
		$(AGENT_SRCS)

# The Linux guest's initrd: static busybox, tests/guest/linux-init.sh as
# /init, the agent and the modules; and its ext4 root disk (root=/dev/vda).
GUEST_INITRD := $(BUILD)/guest/initrd.cpio.gz
GUEST_ROOTFS := $(BUILD)/guest/rootfs.ext4
GUEST_IMAGE_DEPS := tests/guest/linux-lib.sh $(GUEST_AGENT) $(GUEST_MODULES) \
		    $(wildcard /bin/busybox)

$(GUEST_INITRD): tests/guest/mkinitrd.sh tests/guest/linux-init.sh \
		 $(GUEST_IMAGE_DEPS)
	@sh tests/guest/mkinitrd.sh $@ $(GUEST_AGENT) $(dir $(GUEST_MODULES))

$(GUEST_ROOTFS): tests/guest/mkrootfs.sh tests/guest/rootfs-init.sh \
		 $(GUEST_IMAGE_DEPS)
	@sh tests/guest/mkrootfs.sh $@ $(GUEST_AGENT) $(dir $(GUEST_MODULES))

guest: $(GUEST_INITRD) $(GUEST_ROOTFS) $(GUEST_AGENT)

# Linux booted by snapvm (in the rig where there is no /dev/kvm).
test-linux: deps
	@$(MAKE) --no-print-directory run-test-linux

run-test-linux: $(BUILD)/snapvm $(GUEST_LINUX) $(GUEST_INITRD)
	@BUILD=$(BUILD) sh tests/integration/linux_rig.sh

deps:
	@sh tools/deps.sh

test: deps
	@$(MAKE) --no-print-directory run-tests

run-tests: $(PROGRAMS) $(TEST_BINS) $(GUEST_LINUX) $(GUEST_ELF) \
	   $(GUEST_OUT)/patcheck $(GUEST_INITRD) $(GUEST_ROOTFS) $(GUEST_AGENT) \
	   fuzz-maybe
	@BUILD=$(BUILD) FUZZ_CC=$(FUZZ_CC) FUZZ_BINS="$(notdir $(FUZZ_BINS))" \
		sh tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory run-demo

# Benchmarks print tables; never part of make test (tests/bench/README.md).
bench: all guest
	@rc=0; for b in tests/bench/*.sh; do BUILD=$(BUILD) sh $$b || rc=1; done; exit $$rc

run-demo: $(PROGRAMS) $(BUILD)/tests/mksnap $(GUEST_ELF) $(GUEST_LINUX) \
	  $(GUEST_INITRD) $(GUEST_ROOTFS) $(GUEST_AGENT)
	@BUILD=$(BUILD) sh tools/demo.sh

# A small producer of synthetic snapshots for the demo and the tests.
$(BUILD)/tests/mksnap: $(BUILD)/tests/lib/mksnap.o $(TESTLIB_OBJS) $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

# Drives one chunk backend line by line, for tests/integration/rados.sh.
$(BUILD)/tests/chunkctl: $(BUILD)/tests/lib/chunkctl.o $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

# Makes a snapshot hostile in one way, for restore's refusals.
$(BUILD)/tests/snapedit: $(BUILD)/tests/lib/snapedit.o $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

check-proto: $(BUILD)/protolock
	$(BUILD)/protolock check proto/schema.lock

# Record new fields in the lock (it refuses changes to committed ones).
proto-lock: $(BUILD)/protolock
	$(BUILD)/protolock update proto/schema.lock

# The fuzz targets (tests/fuzz), built with clang in build/fuzz.
include tests/fuzz/fuzz.mk

clean:
	rm -rf build

# Everything that includes generated headers waits for them.
ALL_SRCS := $(LIBSNAP_SRCS) $(SNAPCTL_SRCS) $(SNAPVM_SRCS) $(SNAPFS_SRCS) \
	    $(TOOL_SRCS) $(UNIT_SRCS) $(TESTLIB_SRCS) tests/lib/store_fx.c \
	    tests/lib/mksnap.c \
	    tests/lib/chunkctl.c \
	    tests/lib/snapedit.c
$(patsubst %.c,$(BUILD)/%.o,$(ALL_SRCS)): | $(PROTO_H)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
