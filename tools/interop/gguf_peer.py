"""GGUF interop: files written by gguf-py's GGUFWriter, ftq's view of them, and ftq's output
read back with GGUFReader and the safetensors package.

    gguf_peer.py full DIR                 DIR/full.gguf: every metadata value type, every plain tensor
                                          type and a Q8_0 tensor
    gguf_peer.py plain DIR                DIR/plain.gguf and DIR/aligned.gguf (general.alignment = 64):
                                          unquantized tensors only
    gguf_peer.py check-inspect GGUF JSON  ftq's `inspect --json` (saved in JSON) against GGUFReader's view
    gguf_peer.py check-same A B           GGUFReader sees the same key-values and tensors in A and B
    gguf_peer.py st-source DIR            DIR/src.safetensors (save_file) and DIR/ref.gguf: GGUFWriter with
                                          the same tensors in the file's data order and no key-values
    gguf_peer.py check-gguf-st GGUF ST    the GGUF and the safetensors file hold identical arrays
    gguf_peer.py canonical DIR            DIR/canonical.gguf: keys and tensor names that are canonically
                                          equivalent Unicode but different code points
"""

import os
import sys

import numpy as np
import safetensors.numpy
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader, GGUFValueType as VT, GGUFWriter
from gguf.quants import quantize

from peers import (ST_DTYPES, check_totals, compare_tensor_maps, compare_tensors, float_bits,
                   ftq_inspect_doc, report, st_header, st_load)

TYPE_NAMES = {VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32",
              VT.INT32: "i32", VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "string",
              VT.UINT64: "u64", VT.INT64: "i64", VT.FLOAT64: "f64"}
FLOAT_TYPES = {"f32", "f64"}

# (key, value, type, element type of an array). Written in this order after general.architecture.
KV_SPEC = [
    ("test.u8", 255, VT.UINT8, None),
    ("test.i8", -128, VT.INT8, None),
    ("test.u16", 65535, VT.UINT16, None),
    ("test.i16", -32768, VT.INT16, None),
    ("test.u32", 4294967295, VT.UINT32, None),
    ("test.i32", -2147483648, VT.INT32, None),
    ("test.f32", 0.1, VT.FLOAT32, None),
    ("test.f32.neg_zero", -0.0, VT.FLOAT32, None),
    ("test.f32.subnormal", 1e-45, VT.FLOAT32, None),
    ("test.f32.max", 3.4028234663852886e38, VT.FLOAT32, None),
    ("test.bool.true", True, VT.BOOL, None),
    ("test.bool.false", False, VT.BOOL, None),
    ("test.string", "héllo\nwörld \"q\" \\ \t \u0001 😀", VT.STRING, None),
    ("test.string.empty", "", VT.STRING, None),
    ("test.u64", 2**64 - 1, VT.UINT64, None),
    ("test.i64", -2**63, VT.INT64, None),
    ("test.f64", 0.1, VT.FLOAT64, None),
    ("test.f64.tiny", 5e-324, VT.FLOAT64, None),
    ("test.f64.max", 1.7976931348623157e308, VT.FLOAT64, None),
    ("test.f64.neg_zero", -0.0, VT.FLOAT64, None),
    ("test.arr.u8", [0, 1, 255], VT.ARRAY, VT.UINT8),
    ("test.arr.i8", [-128, 0, 127], VT.ARRAY, VT.INT8),
    ("test.arr.u16", [0, 65535], VT.ARRAY, VT.UINT16),
    ("test.arr.i16", [-32768, 32767], VT.ARRAY, VT.INT16),
    ("test.arr.u32", [0, 4294967295], VT.ARRAY, VT.UINT32),
    ("test.arr.i32", [-2147483648, 2147483647], VT.ARRAY, VT.INT32),
    ("test.arr.f32", [1.5, -0.0, 0.1, 3.4e38, 1e-45], VT.ARRAY, VT.FLOAT32),
    ("test.arr.bool", [True, False, True], VT.ARRAY, VT.BOOL),
    ("test.arr.string", ["a", "", "ü", "tab\t", "😀", "q\"\\"], VT.ARRAY, VT.STRING),
    ("test.arr.u64", [0, 2**64 - 1], VT.ARRAY, VT.UINT64),
    ("test.arr.i64", [-2**63, 2**63 - 1], VT.ARRAY, VT.INT64),
    ("test.arr.f64", [0.1, -0.0, 5e-324, 1e308], VT.ARRAY, VT.FLOAT64),
    ("test.arr.nested_i32", [[1, 2, 3], [4], [-5, 6]], VT.ARRAY, VT.ARRAY),
    ("test.arr.nested_string", [["a", "b"], ["c"]], VT.ARRAY, VT.ARRAY),
    ("test.arr.nested3_f32", [[[1.5], [2.5, 3.5]], [[4.5]]], VT.ARRAY, VT.ARRAY),
    ("tokenizer.ggml.tokens", [f"tok{i}" for i in range(300)], VT.ARRAY, VT.STRING),
]

