#!/usr/bin/env bash
# Every example model and every model of the PyTorch reference suite: `cnnc
# check` and `cnnc summary` succeed, and the C that `cnnc emit` writes compiles
# with -Wall -Wextra -Wpedantic -Werror under both gcc and clang (the generated
# code must read well and compile clean).  The reference models reach kernel
# paths the examples do not: conv-rows-padding.cnn had emitted an array of
# length 0, which ISO C forbids.
set -u
cnnc=${1:-build/cnnc}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pass=0 fail=0
for f in examples/*.cnn tests/ref/models/*.cnn tests/ref/regressions/*.cnn tests/ref/winograd4/*.cnn; do
  ok=1
  "$cnnc" check "$f" >/dev/null && "$cnnc" summary "$f" >/dev/null && "$cnnc" emit "$f" -o "$out" || ok=0
  name=$(sed -n 's/^model \([A-Za-z0-9_]*\).*/\1/p' "$f")
  [ -n "$name" ] || name=$(basename "$f" .cnn | tr -c 'A-Za-z0-9_\n' '_')
  for cc in gcc clang; do
    [ $ok -eq 1 ] || break
    $cc -std=c11 -O1 -fopenmp -Wall -Wextra -Wpedantic -Werror -c "$out/$name.c" -o "$out/$name.o" || { echo "FAIL $f: $cc"; ok=0; }
  done
  if [ $ok -eq 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $f"; fi
done
echo "examples and reference models: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
