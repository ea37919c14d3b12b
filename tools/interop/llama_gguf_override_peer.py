#!/usr/bin/env python3
"""Checks a GGUF that `ftq convert DIR -o model.gguf` wrote for a Llama checkpoint, full
precision or bitsandbytes (NF4, FP4, int8), with per-tensor types given as llama-quantize gives
them (formats/llama-gguf.md, "bitsandbytes inputs" and "Type overrides").

The expected values are computed here, independently of ftq: a bitsandbytes weight is decoded
in numpy from its own state (bnb_dequant_peer.intended), q/k rows are permuted as
convert_hf_to_gguf does (llama_gguf_peer.permute), and each 2-D weight's type is chosen as
llama-quantize chooses it: --token-embedding-type for token_embd.weight, --output-tensor-type
for output.weight, else the first --tensor-type whose pattern (lowercased) re.search finds in
the GGUF name, else --type (without --type: the checkpoint's dtype; a 4-bit weight's quant state
dtype, an int8 weight's config.json dtype or torch_dtype, else float16); a K-quant on rows that
are not a multiple of 256 falls back (Q4_K -> Q5_0, Q6_K -> Q8_0), a type whose blocks the rows
do not fill to F16. 1-D tensors are F32.
F32/F16/BF16 tensors must hold the values rounded to their type bit for bit; Q8_0, Q4_0, Q4_1,
Q5_0, Q5_1 the blocks of gguf-py's quantizer byte for byte. gguf-py cannot quantize K-quants:
their blocks must equal those of the same tensor in a --kquant-ref GGUF (written by ftq from the
float32 values of `ftq dequantize`; ftq's K-quant kernels are checked byte for byte against
ggml's elsewhere), and decode to within a relative error of the expected values.

usage: llama_gguf_override_peer.py make-random OUT_DIR
           a float32 Llama: hidden 256 (rows fill 256-element blocks), intermediate 320
           (ffn_down rows of 320 do not), 4 heads, 2 KV heads, vocab 64, untied
       llama_gguf_override_peer.py drop-tensor SRC_DIR OUT_DIR NAME
           SRC_DIR's model.safetensors without tensor NAME (config.json copied)
       llama_gguf_override_peer.py check SRC_DIR OUT.gguf [--type T] [--token-embedding-type T]
           [--output-tensor-type T] [--tensor-type PATTERN=T]... [--kquant-ref REF.gguf]...
Prints a JSON report; exits 1 when a check fails."""
import json
import os
import re
import shutil
import sys

import ml_dtypes
import numpy as np
import safetensors.numpy
from gguf import GGUFReader
from gguf import GGMLQuantizationType as QT
from gguf.quants import dequantize, quantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bnb_dequant_peer import SUFFIXES, intended  # noqa: E402
from llama_gguf_peer import gguf_name, permute  # noqa: E402

FILE_TYPES = {"F32": 0, "F16": 1, "BF16": 32, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q4_K": 14, "Q6_K": 18}
PLAIN = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16}
LEGACY = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")
KQUANT = {"Q4_K": ("Q5_0", 0.2), "Q6_K": ("Q8_0", 0.05)}  # fallback, largest relative error
TORCH = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}
ST_DTYPES = {"BF16": ml_dtypes.bfloat16, "F16": np.float16, "F32": np.float32, "U8": np.uint8, "I8": np.int8}