# The type names inspect reports for the nested arrays (their inner types are inferred by the
# writer: Python int -> i32, float -> f32).
NESTED_TYPE_NAMES = {"test.arr.nested_i32": "array[array[i32]]",
                     "test.arr.nested_string": "array[array[string]]",
                     "test.arr.nested3_f32": "array[array[array[f32]]]"}


def f32(x):
    return float(np.float32(x))


def expected_value(key, value, vtype, sub):
    """The value as stored: floats rounded to their width."""
    def conv(v, t):
        if isinstance(v, list):
            return [conv(x, t) for x in v]
        return f32(v) if t == VT.FLOAT32 or (t == VT.ARRAY and isinstance(v, float)) else v
    return conv(value, sub if vtype == VT.ARRAY else vtype)


def plain_tensors(seed):
    """(name, array, raw ggml type or None) for every unquantized type GGUF stores."""
    rng = np.random.default_rng(seed)

    def bits_of(dtype, shape):
        dt = np.dtype(dtype)
        n = int(np.prod(shape))
        return rng.integers(0, 256, size=n * dt.itemsize, dtype=np.uint8).view(dt).reshape(shape)

    return [
        ("token_embd.weight", bits_of(np.float32, (3, 5)), None),
        ("blk.0.attn_q.weight", bits_of(np.float16, (2, 3, 4)), None),
        ("blk.0.ffn_up.weight", bits_of(ST_DTYPES["BF16"], (4, 8)), QT.BF16),
        ("blk.0.f64", bits_of(np.float64, (7,)), None),
        ("blk.0.i8", bits_of(np.int8, (2, 2, 2, 3)), None),
        ("blk.0.i16", bits_of(np.int16, (5, 1)), None),
        ("blk.0.i32", bits_of(np.int32, (1, 9)), None),
        ("tök.ü.i64", bits_of(np.int64, (3,)), None),
    ]


def write_gguf(path, kv, tensors, alignment_after=None, architecture=True):
    w = GGUFWriter(path, "llama")
    if not architecture:
        # GGUFWriter always adds general.architecture; ftq writes no key-values for a
        # safetensors source, so the reference drops that entry before anything is written.
        del w.kv_data[0]["general.architecture"]
    for k, (key, value, vtype, sub) in enumerate(kv):
        w.add_key_value(key, value, vtype, sub_type=sub)
        if alignment_after is not None and k == 3:
            w.add_custom_alignment(alignment_after)
    for name, arr, raw in tensors:
        w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def cmd_full(out_dir):
    rng = np.random.default_rng(11)
    q = quantize(rng.standard_normal((4, 64)).astype(np.float32), QT.Q8_0)
    tensors = plain_tensors(10)
    tensors.insert(3, ("blk.0.attn_k.q8_0", q, QT.Q8_0))
    write_gguf(os.path.join(out_dir, "full.gguf"), KV_SPEC, tensors)
    report([])


