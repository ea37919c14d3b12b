#!/usr/bin/env python3
"""Writes a small Llama-shaped Hugging Face checkpoint (BF16 safetensors + config.json).

Deterministic: the same bytes on every run (seeded PRNG, fixed tensor order). Uses only the
Python standard library, so it runs on a fresh machine before any package is installed.

usage: make_tiny_model.py OUTDIR [--layers N] [--hidden N]
"""
import argparse
import json
import os
import random
import struct


def bf16_bytes(values):
    out = bytearray()
    for v in values:
        u = struct.unpack("<I", struct.pack("<f", v))[0]
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # round to nearest even
        out += struct.pack("<H", u)
    return bytes(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=256)
    a = ap.parse_args()
    h, inter, v = a.hidden, a.hidden * 3, a.vocab
    rng = random.Random(1234)
    shapes = [("model.embed_tokens.weight", (v, h))]
    for i in range(a.layers):
        p = f"model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (h,)),
            (p + "self_attn.q_proj.weight", (h, h)),
            (p + "self_attn.k_proj.weight", (h // 2, h)),
            (p + "self_attn.v_proj.weight", (h // 2, h)),
            (p + "self_attn.o_proj.weight", (h, h)),
            (p + "post_attention_layernorm.weight", (h,)),
            (p + "mlp.gate_proj.weight", (inter, h)),
            (p + "mlp.up_proj.weight", (inter, h)),
            (p + "mlp.down_proj.weight", (h, inter)),
        ]
    shapes += [("model.norm.weight", (h,)), ("lm_head.weight", (v, h))]

    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    # safetensors orders same-dtype tensors by name.
    for name, shape in sorted(shapes):
        n = 1
        for d in shape:
            n *= d
        if name.endswith("norm.weight"):
            vals = [1.0 + rng.gauss(0, 0.02) for _ in range(n)]
        else:
            vals = [rng.gauss(0, 0.02) for _ in range(n)]
        blob = bf16_bytes(vals)
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    os.makedirs(a.outdir, exist_ok=True)
    with open(os.path.join(a.outdir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
        "intermediate_size": inter, "num_hidden_layers": a.layers, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": v, "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    with open(os.path.join(a.outdir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    print(f"wrote {a.outdir}/model.safetensors ({len(shapes)} tensors, {8 + len(hj) + offset} bytes) and config.json")


if __name__ == "__main__":
    main()
