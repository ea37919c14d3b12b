#!/usr/bin/env python3
"""Makes the golden files for ggml's legacy block quantizers Q8_0, Q4_0, Q4_1, Q5_0, Q5_1.

For each case (a seeded or constructed float32 input, see CASES) and each of its types this
writes what gguf-py's gguf.quants.quantize returns (the blocks, concatenated) and what
gguf.quants.dequantize gives back for those bytes, so the Swift tests need no Python:

    NAME.f32          the input: N little-endian float32 values, N a multiple of 32
    NAME.T.bin        gguf.quants.quantize(input, T), exactly as returned
    NAME.T.deq.f32    gguf.quants.dequantize(NAME.T.bin, T), little-endian float32
    cases.json        the list of cases with their element counts and types
    README.md         provenance: versions, command, cases, exclusions, sha256 of every file

Before anything is written, every block of every case and type is checked against an
independent scalar reimplementation of ggml's reference quantizers (quantize_row_*_ref,
dequantize_row_*) in this file: exact rational arithmetic where C is exact, numpy float32
scalars where C rounds, a float16 encoder of its own. Any difference in the quantized bytes or
in the dequantized bits stops the script with the case, type, block and bytes. The script also
refuses inputs that would make ggml's reference do undefined things (NaN or infinity in a
float-to-integer cast) and outputs that hold a NaN.

With --ggml-lib PATH (a libggml-base shared library, e.g. the one llama-cpp-python builds),
every block is also compared with ggml's own ggml_quantize_chunk and type_traits.to_float, and
the signed-zero probes described in the README are run through ggml too.

Needs numpy and gguf 0.19.0 (tools/requirements-test.txt). Deterministic: the same versions give
the same bytes on every run.

usage: make_ggml_legacy.py [--out-dir DIR (default: testdata/golden/ggml-legacy)] [--ggml-lib PATH]
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
from gguf import GGMLQuantizationType
from gguf.quants import quantize as gguf_quantize, dequantize as gguf_dequantize

GGUF_VERSION = "0.19.0"
SEED = 20250315
QK = 32
TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]
TYPE_SIZE = {"Q8_0": 34, "Q4_0": 18, "Q4_1": 20, "Q5_0": 22, "Q5_1": 24}
GGML_TYPE_ID = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8}
GENERATOR = "tools/golden/make_ggml_legacy.py"
DEFAULT_OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                           "testdata", "golden", "ggml-legacy"))

F32 = np.float32


class Mismatch(Exception):
    pass


class Undefined(Exception):
    """An input for which ggml's reference quantizer would have undefined behaviour."""


# ---------------------------------------------------------------------------------------------
# An independent reimplementation of ggml's reference quantizers (ggml-quants.c), one block at a
# time, written from the C semantics. Float32 arithmetic uses numpy float32 scalars (IEEE single,
# round to nearest even, no fused multiply-add); casts and rounding use exact rationals.
# ---------------------------------------------------------------------------------------------

def f32_bits(x):
    return int(np.array([x], dtype=F32).view(np.uint32)[0])


def f16_bits_from_f32(x):
    """float32 -> IEEE binary16 bits, round to nearest even, overflow to infinity (as
    GGML_FP32_TO_FP16 / F16C's _cvtss_sh(x, 0)). Written with exact rationals, not numpy."""
    x = F32(x)
    u = f32_bits(x)
    sign = (u >> 16) & 0x8000
    if math.isnan(float(x)):
        raise Undefined("NaN d or m")
    if math.isinf(float(x)):
        return sign | 0x7C00
    a = abs(Fraction(float(x)))
    if a == 0:
        return sign
    _, e = math.frexp(float(a))           # a = m * 2**e, 0.5 <= m < 1
    exp = e - 1                           # 2**exp <= a < 2**(exp+1)
    step = Fraction(2) ** (max(exp, -14) - 10)   # spacing of binary16 values near a
    n = round(a / step)                   # Fraction.__round__: ties to even
    v = n * step
    if v == 0:
        return sign
    if v >= 65536:                        # rounded past the largest finite value, 65504
        return sign | 0x7C00
    if v < Fraction(1, 2 ** 14):          # subnormal: multiples of 2**-24
        return sign | int(v * 2 ** 24)
    _, e2 = math.frexp(float(v))
    exp2 = e2 - 1
    mant = v / Fraction(2) ** (exp2 - 10) - 1024
    assert mant.denominator == 1 and 0 <= mant < 1024
    return sign | ((exp2 + 15) << 10) | int(mant)


def f32_from_f16_bits(h):
    sign = -1 if h & 0x8000 else 1
    exp = (h >> 10) & 0x1F
    mant = h & 0x3FF
    if exp == 0x1F:
        if mant:
            raise Mismatch(f"NaN float16 {h:#06x}")
        return F32(sign * math.inf)
    if exp == 0:
        v = Fraction(mant, 2 ** 24)
    else:
        v = Fraction(1024 + mant, 1024) * Fraction(2) ** (exp - 15)
    r = F32(float(v))
    if sign < 0:
        r = -r                            # keeps -0.0
    return r


def c_trunc_to_int(v, lo, hi, what):
    """C's float -> integer conversion: truncation toward zero; undefined outside the range."""
    f = float(v)
    if not math.isfinite(f):
        raise Undefined(f"{what}: cast of {f} to an integer")
    t = math.trunc(f)
    if not lo <= t <= hi:
        raise Undefined(f"{what}: {f} out of range for the integer cast")
    return t


def c_roundf(v):
    """C roundf: nearest integer, halves away from zero; exact."""
    f = float(v)
    if not math.isfinite(f):
        raise Undefined(f"roundf of {f}")
    a = abs(Fraction(f))
    r = math.floor(a + Fraction(1, 2))
    return -r if f < 0 else r


def f32_div(a, b):
    return F32(F32(a) / F32(b))


def f32_recip(d):
    # const float id = d ? 1.0f/d : 0.0f;
    return F32(F32(1.0) / d) if d != 0 else F32(0.0)


