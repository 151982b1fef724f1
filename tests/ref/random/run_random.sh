#!/bin/bash
# run_random.sh SEED N [FIRST] — random models through cnnc against PyTorch.
#
# Generates N random valid models (gen_models.py; model i depends only on SEED
# and i, numbered from FIRST, default 1), traces them in PyTorch in float64
# (reference.py suite: weights, batch, output, loss, every gradient, 3
# optimizer steps; add_input_grad.py adds dLoss/dx as grad.input), then lets
# test_ref build each with cnnc, run its `trace` and compare every tensor
# (tests/ref/test_ref.c's error measure, unchanged).
#
# The models are split into two shards that run side by side (2 cores), each
# generating, tracing and checking its half: shard A (the first half) builds
# with CNNC_VLEN=16 and traces batches of 4, shard B builds with CNNC_VLEN=8
# (so that conv layers whose channel counts are a multiple of 8 but not 16
# also take the register-tiled vector kernels) and traces batches of 5 (an
# odd batch over the OpenMP threads).  Prints each shard's Check summary, every
# mismatch line, then `random: N passed, M failed`; exits 1 on any failure.
#
# Environment: CNNC (default build/cnnc), TEST_REF (build/tests/test_ref),
# GEN_FLAGS (more gen_models.py options, e.g. "--winograd 0.6"),
# RANDOM_DIR (default build/random/seed-SEED[-FIRST]); the directory is
# replaced.  Shrink a failure with tests/ref/random/shrink.py DIR/models/NAME.cnn.
set -u
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: run_random.sh SEED N [FIRST]" >&2
    exit 2
fi
SEED=$1 N=$2 FIRST=${3:-1}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
PY=/usr/bin/python3
CNNC=$(realpath "${CNNC:-$ROOT/build/cnnc}")
TEST_REF=$(realpath "${TEST_REF:-$ROOT/build/tests/test_ref}")
suffix=""; [ "$FIRST" != 1 ] && suffix="-$FIRST"
DIR=${RANDOM_DIR:-$ROOT/build/random/seed-$SEED$suffix}
for f in "$CNNC" "$TEST_REF"; do
    [ -x "$f" ] || { echo "run_random.sh: $f is not built (make $f)" >&2; exit 2; }
done
rm -rf "$DIR"
mkdir -p "$DIR/models/A" "$DIR/models/B" "$DIR/A" "$DIR/B"
DIR=$(realpath "$DIR")
start=$(date +%s)

shard() {    # shard NAME VLEN BATCH FIRST COUNT
    local name=$1 vlen=$2 size=$3 first=$4 count=$5
    : > "$DIR/$name/list.txt"
    [ "$count" -gt 0 ] || { echo "(no models)" > "$DIR/$name/check.log"; return 0; }
    "$PY" "$ROOT/tests/ref/random/gen_models.py" "$SEED" "$count" "$DIR/models/$name" --first "$first" \
        --size "$size" --cnnc "$CNNC" ${GEN_FLAGS:-} > "$DIR/$name/gen.log" 2>&1 || { cat "$DIR/$name/gen.log" >&2; return 2; }
    "$PY" "$ROOT/tests/ref/reference.py" suite "$DIR/$name" "$DIR/models/$name"/*.cnn --size "$size" > "$DIR/$name/suite.log" 2>&1 || {
        echo "run_random.sh: reference.py suite failed for shard $name:" >&2
        cat "$DIR/$name/suite.log" >&2
        return 2
    }
    "$PY" "$ROOT/tests/ref/random/add_input_grad.py" "$DIR/$name" >> "$DIR/$name/suite.log" 2>&1 || {
        cat "$DIR/$name/suite.log" >&2
        return 2
    }
    CNNC_VLEN=$vlen "$TEST_REF" "$DIR/$name" "$CNNC" > "$DIR/$name/check.log" 2>&1
}
half=$(( (N + 1) / 2 ))
shard A 16 4 "$FIRST" "$half" & pa=$!
shard B 8 5 $((FIRST + half)) $((N - half)) & pb=$!
wait $pa; ra=$?
wait $pb; rb=$?

failed=0 total=0
for s in A B; do
    opts=$([ $s = A ] && echo "--vlen 16 --size 4" || echo "--vlen 8 --size 5")
    echo "shard $s ($opts):"
    sed 's/^/  /' "$DIR/$s/gen.log" 2>/dev/null
    sed 's/^/  /' "$DIR/$s/check.log"
    n=$(grep -c . "$DIR/$s/list.txt" 2>/dev/null || echo 0)
    f=$(grep -Eo '^[^ ]*:[0-9]+:[EF]:[^:]*:[^:]*:[0-9]+: ' "$DIR/$s/check.log" | wc -l)
    total=$((total + n)) failed=$((failed + f))
done
for rc in $ra $rb; do
    [ "$rc" = 2 ] && { echo "random: the reference suite failed (see above)"; exit 2; }
done
if [ $total -ne "$N" ]; then
    echo "random: only $total of $N models were traced"
    failed=$((failed + N - total))
fi
echo "random: $((total - failed)) passed, $failed failed (seed $SEED, models $FIRST..$((FIRST + N - 1)), $(( $(date +%s) - start )) s, in $DIR)"
if [ $failed -ne 0 ] || [ $ra -ne 0 ] || [ $rb -ne 0 ]; then
    grep -ho 'rs[0-9]*_[0-9]*: [0-9]* of [0-9]* tensors differ.*\|rs[0-9]*_[0-9]*: cnnc build failed.*\|rs[0-9]*_[0-9]*: trace failed.*' \
        "$DIR"/A/check.log "$DIR"/B/check.log | while IFS=: read -r name why; do
        echo "  $name:$why"
        m=$(ls "$DIR"/models/*/"$name".cnn)
        opts=$([[ $m == */models/A/* ]] && echo "--vlen 16 --size 4" || echo "--vlen 8 --size 5")
        echo "    shrink: $PY tests/ref/random/shrink.py $m $opts"
    done
    exit 1
fi
exit 0
