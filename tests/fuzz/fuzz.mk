# tests/fuzz/fuzz.mk — `make fuzz`: afl++ on the four things cnnc and its
# executables read from users: .cnn files, IDX, CSV and .npz.
#
#   make fuzz                      every harness, FUZZ_SECONDS each, one after the other
#   make fuzz FUZZ_SECONDS=3600    a longer campaign;  FUZZ_HARNESSES="cnn npz" a subset
#   make fuzz-replay-test          (part of make test) seeds + kept crashes, no afl needed
#
# Harnesses are tests/fuzz/fuzz_<name>.c, built with afl-clang-fast (Debian's
# afl++: scripts/install-deps.sh fuzz) under ASan and UBSan in persistent
# mode.  Seeds: the files under tests/fuzz/seeds/<name>/, and for cnn every
# .cnn in examples/ and tests/.  Results go to $(FUZZ_OUT)/<name>/ (afl's
# fuzzer_stats and plot_data); each run ends with one line of stats, and any
# crash or hang is copied to tests/fuzz/regressions/<name>/ to be fixed and
# kept: fuzz-replay-test runs every file there on each `make test`.
# One afl-fuzz at a time (the machine is shared); a harness's run stops
# after FUZZ_SECONDS, and a later run continues its queue (AFL_AUTORESUME;
# remove $(FUZZ_OUT)/<name> to start from the seeds again).

FUZZ_SECONDS   ?= 600
FUZZ_HARNESSES ?= cnn idx csv npz
FUZZ_CC        ?= $(shell command -v afl-clang-fast >/dev/null 2>&1 && echo afl-clang-fast || echo afl-cc)
FUZZ_OUT       ?= $(B)/fuzz
FUZZ_DEPS_STAMP := $(B)/.deps-fuzz

