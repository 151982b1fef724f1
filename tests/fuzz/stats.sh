#!/usr/bin/env bash
# stats.sh OUT NAME — one line from afl's fuzzer_stats and plot_data: execs,
# corpus, edges, crashes, hangs, and whether coverage had stopped growing
# (no new edge in the last third of the run: "plateau").
out=$1/default name=$2
st=$out/fuzzer_stats
[ -f "$st" ] || { echo "fuzz-$name: no fuzzer_stats in $out"; exit 0; }
get() { sed -n "s/^$1 *: *//p" "$st"; }
plateau=$(awk -F', *' '!/^#/ { t[NR]=$1; e[NR]=$NF; n=NR }
    END { if (n < 2) { print "too short to tell"; exit }
          span = t[n] - t[2]; cut = t[n] - span/3; first = e[n]
          for (i = 2; i <= n; i++) if (e[i] == e[n]) { first = t[i]; break }
          printf "%s (last new edge at %ds of %ds)", first <= cut ? "plateau" : "still growing", first - t[2], span }' "$out/plot_data")
echo "fuzz-$name: $(get execs_done) execs ($(get execs_per_sec)/s) in $(get run_time)s, corpus $(get corpus_count)," \
     "edges $(get edges_found)/$(get total_edges) ($(get bitmap_cvg)), crashes $(get saved_crashes), hangs $(get saved_hangs); $plateau"
