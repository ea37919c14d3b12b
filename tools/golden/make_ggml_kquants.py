#!/usr/bin/env python3
"""Makes the golden files for the dequantization of ggml's K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.

gguf-py has no quantizer for these types, so the synthetic goldens start from blocks of bytes:
seeded random bytes whose float16 scale fields are replaced by finite values, and hand-made edge
blocks (zero and extreme scales, all-zero and all-max codes, subnormal, negative and huge d).
For each case and type this writes the blocks and what gguf-py's gguf.quants.dequantize gives
for them:

    NAME.T.bin          the blocks, concatenated (256 elements each)
    NAME.T.deq.f32      gguf.quants.dequantize(NAME.T.bin, T), little-endian float32
                        (cases whose "deq" is "f32")
    NAME.T.deq.fnv1a64  one little-endian u64 per block: the 64-bit FNV-1a hash of that block's
                        1024 dequantized bytes (cases whose "deq" is "fnv1a64"; full float arrays
                        for these would not fit the size budget)
    cases.json          the cases, their block counts and types
    llamacpp.json       every K-quant tensor of testdata/llamacpp/*.gguf: its absolute data offset
                        and byte size (from gguf-py's GGUFReader), and the FNV-1a 64 and SHA-256
                        of gguf-py's dequantized float32 bytes, with a few sampled values
    README.md           provenance: versions, command, cases, sha256 of every file

Before anything is written, every block is checked against an independent scalar
reimplementation of ggml's dequantize_row_q2_K ... dequantize_row_q6_K in this file (ggml's
loops and its order of float32 operations, numpy float32 scalars, a float16 decoder of its own).
Any difference in the bits stops the script with the case, type and block. Outputs that hold a
NaN or an infinity are refused.

With --ggml-lib PATH (a libggml-base shared library, e.g. the one llama-cpp-python builds),
every block and every fixture tensor is also dequantized by ggml's own type_traits.to_float and
compared bit for bit.

Needs numpy and gguf 0.19.0 (tools/requirements-test.txt). Deterministic: the same versions give
the same bytes on every run.

usage: make_ggml_kquants.py [--out-dir DIR (default: testdata/golden/ggml-kquants)] [--ggml-lib PATH]
"""
import argparse
import ctypes
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import sys
from fractions import Fraction

import numpy as np
import gguf
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize as gguf_dequantize