def ref_q8_0(x):
    amax = F32(0.0)
    for v in x:                            # amax = MAX(amax, fabsf(v))
        av = abs(v)
        amax = amax if amax > av else av
    d = f32_div(amax, 127)
    id_ = f32_recip(d)
    out = bytearray(f16_bits_from_f32(d).to_bytes(2, "little"))
    for v in x:
        q = c_roundf(F32(v * id_))
        if not -128 <= q <= 127:
            raise Undefined(f"Q8_0 code {q} out of int8 range")
        out.append(q & 0xFF)
    return bytes(out)


def signed_absmax(x):
    amax = F32(0.0)
    mx = F32(0.0)
    for v in x:                            # if (amax < fabsf(v)) { amax = fabsf(v); max = v; }
        if amax < abs(v):
            amax = abs(v)
            mx = v
    return mx


def min_max(x):
    mn = F32(np.finfo(np.float32).max)
    mx = F32(-np.finfo(np.float32).max)
    for v in x:                            # if (v < min) min = v; if (v > max) max = v;
        if v < mn:
            mn = v
        if v > mx:
            mx = v
    return mn, mx


def ref_q4_0(x):
    mx = signed_absmax(x)
    d = f32_div(mx, -8)
    id_ = f32_recip(d)
    qs = [0] * 16
    for j in range(16):
        xi = []
        for v in (x[j], x[j + 16]):
            t = c_trunc_to_int(F32(F32(v * id_) + F32(8.5)), -128, 127, "Q4_0 (int8_t)")
            xi.append(min(15, t) & 0xFF)   # const uint8_t xi = MIN(15, (int8_t)(...))
        qs[j] = (xi[0] | (xi[1] << 4)) & 0xFF
    return f16_bits_from_f32(d).to_bytes(2, "little") + bytes(qs)


def ref_q4_1(x):
    mn, mx = min_max(x)
    d = f32_div(F32(mx - mn), 15)
    id_ = f32_recip(d)
    qs = [0] * 16
    for j in range(16):
        xi = []
        for v in (x[j], x[j + 16]):
            t = c_trunc_to_int(F32(F32(F32(v - mn) * id_) + F32(0.5)), -128, 127, "Q4_1 (int8_t)")
            xi.append(min(15, t) & 0xFF)
        qs[j] = (xi[0] | (xi[1] << 4)) & 0xFF
    return (f16_bits_from_f32(d).to_bytes(2, "little") + f16_bits_from_f32(mn).to_bytes(2, "little")
            + bytes(qs))


def ref_q5_0(x):
    mx = signed_absmax(x)
    d = f32_div(mx, -16)
    id_ = f32_recip(d)
    qs = [0] * 16
    qh = 0
    for j in range(16):
        xi = []
        for v in (x[j], x[j + 16]):
            t = c_trunc_to_int(F32(F32(v * id_) + F32(16.5)), -128, 127, "Q5_0 (int8_t)")
            xi.append(min(31, t) & 0xFF)
        qs[j] = (xi[0] & 0x0F) | ((xi[1] & 0x0F) << 4)
        qh |= ((xi[0] & 0x10) >> 4) << j
        qh |= ((xi[1] & 0x10) >> 4) << (j + 16)
    return f16_bits_from_f32(d).to_bytes(2, "little") + qh.to_bytes(4, "little") + bytes(qs)


def ref_q5_1(x):
    mn, mx = min_max(x)
    d = f32_div(F32(mx - mn), 31)
    id_ = f32_recip(d)
    qs = [0] * 16
    qh = 0
    for j in range(16):
        xi = []
        for v in (x[j], x[j + 16]):
            # const uint8_t xi = (uint8_t)(x + 0.5f): no MIN(31, .) in ggml
            xi.append(c_trunc_to_int(F32(F32(F32(v - mn) * id_) + F32(0.5)), 0, 255, "Q5_1 (uint8_t)"))
        qs[j] = (xi[0] & 0x0F) | ((xi[1] & 0x0F) << 4)
        qh |= ((xi[0] & 0x10) >> 4) << j
        qh |= ((xi[1] & 0x10) >> 4) << (j + 16)
    return (f16_bits_from_f32(d).to_bytes(2, "little") + f16_bits_from_f32(mn).to_bytes(2, "little")
            + qh.to_bytes(4, "little") + bytes(qs))


def ref_dequant(t, blk):
    """dequantize_row_* for one block; returns 32 float32 values."""
    def h(o):
        return f32_from_f16_bits(int.from_bytes(blk[o:o + 2], "little"))
    y = []
    if t == "Q8_0":
        d = h(0)
        for j in range(32):
            q = blk[2 + j] - 256 if blk[2 + j] >= 128 else blk[2 + j]
            y.append(F32(F32(q) * d))
    elif t == "Q4_0":
        d = h(0)
        qs = blk[2:18]
        codes = [qs[j] & 0x0F for j in range(16)] + [qs[j] >> 4 for j in range(16)]
        y = [F32(F32(c - 8) * d) for c in codes]
    elif t == "Q4_1":
        d, m = h(0), h(2)
        qs = blk[4:20]
        codes = [qs[j] & 0x0F for j in range(16)] + [qs[j] >> 4 for j in range(16)]
        y = [F32(F32(F32(c) * d) + m) for c in codes]
    elif t in ("Q5_0", "Q5_1"):
        o = 2 if t == "Q5_0" else 4
        d = h(0)
        qh = int.from_bytes(blk[o:o + 4], "little")
        qs = blk[o + 4:o + 20]
        codes = ([(qs[j] & 0x0F) | (((qh >> j) & 1) << 4) for j in range(16)]
                 + [(qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4) for j in range(16)])
        if t == "Q5_0":
            y = [F32(F32(c - 16) * d) for c in codes]
        else:
            m = h(2)
            y = [F32(F32(F32(c) * d) + m) for c in codes]
    return np.array(y, dtype=F32)


