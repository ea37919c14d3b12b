#!/usr/bin/env bash
# ftq compare of a bf16 model against its NF4 quantization, next to reading the same two files,
# both from a cold page cache (when this user may drop it: root) and from a warm one; then the
# error accumulator alone on one core next to a read of the same bytes. Prints figures; asserts
# nothing.
#   bash tools/bench/compare_bench.sh [GB (2)]
# SWIFT_BUILD_FLAGS and SWIFT_SCRATCH as in bnb_bench.sh (e.g. the AVX2 build of release-build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
GB="${1:-2}"
FLAGS="${SWIFT_BUILD_FLAGS:-}"
SCRATCH="${SWIFT_SCRATCH:-.build}"
swift build -c release --product ftq --scratch-path "$SCRATCH" $FLAGS >/dev/null
swift build -c release --product ftq-bench --scratch-path "$SCRATCH" $FLAGS >/dev/null
BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"
W="${BENCH_DIR:-scratch/bench}"
mkdir -p "$W"
[ -f "$W/big-bf16.safetensors" ] || python3 tools/bench/make_bf16_model.py "$W/big-bf16.safetensors" "$GB"
[ -f "$W/big-nf4.safetensors" ] || "$BIN/ftq" quantize "$W/big-bf16.safetensors" --nf4 -o "$W/big-nf4.safetensors" -q
A="$W/big-bf16.safetensors" B="$W/big-nf4.safetensors"
ls -l "$A" "$B" | awk '{print $5, $9}'

drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; }
if drop; then
  echo "== cold page cache"
  /usr/bin/time -f "read both files (cat > /dev/null): %e s" cat "$A" "$B" > /dev/null
  for t in 1 2; do
    drop
    /usr/bin/time -f "ftq compare --threads $t: %e s wall, %M KB peak RSS, %P CPU" "$BIN/ftq" compare "$A" "$B" --threads $t --json -q > /dev/null
  done
else
  echo "(cannot drop the page cache as this user: warm figures only)"
fi
echo "== warm page cache"
cat "$A" "$B" > /dev/null
/usr/bin/time -f "read both files (cat > /dev/null): %e s" cat "$A" "$B" > /dev/null
for t in 1 2; do
  /usr/bin/time -f "ftq compare --threads $t: %e s wall, %M KB peak RSS, %P CPU" "$BIN/ftq" compare "$A" "$B" --threads $t --json -q > /dev/null
done
echo "== the error accumulator on one core (64M pairs of float32)"
"$BIN/ftq-bench" compare 64
