#!/usr/bin/env python3
"""Checks the vocabulary and architecture metadata of a GGUF that `ftq convert HFDIR -o m.gguf`
wrote, against what llama.cpp's convert_hf_to_gguf writes, computed with the real peers:
sentencepiece (the pieces of tokenizer.model), gguf-py (SpecialVocab, LlamaHfVocab, GGUFWriter,
GGUFReader), tokenizers and transformers (AutoTokenizer).

usage: llama_vocab_peer.py train-spm OUT.model
           trains the small SentencePiece BPE model of testdata/llama-vocab (deterministic)
       llama_vocab_peer.py make DIR ARCH VOCAB
           a float32 checkpoint with random weights; ARCH: llama (untied, GQA) or qwen2 (q/k/v
           biases, tied embeddings); VOCAB: spm (tokenizer.model, added_tokens.json and
           added_tokens_decoder), hf (a SentencePiece-style BPE tokenizer.json with byte
           fallback, no tokenizer.model), bpe (a Qwen2 byte-level BPE tokenizer.json)
       llama_vocab_peer.py check DIR OUT.gguf
           every tokenizer.* key (name, type, value), the architecture keys, tensors (F32)
Prints a JSON report; exits 1 when a check fails."""
import io
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors.numpy
import sentencepiece as spm
import gguf
from gguf import GGUFReader, GGUFWriter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_gguf_peer import byte_alphabet, gguf_name, load, permute  # noqa: E402

HERE = Path(__file__).resolve().parent
SPM_MODEL = HERE.parent.parent / "testdata" / "llama-vocab" / "tokenizer.model"
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CORPUS = ["The quick brown fox jumps over the lazy dog.", "Hello world! Hello llama.",
          "Tokenizers split text into pieces; llamas eat grass.", "Numbers: 12345 and 67890.",
          "Ünïcödé têxt, naïve café, 日本語のテキスト.", "  leading spaces and\ttabs\nnew lines"]
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def train_spm(out):
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20), model_writer=buf, model_type="bpe", vocab_size=400, byte_fallback=True,
        character_coverage=1.0, num_threads=1, user_defined_symbols=["<tool>"], control_symbols=["<ctl>"],
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, split_digits=True, allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", minloglevel=2)
    with open(out, "wb") as f:
        f.write(buf.getvalue())
    print(json.dumps({"ok": True, "bytes": len(buf.getvalue())}))
    return 0


