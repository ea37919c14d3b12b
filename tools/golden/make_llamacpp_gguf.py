#!/usr/bin/env python3
"""Makes the llama.cpp-quantized GGUF fixtures in testdata/llamacpp/ and their expectations.

1. Writes a tiny Llama-architecture model as an F32 GGUF with gguf-py (seeded weights, a
   64-token SentencePiece-style vocabulary, every llama.* hyperparameter key).
2. Quantizes it with llama.cpp itself (llama_model_quantize, through llama-cpp-python) to
   Q4_K_M (a mix of Q4_K, Q6_K, Q5_0, Q8_0 and F32) and Q4_0 (Q4_0, Q6_K, F32).
3. Checks each result: llama.cpp loads it and evaluates a short text; gguf-py dequantizes every
   quantized tensor close to the F32 source.
4. Records what gguf-py's GGUFReader sees in each result (tensor names, ggml types, shapes,
   absolute data offsets, byte sizes; metadata key types and scalar values) as
   NAME.expected.json, so the Swift tests need no Python.

Needs llama-cpp-python (which compiles llama.cpp), gguf and numpy: see
testdata/llamacpp/README.md for the exact versions and tools/golden/make_llamacpp_gguf.sh
for an environment that has them.

usage: make_llamacpp_gguf.py [--out-dir testdata/llamacpp] [--keep-source PATH]
"""
import argparse
import ctypes
import hashlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import gguf
import llama_cpp

SEED = 20240601
ARCH = "llama"
N_EMBD = 256          # K-quants need rows that are a multiple of 256
N_HEAD = 4
N_HEAD_KV = 2         # grouped-query attention: attn_k/attn_v have 128 rows
HEAD_DIM = N_EMBD // N_HEAD
N_FF = 288            # a multiple of 32 but not of 256: ffn_down takes llama.cpp's fallback types
N_LAYER = 2
N_CTX = 256

# (file name, llama.cpp ftype)
VARIANTS = [
    ("tiny-llama-Q4_K_M.gguf", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M),
    ("tiny-llama-Q4_0.gguf", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0),
]


def vocabulary():
    """A small SentencePiece ("llama") vocabulary: control, byte and normal tokens."""
    tokens = ["<unk>", "<s>", "</s>", "<0x0A>", "<0x20>"]
    types = [
        gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL,
        gguf.TokenType.BYTE, gguf.TokenType.BYTE,
    ]
    # Single letters with and without the word-start marker keep every lowercase text tokenizable.
    words = (["\u2581" + c for c in "abcdefghijklmnopqrstuvwxyz"] + list("abcdefghijklmnopqrstuvwxyz")
             + ["\u2581the", "\u2581ftq", "\u2581is", "\u2581test", "\u2581", ".", ","])
    tokens += words
    types += [gguf.TokenType.NORMAL] * len(words)
    scores = [0.0] * 5 + [float(-k) for k in range(len(words))]
    return tokens, scores, [int(t) for t in types]


def tensors(rng, n_vocab):
    """The model's tensors in llama.cpp's order, as row-major numpy arrays (shape = ne reversed)."""
    def w(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def norm(n):
        return (1.0 + rng.standard_normal(n) * 0.02).astype(np.float32)

    out = [("token_embd.weight", w(n_vocab, N_EMBD))]
    for i in range(N_LAYER):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", norm(N_EMBD)),
            (p + "attn_q.weight", w(N_HEAD * HEAD_DIM, N_EMBD)),
            (p + "attn_k.weight", w(N_HEAD_KV * HEAD_DIM, N_EMBD)),
            (p + "attn_v.weight", w(N_HEAD_KV * HEAD_DIM, N_EMBD)),
            (p + "attn_output.weight", w(N_EMBD, N_HEAD * HEAD_DIM)),
            (p + "ffn_norm.weight", norm(N_EMBD)),
            (p + "ffn_gate.weight", w(N_FF, N_EMBD)),
            (p + "ffn_up.weight", w(N_FF, N_EMBD)),
            (p + "ffn_down.weight", w(N_EMBD, N_FF)),
        ]
    out += [("output_norm.weight", norm(N_EMBD)), ("output.weight", w(n_vocab, N_EMBD))]
    return out


def write_source(path):
    tokens, scores, types = vocabulary()
    rng = np.random.default_rng(SEED)
    w = gguf.GGUFWriter(path, ARCH)
    w.add_name("ftq tiny llama")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    source = tensors(rng, len(tokens))
    for name, a in source:
        w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dict(source)