def cmd_plain(out_dir):
    write_gguf(os.path.join(out_dir, "plain.gguf"), KV_SPEC, plain_tensors(12))
    write_gguf(os.path.join(out_dir, "aligned.gguf"), KV_SPEC, plain_tensors(13), alignment_after=64)
    report([])


# ---------------------------------------------------------------------------------------------

def field_type_name(types):
    """`u32`, `string`, `array[string]`, `array[array[i32]]` from a ReaderField's types."""
    name = TYPE_NAMES.get(types[-1], "?")
    for t in reversed(types[:-1]):
        if t == VT.ARRAY:
            name = f"array[{name}]"
    return name


def flatten(v):
    if isinstance(v, list):
        return [x for item in v for x in flatten(item)]
    return [v]


def same_scalar(got, want, type_name):
    base = type_name.replace("array[", "").rstrip("]")
    if base == "f32":
        # ftq prints an f32 as the shortest decimal that reads back as the same f32.
        return (isinstance(got, (int, float)) and not isinstance(got, bool)
                and np.float32(got).view(np.uint32) == np.float32(want).view(np.uint32))
    if base in FLOAT_TYPES:
        return isinstance(got, (int, float)) and not isinstance(got, bool) and float_bits(float(got)) == float_bits(float(want))
    if base == "bool":
        return isinstance(got, bool) and got == want
    if base == "string":
        return isinstance(got, str) and got == want
    return isinstance(got, int) and not isinstance(got, bool) and got == want


def same_value(got, want, type_name):
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(
            same_value(g, w, type_name) for g, w in zip(got, want))
    return same_scalar(got, want, type_name)


def reader_kv(reader):
    """[(key, type name, value)] in file order; nested arrays come flattened from the reader."""
    out = []
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        out.append((name, field_type_name(field.types), field.contents()))
    return out


def reader_tensors(reader, path):
    return [{"name": t.name, "dtype": t.tensor_type.name, "shape": [int(x) for x in reversed(t.shape.tolist())],
             "offset": int(t.data_offset), "nbytes": int(t.n_bytes), "file": path} for t in reader.tensors]


def reader_array(t):
    """A tensor from GGUFReader as numpy sees it (row-major shape, element type)."""
    shape = [int(x) for x in reversed(t.shape.tolist())]
    if t.tensor_type == QT.BF16:
        return t.data.view(ST_DTYPES["BF16"]).reshape(shape)
    return np.asarray(t.data).reshape(shape)


def cmd_check_inspect(path, inspect_json):
    reader = GGUFReader(path)
    doc = ftq_inspect_doc(inspect_json)
    problems = []
    if doc["format"] != "gguf":
        problems.append(f"format {doc['format']!r}")
    if doc["version"] != 3:
        problems.append(f"version {doc['version']!r}")
    kv = reader_kv(reader)
    got_keys = [k for k, _ in doc["metadata_pairs"]]
    if got_keys != [k for k, _, _ in kv]:
        problems.append(f"metadata keys/order {got_keys} != {[k for k, _, _ in kv]}")
    got = dict(doc["metadata_pairs"])
    types = doc["metadata_types"]
    spec = {key: expected_value(key, value, vtype, sub) for key, value, vtype, sub in KV_SPEC}
    for key, type_name, value in kv:
        if key not in got:
            continue
        if types.get(key) != type_name:
            problems.append(f"metadata_types[{key!r}] {types.get(key)!r} != {type_name!r}")
        v = got[key]
        # GGUFReader flattens nested arrays; compare leaves with it and structure with the spec.
        if not same_value(flatten(v) if isinstance(v, list) else v, value, type_name):
            problems.append(f"metadata[{key!r}] {v!r} != reader's {value!r}")
        if key in spec and not same_value(v, spec[key], type_name):
            problems.append(f"metadata[{key!r}] {v!r} != written {spec[key]!r}")
        if key in NESTED_TYPE_NAMES and types.get(key) != NESTED_TYPE_NAMES[key]:
            problems.append(f"metadata_types[{key!r}] {types.get(key)!r} != {NESTED_TYPE_NAMES[key]!r}")
    if set(types) != set(got):
        problems.append(f"metadata_types keys {sorted(types)} != metadata keys {sorted(got)}")
    peer = reader_tensors(reader, path)
    problems += compare_tensors(doc["tensors"], peer, path)
    problems += check_totals(doc, peer, sum(int(t.n_elements) for t in reader.tensors), path)
    report(problems, tensors=len(peer), metadata_keys=len(kv))


