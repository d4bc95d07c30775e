#!/usr/bin/env bash
# Where the server's time goes during a SQLite transitions run: starts the
# bench, attaches `perf record -g` to the server for 8 s in the middle of
# the transitions phase, then prints the time per thread and the top
# symbols per thread.
#
#   bash support/bench/perf-transitions.sh [server binary] [bench binary]
#   defaults: target/release/ordertrack, target/release/ordertrack-bench
set -euo pipefail
root=$(git rev-parse --show-toplevel)
server=${1:-$root/target/release/ordertrack}
bench=${2:-$root/target/release/ordertrack-bench}
out=$(mktemp -d)
"$bench" transitions --server-bin "$server" --concurrency 64 --tx-orders 20000 \
  --duration 14 --ceiling-secs 2 --json "$out/transitions.json" > "$out/bench.log" 2>&1 &
running=$!
for _ in $(seq 240); do grep -q "Transitions on" "$out/bench.log" && break; sleep 0.5; done
sleep 4
pid=$(pgrep -n -f "$(basename "$server") demo")
perf record -F 499 -g -p "$pid" -o "$out/perf.data" -- sleep 8 > /dev/null 2>&1
wait "$running"
perf report -i "$out/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
perf report -i "$out/perf.data" --no-children --sort comm,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
echo "perf data and the bench's JSON: $out"
