#!/usr/bin/env bash
# ftq merge of a rank-16 adapter into a base of Llama-7B layer shapes, next to reading the inputs
# and writing (and syncing) an output of the same size. Prints figures; asserts nothing.
#   bash tools/bench/merge_bench.sh [LAYERS (2)]
set -euo pipefail
cd "$(dirname "$0")/../.."
LAYERS="${1:-2}"
swift build -c release --product ftq >/dev/null
BIN="$(swift build -c release --show-bin-path)"
W="${BENCH_DIR:-scratch/bench}/merge"
mkdir -p "$W"
[ -f "$W/base.safetensors" ] || python3 tools/bench/make_lora_bench.py "$W" "$LAYERS" 16
rm -f "$W/merged.safetensors"*
/usr/bin/time -f "ftq merge: %e s wall, %M KB peak RSS, %P CPU" "$BIN/ftq" merge "$W/base.safetensors" "$W/adapter" -o "$W/merged.safetensors" -q
/usr/bin/time -f "read the inputs (cat > /dev/null): %e s" cat "$W/base.safetensors" "$W/adapter/adapter_model.safetensors" > /dev/null
SIZE=$(stat -c %s "$W/merged.safetensors")
/usr/bin/time -f "write the output's size (dd, fsync'd like ftq): %e s" dd if=/dev/zero of="$W/zeros.bin" bs=4M count=$(( (SIZE + 4194303) / 4194304 )) conv=fsync status=none
rm -f "$W/zeros.bin"
ls -l "$W/base.safetensors" "$W/merged.safetensors" | awk '{print $5, $9}'
