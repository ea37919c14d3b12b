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
rm -f "$W/one-nf4.safetensors"*
/usr/bin/time -f "ftq: %e s wall, %M KB peak RSS, %P CPU (first run)" "$BIN/ftq" quantize "$W/one.safetensors" --nf4 -o "$W/one-nf4.safetensors" -q >/dev/null
# Whole processes (start-up, reading, quantizing, hashing, writing and syncing the output and
# its manifest), timed to the microsecond: the minimum and median of 15 runs.
FTQ_SECONDS=$(python3 - "$BIN/ftq" "$W" <<'PY'
import glob, os, resource, subprocess, sys, time
ftq, w = sys.argv[1], sys.argv[2]
walls, cpus = [], []
for _ in range(15):
    for f in glob.glob(w + "/one-nf4.safetensors*"):
        os.remove(f)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([ftq, "quantize", w + "/one.safetensors", "--nf4", "-o", w + "/one-nf4.safetensors", "-q"],
                   stdout=subprocess.DEVNULL, check=True)
    walls.append(time.perf_counter() - t0)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
walls.sort(); cpus.sort()
print(f"ftq quantize --nf4 (whole process): {walls[0]*1000:.1f} ms min, {walls[7]*1000:.1f} ms median wall; "
      f"{cpus[7]*1000:.1f} ms CPU median (15 runs)", file=sys.stderr)
print(f"{walls[7]:.4f}")
PY
)
BNB_LINE=$("$PY" tools/bench/bnb_peer_quantize.py "$W/one.safetensors" "$W/one-bnb.safetensors" 5 2>/dev/null | grep '^bitsandbytes')
echo "$BNB_LINE"
BNB_SECONDS=$(echo "$BNB_LINE" | sed -E 's/.*: ([0-9.]+) s.*/\1/')
python3 -c "import sys; print(f'bitsandbytes / ftq (medians): {float(sys.argv[1]) / float(sys.argv[2]):.1f}x')" "$BNB_SECONDS" "$FTQ_SECONDS"
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
