#!/usr/bin/env bash
# bad-inputs.sh CNNC EXE WORKDIR — feeds every file of catalogue.txt to cnnc or
# to EXE (tiny.cnn built by cnnc) and checks each answer: the exit status the
# catalogue gives (an error, never a signal, never the 60 s timeout), the
# words it expects, and no sanitizer report.  The large files are made in
# WORKDIR by make-inputs.py --big.  Prints "bad-inputs: N passed, M failed".
set -u
cnnc=$(realpath "$1") exe=$(realpath "$2") work=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work" && cd "$work" || exit 1
/usr/bin/python3 "$here/make-inputs.py" "$work" --big || exit 1
printf '\0\0\10\3\0\0\0\3\0\0\0\2\0\0\0\2\0\1\2\3\4\5\6\7\10\11\12\13' > ok-images.idx
printf '\0\0\10\1\0\0\0\3\0\1\2' > ok-labels.idx
printf '1,0,0,0,0\n2,3,4,5,6\n0,1,1,1,1\n' > ok.csv
pass=0 fail=0
while IFS='|' read -r file how want words; do
    file=${file// /} how=${how// /} want=${want// /} words=${words# }
    case $file in ''|'#'*) continue ;; esac
    f=$here/$file
    [ -f "$f" ] || f=$work/$file
    case $how in
        check)   cmd=("$cnnc" check "$f") ;;
        images)  cmd=("$exe" train --train-images "$f" --train-labels ok-labels.idx --epochs 1 --quiet) ;;
        labels)  cmd=("$exe" train --train-images ok-images.idx --train-labels "$f" --epochs 1 --quiet) ;;
        csv)     cmd=("$exe" train --csv "$f" --epochs 1 --quiet) ;;
        weights) cmd=("$exe" eval --weights "$f" --test-csv ok.csv) ;;
        resume)  cmd=("$exe" train --resume "$f" --csv ok.csv --test-csv ok.csv --epochs 3 --quiet) ;;
        *) echo "catalogue: unknown way '$how' for $file"; fail=$((fail + 1)); continue ;;
    esac
    timeout 60 "${cmd[@]}" > out.txt 2>&1 < /dev/null
    st=$?
    why=""
    if [ ! -f "$f" ]; then why="no such file"
    elif [ "$st" -ne "$want" ]; then why="exit $st, expected $want"
    elif ! grep -qF -- "$words" out.txt; then why="no '$words' in the message"
    elif grep -q "Sanitizer\|runtime error:" out.txt; then why="sanitizer report"
    fi
    if [ -z "$why" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL $file ($how): $why"
        head -c 2000 out.txt | sed 's/^/    /'
    fi
done < "$here/catalogue.txt"
echo "bad-inputs: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
