"""Sharded Hugging Face directories: ftq's shards and index read with the safetensors package,
and a directory written in Python read by ftq.

    shards_peer.py big DIR                        DIR/big.safetensors (save_file, metadata format=pt)
    shards_peer.py check-sharded OUT SRC LIMIT    OUT holds SRC's tensors as model-0000K-of-0000N.safetensors
                                                  shards of at most LIMIT bytes of data (one larger tensor
                                                  excepted) and model.safetensors.index.json as Hugging Face
                                                  writes it
    shards_peer.py check-single OUT SRC           OUT holds only model.safetensors, byte-identical to SRC
    shards_peer.py python-sharded DIR             DIR/model/: three shards and an index written in Python
    shards_peer.py check-inspect-dir DIR JSON     ftq's `inspect --json` of the directory against its shards
"""

import json
import os
import sys

import numpy as np
import safetensors.numpy

from peers import (ST_DTYPES, check_totals, compare_tensor_maps, compare_tensors, ftq_inspect_doc,
                   numel, report, st_load, st_view)

INDEX = "model.safetensors.index.json"


def big_tensors():
    rng = np.random.default_rng(31)
    tensors = {}
    dtypes = ["F32", "F16", "BF16", "I64", "U8", "F64", "I32", "BOOL"]
    for i in range(14):
        dtype = dtypes[i % len(dtypes)]
        n = int(rng.integers(10, 90))
        raw = rng.integers(0, 256, size=n * ST_DTYPES[dtype].itemsize, dtype=np.uint8)
        arr = (raw % 2).astype(np.bool_) if dtype == "BOOL" else raw.view(ST_DTYPES[dtype])
        tensors[f"model.layers.{i}.weight"] = arr
    tensors["lm_head.weight"] = rng.standard_normal((30, 25)).astype(np.float32)  # 3000 bytes: a shard of its own
    tensors["model.embed.😀"] = np.arange(12, dtype=np.float32).reshape(3, 4)  # escaped as a surrogate pair
    tensors["model.norm.é\u007f"] = np.ones(5, dtype=np.float16)
    tensors["model.embed.\uff21"] = np.ones(3, dtype=np.float16)  # after 😀 in UTF-16 order, before it by code point
    tensors["model.empty"] = np.zeros((0, 4), dtype=np.float32)
    return tensors


def cmd_big(out_dir):
    tensors = big_tensors()
    safetensors.numpy.save_file(tensors, os.path.join(out_dir, "big.safetensors"), metadata={"format": "pt"})
    report([], tensors=len(tensors), bytes=sum(a.nbytes for a in tensors.values()))


SIDECARS = ("ftq-manifest.json", "SHA256SUMS")


def hf_index_text(weight_map, total_size, total_parameters):
    """The index as transformers' save_pretrained writes it (json.dumps, indent 2, sorted keys,
    ASCII escapes) with a final newline; recent transformers record total_parameters too."""
    index = {"metadata": {"total_parameters": total_parameters, "total_size": total_size}, "weight_map": weight_map}
    return json.dumps(index, indent=2, sort_keys=True) + "\n"


