#!/usr/bin/env bash
# Benchmarks, in release. Prints figures; asserts nothing (tests do that).
#   bash tools/bench/run.sh [GB]     (default 3 GB model for the convert benchmark)
set -euo pipefail
cd "$(dirname "$0")/../.."
GB="${1:-3}"
swift build -c release --product ftq >/dev/null
swift build -c release --product ftq-bench >/dev/null
BIN="$(swift build -c release --show-bin-path)"
W="${BENCH_DIR:-scratch/bench}"
mkdir -p "$W"

echo "== GGUF header parse (49,152-token vocabulary, ~100 MB file)"
[ -f "$W/vocab.gguf" ] || python3 tools/bench/make_vocab_gguf.py "$W/vocab.gguf"
ls -l "$W/vocab.gguf" | awk '{print "file bytes:", $5}'
"$BIN/ftq-bench" header "$W/vocab.gguf" 50

echo "== F32 -> F16 conversion kernel vs memcpy (256 MB)"
"$BIN/ftq-bench" f32-to-f16 256

echo "== convert a ${GB} GB F32 safetensors model (largest tensor 1 GiB) to F16 GGUF"
[ -f "$W/big.safetensors" ] || python3 tools/bench/make_big_model.py "$W/big.safetensors" "$GB" 1024
rm -f "$W/big-f16.gguf" "$W/big-copy.safetensors"
/usr/bin/time -v "$BIN/ftq" convert "$W/big.safetensors" -o "$W/big-f16.gguf" --dtype f16 --quiet 2> "$W/time-convert.txt"
grep -E "Maximum resident|Elapsed|Percent of CPU" "$W/time-convert.txt"
echo "== copy the same model unchanged (safetensors -> safetensors), next to cp of the same file"
/usr/bin/time -v "$BIN/ftq" convert "$W/big.safetensors" -o "$W/big-copy.safetensors" --quiet 2> "$W/time-copy.txt"
grep -E "Maximum resident|Elapsed" "$W/time-copy.txt"
rm -f "$W/big-cp.safetensors"
/usr/bin/time -v cp "$W/big.safetensors" "$W/big-cp.safetensors" 2> "$W/time-cp.txt"
grep -E "Maximum resident|Elapsed" "$W/time-cp.txt" | sed 's/^/cp: /'
cmp "$W/big.safetensors" "$W/big-copy.safetensors" && echo "ftq copy is byte-identical to the input"
rm -f "$W/big-cp.safetensors" "$W/big-copy.safetensors" "$W/big-f16.gguf"
