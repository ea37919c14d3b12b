"""Shared helpers for the interop checks: reading and writing files with the Python peers
(safetensors, gguf-py, numpy, ml_dtypes) and comparing what they see with `ftq inspect --json`.

The scripts beside this one import it; each prints a JSON report and exits 1 when a check fails.
"""

import json
import math
import os
import struct
import sys
import warnings

import ml_dtypes
import numpy as np
import safetensors
import safetensors.numpy

warnings.filterwarnings("ignore", category=RuntimeWarning)

# safetensors dtype names and the numpy / ml_dtypes element types that hold them.
ST_DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "I16": np.dtype(np.int16),
    "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32),
    "U64": np.dtype(np.uint64),
    "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
    "C64": np.dtype(np.complex64),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "F8_E8M0": np.dtype(ml_dtypes.float8_e8m0fnu),
    "F8_E4M3FNUZ": np.dtype(ml_dtypes.float8_e4m3fnuz),
    "F8_E5M2FNUZ": np.dtype(ml_dtypes.float8_e5m2fnuz),
}

# safetensors.numpy materializes these through `getattr(numpy, name)`, which numpy does not
# have; their bytes are read with `safetensors.deserialize` and viewed with ml_dtypes instead.
ST_RAW_ONLY = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"}

UINT_OF_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def report(problems, **extra):
    """Prints the JSON report and exits 0 when there are no problems, 1 otherwise."""
    out = {"ok": not problems, "problems": problems[:50], "problem_count": len(problems)}
    out.update(extra)
    print(json.dumps(out, indent=1, ensure_ascii=True))
    sys.exit(0 if not problems else 1)


def load_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"), object_pairs_hook=list)


def obj(pairs):
    """A JSON object read with object_pairs_hook=list, as a dict (order kept)."""
    return dict(pairs) if isinstance(pairs, list) else pairs


def bits(a):
    """The raw bit patterns of an array, as unsigned integers of the same width."""
    a = np.ascontiguousarray(a)
    return a.view(UINT_OF_SIZE[a.dtype.itemsize]) if a.dtype.itemsize in UINT_OF_SIZE else a.view(np.uint8)


def float_bits(x):
    """The 64-bit pattern of a Python float (tells -0.0 from 0.0)."""
    return struct.unpack("<Q", struct.pack("<d", x))[0]


# ---------------------------------------------------------------------------------------------
# safetensors

