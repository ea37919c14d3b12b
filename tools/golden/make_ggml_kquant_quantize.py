#!/usr/bin/env python3
"""Makes the golden files for quantizing to ggml's Q4_K and Q6_K, with ggml itself.

ggml quantizes a float32 tensor to Q4_K or Q6_K with ggml_quantize_chunk; without an importance
matrix (what llama.cpp's llama-quantize does when it is not given --imatrix) that runs the
reference quantizers quantize_row_q4_K_ref and quantize_row_q6_K_ref, which live in libggml-base.
For each case (a deterministic float32 input of one or more rows, see CASES) this calls
ggml_quantize_chunk for Q4_K and Q6_K and writes:

    NAME.f32        the input: rows * n_per_row little-endian float32 values
    NAME.Q4_K.bin   ggml_quantize_chunk(GGML_TYPE_Q4_K, input, 0, rows, n_per_row, NULL): 144
                    bytes per block of 256 elements, concatenated
    NAME.Q6_K.bin   the same for GGML_TYPE_Q6_K: 210 bytes per block
    cases.json      the cases: rows, n_per_row, blocks, and per type the sha256 of the bytes and
                    the 64-bit FNV-1a of what ggml's own to_float (dequantize_row_q*_K) gives for
                    them, as little-endian float32 bytes
    README.md       provenance: library versions and build, command, cases, sha256 of every file

Each input is quantized twice, as one call over all rows and row by row; the bytes must agree
(the reference works block by block). Inputs are finite float32 values; a few cases are huge on
purpose (float16 scales that round to 65504 or overflow to infinity, sums of squares that
overflow float32).

Needs numpy and a libggml-base shared library, e.g. the one llama-cpp-python 0.3.36 builds
(tools/golden/make_llamacpp_gguf.sh). Deterministic: numpy default_rng([SEED, case index]); the
same library gives the same bytes on every run.

usage: make_ggml_kquant_quantize.py --ggml-lib PATH [--out-dir DIR (default:
       testdata/golden/ggml-kquants-quantize)]
"""
import argparse
import ctypes
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

import numpy as np

SEED = 20250607
QK_K = 256
TYPES = ["Q4_K", "Q6_K"]
TYPE_SIZE = {"Q4_K": 144, "Q6_K": 210}
GGML_TYPE_ID = {"Q4_K": 12, "Q6_K": 14}
GENERATOR = "tools/golden/make_ggml_kquant_quantize.py"
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_OUT = os.path.join(ROOT, "testdata", "golden", "ggml-kquants-quantize")
SIZE_BUDGET = 1_500_000

F32 = np.float32


# ---------------------------------------------------------------------------------------------
# ggml
# ---------------------------------------------------------------------------------------------