def cmd_check_same(a, b):
    ra, rb = GGUFReader(a), GGUFReader(b)
    problems = []
    ka, kb = reader_kv(ra), reader_kv(rb)
    if [(k, t) for k, t, _ in ka] != [(k, t) for k, t, _ in kb]:
        problems.append(f"key-values differ: {[(k, t) for k, t, _ in kb]} != {[(k, t) for k, t, _ in ka]}")
    else:
        for (k, t, va), (_, _, vb) in zip(ka, kb):
            if not same_value(vb, va, t):
                problems.append(f"{k}: {vb!r} != {va!r}")
    ta, tb = ra.tensors, rb.tensors
    if [t.name for t in ta] != [t.name for t in tb]:
        problems.append(f"tensor order {[t.name for t in tb]} != {[t.name for t in ta]}")
    for x, y in zip(ta, tb):
        if x.tensor_type != y.tensor_type or x.shape.tolist() != y.shape.tolist():
            problems.append(f"{x.name}: {y.tensor_type.name} {y.shape.tolist()} != {x.tensor_type.name} {x.shape.tolist()}")
        if reader_array(x).tobytes() != reader_array(y).tobytes():
            problems.append(f"{x.name}: data differ")
    report(problems, tensors=len(ta))


def cmd_st_source(out_dir):
    tensors = {name: arr for name, arr, _ in plain_tensors(14)}
    tensors["blk.1.attn_norm.weight"] = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    src = os.path.join(out_dir, "src.safetensors")
    safetensors.numpy.save_file(tensors, src)
    # ftq writes tensors in the source's data order.
    _, _, entries = st_header(src)
    loaded = st_load(src)
    ordered = []
    for e in entries:
        dtype, arr = loaded[e["name"]]
        ordered.append((e["name"], arr, QT.BF16 if dtype == "BF16" else None))
    write_gguf(os.path.join(out_dir, "ref.gguf"), [], ordered, architecture=False)
    report([], tensors=len(ordered))


def cmd_check_gguf_st(gguf_path, st_path):
    reader = GGUFReader(gguf_path)
    from_gguf = {t.name: (t.tensor_type.name, reader_array(t)) for t in reader.tensors}
    from_st = st_load(st_path)
    problems = compare_tensor_maps(from_st, from_gguf, f"{st_path} vs {gguf_path}")
    for name, (dtype, arr) in from_st.items():
        if arr.dtype != ST_DTYPES[dtype]:
            problems.append(f"{name}: numpy dtype {arr.dtype} for {dtype}")
    report(problems, tensors=len(from_gguf))


def cmd_canonical(out_dir):
    kv = [("name.\u00e9", "one code point", VT.STRING, None), ("name.e\u0301", "two code points", VT.STRING, None)]
    tensors = [("\u00e9", np.arange(3, dtype=np.float32), None), ("e\u0301", np.arange(3, 6, dtype=np.float32), None)]
    write_gguf(os.path.join(out_dir, "canonical.gguf"), kv, tensors)
    report([])


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"full": cmd_full, "plain": cmd_plain, "check-inspect": cmd_check_inspect, "check-same": cmd_check_same,
     "st-source": cmd_st_source, "check-gguf-st": cmd_check_gguf_st, "canonical": cmd_canonical}[cmd](*args)
