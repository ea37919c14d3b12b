#!/usr/bin/env python3
"""Quantization interop: ftq's `quantize --type T` output against gguf-py's quantizers (which
are byte-identical to ggml's reference ones for Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1).

usage: quantize_peer.py check SOURCE(.safetensors|.gguf) FTQ_OUTPUT.gguf TYPE [NAME=TYPE]...
Every 2-D weight of SOURCE (a GGUF source's quantized tensors decoded by gguf-py first) must
be gguf-py's quantization to TYPE byte for byte (to the TYPE a NAME=TYPE gives for that tensor:
a ggml type, or F32 / F16 / BF16 as rounded by numpy); 1-D tensors must be their float32 values.
Prints a JSON report; exits 1 on any problem."""
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader
from gguf.quants import dequantize, quantize

PLAIN = {QT.F32, QT.F16, QT.BF16, QT.F64}


def source_tensors(path):
    """name -> float32 array (row-major shape), as ftq reads the source."""
    out = {}
    if path.endswith(".gguf"):
        for t in GGUFReader(path).tensors:
            shape = [int(n) for n in reversed(t.shape.tolist())]
            if t.tensor_type in PLAIN:
                v = np.asarray(t.data).astype(np.float32)
            else:
                v = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32)
            out[t.name] = v.reshape(shape)
    else:
        from safetensors import safe_open
        import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)
        with safe_open(path, "np") as f:
            for k in f.keys():
                out[k] = f.get_tensor(k).astype(np.float32)
    return out


def main(src, ftq_out, type_name, per_tensor=()):
    qtype = QT[type_name]
    chosen = dict(a.split("=", 1) for a in per_tensor)
    want = source_tensors(src)
    problems = []
    got = {t.name: t for t in GGUFReader(ftq_out).tensors}
    for name, x in want.items():
        t = got.get(name)
        if t is None:
            problems.append(f"{name}: missing")
            continue
        raw = np.asarray(t.data).view(np.uint8).tobytes()
        if x.ndim == 2 and name in chosen:
            kind = QT[chosen[name]]
            if t.tensor_type != kind:
                problems.append(f"{name}: type {t.tensor_type.name}, expected {kind.name}")
            elif kind == QT.F32 or kind == QT.F16:
                if raw != x.astype(np.float32 if kind == QT.F32 else np.float16).tobytes():
                    problems.append(f"{name}: values differ from numpy's {kind.name}")
            elif kind == QT.BF16:
                import ml_dtypes
                if raw != x.astype(ml_dtypes.bfloat16).tobytes():
                    problems.append(f"{name}: values differ from ml_dtypes' BF16")
            elif raw != quantize(x, kind).tobytes():
                problems.append(f"{name}: blocks differ from gguf-py's {kind.name} quantization")
        elif x.ndim == 2 and x.shape[1] % 32 == 0:
            if t.tensor_type != qtype:
                problems.append(f"{name}: type {t.tensor_type.name}, expected {type_name}")
                continue
            expected = quantize(x, qtype).tobytes()
            if raw != expected:
                problems.append(f"{name}: blocks differ from gguf-py's quantization")
        elif x.ndim < 2:
            if t.tensor_type != QT.F32 or raw != x.astype(np.float32).tobytes():
                problems.append(f"{name}: expected its F32 values")
    print(json.dumps({"ok": not problems, "problems": problems[:20], "tensors": len(want)}, indent=1))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
