#!/usr/bin/env bash
# ftq pack / unpack next to the zstd command on realistic BF16 weights. Prints figures;
# asserts nothing (the tests do that).
#   bash tools/bench/pack_bench.sh [MiB]     (default: a model of about 512 MiB)
# BENCH_DIR (default scratch/bench-pack) holds the model, the packs and the unpacked copies;
# put it on tmpfs (BENCH_DIR=/dev/shm/ftq-bench) to time the CPU work without the disk.
# Needs python3 with numpy and ml_dtypes, zstd and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/../.."
MB="${1:-512}"
# SCRATCH_PATH: a build directory other than .build (swift build --scratch-path).
SCRATCH=()
if [ -n "${SCRATCH_PATH:-}" ]; then SCRATCH=(--scratch-path "$SCRATCH_PATH"); fi
swift build -c release --product ftq "${SCRATCH[@]}" >/dev/null
BIN="$(swift build -c release "${SCRATCH[@]}" --show-bin-path)"
W="${BENCH_DIR:-scratch/bench-pack}"
mkdir -p "$W"
M="$W/bf16-${MB}MiB.safetensors"

# A Llama-shaped BF16 model: matrices drawn from N(0, 0.02) and norm weights near 1, rounded
# to BF16 (round to nearest even, as ml_dtypes does), in the safetensors layout.
if [ ! -f "$M" ]; then
python3 - "$M" "$MB" <<'PY'
import json, struct, sys
import numpy as np, ml_dtypes
path, mb = sys.argv[1], int(sys.argv[2])
h = 1024
layer_shapes = [("self_attn.q_proj.weight", (h, h)), ("self_attn.k_proj.weight", (h // 4, h)),
                ("self_attn.v_proj.weight", (h // 4, h)), ("self_attn.o_proj.weight", (h, h)),
                ("mlp.gate_proj.weight", (4 * h, h)), ("mlp.up_proj.weight", (4 * h, h)),
                ("mlp.down_proj.weight", (h, 4 * h)), ("input_layernorm.weight", (h,)),
                ("post_attention_layernorm.weight", (h,))]
per_layer = sum(2 * int(np.prod(s)) for _, s in layer_shapes)
layers = max(1, (mb * 2**20) // per_layer)
shapes = [(f"model.layers.{i}.{name}", shape) for i in range(layers) for name, shape in layer_shapes]
rng = np.random.default_rng(2024)
header, off = {"__metadata__": {"format": "pt"}}, 0
for name, shape in sorted(shapes):
    n = 2 * int(np.prod(shape))
    header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
    off += n
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    for name, shape in sorted(shapes):
        if name.endswith("norm.weight"):
            x = 1.0 + rng.standard_normal(shape, dtype=np.float32) * 0.02
        else:
            x = rng.standard_normal(shape, dtype=np.float32) * 0.02
        f.write(x.astype(ml_dtypes.bfloat16).tobytes())
PY
fi
SIZE=$(stat -c %s "$M")
echo "== input: $M, $SIZE bytes, BF16 ~ N(0, 0.02); $(nproc) cores"

TF='%e s elapsed, %U s user, %S s system, %P CPU, %M KB max RSS'
# speed BYTES TIMEFILE: bytes over the elapsed seconds of a /usr/bin/time -f "$TF" file.
speed() { python3 -c "import sys; b=int(sys.argv[1]); t=float(open(sys.argv[2]).read().split()[0]); print(f'{b/t/1e9:.2f} GB/s')" "$1" "$2"; }
ratio() { python3 -c "import sys; print(f'ratio {int(sys.argv[1])/int(sys.argv[2]):.4f} ({sys.argv[2]} bytes)')" "$1" "$2"; }

rm -f "$W/plain.zst" "$W"/*.ftqz* && rm -rf "$W/out"*
echo "== zstd -3 (one thread)"
/usr/bin/time -f "$TF" -o "$W/t-zc" zstd -3 -q -f "$M" -o "$W/plain.zst"
echo "compress:   $(cat "$W/t-zc"); $(speed "$SIZE" "$W/t-zc")"
/usr/bin/time -f "$TF" -o "$W/t-zd" zstd -d -q -f "$W/plain.zst" -o "$W/plain.out"
echo "decompress: $(cat "$W/t-zd"); $(speed "$SIZE" "$W/t-zd")"
ratio "$SIZE" "$(stat -c %s "$W/plain.zst")"
rm -f "$W/plain.out"
echo "== zstd -3 -T0 (all cores)"
/usr/bin/time -f "$TF" -o "$W/t-zc2" zstd -3 -T0 -q -f "$M" -o "$W/plain.zst"
echo "compress:   $(cat "$W/t-zc2"); $(speed "$SIZE" "$W/t-zc2")"
rm -f "$W/plain.zst"

for T in 1 "$(nproc)"; do
  echo "== ftq pack / unpack --level 3 --threads $T"
  /usr/bin/time -f "$TF" -o "$W/t-pc$T" "$BIN/ftq" pack "$M" -o "$W/m$T.ftqz" --threads "$T" --quiet --json > "$W/pack$T.json"
  echo "pack:   $(cat "$W/t-pc$T"); $(speed "$SIZE" "$W/t-pc$T")"
  ratio "$SIZE" "$(stat -c %s "$W/m$T.ftqz")"
  python3 -c "import sys,json; s=json.load(open(sys.argv[2]))['compress_seconds']; print(f'  byte planes + zstd alone: {s} CPU s = {int(sys.argv[1])/s/1e9:.2f} GB/s per core')" "$SIZE" "$W/pack$T.json"
  /usr/bin/time -f "$TF" -o "$W/t-pd$T" "$BIN/ftq" unpack "$W/m$T.ftqz" -o "$W/out$T" --threads "$T" --quiet --json > "$W/unpack$T.json"
  echo "unpack: $(cat "$W/t-pd$T"); $(speed "$SIZE" "$W/t-pd$T") (every digest checked, manifest written, files synced)"
  python3 -c "import sys,json; s=json.load(open(sys.argv[2]))['decompress_seconds']; print(f'  zstd + byte planes alone: {s} CPU s = {int(sys.argv[1])/s/1e9:.2f} GB/s per core')" "$SIZE" "$W/unpack$T.json"
  cmp "$M" "$W/out$T/$(basename "$M")" && echo "  unpacked file is byte-identical"
  rm -rf "$W/out$T"
done
cmp "$W/m1.ftqz" "$W/m$(nproc).ftqz" && echo "== packs written with --threads 1 and $(nproc) are byte-identical"
rm -f "$W"/*.ftqz*
