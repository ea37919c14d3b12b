#!/usr/bin/env python3
"""`ftq convert HFDIR -o model.gguf --type T` against llama.cpp: a tiny Llama (random weights)
built with transformers, converted with ftq, loaded with llama-cpp-python; its logits on fixed
token ids must match transformers' within a tolerance per type, both on the original float32
weights and on the GGUF's own weights (dequantized with gguf-py, names and q/k order undone),
and its tokenization of a few strings must equal transformers'.

torch/transformers and llama-cpp-python may live in different environments; the driver itself
needs numpy, safetensors and gguf-py:

usage: llama_gguf_logits.py run FTQ WORKDIR --torch-python PY --llama-python PY [--types F32,F16,...]
       llama_gguf_logits.py make OUT_DIR VARIANT        (transformers: model, tokenizer, reference logits)
       llama_gguf_logits.py logits HF_DIR               (transformers: reference logits of HF_DIR)
       llama_gguf_logits.py check GGUF REF.npy TYPE [TOL] (llama-cpp-python: logits vs reference)

VARIANT: tied (tied embeddings, no lm_head, default RoPE, GPT-2 byte-level BPE) or llama3
(lm_head, GQA, Llama 3.1 RoPE scaling, which ftq writes as rope_freqs.weight, and Llama 3's
pre-tokenizer). Prints a JSON report; exits 1 when a check fails. The error measure is the relative Frobenius error of all positions' logits,
|gguf - ref| / |ref|, with the cosine similarity and top-1 agreement reported too."""
import json
import os
import subprocess
import sys

TOKENS = [1, 17, 254, 3, 99, 400, 7, 311, 42, 128, 5, 260, 77, 500, 2, 64]
# Relative Frobenius error allowed per --type against transformers on the float32 checkpoint:
# the weights' rounding or block error, compounded through a random-weight network (measured
# 2-3x below these on the two variants).
TOLERANCE = {"F32": 1e-5, "F16": 3e-3, "BF16": 2e-2, "Q8_0": 6e-2, "Q6_K": 0.15, "Q4_0": 0.6, "Q4_1": 0.6, "Q4_K": 0.6}

# Against transformers on the GGUF's own weights (dequantized): llama.cpp's arithmetic only
# (F16/BF16 activations for F16/BF16 weights, 8-bit activations for quantized ones).
OWN_TOLERANCE = {"F32": 1e-5, "F16": 2e-3, "BF16": 1.5e-2, "Q8_0": 6e-2, "Q6_K": 6e-2, "Q4_0": 6e-2, "Q4_1": 6e-2, "Q4_K": 6e-2}

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CORPUS = ["The quick brown fox jumps over the lazy dog.", "Edge devices run quantized models with llama.cpp.",
          "Hello, world! It's 2026; numbers like 12345 and 3.14159 split differently.",
          "Tokenizers merge frequent byte pairs: the the the, of of, and and.",
          "Ünïcödé, 日本語, emoji \U0001F600 and tabs\tand\nnewlines."] * 20
TEXTS = ["Hello, world!", "The lazy dog's 12345 numbers.", "  two spaces and\nnewline", "日本語 Ünïcödé \U0001F600",
         "<s>not special here</s>"]