REF_QUANT = {"Q8_0": ref_q8_0, "Q4_0": ref_q4_0, "Q4_1": ref_q4_1, "Q5_0": ref_q5_0, "Q5_1": ref_q5_1}


def ref_quantize(t, x):
    x = np.asarray(x, dtype=F32)
    with np.errstate(over="ignore"):       # d = max / -8 etc. may be huge; the f16 store overflows
        return b"".join(REF_QUANT[t](list(x[i:i + QK])) for i in range(0, x.size, QK))


# ---------------------------------------------------------------------------------------------
# gguf-py, the peer that writes the goldens
# ---------------------------------------------------------------------------------------------

def peer_quantize(t, x):
    # invalid="raise": any NaN produced on the way to the integer codes is an error.
    with np.errstate(over="ignore", invalid="raise"):
        q = gguf_quantize(np.asarray(x, dtype=F32), GGMLQuantizationType[t])
    assert q.dtype == np.uint8 and q.size == x.size // QK * TYPE_SIZE[t], (t, q.dtype, q.shape)
    return q.tobytes()


def peer_dequantize(t, b):
    with np.errstate(invalid="raise"):
        y = gguf_dequantize(np.frombuffer(b, dtype=np.uint8).copy(), GGMLQuantizationType[t])
    assert y.dtype == np.float32
    return np.ascontiguousarray(y.reshape(-1))


# ---------------------------------------------------------------------------------------------
# ggml itself, optional (--ggml-lib)
# ---------------------------------------------------------------------------------------------

