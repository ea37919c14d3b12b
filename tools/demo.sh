#!/usr/bin/env bash
# Set-up and demo on a fresh machine: installs what is missing, builds ftq in release,
# makes a small model and runs ftq on it (inspect, convert, quantize, verify, dequantize,
# pack, unpack), printing each step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
echo "== building ftq (release)"
swift build -c release --product ftq 2>&1 | tail -1
FTQ="$(swift build -c release --show-bin-path)/ftq"
SCRATCH="${SCRATCH:-scratch/demo}"
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
echo "== making a small Llama-shaped model in $SCRATCH/tiny"
python3 tools/make_tiny_model.py "$SCRATCH/tiny"
run() { echo; echo "\$ ftq $*"; "$FTQ" "$@"; }
run inspect "$SCRATCH/tiny"
run convert "$SCRATCH/tiny/model.safetensors" -o "$SCRATCH/tiny-f32.gguf" --dtype f32
run inspect "$SCRATCH/tiny-f32.gguf"
run convert "$SCRATCH/tiny-f32.gguf" -o "$SCRATCH/tiny-f16-sharded" --dtype f16 --max-shard-size 100KB
run inspect "$SCRATCH/tiny-f16-sharded" --json | head -n 12
run quantize "$SCRATCH/tiny" --nf4 -o "$SCRATCH/tiny-nf4"
run inspect "$SCRATCH/tiny-nf4" | head -n 14
run verify "$SCRATCH/tiny-nf4"
run dequantize "$SCRATCH/tiny-nf4" -o "$SCRATCH/tiny-from-nf4"
run quantize "$SCRATCH/tiny/model.safetensors" --type Q4_0 -o "$SCRATCH/tiny-Q4_0.gguf"
run inspect "$SCRATCH/tiny-Q4_0.gguf" | head -n 12
run verify "$SCRATCH/tiny-Q4_0.gguf"
run dequantize "$SCRATCH/tiny-Q4_0.gguf" -o "$SCRATCH/tiny-from-Q4_0.safetensors" --dtype bf16
run pack "$SCRATCH/tiny-f16-sharded" -o "$SCRATCH/tiny.ftqz"
run unpack "$SCRATCH/tiny.ftqz" -o "$SCRATCH/tiny-unpacked"
run verify "$SCRATCH/tiny-unpacked"
echo; echo "demo outputs are in $SCRATCH/"
