#!/usr/bin/env bash
# Builds every example with `cnnc build`, from outside the source tree (cnnc
# must find its runtime wherever it is run from), and runs the executable's
# `gradcheck`: backward() against finite differences for every parameter
# tensor.  The seed is fixed so the run is reproducible.
set -u
cnnc=$(realpath "${1:-build/cnnc}")
examples=$(realpath examples)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$out"
pass=0 fail=0
for f in "$examples"/*.cnn; do
  n=$(basename "$f" .cnn)
  if "$cnnc" build "$f" -o "$n" && ./"$n" gradcheck --seed 1 > "$n.txt" 2>&1; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $n"; sed 's/^/    /' "$n.txt"
  fi
done
echo "gradcheck: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