def make_weights(d, arch, vocab):
    rng = np.random.default_rng(11)
    h, f, heads, kv = 64, 96, 4, 2
    kvd = kv * h // heads
    cfg = {"architectures": ["Qwen2ForCausalLM" if arch == "qwen2" else "LlamaForCausalLM"], "model_type": arch,
           "hidden_size": h, "intermediate_size": f, "num_hidden_layers": 2, "num_attention_heads": heads,
           "num_key_value_heads": kv, "vocab_size": vocab, "max_position_embeddings": 512, "rms_norm_eps": 1e-6,
           "rope_theta": 1000000.0 if arch == "qwen2" else 10000.0, "tie_word_embeddings": arch == "qwen2",
           "torch_dtype": "float32"}
    t = {"model.embed_tokens.weight": (vocab, h), "model.norm.weight": (h,)}
    if arch != "qwen2":
        t["lm_head.weight"] = (vocab, h)
    for n in range(2):
        p = f"model.layers.{n}."
        t |= {p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
              p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kvd, h),
              p + "self_attn.v_proj.weight": (kvd, h), p + "self_attn.o_proj.weight": (h, h),
              p + "mlp.gate_proj.weight": (f, h), p + "mlp.up_proj.weight": (f, h), p + "mlp.down_proj.weight": (h, f)}
        if arch == "qwen2":
            t |= {p + "self_attn.q_proj.bias": (h,), p + "self_attn.k_proj.bias": (kvd,), p + "self_attn.v_proj.bias": (kvd,)}
    tensors = {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in t.items()}
    for k in tensors:
        if k.endswith("norm.weight"):
            tensors[k] = (1 + tensors[k]).astype(np.float32)
    safetensors.numpy.save_file(tensors, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    return cfg


def hf_tokenizer_json(path):
    """A Llama 2 style tokenizer.json (BPE, byte fallback, Sequence decoder) over the pieces of
    the test SentencePiece model, merges ordered by the merged piece's rank."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    sp = spm.SentencePieceProcessor(model_file=str(SPM_MODEL))
    vocab = {sp.id_to_piece(i): i for i in range(sp.vocab_size())}
    merges = sorted((i, vocab[p[:k]], vocab[p[k:]], p[:k], p[k:]) for p, i in vocab.items()
                    for k in range(1, len(p)) if p[:k] in vocab and p[k:] in vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for *_, a, b in merges], unk_token="<unk>",
                               fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    tok.add_special_tokens([AddedToken("<|im_start|>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("<tool_call>", special=False, normalized=False)])
    tok.add_special_tokens([AddedToken("<|im_end|>", special=True, normalized=False)])
    tok.save(path)


def qwen2_tokenizer_json(path):
    alphabet = byte_alphabet()
    vocab = {c: i for i, c in enumerate(alphabet)}
    merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["l", "l"], ["Ġ", "w"]]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    added = [("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True), ("<|fim_prefix|>", False),
             ("<tool_call>", False)]
    tj = {"version": "1.0", "truncation": None, "padding": None,
          "added_tokens": [{"id": len(vocab) + k, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": s} for k, (c, s) in enumerate(added)],
          "normalizer": {"type": "NFC"},
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
              {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
          "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
          "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                    "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                    "vocab": vocab, "merges": merges}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    return len(vocab) + len(added)


def make(d, arch, kind):
    os.makedirs(d, exist_ok=True)
    if kind == "spm":
        vocab = 416
        shutil.copy(SPM_MODEL, os.path.join(d, "tokenizer.model"))
        json.dump({"<extra_0>": 402, "<far_away>": 5000}, open(os.path.join(d, "added_tokens.json"), "w"))
        tc = {"bos_token": "<s>", "eos_token": {"content": "</s>", "special": True}, "unk_token": "<unk>",
              "add_bos_token": True, "add_eos_token": False, "chat_template": TEMPLATE,
              "added_tokens_decoder": {
                  "0": {"content": "<unk>", "special": True}, "1": {"content": "<s>", "special": True},
                  "2": {"content": "</s>", "special": True},
                  "400": {"content": "<|im_start|>", "special": False},
                  "401": {"content": "▁hi▁there", "special": False},
                  "403": {"content": "<|im_end|>", "special": True}}}
        extra = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    elif kind == "hf":
        vocab = 403
        hf_tokenizer_json(os.path.join(d, "tokenizer.json"))
        tc = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
              "add_eos_token": False, "extra_special_tokens": ["<|im_start|>"], "tokenizer_class": "LlamaTokenizer",
              "legacy": False}
        with open(os.path.join(d, "chat_template.jinja"), "w") as f:
            f.write(TEMPLATE)
        extra = {"bos_token_id": 1, "eos_token_id": 2}
    elif kind == "bpe":
        count = qwen2_tokenizer_json(os.path.join(d, "tokenizer.json"))
        vocab = count + 11
        tc = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None,
              "add_bos_token": False, "chat_template": TEMPLATE, "tokenizer_class": "Qwen2Tokenizer"}
        extra = {"bos_token_id": count - 5, "eos_token_id": count - 3}
    else:
        raise SystemExit(f"unknown vocabulary kind {kind}")
    cfg = make_weights(d, arch, vocab) | extra
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
    json.dump(tc, open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8"), ensure_ascii=False)
    print(json.dumps({"ok": True}))
    return 0


def looks_special(t):
    # convert_hf_to_gguf's does_token_look_special
    return (t in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (t.startswith("<|") and t.endswith("|>"))
            or (t.startswith("<｜") and t.endswith("｜>")) or (t.startswith("<unused") and t.endswith(">")))


def spm_vocab(d, n):
    """convert_hf_to_gguf's _create_vocab_sentencepiece, with the sentencepiece package."""
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
    tokens = [f"[PAD{i}]" for i in range(n)]
    scores = [-10000.0] * n
    types = [gguf.TokenType.UNUSED] * n
    for i in range(min(sp.vocab_size(), n)):
        t = gguf.TokenType.NORMAL
        if sp.IsUnknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.IsControl(i):
            t = gguf.TokenType.CONTROL
        elif sp.IsUnused(i):
            t = gguf.TokenType.UNUSED
        elif sp.IsByte(i):
            t = gguf.TokenType.BYTE
        tokens[i], scores[i], types[i] = sp.IdToPiece(i), sp.GetScore(i), t
    p = os.path.join(d, "added_tokens.json")
    if os.path.isfile(p):
        for tok, i in json.load(open(p, encoding="utf-8")).items():
            if i < n:
                tokens[i], scores[i], types[i] = tok, -1000.0, gguf.TokenType.USER_DEFINED
    p = os.path.join(d, "tokenizer_config.json")
    if os.path.isfile(p):
        for k, data in json.load(open(p, encoding="utf-8")).get("added_tokens_decoder", {}).items():
            i, tok = int(k), data["content"]
            if i >= n:
                continue
            if data.get("special") or looks_special(tok):
                types[i] = gguf.TokenType.CONTROL
            else:
                tok = tok.replace("▁", " ")
                types[i] = gguf.TokenType.USER_DEFINED
            tokens[i], scores[i] = tok, -1000.0
    return tokens, scores, types


def gpt2_vocab(d, n):
    """convert_hf_to_gguf's get_vocab_base, with transformers' AutoTokenizer."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(d, local_files_only=True)
    rev = {i: t for t, i in tok.vocab.items()}
    added = tok.get_added_vocab()
    dec = tok.added_tokens_decoder
    tokens, types = [], []
    for i in range(n):
        if i not in rev:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        t = rev[i]
        if t in added:
            if not dec[i].normalized:
                t = tok.decode(tok.encode(t, add_special_tokens=False))
            if dec[i].special or looks_special(t):
                types.append(gguf.TokenType.CONTROL)
            else:
                t = t.replace("▁", " ")
                types.append(gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(t)
    return tokens, types


def expected_tokenizer(d, cfg):
    """The tokenizer.* key-values convert_hf_to_gguf writes, through a real GGUFWriter."""
    arch = cfg["model_type"]
    n = cfg["vocab_size"]
    w = GGUFWriter(path=None, arch="qwen2" if arch == "qwen2" else "llama")
    if os.path.isfile(os.path.join(d, "tokenizer.model")):
        tokens, scores, types = spm_vocab(d, n)
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        gguf.SpecialVocab(d, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)
    elif arch != "qwen2" and is_llama_hf(d):
        vocab = gguf.LlamaHfVocab(Path(d))
        items = list(vocab.all_tokens())
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list([t for t, _, _ in items])
        w.add_token_scores([s for _, s, _ in items])
        w.add_token_types([k for _, _, k in items])
        gguf.SpecialVocab(d, n_vocab=len(items)).add_to_gguf(w, quiet=True)
    else:
        tokens, types = gpt2_vocab(d, n)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2")  # Qwen2's pre-tokenizer (convert_hf_to_gguf finds it by hash)
        w.add_token_list(tokens)
        w.add_token_types(types)
        gguf.SpecialVocab(d, load_merges=True).add_to_gguf(w, quiet=True)
    if arch != "qwen2":
        tc = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))
        if tc.get("add_prefix_space") is not None:
            w.add_add_space_prefix(tc["add_prefix_space"])
        if n == 49152:
            w.add_add_bos_token(False)
    return {k: v for k, v in w.kv_data[0].items() if k.startswith("tokenizer.")}


def is_llama_hf(d):
    try:
        gguf.LlamaHfVocab(Path(d))
        return True
    except (FileNotFoundError, TypeError):
        return False


def normalize(v):
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8")
    if isinstance(v, (list, tuple)):
        return [normalize(x) for x in v]
    if isinstance(v, float):
        return float(np.float32(v))
    if hasattr(v, "value") and not isinstance(v, (int, float, str)):
        return int(v.value) if isinstance(v.value, int) else v
    return v


def check(d, path):
    problems = []
    cfg = json.load(open(os.path.join(d, "config.json")))
    arch = "qwen2" if cfg["model_type"] == "qwen2" else "llama"
    r = GGUFReader(path)
    fields = {k: f for k, f in r.fields.items() if not k.startswith("GGUF.")}
    # Tokenizer: every key, its type and its value.
    want = expected_tokenizer(d, cfg)
    got_keys = sorted(k for k in fields if k.startswith("tokenizer."))
    if got_keys != sorted(want):
        problems.append(f"tokenizer keys {got_keys} != {sorted(want)}")
    for k, v in want.items():
        f = fields.get(k)
        if f is None:
            continue
        types = [gguf.GGUFValueType(t).name for t in f.types]
        exp_types = [v.type.name] + ([v.sub_type.name] if v.sub_type is not None else
                                     [gguf.GGUFValueType.get_type(v.value[0]).name] if v.type == gguf.GGUFValueType.ARRAY else [])
        if types != exp_types:
            problems.append(f"{k}: type {types}, expected {exp_types}")
        got, exp = normalize(f.contents()), normalize(v.value)
        if got != exp:
            problems.append(f"{k}: {str(got)[:300]}, expected {str(exp)[:300]}")
    # Architecture keys (convert_hf_to_gguf's TextModel, plus LlamaModel's for llama).
    a = arch
    want_meta = {"general.architecture": a, "general.name": os.path.basename(os.path.normpath(d)),
                 f"{a}.block_count": cfg["num_hidden_layers"], f"{a}.context_length": cfg["max_position_embeddings"],
                 f"{a}.embedding_length": cfg["hidden_size"], f"{a}.feed_forward_length": cfg["intermediate_size"],
                 f"{a}.attention.head_count": cfg["num_attention_heads"],
                 f"{a}.attention.head_count_kv": cfg["num_key_value_heads"],
                 f"{a}.rope.freq_base": float(np.float32(cfg["rope_theta"])),
                 f"{a}.attention.layer_norm_rms_epsilon": float(np.float32(cfg["rms_norm_eps"])),
                 "general.file_type": 0}
    if a == "llama":
        want_meta["llama.vocab_size"] = cfg["vocab_size"]
        want_meta["llama.rope.dimension_count"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    other = sorted(k for k in fields if not k.startswith("tokenizer."))
    if other != sorted(want_meta):
        problems.append(f"keys {other} != {sorted(want_meta)}")
    for k, v in want_meta.items():
        if k in fields and normalize(fields[k].contents()) != v:
            problems.append(f"{k}: {fields[k].contents()!r}, expected {v!r}")
    # Tensors: llama.cpp's names; q/k rows permuted for llama only; every value as in the source.
    src = load(d)
    got = {t.name: t for t in r.tensors}
    expected = {gguf_name(k): k for k in src}
    if set(expected) != set(got):
        problems.append(f"tensor names {sorted(got)} != {sorted(expected)}")
    for name, hf in expected.items():
        t = got.get(name)
        if t is None:
            continue
        w, _ = src[hf]
        if a == "llama" and ".attn_q." in name:
            w = permute(w, cfg["num_attention_heads"])
        elif a == "llama" and ".attn_k." in name:
            w = permute(w, cfg["num_key_value_heads"])
        values = np.asarray(t.data).reshape([int(x) for x in reversed(t.shape)])
        if t.tensor_type.name != "F32" or values.shape != w.shape or not np.array_equal(values, w):
            problems.append(f"{name}: {t.tensor_type.name} {list(values.shape)} differs from the source")
    print(json.dumps({"ok": not problems, "problems": problems, "tokenizer_keys": got_keys}))
    return 0 if not problems else 1


def main(argv):
    if len(argv) == 2 and argv[0] == "train-spm":
        return train_spm(argv[1])
    if len(argv) == 4 and argv[0] == "make":
        return make(*argv[1:])
    if len(argv) == 3 and argv[0] == "check":
        return check(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
