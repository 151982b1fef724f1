#!/usr/bin/env bash
# Runs `cnnc summary` on every model under tests/summary/ and compares its
# stdout with the `# expect-stdout:` lines written by hand in the file.
# Both sides are read as cells: leading and trailing spaces dropped, every run
# of two or more spaces (a column break of the table) written ' | '.  A '*' in
# an expected line matches any text (used for figures that include the plan's
# scratch buffers).  Prints `summary: N passed, M failed`.
set -u
cnnc=${1:-build/cnnc}
pass=0 fail=0
cells() { sed -E 's/^ +//; s/ +$//; s/  +/ | /g'; }
for f in tests/summary/*.cnn; do
  want=$(sed -n 's/^# expect-stdout: \{0,1\}//p' "$f")
  got=$("$cnnc" summary "$f" 2>&1 | cells; exit "${PIPESTATUS[0]}"); rc=$?
  ok=1
  [ "$rc" -eq 0 ] && [ -n "$want" ] || ok=0
  mapfile -t w <<<"$want"
  mapfile -t g <<<"$got"
  [ "${#w[@]}" -eq "${#g[@]}" ] || ok=0
  for ((i = 0; ok && i < ${#w[@]}; i++)); do
    # shellcheck disable=SC2053  # the expected line is a pattern on purpose
    [[ "${g[i]}" == ${w[i]} ]] || ok=0
  done
  if [ "$ok" -eq 1 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $f (exit $rc)"
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/    /'
  fi
done
echo "summary: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
