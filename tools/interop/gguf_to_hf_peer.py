#!/usr/bin/env python3
"""Checks `ftq convert MODEL.gguf -o HFDIR` for Llama GGUFs (formats/llama-gguf.md, "GGUF to
Hugging Face") with gguf-py, numpy, ml_dtypes and safetensors: the directory against the GGUF
it came from, and a GGUF made again from it against the first.

usage: gguf_to_hf_peer.py check MODEL.gguf HFDIR DTYPE
           DTYPE: keep (F32/F16/BF16 tensors keep their type, quantized ones become F32), F32,
           F16 or BF16. Checks tensor names, shapes, dtypes and values (GGUF values decoded by
           gguf-py, q/k rows put back with numpy, rounded to DTYPE: bit for bit), config.json
           against the llama.* metadata (Llama 3 rope_scaling recomputed to rope_freqs.weight),
           tokenizer.json and tokenizer_config.json against the tokenizer.* metadata
       gguf_to_hf_peer.py same A.gguf B.gguf
           every key-value of A (type and value) in B and no other; the same tensors with the
           same type, shape and bytes
       gguf_to_hf_peer.py edit IN.gguf OUT.gguf OP...
           rewrites IN with gguf-py: OP is drop:KEY, arch:NAME (general.architecture),
           rename:OLD:NEW (a tensor), drop-tensor:NAME or scale:NAME (first value times 1.5)
       gguf_to_hf_peer.py logits ORIG_HFDIR NEW_HFDIR          (needs torch and transformers)
           LlamaForCausalLM logits on fixed ids, in float32, of both directories
       gguf_to_hf_peer.py spm ORIG.model HFDIR
           HFDIR/tokenizer.model loads in sentencepiece and encodes and decodes a few strings as
           ORIG.model does; transformers' AutoTokenizer loads HFDIR and gives the same ids
           (strings without leading whitespace: its Metaspace does not add a second "▁")
       gguf_to_hf_peer.py tokenize ORIG_HFDIR NEW_HFDIR        (needs transformers)
           AutoTokenizer ids of a few strings, and the chat template, with both directories
Prints a JSON report; exits 1 when a check fails."""
import json
import math
import os
import sys

import ml_dtypes
import numpy as np

from peers import bits, report, st_load

try:
    from gguf import GGUFReader, GGUFWriter
    from gguf import GGUFValueType as VT
    from gguf.quants import dequantize
except ImportError:
    # logits and tokenize need only transformers (a Python with torch may lack gguf-py).
    GGUFReader = GGUFWriter = VT = dequantize = None

TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
LAYER = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
         "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
NP = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16}
TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def hf_name(name):
    module, kind = name.rsplit(".", 1)
    if module in TOP:
        return f"{TOP[module]}.{kind}"
    _, n, m = module.split(".")
    return f"model.layers.{n}.{LAYER[m]}.{kind}"


def unpermute(w, n_head):
    # The inverse of convert_hf_to_gguf's LlamaModel.permute: rows of each head go from
    # (d/2, 2) back to (2, d/2).
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def field(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def values_of(t):
    """A GGUF tensor's values as numpy (its own float type; quantized ones decoded to float32)."""
    shape = [int(x) for x in reversed(t.shape)]
    name = t.tensor_type.name
    if name in ("F32", "F16"):
        return np.asarray(t.data).reshape(shape), name
    if name == "BF16":
        return np.asarray(t.data).view(np.uint8).reshape(-1).view(ml_dtypes.bfloat16).reshape(shape), name
    return dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape), None


def load_dir(d):
    index = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    out = {}
    for f in files:
        for name, (dt, arr) in st_load(os.path.join(d, f)).items():
            out[name] = (dt, arr)
    return out


