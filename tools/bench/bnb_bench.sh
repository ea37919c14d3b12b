#!/usr/bin/env bash
# bitsandbytes-layout quantization benchmarks, in release. Prints figures; asserts nothing.
#   BNB_PYTHON=/path/to/venv/bin/python bash tools/bench/bnb_bench.sh [GB]
# BNB_PYTHON must have torch, bitsandbytes and safetensors (the peer); GB (default 2) sizes the
# generated bf16 model for the end-to-end run. SWIFT_BUILD_FLAGS are passed to swift build
# (e.g. "-Xswiftc -target-cpu -Xswiftc x86-64-v3", as tools/release-build.sh does).
set -euo pipefail
cd "$(dirname "$0")/../.."
GB="${1:-2}"
PY="${BNB_PYTHON:-python3}"
FLAGS="${SWIFT_BUILD_FLAGS:-}"
SCRATCH="${SWIFT_SCRATCH:-.build}"
swift build -c release --product ftq --scratch-path "$SCRATCH" $FLAGS >/dev/null
swift build -c release --product ftq-bench --scratch-path "$SCRATCH" $FLAGS >/dev/null
BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"
W="${BENCH_DIR:-scratch/bench}"
mkdir -p "$W"

echo "== kernels on one core (64M elements), next to memcpy of the same bytes"
"$BIN/ftq-bench" bnb 64

echo "== one 4096x11008 bf16 tensor: ftq quantize --nf4 vs bitsandbytes (load, quantize_4bit with double quant, save) on both cores"
[ -f "$W/one.safetensors" ] || "$PY" tools/bench/make_bf16_model.py "$W/one.safetensors" one
for i in 1 2 3; do
  rm -f "$W/one-nf4.safetensors"*
  /usr/bin/time -f "ftq: %e s wall, %M KB peak RSS, %P CPU" "$BIN/ftq" quantize "$W/one.safetensors" --nf4 -o "$W/one-nf4.safetensors" -q >/dev/null
done
"$PY" tools/bench/bnb_peer_quantize.py "$W/one.safetensors" "$W/one-bnb.safetensors" 3
"$PY" -c "
import sys
from safetensors.numpy import load_file
a = load_file(sys.argv[1]); b = load_file(sys.argv[2])
same = sorted(a) == sorted(b) and all(a[k].tobytes() == b[k].tobytes() for k in a)
print('ftq output tensors identical to bitsandbytes\':', same)
" "$W/one-nf4.safetensors" "$W/one-bnb.safetensors"

echo "== a ${GB} GB bf16 model: ftq quantize --nf4, next to reading the input and writing the output"
[ -f "$W/big-bf16.safetensors" ] || "$PY" tools/bench/make_bf16_model.py "$W/big-bf16.safetensors" "$GB"
rm -rf "$W/big-nf4.safetensors"*
/usr/bin/time -f "ftq quantize --nf4: %e s wall, %M KB peak RSS, %P CPU" "$BIN/ftq" quantize "$W/big-bf16.safetensors" --nf4 -o "$W/big-nf4.safetensors" -q
OUT_BYTES=$(stat -c %s "$W/big-nf4.safetensors")
/usr/bin/time -f "read the input (cat > /dev/null): %e s" cat "$W/big-bf16.safetensors" > /dev/null
/usr/bin/time -f "write the output's size (dd, fsync'd like ftq): %e s" dd if=/dev/zero of="$W/zeros.bin" bs=4M count=$(( (OUT_BYTES + 4194303) / 4194304 )) conv=fsync status=none
rm -f "$W/zeros.bin"
ls -l "$W/big-bf16.safetensors" "$W/big-nf4.safetensors" | awk '{print $5, $9}'
