#!/usr/bin/env python3
"""The intended dequantization of a bitsandbytes-layout checkpoint (formats/bnb-quants.md),
written independently in numpy from the file's own state (quant_map, absmax, nested absmax and
offset, SCB), and a check that ftq's `dequantize` output holds exactly those values.

bitsandbytes' own CPU dequantizer is not the reference: on shapes whose last dimension is a
multiple of 16 but not of the block size it uses another block's absmax (see
testdata/golden/bnb/README.md).

usage: bnb_dequant_peer.py check QUANTIZED(.safetensors) FTQ_OUTPUT.safetensors [DTYPE(f32|f16|bf16)]
Prints a JSON report {"ok": bool, "problems": [...], "checked": N}; exits 1 on any problem."""
import json
import sys

import ml_dtypes
import numpy as np
import safetensors.numpy

NP = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16, "float32": np.float32,
      "bf16": ml_dtypes.bfloat16, "f16": np.float16, "f32": np.float32}
SUFFIXES = (".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4")


def intended(src):
    """name -> (float32 values, shape, torch dtype name) for every quantized weight."""
    out = {}
    for k, v in src.items():
        suffix = next((s for s in SUFFIXES if k.endswith(s)), None)
        if suffix is None:
            continue
        p = k[: -len(suffix)]
        st = json.loads(bytes(v).decode())
        n = int(np.prod(st["shape"]))
        code = src[p + ".quant_map"].astype(np.float32)
        if "nested_offset" in st:
            q = src[p + ".absmax"].astype(np.int64)
            nested = src[p + ".nested_absmax"].astype(np.float32)
            code8 = src[p + ".nested_quant_map"].astype(np.float32)
            am = (code8[q] * nested[np.arange(len(q)) // st["nested_blocksize"]]).astype(np.float32)
            am = (am + np.float32(st["nested_offset"])).astype(np.float32)
        else:
            am = src[p + ".absmax"].astype(np.float32)
        packed = src[p].reshape(-1)
        nib = np.empty(packed.size * 2, np.int64)
        nib[0::2] = packed >> 4
        nib[1::2] = packed & 15
        y = (code[nib[:n]] * am[np.arange(n) // st["blocksize"]]).astype(np.float32)
        out[p] = (y, st["shape"], st["dtype"])
    for k, v in src.items():
        if k.endswith(".SCB"):
            m = k[: -len(".SCB")]
            q = src[m + ".weight"].astype(np.float32)
            y = (q * v.astype(np.float32)[:, None]).astype(np.float32) * np.float32(7.874015718698502e-3)
            out[m + ".weight"] = (y.astype(np.float32), list(q.shape), None)
    return out


def check(src_path, ftq_path, dtype=None):
    src = safetensors.numpy.load_file(src_path)
    got = safetensors.numpy.load_file(ftq_path)
    problems = []
    want = intended(src)
    parts = set()
    for p in want:
        for s in (".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map") + SUFFIXES:
            parts.add(p + s)
        if p.endswith(".weight"):
            parts.update({p[:-7] + ".SCB", p[:-7] + ".weight_format"})
    for p, (y, shape, sd) in want.items():
        if p not in got:
            problems.append(f"{p}: missing")
            continue
        t = np.dtype(NP[dtype or sd or "float16"]) if (dtype or sd) else got[p].dtype
        exp = y.astype(t).reshape(shape)
        g = got[p]
        if g.dtype != exp.dtype or list(g.shape) != list(shape):
            problems.append(f"{p}: {g.dtype} {list(g.shape)}, expected {exp.dtype} {shape}")
        elif g.tobytes() != exp.tobytes():
            problems.append(f"{p}: {int(np.sum(g.view(np.uint8) != exp.view(np.uint8)))} bytes differ")
    for k, v in src.items():
        if k in parts or k in want:
            continue
        if k not in got:
            problems.append(f"{k}: missing")
        elif dtype is None and got[k].tobytes() != v.tobytes():
            problems.append(f"{k}: changed")
    extra = sorted(set(got) - set(want) - (set(src) - parts))
    if extra:
        problems.append(f"unexpected tensors: {extra[:5]}")
    print(json.dumps({"ok": not problems, "problems": problems[:20], "checked": len(want)}, indent=1))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)
