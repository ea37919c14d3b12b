"""Float conversion bit-identity: `ftq convert --dtype {f32,f16,bf16}` against numpy and ml_dtypes.

    floats_peer.py make DIR     DIR/floats.safetensors: tensors f16 and bf16 (all 65536 bit patterns),
                                f32 and f64 (special values, every rounding boundary, random values)
    floats_peer.py check DIR    DIR/out-{f32,f16,bf16}.safetensors (ftq's outputs) against the reference

The reference is numpy's `astype(np.float16 / np.float32)` and ml_dtypes'
`astype(ml_dtypes.bfloat16)` applied to the source array. numpy converts F64 to F16 directly
(one rounding); ml_dtypes converts F64 to BF16 through F32 (two roundings). A mismatch is
reported with the input bits, ftq's bits and the reference's bits.
"""

import os
import sys

import ml_dtypes
import numpy as np
import safetensors.numpy

from peers import bits, report, st_load

TARGETS = {"f32": ("F32", np.dtype(np.float32)), "f16": ("F16", np.dtype(np.float16)),
           "bf16": ("BF16", np.dtype(ml_dtypes.bfloat16))}


def u32(values):
    return np.array(values, dtype=np.uint32).view(np.float32)


def u64(values):
    return np.array(values, dtype=np.uint64).view(np.float64)


def midpoints(all_bits, dtype, wide):
    """For every positive finite value of a 16-bit type: the exact midpoint to the next value up
    (the rounding tie) in the wider type `wide`. The value above the largest finite one is
    where the exponent would continue (65536 for F16): its midpoint is the overflow threshold."""
    vals = all_bits.view(dtype).astype(np.float64)
    vals = vals[np.isfinite(vals) & (vals >= 0) & ~np.signbit(vals)]
    vals = np.unique(vals)
    if dtype == np.float16:
        top = 65536.0
    else:
        top = float(np.float64(2.0) ** 128)
    nxt = np.append(vals[1:], top)
    mids = (vals + nxt) / 2  # exact in float64
    return mids.astype(wide)  # exact in float32 too (12 or 9 significant bits)


def around(x):
    """x, the next value below and the next value above, both signs (same dtype as x)."""
    x = np.asarray(x)
    down = np.nextafter(x, x.dtype.type(-np.inf))
    up = np.nextafter(x, x.dtype.type(np.inf))
    both = np.concatenate([x, down, up])
    return np.concatenate([both, -both])