def make_tokenizer(out, variant):
    """A small byte-level BPE (GPT-2 pre-tokenizer for "tied", Llama 3's for "llama3") saved
    with the model; returns each of TEXTS with its token ids from transformers."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    if variant == "tied":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    fast.chat_template = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    fast.save_pretrained(out)
    return [[t, fast.encode(t, add_special_tokens=False)] for t in TEXTS]


def make(out, variant):
    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0 if variant == "tied" else 1)
    kw = dict(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-5, initializer_range=0.05)
    if variant == "tied":
        cfg = LlamaConfig(tie_word_embeddings=True, **kw)
    else:
        cfg = LlamaConfig(tie_word_embeddings=False, rope_theta=500000.0,
                          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                          **kw)
    model = LlamaForCausalLM(cfg).eval().to(torch.float32)
    # Norm weights away from 1, so a wrong norm mapping shows.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1 + 0.2 * torch.randn_like(p))
    model.save_pretrained(out)
    texts = make_tokenizer(out, variant)
    json.dump(texts, open(os.path.join(out, "texts.json"), "w"))
    with torch.no_grad():
        logits = model(torch.tensor([TOKENS])).logits[0].float().numpy()
    np.save(os.path.join(out, "ref.npy"), logits)
    print(json.dumps({"ok": True, "dir": out, "files": sorted(os.listdir(out))}))


def logits(hf):
    """Reference logits of a Hugging Face directory (transformers, float32)."""
    import numpy as np
    import torch
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(hf, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model(torch.tensor([TOKENS])).logits[0].float().numpy()
    np.save(os.path.join(hf, "ref.npy"), out)
    print(json.dumps({"ok": True}))


def dequantized_checkpoint(gguf, hf_src, out):
    """The GGUF's own weights (gguf-py's dequantization, llama.cpp's names and q/k row order
    undone) as a float32 Hugging Face directory: transformers on it is what llama.cpp should
    compute from that file, whatever the quantization error."""
    import shutil

    import numpy as np
    import safetensors.numpy
    from gguf import GGUFReader
    from gguf.quants import dequantize

    cfg = json.load(open(os.path.join(hf_src, "config.json")))
    names = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
             "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    top = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
           "output.weight": "lm_head.weight"}
    tensors = {}
    for t in GGUFReader(gguf).tensors:
        if t.name == "rope_freqs.weight":
            continue
        w = dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(x) for x in reversed(t.shape)])
        if t.name in top:
            name = top[t.name]
        else:
            _, n, kind, suffix = t.name.split(".")
            name = f"model.layers.{n}.{names[kind]}.{suffix}"
            heads = {"attn_q": cfg["num_attention_heads"], "attn_k": cfg["num_key_value_heads"]}.get(kind)
            if heads:  # undo convert_hf_to_gguf's permute
                w = w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
        tensors[name] = np.ascontiguousarray(w)
    os.makedirs(out, exist_ok=True)
    safetensors.numpy.save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(hf_src, "config.json"), out)


def check(gguf, ref_path, typ, tol=None):
    import numpy as np
    from llama_cpp import Llama

    ref = np.load(ref_path)
    # An F32 KV cache: the default F16 one alone costs about 5e-4.
    llm = Llama(model_path=gguf, n_ctx=64, n_batch=64, logits_all=True, verbose=False, n_threads=4, type_k=0, type_v=0)
    llm.eval(TOKENS)
    got = np.array(llm.scores[: len(TOKENS)], dtype=np.float64)
    r = ref.astype(np.float64)
    rel = float(np.linalg.norm(got - r) / np.linalg.norm(r))
    cos = float((got * r).sum() / (np.linalg.norm(got) * np.linalg.norm(r)))
    top1 = float((got.argmax(-1) == r.argmax(-1)).mean())
    tol = TOLERANCE[typ] if tol is None else float(tol)
    # Tokenization of a few strings, against transformers' (saved by make); special tokens
    # in the text are recognised by both (transformers' default, llama.cpp's special=True).
    texts = json.load(open(os.path.join(os.path.dirname(ref_path), "texts.json"))) if os.path.exists(
        os.path.join(os.path.dirname(ref_path), "texts.json")) else []
    tokenization = [{"text": t, "ok": llm.tokenize(t.encode(), add_bos=False, special=True) == ids} for t, ids in texts]
    rep = {"ok": rel <= tol and all(x["ok"] for x in tokenization), "type": typ, "tokenization": tokenization,
           "template": llm.metadata.get("tokenizer.chat_template"), "pre": llm.metadata.get("tokenizer.ggml.pre"), "relative_error": rel, "tolerance": tol, "cosine": cos,
           "top1_agreement": top1, "max_abs_diff": float(np.abs(got - r).max()), "max_abs_ref": float(np.abs(r).max())}
    print(json.dumps(rep))
    return 0 if rep["ok"] else 1


def run(ftq, work, torch_py, llama_py, types):
    os.makedirs(work, exist_ok=True)
    me = os.path.abspath(__file__)
    results, ok = [], True
    for variant in ["tied", "llama3"]:
        hf = os.path.join(work, variant)
        subprocess.run([torch_py, me, "make", hf, variant], check=True, stdout=subprocess.DEVNULL)
        for typ in types:
            out = os.path.join(work, f"{variant}-{typ}.gguf")
            c = subprocess.run([ftq, "convert", hf, "-o", out, "--type", typ, "--force", "--quiet"], capture_output=True, text=True)
            if c.returncode != 0:
                results.append({"variant": variant, "type": typ, "ok": False, "error": c.stderr.strip()})
                ok = False
                continue
            rep = peer([llama_py, me, "check", out, os.path.join(hf, "ref.npy"), typ])
            # Against transformers on the GGUF's own (dequantized) weights: what is left is
            # llama.cpp's arithmetic (its 8-bit activations for quantized weights), not the
            # quantization of the weights.
            own = os.path.join(work, f"{variant}-{typ}-weights")
            dequantized_checkpoint(out, hf, own)
            subprocess.run([torch_py, me, "logits", own], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            own_rep = peer([llama_py, me, "check", out, os.path.join(own, "ref.npy"), typ, str(OWN_TOLERANCE[typ])])
            rep = {"variant": variant, "type": typ, "ok": rep["ok"] and own_rep["ok"], "vs_original": rep, "vs_own_weights": own_rep}
            results.append(rep)
            ok = ok and rep["ok"]
    print(json.dumps({"ok": ok, "results": results}, indent=1))
    return 0 if ok else 1


def peer(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "error": (p.stdout + p.stderr)[-2000:]}


def main(argv):
    if len(argv) >= 3 and argv[0] == "make":
        return make(argv[1], argv[2]) or 0
    if len(argv) in (4, 5) and argv[0] == "check":
        return check(*argv[1:])
    if len(argv) == 2 and argv[0] == "logits":
        return logits(argv[1]) or 0
    if len(argv) >= 3 and argv[0] == "run":
        opts = dict(zip(argv[3::2], argv[4::2]))
        types = opts.get("--types", "F32,F16,BF16,Q8_0,Q4_0,Q4_1,Q4_K,Q6_K").split(",")
        return run(os.path.abspath(argv[1]), argv[2], opts["--torch-python"], opts["--llama-python"], types)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
