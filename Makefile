# cnnc — one Makefile for the compiler, the runtime, the examples and the tests.
#   make          build/cnnc and build/libcnnrt.a (installs missing Debian packages first)
#   make test     every test suite (Check unit tests, diagnostics, summaries, generated code)
#   make demo     compile examples/fashion.cnn, train it on Fashion-MNIST, show the table
# Generated files (flex, bison, objects, executables) all go to build/.

CC      ?= gcc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wpedantic
ALL_CFLAGS := -std=c11 -D_DEFAULT_SOURCE $(WARN) $(CFLAGS)
B       := build
DEPS_STAMP := $(B)/.deps-build
TEST_DEPS_STAMP := $(B)/.deps-test

COMPILER_SRC := $(filter-out compiler/main.c,$(wildcard compiler/*.c))
COMPILER_OBJ := $(COMPILER_SRC:compiler/%.c=$(B)/compiler/%.o) $(B)/compiler/cnn.tab.o $(B)/compiler/lex.yy.o $(B)/compiler/cnnrt_h.o
GRAMMAR_H    := $(B)/cnn.tab.h $(B)/lex.yy.h

.PHONY: all test demo bench clean deps test-deps unit-test diag-test summary-test
all: $(B)/cnnc $(if $(wildcard runtime/runtime.mk),$(B)/libcnnrt.a)

# --- set-up: Debian packages the build needs (apt-get, once) ---------------
$(DEPS_STAMP): scripts/install-deps.sh
	@mkdir -p $(B)
	bash scripts/install-deps.sh build
	@touch $@
$(TEST_DEPS_STAMP): scripts/install-deps.sh
	@mkdir -p $(B)
	bash scripts/install-deps.sh test
	@touch $@
deps: $(DEPS_STAMP)
test-deps: $(TEST_DEPS_STAMP)

# --- the grammar -----------------------------------------------------------
$(B)/cnn.tab.c $(B)/cnn.tab.h: grammar/cnn.y | $(DEPS_STAMP)
	@mkdir -p $(B)
	bison -Wall -Werror --defines=$(B)/cnn.tab.h -o $(B)/cnn.tab.c $<
$(B)/lex.yy.c $(B)/lex.yy.h: grammar/cnn.l $(B)/cnn.tab.h | $(DEPS_STAMP)
	flex --header-file=$(B)/lex.yy.h -o $(B)/lex.yy.c $<

# --- the compiler ----------------------------------------------------------
$(B)/compiler/%.o: compiler/%.c $(GRAMMAR_H) $(wildcard compiler/*.h runtime/cnnrt.h) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -iquote compiler -iquote $(B) -iquote runtime -c $< -o $@
# flex's and bison's output is not ours to fix: only the warnings they can't avoid are off.
$(B)/compiler/cnn.tab.o $(B)/compiler/lex.yy.o: $(B)/compiler/%.o: $(B)/%.c $(GRAMMAR_H) $(wildcard compiler/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-unused-function -Wno-sign-compare -iquote compiler -iquote $(B) -c $< -o $@
$(B)/libcnnc.a: $(COMPILER_OBJ)
	ar rcs $@ $^
$(B)/cnnc: $(B)/compiler/main.o $(B)/libcnnc.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ -lm

# --- the runtime (runtime/runtime.mk defines build/libcnnrt.a) -------------
-include runtime/runtime.mk

# --- tests -----------------------------------------------------------------
-include tests/tests.mk

# Speed against PyTorch, measured side by side (bench/README.md); not part of make test.
BENCH_DEPS_STAMP := $(B)/.deps-bench
$(BENCH_DEPS_STAMP): scripts/install-deps.sh
	@mkdir -p $(B)
	bash scripts/install-deps.sh bench
	@touch $@
bench: all $(BENCH_DEPS_STAMP)
	/usr/bin/python3 bench/bench.py $(if $(MODELS),--models $(MODELS))

demo: all $(TEST_DEPS_STAMP)
	bash scripts/demo.sh

clean:
	rm -rf $(B)

# cnnrt.h is embedded in cnnc as a string, so emitted files need nothing beside them.
$(B)/compiler/cnnrt_h.c: runtime/cnnrt.h
	@mkdir -p $(dir $@)
	{ echo 'const char cnnrt_h_text[] ='; sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; echo ';'; } > $@
$(B)/compiler/cnnrt_h.o: $(B)/compiler/cnnrt_h.c
	$(CC) $(ALL_CFLAGS) -Wno-overlength-strings -c $< -o $@