def quantize(src, dst, ftype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        sys.exit(f"llama_model_quantize({dst}) failed with {rc}")


def check_loads(path):
    """llama.cpp loads the file, tokenizes a text and evaluates it; returns its own description."""
    m = llama_cpp.Llama(model_path=path, n_ctx=32, n_threads=1, n_batch=32, logits_all=True, verbose=False)
    toks = m.tokenize(b"the ftq is a test.")
    m.eval(toks)
    logits = np.asarray(m.scores[len(toks) - 1])
    if logits.shape != (m.n_vocab(),) or not np.all(np.isfinite(logits)):
        sys.exit(f"{path}: llama.cpp produced bad logits")
    cbuf = ctypes.create_string_buffer(256)
    llama_cpp.llama_model_desc(m.model, cbuf, 256)
    desc = cbuf.value.decode()
    n_params = int(llama_cpp.llama_model_n_params(m.model))
    size = int(llama_cpp.llama_model_size(m.model))
    del m
    return {"desc": desc, "n_params": n_params, "model_size": size, "eval_tokens": len(toks)}


def check_values(reader, source):
    """Every tensor dequantizes (gguf-py) close to the F32 source it was made from."""
    for t in reader.tensors:
        ref = source[t.name]
        got = gguf.quants.dequantize(t.data, t.tensor_type)
        if got.shape != ref.shape:
            sys.exit(f"{t.name}: dequantized shape {got.shape} != {ref.shape}")
        err = float(np.max(np.abs(got - ref)))
        if err > 0.25 * float(np.max(np.abs(ref))):
            sys.exit(f"{t.name} ({t.tensor_type.name}): max error {err} is too large")


def value_type_name(field):
    """gguf-py's type of a metadata field: UINT32, STRING, ARRAY[STRING], ..."""
    t = field.types[0]
    if t == gguf.GGUFValueType.ARRAY:
        return "ARRAY[" + field.types[1].name + "]" if len(field.types) > 1 else "ARRAY[?]"
    return t.name


def expectation(path, reader, llama):
    data = open(path, "rb").read()
    tensors = []
    by_type = {}
    for t in reader.tensors:
        ne = [int(d) for d in t.shape]
        rel = int(t.field.parts[-1][0])
        absolute = reader.data_offset + rel
        assert absolute == t.data_offset
        tensors.append({
            "name": t.name,
            "ggml_type": t.tensor_type.name,
            "ggml_type_id": int(t.tensor_type),
            "ne": ne,
            "shape": list(reversed(ne)),
            "offset": absolute,
            "relative_offset": rel,
            "nbytes": int(t.n_bytes),
            "elements": int(t.n_elements),
        })
        by_type[t.tensor_type.name] = by_type.get(t.tensor_type.name, 0) + int(t.n_elements)
    types = {}
    scalars = {}
    array_lengths = {}
    for k, f in reader.fields.items():
        if k.startswith("GGUF."):
            continue  # the reader's own entries for the header fields
        types[k] = value_type_name(f)
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            array_lengths[k] = len(f.data)
        else:
            v = f.contents()
            scalars[k] = float(v) if isinstance(v, (float, np.floating)) else v
    alignment = reader.alignment
    return {
        "file": os.path.basename(path),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "gguf_version": int(reader.fields["GGUF.version"].parts[-1][0]),
        "alignment": int(alignment),
        "data_offset": int(reader.data_offset),
        "tensor_count": len(tensors),
        "tensors": tensors,
        "parameters_by_type": by_type,
        "total_parameters": sum(by_type.values()),
        "total_bytes": sum(t["nbytes"] for t in tensors),
        "metadata_keys": list(types),
        "metadata_types": types,
        "metadata_scalars": scalars,
        "metadata_array_lengths": array_lengths,
        "llama_cpp": llama,
        "made_with": {
            "llama_cpp_python": llama_cpp.__version__,
            "gguf": gguf_version(),
            "numpy": np.__version__,
        },
    }


def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out-dir", default=os.path.join(here, "..", "..", "testdata", "llamacpp"))
    ap.add_argument("--keep-source", help="also keep the F32 source GGUF at this path")
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    llama_cpp.llama_backend_init()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "tiny-llama-F32.gguf")
        source = write_source(src)
        print(f"source: {src} {os.path.getsize(src)} bytes sha256 "
              f"{hashlib.sha256(open(src, 'rb').read()).hexdigest()}")
        if a.keep_source:
            shutil.copyfile(src, a.keep_source)
        for name, ftype in VARIANTS:
            dst = os.path.join(a.out_dir, name)
            quantize(src, dst, ftype)
            llama = check_loads(dst)
            reader = gguf.GGUFReader(dst)
            check_values(reader, source)
            exp = expectation(dst, reader, llama)
            with open(os.path.join(a.out_dir, name.removesuffix(".gguf") + ".expected.json"), "w") as f:
                json.dump(exp, f, indent=1, sort_keys=False)
                f.write("\n")
            mix = ", ".join(f"{k}: {v}" for k, v in exp["parameters_by_type"].items())
            print(f"{name}: {exp['size']} bytes sha256 {exp['sha256']} [{llama['desc']}] ({mix})")


if __name__ == "__main__":
    main()
