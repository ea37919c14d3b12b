#!/usr/bin/env python3
"""A bf16 base with LAYERS layers of Llama-7B shapes (q, k, v, o 4096x4096; gate, up 11008x4096;
down 4096x11008) and a rank-R float32 LoRA adapter on all seven linear layers, seeded.
usage: make_lora_bench.py DIR [LAYERS (2)] [R (16)]   writes DIR/base.safetensors, DIR/adapter/"""
import json
import os
import sys

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

out = sys.argv[1]
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
r = int(sys.argv[3]) if len(sys.argv) > 3 else 16
os.makedirs(os.path.join(out, "adapter"), exist_ok=True)
rng = np.random.default_rng(5)
shapes = {"self_attn.q_proj": (4096, 4096), "self_attn.k_proj": (4096, 4096), "self_attn.v_proj": (4096, 4096),
          "self_attn.o_proj": (4096, 4096), "mlp.gate_proj": (11008, 4096), "mlp.up_proj": (11008, 4096),
          "mlp.down_proj": (4096, 11008)}
base, lora = {}, {}
for l in range(layers):
    for m, (o, i) in shapes.items():
        name = f"model.layers.{l}.{m}"
        base[name + ".weight"] = (rng.standard_normal((o, i), dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16)
        lora[f"base_model.model.{name}.lora_A.weight"] = rng.standard_normal((r, i), dtype=np.float32) * 0.01
        lora[f"base_model.model.{name}.lora_B.weight"] = rng.standard_normal((o, r), dtype=np.float32) * 0.01
save_file(base, os.path.join(out, "base.safetensors"))
save_file(lora, os.path.join(out, "adapter", "adapter_model.safetensors"))
with open(os.path.join(out, "adapter", "adapter_config.json"), "w") as f:
    json.dump({"peft_type": "LORA", "r": r, "lora_alpha": 2 * r}, f)
