#!/usr/bin/env python3
"""Dequantization interop: a GGUF with every legacy block type, written by gguf-py, and a check
that ftq's dequantized output holds exactly gguf-py's dequantized values.

usage: dequant_peer.py write OUT.gguf
       dequant_peer.py check IN.gguf FTQ_OUTPUT(.safetensors|.gguf) DTYPE(f32|f16|bf16)
Prints a JSON report {"ok": bool, "problems": [...]}; exits 1 on any problem."""
import json
import sys

import ml_dtypes
import numpy as np
import safetensors.numpy
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader, GGUFWriter
from gguf.quants import dequantize, quantize

TYPES = [QT.Q8_0, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1]
PLAIN = {QT.F32, QT.F16, QT.BF16, QT.F64, QT.I8, QT.I16, QT.I32, QT.I64}


def report(problems, **extra):
    print(json.dumps({"ok": not problems, "problems": problems[:20], **extra}, indent=1))
    sys.exit(1 if problems else 0)


def write(out):
    rng = np.random.default_rng(7)
    w = GGUFWriter(out, "llama")
    w.add_uint32("general.file_type", 7)
    for k, t in enumerate(TYPES):
        x = (rng.standard_normal((8, 96)) * 0.02).astype(np.float32)
        x[0, :32] = 0.0  # an all-zero block
        w.add_tensor(f"blk.{k}.w", quantize(x, t), raw_shape=quantize(x, t).shape, raw_dtype=t)
    w.add_tensor("norm", (1 + rng.standard_normal(96) * 0.02).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    report([])


def check(src, out, dtype):
    reader = GGUFReader(src)
    want = {}
    for t in reader.tensors:
        shape = [int(n) for n in reversed(t.shape.tolist())]
        quantized = t.tensor_type not in PLAIN
        if quantized:
            v = dequantize(np.asarray(t.data), t.tensor_type).reshape(shape).astype(np.float32)
        else:
            v = np.asarray(t.data).reshape(shape)
        np_dtype = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}[dtype]
        if v.dtype == np.float32 and not (not quantized and dtype == "f32"):
            v = v.astype(np_dtype)
        want[t.name] = v
    if out.endswith(".gguf"):
        got = {}
        for t in GGUFReader(out).tensors:
            shape = [int(n) for n in reversed(t.shape.tolist())]
            got[t.name] = np.asarray(t.data).view({0: np.float32, 1: np.float16, 30: ml_dtypes.bfloat16}[int(t.tensor_type)]).reshape(shape)
    else:
        with open(out, "rb") as f:
            got = safetensors.numpy.load(f.read()) if dtype != "bf16" else None
        if got is None:
            from safetensors import safe_open
            got = {}
            with safe_open(out, "np") as f:
                for k in f.keys():
                    got[k] = f.get_tensor(k)
    problems = []
    for name, v in want.items():
        g = got.get(name)
        if g is None:
            problems.append(f"{name}: missing")
            continue
        if list(g.shape) != list(v.shape) or g.dtype != v.dtype:
            problems.append(f"{name}: {g.dtype}{list(g.shape)} vs {v.dtype}{list(v.shape)}")
            continue
        a = np.ascontiguousarray(g).view(np.uint8)
        b = np.ascontiguousarray(v).view(np.uint8)
        if not np.array_equal(a, b):
            problems.append(f"{name}: values differ from gguf-py's dequantization")
    report(problems, tensors=len(want))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4])
