# tests/tests.mk — `make test`: every suite, each printing its own summary line.
# Included from the top-level Makefile.

CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)
UNIT_SRC  := $(wildcard tests/unit/*.c)
UNIT_BIN  := $(B)/tests/unit-tests

test: all $(TEST_DEPS_STAMP) unit-test diag-test examples-test $(if $(wildcard runtime/runtime.mk),runtime-test)
	@echo "make test: all suites passed"

diag-test: $(B)/cnnc
	bash tests/run-diag.sh $(B)/cnnc

# Every example must check, summarize and emit C that compiles warning-free
# under gcc and clang with -Werror.
examples-test: $(B)/cnnc
	bash tests/compile-examples.sh $(B)/cnnc

$(UNIT_BIN): $(UNIT_SRC) $(B)/libcnnc.a $(TEST_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -iquote compiler -iquote $(B) -iquote runtime -o $@ $(UNIT_SRC) $(B)/libcnnc.a $(CHECK_LIBS) -lm

unit-test: $(UNIT_BIN)
	CK_DEFAULT_TIMEOUT=60 $(UNIT_BIN)