FUZZ_COMPILER_SRC := $(COMPILER_SRC) $(B)/cnn.tab.c $(B)/lex.yy.c $(B)/compiler/cnnrt_h.c
FUZZ_RUNTIME_SRC  := $(filter-out runtime/main.c,$(wildcard runtime/*.c))
FUZZ_FLAGS_cnn := -iquote compiler -iquote $(B) -iquote runtime
FUZZ_SRC_cnn   := $(FUZZ_COMPILER_SRC)
FUZZ_LIBS_cnn  := -lm
FUZZ_RT_FLAGS  := -D_POSIX_C_SOURCE=200809L -fopenmp -iquote runtime
FUZZ_FLAGS_idx := $(FUZZ_RT_FLAGS)
FUZZ_FLAGS_csv := $(FUZZ_RT_FLAGS)
# The npz harness skips the zip CRC check (npz.c): a mutated entry would
# otherwise fail it almost always and never reach the .npy parser.
FUZZ_FLAGS_npz := $(FUZZ_RT_FLAGS) -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
FUZZ_SRC_idx   := $(FUZZ_RUNTIME_SRC)
FUZZ_SRC_csv   := $(FUZZ_RUNTIME_SRC)
FUZZ_SRC_npz   := $(FUZZ_RUNTIME_SRC) tests/runtime/fake_model.c
FUZZ_LIBS_idx  := -lz -lm
FUZZ_LIBS_csv  := -lz -lm
FUZZ_LIBS_npz  := -lz -lm
FUZZ_SEEDS_cnn := $(wildcard examples/*.cnn tests/summary/*.cnn tests/diag/*.cnn)
FUZZ_DICT_cnn  := -x tests/fuzz/cnn.dict
# Replay builds (plain $(CC), every input given on the command line).
FUZZ_REPLAY_DIR := $(B)/tests/fuzz
FUZZ_NAMES := cnn idx csv npz

.PHONY: fuzz fuzz-deps fuzz-replay-test $(FUZZ_HARNESSES:%=fuzz-%)
$(FUZZ_DEPS_STAMP): scripts/install-deps.sh
	@mkdir -p $(B)
	bash scripts/install-deps.sh fuzz
	@touch $@
fuzz-deps: $(FUZZ_DEPS_STAMP)

# afl-clang-fast -O1 with sanitizers: slower per exec, but an overflow by one
# byte is a report instead of luck.  -w: flex/bison output is not ours.
$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(GRAMMAR_H) $(B)/compiler/cnnrt_h.c $(wildcard compiler/*.[ch] runtime/*.[ch]) | $(FUZZ_DEPS_STAMP)
	@mkdir -p $(dir $@)
	AFL_USE_ASAN=1 AFL_USE_UBSAN=1 AFL_QUIET=1 $(FUZZ_CC) -std=c11 -D_DEFAULT_SOURCE -O1 -g -w $(FUZZ_FLAGS_$*) \
	    -iquote tests/fuzz -o $@ $< $(FUZZ_SRC_$*) $(FUZZ_LIBS_$*)

# One harness after the other even under make -j: afl-fuzz takes a core each.
fuzz:
	@for h in $(FUZZ_HARNESSES); do $(MAKE) --no-print-directory fuzz-$$h || exit 1; done
	@for h in $(FUZZ_HARNESSES); do bash tests/fuzz/stats.sh $(FUZZ_OUT)/$$h $$h; done

# afl in a container: no CPU-frequency or core_pattern tuning to rely on.
$(FUZZ_HARNESSES:%=fuzz-%): fuzz-%: $(FUZZ_OUT)/fuzz_%
	@rm -rf $(FUZZ_OUT)/seeds-$* && mkdir -p $(FUZZ_OUT)/seeds-$*
	@for f in $(FUZZ_SEEDS_$*) $(wildcard tests/fuzz/seeds/$*/*); do cp $$f $(FUZZ_OUT)/seeds-$*/$$(echo $$f | tr / _); done
	AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 \
	AFL_AUTORESUME=1 AFL_SKIP_CRASHES=1 \
	    afl-fuzz -i $(FUZZ_OUT)/seeds-$* -o $(FUZZ_OUT)/$* -V $(FUZZ_SECONDS) -t 2000 $(FUZZ_DICT_$*) \
	    -- $(FUZZ_OUT)/fuzz_$* @@ > $(FUZZ_OUT)/$*.log 2>&1 || { tail -20 $(FUZZ_OUT)/$*.log; exit 1; }
	@bash tests/fuzz/stats.sh $(FUZZ_OUT)/$* $*
	@mkdir -p tests/fuzz/regressions/$*
	@for f in $(FUZZ_OUT)/$*/default/crashes/id:* $(FUZZ_OUT)/$*/default/hangs/id:*; do \
	    [ -f "$$f" ] || continue; \
	    n=$$(sha1sum "$$f" | cut -c1-12); cp "$$f" tests/fuzz/regressions/$*/$$(basename $$(dirname "$$f"))-$$n; \
	    echo "fuzz-$*: kept $$f as tests/fuzz/regressions/$*/$$(basename $$(dirname "$$f"))-$$n"; done

# --- replay: the same harnesses under $(CC), linked with the libraries --------
FUZZ_REPLAY_LIB_cnn := $(B)/libcnnc.a -lm
FUZZ_REPLAY_LIB_idx := $(B)/libcnnrt.a -lz -lm
FUZZ_REPLAY_LIB_csv := $(B)/libcnnrt.a -lz -lm
# npz replays from the runtime's sources built the fuzzing way (no CRC check),
# so that what the fuzzer found replays as it was found.
FUZZ_REPLAY_LIB_npz := tests/runtime/fake_model.c $(FUZZ_RUNTIME_SRC) -lz -lm
$(FUZZ_REPLAY_DIR)/fuzz_cnn: $(B)/libcnnc.a
$(FUZZ_REPLAY_DIR)/fuzz_idx $(FUZZ_REPLAY_DIR)/fuzz_csv: $(B)/libcnnrt.a
$(FUZZ_REPLAY_DIR)/fuzz_npz: $(FUZZ_RUNTIME_SRC) $(wildcard runtime/*.h)
$(FUZZ_REPLAY_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_DEFAULT_SOURCE $(WARN) $(CFLAGS) $(FUZZ_FLAGS_$*) -iquote tests/fuzz -o $@ $< $(FUZZ_REPLAY_LIB_$*)

fuzz-replay-test: $(FUZZ_NAMES:%=$(FUZZ_REPLAY_DIR)/fuzz_%)
	@bash tests/fuzz/replay.sh $(FUZZ_REPLAY_DIR) $(FUZZ_NAMES)
