#!/usr/bin/env python3
"""Checks a GGUF that `ftq convert HFDIR -o model.gguf` wrote for a Llama checkpoint against
llama.cpp's convert_hf_to_gguf conventions, re-implemented here with numpy and read with gguf-py:
tensor names, shapes, types, values (q/k rows permuted per head), the llama.* metadata and
Llama 3's rope_freqs.

usage: llama_gguf_peer.py make-tied SRC_DIR OUT_DIR
           SRC_DIR without lm_head (tie_word_embeddings true) and with llama3 RoPE scaling
       llama_gguf_peer.py make-random OUT_DIR
           a float32 Llama (random weights) whose rows fill 32-element blocks
       llama_gguf_peer.py add-tokenizer DIR PRE
           writes a small byte-level BPE tokenizer.json (PRE: gpt-2, llama-bpe or unknown: a
           Metaspace pre-tokenizer ftq does not name) and tokenizer_config.json into DIR
       llama_gguf_peer.py check HF_DIR OUT.gguf TYPE
           TYPE: the 2-D weights' expected type: F32, F16, BF16, keep (the source dtype), or
           Q8_0, Q4_0, Q4_1 (compared byte for byte with gguf-py's quantization)
Prints a JSON report; exits 1 when a check fails."""
import json
import math
import os
import shutil
import sys

import ml_dtypes
import numpy as np
import safetensors.numpy
from gguf import GGUFReader
from gguf import GGMLQuantizationType as QT
from gguf.quants import dequantize, quantize

FILE_TYPES = {"F32": 0, "F16": 1, "BF16": 32, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7}
QUANT = ("Q8_0", "Q4_0", "Q4_1")

LAYER = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
         "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
         "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
       "lm_head.weight": "output.weight"}


def gguf_name(hf):
    if hf in TOP:
        return TOP[hf]
    p = hf.split(".")
    return f"blk.{p[2]}.{LAYER['.'.join(p[3:-1])]}.{p[-1]}"


def permute(w, n_head):
    # convert_hf_to_gguf.py, LlamaModel.permute
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load(hf_dir):
    with open(os.path.join(hf_dir, "model.safetensors"), "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dt = {"BF16": ml_dtypes.bfloat16, "F16": np.float16, "F32": np.float32}[info["dtype"]]
        out[name] = (np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dt).reshape(info["shape"]), info["dtype"])
    return out


def rope_freqs(cfg):
    # convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors
    rs = cfg.get("rope_parameters") or cfg.get("rope_scaling")
    base = rs.get("rope_theta", cfg.get("rope_theta", 10000.0))
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor, low, high = rs.get("factor", 8.0), rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old = rs.get("original_max_position_embeddings", 8192)
    lw, hw = old / low, old / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < hw:
            out.append(1)
        elif wavelen > lw:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def make_tied(src, out):
    os.makedirs(out, exist_ok=True)
    tensors = {k: v for k, (v, _) in load(src).items() if k != "lm_head.weight"}
    safetensors.numpy.save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["tie_word_embeddings"] = True
    cfg.pop("rope_parameters", None)
    cfg["rope_theta"] = 500000.0
    cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                           "original_max_position_embeddings": 64}
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)
    print(json.dumps({"ok": True}))
    return 0


def make_random(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 96,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 288,
           "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False}
    h, f, v, kvd = 64, 96, 288, 32
    t = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,), "lm_head.weight": (v, h)}
    for n in range(2):
        p = f"model.layers.{n}."
        t |= {p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
              p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kvd, h),
              p + "self_attn.v_proj.weight": (kvd, h), p + "self_attn.o_proj.weight": (h, h),
              p + "mlp.gate_proj.weight": (f, h), p + "mlp.up_proj.weight": (f, h), p + "mlp.down_proj.weight": (h, f)}
    tensors = {k: rng.standard_normal(s).astype(np.float32) for k, s in t.items()}
    safetensors.numpy.save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)
    print(json.dumps({"ok": True}))
    return 0


LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_alphabet():
    # GPT-2's bytes_to_unicode
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def add_tokenizer(d, pre):
    alphabet = byte_alphabet()
    vocab = {"<s>": 0, "</s>": 1}
    for c in alphabet:
        vocab[c] = len(vocab)
    merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"]]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    if pre == "gpt-2":
        pt = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    elif pre == "llama-bpe":
        pt = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    else:
        pt = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}
    tj = {"version": "1.0", "truncation": None, "padding": None,
          "added_tokens": [{"id": 0, "content": "<s>", "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True},
                           {"id": 1, "content": "</s>", "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True}],
          "normalizer": None, "pre_tokenizer": pt, "post_processor": None, "decoder": {"type": "ByteLevel"},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                    "vocab": vocab, "merges": merges if pre != "gpt-2" else [" ".join(m) for m in merges]}}
    json.dump(tj, open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False)
    tc = {"bos_token": "<s>", "eos_token": {"content": "</s>", "special": True}, "add_bos_token": True,
          "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"}
    json.dump(tc, open(os.path.join(d, "tokenizer_config.json"), "w"))
    print(json.dumps({"ok": True}))
    return 0


def check_tokenizer(hf_dir, r, cfg, problems):
    """The gpt2 vocabulary convert_hf_to_gguf writes: tokens by id padded with [PADn]
    (UNUSED), added special tokens CONTROL, merges "a b", special ids, the template."""
    tj = json.load(open(os.path.join(hf_dir, "tokenizer.json"), encoding="utf-8"))
    tc = json.load(open(os.path.join(hf_dir, "tokenizer_config.json")))
    n = cfg["vocab_size"]
    rev = {i: t for t, i in tj["model"]["vocab"].items()}
    added = {a["id"]: a for a in tj["added_tokens"]}
    tokens = [added[i]["content"] if i in added else rev.get(i, f"[PAD{i}]") for i in range(n)]
    types = [3 if i in added and added[i]["special"] else 4 if i in added else 1 if i in rev else 5 for i in range(n)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    want = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types,
            "tokenizer.ggml.merges": merges, "tokenizer.ggml.bos_token_id": 0, "tokenizer.ggml.eos_token_id": 1,
            "tokenizer.ggml.add_bos_token": True, "tokenizer.chat_template": tc["chat_template"]}
    for k, v in want.items():
        if field(r, k) != v:
            got = field(r, k)
            problems.append(f"{k}: {str(got)[:200]}, expected {str(v)[:200]}")


def field(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def check(hf_dir, gguf_path, typ):
    problems = []
    cfg = json.load(open(os.path.join(hf_dir, "config.json")))
    src = load(hf_dir)
    r = GGUFReader(gguf_path)
    got = {t.name: t for t in r.tensors}
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    rs = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = rs.get("rope_theta", cfg.get("rope_theta", 10000.0))
    want_meta = {
        "general.architecture": "llama",
        "llama.block_count": cfg["num_hidden_layers"], "llama.context_length": cfg["max_position_embeddings"],
        "llama.embedding_length": cfg["hidden_size"], "llama.feed_forward_length": cfg["intermediate_size"],
        "llama.attention.head_count": heads, "llama.attention.head_count_kv": kv,
        "llama.rope.freq_base": float(np.float32(theta)),
        "llama.attention.layer_norm_rms_epsilon": float(np.float32(cfg["rms_norm_eps"])),
        "llama.vocab_size": cfg["vocab_size"],
        "llama.rope.dimension_count": cfg.get("head_dim") or cfg["hidden_size"] // heads,
    }
    if os.path.exists(os.path.join(hf_dir, "tokenizer.json")):
        check_tokenizer(hf_dir, r, cfg, problems)
    else:
        want_meta["tokenizer.ggml.model"] = "none"
    if typ in FILE_TYPES:
        want_meta["general.file_type"] = FILE_TYPES[typ]
    if typ in QUANT:
        want_meta["general.quantization_version"] = 2
    for k, v in want_meta.items():
        if field(r, k) != v:
            problems.append(f"{k}: {field(r, k)!r}, expected {v!r}")
    expected = {gguf_name(k): k for k in src}
    if rs.get("rope_type") == "llama3":
        expected["rope_freqs.weight"] = None
    if set(expected) != set(got):
        problems.append(f"tensor names {sorted(got)} != {sorted(expected)}")
    for name, hf in expected.items():
        t = got.get(name)
        if t is None:
            continue
        if hf is None:
            want = rope_freqs(cfg)
            dtype = "F32"
        else:
            w, dtype = src[hf]
            if name.endswith("attn_q.weight"):
                w = permute(w, heads)
            elif name.endswith("attn_k.weight"):
                w = permute(w, kv)
            want = w
            if w.ndim == 1:
                dtype = "F32"
            elif typ != "keep":
                dtype = typ
        if t.tensor_type.name != dtype:
            problems.append(f"{name}: type {t.tensor_type.name}, expected {dtype}")
            continue
        shape = [int(x) for x in reversed(t.shape)]
        if shape != list(want.shape):
            problems.append(f"{name}: shape {shape}, expected {list(want.shape)}")
            continue
        if dtype in QUANT:
            # ggml's quantization of the permuted float32 rows, byte for byte.
            exp = quantize(want.astype(np.float32), QT[dtype])
            if not np.array_equal(np.asarray(t.data).view(np.uint8).reshape(-1), exp.view(np.uint8).reshape(-1)):
                problems.append(f"{name}: {dtype} blocks differ from gguf-py's")
            continue
        values = dequantize(t.data, t.tensor_type).reshape(shape)
        np_dtype = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16}[dtype]
        # The expected values: the source's, rounded to the tensor's type (bit-exact).
        exp = want.astype(np.float32).astype(np_dtype).astype(np.float32)
        if not np.array_equal(values.astype(np.float32).view(np.uint32), exp.view(np.uint32)):
            problems.append(f"{name}: values differ (max {float(np.abs(values - exp).max())})")
    print(json.dumps({"ok": not problems, "problems": problems, "tensors": len(got)}))
    return 0 if not problems else 1


def main(argv):
    if len(argv) == 3 and argv[0] == "make-tied":
        return make_tied(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "add-tokenizer":
        return add_tokenizer(argv[1], argv[2])
    if len(argv) == 2 and argv[0] == "make-random":
        return make_random(argv[1])
    if len(argv) == 4 and argv[0] == "check":
        return check(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
