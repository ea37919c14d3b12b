"""safetensors interop: files written by `safetensors.numpy.save_file`, ftq's view of them,
and ftq's output read back with the safetensors package.

    safetensors_peer.py all-dtypes DIR            DIR/all.safetensors: every dtype, empty and 0-dim tensors, metadata
    safetensors_peer.py check-inspect FILE JSON   ftq's `inspect --json` (saved in JSON) against the file
    safetensors_peer.py check-same A B            A and B hold the same tensors (bytes) and metadata
    safetensors_peer.py shuffled DIR              DIR/shuffled-{meta,nometa}.safetensors (hand-made, tensors
                                                  in shuffled order) and DIR/reference-{meta,nometa}.safetensors
                                                  (save_file of the same tensors and metadata)
    safetensors_peer.py canonical DIR             DIR/canonical.safetensors: names that are canonically
                                                  equivalent Unicode but different code points
"""

import os
import random
import sys

import numpy as np
import safetensors.numpy

from peers import (ST_DTYPES, check_totals, compare_tensor_maps, compare_tensors, ftq_inspect_doc,
                   numel, report, st_load, st_view, st_write_ordered)

SHAPES = [(3,), (2, 3), (2, 1, 3), (1, 2, 2, 2), (5,), (4, 2)]


def random_array(rng, dtype_name, shape):
    dt = ST_DTYPES[dtype_name]
    n = numel(shape)
    if dtype_name == "BOOL":
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    raw = rng.integers(0, 256, size=n * dt.itemsize, dtype=np.uint8)
    return raw.view(dt).reshape(shape)


def every_dtype_tensors(seed):
    """One tensor per dtype (several shapes), an empty tensor and a 0-dim tensor."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for k, name in enumerate(ST_DTYPES):
        tensors[f"layers.{k}.{name.lower()}"] = random_array(rng, name, SHAPES[k % len(SHAPES)])
    tensors["empty.f32"] = np.zeros((0, 3), dtype=np.float32)
    tensors["empty.i64"] = np.zeros((4, 0, 2), dtype=np.int64)
    tensors["scalar.f64"] = np.array(-2.5, dtype=np.float64)
    tensors["scalar.u8"] = np.array(7, dtype=np.uint8)
    return tensors


def cmd_all_dtypes(out_dir):
    tensors = every_dtype_tensors(1)
    # Several keys: their order in the file is the writer's (a hash order); inspect must report
    # the file's own order.
    meta = {"format": "pt", "note": "quote\" back\\slash tab\t nl\n é 😀", "empty": ""}
    safetensors.numpy.save_file(tensors, os.path.join(out_dir, "all.safetensors"), metadata=meta)
    report([])


def cmd_check_inspect(path, inspect_json):
    view, problems = st_view(path)
    doc = ftq_inspect_doc(inspect_json)
    if doc["format"] != "safetensors":
        problems.append(f"format {doc['format']!r}")
    if doc["version"] is not None:
        problems.append(f"version {doc['version']!r}, expected null")
    if [tuple(p) for p in doc["metadata_pairs"]] != [tuple(p) for p in view["metadata"]]:
        problems.append(f"metadata {doc['metadata_pairs']} != {view['metadata']}")
    problems += compare_tensors(doc["tensors"], view["tensors"], path)
    problems += check_totals(doc, view["tensors"], sum(numel(t["shape"]) for t in view["tensors"]), path)
    report(problems, tensors=len(view["tensors"]), metadata_keys=len(view["metadata"]))


def cmd_check_same(a, b):
    ta, tb = st_load(a), st_load(b)
    problems = compare_tensor_maps(tb, ta, f"{b} vs {a}")
    ma = safetensors.safe_open(a, framework="np").metadata()
    mb = safetensors.safe_open(b, framework="np").metadata()
    if ma != mb:
        problems.append(f"metadata {mb} != {ma}")
    report(problems, tensors=len(ta))


def cmd_shuffled(out_dir):
    rng = np.random.default_rng(2)
    items = []
    for k, name in enumerate(ST_DTYPES):
        for j in range(2):
            items.append((f"t{j}.{name.lower()}", name, random_array(rng, name, SHAPES[(k + j) % len(SHAPES)])))
    # Names whose byte order differs from other plausible orders (case, digits, non-ASCII,
    # control characters), all of one dtype so that the name decides their order.
    for name in ["a.10", "a.9", "B", "b", "é", "e\u0301x", "😀", "ctl\u0001", "del\u007f", "sp ace", "q\"uote"]:
        items.append((name, "F32", random_array(rng, "F32", (2,))))
    items.append(("empty", "F16", np.zeros((0,), dtype=np.float16)))
    items.append(("scalar", "I32", np.array(-5, dtype=np.int32)))
    random.Random(3).shuffle(items)
    # One metadata key at most: with several, the reference writer orders them in a random hash
    # order, so its bytes are not reproducible.
    for label, meta in [("meta", {"note": "quote\" back\\slash\ttab\nnl \u0001 \u007f é 😀 </x>"}), ("nometa", None)]:
        src = os.path.join(out_dir, f"shuffled-{label}.safetensors")
        st_write_ordered(src, items, metadata=meta)
        loaded = st_load(src)
        arrays = {name: arr for name, (_, arr) in loaded.items()}
        safetensors.numpy.save_file(arrays, os.path.join(out_dir, f"reference-{label}.safetensors"), metadata=meta)
    report([], tensors=len(items))


def cmd_canonical(out_dir):
    # "é" as one code point and as "e" + combining acute: different names to safetensors.
    tensors = {"\u00e9": np.arange(3, dtype=np.float32), "e\u0301": np.arange(3, 6, dtype=np.float32),
               "\u212b": np.ones(2, dtype=np.int32), "\u00c5": np.zeros(2, dtype=np.int32)}
    safetensors.numpy.save_file(tensors, os.path.join(out_dir, "canonical.safetensors"))
    report([])


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"all-dtypes": cmd_all_dtypes, "check-inspect": cmd_check_inspect, "check-same": cmd_check_same,
     "shuffled": cmd_shuffled, "canonical": cmd_canonical}[cmd](*args)
