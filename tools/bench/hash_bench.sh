#!/usr/bin/env bash
# Hashing benchmarks, in release, in one run: `ftq hash` next to `openssl dgst -sha256` on the
# same files in the page cache (one file, then two at once), and what hashing adds to a convert.
#   bash tools/bench/hash_bench.sh [GB]     (default 2 GB per file)
set -euo pipefail
cd "$(dirname "$0")/../.."
GB="${1:-2}"
swift build -c release --product ftq >/dev/null
swift build -c release --product ftq-bench >/dev/null
BIN="$(swift build -c release --show-bin-path)"
W="${BENCH_DIR:-scratch/bench}"
mkdir -p "$W"
for n in 1 2; do
  [ -f "$W/hash$n.bin" ] || head -c "$((GB * 1000000000))" /dev/urandom > "$W/hash$n.bin"
done
cat "$W/hash1.bin" "$W/hash2.bin" > /dev/null   # into the page cache
t() { /usr/bin/time -f "%e s wall, %P CPU" "$@" 2>&1 >/dev/null | tail -1; }
echo "== one ${GB} GB file (3 runs each, alternating)"
for i in 1 2 3; do
  echo "openssl dgst -sha256: $(t openssl dgst -sha256 "$W/hash1.bin")"
  echo "ftq hash:             $(t "$BIN/ftq" hash "$W/hash1.bin")"
done
echo "== two ${GB} GB files"
for i in 1 2; do
  echo "openssl dgst, one after the other: $(t openssl dgst -sha256 "$W/hash1.bin" "$W/hash2.bin")"
  echo "ftq hash (both cores):             $(t "$BIN/ftq" hash "$W/hash1.bin" "$W/hash2.bin")"
  echo "ftq hash --threads 1:              $(t "$BIN/ftq" hash --threads 1 "$W/hash1.bin" "$W/hash2.bin")"
done
echo "== what hashing adds to convert (3 GB F32 -> F16 GGUF)"
[ -f "$W/big.safetensors" ] || python3 tools/bench/make_big_model.py "$W/big.safetensors" 3 1024
"$BIN/ftq-bench" convert-hashing "$W/big.safetensors" "$W/bench-out.gguf" 3
rm -f "$W/bench-out.gguf"