class GGML:
    class TypeTraits(ctypes.Structure):
        _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                    ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                    ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                    ("from_float_ref", ctypes.c_void_p)]

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        self.lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                                 ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                                 ctypes.c_void_p]
        self.lib.ggml_get_type_traits.restype = ctypes.POINTER(GGML.TypeTraits)
        self.lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
        self.to_float = {}
        for t, tid in GGML_TYPE_ID.items():
            tr = self.lib.ggml_get_type_traits(tid).contents
            assert tr.type_name.decode() == t.lower() and tr.type_size == TYPE_SIZE[t], t
            self.to_float[t] = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p,
                                                ctypes.c_int64)(tr.to_float)

    def quantize(self, t, x):
        x = np.ascontiguousarray(x, dtype=F32)
        dst = np.zeros(x.size // QK * TYPE_SIZE[t], dtype=np.uint8)
        n = self.lib.ggml_quantize_chunk(GGML_TYPE_ID[t], x.ctypes.data, dst.ctypes.data, 0, 1,
                                         x.size, None)
        assert n == dst.size, (t, n, dst.size)
        return dst.tobytes()

    def dequantize(self, t, b):
        src = np.frombuffer(b, dtype=np.uint8).copy()
        y = np.zeros(src.size // TYPE_SIZE[t] * QK, dtype=F32)
        self.to_float[t](src.ctypes.data, y.ctypes.data, y.size)
        return y


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------

def f32(values):
    a = np.asarray(values, dtype=np.float64)
    out = a.astype(F32)
    assert np.array_equal(out.astype(np.float64), a), "a constructed value is not a float32"
    return out


def next_f32(x, direction):
    return np.nextafter(F32(x), F32(direction), dtype=F32)


def case_normal(rng):
    return rng.normal(0.0, 0.02, 4096).astype(F32)


def case_uniform(rng):
    return rng.uniform(-1.0, 1.0, 1024).astype(F32)


def case_zeros(rng):
    return np.zeros(64, dtype=F32)


def case_zero_block(rng):
    x = rng.normal(0.0, 0.02, 128).astype(F32)
    x[64:96] = 0.0
    return x


def case_constant(rng):
    consts = [0.1, -0.1, 1.0, -1.0, 1 / 3, -2.5, 1e-3, -7e-6]
    return np.concatenate([np.full(QK, c, dtype=F32) for c in consts])


def case_tie(rng):
    blocks = []
    for first, pos in [(0.05, (3, 20)), (-0.05, (3, 20)), (1.0, (0, 31)), (-1.0, (0, 31)),
                       (0.75, (16, 17)), (-0.75, (15, 16))]:
        b = rng.uniform(-0.5, 0.5, QK).astype(F32) * F32(abs(first))
        b[pos[0]] = first
        b[pos[1]] = -first
        blocks.append(b)
    # three-way tie: +a, -a, +a
    b = rng.uniform(-0.5, 0.5, QK).astype(F32) * F32(0.25)
    b[[2, 9, 30]] = [-0.25, 0.25, -0.25]
    blocks.append(b)
    # a tie with halves that land on rounding boundaries: x * id = +-8 for Q4_0, +-16 for Q5_0
    b = f32([(-1) ** j * (j % 16) / 8 for j in range(QK)])
    b[5], b[27] = 2.0, -2.0
    blocks.append(b)
    return np.concatenate(blocks)


def case_outlier(rng):
    blocks = []
    for value, pos in [(1e4, 0), (1e4, 13), (-1e4, 31), (-1e4, 16)]:
        b = rng.normal(0.0, 1e-6, QK).astype(F32)
        b[pos] = value
        blocks.append(b)
    return np.concatenate(blocks)


def case_subnormal(rng):
    tiny = float(np.finfo(np.float32).smallest_subnormal)   # 1.4e-45
    big_sub = float(next_f32(np.finfo(np.float32).tiny, 0))  # 1.1754942e-38, largest subnormal
    sub = [1e-40, -1e-40, tiny, -tiny, big_sub, -big_sub, 5e-39, -5e-39, 3e-42, -3e-42, 0.0]
    blocks = []
    # a normal value sets the scale; subnormals and zeros fill the block
    for anchor in [1.0, -1.0, 1e-3, 1e-30, 1e-36, -1e-36, 5e-37]:
        b = np.array([sub[(j * 7 + len(blocks)) % len(sub)] for j in range(QK)], dtype=F32)
        b[(len(blocks) * 5) % QK] = anchor
        blocks.append(b)
    return np.concatenate(blocks)


def case_tiny_scale(rng):
    # d's float16 store goes normal -> subnormal -> zero; the codes come from the float32 d
    blocks = []
    for amax in [1e-2, 1e-3, 8e-4, 1e-4, 3e-5, 1e-5, 1e-6, 1e-7, 1e-8, 1e-12]:
        b = rng.uniform(-1.0, 1.0, QK).astype(F32) * F32(amax)
        b[len(blocks) % QK] = F32(amax)
        blocks.append(b)
    return np.concatenate(blocks)


def case_half(rng):
    """Scaled values exactly on (and one ulp either side of) rounding boundaries, with d a power
    of two so that x * id is exact in float32."""
    blocks = []

    def halves(lo, hi):
        return [k + 0.5 for k in range(lo, hi)]

    # Q8_0: amax = 127 s, d = s, x = (k + 0.5) s: roundf goes away from zero
    for s, sign in [(2.0 ** -4, 1), (2.0 ** -10, -1), (2.0 ** 3, 1)]:
        hs = [h for h in halves(-127, 127)]
        for start in (0, 31 * 4):
            vals = [sign * 127.0] + [hs[(start + 8 * j) % len(hs)] for j in range(31)]
            blocks.append(f32([v * s for v in vals]))
    # Q8_0: one float32 ulp below and above k + 0.5 (exact: s is a power of two)
    for side in (0.0, 1000.0):
        vals = [127.0] + [float(next_f32(k + 0.5 if k >= 0 else k - 0.5, side if k >= 0 else -side))
                          for k in range(-15, 16)]
        blocks.append(f32([v * 2.0 ** -6 for v in vals]))
    # Q4_0: max = -8 s (d = s) and max = 8 s (d = -s); x * id + 8.5 lands on integers
    for s, sign in [(2.0 ** -5, -1), (2.0 ** -2, 1)]:
        vals = [sign * 8.0] + [sign * -1 * (j + 0.5) for j in range(-8, 8)]
        vals += [sign * -1 * float(next_f32(j + 0.5, 0.0 if j >= 0 else -100.0)) for j in range(-8, 7)]
        blocks.append(f32([v * s for v in vals]))
    # Q4_1: min = m0, max = m0 + 15 s (d = s); (x - min) * id + 0.5 lands on integers
    for s, m0 in [(2.0 ** -6, -5.0), (2.0 ** -3, 0.0), (2.0 ** -7, 3.0)]:
        vals = [m0, m0 + 15.0] + [m0 + j + 0.5 for j in range(15)]
        vals += [m0 + float(next_f32(j + 0.5, 0.0)) if m0 == 0 else m0 + j for j in range(15)]
        blocks.append(f32([v * s for v in vals]))
    # Q5_0: max = -16 s (d = s); x * id + 16.5 lands on integers
    for s in (2.0 ** -4, 2.0 ** 1):
        hs = [j + 0.5 for j in range(-16, 16)]
        blocks.append(f32([-16.0 * s] + [h * s for h in hs[:31]]))
        blocks.append(f32([16.0 * s] + [-h * s for h in hs[1:]]))
    # Q5_1: min = 0, max = 31 s (d = s)
    for s, m0 in [(2.0 ** -5, 0.0), (2.0 ** -8, -9.0)]:
        blocks.append(f32([m0 * s, (m0 + 31) * s] + [(m0 + j + 0.5) * s for j in range(30)]))
        blocks.append(f32([m0 * s, (m0 + 31) * s] + [(m0 + float(next_f32(j + 0.5, 0.0))) * s
                                                      if m0 == 0 else (m0 + j + 1) * s
                                                      for j in range(30)]))
    return np.concatenate(blocks)


def case_id_rounding(rng):
    """Ordinary (non power of two) scales; values within a few ulps of each rounding boundary,
    kept where ggml's float32 pipeline (x * id, then + 8.5 etc., each rounded) gives a different
    code than dividing by d, or than the exact product, or than a fused multiply-add would."""
    blocks = []

    def pipeline(t, x, lo, id_, d):
        """codes by ggml's rounding, by x / d, by the exact product, by fma."""
        if t == "Q8_0":
            p = F32(x * id_)
            return (c_roundf(p), c_roundf(F32(x / d)), c_roundf_exact(Fraction(float(x)) * Fraction(float(id_))))
        off = {"Q4_0": 8.5, "Q5_0": 16.5, "Q4_1": 0.5, "Q5_1": 0.5}[t]
        v = F32(x - lo) if t in ("Q4_1", "Q5_1") else x
        p = F32(F32(v * id_) + F32(off))
        exact = Fraction(float(v)) * Fraction(float(id_)) + Fraction(off)
        fma = f32_round_fraction(exact)
        return (math.trunc(float(p)), math.trunc(float(F32(F32(v / d) + F32(off)))), math.floor(exact),
                math.trunc(float(fma)))

    def build(t, anchors, boundaries, d_of):
        anchors = [float(F32(a)) for a in anchors]
        vals = list(anchors)
        d = d_of(anchors)
        id_ = f32_recip(d)
        lo = min(anchors)
        hi_abs = max(abs(a) for a in anchors)
        for _ in range(4):                    # up to four inputs per boundary, in passes
            for b in boundaries:
                if len(vals) == QK:
                    break
                # the input whose scaled value is the boundary, then its float32 neighbours
                if t in ("Q8_0", "Q4_0", "Q5_0"):
                    base = F32(float(b) / float(id_))
                else:
                    base = F32(float(lo) + float(b) / float(id_))
                cands = [base]
                up, down = base, base
                for _ in range(24):
                    up, down = next_f32(up, np.inf), next_f32(down, -np.inf)
                    cands += [up, down]
                for x in cands:
                    if float(x) in vals:
                        continue
                    if t in ("Q4_1", "Q5_1"):
                        if not lo < x < max(anchors):
                            continue
                    elif not abs(x) < hi_abs:
                        continue
                    r = pipeline(t, x, lo, id_, d)
                    if len(set(r)) > 1:
                        vals.append(float(x))
                        break
        i = 0
        while len(vals) < QK:                 # too few inputs differ: fill with boundary inputs
            b = float(boundaries[i % len(boundaries)]) / float(id_)
            vals.append(float(F32(b if t in ("Q8_0", "Q4_0", "Q5_0") else float(lo) + b)))
            i += 1
        return f32(vals)

    with np.errstate(over="ignore"):
        for amax in (1.0, 0.3):
            blocks.append(build("Q8_0", [amax], [k + 0.5 for k in range(-127, 127)],
                                lambda a: f32_div(max(abs(v) for v in a), 127)))
        for mx in (-0.7, 0.123):
            blocks.append(build("Q4_0", [mx], [n - 8.5 for n in range(1, 17)],
                                lambda a: f32_div(a[0], -8)))
        for mx in (0.9, -0.0421):
            blocks.append(build("Q5_0", [mx], [n - 16.5 for n in range(1, 33)],
                                lambda a: f32_div(a[0], -16)))
        for lo, hi in ((-0.31, 0.57), (0.013, 0.2)):
            blocks.append(build("Q4_1", [lo, hi], [j + 0.5 for j in range(15)],
                                lambda a: f32_div(F32(F32(a[1]) - F32(a[0])), 15)))
        for lo, hi in ((-1.3, 0.1), (-0.05, -0.011)):
            blocks.append(build("Q5_1", [lo, hi], [j + 0.5 for j in range(31)],
                                lambda a: f32_div(F32(F32(a[1]) - F32(a[0])), 31)))
    return np.concatenate(blocks)


def c_roundf_exact(fr):
    a = abs(fr)
    r = math.floor(a + Fraction(1, 2))
    return -r if fr < 0 else r


def f32_round_fraction(fr):
    """The float32 nearest an exact rational (ties to even), as one fused operation would give."""
    f64 = float(fr)                           # correctly rounded to double
    c = F32(f64)
    # correct a double rounding: pick the float32 neighbour nearest to fr exactly
    best = c
    for n in (next_f32(c, -np.inf), next_f32(c, np.inf)):
        if abs(Fraction(float(n)) - fr) < abs(Fraction(float(best)) - fr):
            best = n
    return best


def case_huge_symmetric(rng):
    """Scales near and past float16's largest value, 65504. Every element is at least 1/12 of its
    block's largest magnitude, so no code is Q8_0's 0, Q4_0's 8 or Q5_0's 16: where the float16 d
    overflows, dequantization gives +-inf and never inf * 0 = NaN."""
    blocks = []
    for amax in [65504.0 * 127, 65519.0 * 127, 65520.0 * 127, 1e6, 65504.0 * 8, 65520.0 * 8,
                 65504.0 * 16, 65520.0 * 16, 1e30]:
        mags = rng.uniform(1 / 12, 1.0, QK)
        signs = np.where(rng.uniform(0, 1, QK) < 0.5, -1.0, 1.0)
        b = (mags * signs * amax).astype(F32)
        b[len(blocks) % QK] = F32(amax) * F32(-1 if len(blocks) % 2 else 1)
        blocks.append(b)
    return np.concatenate(blocks)


def case_huge_asymmetric(rng):
    """Q4_1/Q5_1 with d or m near float16's limits, keeping d finite (a d that overflows would
    dequantize the block's minimum as 0 * inf = NaN)."""
    blocks = []
    for lo, hi in [(-65504.0, -65504.0 + 15 * 65504.0),   # Q4_1 d = 65504 exactly
                   (-1000.0, -1000.0 + 15 * 65519.0),      # Q4_1 d rounds down to 65504
                   (-65519.0, -60000.0),                   # m rounds to -65504
                   (-65520.0, -65000.0),                   # m overflows to -inf
                   (70000.0, 71000.0),                     # m overflows to +inf
                   (-1e6, -999000.0)]:                     # m = -inf, d small
        b = rng.uniform(lo, hi, QK).astype(F32)
        b[len(blocks) % QK] = lo
        b[(len(blocks) + 7) % QK] = hi
        blocks.append(b)
    return np.concatenate(blocks)


def case_huge_q5_1(rng):
    """Q5_1's d at float16's largest value: (max - min) / 31 = 65504, and just past it."""
    blocks = []
    for lo, hi in [(-65504.0, -65504.0 + 31 * 65504.0), (0.0, 31 * 65519.0), (-5.0, -5.0 + 31 * 65519.9)]:
        b = rng.uniform(lo, hi, QK).astype(F32)
        b[3] = lo
        b[21] = hi
        blocks.append(b)
    return np.concatenate(blocks)


def case_one_sided(rng):
    blocks = []
    for kind in range(8):
        a = np.abs(rng.normal(0.0, 0.02, QK)).astype(F32)
        if kind == 0:
            b = a + F32(0.01)                 # positive, min well above 0
        elif kind == 1:
            b = -(a + F32(0.01))              # negative, max well below 0
        elif kind == 2:
            b = a                             # positive, min near 0
        elif kind == 3:
            b = -a                            # negative, max near 0
        elif kind == 4:
            b = a + F32(100.0)                # large offset, small range
        elif kind == 5:
            b = -a - F32(3.0)
        elif kind == 6:
            b = a * F32(1e-4) + F32(0.5)      # range much smaller than the offset
        else:
            b = np.linspace(-1.0, -1.0 + 31 / 64, QK).astype(F32)   # evenly spaced negatives
        blocks.append(b.astype(F32))
    return np.concatenate(blocks)


def case_bf16(rng):
    x = rng.normal(0.0, 0.02, 1024).astype(F32)
    u = x.view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16      # round to nearest even bf16
    return u.astype(np.uint32).view(F32)


def case_signed_zeros(rng):
    """Negative zeros where they cannot change ggml's result: the zero that ggml's reference keeps
    (the first one for min/max, the +0 it starts from for Q4_0/Q5_0's signed max) is known."""
    blocks = []
    b = np.zeros(QK, dtype=F32)
    b[5] = -0.0
    b[30] = -0.0
    blocks.append(b)                              # +0 first, -0 later
    b = rng.normal(0.0, 0.02, QK).astype(F32)
    b[b.__abs__() < 0.01] = -0.0                  # -0 mixed with normal values
    b[0] = 0.03
    blocks.append(b)
    b = np.abs(rng.normal(0.0, 0.02, QK)).astype(F32) + F32(0.001)
    b[[4, 9]] = [0.0, -0.0]                       # min is a zero, +0 first
    blocks.append(b)
    b = -np.abs(rng.normal(0.0, 0.02, QK)).astype(F32) - F32(0.001)
    b[[2, 11]] = [0.0, -0.0]                      # max is a zero, +0 first
    blocks.append(b)
    return np.concatenate(blocks)


ALL = list(TYPES)
# name, builder, types, description
CASES = [
    ("normal", case_normal, ALL, "4096 values, normal with mean 0 and standard deviation 0.02 (seeded)"),
    ("uniform", case_uniform, ALL, "1024 values, uniform in [-1, 1) (seeded)"),
    ("zeros", case_zeros, ALL, "two blocks of +0.0: d = 0 and id = 0 (Q4_0/Q5_0 store d = -0.0 = 0.0 / -8)"),
    ("zero_block", case_zero_block, ALL, "four blocks of normal(0, 0.02) with the third all +0.0"),
    ("constant", case_constant, ALL,
     "eight constant blocks: 0.1, -0.1, 1, -1, 1/3, -2.5, 1e-3, -7e-6 (Q4_1/Q5_1: d = 0, m = the value)"),
    ("tie", case_tie, ALL,
     "the largest magnitude twice with opposite signs (+a first, -a first, at ends and middles), a "
     "three-way tie, and a tie whose values land on x*id = +-8 / +-16: Q4_0/Q5_0 keep the first"),
    ("outlier", case_outlier, ALL, "one +-1e4 at positions 0, 13, 31, 16 in blocks of normal(0, 1e-6)"),
    ("subnormal", case_subnormal, ALL,
     "float32 subnormals (1e-40, 1.4e-45, 1.1754942e-38, 5e-39, 3e-42, both signs) and zeros with one "
     "normal value per block (1, -1, 1e-3, 1e-30, 1e-36, -1e-36, 5e-37); with 1e-36 Q8_0's float32 d "
     "is itself subnormal and subnormal inputs get non-zero codes"),
    ("tiny_scale", case_tiny_scale, ALL,
     "block maxima 1e-2 down to 1e-12: the float16 d goes normal, subnormal, then 0"),
    ("half", case_half, ALL,
     "power-of-two d with inputs whose scaled values are exactly on rounding boundaries and one "
     "float32 ulp either side: Q8_0 x*id = k+0.5 (roundf: away from zero), Q4_0 x*id+8.5, Q5_0 "
     "x*id+16.5, Q4_1/Q5_1 (x-min)*id+0.5 integers, and ulp-below values where the float32 "
     "addition itself rounds up to the integer"),
    ("id_rounding", case_id_rounding, ALL,
     "ordinary d (amax 1, 0.3, ...) with inputs a few ulps from each boundary, kept where "
     "ggml's float32 steps (multiply by id = 1/d, then add, each rounded) give a different code "
     "than dividing by d, the exact product, or a fused multiply-add"),
    ("huge_symmetric", case_huge_symmetric, ["Q8_0", "Q4_0", "Q5_0"],
     "block maxima 65504*127, 65519*127, 65520*127, 1e6, 65504*8, 65520*8, 65504*16, 65520*16, 1e30: "
     "d stored as 65504, rounded down to 65504, or overflowing to +-inf (codes still come from the "
     "float32 d); every element is at least 1/12 of the maximum, so no dequantized value is inf * 0"),
    ("huge_asymmetric", case_huge_asymmetric, ["Q4_1", "Q5_1"],
     "Q4_1 d = 65504 exactly and rounded down to it; m = -65519 (stored -65504), -65520 (-inf), "
     "70000 (+inf), -1e6 (-inf)"),
    ("huge_q5_1", case_huge_q5_1, ["Q5_1"],
     "Q5_1 d = 65504 exactly ((max - min) / 31) and rounded down to it"),
    ("one_sided", case_one_sided, ALL,
     "positive-only and negative-only blocks (min/max away from and near 0, offsets 100 and -3, a "
     "range much smaller than the offset, evenly spaced negatives)"),
    ("bf16", case_bf16, ALL, "1024 values of normal(0, 0.02) rounded to bfloat16 (nearest even) and widened"),
    ("signed_zeros", case_signed_zeros, ALL,
     "-0.0 among +0.0 and normal values, where ggml's choice of zero is the first one seen (see "
     "'Signed zeros' below for the blocks left out)"),
]


# Blocks where gguf-py and ggml's reference disagree, found while making these goldens; kept out
# of the goldens, documented in the README and rechecked on every run.
def probe_blocks():
    p = []
    b = np.zeros(QK, dtype=F32)
    b[0] = -0.0
    p.append(("all zeros, -0.0 first", b))
    b = np.full(QK, -0.0, dtype=F32)
    p.append(("all -0.0", b))
    b = np.arange(QK, dtype=F32)
    b[0], b[7] = 0.0, -0.0
    p.append(("0..31 with +0.0 at 0 and -0.0 at 7", b))
    b = np.arange(QK, dtype=F32)
    b[0], b[7] = -0.0, 0.0
    p.append(("0..31 with -0.0 at 0 and +0.0 at 7", b))
    b = np.zeros(QK, dtype=F32)
    b[9] = -0.0
    p.append(("+0.0 with -0.0 at 9", b))
    b = np.zeros(QK, dtype=F32)
    b[1::2] = -0.0
    p.append(("+0.0, -0.0 alternating", b))
    b = -np.arange(QK, dtype=F32)
    b[0], b[7] = -0.0, 0.0
    p.append(("-(0..31) with -0.0 at 0 and +0.0 at 7", b))
    return p


# ---------------------------------------------------------------------------------------------

def compare_blocks(case, t, peer, ref, what):
    if peer == ref:
        return
    size = TYPE_SIZE[t] if what == "quantized" else 4 * QK
    lines = [f"{case} {t}: gguf-py and the reimplementation disagree ({what})"]
    for i in range(0, len(peer), size):
        if peer[i:i + size] != ref[i:i + size]:
            lines.append(f"  block {i // size}: gguf-py {peer[i:i + size].hex()}")
            lines.append(f"  block {i // size}: ref     {ref[i:i + size].hex()}")
    raise Mismatch("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=DEFAULT_OUT)
    ap.add_argument("--ggml-lib", help="libggml-base shared library to compare against as well")
    args = ap.parse_args()

    gguf_version = importlib.metadata.version("gguf")
    if gguf_version != GGUF_VERSION:
        sys.exit(f"needs gguf {GGUF_VERSION}, found {gguf_version}")
    for t in TYPES:
        q = gguf.quants._type_traits.get(GGMLQuantizationType[t])
        if q is None or "quantize_blocks" not in vars(q):
            sys.exit(f"gguf {gguf_version} has no {t} quantizer")
    ggml = GGML(args.ggml_lib) if args.ggml_lib else None

    # sanity of the float16 encoder against numpy on a sweep that covers every rounding case
    probe = np.concatenate([np.linspace(-70000, 70000, 20011), np.geomspace(1e-9, 7e4, 20011)]).astype(F32)
    probe = np.concatenate([probe, -probe, np.array([65519.996, 65520.0, 2.0 ** -25, 3 * 2.0 ** -26], F32)])
    with np.errstate(over="ignore"):
        npbits = probe.astype(np.float16).view(np.uint16)
    for v, nb in zip(probe[::7], npbits[::7]):
        assert f16_bits_from_f32(v) == int(nb), (v, f16_bits_from_f32(v), nb)

    os.makedirs(args.out_dir, exist_ok=True)
    outputs = {}            # file name -> bytes
    manifest = []
    block_count = {t: 0 for t in TYPES}
    inf_cases = {}
    for seed_offset, (name, build, types, desc) in enumerate(CASES):
        rng = np.random.default_rng([SEED, seed_offset])
        x = np.ascontiguousarray(build(rng), dtype=F32)
        assert x.ndim == 1 and x.size % QK == 0 and x.size > 0, name
        assert np.all(np.isfinite(x)), f"{name}: non-finite input"
        outputs[f"{name}.f32"] = x.astype("<f4").tobytes()
        for t in types:
            peer_q = peer_quantize(t, x)
            ref_q = ref_quantize(t, x)
            compare_blocks(name, t, peer_q, ref_q, "quantized")
            peer_y = peer_dequantize(t, peer_q)
            ref_y = np.concatenate([ref_dequant(t, peer_q[i:i + TYPE_SIZE[t]])
                                    for i in range(0, len(peer_q), TYPE_SIZE[t])])
            compare_blocks(name, t, peer_y.astype("<f4").tobytes(), ref_y.astype("<f4").tobytes(),
                           "dequantized")
            if ggml is not None:
                compare_blocks(name, t, ggml.quantize(t, x), peer_q, "quantized, ggml vs gguf-py")
                compare_blocks(name, t, ggml.dequantize(t, peer_q).astype("<f4").tobytes(),
                               peer_y.astype("<f4").tobytes(), "dequantized, ggml vs gguf-py")
            if np.any(np.isnan(peer_y)):
                raise Mismatch(f"{name} {t}: NaN in the dequantized output")
            if np.any(np.isinf(peer_y)):
                inf_cases.setdefault(name, []).append(t)
            block_count[t] += x.size // QK
            outputs[f"{name}.{t}.bin"] = peer_q
            outputs[f"{name}.{t}.deq.f32"] = peer_y.astype("<f4").tobytes()
        manifest.append({"name": name, "elements": int(x.size), "types": list(types)})
        print(f"{name}: {x.size} values, {', '.join(types)}: gguf-py = reimplementation"
              + (" = ggml" if ggml else ""))

    # the known disagreements (signed zeros): recheck, and record for the README
    probes = []
    for label, b in probe_blocks():
        row = {"label": label, "types": {}}
        for t in TYPES:
            pq, rq = peer_quantize(t, b), ref_quantize(t, b)
            gq = ggml.quantize(t, b) if ggml is not None else None
            if gq is not None and gq != rq:
                raise Mismatch(f"probe {label!r} {t}: ggml {gq.hex()} != reimplementation {rq.hex()}")
            if pq != rq:
                n = 4 if t in ("Q4_1", "Q5_1") else 2
                if pq[n:] != rq[n:]:
                    raise Mismatch(f"probe {label!r} {t}: codes differ: gguf-py {pq.hex()} ref {rq.hex()}")
                py, ry = peer_dequantize(t, pq), ref_dequant(t, rq)
                row["types"][t] = (pq, rq, not np.array_equal(py.view(np.uint32), ry.view(np.uint32)))
        probes.append(row)
        print(f"probe {label}: gguf-py differs from ggml's reference in "
              + (", ".join(row["types"]) or "nothing"))

    meta = {
        "generator": GENERATOR,
        "gguf_version": gguf_version,
        "numpy_version": np.__version__,
        "cases": manifest,
    }
    outputs["cases.json"] = (json.dumps(meta, indent=2) + "\n").encode()

    expected = set(outputs) | {"README.md"}
    for f in sorted(os.listdir(args.out_dir)):
        if f not in expected:
            os.remove(os.path.join(args.out_dir, f))
            print(f"removed stale {f}")
    for f, data in outputs.items():
        with open(os.path.join(args.out_dir, f), "wb") as fh:
            fh.write(data)

    readme = make_readme(meta, outputs, block_count, inf_cases, probes)
    with open(os.path.join(args.out_dir, "README.md"), "w") as fh:
        fh.write(readme)
    total = sum(len(d) for d in outputs.values()) + len(readme.encode())
    print(f"wrote {len(outputs) + 1} files, {total} bytes, to {args.out_dir}")


def make_readme(meta, outputs, block_count, inf_cases, probes):
    L = []
    a = L.append
    a("# Golden files for ggml's legacy block quantizers")
    a("")
    a("Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 as gguf-py quantizes and dequantizes them. Do not edit by")
    a("hand; regenerate with")
    a("")
    a("    python3 tools/golden/make_ggml_legacy.py [--ggml-lib PATH/libggml-base.so]")
    a("")
    a(f"with gguf {meta['gguf_version']} and numpy {meta['numpy_version']} (made with Python "
      f"{platform.python_version()}).")
    a(f"The script is deterministic (numpy `default_rng([{SEED}, i])` for case i): running it twice")
    a("gives the same bytes.")
    a("")
    a("## Layout")
    a("")
    a("- `cases.json`: generator, gguf and numpy versions, and per case its name, element count N and")
    a("  types.")
    a("- `NAME.f32`: the input, N little-endian float32 values (N a multiple of 32). No NaN or")
    a("  infinity.")
    a("- `NAME.T.bin`: `gguf.quants.quantize(input, T)` exactly as returned: N/32 blocks of 34 (Q8_0),")
    a("  18 (Q4_0), 20 (Q4_1), 22 (Q5_0) or 24 (Q5_1) bytes, concatenated.")
    a("- `NAME.T.deq.f32`: `gguf.quants.dequantize` of those bytes, N little-endian float32 values.")
    a("")
    a("## How it was checked")
    a("")
    a("Before writing, every block of every case and type was compared with an independent scalar")
    a("reimplementation of ggml's `quantize_row_*_ref` and `dequantize_row_*` in the script (ggml's")
    a("loops, float32 arithmetic step by step, C's casts and `roundf` in exact arithmetic, its own")
    a("round-to-nearest-even float16 encoder): quantized bytes and dequantized bits are identical.")
    a("Blocks compared: " + ", ".join(f"{t} {n}" for t, n in block_count.items()) + ".")
    a("The committed files were also compared with ggml itself: `--ggml-lib` with the")
    a("`libggml-base.so` (0.25.3) of llama-cpp-python 0.3.36 (see `tools/golden/make_llamacpp_gguf.sh`);")
    a("`ggml_quantize_chunk` and the type traits' `to_float` give the same bytes and bits, and ggml")
    a("agrees with the reimplementation on the signed-zero blocks below.")
    a("")
    a("The reference rounds every float32 step on its own: `x * id`, then `+ 8.5` (Q4_0), `+ 16.5`")
    a("(Q5_0) or `+ 0.5` (Q4_1, Q5_1). That libggml-base has no fused multiply-add instructions")
    a("(objdump), and neither has gguf-py. `id_rounding` holds inputs where a fused multiply-add, a")
    a("division by d instead of a multiplication by id = 1/d, or arithmetic in double would give")
    a("another code, so a port that does any of these fails on it.")
    a("")
    a("## Cases")
    a("")
    a("| case | N | types | what |")
    a("|---|---|---|---|")
    for (name, _, types, desc), m in zip(CASES, meta["cases"]):
        tl = "all five" if types == TYPES else ", ".join(types)
        a(f"| `{name}` | {m['elements']} | {tl} | {desc} |")
    a("")
    a("Dequantized outputs that hold +-inf (a float16 d or m that overflowed): "
      + "; ".join(f"`{n}` ({', '.join(ts)})" for n, ts in inf_cases.items()) + ".")
    a("")
    a("## Left out, and why")
    a("")
    a("- NaN and infinity inputs: ggml's float-to-integer casts of NaN or infinity are undefined.")
    a("- Blocks whose whole range is subnormal (e.g. every value 1e-40): d is so small that")
    a("  id = 1/d is infinity in float32, so x * id is infinity or 0 * inf = NaN before the integer")
    a("  cast, undefined in ggml. Every subnormal block here has one normal value that keeps id finite.")
    a("- Q4_1/Q5_1 blocks whose d overflows float16 (so Q4_1 and Q5_1 are not run on")
    a("  `huge_symmetric`): the quantized bytes are well defined (the codes come from the float32 d),")
    a("  but dequantization multiplies the block minimum's code 0 by an infinite d, 0 * inf = NaN,")
    a("  whose sign and payload bits differ between CPUs (x86 gives 0xffc00000, ARM 0x7fc00000).")
    a("  The same holds for Q8_0's code 0, Q4_0's 8 and Q5_0's 16 under an infinite d, which is why")
    a("  every element of `huge_symmetric` is at least 1/12 of its block's maximum. Q4_1 and Q5_1")
    a("  have their own huge cases with finite d (and infinite m, which dequantizes to +-inf).")
    a("")
    a("## Signed zeros: where gguf-py and ggml's reference differ")
    a("")
    a("ggml's reference keeps the first value seen on ties (`if (amax < fabsf(v))`, `if (v < min)`,")
    a("`if (v > max)`) and starts Q4_0/Q5_0's signed max at +0.0; gguf-py takes `argmax(abs(x))`'s")
    a("signed value and numpy's `min`/`max`, which choose between -0.0 and +0.0 differently. The")
    a("results then differ in the sign bit of a zero d or m (and, for Q4_0/Q5_0, of the zero")
    a("dequantized values). These blocks are kept out of the goldens; the script recomputes them")
    a("on every run (bytes: d, then m for Q4_1/Q5_1; the codes agree):")
    a("")
    a("| block | type | gguf-py | ggml reference | dequantized bits differ |")
    a("|---|---|---|---|---|")
    for row in probes:
        for t, (pq, rq, ydiff) in row["types"].items():
            n = 4 if t in ("Q4_1", "Q5_1") else 2
            a(f"| {row['label']} | {t} | `{pq[:n].hex()}` | `{rq[:n].hex()}` | {'yes' if ydiff else 'no'} |")
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