class GGML:
    class TypeTraits(ctypes.Structure):
        _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                    ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                    ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                    ("from_float_ref", ctypes.c_void_p)]

    def __init__(self, path):
        self.path = path
        self.lib = ctypes.CDLL(path)
        lib = self.lib
        lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                            ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                            ctypes.c_void_p]
        lib.ggml_quantize_init.restype = None
        lib.ggml_quantize_init.argtypes = [ctypes.c_int]
        lib.ggml_get_type_traits.restype = ctypes.POINTER(GGML.TypeTraits)
        lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
        self.version = self.commit = None
        if hasattr(lib, "ggml_version"):
            lib.ggml_version.restype = ctypes.c_char_p
            self.version = lib.ggml_version().decode()
        if hasattr(lib, "ggml_commit"):
            lib.ggml_commit.restype = ctypes.c_char_p
            self.commit = lib.ggml_commit().decode()
        self.to_float = {}
        for t, tid in GGML_TYPE_ID.items():
            tr = lib.ggml_get_type_traits(tid).contents
            assert tr.type_name.decode().lower() == t.lower() and tr.type_size == TYPE_SIZE[t], t
            assert tr.blck_size == QK_K, t
            self.to_float[t] = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p,
                                                ctypes.c_int64)(tr.to_float)
            lib.ggml_quantize_init(tid)   # a no-op for these types; ggml_quantize_chunk calls it too

    def quantize(self, t, x, rows):
        x = np.ascontiguousarray(x, dtype=F32)
        assert x.size % rows == 0 and (x.size // rows) % QK_K == 0
        dst = np.zeros(x.size // QK_K * TYPE_SIZE[t], dtype=np.uint8)
        n = self.lib.ggml_quantize_chunk(GGML_TYPE_ID[t], x.ctypes.data, dst.ctypes.data, 0, rows,
                                         x.size // rows, None)
        assert n == dst.size, (t, n, dst.size)
        return dst.tobytes()

    def dequantize(self, t, b):
        src = np.frombuffer(b, dtype=np.uint8).copy()
        y = np.zeros(src.size // TYPE_SIZE[t] * QK_K, dtype=F32)
        self.to_float[t](src.ctypes.data, y.ctypes.data, y.size)
        return y


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


# ---------------------------------------------------------------------------------------------
# The cases: each returns (rows, float32 array of rows * n_per_row values)
# ---------------------------------------------------------------------------------------------

def blocks(*bs):
    out = np.concatenate([np.asarray(b, dtype=F32).reshape(-1) for b in bs])
    assert out.size % QK_K == 0
    return out


def case_normal(rng):
    # four rows of 2048 with standard deviations 0.02, 1, 30 and 0.001
    rows = [rng.normal(0.0, s, 2048) for s in (0.02, 1.0, 30.0, 1e-3)]
    return 4, blocks(*rows)


def case_uniform(rng):
    return 2, rng.uniform(-1.0, 1.0, 4096).astype(F32)


def case_laplace(rng):
    return 1, rng.laplace(0.0, 0.01, 4096).astype(F32)


def case_bf16(rng):
    x = rng.normal(0.0, 0.02, 2048).astype(F32)
    u = x.view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return 1, u.astype(np.uint32).view(F32)


def case_random_scales(rng):
    # 64 blocks of normal values, each block with its own log-uniform scale in [1e-4, 10], and
    # some with a mean offset
    out = []
    for b in range(64):
        s = 10.0 ** rng.uniform(-4, 1)
        mean = s * rng.normal(0, 1) if b % 4 == 3 else 0.0
        out.append(rng.normal(mean, s, QK_K))
    return 8, blocks(*out)


def case_zeros(rng):
    z = np.zeros(QK_K, dtype=F32)
    neg = np.full(QK_K, -0.0, dtype=F32)
    first_neg = z.copy()
    first_neg[0] = -0.0
    alt32 = rng.normal(0, 0.02, QK_K).astype(F32)
    for j in range(0, 8, 2):
        alt32[32 * j:32 * j + 32] = 0
    alt16 = rng.normal(0, 0.02, QK_K).astype(F32)
    for j in range(1, 16, 2):
        alt16[16 * j:16 * j + 16] = 0
    # one 16-group below ggml's GROUP_MAX_EPS (1e-15) and one just above it
    eps = rng.normal(0, 0.02, QK_K).astype(F32)
    eps[32:48] = rng.choice([-1, 1], 16) * 5e-16
    eps[96:112] = rng.choice([-1, 1], 16) * 3e-15
    all_small = (rng.choice([-1, 1], QK_K) * rng.uniform(1e-17, 9e-16, QK_K)).astype(F32)
    one = z.copy()
    one[77] = 0.5
    return 1, blocks(z, neg, first_neg, alt32, alt16, eps, all_small, one)


def case_constant(rng):
    bs = [np.full(QK_K, v, dtype=F32) for v in (0.1, -0.1, 1.0, -2.5, 1e-3, 7.0)]
    per32 = np.repeat(np.array([0.5, -0.25, 3.0, -3.0, 0.0, 1e-2, -7.5, 2.0], dtype=F32), 32)
    per16 = np.repeat(rng.normal(0, 1, 16).astype(F32), 16)
    return 2, blocks(*bs, per32, per16)


def case_outlier(rng):
    out = []
    mags = [1.0, -1.0, 10.0, -10.0, 100.0, -100.0, 1e3, -1e3, 1e4, -1e4, 0.2, -0.2, 5.0, -5.0, 50.0, -3e4]
    for b, m in enumerate(mags):
        x = rng.normal(0, 0.01, QK_K).astype(F32)
        x[(37 * b + 5) % QK_K] = m
        out.append(x)
    return 2, blocks(*out)


def case_one_sided(rng):
    bs = [
        rng.uniform(0.0, 1.0, QK_K),
        rng.uniform(0.5, 1.0, QK_K),
        100.0 + rng.normal(0, 0.1, QK_K),
        1e-3 + np.abs(rng.normal(0, 1e-3, QK_K)),
        -rng.uniform(0.0, 1.0, QK_K),
        -3.0 + rng.normal(0, 0.01, QK_K),
        -1e-3 - np.abs(rng.normal(0, 1e-3, QK_K)),
        -rng.uniform(0.5, 1.0, QK_K),
    ]
    # alternate positive-only and negative-only sub-blocks of 32, and of 16
    a = np.abs(rng.normal(0, 0.05, QK_K))
    a[np.repeat(np.arange(8) % 2 == 1, 32)] *= -1
    b = np.abs(rng.normal(0, 0.05, QK_K))
    b[np.repeat(np.arange(16) % 2 == 0, 16)] *= -1
    # positive with a few zeros; negative with a few zeros
    c = np.abs(rng.normal(0, 1, QK_K))
    c[::17] = 0
    d = -np.abs(rng.normal(0, 1, QK_K))
    d[::19] = 0
    return 1, blocks(*bs, a, b, c, d)


def case_subnormal(rng):
    tiny = F32(1.17549435e-38)   # the smallest normal float32
    s1 = (rng.uniform(-1, 1, QK_K) * tiny).astype(F32)                      # all subnormal
    s2 = s1.copy()
    s2[::32] = np.array([1e-3, -1e-3, 2e-3, 5e-4, -1e-2, 1e-3, 3e-3, -7e-4], dtype=F32)     # one normal per 32
    s3 = s1.copy()
    s3[100] = 1.0                                                          # one normal per block
    s4 = np.where(rng.uniform(0, 1, QK_K) < 0.5, F32(1.4e-45), F32(-1.4e-45)).astype(F32)
    s5 = (rng.normal(0, 1, QK_K) * 1e-19).astype(F32)   # squares underflow to subnormal or 0
    s6 = (rng.normal(0, 1, QK_K) * 1e-22).astype(F32)   # squares underflow to 0
    return 1, blocks(s1, s2, s3, s4, s5, s6)


def case_tiny_scale(rng):
    # the float16 d and dmin go from normal to subnormal to zero
    out = [rng.normal(0, s, QK_K) for s in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10,
                                            1e-12, 1e-15, 1e-20, 1e-30)]
    return 1, blocks(*out)


def case_huge(rng):
    # block maxima around where Q4_K's d or dmin (about range / 945) and Q6_K's d (about
    # max / 4096) reach float16's 65504 and overflow; then float32 overflow of x * x (Q4_K's
    # sum of squares, Q6_K's weights) and of max - min
    out = []
    for amax in (6e4, 1e6, 3e7, 6.19e7, 6.3e7, 1e8, 2.68e8, 2.69e8, 5e8, 1e12, 1e18, 2e19):
        x = rng.uniform(-1, 1, QK_K)
        x[rng.integers(0, QK_K)] = 1.0
        out.append(x * amax)
    pos = rng.uniform(0.5, 1, QK_K) * 6.2e7          # one-sided: dmin 0, d near 65504
    neg = -rng.uniform(0.5, 1, QK_K) * 6.2e7         # one-sided negative: dmin near 65504
    big = rng.choice([-1.0, 1.0], QK_K) * rng.uniform(1e38, 3e38, QK_K)   # max - min = inf
    return 1, blocks(*out, pos, neg, big)


def case_grid(rng):
    # values on small integer and half-integer grids, where the scaled values land exactly on
    # rounding ties (round half to even)
    i16 = np.tile(np.arange(-8, 8), 16)
    u16 = np.tile(np.arange(0, 16), 16)
    halves = np.arange(-128, 128) * 0.5
    i64 = np.tile(np.arange(-32, 32), 4)
    thirds = np.tile(np.arange(0, 16) / 15.0, 16)
    shuffled = rng.permutation(np.tile(np.arange(-8, 8), 16)) * 0.25
    odd = np.tile(np.arange(-31, 33, 2), 8) * 0.5
    mixed = np.tile(np.array([0.0, 1.0, 2.5, -2.5, 7.5, -8.0, 3.5, 15.0]), 32)
    return 1, blocks(i16, u16, halves, i64, thirds, shuffled, odd, mixed)


def case_ties_amax(rng):
    # Q6_K sub-blocks of 16 whose largest magnitude appears with both signs (the first wins,
    # which sets the sign of the sub-block scale), and Q4_K sub-blocks with repeated extremes
    out = []
    for b in range(4):
        x = rng.normal(0, 0.1, QK_K).astype(F32)
        for g in range(16):
            a = F32(0.5 + 0.03 * g)
            p, q = rng.choice(16, 2, replace=False)
            x[16 * g + p] = a if (g + b) % 2 == 0 else -a
            x[16 * g + q] = -x[16 * g + p]
        out.append(x)
    return 1, blocks(*out)


def case_rows(rng):
    # eight rows of one block each, of different kinds
    rows = [
        rng.normal(0, 0.02, QK_K),
        rng.normal(0.5, 0.02, QK_K),
        rng.standard_t(3, QK_K) * 0.01,
        rng.uniform(-1e-3, 1e-3, QK_K),
        np.sin(np.arange(QK_K) * 0.1) * 2,
        0.1 + 2 * np.cos(np.arange(QK_K)),
        rng.exponential(1.0, QK_K),
        -rng.exponential(0.1, QK_K),
    ]
    return 8, blocks(*rows)


CASES = [
    ("normal", case_normal, "4 rows of 2048: normal(0, s) with s = 0.02, 1, 30, 0.001"),
    ("uniform", case_uniform, "2 rows of 2048: uniform in [-1, 1)"),
    ("laplace", case_laplace, "1 row of 4096: Laplace(0, 0.01), heavy tails like trained weights"),
    ("bf16", case_bf16, "1 row of 2048: normal(0, 0.02) rounded to bfloat16 (nearest even) and widened"),
    ("random_scales", case_random_scales, "8 rows of 2048: 64 blocks of normal values, each with a log-uniform scale in [1e-4, 10], every fourth with a mean offset"),
    ("zeros", case_zeros, "8 blocks: all +0.0; all -0.0; -0.0 then +0.0; every other sub-block of 32 zero; every other group of 16 zero; one group of 16 below ggml's GROUP_MAX_EPS (5e-16) and one above (3e-15); a whole block of magnitudes below 1e-15; a single non-zero value"),
    ("constant", case_constant, "2 rows of 1024: constant blocks 0.1, -0.1, 1, -2.5, 1e-3, 7; a constant per sub-block of 32 (mixed signs, one zero); a constant per group of 16"),
    ("outlier", case_outlier, "2 rows of 2048: normal(0, 0.01) with one outlier per block (+-1 ... +-3e4) at a different position"),
    ("one_sided", case_one_sided, "12 blocks: positive-only and negative-only (uniform, offset 100 and -3, near zero), sub-blocks of alternating sign (by 32 and by 16), one-sided with zeros"),
    ("subnormal", case_subnormal, "6 blocks: float32 subnormals only; with one normal value per sub-block of 32; with one 1.0 per block; +-1.4e-45 only; normal values whose squares underflow (1e-19, 1e-22)"),
    ("tiny_scale", case_tiny_scale, "12 blocks: normal(0, s) for s = 1e-2 down to 1e-30, so the float16 d and dmin go normal, subnormal, zero"),
    ("huge", case_huge, "15 blocks: maxima 6e4 ... 2e19 (Q4_K d and dmin and Q6_K d reaching float16's 65504 and overflowing to infinity; x * x overflowing float32), one-sided at 6.2e7, and values of +-1e38 ... 3e38 whose max - min overflows"),
    ("grid", case_grid, "8 blocks on integer and half-integer grids (-8..7, 0..15, k/2, -32..31, k/15, shuffled k/4, odd halves, a mix), where scaled values tie"),
    ("ties_amax", case_ties_amax, "4 blocks: every group of 16 holds its largest magnitude with both signs"),
    ("rows", case_rows, "8 rows of one block: normal, offset normal, Student t(3), tiny uniform, a sine, 0.1 + 2 cos(i), exponential, negative exponential"),
]


# ---------------------------------------------------------------------------------------------

def sha256(b):
    return hashlib.sha256(b).hexdigest()


def objdump_counts(path):
    """Counts of FMA and AVX instructions in the library's code, or None without objdump."""
    try:
        text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    fma = avx = 0
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        op = parts[1].split()[0] if parts[1].split() else ""
        if op.startswith(("vfmadd", "vfmsub", "vfnmadd", "vfnmsub")):
            fma += 1
        if op.startswith("v") and ("ymm" in line or "xmm" in line):
            avx += 1
    return {"fma": fma, "vex": avx}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ggml-lib", required=True, help="libggml-base shared library")
    ap.add_argument("--out-dir", default=DEFAULT_OUT)
    args = ap.parse_args()

    ggml = GGML(args.ggml_lib)
    lib_real = os.path.realpath(args.ggml_lib)
    with open(lib_real, "rb") as f:
        lib_sha = sha256(f.read())
    try:
        lcp_version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        lcp_version = None
    counts = objdump_counts(lib_real)

    outputs = {}
    manifest = []
    total_blocks = 0
    for ci, (name, build, desc) in enumerate(CASES):
        rng = np.random.default_rng([SEED, ci])
        rows, x = build(rng)
        x = np.ascontiguousarray(x, dtype=F32)
        assert x.size % rows == 0 and (x.size // rows) % QK_K == 0, name
        if not np.all(np.isfinite(x)):
            sys.exit(f"{name}: the input holds a NaN or an infinity")
        n_per_row = x.size // rows
        outputs[f"{name}.f32"] = x.astype("<f4").tobytes()
        entry = {"name": name, "rows": rows, "n_per_row": n_per_row, "blocks": x.size // QK_K,
                 "types": {}}
        for t in TYPES:
            q = ggml.quantize(t, x, rows)
            per_row = b"".join(ggml.quantize(t, x[r * n_per_row:(r + 1) * n_per_row], 1)
                               for r in range(rows))
            if per_row != q:
                sys.exit(f"{name} {t}: quantizing row by row gives other bytes than one call")
            y = ggml.dequantize(t, q)
            outputs[f"{name}.{t}.bin"] = q
            entry["types"][t] = {
                "sha256": sha256(q),
                "deq_fnv1a64": f"{fnv1a64(y.astype('<f4').tobytes()):016x}",
                "deq_nonfinite": int(np.count_nonzero(~np.isfinite(y))),
            }
        total_blocks += x.size // QK_K
        manifest.append(entry)

    size = sum(len(v) for v in outputs.values())
    if size > SIZE_BUDGET:
        sys.exit(f"the goldens would take {size} bytes, over the budget of {SIZE_BUDGET}")

    cases_json = {
        "generator": GENERATOR,
        "seed": SEED,
        "ggml": {"version": ggml.version, "commit": ggml.commit, "library": os.path.basename(lib_real),
                 "library_sha256": lib_sha, "llama_cpp_python": lcp_version},
        "numpy": np.__version__,
        "cases": manifest,
    }
    outputs["cases.json"] = (json.dumps(cases_json, indent=1) + "\n").encode()

    os.makedirs(args.out_dir, exist_ok=True)
    for fn, data in outputs.items():
        with open(os.path.join(args.out_dir, fn), "wb") as f:
            f.write(data)

    build_line = "objdump was not found, so the instructions were not counted"
    if counts is not None:
        build_line = (f"objdump finds {counts['fma']} fused multiply-add and {counts['vex']} "
                      "VEX-encoded (AVX) instructions in it")
    lines = [
        "# Golden files for quantizing to ggml's Q4_K and Q6_K",
        "",
        "Made by ggml itself: `ggml_quantize_chunk(type, x, dst, 0, rows, n_per_row, NULL)` with no",
        "importance matrix, which runs ggml's reference quantizers `quantize_row_q4_K_ref` and",
        "`quantize_row_q6_K_ref` (what llama.cpp's `llama-quantize` does without `--imatrix`).",
        "`Tests/FTQKernelsTests/GGMLKQuantizeGoldenTests.swift` requires ftq's quantizers to give",
        "these bytes. Do not edit by hand; regenerate with",
        "",
        "    python3 tools/golden/make_ggml_kquant_quantize.py --ggml-lib PATH/libggml-base.so",
        "",
        "Provenance:",
        "",
        f"- ggml: `{os.path.basename(lib_real)}` of llama-cpp-python {lcp_version} (ggml {ggml.version}, "
        f"commit `{ggml.commit}`),",
        "  built by `tools/golden/make_llamacpp_gguf.sh`; its sha256 is",
        f"  `{lib_sha}`.",
        f"- numpy {np.__version__}, Python {platform.python_version()}.",
        f"- Inputs: deterministic, numpy `default_rng([{SEED}, i])` for case i; the same library",
        "  gives the same bytes on every run.",
        "",
        "## The ggml build",
        "",
        "The reference quantizers are in libggml-base, which ggml's CMake compiles without",
        "architecture flags even when `GGML_NATIVE` is on (`-march=native` and the `-mavx2 -mfma`",
        "variants go only to the CPU backend, libggml-cpu). `make_llamacpp_gguf.sh` builds with",
        "`GGML_NATIVE=OFF`; the build log of this library shows `ggml-quants.c` compiled by GCC with",
        "`-O3 -DNDEBUG -std=gnu11 -fPIC` and no `-m` flags, that is for baseline x86-64 (SSE2), and",
        build_line + ".",
        "GCC's default `-ffp-contract=fast` has no fused multiply-add to contract `a * b + c` into,",
        "so every float32 multiplication and addition is rounded on its own. A build for a target",
        "with fused multiply-add in its baseline (arm64, for instance) may contract and give other",
        "bytes on some inputs; these goldens are the x86-64 behaviour.",
        "",
        "## Layout",
        "",
        "- `cases.json`: generator, seed, ggml and numpy versions; per case its rows, `n_per_row`,",
        "  block count, and per type the sha256 of the quantized bytes, the 64-bit FNV-1a of ggml's",
        "  own dequantization of them (`to_float`, little-endian float32 bytes) and how many of",
        "  those values are not finite.",
        "- `NAME.f32`: the input, rows * n_per_row little-endian float32 values, all finite.",
        "- `NAME.Q4_K.bin`, `NAME.Q6_K.bin`: what ggml wrote, 144 or 210 bytes per block of 256,",
        "  concatenated in row order. Each was also made row by row, with the same bytes.",
        "",
        "## Cases",
        "",
        "| case | rows x n_per_row | blocks | what |",
        "|---|---|---|---|",
    ]
    for (name, _, desc), e in zip(CASES, manifest):
        lines.append(f"| `{name}` | {e['rows']} x {e['n_per_row']} | {e['blocks']} | {desc} |")
    nonfinite = [(e["name"], t, v["deq_nonfinite"]) for e in manifest for t, v in e["types"].items()
                 if v["deq_nonfinite"]]
    lines += ["", f"{total_blocks} blocks in all, {size} bytes of data.", ""]
    if nonfinite:
        lines += ["Dequantized values that are not finite (ggml stores an infinite float16 scale",
                  "when the float32 one is beyond 65504, and `inf * 0` is a NaN): " +
                  ", ".join(f"`{n}` {t}: {k}" for n, t, k in nonfinite) + ".", ""]
    lines += ["## sha256", "", "| file | bytes | sha256 |", "|---|---|---|"]
    for fn in sorted(outputs):
        lines.append(f"| `{fn}` | {len(outputs[fn])} | `{sha256(outputs[fn])}` |")
    with open(os.path.join(args.out_dir, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(outputs) + 1} files, {total_blocks} blocks, {size} bytes to {args.out_dir}")


if __name__ == "__main__":
    main()
