# tests/onnx/onnx.mk — `make onnx-test`: ONNX 1.12 operator cases through cnnc
# (tests/onnx/README.md).  Include it from the Makefile, or run
#     make -f Makefile -f tests/onnx/onnx.mk onnx-test
# The cases are read from $(ONNX_CASES) (default ../shared/onnx-cases);
# ONNX_ARGS passes options to the runner (e.g. ONNX_ARGS=-v, or case-name filters).
ONNX_PYTHON ?= /usr/bin/python3
ONNX_ARGS ?=

.PHONY: onnx-test
onnx-test: build/cnnc build/libcnnrt.a
	$(ONNX_PYTHON) tests/onnx/run_onnx.py $(ONNX_ARGS)
