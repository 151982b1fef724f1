#!/usr/bin/env bash
# Installs, from Debian's archive, whatever cnnc needs and the machine lacks.
# `make` runs this before anything else so that a fresh Debian machine needs
# no manual set-up.  Usage: scripts/install-deps.sh [build|test|bench|fuzz]
#   build  flex, bison, a C toolchain, zlib, OpenMP          (make)
#   test   + Check, python3-torch/numpy, Fashion-MNIST     (make test, make demo)
#   fuzz   + afl++                                          (make fuzz)
set -eu
need=${1:-build}
build_pkgs="flex bison gcc clang make pkg-config zlib1g-dev libomp-dev"
test_pkgs="check python3-torch python3-numpy dataset-fashion-mnist"
bench_pkgs="libopenblas0-pthread hyperfine"
fuzz_pkgs="afl++"
pkgs=$build_pkgs
case $need in
  build) ;;
  test)  pkgs="$pkgs $test_pkgs" ;;
  bench) pkgs="$pkgs $test_pkgs $bench_pkgs" ;;
  fuzz)  pkgs="$pkgs $fuzz_pkgs" ;;
  *) echo "usage: $0 [build|test|bench|fuzz]" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# An old or empty package list makes apt-get install fail; refresh it once.
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends $missing >&2
