#!/bin/bash
# conformance.sh SEED N [BATCH] — the long run: N random models in batches of
# BATCH (default 100), each batch a run_random.sh SEED BATCH FIRST in its own
# directory (build/random/seed-SEED-FIRST), so that a failing model does not
# stop the run and each batch's files stay for shrink.py.  Model i depends only
# on SEED and i: the batches together are the same N models as one run.
# Prints every batch's result, then `conformance: N passed, M failed`.
set -u
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: conformance.sh SEED N [BATCH]" >&2
    exit 2
fi
SEED=$1 N=$2 BATCH=${3:-100}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
unset RANDOM_DIR          # one directory per batch
passed=0 failed=0 first=1 start=$(date +%s)
failures=()
while [ $first -le "$N" ]; do
    n=$(( N - first + 1 < BATCH ? N - first + 1 : BATCH ))
    out=$(bash "$HERE/run_random.sh" "$SEED" "$n" "$first" 2>&1)
    rc=$?
    line=$(grep '^random: ' <<<"$out" | tail -1)
    echo "batch $first..$((first + n - 1)): ${line:-run_random.sh exit $rc}"
    if [[ $line =~ ^random:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2]))
    else
        failed=$((failed + n))
    fi
    # the executables (~0.4 MB each) go; traces, logs and models stay for shrink.py
    dir=$ROOT/build/random/seed-$SEED$([ "$first" != 1 ] && echo "-$first")
    find "$dir/A" "$dir/B" -maxdepth 1 -type f -perm -u+x ! -name '*.*' -delete 2>/dev/null
    if [ $rc -ne 0 ]; then
        grep -E '^  rs[0-9]+_|shrink:|reference.py suite failed|^[^ ]' <<<"$out" | grep -v '^random: \|^shard ' | sed 's/^/  /'
        failures+=("$first")
    fi
    first=$((first + n))
done
echo "conformance: $passed passed, $failed failed (seed $SEED, $N models, $(( $(date +%s) - start )) s)"
[ $failed -eq 0 ]