def st_header(path):
    """(header length, metadata pairs, entries sorted by data offset) read from the file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf-8"), object_pairs_hook=list)
    meta = []
    entries = []
    for name, value in header:
        if name == "__metadata__":
            meta = list(value)
            continue
        v = dict(value)
        begin, end = v["data_offsets"]
        entries.append({"name": name, "dtype": v["dtype"], "shape": list(v["shape"]),
                        "begin": begin, "end": end})
    entries.sort(key=lambda e: (e["begin"], e["end"]))
    return n, meta, entries


def st_view(path):
    """What the safetensors package says a file holds, with absolute offsets from its header."""
    n, meta, entries = st_header(path)
    with safetensors.safe_open(path, framework="np") as f:
        keys = list(f.keys())
        pmeta = f.metadata() or {}
        slices = {k: (f.get_slice(k).get_dtype(), list(f.get_slice(k).get_shape())) for k in keys}
    problems = []
    if sorted(keys) != sorted(e["name"] for e in entries):
        problems.append(f"{path}: safe_open keys {keys} differ from the header's")
    if pmeta != dict(meta):
        problems.append(f"{path}: safe_open metadata {pmeta} differs from the header's {meta}")
    tensors = []
    for e in entries:
        dt, shape = slices[e["name"]]
        if dt != e["dtype"] or shape != e["shape"]:
            problems.append(f"{path}: {e['name']}: safe_open says {dt} {shape}, header {e['dtype']} {e['shape']}")
        tensors.append({"name": e["name"], "dtype": dt, "shape": shape, "offset": 8 + n + e["begin"],
                        "nbytes": e["end"] - e["begin"], "file": path})
    return {"metadata": meta, "tensors": tensors}, problems


def st_load(path):
    """name -> array, as the safetensors package reads the file.

    `safetensors.numpy.load_file` when the file has no 8-bit floats; otherwise what load_file
    does tensor by tensor (`safe_open(framework="np").get_tensor`) for every dtype it can
    materialize, and `safetensors.deserialize` plus ml_dtypes for the 8-bit floats. Each array
    is also checked against the raw bytes from `deserialize`.
    """
    with open(path, "rb") as f:
        raw = {name: info for name, info in safetensors.deserialize(f.read())}
    if not any(info["dtype"] in ST_RAW_ONLY for info in raw.values()):
        arrays = safetensors.numpy.load_file(path)
    else:
        arrays = {}
        with safetensors.safe_open(path, framework="np") as f:
            for name in f.keys():
                info = raw[name]
                if info["dtype"] in ST_RAW_ONLY:
                    arrays[name] = np.frombuffer(bytes(info["data"]), dtype=ST_DTYPES[info["dtype"]]).reshape(info["shape"])
                else:
                    arrays[name] = f.get_tensor(name)
    if sorted(arrays) != sorted(raw):
        raise AssertionError(f"{path}: load_file names {sorted(arrays)} differ from deserialize names {sorted(raw)}")
    out = {}
    for name, arr in arrays.items():
        info = raw[name]
        if arr.tobytes() != bytes(info["data"]) or list(arr.shape) != list(info["shape"]):
            raise AssertionError(f"{path}: {name}: loaded array differs from deserialize's bytes or shape")
        out[name] = (info["dtype"], arr)
    return out


def st_write_ordered(path, tensors, metadata=None, pad_to=8):
    """Writes a safetensors file by hand: header entries and data in the order given.

    tensors: list of (name, safetensors dtype, array). The header is compact JSON padded with
    spaces; __metadata__ goes last, to differ from the reference writer's layout.
    """
    header = []
    data = bytearray()
    for name, dtype, arr in tensors:
        b = np.ascontiguousarray(arr).tobytes()
        header.append((name, {"dtype": dtype, "shape": list(arr.shape),
                              "data_offsets": [len(data), len(data) + len(b)]}))
        data += b
    if metadata is not None:
        header.append(("__metadata__", metadata))
    text = json.dumps(dict(header), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-len(text)) % pad_to)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(bytes(data))


def compare_tensor_maps(got, want, label):
    """Problems where two {name: (dtype, array)} maps differ in names, dtypes, shapes or bytes."""
    problems = []
    if sorted(got) != sorted(want):
        problems.append(f"{label}: names {sorted(got)} != {sorted(want)}")
    for name in sorted(set(got) & set(want)):
        gd, ga = got[name]
        wd, wa = want[name]
        if gd != wd:
            problems.append(f"{label}: {name}: dtype {gd} != {wd}")
        if list(ga.shape) != list(wa.shape):
            problems.append(f"{label}: {name}: shape {list(ga.shape)} != {list(wa.shape)}")
        if ga.tobytes() != wa.tobytes():
            problems.append(f"{label}: {name}: bytes differ")
    return problems


# ---------------------------------------------------------------------------------------------
# comparing `ftq inspect --json` with a peer's view

def compare_tensors(ftq_tensors, peer_tensors, label):
    """Problems where ftq's tensor list differs from the peer's (same order required)."""
    problems = []
    got_names = [t["name"] for t in ftq_tensors]
    want_names = [t["name"] for t in peer_tensors]
    if got_names != want_names:
        problems.append(f"{label}: tensor order/names {got_names} != {want_names}")
        return problems
    for g, w in zip(ftq_tensors, peer_tensors):
        for field in ("dtype", "shape", "offset", "nbytes"):
            if g[field] != w[field]:
                problems.append(f"{label}: {w['name']}: {field} {g[field]!r} != {w[field]!r}")
        if os.path.realpath(g["file"]) != os.path.realpath(w["file"]):
            problems.append(f"{label}: {w['name']}: file {g['file']} != {w['file']}")
    return problems


def ftq_inspect_doc(path):
    """`ftq inspect --json` output saved by the caller, with objects as dicts in file order."""
    doc = obj(load_json(path))
    doc["metadata_pairs"] = list(doc["metadata"]) if isinstance(doc["metadata"], list) else list(doc["metadata"].items())
    doc["tensors"] = [obj(t) for t in doc["tensors"]]
    if "metadata_types" in doc:
        doc["metadata_types"] = obj(doc["metadata_types"])
    return doc


def check_totals(doc, peer_tensors, elements, label):
    problems = []
    total_bytes = sum(t["nbytes"] for t in peer_tensors)
    if doc["total_bytes"] != total_bytes:
        problems.append(f"{label}: total_bytes {doc['total_bytes']} != {total_bytes}")
    if doc["total_parameters"] != elements:
        problems.append(f"{label}: total_parameters {doc['total_parameters']} != {elements}")
    return problems


def numel(shape):
    return int(math.prod(shape)) if shape else 1
