#!/usr/bin/env python3
"""Cross-check of `ftq compare --json`: every figure recomputed in numpy float64 from the two
models (formats/metrics.md). A and B may be safetensors files (any float dtype; a bitsandbytes
layout is decoded by bnb_dequant_peer.intended) or GGUF files (decoded by gguf-py).

usage: compare_peer.py check A B FTQ_JSON
Prints a JSON report {"ok": bool, "problems": [...], "checked": N}; exits 1 on any problem."""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))


def load(path):
    """name -> float64 array (row-major shape)."""
    if path.endswith(".gguf"):
        from gguf import GGUFReader
        from gguf.quants import dequantize
        out = {}
        for t in GGUFReader(path).tensors:
            shape = [int(x) for x in reversed(t.shape.tolist())]
            out[t.name] = dequantize(t.data, t.tensor_type).astype(np.float64).reshape(shape)
        return out
    import ml_dtypes  # noqa: F401  (bf16 arrays)
    import safetensors.numpy
    from bnb_dequant_peer import intended
    src = safetensors.numpy.load_file(path)
    dec = intended(src)
    out = {}
    parts = set()
    for p in dec:
        for s in (".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
                  ".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4"):
            parts.add(p + s)
        if p.endswith(".weight"):
            parts.update({p[:-7] + ".SCB", p[:-7] + ".weight_format"})
    for p, (y, shape, _) in dec.items():
        out[p] = y.astype(np.float64).reshape(shape)
    for k, v in src.items():
        if k in parts or k in dec or v.dtype.kind not in "fV" and str(v.dtype) != "bfloat16":
            continue
        out[k] = v.astype(np.float64)
    return out


def figures(a, b):
    d = b - a
    n = a.size
    sq, sa, sb = float(np.sum(d * d)), float(np.sum(a * a)), float(np.sum(b * b))
    ab, ad, aa = float(np.sum(a * b)), float(np.sum(np.abs(d))), float(np.sum(np.abs(a)))
    mx = float(np.max(np.abs(d))) if n else None
    f = {"numel": n, "rmse": math.sqrt(sq / n), "max_abs": mx, "mean_abs": ad / n,
         "relative_frobenius": 0.0 if sq == 0 else (math.sqrt(sq) / math.sqrt(sa) if sa > 0 else None),
         "sqnr_db": 10 * math.log10(sa / sq) if sq > 0 and sa > 0 else None,
         "cosine": (1.0 if sq == 0 else None) if sa == 0 or sb == 0 else ab / math.sqrt(sa * sb),
         "rmse_rel": math.sqrt(sq / n) / (aa / n) if aa > 0 else None,
         "max_abs_rel": mx / (aa / n) if aa > 0 else None,
         "identical": sq == 0,
         "max_abs_index": int(np.argmax(np.abs(d).reshape(-1))) if n else None}
    return f


def close(x, y):
    if x is None or y is None:
        return x is None and y is None
    if isinstance(x, bool) or isinstance(y, bool):
        return x == y
    return x == y or abs(x - y) <= 1e-6 * max(abs(x), abs(y)) + 1e-300


def check(a_path, b_path, ftq_json):
    a, b = load(a_path), load(b_path)
    with open(ftq_json) as f:
        doc = json.load(f)
    problems = []
    names = [t["name"] for t in doc["tensors"]]
    both = [k for k in a if k in b]
    if sorted(names) != sorted(both):
        problems.append(f"compared tensors differ: {sorted(set(names) ^ set(both))[:5]}")
    if sorted(doc["only_in_a"]) != sorted(k for k in a if k not in b):
        problems.append("only_in_a differs")
    if sorted(doc["only_in_b"]) != sorted(k for k in b if k not in a):
        problems.append("only_in_b differs")
    for t in doc["tensors"]:
        if t["name"] not in a or t["name"] not in b:
            continue
        want = figures(a[t["name"]], b[t["name"]])
        for k, v in want.items():
            if not close(t.get(k), v):
                problems.append(f"{t['name']}: {k} {t.get(k)} vs numpy {v}")
    # Whole model, element-weighted: the same formulas over all compared elements.
    if both:
        fa = np.concatenate([a[k].reshape(-1) for k in both])
        fb = np.concatenate([b[k].reshape(-1) for k in both])
        want = figures(fa, fb)
        for k in ("numel", "rmse", "max_abs", "mean_abs", "relative_frobenius", "sqnr_db", "cosine", "rmse_rel"):
            if not close(doc["total"].get(k), want[k]):
                problems.append(f"total: {k} {doc['total'].get(k)} vs numpy {want[k]}")
    print(json.dumps({"ok": not problems, "problems": problems[:20], "checked": len(doc["tensors"])}, indent=1))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)