def read_safetensors(path):
    """name -> (header entry, raw bytes), in file order."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        out[name] = (info, raw[8 + n + a:8 + n + b])
    return out, meta


def load(d):
    tensors, _ = read_safetensors(os.path.join(d, "model.safetensors"))
    return {k: np.frombuffer(b, dtype=ST_DTYPES[i["dtype"]]).reshape(i["shape"]) for k, (i, b) in tensors.items()}


def make_random(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261130)
    h, f, v, kvd = 256, 320, 64, 128
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h, "intermediate_size": f,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": v,
           "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False}
    t = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,), "lm_head.weight": (v, h)}
    for n in range(2):
        p = f"model.layers.{n}."
        t |= {p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
              p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kvd, h),
              p + "self_attn.v_proj.weight": (kvd, h), p + "self_attn.o_proj.weight": (h, h),
              p + "mlp.gate_proj.weight": (f, h), p + "mlp.up_proj.weight": (f, h), p + "mlp.down_proj.weight": (h, f)}
    tensors = {k: (0.05 * rng.standard_normal(s)).astype(np.float32) for k, s in t.items()}
    safetensors.numpy.save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)
    print(json.dumps({"ok": True}))
    return 0


def drop_tensor(src, out, name):
    tensors, meta = read_safetensors(os.path.join(src, "model.safetensors"))
    if name not in tensors:
        print(json.dumps({"ok": False, "problems": [f"{name} not in {src}"]}))
        return 1
    del tensors[name]
    header, data, off = {}, b"", 0
    if meta is not None:
        header["__metadata__"] = meta
    for k, (info, b) in tensors.items():
        header[k] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(len(hb).to_bytes(8, "little") + hb + data)
    shutil.copy(os.path.join(src, "config.json"), os.path.join(out, "config.json"))
    print(json.dumps({"ok": True}))
    return 0


def logical_tensors(d, cfg):
    """HF name -> (float32 values, the dtype a weight keeps without --type) in source order: a
    bitsandbytes weight decoded from its state, its companion tensors left out."""
    src = load(d)
    decoded = intended(src)
    parts = set()
    for p in decoded:
        parts.update(p + s for s in (".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map") + SUFFIXES)
        parts.update({p[:-len(".weight")] + ".SCB", p[:-len(".weight")] + ".weight_format"})
    int8_dtype = TORCH.get(cfg.get("dtype") or cfg.get("torch_dtype"), "F16")
    out = {}
    for k, v in src.items():
        if k in parts:
            continue
        if k in decoded:
            y, shape, sd = decoded[k]
            out[k] = (y.reshape(shape), TORCH[sd] if sd else int8_dtype)
        else:
            out[k] = (v.astype(np.float32), {np.dtype(ml_dtypes.bfloat16): "BF16", np.dtype(np.float16): "F16",
                                             np.dtype(np.float32): "F32"}[v.dtype])
    return out


def expected_type(name, shape, keep, opts):
    if len(shape) < 2:
        return "F32"
    t = None
    if name == "token_embd.weight" and opts["token"]:
        t = opts["token"]
    elif name == "output.weight" and opts["output"]:
        t = opts["output"]
    else:
        for pattern, typ in opts["rules"]:
            if re.search(pattern, name):
                t = typ
                break
    t = t or opts["type"] or keep
    cols = shape[-1]
    if t in KQUANT and cols % 256:
        t = KQUANT[t][0]
    if t not in PLAIN and cols % 32:
        t = "F16"
    return t


def field(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def check(d, gguf_path, args):
    opts = {"type": None, "token": None, "output": None, "rules": [], "refs": []}
    it = iter(args)
    for a in it:
        v = next(it)
        if a == "--type":
            opts["type"] = v.upper()
        elif a == "--token-embedding-type":
            opts["token"] = v.upper()
        elif a == "--output-tensor-type":
            opts["output"] = v.upper()
        elif a == "--tensor-type":
            p, t = v.split("=", 1)
            opts["rules"].append((p.lower(), t.upper()))
        elif a == "--kquant-ref":
            opts["refs"].append({t.name: t for t in GGUFReader(v).tensors})
        else:
            raise SystemExit(f"unknown option {a}")
    problems = []
    cfg = json.load(open(os.path.join(d, "config.json")))
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    src = logical_tensors(d, cfg)
    r = GGUFReader(gguf_path)
    got = {t.name: t for t in r.tensors}
    expected = {gguf_name(k): k for k in src}
    if set(expected) != set(got):
        problems.append(f"tensor names {sorted(got)} != {sorted(expected)}")
    types2d = set()
    any_quant = False
    for name, hf in expected.items():
        t = got.get(name)
        if t is None:
            continue
        w, keep = src[hf]
        if name.endswith("attn_q.weight"):
            w = permute(w, heads)
        elif name.endswith("attn_k.weight"):
            w = permute(w, kv)
        want = expected_type(name, w.shape, keep, opts)
        if w.ndim == 2:
            types2d.add(want)
        any_quant |= want not in PLAIN
        if t.tensor_type.name != want:
            problems.append(f"{name}: type {t.tensor_type.name}, expected {want}")
            continue
        shape = [int(x) for x in reversed(t.shape)]
        if shape != list(w.shape):
            problems.append(f"{name}: shape {shape}, expected {list(w.shape)}")
            continue
        data = np.asarray(t.data).view(np.uint8).reshape(-1)
        if want in LEGACY:
            if not np.array_equal(data, quantize(w, QT[want]).view(np.uint8).reshape(-1)):
                problems.append(f"{name}: {want} blocks differ from gguf-py's")
        elif want in KQUANT:
            ref = next((x[name] for x in opts["refs"] if name in x and x[name].tensor_type.name == want), None)
            if ref is None:
                problems.append(f"{name}: no --kquant-ref holds it as {want}")
            elif not np.array_equal(data, np.asarray(ref.data).view(np.uint8).reshape(-1)):
                problems.append(f"{name}: {want} blocks differ from the reference's")
            y = dequantize(t.data, t.tensor_type).reshape(w.shape)
            rel = float(np.linalg.norm(y - w) / np.linalg.norm(w))
            if not rel < KQUANT[want][1]:
                problems.append(f"{name}: {want} decodes with relative error {rel:.4f}")
        else:
            values = dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
            exp = w.astype(PLAIN[want]).astype(np.float32)
            if not np.array_equal(values.view(np.uint32), exp.view(np.uint32)):
                problems.append(f"{name}: values differ (max {float(np.abs(values - exp).max())})")
    want_meta = {"general.architecture": "llama", "llama.block_count": cfg["num_hidden_layers"],
                 "llama.vocab_size": cfg["vocab_size"], "llama.embedding_length": cfg["hidden_size"]}
    if opts["type"]:
        want_meta["general.file_type"] = FILE_TYPES[opts["type"]]
    elif len(types2d) == 1 and next(iter(types2d)) in PLAIN:
        want_meta["general.file_type"] = FILE_TYPES[next(iter(types2d))]
    else:
        want_meta["general.file_type"] = None
    want_meta["general.quantization_version"] = 2 if (any_quant or (opts["type"] or "F32") not in PLAIN) else None
    for k, v in want_meta.items():
        if field(r, k) != v:
            problems.append(f"{k}: {field(r, k)!r}, expected {v!r}")
    # Nothing of the bitsandbytes layout or of quantization_config is carried over.
    raw = open(gguf_path, "rb").read()
    for s in (b"quantization_config", b"bitsandbytes", b"quant_state", b"absmax", b"quant_map", b"load_in_"):
        if s in raw:
            problems.append(f"the GGUF holds {s.decode()!r}")
    print(json.dumps({"ok": not problems, "problems": problems[:30], "tensors": len(got)}))
    return 0 if not problems else 1


def main(argv):
    if len(argv) == 2 and argv[0] == "make-random":
        return make_random(argv[1])
    if len(argv) == 4 and argv[0] == "drop-tensor":
        return drop_tensor(*argv[1:])
    if len(argv) >= 3 and argv[0] == "check":
        return check(argv[1], argv[2], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
