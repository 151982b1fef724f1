# tests/asan.mk — `make asan`: the suites of `make test` again, with cnnc, libcnnrt,
# the test programs and every executable cnnc builds compiled under
# AddressSanitizer and UndefinedBehaviorSanitizer (any report is fatal), in
# their own build directory so the normal build/ is untouched.
#     make asan                  ASAN_B=build-asan by default
# cnnc build reads CNNC_CFLAGS, so the generated executables link the
# sanitized runtime; they keep cnnc's -O3 (the tests train real models).
# Every suite of `make test` but two: ref-test compares with PyTorch to 1e-4,
# and sanitizer instrumentation changes how gcc vectorizes the generated sums
# (fashion's conv1 gradient lands at 1.02e-4); onnx-test runs build/cnnc, not
# $(B)/cnnc.  ASAN_TESTS="..." chooses others.

ASAN_B       ?= build-asan
ASAN_TESTS   ?= unit-test diag-test summary-test examples-test course-test runtime-test gradcheck-test \
                bad-inputs-test fuzz-replay-test
ASAN_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_CFLAGS  := -O1 -g $(ASAN_SAN)
# detect_leaks: the arena and the runtime free what they allocate; a leak is a bug.
ASAN_ENV     := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1 \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 CNNC_CFLAGS="-g $(ASAN_SAN)"

.PHONY: asan
asan:
	$(ASAN_ENV) $(MAKE) --no-print-directory B=$(ASAN_B) CFLAGS="$(ASAN_CFLAGS)" all $(ASAN_TESTS)
	@echo "make asan: $(ASAN_TESTS) passed under ASan and UBSan"