def cmd_check_sharded(out_dir, src, limit):
    limit = int(limit)
    problems = []
    # ftq's manifest and checksum list sit beside the model files (checked by the CLI tests).
    names = sorted(n for n in os.listdir(out_dir) if n not in SIDECARS)
    shards = [n for n in names if n != INDEX]
    count = len(shards)
    expected = [f"model-{k:05d}-of-{count:05d}.safetensors" for k in range(1, count + 1)]
    if shards != expected or INDEX not in names:
        problems.append(f"files {names}, expected {expected} and {INDEX}")
        report(problems)
    if count < 2:
        problems.append(f"{count} shard(s); the tensors exceed {limit} bytes")
    original = st_load(src)
    src_meta = safetensors.safe_open(src, framework="np").metadata()
    weight_map = {}
    merged = {}
    for shard in shards:
        path = os.path.join(out_dir, shard)
        tensors = st_load(path)
        data = sum(arr.nbytes for _, arr in tensors.values())
        if data > limit and len(tensors) != 1:
            problems.append(f"{shard}: {data} bytes of data in {len(tensors)} tensors, over the {limit}-byte limit")
        meta = safetensors.safe_open(path, framework="np").metadata()
        if meta != src_meta:
            problems.append(f"{shard}: metadata {meta} != source's {src_meta}")
        # Each shard is what save_file writes for its tensors (one metadata key).
        ref = safetensors.numpy.save({n: a for n, (_, a) in tensors.items()}, metadata=meta)
        with open(path, "rb") as f:
            if f.read() != ref:
                problems.append(f"{shard}: bytes differ from save_file of the same tensors")
        for name in tensors:
            if name in merged:
                problems.append(f"{name} in two shards")
            weight_map[name] = shard
        merged.update(tensors)
    problems += compare_tensor_maps(merged, original, f"{out_dir} vs {src}")
    with open(os.path.join(out_dir, INDEX), "rb") as f:
        text = f.read().decode("utf-8")
    index = json.loads(text)
    if index.get("weight_map") != weight_map:
        problems.append(f"index weight_map {index.get('weight_map')} != where the tensors are {weight_map}")
    total_size = sum(arr.nbytes for _, arr in original.values())
    total_parameters = sum(arr.size for _, arr in original.values())
    if index.get("metadata", {}).get("total_size") != total_size:
        problems.append(f"index total_size {index.get('metadata')} != {total_size}")
    want = hf_index_text(weight_map, total_size, total_parameters)
    if text != want:
        problems.append(f"index text differs from json.dumps(indent=2, sort_keys=True):\n{text}\n----\n{want}")
    report(problems, shards=count, tensors=len(merged))


def cmd_check_single(out_dir, src):
    problems = []
    names = sorted(n for n in os.listdir(out_dir) if n not in SIDECARS)
    if names != ["model.safetensors"]:
        problems.append(f"files {names}, expected only model.safetensors")
    else:
        path = os.path.join(out_dir, "model.safetensors")
        problems += compare_tensor_maps(st_load(path), st_load(src), f"{path} vs {src}")
        with open(path, "rb") as a, open(src, "rb") as b:
            if a.read() != b.read():
                problems.append(f"{path} is not byte-identical to {src} (same tensors, same metadata)")
    report(problems)


def cmd_python_sharded(out_dir):
    model = os.path.join(out_dir, "model")
    os.makedirs(model)
    tensors = big_tensors()
    names = list(tensors)
    groups = [names[0:6], names[6:7], names[7:]]
    weight_map = {}
    for k, group in enumerate(groups, 1):
        shard = f"model-{k:05d}-of-{len(groups):05d}.safetensors"
        safetensors.numpy.save_file({n: tensors[n] for n in group}, os.path.join(model, shard), metadata={"format": "pt"})
        for n in group:
            weight_map[n] = shard
    total = sum(a.nbytes for a in tensors.values())
    with open(os.path.join(model, INDEX), "w") as f:
        f.write(hf_index_text(weight_map, total, sum(a.size for a in tensors.values())))
    report([], tensors=len(tensors))


def cmd_check_inspect_dir(model_dir, inspect_json):
    problems = []
    with open(os.path.join(model_dir, INDEX)) as f:
        weight_map = json.load(f)["weight_map"]
    peer = []
    for shard in sorted(set(weight_map.values())):
        view, p = st_view(os.path.join(model_dir, shard))
        problems += p
        for t in view["tensors"]:
            if weight_map.get(t["name"]) != shard:
                problems.append(f"{t['name']} is in {shard}, the index says {weight_map.get(t['name'])}")
        peer += view["tensors"]
    doc = ftq_inspect_doc(inspect_json)
    if doc["format"] != "safetensors":
        problems.append(f"format {doc['format']!r}")
    # By shard (file name order), then by data offset within a shard.
    problems += compare_tensors(doc["tensors"], peer, model_dir)
    problems += check_totals(doc, peer, sum(numel(t["shape"]) for t in peer), model_dir)
    report(problems, tensors=len(peer), shards=len(set(weight_map.values())))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"big": cmd_big, "check-sharded": cmd_check_sharded, "check-single": cmd_check_single,
     "python-sharded": cmd_python_sharded, "check-inspect-dir": cmd_check_inspect_dir}[cmd](*args)