def f32_values():
    rng = np.random.default_rng(21)
    specials = u32([
        0x00000000, 0x80000000, 0x7F800000, 0xFF800000,  # zeros, infinities
        0x7FC00000, 0xFFC00000, 0x7FC00001, 0x7FFFFFFF, 0xFFFFFFFF,  # quiet NaNs
        0x7F800001, 0xFF800001, 0x7FBFFFFF, 0x7FA00000, 0x7F802000, 0x7F801FFF,  # signalling NaNs
        0x7F810000, 0x7F8FFFFF, 0xFFA0A0A0, 0x7FC02000, 0x7FC01FFF,
        0x00000001, 0x80000001, 0x007FFFFF, 0x00400000, 0x00000002,  # F32 subnormals
        0x7F7FFFFF, 0xFF7FFFFF, 0x00800000,  # max finite, min normal
        0x7F7F0000, 0x7F7F7FFF, 0x7F7F8000, 0x7F7F8001, 0x7F7FFFFF,  # BF16 overflow threshold
        0x3F800000, 0x3F808000, 0x3F818000, 0x3F800001, 0x3F807FFF,  # BF16 ties at 1
    ])
    f16_all = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    named = np.array([65504.0, 65519.0, 65519.996, 65520.0, 65520.004, 65535.0, 65536.0, 1e5,
                      6.103515625e-05, 5.960464477539063e-08, 2.9802322387695312e-08,
                      1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 2.0 ** -25, 3 * 2.0 ** -26],
                     dtype=np.float32)
    parts = [
        specials,
        around(named),
        around(midpoints(f16_all, np.float16, np.float32)),  # every F16 rounding boundary
        around(midpoints(f16_all, ml_dtypes.bfloat16, np.float32)),  # every BF16 boundary
        rng.integers(0, 2**32, size=20000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        (rng.standard_normal(10000) * np.float64(10.0) ** rng.integers(-12, 12, size=10000)).astype(np.float32),
    ]
    return np.concatenate(parts).astype(np.float32)


def f64_values():
    rng = np.random.default_rng(22)
    specials = u64([
        0x0000000000000000, 0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000,
        0x7FF8000000000000, 0xFFF8000000000000, 0x7FF8000000000001, 0x7FFFFFFFFFFFFFFF,
        0xFFFFFFFFFFFFFFFF,  # quiet NaNs
        0x7FF0000000000001, 0xFFF0000000000001, 0x7FF4000000000000, 0x7FF7FFFFFFFFFFFF,
        0x7FF0040000000000, 0x7FF0000020000000, 0x7FF003FFFFFFFFFF, 0x7FF0000010000000,
        0x7FF0010000000000, 0x7FF8040000000000,  # signalling NaNs, payloads at each cut
        0x0000000000000001, 0x8000000000000001, 0x000FFFFFFFFFFFFF,  # F64 subnormals
        0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF, 0x0010000000000000,  # max finite, min normal
    ])
    f16_all = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    f32_max = float(np.finfo(np.float32).max)
    f32_ulp_top = float(np.spacing(np.float32(f32_max)))
    named = np.array([
        65504.0, 65519.99999999999, 65520.0, 65520.00000000001, 65536.0, 1e5, 1e300,
        f32_max, f32_max + f32_ulp_top / 2, f32_max + f32_ulp_top,  # F32 overflow threshold
        2.0 ** -149, 2.0 ** -150, 3 * 2.0 ** -151, 3 * 2.0 ** -150, 2.0 ** -126,  # F32 subnormals, ties
        2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 3 * 2.0 ** -25, 2.0 ** -14,  # F16 subnormals, ties
        2.0 ** -133, 2.0 ** -134, 3 * 2.0 ** -135,  # BF16 subnormals, ties
        1.0 + 2.0 ** -24, 1.0 + 2.0 ** -8, 1.0 + 2.0 ** -8 + 2.0 ** -40, 1.0 + 2.0 ** -11 + 2.0 ** -40,
        1.0 + 2.0 ** -8 + 2.0 ** -24, 1.0 + 2.0 ** -8 - 2.0 ** -30,  # double rounding through F32
        0.1, 1 / 3, np.pi, -np.e,
    ], dtype=np.float64)
    f32_random = rng.integers(0, 2**32, size=5000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    f32_random = f32_random[np.isfinite(f32_random)].astype(np.float64)
    f32_next = np.nextafter(f32_random.astype(np.float32), np.float32(np.inf)).astype(np.float64)
    f32_mids = (f32_random + f32_next) / 2  # F32 ties (exact in F64)
    bf16_mids = midpoints(f16_all, ml_dtypes.bfloat16, np.float64)
    parts = [
        specials,
        around(named),
        around(midpoints(f16_all, np.float16, np.float64)),  # F16 ties, one F64 ulp either side
        around(bf16_mids),  # BF16 ties, one F64 ulp either side
        around(bf16_mids + bf16_mids * 2.0 ** -30),  # between an F32 tie and a BF16 tie
        around(f32_mids[np.isfinite(f32_mids)]),
        rng.integers(0, 2**64, size=20000, dtype=np.uint64).view(np.float64),
        rng.standard_normal(10000) * np.float64(10.0) ** rng.integers(-300, 300, size=10000),
        rng.standard_normal(10000) * np.float64(10.0) ** rng.integers(-50, 50, size=10000),
    ]
    return np.concatenate(parts).astype(np.float64)


def cmd_make(out_dir):
    all16 = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    tensors = {
        "f16": all16.view(np.float16).reshape(256, 256),
        "bf16": all16.view(ml_dtypes.bfloat16).reshape(256, 256),
        "f32": f32_values(),
        "f64": f64_values(),
    }
    safetensors.numpy.save_file(tensors, os.path.join(out_dir, "floats.safetensors"))
    report([], elements={k: int(v.size) for k, v in tensors.items()})


def cmd_check(out_dir):
    src = st_load(os.path.join(out_dir, "floats.safetensors"))
    problems = []
    mismatches = []
    counts = {}
    for target, (st_name, np_type) in TARGETS.items():
        out = st_load(os.path.join(out_dir, f"out-{target}.safetensors"))
        if sorted(out) != sorted(src):
            problems.append(f"out-{target}: tensors {sorted(out)} != {sorted(src)}")
            continue
        for name, (dtype, arr) in src.items():
            got_dtype, got = out[name]
            if got_dtype != st_name or list(got.shape) != list(arr.shape):
                problems.append(f"out-{target}/{name}: {got_dtype} {list(got.shape)}, expected {st_name} {list(arr.shape)}")
                continue
            with np.errstate(all="ignore"):
                ref = arr if arr.dtype == np_type else arr.astype(np_type)
            gb, rb, ib = bits(got).ravel(), bits(ref).ravel(), bits(arr).ravel()
            bad = np.nonzero(gb != rb)[0]
            counts[f"{name}->{target}"] = {"elements": int(arr.size), "mismatches": int(bad.size)}
            for k in bad[:20]:
                w_in, w_out = arr.dtype.itemsize * 2, np_type.itemsize * 2
                mismatches.append({"conversion": f"{name}->{target}", "input": f"0x{int(ib[k]):0{w_in}x}",
                                   "ftq": f"0x{int(gb[k]):0{w_out}x}", "reference": f"0x{int(rb[k]):0{w_out}x}"})
            if bad.size:
                problems.append(f"{name}->{target}: {bad.size} of {arr.size} elements differ")
    report(problems, conversions=counts, mismatches=mismatches)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"make": cmd_make, "check": cmd_check}[cmd](*args)
