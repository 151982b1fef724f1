#!/usr/bin/env bash
# make demo: the whole product in one run — the layer table of the demo model,
# a standalone training executable built from it, training on Fashion-MNIST
# (Debian's dataset-fashion-mnist) with progress, the test accuracy, and the
# trained weights saved as .npz that numpy and PyTorch read.
set -euo pipefail
cd "$(dirname "$0")/.."
model=examples/fashion.cnn
exe=build/fashion
echo "== cnnc summary $model"
build/cnnc summary "$model"
echo
echo "== cnnc build $model -o $exe"
build/cnnc build "$model" -o "$exe"
echo
echo "== $exe train --save build/fashion.npz   (Fashion-MNIST, settings from $model)"
"$exe" train --save build/fashion.npz "$@"
echo
echo "Trained weights: build/fashion.npz (PyTorch state_dict names; numpy.load reads it)."
echo "Try: $exe eval --weights build/fashion.npz"
