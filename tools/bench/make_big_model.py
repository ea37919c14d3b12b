#!/usr/bin/env python3
"""Writes a multi-GB F32 safetensors file quickly (tensor data is a repeated pattern, written
in 64 MiB pieces so that this script's own memory stays small).
usage: make_big_model.py OUT.safetensors GB [LARGEST_TENSOR_MB]"""
import json
import struct
import sys

out, gb = sys.argv[1], float(sys.argv[2])
largest_mb = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
total = int(gb * 1e9) // 4 * 4
sizes = []
remaining = total
largest = largest_mb * 2**20
# one largest tensor, then 64 MiB tensors
sizes.append(min(largest, remaining)); remaining -= sizes[-1]
while remaining > 0:
    s = min(64 * 2**20, remaining)
    sizes.append(s); remaining -= s
header = {"__metadata__": {"format": "pt"}}
off = 0
names = []
for i, s in enumerate(sizes):
    name = f"layer.{i:04d}.weight"
    names.append(name)
    header[name] = {"dtype": "F32", "shape": [s // 4 // 256, 256] if (s // 4) % 256 == 0 else [s // 4], "data_offsets": [off, off + s]}
    off += s
h = json.dumps(dict(sorted(header.items(), key=lambda kv: header[kv[0]]["data_offsets"][0] if kv[0] != "__metadata__" else -1)), separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
piece = struct.pack("<f", 0.5) * (16 * 2**20)  # 64 MiB
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for s in sizes:
        while s > 0:
            k = min(s, len(piece))
            f.write(piece[:k])
            s -= k
print(f"wrote {out}: {len(sizes)} tensors, {off} bytes of data, largest tensor {sizes[0]} bytes")
