#!/usr/bin/env bash
# What keeping ETA durations costs the transitions benchmark (issue: ≤ 5 %).
#
# A ("kept") is this checkout's server; B ("unkept") is the same commit with
# support/bench/no-durations.patch applied: no ETA samples and no per-day
# time histograms are written when an order finishes (everything else —
# the window read from the cache, the kitchen queue, the report counts —
# stays). Both are built in release into the same target directory, then
# run alternately by the same bench binary, each with its own ceiling.
#
#   bash support/bench/durations-ab.sh [extra ordertrack-bench arguments]
#   AB_ROUNDS=3 AB_CLIENTS=64 AB_ORDERS=20000 AB_SECS=10   (defaults)
#   e.g. … --database-url postgres://postgres@127.0.0.1:5432/postgres
#   AB_SKIP_BUILD=1 runs the binaries already in AB_OUT again.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
out=${AB_OUT:-$CARGO_TARGET_DIR/ab-durations}
rounds=${AB_ROUNDS:-3}
mkdir -p "$out"

if [ -z "${AB_SKIP_BUILD:-}" ]; then
  (cd "$root" && cargo build --release -p ordertrack -p ordertrack-bench)
  cp "$CARGO_TARGET_DIR/release/ordertrack" "$out/ordertrack-kept"
  cp "$CARGO_TARGET_DIR/release/ordertrack-bench" "$out/ordertrack-bench"
  tree=$(mktemp -d)
  trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
  git -C "$root" worktree add --detach "$tree" HEAD >/dev/null
  (cd "$tree" && git apply "$root/support/bench/no-durations.patch" \
    && cargo build --release -p ordertrack)
  cp "$CARGO_TARGET_DIR/release/ordertrack" "$out/ordertrack-unkept"
fi

for round in $(seq "$rounds"); do
  for side in kept unkept; do
    "$out/ordertrack-bench" transitions --server-bin "$out/ordertrack-$side" \
      --concurrency "${AB_CLIENTS:-64}" --tx-orders "${AB_ORDERS:-20000}" \
      --duration "${AB_SECS:-10}" --ceiling-secs 2 \
      --json "$out/tx-$side-$round.json" "$@" >/dev/null
  done
done

python3 - "$out" "$rounds" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def run(side, n):
    report = json.load(open(f"{out}/tx-{side}-{n}.json"))
    tx = next(r for r in report["results"] if r["scenario"] == "transitions")
    return tx["throughput"], tx["latency"]["p99_us"] / 1000
print("| round | kept: transitions/s | p99 ms | unkept: transitions/s | p99 ms | kept ÷ unkept |")
print("| --- | --- | --- | --- | --- | --- |")
ratios = []
for n in range(1, rounds + 1):
    (k, kp), (u, up) = run("kept", n), run("unkept", n)
    ratios.append(k / u)
    print(f"| {n} | {k:,.0f} | {kp:.1f} | {u:,.0f} | {up:.1f} | {k / u:.3f} |")
total_kept = sum(run("kept", n)[0] for n in range(1, rounds + 1))
total_unkept = sum(run("unkept", n)[0] for n in range(1, rounds + 1))
print(f"\nall rounds: kept ÷ unkept = {total_kept / total_unkept:.3f} "
      f"(cost {100 * (1 - total_kept / total_unkept):.1f} %)")
PY
