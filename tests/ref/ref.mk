# tests/ref/ref.mk — the PyTorch differential test (included from tests/tests.mk).
# reference.py suite traces every model of tests/ref/models/ and examples/ in
# PyTorch (one process); test_ref builds each with cnnc, traces it, and
# compares every tensor.
REF_DIR := $(B)/ref
REF_BIN := $(B)/tests/test_ref
REF_B37_MODELS := examples/lenet5.cnn examples/assignment.cnn tests/ref/models/maxpool-tiling-relu.cnn
REF_B1_MODELS := examples/lenet5.cnn examples/kaggle-digits.cnn examples/vgg-small.cnn
REF_W4_MODELS := examples/vgg-small.cnn tests/ref/winograd4/winograd4.cnn tests/ref/models/winograd-rect.cnn
REF_W4_SCALE := 6

$(REF_BIN): tests/ref/test_ref.c $(B)/libcnnrt.a runtime/rt.h runtime/cnnrt.h $(TEST_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) $(CFLAGS) $(CHECK_CFLAGS) -fopenmp -iquote runtime -o $@ $< \
	    $(B)/libcnnrt.a $(CHECK_LIBS) -lz -lm

.PHONY: ref-test
ref-test: $(REF_BIN) $(B)/cnnc $(B)/libcnnrt.a
	@rm -rf $(REF_DIR)
	/usr/bin/python3 tests/ref/reference.py suite $(REF_DIR) tests/ref/models/*.cnn examples/*.cnn $(wildcard tests/ref/regressions/*.cnn)
	@sed 's/^/note: /' $(REF_DIR)/skipped.txt
	$(REF_BIN) $(abspath $(REF_DIR)) $(abspath $(B)/cnnc)
	@# the regressions again as the random run that found them traced them: batches
	@# of 5 (odd over two threads), dL/dx included, 8-float vectors
	@rm -rf $(REF_DIR)-b5
	/usr/bin/python3 tests/ref/reference.py suite $(REF_DIR)-b5 $(wildcard tests/ref/regressions/*.cnn) --size 5
	/usr/bin/python3 tests/ref/random/add_input_grad.py $(REF_DIR)-b5
	CNNC_VLEN=8 $(REF_BIN) $(abspath $(REF_DIR))-b5 $(abspath $(B)/cnnc)
	@# a batch of 37: whole blocks of 8 images (fc tiles) and a remainder of 5, and
	@# more than one 32-image group of fc's forward
	@rm -rf $(REF_DIR)-b37
	/usr/bin/python3 tests/ref/reference.py suite $(REF_DIR)-b37 $(REF_B37_MODELS) --size 37
	$(REF_BIN) $(abspath $(REF_DIR))-b37 $(abspath $(B)/cnnc)
	@# and with 8-float vectors: fc dL/din then takes images in groups of 32 (32 + 5)
	CNNC_VLEN=8 $(REF_BIN) $(abspath $(REF_DIR))-b37 $(abspath $(B)/cnnc)
	@# and with 16-float FMAs taken as halved (AMD Zen 4) and as whole, whatever this host is:
	@# the assignment's 20 channels in 3 × 8 or 2 × 16 (compiler/emit.c: host_halves_16_float_fmas)
	CNNC_HALVED16=1 $(REF_BIN) $(abspath $(REF_DIR))-b37 $(abspath $(B)/cnnc)
	CNNC_HALVED16=0 $(REF_BIN) $(abspath $(REF_DIR))-b37 $(abspath $(B)/cnnc)
	@# and with 16-float vectors whatever this host has: the assignment's conv2 and maxpool-tiling-relu's
	@# take dL/dweight by window rows only then (emit_conv_tiled.c: weight_grad_by_rows)
	CNNC_VLEN=16 $(REF_BIN) $(abspath $(REF_DIR))-b37 $(abspath $(B)/cnnc)
	@# a batch of 1: dL/dweight's second chunk of images is empty (plan.h PLAN_GRAD_CHUNKS),
	@# for the direct kernels and Winograd
	@rm -rf $(REF_DIR)-b1
	/usr/bin/python3 tests/ref/reference.py suite $(REF_DIR)-b1 $(REF_B1_MODELS) --size 1
	$(REF_BIN) $(abspath $(REF_DIR))-b1 $(abspath $(B)/cnnc)
	@# Winograd F(4x4,3x3) (cnnc --winograd 4) on the models that take it, at their batch and at 5
	@# with dL/dx: its float32 rounding is about 6x F(2x2)'s (winograd_error.py models it apart
	@# from cnnc and checks the scale), so the tolerance is that much wider
	/usr/bin/python3 tests/ref/winograd_error.py --check $(REF_W4_SCALE)
	@rm -rf $(REF_DIR)-w4 $(REF_DIR)-w4-b5
	/usr/bin/python3 tests/ref/reference.py suite $(REF_DIR)-w4 $(REF_W4_MODELS)
	CNNC_WINOGRAD=4 $(REF_BIN) $(abspath $(REF_DIR))-w4 $(abspath $(B)/cnnc) --tolerance-scale $(REF_W4_SCALE)
	/usr/bin/python3 tests/ref/reference.py suite $(REF_DIR)-w4-b5 $(REF_W4_MODELS) --size 5
	/usr/bin/python3 tests/ref/random/add_input_grad.py $(REF_DIR)-w4-b5
	CNNC_WINOGRAD=4 $(REF_BIN) $(abspath $(REF_DIR))-w4-b5 $(abspath $(B)/cnnc) --tolerance-scale $(REF_W4_SCALE)