GGUF_VERSION = "0.19.0"
SEED = 20250412
QK_K = 256
TYPES = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
TYPE_SIZE = {"Q2_K": 84, "Q3_K": 110, "Q4_K": 144, "Q5_K": 176, "Q6_K": 210}
GGML_TYPE_ID = {"Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14}
GENERATOR = "tools/golden/make_ggml_kquants.py"
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_OUT = os.path.join(ROOT, "testdata", "golden", "ggml-kquants")
FIXTURE_DIR = os.path.join(ROOT, "testdata", "llamacpp")
FIXTURES = ["tiny-llama-Q4_K_M.gguf", "tiny-llama-Q4_0.gguf"]
SAMPLES_PER_TENSOR = 32

F32 = np.float32

# Where the fields of each block lie: (offset, length). "f16" lists the float16 scale fields
# (d, then dmin where the type has one); "scales" the packed sub-block scales; "codes" the
# regions that hold the quantized values (low bits and high bits).
LAYOUT = {
    "Q2_K": {"f16": [80, 82], "scales": (0, 16), "codes": [(16, 64)]},
    "Q3_K": {"f16": [108], "scales": (96, 12), "codes": [(0, 32), (32, 64)]},
    "Q4_K": {"f16": [0, 2], "scales": (4, 12), "codes": [(16, 128)]},
    "Q5_K": {"f16": [0, 2], "scales": (4, 12), "codes": [(16, 32), (48, 128)]},
    "Q6_K": {"f16": [208], "scales": (192, 16), "codes": [(0, 128), (128, 64)]},
}


class Mismatch(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# An independent reimplementation of ggml's dequantize_row_q*_K (ggml-quants.c), one block at a
# time, written from the C semantics: each output is computed with the same float32 operations
# in the same order as ggml (numpy float32 scalars: IEEE single, round to nearest even, no fused
# multiply-add). Integer conversions to float are exact.
# ---------------------------------------------------------------------------------------------

def f16_to_f32(h):
    """IEEE binary16 bits -> float32, exactly (subnormals included), with rationals."""
    sign = -1 if h & 0x8000 else 1
    exp = (h >> 10) & 0x1F
    mant = h & 0x3FF
    if exp == 0x1F:
        raise Mismatch(f"non-finite float16 {h:#06x} in a golden block")
    if exp == 0:
        v = Fraction(mant, 2 ** 24)
    else:
        v = Fraction(1024 + mant, 1024) * Fraction(2) ** (exp - 15)
    r = F32(float(v))
    return -r if sign < 0 else r          # keeps -0.0


def half_at(blk, o):
    return f16_to_f32(int.from_bytes(blk[o:o + 2], "little"))


def ref_q2_k(blk, exact=None):
    scales, qs = blk[0:16], blk[16:80]
    d, dmin = half_at(blk, 80), half_at(blk, 82)
    y = []
    for h in range(2):                    # two halves of 128
        for j in range(4):                # shift 2j
            for part in range(2):         # two sub-blocks of 16
                sc = scales[8 * h + 2 * j + part]
                dl = F32(d * F32(sc & 0xF))
                ml = F32(dmin * F32(sc >> 4))
                for l in range(16 * part, 16 * part + 16):
                    q = (qs[32 * h + l] >> (2 * j)) & 3
                    y.append(F32(F32(dl * F32(q)) - ml))
                    if exact is not None:
                        exact.append(Fraction(float(dl)) * q - Fraction(float(ml)))
    return y


def q3_k_scales(sc12):
    """The 16 signed 6-bit scales of a Q3_K block (already minus 32)."""
    out = []
    for s in range(16):
        low = (sc12[s] & 0xF) if s < 8 else (sc12[s - 8] >> 4)
        high = (sc12[8 + s % 4] >> (2 * (s // 4))) & 3
        out.append((low | (high << 4)) - 32)
    return out


def ref_q3_k(blk):
    hmask, qs, sc = blk[0:32], blk[32:96], q3_k_scales(blk[96:108])
    d = half_at(blk, 108)
    y = []
    for h in range(2):
        for j in range(4):
            bit = 1 << (4 * h + j)
            for part in range(2):
                dl = F32(d * F32(sc[8 * h + 2 * j + part]))
                for l in range(16 * part, 16 * part + 16):
                    q = ((qs[32 * h + l] >> (2 * j)) & 3) - (0 if hmask[l] & bit else 4)
                    y.append(F32(dl * F32(q)))
    return y


def scale_min_k4(j, s):
    """Sub-block j's 6-bit scale and min from the 12 packed bytes s (Q4_K, Q5_K)."""
    if j < 4:
        return s[j] & 63, s[j + 4] & 63
    return (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)


def ref_q45_k(blk, five, exact=None):
    d, dmin = half_at(blk, 0), half_at(blk, 2)
    s = blk[4:16]
    qh = blk[16:48] if five else None
    ql = blk[48:176] if five else blk[16:144]
    y = []
    for c in range(4):                    # 64 elements per pair of sub-blocks
        for part in range(2):             # low nibbles, then high nibbles
            sc, m = scale_min_k4(2 * c + part, s)
            d1 = F32(d * F32(sc))
            m1 = F32(dmin * F32(m))
            for l in range(32):
                byte = ql[32 * c + l]
                q = (byte & 0xF) if part == 0 else (byte >> 4)
                if five and qh[l] & (1 << (2 * c + part)):
                    q += 16
                y.append(F32(F32(d1 * F32(q)) - m1))
                if exact is not None:
                    exact.append(Fraction(float(d1)) * q - Fraction(float(m1)))
    return y


def ref_q6_k(blk):
    ql, qh = blk[0:128], blk[128:192]
    sc = [b - 256 if b >= 128 else b for b in blk[192:208]]
    d = half_at(blk, 208)
    y = [None] * QK_K
    for h in range(2):
        for l in range(32):
            b = qh[32 * h + l]
            q = [((ql[64 * h + l] & 0xF) | (((b >> 0) & 3) << 4)) - 32,
                 ((ql[64 * h + l + 32] & 0xF) | (((b >> 2) & 3) << 4)) - 32,
                 ((ql[64 * h + l] >> 4) | (((b >> 4) & 3) << 4)) - 32,
                 ((ql[64 * h + l + 32] >> 4) | (((b >> 6) & 3) << 4)) - 32]
            for k in range(4):
                # y = d * sc * q, evaluated left to right: (d * sc) * q
                y[128 * h + 32 * k + l] = F32(F32(d * F32(sc[8 * h + l // 16 + 2 * k])) * F32(q[k]))
    return y


REF = {"Q2_K": ref_q2_k, "Q3_K": ref_q3_k, "Q4_K": lambda b: ref_q45_k(b, False),
       "Q5_K": lambda b: ref_q45_k(b, True), "Q6_K": ref_q6_k}


def rounded_blocks(t, data):
    """How many blocks of a type with dmin have an element whose final subtraction rounds
    (d * sc * q - dmin * m not a float32); the products d * sc, dmin * m are exact."""
    n = TYPE_SIZE[t]
    count = 0
    for i in range(0, len(data), n):
        exact = []
        blk = data[i:i + n]
        y = ref_q2_k(blk, exact) if t == "Q2_K" else ref_q45_k(blk, t == "Q5_K", exact)
        if any(Fraction(float(v)) != e for v, e in zip(y, exact)):
            count += 1
    return count


def ref_dequantize(t, data):
    n = TYPE_SIZE[t]
    out = []
    for i in range(0, len(data), n):
        out.extend(REF[t](data[i:i + n]))
    return np.array(out, dtype=F32)


# ---------------------------------------------------------------------------------------------
# gguf-py, the peer that writes the goldens, and ggml itself (optional)
# ---------------------------------------------------------------------------------------------

def peer_dequantize(t, b):
    with np.errstate(all="raise"):
        y = gguf_dequantize(np.frombuffer(b, dtype=np.uint8).copy(), GGMLQuantizationType[t])
    assert y.dtype == np.float32
    y = np.ascontiguousarray(y.reshape(-1))
    assert y.size == len(b) // TYPE_SIZE[t] * QK_K, (t, y.size)
    return y


class GGML:
    class TypeTraits(ctypes.Structure):
        _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                    ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                    ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                    ("from_float_ref", ctypes.c_void_p)]

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.ggml_get_type_traits.restype = ctypes.POINTER(GGML.TypeTraits)
        self.lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
        self.to_float = {}
        for t, tid in GGML_TYPE_ID.items():
            tr = self.lib.ggml_get_type_traits(tid).contents
            assert tr.type_name.decode().lower() == t.lower() and tr.type_size == TYPE_SIZE[t], t
            assert tr.blck_size == QK_K, t
            self.to_float[t] = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p,
                                                ctypes.c_int64)(tr.to_float)

    def dequantize(self, t, b):
        src = np.frombuffer(b, dtype=np.uint8).copy()
        y = np.zeros(src.size // TYPE_SIZE[t] * QK_K, dtype=F32)
        self.to_float[t](src.ctypes.data, y.ctypes.data, y.size)
        return y


# ---------------------------------------------------------------------------------------------
# Hashes
# ---------------------------------------------------------------------------------------------

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1


def fnv1a64(data):
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


# ---------------------------------------------------------------------------------------------
# The blocks
# ---------------------------------------------------------------------------------------------

H_ONE, H_HALF, H_QUARTER, H_EIGHTH = 0x3C00, 0x3800, 0x3400, 0x3000
H_MAX = 0x7BFF                            # 65504, the largest finite float16
H_MIN_SUB, H_MAX_SUB = 0x0001, 0x03FF     # 2**-24 and 1023 * 2**-24
H_NEG_ZERO = 0x8000


def f16_bits(v):
    b = int(np.array([v], dtype=np.float16).view(np.uint16)[0])
    assert float(np.array([b], dtype=np.uint16).view(np.float16)[0]) == float(np.float16(v))
    return b


def realistic_f16(rng):
    """A scale as quantizers write them: positive, 1e-5 .. 0.1 (log-uniform)."""
    return f16_bits(10.0 ** rng.uniform(-5.0, -1.0))


def any_finite_f16(rng):
    """Any finite float16 bit pattern: either sign, zero, subnormal, up to 65504."""
    while True:
        b = int(rng.integers(0, 0x10000))
        if (b >> 10) & 0x1F != 0x1F:
            return b


def set_f16(blk, t, values):
    for o, v in zip(LAYOUT[t]["f16"], values):
        blk[o:o + 2] = v.to_bytes(2, "little")


def fill(blk, region, pattern, rng):
    o, n = region
    if pattern == "random":
        blk[o:o + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    elif isinstance(pattern, int):
        blk[o:o + n] = bytes([pattern]) * n
    else:
        assert len(pattern) == n
        blk[o:o + n] = bytes(pattern)


def random_blocks(t, rng, count):
    """Seeded random bytes; the float16 fields replaced: every other block realistic (positive,
    1e-5 .. 0.1), the others any finite float16 (negatives, zeros, subnormals, up to 65504)."""
    out = bytearray()
    for k in range(count):
        blk = bytearray(rng.integers(0, 256, TYPE_SIZE[t], dtype=np.uint8).tobytes())
        pick = realistic_f16 if k % 2 == 0 else any_finite_f16
        set_f16(blk, t, [pick(rng) for _ in LAYOUT[t]["f16"]])
        out += blk
    return bytes(out)


def cancel_scales(t):
    """Scale bytes that give every sub-block scale 1 and min 1 (Q2_K, Q4_K, Q5_K)."""
    if t == "Q2_K":
        return 0x11
    if t in ("Q4_K", "Q5_K"):
        return [1] * 8 + [0x11] * 4
    return None


# Edge blocks: label, float16 fields (d[, dmin]), scale bytes, code bytes. A pattern is "random"
# (seeded), one byte repeated, or explicit bytes.
def edge_specs(t):
    if len(LAYOUT[t]["f16"]) == 2:
        pat = cancel_scales(t)
        codes = {"Q2_K": 0x55, "Q4_K": 0x11, "Q5_K": [0] * 32 + [0x11] * 128}[t]
        return [
            ("all bytes 0 (d = dmin = 0)", [0, 0], 0, 0),
            ("all bytes 0xFF but d = dmin = 1: largest scales, mins and codes", [H_ONE, H_ONE], 0xFF, 0xFF),
            ("d = dmin = 65504, largest scales, mins and codes: the largest magnitudes", [H_MAX, H_MAX], 0xFF, 0xFF),
            ("d = 65504, dmin = -65504, largest scales, mins and codes", [H_MAX, 0xFBFF], 0xFF, 0xFF),
            ("scale bytes 0 (scales and mins 0), random codes", [H_HALF, H_HALF], 0, "random"),
            ("scale bytes 0xFF, all codes 0", [H_QUARTER, H_EIGHTH], 0xFF, 0),
            ("random scale bytes, all code bytes 0", [0x1E66, 0x1A3D], "random", 0),
            ("random scale bytes, all code bytes 0xFF", [0x1E66, 0x1A3D], "random", 0xFF),
            ("scale bytes 0x80 (top bits only), random codes", [H_ONE, H_HALF], 0x80, "random"),
            ("scale bytes 0x7F, random codes", [H_ONE, H_HALF], 0x7F, "random"),
            ("scale bytes 0x55, code bytes 0xAA", [0x2E66, 0x2A3D], 0x55, 0xAA),
            ("d the smallest subnormal float16, dmin the largest", [H_MIN_SUB, H_MAX_SUB], "random", "random"),
            ("d = dmin = -0.0 (signed zeros)", [H_NEG_ZERO, H_NEG_ZERO], "random", "random"),
            ("d = 0, dmin > 0", [0, 0x2E66], "random", "random"),
            ("d < 0, dmin < 0", [0xA24E, 0x9E66], "random", "random"),
            ("every code 1, every scale and min 1, d = dmin = 0.5: d*q - m = +0 exactly",
             [H_HALF, H_HALF], pat, codes),
            ("the same with d = dmin = -0.5", [0xB800, 0xB800], pat, codes),
        ]
    specs = [
        ("all bytes 0 (d = 0)", [0], 0, 0),
        ("all bytes 0xFF but d = 1: " + ("scales 31, codes 3" if t == "Q3_K" else "scales -1, codes 31"),
         [H_ONE], 0xFF, 0xFF),
        ("d = 65504, scale and code bytes 0xFF", [H_MAX], 0xFF, 0xFF),
        ("d = -65504, scale and code bytes 0xFF", [0xFBFF], 0xFF, 0xFF),
        ("scale bytes 0, random codes", [H_HALF], 0, "random"),
        ("scale bytes 0xFF, code bytes 0", [H_QUARTER], 0xFF, 0),
        ("random scale bytes, code bytes 0", [0x1E66], "random", 0),
        ("random scale bytes, code bytes 0xFF", [0x1E66], "random", 0xFF),
        ("scale bytes 0x80, random codes", [H_ONE], 0x80, "random"),
        ("scale bytes 0x7F, random codes", [H_ONE], 0x7F, "random"),
        ("scale bytes 0x55, code bytes 0xAA", [0x2E66], 0x55, 0xAA),
        ("d the smallest subnormal float16", [H_MIN_SUB], "random", "random"),
        ("d the largest subnormal float16", [H_MAX_SUB], "random", "random"),
        ("d = -0.0 (signed zeros)", [H_NEG_ZERO], "random", "random"),
        ("d = 0, random scales and codes (signed zeros)", [0], "random", "random"),
        ("d < 0", [0xA24E], "random", "random"),
    ]
    if t == "Q6_K":
        specs.append(("d = 65504, scales alternating -128 and 127, codes -32 and 31",
                      [H_MAX], [0x80, 0x7F] * 8, [0x00] * 64 + [0xFF] * 64 + [0x00] * 32 + [0xFF] * 32))
    else:
        specs.append(("every high bit set, low bits random", [H_ONE], "random",
                      [0xFF] * 32 + list(range(64))))
    return specs


def edge_blocks(t, rng):
    out = bytearray()
    labels = []
    codes_total = sum(n for _, n in LAYOUT[t]["codes"])
    for label, f16s, scales, codes in edge_specs(t):
        blk = bytearray(TYPE_SIZE[t])
        assert len(f16s) == len(LAYOUT[t]["f16"]), label
        set_f16(blk, t, f16s)
        fill(blk, LAYOUT[t]["scales"], scales, rng)
        if isinstance(codes, list):
            assert len(codes) == codes_total
            k = 0
            for o, n in LAYOUT[t]["codes"]:
                blk[o:o + n] = bytes(codes[k:k + n])
                k += n
        else:
            for region in LAYOUT[t]["codes"]:
                fill(blk, region, codes, rng)
        out += blk
        labels.append(label)
    return bytes(out), labels


# name, builder (type, rng) -> (bytes, block labels or None), how the output is stored, description
CASES = [
    ("edge", lambda t, rng: edge_blocks(t, rng), "f32",
     "hand-made blocks: all bytes 0; largest scales and codes (d = 1, d = +-65504, dmin = +-65504); "
     "zero scales; all-zero and all-max codes; scale bytes 0x80, 0x7F, 0x55; subnormal, negative "
     "and -0.0 scales; d = 0 with dmin > 0; exact cancellation d*q - m = 0 (Q2_K, Q4_K, Q5_K); "
     "Q6_K scales -128/127; Q3_K with every high bit set (see the block list below)"),
    ("random", lambda t, rng: (random_blocks(t, rng, 16), None), "f32",
     "16 blocks of seeded random bytes; float16 fields realistic (positive, 1e-5 .. 0.1) in "
     "even blocks, any finite float16 (negative, zero, subnormal, up to 65504) in odd ones"),
    ("random_wide", lambda t, rng: (random_blocks(t, rng, 200), None), "fnv1a64",
     "200 more such blocks; the output is stored as one FNV-1a 64 hash per block"),
]


# ---------------------------------------------------------------------------------------------
# Real data: the K-quant tensors of the llama.cpp fixtures
# ---------------------------------------------------------------------------------------------

def fixture_tensors(ggml):
    out = []
    for f in FIXTURES:
        path = os.path.join(FIXTURE_DIR, f)
        raw = open(path, "rb").read()
        reader = GGUFReader(path)
        for tensor in reader.tensors:
            t = tensor.tensor_type.name
            if t not in TYPES:
                continue
            offset = int(tensor.data_offset)
            nbytes = int(tensor.n_bytes)
            elements = int(tensor.n_elements)
            data = raw[offset:offset + nbytes]
            assert data == np.asarray(tensor.data).tobytes(), (f, tensor.name)
            assert nbytes == elements // QK_K * TYPE_SIZE[t], (f, tensor.name)
            y = peer_dequantize(t, data)
            yb = y.astype("<f4").tobytes()
            ref = ref_dequantize(t, data)
            if ref.astype("<f4").tobytes() != yb:
                bad = np.nonzero(ref.view(np.uint32) != y.view(np.uint32))[0]
                raise Mismatch(f"{f} {tensor.name}: gguf-py and the reimplementation differ at "
                               f"{bad.size} values, first {bad[0]}")
            if ggml is not None and ggml.dequantize(t, data).astype("<f4").tobytes() != yb:
                raise Mismatch(f"{f} {tensor.name}: ggml and gguf-py differ")
            if not np.all(np.isfinite(y)):
                raise Mismatch(f"{f} {tensor.name}: non-finite dequantized value")
            idx = sorted({(elements - 1) * k // (SAMPLES_PER_TENSOR - 1) for k in range(SAMPLES_PER_TENSOR)})
            bits = y.view(np.uint32)
            out.append({
                "file": f,
                "name": tensor.name,
                "type": t,
                "offset": offset,
                "nbytes": nbytes,
                "elements": elements,
                "fnv1a64": f"{fnv1a64(yb):016x}",
                "sha256": hashlib.sha256(yb).hexdigest(),
                "samples": [[int(i), f"{int(bits[i]):08x}"] for i in idx],
            })
            print(f"{f} {tensor.name}: {t}, {elements} values: gguf-py = reimplementation"
                  + (" = ggml" if ggml else ""))
    return out


def dump_json(obj, list_key):
    """JSON with one line per element of obj[list_key]."""
    lines = ["{"]
    keys = list(obj)
    for i, k in enumerate(keys):
        end = "," if i + 1 < len(keys) else ""
        v = obj[k]
        if k == list_key or (isinstance(v, list) and v and isinstance(v[0], dict)):
            lines.append(f" {json.dumps(k)}: [")
            for j, e in enumerate(v):
                lines.append("  " + json.dumps(e) + ("," if j + 1 < len(v) else ""))
            lines.append(" ]" + end)
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}{end}")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == obj
    return text


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=DEFAULT_OUT)
    ap.add_argument("--ggml-lib", help="libggml-base shared library to compare against as well")
    args = ap.parse_args()

    gguf_version = importlib.metadata.version("gguf")
    if gguf_version != GGUF_VERSION:
        sys.exit(f"needs gguf {GGUF_VERSION}, found {gguf_version}")
    ggml = GGML(args.ggml_lib) if args.ggml_lib else None

    # the float16 decoder against numpy, on every finite bit pattern
    allh = np.arange(0x10000, dtype=np.uint32).astype(np.uint16)
    finite = allh[((allh >> 10) & 0x1F) != 0x1F]
    npv = finite.view(np.float16).astype(F32).view(np.uint32)
    for h, v in zip(finite[::5], npv[::5]):
        assert int(np.array([f16_to_f32(int(h))], dtype=F32).view(np.uint32)[0]) == int(v), hex(h)

    os.makedirs(args.out_dir, exist_ok=True)
    outputs = {}
    manifest = []
    block_count = {t: 0 for t in TYPES}
    edge_labels = {}
    rounding = {}
    for ci, (name, build, deq, desc) in enumerate(CASES):
        for ti, t in enumerate(TYPES):
            rng = np.random.default_rng([SEED, ci, ti])
            data, labels = build(t, rng)
            n = TYPE_SIZE[t]
            assert len(data) % n == 0 and data
            peer = peer_dequantize(t, data)
            ref = ref_dequantize(t, data)
            for b in range(len(data) // n):
                pb = peer[b * QK_K:(b + 1) * QK_K].view(np.uint32)
                rb = ref[b * QK_K:(b + 1) * QK_K].view(np.uint32)
                if not np.array_equal(pb, rb):
                    k = int(np.nonzero(pb != rb)[0][0])
                    raise Mismatch(f"{name} {t} block {b}: gguf-py and the reimplementation differ, "
                                   f"first at element {k}: {pb[k]:08x} vs {rb[k]:08x}")
            if ggml is not None:
                g = ggml.dequantize(t, data)
                if not np.array_equal(g.view(np.uint32), peer.view(np.uint32)):
                    k = int(np.nonzero(g.view(np.uint32) != peer.view(np.uint32))[0][0])
                    raise Mismatch(f"{name} {t}: ggml and gguf-py differ, first at element {k}")
            if not np.all(np.isfinite(peer)):
                raise Mismatch(f"{name} {t}: NaN or infinity in the dequantized output")
            block_count[t] += len(data) // n
            if t in ("Q2_K", "Q4_K", "Q5_K") and name.startswith("random"):
                rounding[t] = [a + b for a, b in zip(rounding.get(t, [0, 0]),
                                                     [rounded_blocks(t, data), len(data) // n])]
            if labels:
                edge_labels[t] = labels
            outputs[f"{name}.{t}.bin"] = data
            yb = peer.astype("<f4").tobytes()
            if deq == "f32":
                outputs[f"{name}.{t}.deq.f32"] = yb
            else:
                outputs[f"{name}.{t}.deq.fnv1a64"] = b"".join(
                    fnv1a64(yb[i:i + 4 * QK_K]).to_bytes(8, "little") for i in range(0, len(yb), 4 * QK_K))
        manifest.append({"name": name, "blocks": {t: len(outputs[f"{name}.{t}.bin"]) // TYPE_SIZE[t] for t in TYPES},
                         "deq": deq})
        print(f"{name}: {', '.join(TYPES)}: gguf-py = reimplementation" + (" = ggml" if ggml else ""))

    fixtures = fixture_tensors(ggml)
    fixture_files = []
    for f in FIXTURES:
        raw = open(os.path.join(FIXTURE_DIR, f), "rb").read()
        fixture_files.append({"file": f, "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})

    meta = {
        "generator": GENERATOR,
        "gguf_version": gguf_version,
        "numpy_version": np.__version__,
        "cases": manifest,
    }
    outputs["cases.json"] = dump_json(meta, "cases").encode()
    real = {
        "generator": GENERATOR,
        "gguf_version": gguf_version,
        "numpy_version": np.__version__,
        "hash": "FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) and SHA-256 of "
                "the dequantized values as little-endian float32 bytes; samples are [element index, "
                "float32 bits]",
        "fixtures": fixture_files,
        "tensors": fixtures,
    }
    outputs["llamacpp.json"] = dump_json(real, "tensors").encode()

    expected = set(outputs) | {"README.md"}
    for f in sorted(os.listdir(args.out_dir)):
        if f not in expected:
            os.remove(os.path.join(args.out_dir, f))
            print(f"removed stale {f}")
    for f, data in outputs.items():
        with open(os.path.join(args.out_dir, f), "wb") as fh:
            fh.write(data)
    readme = make_readme(meta, outputs, block_count, edge_labels, fixtures, ggml is not None, rounding)
    with open(os.path.join(args.out_dir, "README.md"), "w") as fh:
        fh.write(readme)
    total = sum(len(d) for d in outputs.values()) + len(readme.encode())
    print(f"wrote {len(outputs) + 1} files, {total} bytes, to {args.out_dir}")


def make_readme(meta, outputs, block_count, edge_labels, fixtures, with_ggml, rounding):
    L = []
    a = L.append
    a("# Golden files for the dequantization of ggml's K-quants")
    a("")
    a("Q2_K, Q3_K, Q4_K, Q5_K and Q6_K blocks and what gguf-py dequantizes them to. Do not edit by")
    a("hand; regenerate with")
    a("")
    a("    python3 tools/golden/make_ggml_kquants.py [--ggml-lib PATH/libggml-base.so]")
    a("")
    a(f"with gguf {meta['gguf_version']} and numpy {meta['numpy_version']} (made with Python "
      f"{platform.python_version()}).")
    a(f"The script is deterministic (numpy `default_rng([{SEED}, case, type])`): running it twice")
    a("gives the same bytes.")
    a("")
    a("gguf-py has no quantizer for these types; the blocks are bytes made by the script, which")
    a("is all a dequantizer sees. Every float16 scale field (`d`, and `dmin` in Q2_K, Q4_K, Q5_K) is")
    a("finite, so no output is NaN or infinite (the script refuses any that is).")
    a("")
    a("## Layout")
    a("")
    a("- `cases.json`: generator, gguf and numpy versions, and per case its name, its number of")
    a("  blocks per type, and how the output is stored (`deq`).")
    a("- `NAME.T.bin`: whole blocks of type T, concatenated: 84 (Q2_K), 110 (Q3_K), 144 (Q4_K),")
    a("  176 (Q5_K) or 210 (Q6_K) bytes for 256 elements each.")
    a("- `NAME.T.deq.f32` (cases with `deq` `f32`): `gguf.quants.dequantize` of those bytes,")
    a("  256 little-endian float32 values per block.")
    a("- `NAME.T.deq.fnv1a64` (cases with `deq` `fnv1a64`): one little-endian u64 per block, the")
    a("  64-bit FNV-1a hash (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) of that")
    a("  block's 1024 dequantized bytes. The full float arrays of these 1000 blocks would take 1 MB;")
    a("  a hash per block still names the first wrong block.")
    a("- `llamacpp.json`: every K-quant tensor of `testdata/llamacpp/*.gguf` (real llama.cpp output):")
    a("  file, tensor name, type, absolute data `offset` and `nbytes` as gguf-py's `GGUFReader`")
    a("  reports them, element count, the FNV-1a 64 and the SHA-256 of gguf-py's dequantized float32")
    a(f"  bytes, and {SAMPLES_PER_TENSOR} sampled values (element index, float32 bits) spread over the")
    a("  tensor; also each fixture's size and sha256, so a changed fixture is noticed first.")
    a("")
    a("## How it was checked")
    a("")
    a("Before writing, every block was compared with an independent scalar reimplementation of")
    a("ggml's `dequantize_row_q2_K` ... `dequantize_row_q6_K` in the script (ggml's loops and its")
    a("order of float32 operations, numpy float32 scalars, a float16 decoder of its own checked")
    a("against numpy on every finite float16): the dequantized bits are identical.")
    a("Blocks compared: " + ", ".join(f"{t} {n}" for t, n in block_count.items())
      + f"; and the {len(fixtures)} fixture tensors ("
      + ", ".join(f"{t} {sum(x['elements'] for x in fixtures if x['type'] == t) // QK_K}"
                  for t in TYPES if any(x['type'] == t for x in fixtures)) + " blocks).")
    if with_ggml:
        a("The committed files were also compared with ggml itself: `--ggml-lib` with the")
        a("`libggml-base.so` (0.25.3) of llama-cpp-python 0.3.36 (see `tools/golden/make_llamacpp_gguf.sh`);")
        a("its type traits' `to_float` gives the same bits for every block and every fixture tensor.")
    a("")
    a("Why the order of operations matters little and is kept anyway: every product in these")
    a("formulas is exact in float32 (a float16 significand has at most 11 bits and `|sc * q|` is")
    a("at most 4096, Q6_K's -128 * -32), so `(d * sc) * q` and `d * (sc * q)` agree, and a fused")
    a("multiply-add gives the same result as the separate multiply and subtract. The one rounding")
    a("step is the final `- dmin * m` of Q2_K, Q4_K and Q5_K; in the `random` and `random_wide`")
    a("blocks it rounds (for at least one element) in "
      + ", ".join(f"{t} {r} of {n}" for t, (r, n) in rounding.items()) + " blocks.")
    a("")
    a("## Cases")
    a("")
    a("| case | blocks per type | output | what |")
    a("|---|---|---|---|")
    for (name, _, deq, desc), m in zip(CASES, meta["cases"]):
        counts = sorted(set(m["blocks"].values()))
        bl = str(counts[0]) if len(counts) == 1 else ", ".join(f"{t} {m['blocks'][t]}" for t in TYPES)
        a(f"| `{name}` | {bl} | {deq} | {desc} |")
    a("")
    a("### Edge blocks, in file order")
    a("")
    for t in TYPES:
        a(f"{t}:")
        a("")
        for i, label in enumerate(edge_labels[t]):
            a(f"{i}. {label}")
        a("")
    a("## Fixture tensors")
    a("")
    a("| file | tensor | type | offset | bytes | fnv1a64 |")
    a("|---|---|---|---:|---:|---|")
    for x in fixtures:
        a(f"| `{x['file']}` | `{x['name']}` | {x['type']} | {x['offset']} | {x['nbytes']} | `{x['fnv1a64']}` |")
    a("")
    a("## Files")
    a("")
    a("| file | bytes | sha256 |")
    a("|---|---|---|")
    for f in sorted(outputs):
        a(f"| `{f}` | {len(outputs[f])} | `{hashlib.sha256(outputs[f]).hexdigest()}` |")
    a("")
    return "\n".join(L)


if __name__ == "__main__":
    main()
