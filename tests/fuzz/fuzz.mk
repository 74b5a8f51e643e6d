# tests/fuzz: a libFuzzer target for every parser of untrusted bytes
# (tests/fuzz/README.md). Built with clang, AddressSanitizer and UBSan in
# build/fuzz, apart from the gcc objects.
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_RUNS=N]  fuzz each target in turn and
#                                              print a table; a crash fails
#   make test-fuzz    replay the corpora and fuzz each target briefly (TAP;
#                     part of make test)
#   make fuzz-build   build the targets only
#   make fuzz-seeds   rewrite tests/fuzz/corpus from the library's encoders

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?=
FUZZ_BUILD   := build/fuzz

FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=gnu11 -O1 -g -D_GNU_SOURCE -MMD -MP $(WARNINGS) \
	       -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
	       -I. -I$(FUZZ_BUILD) $(DEP_CFLAGS)

# Every target reads its format as on disk; those whose format carries a
# checksum are built a second time with FUZZ_FIX (fuzz.h).
FUZZ_TARGETS := manifest state snapdir frame chunk journal storebin control \
		pack
FUZZ_FIXED   := manifest snapdir frame chunk journal storebin pack
FUZZ_BINS    := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS) \
		  $(addsuffix _fix,$(FUZZ_FIXED)))

FUZZ_PROTO_C := $(patsubst proto/%.proto,$(FUZZ_BUILD)/proto/%.pb-c.c,$(PROTOS))
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(LIBSNAP_SRCS)) \
		 $(FUZZ_PROTO_C:.c=.o)
FUZZ_LIBSNAP := $(FUZZ_BUILD)/libsnap.a
FUZZ_COMMON  := $(FUZZ_BUILD)/tests/fuzz/fuzz.o
# snapctl inspect and verify, for the snapshot directory target.
FUZZ_SNAPCTL := $(patsubst %.c,$(FUZZ_BUILD)/%.o,\
		$(filter-out tools/snapctl/main.c,$(SNAPCTL_SRCS)))
FUZZ_HARNESS := $(patsubst %,$(FUZZ_BUILD)/tests/fuzz/fuzz_%.o,\
		$(FUZZ_TARGETS) $(addsuffix _fix,$(FUZZ_FIXED)))

$(FUZZ_BUILD)/proto/%.pb-c.c $(FUZZ_BUILD)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(@D)
	$(PROTOC) -Iproto --c_out=$(FUZZ_BUILD)/proto $<

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/%.o: $(FUZZ_BUILD)/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/tests/fuzz/%_fix.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFUZZ_FIX=1 -c -o $@ $<

# Where the fixtures of tests/compat are found at run time.
$(FUZZ_COMMON): FUZZ_CFLAGS += -DFUZZ_SRCDIR='"$(CURDIR)"'

$(FUZZ_LIBSNAP): $(FUZZ_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_COMMON) \
		      $(FUZZ_LIBSNAP)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $(filter %.o,$^) \
		$(FUZZ_LIBSNAP) $(DEP_LIBS) -lpthread

$(FUZZ_BUILD)/fuzz_snapdir $(FUZZ_BUILD)/fuzz_snapdir_fix: $(FUZZ_SNAPCTL)
$(FUZZ_BUILD)/fuzz_control: $(FUZZ_BUILD)/vmm/control_req.o

$(FUZZ_LIB_OBJS) $(FUZZ_HARNESS) $(FUZZ_COMMON) $(FUZZ_SNAPCTL): \
	| $(FUZZ_PROTO_C:.c=.h)

.PHONY: fuzz fuzz-build fuzz-maybe test-fuzz fuzz-seeds
fuzz-build: $(FUZZ_BINS)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) sh tests/fuzz/run.sh fuzz "$(FUZZ_SECONDS)" \
		"$(FUZZ_RUNS)" $(notdir $(FUZZ_BINS))

# make test builds the targets only where clang links a libFuzzer target;
# elsewhere tests/fuzz/run.sh reports the step skipped, loudly.
fuzz-maybe:
	@if sh tests/fuzz/run.sh check "$(FUZZ_CC)" >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory fuzz-build; fi

test-fuzz: fuzz-maybe
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_CC=$(FUZZ_CC) sh tests/fuzz/run.sh test \
		$(notdir $(FUZZ_BINS))

# The seed corpora come from the library's own encoders (tests/fuzz/mkseeds.c).
$(BUILD)/tests/fuzz-mkseeds: $(BUILD)/tests/fuzz/mkseeds.o $(TESTLIB_OBJS) \
			     $(LIBSNAP)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)
$(BUILD)/tests/fuzz/mkseeds.o: | $(PROTO_H)

fuzz-seeds: $(BUILD)/tests/fuzz-mkseeds
	$(BUILD)/tests/fuzz-mkseeds tests/fuzz/corpus

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
