# runtime/runtime.mk — builds $(B)/libcnnrt.a (B = build unless set) and runs the runtime's tests.
# Included by the top-level Makefile, or by tests/runtime/Makefile on its own:
#     make -f tests/runtime/Makefile          (from the repository root)
# Targets: build/libcnnrt.a, runtime-test.  A program that links the library
# needs `-fopenmp $(CNNRT_LIBS)`.  Paths are relative to the repository root.

CC      ?= gcc
CFLAGS  ?= -O2 -g
B       ?= build
CNNRT_LIBS := -lz -lm
# _POSIX_C_SOURCE: fsync, fileno, getpid, isatty, clock_gettime, strtof under -std=c11.
# -fno-math-errno: no caller reads errno after a math function, and with it
# sqrtf is one instruction, so Adam's loop vectorizes (optim.c).
RT_CFLAGS := -std=c11 -Wall -Wextra -Wpedantic $(CFLAGS) -D_POSIX_C_SOURCE=200809L -fopenmp -fno-math-errno -iquote runtime

RUNTIME_SRC := $(wildcard runtime/*.c)
RUNTIME_OBJ := $(RUNTIME_SRC:runtime/%.c=$(B)/runtime/%.o)
RUNTIME_HDR := runtime/cnnrt.h runtime/rt.h

$(B)/runtime/%.o: runtime/%.c $(RUNTIME_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(RT_CFLAGS) -c $< -o $@
$(B)/libcnnrt.a: $(RUNTIME_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

# --- tests: Check suites and a hand-written fake model -----------------------
RT_TEST_DIR   := $(B)/tests/runtime
RT_CHECK_CFLAGS = $(shell pkg-config --cflags check)
RT_CHECK_LIBS   = $(shell pkg-config --libs check)
# The fake model in four builds: plain (cross-entropy), with input dropout,
# with an MSE loss, and with a wrong backward that gradcheck must catch.
RT_FAKES := fake fake_dropout fake_mse fake_bug
RT_FAKE_DEFS_fake :=
RT_FAKE_DEFS_fake_dropout := -DFAKE_DROPOUT
RT_FAKE_DEFS_fake_mse := -DFAKE_MSE
RT_FAKE_DEFS_fake_bug := -DFAKE_BUG
RT_FAKE_BINS := $(RT_FAKES:%=$(RT_TEST_DIR)/%)
RUNTIME_TEST_BINS := $(patsubst tests/runtime/%.c,$(RT_TEST_DIR)/%,$(wildcard tests/runtime/test_*.c))
RT_TEST_DEFS := -DFAKE_DIR='"$(abspath $(RT_TEST_DIR))"' -DFIXTURE_DIR='"$(abspath tests/runtime/fixtures)"' \
                -DTEST_SRC_DIR='"$(abspath tests/runtime)"'

$(RT_TEST_DIR)/%.o: tests/runtime/fake_model.c runtime/cnnrt.h
	@mkdir -p $(dir $@)
	$(CC) $(RT_CFLAGS) $(RT_FAKE_DEFS_$*) -c $< -o $@
$(RT_FAKE_BINS): $(RT_TEST_DIR)/%: $(RT_TEST_DIR)/%.o $(B)/libcnnrt.a
	$(CC) $(RT_CFLAGS) -o $@ $< $(B)/libcnnrt.a $(CNNRT_LIBS)
$(RUNTIME_TEST_BINS): $(RT_TEST_DIR)/%: tests/runtime/%.c tests/runtime/rt_test.h $(RT_TEST_DIR)/fake.o $(B)/libcnnrt.a $(RUNTIME_HDR)
	$(CC) $(RT_CFLAGS) $(RT_CHECK_CFLAGS) $(RT_TEST_DEFS) -iquote tests/runtime -o $@ $< $(RT_TEST_DIR)/fake.o \
	    $(B)/libcnnrt.a $(RT_CHECK_LIBS) $(CNNRT_LIBS)

.PHONY: runtime-test
runtime-test: $(RUNTIME_TEST_BINS) $(RT_FAKE_BINS)
	@status=0; for t in $(RUNTIME_TEST_BINS); do $$t || status=1; done; exit $$status
