#!/usr/bin/env bash
# replay.sh DIR NAME... — each harness DIR/fuzz_NAME on its seeds and on every
# input afl once crashed or hung it (tests/fuzz/regressions/NAME/).  A harness
# must exit 0 within 60 s on each; under `make asan` any sanitizer report
# fails it too.  Prints "fuzz-replay: N passed, M failed".
dir=$1; shift
cd "$(dirname "$0")/../.." || exit 1
pass=0 fail=0
for name in "$@"; do
    files=(tests/fuzz/seeds/"$name"/* tests/fuzz/regressions/"$name"/*)
    [ "$name" = cnn ] && files+=(examples/*.cnn tests/summary/*.cnn tests/diag/*.cnn)
    for f in "${files[@]}"; do
        [ -f "$f" ] || continue
        if timeout 60 "$dir/fuzz_$name" "$f" >/dev/null 2>"$dir/replay.err"; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "FAIL fuzz_$name $f (exit $?):"; head -20 "$dir/replay.err"
        fi
    done
done
echo "fuzz-replay: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
