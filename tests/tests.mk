# tests/tests.mk — `make test`: every suite, each printing its own summary line.
# Included from the top-level Makefile.

CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)
UNIT_SRC  := $(wildcard tests/unit/*.c)
UNIT_BIN  := $(B)/tests/unit-tests

test: all $(TEST_DEPS_STAMP) unit-test diag-test summary-test examples-test course-test $(if $(wildcard runtime/runtime.mk),runtime-test)
	@echo "make test: all suites passed"

diag-test: $(B)/cnnc
	bash tests/run-diag.sh $(B)/cnnc

# Layer tables against the `# expect-stdout:` lines worked by hand in tests/summary/.
summary-test: $(B)/cnnc
	bash tests/run-summary.sh $(B)/cnnc

# Every example and reference model must check, summarize and emit C that compiles warning-free
# under gcc and clang with -Werror.
examples-test: $(B)/cnnc
	bash tests/compile-examples.sh $(B)/cnnc

# The generated prelude's partial-vector loads and stores, every lane count (tests/lanes/).
.PHONY: lanes-test
lanes-test: $(B)/cnnc $(B)/libcnnrt.a
	bash tests/lanes/run-lanes.sh $(B)/cnnc
test: lanes-test

# The course's worked examples (/work/shared/course/EXAMPLES.md) through cnnc-built executables.
.PHONY: course-test
course-test: $(B)/cnnc $(B)/libcnnrt.a
	/usr/bin/python3 tests/course/course_examples.py --cnnc $(B)/cnnc

$(UNIT_BIN): $(UNIT_SRC) tests/unit/unit.h $(GRAMMAR_H) $(B)/libcnnc.a $(TEST_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -iquote compiler -iquote $(B) -iquote runtime -o $@ $(UNIT_SRC) $(B)/libcnnc.a $(CHECK_LIBS) -lm

# test_robust.c runs the built compiler on hostile files: $(B)/cnnc must exist.
unit-test: $(UNIT_BIN) $(B)/cnnc
	CK_DEFAULT_TIMEOUT=60 CNNC=$(B)/cnnc $(UNIT_BIN)

# Every example built with `cnnc build` from outside the tree, then its gradcheck.
.PHONY: gradcheck-test
gradcheck-test: all
	bash tests/run-gradcheck.sh $(B)/cnnc
test: gradcheck-test

# Fuzzing (tests/fuzz/fuzz.mk) and `make asan` (tests/asan.mk); hostile files at the end.
-include tests/fuzz/fuzz.mk
-include tests/asan.mk

# Generated code against PyTorch, tensor by tensor (tests/ref/ref.mk).
include tests/ref/ref.mk
test: ref-test

# ONNX's own operator test cases (tests/onnx/onnx.mk).
include tests/onnx/onnx.mk
test: onnx-test

# Hostile files (tests/bad-inputs/catalogue.txt), each answered by one clear error.
BAD_DIR := $(B)/tests/bad-inputs
$(BAD_DIR)/tiny: tests/bad-inputs/tiny.cnn $(B)/cnnc $(B)/libcnnrt.a
	@mkdir -p $(dir $@)
	$(B)/cnnc build $< -o $@
.PHONY: bad-inputs-test
bad-inputs-test: $(B)/cnnc $(BAD_DIR)/tiny $(TEST_DEPS_STAMP)
	bash tests/bad-inputs/bad-inputs.sh $(B)/cnnc $(BAD_DIR)/tiny $(BAD_DIR)/work
test: bad-inputs-test fuzz-replay-test

# Random valid models against PyTorch (tests/ref/random/): 50 in make test, make conformance for more.
include tests/ref/random/random.mk
test: random-test
