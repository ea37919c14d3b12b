#!/usr/bin/env python3
"""A numpy reference for `ftq merge` of a DoRA adapter into a quantized GGUF base, which has no
other peer (formats/lora-merge.md, "DoRA"): each adapted tensor is decoded by gguf-py, its q/k
rows put back in Hugging Face order, and W' = float32(m / ||V row||) * V computed in float32 with
V = W + (B @ A) * scaling, the product a fused multiply-add over the rank in order (emulated in
float64, exact for these values) and the row norm in torch's CPU order (8 lane sums, rows a
multiple of 8 long); the result must equal what `ftq merge --dequantize` wrote, bit for bit.

usage: gguf_dora_peer.py check BASE.gguf ADAPTER_DIR HF_CONFIG.json MERGED_DEQUANTIZED.gguf
Prints a JSON report; exits 1 on any difference."""
import json
import math
import sys

import numpy as np
import safetensors.numpy
from gguf import GGUFReader
from gguf.quants import dequantize

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gguf_lora_peer import gguf_name  # noqa: E402


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def values(t):
    shape = [int(x) for x in reversed(t.shape.tolist())]
    return np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(shape)


def row_norm(x):
    n = x.shape[0]
    body = n // 8 * 8
    assert body == n, "rows must be a multiple of 8 long"
    lanes = np.zeros(8, np.float32)
    for i in range(0, body, 8):
        v = x[i:i + 8]
        lanes = (lanes + (v * v).astype(np.float32)).astype(np.float32)
    s = lanes[0]
    for j in range(1, 8):
        s = np.float32(s + lanes[j])
    return np.float32(np.sqrt(s))


def main(base, adapter, config, merged):
    cfg = json.load(open(config))
    acfg = json.load(open(f"{adapter}/adapter_config.json"))
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    a = safetensors.numpy.load_file(f"{adapter}/adapter_model.safetensors")
    b = {t.name: t for t in GGUFReader(base).tensors}
    got = {t.name: t for t in GGUFReader(merged).tensors}
    problems, checked = [], 0
    for k in sorted(a):
        if not k.endswith(".lora_magnitude_vector"):
            continue
        module = k[len("base_model.model."):-len(".lora_magnitude_vector")]
        name = gguf_name(module + ".weight")
        A, B, m = a[module_key(module, "lora_A")], a[module_key(module, "lora_B")], a[k].astype(np.float32)
        r = A.shape[0]
        scaling = acfg["lora_alpha"] / (math.sqrt(r) if acfg.get("use_rslora") else r)
        w = values(b[name])
        h = heads if name.endswith("attn_q.weight") else kv if name.endswith("attn_k.weight") else None
        if h:
            w = unpermute(w, h)
        acc = np.zeros(w.shape, np.float32)
        for j in range(r):
            acc = (acc.astype(np.float64) + np.outer(B[:, j].astype(np.float64), A[j].astype(np.float64))).astype(np.float32)
        v = (w + (acc * np.float32(scaling)).astype(np.float32)).astype(np.float32)
        out = np.empty_like(v)
        for o in range(v.shape[0]):
            f = np.float32(m[o] / row_norm(v[o]))
            out[o] = (f * v[o]).astype(np.float32)
        have = np.asarray(got[name].data, dtype=np.float32).reshape(out.shape)
        if h:
            have = unpermute(have, h)
        if have.tobytes() != out.tobytes():
            problems.append(f"{name}: {int((have != out).sum())} of {out.size} values differ")
        checked += 1
    print(json.dumps({"ok": not problems and checked > 0, "problems": problems, "checked": checked}))
    sys.exit(1 if problems or checked == 0 else 0)


def module_key(module, part):
    return f"base_model.model.{module}.{part}.weight"


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "check":
        main(*sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)