def rope_freqs(cfg):
    # Llama 3 RoPE factors as convert_hf_to_gguf computes them (float32 frequencies).
    rs = cfg["rope_scaling"]
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (cfg["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1)
        elif wavelen > old / low:
            out.append(factor)
        else:
            s = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


def f32(x):
    return float(np.float32(x))


def check_config(r, d, names, dtype, problems):
    cfg = json.load(open(os.path.join(d, "config.json")))
    heads = field(r, "llama.attention.head_count")
    want = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "num_hidden_layers": field(r, "llama.block_count"), "hidden_size": field(r, "llama.embedding_length"),
        "intermediate_size": field(r, "llama.feed_forward_length"), "num_attention_heads": heads,
        "num_key_value_heads": field(r, "llama.attention.head_count_kv") or heads,
        "max_position_embeddings": field(r, "llama.context_length"),
        "vocab_size": field(r, "llama.vocab_size") or int(r.get_tensor(names["token_embd.weight"]).shape[1]),
        "tie_word_embeddings": "output.weight" not in names,
        "attention_bias": "blk.0.attn_q.bias" in names, "mlp_bias": "blk.0.ffn_gate.bias" in names,
        "torch_dtype": dtype,
    }
    if field(r, "llama.attention.key_length") is not None:
        want["head_dim"] = field(r, "llama.attention.key_length")
    for key, gkey in [("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"), ("pad_token_id", "padding_token_id")]:
        if field(r, f"tokenizer.ggml.{gkey}") is not None:
            want[key] = field(r, f"tokenizer.ggml.{gkey}")
    for k, v in want.items():
        if cfg.get(k) != v:
            problems.append(f"config.json {k}: {cfg.get(k)!r}, expected {v!r}")
    # Floats: the decimal written reads back to the GGUF's float32.
    for k, gkey, default in [("rms_norm_eps", "llama.attention.layer_norm_rms_epsilon", None),
                             ("rope_theta", "llama.rope.freq_base", 10000.0)]:
        g = field(r, gkey)
        g = default if g is None else g
        if not isinstance(cfg.get(k), float) or f32(cfg[k]) != f32(g):
            problems.append(f"config.json {k}: {cfg.get(k)!r}, expected float32 {g!r}")
    if "rope_freqs.weight" in names:
        rs = cfg.get("rope_scaling") or {}
        if rs.get("rope_type") != "llama3":
            problems.append(f"config.json rope_scaling {rs!r}: expected llama3 for rope_freqs.weight")
        else:
            got = np.asarray(r.get_tensor(names["rope_freqs.weight"]).data, dtype=np.float32)
            if not np.array_equal(bits(rope_freqs(cfg)), bits(got)):
                problems.append(f"config.json rope_scaling {rs} gives {rope_freqs(cfg).tolist()}, not the GGUF's {got.tolist()}")
    elif field(r, "llama.rope.scaling.type") == "linear":
        rs = cfg.get("rope_scaling") or {}
        if rs.get("rope_type") != "linear" or f32(rs.get("factor", 0)) != f32(field(r, "llama.rope.scaling.factor")):
            problems.append(f"config.json rope_scaling {rs!r}: expected linear {field(r, 'llama.rope.scaling.factor')}")
    elif "rope_scaling" in cfg:
        problems.append(f"config.json rope_scaling {cfg['rope_scaling']!r}: the GGUF has none")
    gen = os.path.join(d, "generation_config.json")
    want_gen = {k: v for k, v in want.items() if k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    got_gen = json.load(open(gen)) if os.path.exists(gen) else {}
    if got_gen != want_gen:
        problems.append(f"generation_config.json {got_gen}, expected {want_gen}")


def check_tokenizer(r, d, problems):
    tj_path, tc_path = os.path.join(d, "tokenizer.json"), os.path.join(d, "tokenizer_config.json")
    pre = field(r, "tokenizer.ggml.pre")
    if field(r, "tokenizer.ggml.model") == "llama":
        return len(field(r, "tokenizer.ggml.tokens")) if os.path.exists(os.path.join(d, "tokenizer.model")) else 0
    if field(r, "tokenizer.ggml.model") != "gpt2" or pre not in ("gpt-2", "llama-bpe"):
        if os.path.exists(tj_path) or os.path.exists(tc_path):
            problems.append("tokenizer files written for a vocabulary ftq does not convert")
        return 0
    tj = json.load(open(tj_path, encoding="utf-8"))
    tc = json.load(open(tc_path, encoding="utf-8"))
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type") or [1] * len(tokens)
    keep = [i for i, t in enumerate(tokens) if not (types[i] == 5 and t == f"[PAD{i}]")]
    want_vocab = {tokens[i]: i for i in keep}
    model = tj["model"]
    if model["type"] != "BPE" or model.get("byte_fallback") or model["vocab"] != want_vocab:
        problems.append("tokenizer.json model: not a BPE of the GGUF's tokens by id")
    # The "a b" strings as the GGUF has them.
    if model["merges"] != list(field(r, "tokenizer.ggml.merges")):
        problems.append("tokenizer.json merges differ from tokenizer.ggml.merges")
    want_added = [(i, tokens[i], types[i] == 3) for i in keep if types[i] in (3, 4)]
    got_added = [(a["id"], a["content"], a["special"]) for a in tj["added_tokens"]]
    if got_added != want_added:
        problems.append(f"added_tokens {got_added[:5]}, expected {want_added[:5]}")
    pt = tj["pre_tokenizer"]
    if pre == "gpt-2" and not (pt["type"] == "ByteLevel" and pt["use_regex"] and not pt["add_prefix_space"]):
        problems.append(f"pre_tokenizer {pt} is not GPT-2's byte-level split")
    if pre == "llama-bpe" and not (pt["type"] == "Sequence" and pt["pretokenizers"][0]["type"] == "Split"
                                   and pt["pretokenizers"][1]["type"] == "ByteLevel"):
        problems.append(f"pre_tokenizer {pt} is not Llama 3's split then bytes")
    if tj["decoder"]["type"] != "ByteLevel":
        problems.append(f"decoder {tj['decoder']} is not ByteLevel")
    for key, gkey in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id")]:
        i = field(r, f"tokenizer.ggml.{gkey}")
        if i is not None and tc.get(key) != tokens[i]:
            problems.append(f"tokenizer_config.json {key}: {tc.get(key)!r}, expected {tokens[i]!r}")
    for key in ("add_bos_token", "add_eos_token"):
        if tc.get(key) != field(r, f"tokenizer.ggml.{key}"):
            problems.append(f"tokenizer_config.json {key}: {tc.get(key)!r}, expected {field(r, f'tokenizer.ggml.{key}')!r}")
    if tc.get("chat_template") != field(r, "tokenizer.chat_template"):
        problems.append("tokenizer_config.json chat_template differs from tokenizer.chat_template")
    # bos where the GGUF adds it: the post-processor's template starts with it.
    if field(r, "tokenizer.ggml.add_bos_token"):
        bos = tokens[field(r, "tokenizer.ggml.bos_token_id")]
        procs = tj["post_processor"].get("processors", [])
        tp = [p for p in procs if p["type"] == "TemplateProcessing"]
        if not tp or tp[0]["single"][0] != {"SpecialToken": {"id": bos, "type_id": 0}}:
            problems.append(f"post_processor {tj['post_processor']} does not prepend {bos!r}")
    return len(want_vocab)


def check(gguf_path, d, dtype):
    problems = []
    r = GGUFReader(gguf_path)
    names = {t.name: k for k, t in enumerate(r.tensors)}
    heads = field(r, "llama.attention.head_count")
    kv = field(r, "llama.attention.head_count_kv") or heads
    got = load_dir(d)
    want_names = {hf_name(n) for n in names if n != "rope_freqs.weight"}
    if set(got) != want_names:
        problems.append(f"tensor names {sorted(got)} != {sorted(want_names)}")
    types = set()
    for t in r.tensors:
        if t.name == "rope_freqs.weight":
            continue
        hf = hf_name(t.name)
        if hf not in got:
            continue
        w, plain = values_of(t)
        if ".attn_q." in t.name:
            w = unpermute(w, heads)
        elif ".attn_k." in t.name:
            w = unpermute(w, kv)
        target = (plain or "F32") if dtype == "keep" else dtype
        if w.ndim == 2:
            types.add(target)
        st_dtype, arr = got[hf]
        if st_dtype != target:
            problems.append(f"{hf}: dtype {st_dtype}, expected {target}")
            continue
        if list(arr.shape) != list(w.shape):
            problems.append(f"{hf}: shape {list(arr.shape)}, expected {list(w.shape)}")
            continue
        exp = w if plain == target else w.astype(np.float32).astype(NP[target])
        if not np.array_equal(bits(arr), bits(exp)):
            problems.append(f"{hf}: values differ from the GGUF's (gguf-py decoded, rows put back, as {target})")
    torch_dtype = TORCH_DTYPE[dtype] if dtype != "keep" else TORCH_DTYPE[types.pop()] if len(types) == 1 else "float32"
    check_config(r, d, names, torch_dtype, problems)
    vocab = check_tokenizer(r, d, problems)
    report(problems, tensors=len(got), vocab=vocab)


def field_entry(f):
    """(type, value) of a key-value as gguf-py reads it; arrays with their element type."""
    return ([int(t) for t in f.types], f.contents())


def same(a_path, b_path):
    problems = []
    a, b = GGUFReader(a_path), GGUFReader(b_path)
    fa = {k: field_entry(f) for k, f in a.fields.items() if not k.startswith("GGUF.")}
    fb = {k: field_entry(f) for k, f in b.fields.items() if not k.startswith("GGUF.")}
    for k in fa.keys() | fb.keys():
        if fa.get(k) != fb.get(k):
            problems.append(f"{k}: {str(fa.get(k))[:200]} != {str(fb.get(k))[:200]}")
    ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
    if set(ta) != set(tb):
        problems.append(f"tensors {sorted(ta)} != {sorted(tb)}")
    for name in set(ta) & set(tb):
        x, y = ta[name], tb[name]
        if x.tensor_type != y.tensor_type or list(x.shape) != list(y.shape):
            problems.append(f"{name}: {x.tensor_type.name} {list(x.shape)} != {y.tensor_type.name} {list(y.shape)}")
        elif np.asarray(x.data).tobytes() != np.asarray(y.data).tobytes():
            problems.append(f"{name}: bytes differ")
    with open(a_path, "rb") as f, open(b_path, "rb") as g:
        identical = f.read() == g.read()
    report(problems, keys=len(fa), tensors=len(ta), identical_files=identical)


def edit(src, out, ops):
    r = GGUFReader(src)
    arch = field(r, "general.architecture")
    drop, drop_t, rename, scale, u32 = set(), set(), {}, set(), {}
    for op in ops:
        kind, _, rest = op.partition(":")
        if kind == "drop":
            drop.add(rest)
        elif kind == "arch":
            arch = rest
        elif kind == "rename":
            old, new = rest.split(":")
            rename[old] = new
        elif kind == "drop-tensor":
            drop_t.add(rest)
        elif kind == "scale":
            scale.add(rest)
        elif kind == "u32":
            key, _, value = rest.partition("=")
            u32[key] = int(value)
        else:
            raise SystemExit(f"unknown op {op}")
    w = GGUFWriter(out, arch)
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture" or k in drop:
            continue
        vtype = VT(f.types[0])
        sub = VT(f.types[-1]) if vtype == VT.ARRAY else None
        w.add_key_value(k, u32.get(k, f.contents()), vtype, sub_type=sub)
    for t in r.tensors:
        if t.name in drop_t:
            continue
        data = np.array(t.data)
        if t.name in scale:
            data.reshape(-1)[0] *= 1.5
        w.add_tensor(rename.get(t.name, t.name), data, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    report([])


def logits(orig, new):
    import torch
    from transformers import LlamaForCausalLM
    a = LlamaForCausalLM.from_pretrained(orig, dtype=torch.float32).eval()
    b = LlamaForCausalLM.from_pretrained(new, dtype=torch.float32).eval()
    ids = torch.tensor([[1, 5, 9, 33, 2, 17, 60, 3, 0, 11, 42, 7]]) % a.config.vocab_size
    with torch.no_grad():
        la, lb = a(ids).logits, b(ids).logits
    diff = float((la - lb).abs().max())
    report([] if diff <= 1e-5 else [f"logits differ by {diff}"], max_abs_diff=diff, identical=bool(torch.equal(la, lb)))


def tokenize(orig, new):
    from transformers import AutoTokenizer
    a, b = AutoTokenizer.from_pretrained(orig), AutoTokenizer.from_pretrained(new)
    problems = []
    texts = ["the theme", " the", "Hello, world!  1234567 \n\n tab\t", "héllo wörld 😀", "<s>the</s>", ""]
    for s in texts:
        x, y = a(s)["input_ids"], b(s)["input_ids"]
        if x != y:
            problems.append(f"{s!r}: {x} != {y}")
        if a.decode(x) != b.decode(y):
            problems.append(f"{s!r}: decodes {a.decode(x)!r} != {b.decode(y)!r}")
    msgs = [{"role": "user", "content": "the theme"}]
    if a.chat_template and a.apply_chat_template(msgs, tokenize=False) != b.apply_chat_template(msgs, tokenize=False):
        problems.append("chat templates render differently")
    report(problems, texts=len(texts))


def spm(orig, d):
    import sentencepiece
    from transformers import AutoTokenizer
    a = sentencepiece.SentencePieceProcessor(model_file=orig)
    b = sentencepiece.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
    t = AutoTokenizer.from_pretrained(d)
    problems = []
    texts = ["Hello world  xéz", "the theme", "Le chat est sur la table.", "日本語のテスト", "tab\tnew\nline 123 😀", ""]
    for s in texts + [" leading", "  two"]:
        x, y = a.encode(s), b.encode(s)
        if x != y:
            problems.append(f"sentencepiece {s!r}: {x} != {y}")
        if a.decode(x) != b.decode(y):
            problems.append(f"sentencepiece {s!r}: decodes {a.decode(x)!r} != {b.decode(y)!r}")
    for s in texts:
        z = t(s, add_special_tokens=False)["input_ids"]
        if z != b.encode(s):
            problems.append(f"AutoTokenizer {s!r}: {z} != {b.encode(s)}")
        if t.decode(z) != b.decode(b.encode(s)):
            problems.append(f"AutoTokenizer {s!r}: decodes {t.decode(z)!r}")
    report(problems, pieces=b.get_piece_size(), tokenizer=type(t).__name__)


def main(argv):
    if len(argv) == 4 and argv[0] == "check":
        return check(*argv[1:])
    if len(argv) == 3 and argv[0] == "same":
        return same(*argv[1:])
    if len(argv) >= 3 and argv[0] == "edit":
        return edit(argv[1], argv[2], argv[3:])
    if len(argv) == 3 and argv[0] == "logits":
        return logits(*argv[1:])
    if len(argv) == 3 and argv[0] == "spm":
        return spm(*argv[1:])
    if len(argv) == 3 and argv[0] == "tokenize":
        return tokenize(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
