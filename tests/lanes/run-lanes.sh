#!/usr/bin/env bash
# The generated prelude's partial-vector loads and stores (check_lanes.c),
# built for this machine (its AVX2 or AVX-512 branches) and for generic x86-64
# (the copies), with gcc and clang; and compiled, not run, for AVX2 and for
# AVX-512, so that the branches another host takes build clean here too.
set -u
cnnc=${1:-build/cnnc}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$cnnc" emit examples/lenet5.cnn -o "$out" || exit 1
status=0
for cc in gcc clang; do
  for arch in native x86-64; do
    if ! $cc -std=c11 -O2 -march=$arch -fopenmp -Wall -Wextra -I"$out" -DMODEL_C="\"$out/lenet5.c\"" \
         tests/lanes/check_lanes.c build/libcnnrt.a -lz -lm -o "$out/lanes"; then
      echo "FAIL lanes: $cc -march=$arch does not compile"; status=1; continue
    fi
    printf '%s -march=%s: ' "$cc" "$arch"
    "$out/lanes" || status=1
  done
done
for cc in gcc clang; do
  for arch in haswell skylake-avx512; do
    $cc -std=c11 -O2 -march=$arch -fopenmp -Wall -Wextra -Werror -I"$out" -DMODEL_C="\"$out/lenet5.c\"" \
        -c tests/lanes/check_lanes.c -o "$out/lanes.o" || { echo "FAIL lanes: $cc -march=$arch does not compile"; status=1; }
  done
done
[ $status -eq 0 ] && echo "lanes: passed"
exit $status
