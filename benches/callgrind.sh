#!/usr/bin/env bash
# Instruction counts of the quick-mode workloads under callgrind: the
# figure that repeats on a shared, noisy machine (the same binary and
# inputs give the same count whatever else runs).
#
#   bash benches/callgrind.sh            # every ratio, a markdown table
#   QUICK=1 bash benches/callgrind.sh    # 64 B and 1 KiB only (CI)
#   ITERS=20 bash benches/callgrind.sh   # calls per workload (default 10)
#
# Each workload's calls run inside `measured_region` only (quick.rs,
# `--callgrind NAME`), which is the one function callgrind collects in;
# the fixtures and the inputs are made outside it, and one warm-up call
# runs before it. The count per call is the region's total / ITERS.
set -euo pipefail
cd "$(dirname "$0")/.."

ITERS="${ITERS:-10}"
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }
cargo build --release --locked --quiet -p onion-bench --bin onion-bench
BIN="${CARGO_TARGET_DIR:-target}/release/onion-bench"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# Instructions per call of one workload.
count() {
  valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
    --toggle-collect='*measured_region*' \
    "$BIN" --callgrind "$1" --iters "$ITERS" >/dev/null 2>"$TMP/log" \
    || { cat "$TMP/log" >&2; exit 1; }
  awk -v n="$ITERS" '/^summary:/ { printf "%d\n", $2 / n }' "$TMP/cg.out"
}

if [ -n "${QUICK:-}" ]; then SIZES="64 1024"; else SIZES="64 1024 16384 262144 1048576"; fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

echo "| figure | mimi-onion (instructions) | peer (instructions) | ratio |"
echo "|---|---:|---:|---:|"
for s in $SIZES; do
  ours="$(count "seal:mimi-onion:$s")"
  raw="$(count "seal:raw-hpke:$s")"
  ohttp="$(count "seal:ohttp:$s")"
  echo "| seal $s B / raw hpke-rs seal | $ours | $raw | $(ratio "$ours" "$raw") |"
  echo "| seal $s B / OHTTP encapsulate | $ours | $ohttp | $(ratio "$ours" "$ohttp") |"
done
for s in $SIZES; do
  ours="$(count "open:mimi-onion:$s")"
  raw="$(count "open:raw-hpke:$s")"
  ohttp="$(count "open:ohttp:$s")"
  echo "| open $s B / raw hpke-rs open | $ours | $raw | $(ratio "$ours" "$raw") |"
  echo "| open $s B / OHTTP decapsulate + response | $ours | $ohttp | $(ratio "$ours" "$ohttp") |"
done
# The balancer workloads run 64 calls each.
ours="$(count balancer:mimi-onion)"
aes="$(count balancer:aes-block)"
echo "| balancer route / one AES-128 block (per 64 calls) | $ours | $aes | $(ratio "$ours" "$aes") |"
ours="$(count hub-path:mimi-onion)"
floor="$(count hub-path:floor)"
echo "| hub path 1 KiB / X25519 + AES-128-GCM over the message | $ours | $floor | $(ratio "$ours" "$floor") |"
one="$(count member:1)"
many="$(count member:1000)"
echo "| member holding 1000 epochs / holding 1 | $many | $one | $(ratio "$many" "$one") |"
