# tests/fsx: snapfsx, a filesystem exerciser over a real snapfs mount
# (tests/fsx/snapfsx.c says what it does and checks).
#
#   make $(BUILD)/tests/snapfsx   build it (make test builds and runs it
#                                 briefly: tests/integration/snapfsx.sh)
#   make soak-fsx [SOAK_OPS=N]    the long run: several chunk sizes, a
#                                 small chunk cache, a table at the end

FSX_SRCS := $(wildcard tests/fsx/*.c)
FSX_BIN  := $(BUILD)/tests/snapfsx
SOAK_OPS ?= 1000000

$(FSX_BIN): $(patsubst %.c,$(BUILD)/%.o,$(FSX_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^

TEST_BINS += $(FSX_BIN)

.PHONY: soak-fsx
soak-fsx: $(PROGRAMS) $(FSX_BIN)
	@BUILD=$(BUILD) SOAK_OPS=$(SOAK_OPS) sh tests/fsx/soak.sh
