#!/usr/bin/env bash
# Where the server's time goes while one store's changes go out to many
# subscribers: starts the bench's `fanout` scenario, waits until the
# server holds the subscribers' connections, attaches `perf record -g` to
# the server for 8 s of the publishing, then prints the time per thread,
# per thread and library, and the top symbols.
#
#   bash support/bench/perf-fanout.sh [server binary] [bench binary] [subscribers]
#   defaults: target/release/ordertrack, target/release/ordertrack-bench, 10000
set -euo pipefail
root=$(git rev-parse --show-toplevel)
server=${1:-$root/target/release/ordertrack}
bench=${2:-$root/target/release/ordertrack-bench}
subscribers=${3:-10000}
out=$(mktemp -d)
"$bench" fanout --server-bin "$server" --subscribers "$subscribers" --rate 5 \
  --duration 12 --ceiling-secs 1 --json "$out/fanout.json" > "$out/bench.log" 2>&1 &
running=$!
for _ in $(seq 240); do grep -q "Fanout on" "$out/bench.log" && break; sleep 0.5; done
pid=$(pgrep -n -f "$(basename "$server") demo")
# The subscribers are connected once the server holds their sockets.
for _ in $(seq 600); do
  [ "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)" -ge "$subscribers" ] && break
  sleep 0.2
done
sleep 2
perf record -F 499 -g -p "$pid" -o "$out/perf.data" -- sleep 8 > /dev/null 2>&1
wait "$running"
grep -E "^fanout" "$out/bench.log" || true
perf report -i "$out/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
perf report -i "$out/perf.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -16
perf report -i "$out/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30
echo "perf data and the bench's JSON: $out"
