#!/usr/bin/env bash
# ftq merge of a rank-16 adapter into a generated bf16 base of Llama-7B layer shapes (q, k, v, o
# 4096x4096; gate, up 11008x4096; down 4096x11008 per layer), next to the I/O it cannot avoid:
# reading the inputs and writing (and syncing) an output of the same size, measured in the same
# run. Prints figures (min and median of RUNS runs, wall and user+sys CPU) and the share of the
# merge's wall time that this I/O alone takes; asserts nothing.
#   bash tools/bench/merge_bench.sh [LAYERS (2)]
# Environment: RUNS (3); FTQ=path/to/ftq to time a given binary instead of building the
# portable release (e.g. the AVX2 build of tools/release-build.sh); BENCH_DIR (scratch/bench);
# THREADS (ftq's --threads, default all cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
LAYERS="${1:-2}"
RUNS="${RUNS:-3}"
if [ -z "${FTQ:-}" ]; then
  swift build -c release --product ftq >/dev/null
  FTQ="$(swift build -c release --show-bin-path)/ftq"
fi
W="${BENCH_DIR:-scratch/bench}/merge"
mkdir -p "$W"
[ -f "$W/base.safetensors" ] || python3 tools/bench/make_lora_bench.py "$W" "$LAYERS" 16
T="$W/times"
rm -f "$T".*
THREADS_OPT=()
[ -n "${THREADS:-}" ] && THREADS_OPT=(--threads "$THREADS")
for run in $(seq "$RUNS"); do
  rm -f "$W/merged.safetensors"*
  /usr/bin/time -a -o "$T.merge" -f "%e %U %S %M" "$FTQ" merge "$W/base.safetensors" "$W/adapter" -o "$W/merged.safetensors" -q "${THREADS_OPT[@]}"
  SIZE=$(stat -c %s "$W/merged.safetensors")
  /usr/bin/time -a -o "$T.read" -f "%e %U %S 0" cat "$W/base.safetensors" "$W/adapter/adapter_model.safetensors" > /dev/null
  /usr/bin/time -a -o "$T.write" -f "%e %U %S 0" dd if=/dev/zero of="$W/zeros.bin" bs=4M count=$(( (SIZE + 4194303) / 4194304 )) conv=fsync status=none
  rm -f "$W/zeros.bin"
done
python3 - "$T" "$RUNS" "$(stat -c %s "$W/base.safetensors")" "$(stat -c %s "$W/merged.safetensors")" <<'EOF'
import statistics, sys
t, runs, nin, nout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def load(k):
    rows = [list(map(float, l.split())) for l in open(f"{t}.{k}") if l.strip() and l[0].isdigit()]
    return [r[0] for r in rows], [r[1] + r[2] for r in rows], max(r[3] for r in rows)
m, r, w = load("merge"), load("read"), load("write")
io = [a + b for a, b in zip(r[0], w[0])]
def f(xs): return f"min {min(xs):.2f} s, median {statistics.median(xs):.2f} s"
print(f"base {nin / 1e9:.2f} GB, output {nout / 1e9:.2f} GB, {runs} runs")
print(f"ftq merge:                          wall {f(m[0])}; CPU (user+sys) {f(m[1])}; peak RSS {m[2] / 1024:.0f} MB")
print(f"read the inputs (cat > /dev/null):  wall {f(r[0])}")
print(f"write + fsync the output's size:    wall {f(w[0])}")
print(f"I/O alone (read + write):           wall {f(io)}")
print(f"share of the merge's wall time that the I/O alone takes: {min(io) / min(m[0]):.0%} (min / min), "
      f"{statistics.median(io) / statistics.median(m[0]):.0%} (median / median)")
EOF
