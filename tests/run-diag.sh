#!/usr/bin/env bash
# Runs `cnnc check` on every bad model under tests/diag/ and compares its
# error and note lines with the `# expect:` lines written by hand in the file
# (line:col: severity: message, the path left out).  Also checks that every
# message is followed by the quoted line and a caret, and that the exit code is 1.
set -u
cnnc=${1:-build/cnnc}
pass=0 fail=0
for f in tests/diag/*.cnn; do
  want=$(sed -n 's/^# expect: //p' "$f")
  got=$("$cnnc" check "$f" 2>&1 >/dev/null); rc=$?
  msgs=$(printf '%s\n' "$got" | grep -E '^[^ ].*:[0-9]+:[0-9]+: (error|note): ' | sed "s|^$f:||")
  carets=$(printf '%s\n' "$got" | grep -cE '^    +\^~*$' || true)
  nmsg=$(printf '%s\n' "$msgs" | grep -c . || true)
  if [ "$rc" -eq 1 ] && [ "$msgs" = "$want" ] && [ "$carets" -eq "$nmsg" ] && [ -n "$want" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $f (exit $rc)"
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$msgs") | sed 's/^/    /'
    [ "$carets" -eq "$nmsg" ] || echo "    expected $nmsg caret lines, got $carets"
  fi
done
echo "diag: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
