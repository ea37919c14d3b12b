#!/usr/bin/env python3
"""Writes a bf16 safetensors model of seeded normal weights (numpy + ml_dtypes), in pieces so
that this script's memory stays small.
usage: make_bf16_model.py OUT.safetensors one     one tensor layer.weight [4096, 11008]
       make_bf16_model.py OUT.safetensors GB      2-D weights [4096, 11008] up to GB gigabytes"""
import json
import struct
import sys

import ml_dtypes
import numpy as np

out, what = sys.argv[1], sys.argv[2]
shape = (4096, 11008)
per = shape[0] * shape[1] * 2
count = 1 if what == "one" else max(1, int(float(what) * 1e9) // per)
names = ["layer.weight"] if what == "one" else [f"model.layers.{i}.mlp.up_proj.weight" for i in range(count)]
header = {"__metadata__": {"format": "pt"}}
for i, n in enumerate(sorted(names)):
    header[n] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [i * per, (i + 1) * per]}
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
rng = np.random.default_rng(3)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for _ in names:
        for r in range(0, shape[0], 512):
            f.write((rng.standard_normal((512, shape[1]), dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16).tobytes())
