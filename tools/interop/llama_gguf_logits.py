#!/usr/bin/env python3
"""`ftq convert HFDIR -o model.gguf --type T` against llama.cpp: tiny Llama checkpoints (random
weights, a small byte-level BPE tokenizer) made with transformers, converted with ftq and loaded
with llama-cpp-python. For every type, llama.cpp's logits on fixed token ids must match

  - transformers' on the checkpoint (float32 arithmetic) within TOLERANCE[type]: the weights'
    rounding or block error plus llama.cpp's arithmetic;
  - a float64 numpy Llama on the GGUF's own weights (dequantized with gguf-py, llama.cpp's names
    and q/k row order undone) within OWN_TOLERANCE[type]: llama.cpp's arithmetic alone (F16/BF16
    activations for F16/BF16 weights, 8-bit activations for quantized ones), whatever the
    quantization error. The numpy Llama itself must reproduce transformers' logits on the
    checkpoint within NUMPY_TOLERANCE;

and llama.cpp's tokenization of a few strings must equal transformers', its BOS/EOS ids
transformers' and the GGUF's chat template the checkpoint's.

The checkpoints and transformers' outputs are committed (testdata/llama-tiny/, written by
`make`, see tools/interop/make_llama_goldens.py), so `ci` needs no torch: only numpy, gguf-py
and llama-cpp-python (tools/interop/llama_cpp_ci.sh builds them for the test command).

usage: llama_gguf_logits.py ci FTQ WORKDIR [--goldens DIR] [--types F32,F16,...]
           llama-cpp-python, numpy, gguf: the check against the goldens (default
           testdata/llama-tiny); prints a table per type and the tokenization; exit 1 on any failure
       llama_gguf_logits.py make OUT_DIR VARIANT
           transformers + torch: the checkpoint, tokenizer and reference outputs of VARIANT
       llama_gguf_logits.py run FTQ WORKDIR --torch-python PY --llama-python PY [--types ...]
           `make` both variants afresh into WORKDIR/goldens with PY (torch), then `ci` on them
       llama_gguf_logits.py logits HF_DIR
           transformers + torch: float32 logits of HF_DIR on TOKENS, as JSON (a cross-check of
           the numpy Llama on any checkpoint)

VARIANT: tied (tied embeddings, float16 checkpoint, 1 block, multi-head attention, default RoPE,
a model vocabulary larger than the tokenizer's, GPT-2's byte-level pre-tokenizer) or llama3
(lm_head, bfloat16 checkpoint, 2 blocks, grouped-query attention with head_dim 32 != hidden/heads,
Llama 3.1 RoPE scaling, which ftq writes as rope_freqs.weight, and Llama 3's pre-tokenizer).
Rows of 256 values (hidden size) are K-quantized; rows of 128 (ffn_down, and llama3's
attn_output) take the fallback types, as llama-quantize's do.

The error measure is the relative Frobenius error of all positions' logits, |got - ref| / |ref|,
with the cosine similarity and top-1 agreement reported too."""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDENS = os.path.join(HERE, "..", "..", "testdata", "llama-tiny")
VARIANTS = ["tied", "llama3"]
TYPES = ["F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0"]

TOKENS = [0, 17, 254, 3, 99, 300, 7, 311, 42, 128, 5, 260, 77, 383, 1, 64]
# Relative Frobenius error allowed per --type against transformers on the checkpoint: the
# weights' rounding or block error, compounded through a random-weight network, plus llama.cpp's
# arithmetic (about twice the larger of the two variants' values, which `ci` prints: F32 7e-7,
# F16 6e-4, BF16 6e-3, Q8_0 2.9e-2, Q6_K 6e-2, Q5_1 0.15, Q5_0 0.16, Q4_K 0.23, Q4_1 and Q4_0 0.30).
# A wrong q/k row order, RoPE scaling or norm moves these logits by 0.13-0.45, so the 4-bit
# types rely on OWN_TOLERANCE (and on the float types, which share the layout) to catch those.
TOLERANCE = {"F32": 1e-5, "F16": 1.5e-3, "BF16": 1.5e-2, "Q8_0": 6e-2, "Q6_K": 0.12, "Q5_1": 0.3,
             "Q5_0": 0.3, "Q4_K": 0.5, "Q4_1": 0.6, "Q4_0": 0.6}
# Against the numpy Llama on the GGUF's own (dequantized) weights: llama.cpp's arithmetic only,
# whatever the weights' quantization error (its 8-bit activations cost 1.4-2.1e-2 with any
# quantized type here), so a wrong layout, scale or name fails it even for 4-bit types.
OWN_TOLERANCE = {"F32": 1e-5, "F16": 1.5e-3, "BF16": 1.5e-2, "Q8_0": 5e-2, "Q6_K": 5e-2, "Q5_1": 5e-2,
                 "Q5_0": 5e-2, "Q4_K": 5e-2, "Q4_1": 5e-2, "Q4_0": 5e-2}
# The float64 numpy Llama against transformers' float32 logits on the same checkpoint.
NUMPY_TOLERANCE = 1e-5

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CORPUS = ["The quick brown fox jumps over the lazy dog.", "Edge devices run quantized models with llama.cpp.",
          "Hello, world! It's 2026; numbers like 12345 and 3.14159 split differently.",
          "Tokenizers merge frequent byte pairs: the the the, of of, and and.",
          "Ünïcödé, 日本語, emoji \U0001F600 and tabs\tand\nnewlines."] * 20
TEXTS = ["Hello, world!", "The lazy dog's 12345 numbers.", "  two spaces and\nnewline", "日本語 Ünïcödé \U0001F600",
         "<s>not special here</s>"]
CHAT_TEMPLATE = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
TOKENIZER_VOCAB = 384

CONFIGS = {
    "tied": dict(seed=0, dtype="float16", vocab_size=400, hidden_size=256, intermediate_size=128,
                 num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4, head_dim=64,
                 tie_word_embeddings=True),
    "llama3": dict(seed=1, dtype="bfloat16", vocab_size=TOKENIZER_VOCAB, hidden_size=256, intermediate_size=128,
                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                   tie_word_embeddings=False, rope_theta=500000.0,
                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
}


# ----------------------------------------------------------------------------------------------
# make (transformers + torch)

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
    trainer = trainers.BpeTrainer(vocab_size=TOKENIZER_VOCAB, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    assert tok.get_vocab_size() == TOKENIZER_VOCAB, tok.get_vocab_size()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    texts = [[t, fast.encode(t, add_special_tokens=False)] for t in TEXTS]
    return texts, fast.bos_token_id, fast.eos_token_id


def make(out, variant):
    """The checkpoint (weights rounded to the variant's dtype), its tokenizer, and
    transformers' outputs: logits.npy (float32 logits on TOKENS, computed in float32 from the
    stored values) and reference.json (TOKENS, TEXTS with their ids, BOS/EOS, versions)."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    import numpy as np
    import tokenizers
    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    spec = dict(CONFIGS[variant])
    seed, dtype = spec.pop("seed"), spec.pop("dtype")
    torch.manual_seed(seed)
    cfg = LlamaConfig(max_position_embeddings=256, rms_norm_eps=1e-5, initializer_range=0.05,
                      bos_token_id=0, eos_token_id=1, **spec)
    model = LlamaForCausalLM(cfg).eval().to(torch.float32)
    store = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:  # norm weights away from 1, so a wrong norm mapping shows
                p.copy_(1 + 0.2 * torch.randn_like(p))
        for p in model.parameters():  # the values the checkpoint stores, in float32
            p.copy_(p.to(store).to(torch.float32))
        logits = model(torch.tensor([TOKENS])).logits[0].float().numpy()
    os.makedirs(out, exist_ok=True)
    model.to(store).save_pretrained(out)
    texts, bos, eos = make_tokenizer(out, variant)
    np.save(os.path.join(out, "logits.npy"), logits.astype(np.float32))
    ref = {"variant": variant, "tokens": TOKENS, "bos_token_id": bos, "eos_token_id": eos,
           "chat_template": CHAT_TEMPLATE, "texts": texts,
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "tokenizers": tokenizers.__version__, "numpy": np.__version__}}
    with open(os.path.join(out, "reference.json"), "w") as f:
        f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in ref.items()) + "\n}\n")
    print(json.dumps({"ok": True, "dir": out, "files": sorted(os.listdir(out))}))


def logits(hf):
    """transformers' float32 logits of a Hugging Face directory on TOKENS."""
    import torch
    from transformers import LlamaForCausalLM

    torch.set_num_threads(1)
    model = LlamaForCausalLM.from_pretrained(hf, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model(torch.tensor([TOKENS])).logits[0].float().numpy()
    print(json.dumps(out.tolist()))


# ----------------------------------------------------------------------------------------------
# The numpy Llama (float64), what transformers' LlamaForCausalLM computes

def read_safetensors(path):
    """{name: float64 array} of a safetensors file (F32, F16 or BF16 tensors)."""
    import struct

    import numpy as np

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = data[a:b]
        if t["dtype"] == "F32":
            x = np.frombuffer(raw, "<f4")
        elif t["dtype"] == "F16":
            x = np.frombuffer(raw, "<f2")
        elif t["dtype"] == "BF16":
            x = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: {name}: dtype {t['dtype']}")
        out[name] = x.astype(np.float64).reshape(t["shape"])
    return out


def rope_inv_freq(cfg, d):
    import numpy as np

    p = cfg.get("rope_parameters") or dict(cfg.get("rope_scaling") or {}, rope_theta=cfg.get("rope_theta", 10000.0))
    inv = 1.0 / p.get("rope_theta", 10000.0) ** (np.arange(0, d, 2, dtype=np.float64) / d)
    kind = p.get("rope_type", p.get("type", "default"))
    if kind == "llama3":  # transformers' _compute_llama3_parameters
        factor, lo, hi = p["factor"], p["low_freq_factor"], p["high_freq_factor"]
        old = p["original_max_position_embeddings"]
        wavelen = 2 * np.pi / inv
        scaled = np.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
        return np.where(medium, smoothed, scaled)
    if kind != "default":
        raise ValueError(f"rope type {kind}")
    return inv


def forward(w, cfg, tokens):
    """Logits (float64) of a Llama with weights w (Hugging Face names) on tokens."""
    import numpy as np

    if cfg.get("attention_bias") or cfg.get("mlp_bias") or cfg.get("hidden_act", "silu") != "silu":
        raise ValueError("only bias-free SiLU Llamas")
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    d = cfg.get("head_dim") or cfg["hidden_size"] // heads
    eps, n = cfg["rms_norm_eps"], len(tokens)
    ang = np.arange(n)[:, None] * rope_inv_freq(cfg, d)[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1))[:, None], np.sin(np.concatenate([ang, ang], -1))[:, None]

    def rope(x):  # rotate_half: the two halves of each head are the pairs
        return x * cos + np.concatenate([-x[..., d // 2:], x[..., : d // 2]], -1) * sin

    def norm(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    mask = np.triu(np.full((n, n), -np.inf), 1)
    x = w["model.embed_tokens.weight"][tokens]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = norm(x, w[p + "input_layernorm.weight"])
        q = rope((h @ w[p + "self_attn.q_proj.weight"].T).reshape(n, heads, d))
        k = np.repeat(rope((h @ w[p + "self_attn.k_proj.weight"].T).reshape(n, kv, d)), heads // kv, axis=1)
        v = np.repeat((h @ w[p + "self_attn.v_proj.weight"].T).reshape(n, kv, d), heads // kv, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(d) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        x = x + np.einsum("hts,shd->thd", s, v).reshape(n, heads * d) @ w[p + "self_attn.o_proj.weight"].T
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = norm(x, w["model.norm.weight"])
    return x @ w.get("lm_head.weight", w["model.embed_tokens.weight"]).T


def gguf_weights(gguf_path, cfg):
    """The GGUF's own weights (gguf-py's dequantization, float64) under Hugging Face names, with
    convert_hf_to_gguf's q/k row permutation undone."""
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize

    names = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
             "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    top = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
           "output.weight": "lm_head.weight"}
    out, types = {}, {}
    for t in GGUFReader(gguf_path).tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        if t.name == "rope_freqs.weight":  # llama3 scaling: the numpy Llama takes it from config.json
            continue
        x = dequantize(t.data, t.tensor_type).astype(np.float64).reshape([int(s) for s in reversed(t.shape)])
        if t.name in top:
            name = top[t.name]
        else:
            _, i, kind, suffix = t.name.split(".")
            name = f"model.layers.{i}.{names[kind]}.{suffix}"
            heads = {"attn_q": cfg["num_attention_heads"], "attn_k": cfg.get("num_key_value_heads")}.get(kind)
            if heads:
                x = x.reshape(heads, x.shape[0] // heads // 2, 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)
        out[name] = x
    return out, types


def compare(got, ref):
    import numpy as np

    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    return {"rel": float(np.linalg.norm(got - ref) / np.linalg.norm(ref)),
            "cos": float((got * ref).sum() / (np.linalg.norm(got) * np.linalg.norm(ref))),
            "top1": float((got.argmax(-1) == ref.argmax(-1)).mean())}


# ----------------------------------------------------------------------------------------------
# ci (llama-cpp-python, numpy, gguf-py)

def ci(ftq, work, goldens, types):
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    os.makedirs(work, exist_ok=True)
    threads = min(4, os.cpu_count() or 1)
    ok, rows, tok_rows, notes = True, [], [], []
    t0 = time.time()
    for variant in VARIANTS:
        hf = os.path.join(goldens, variant)
        cfg = json.load(open(os.path.join(hf, "config.json")))
        ref = json.load(open(os.path.join(hf, "reference.json")))
        if ref["tokens"] != TOKENS:
            raise SystemExit(f"{hf}/reference.json: tokens differ from this script's TOKENS; regenerate")
        golden = np.load(os.path.join(hf, "logits.npy"))
        # The numpy Llama must reproduce transformers on the checkpoint before it may judge llama.cpp.
        m = compare(forward(read_safetensors(os.path.join(hf, "model.safetensors")), cfg, TOKENS), golden)
        good = m["rel"] <= NUMPY_TOLERANCE
        ok &= good
        rows.append((variant, "numpy f64 vs transformers", m, None, NUMPY_TOLERANCE, None, None, "", good))
        for typ in types:
            out = os.path.join(work, f"{variant}-{typ}.gguf")
            c = subprocess.run([ftq, "convert", hf, "-o", out, "--type", typ, "--force", "--quiet"],
                               capture_output=True, text=True)
            if c.returncode != 0:
                ok = False
                rows.append((variant, typ, None, None, None, None, None, f"ftq convert failed: {c.stderr.strip()}", False))
                continue
            w, gtypes = gguf_weights(out, cfg)
            own_ref = forward(w, cfg, TOKENS)
            # An F32 KV cache: the default F16 one alone costs about 5e-4.
            llm = Llama(model_path=out, n_ctx=64, n_batch=64, logits_all=True, verbose=False,
                        n_threads=threads, type_k=0, type_v=0)
            llm.eval(TOKENS)
            got = np.array(llm.scores[: len(TOKENS)], dtype=np.float64)
            m, own = compare(got, golden), compare(got, own_ref)
            problems = []
            for text, ids in ref["texts"]:
                # Special tokens in the text are recognised by both (transformers' default,
                # llama.cpp's special=True).
                mine = llm.tokenize(text.encode(), add_bos=False, special=True)
                if mine != ids:
                    problems.append(f"tokenization of {text!r}")
                if typ == types[0]:
                    tok_rows.append((variant, text, ids, mine))
            if llm.token_bos() != ref["bos_token_id"] or llm.token_eos() != ref["eos_token_id"]:
                problems.append(f"BOS/EOS {llm.token_bos()}/{llm.token_eos()}, transformers "
                                f"{ref['bos_token_id']}/{ref['eos_token_id']}")
            if llm.metadata.get("tokenizer.chat_template") != ref["chat_template"]:
                problems.append("chat template")
            llm.close()
            good = m["rel"] <= TOLERANCE[typ] and own["rel"] <= OWN_TOLERANCE[typ] and not problems
            ok &= good
            tensor_types = " ".join(f"{k}x{v}" for k, v in sorted(gtypes.items()))
            rows.append((variant, typ, m, own, TOLERANCE[typ], OWN_TOLERANCE[typ], tensor_types, "; ".join(problems), good))
            os.remove(out)

    print(f"\nllama.cpp (llama-cpp-python {llama_cpp.__version__}, CPU, {threads} threads) on ftq's GGUFs of "
          f"testdata/llama-tiny, logits on {len(TOKENS)} tokens")
    print("rel: relative Frobenius error of the logits; vs transformers: the checkpoint's float32 logits; "
          "vs own weights: the numpy Llama on the GGUF's dequantized weights\n")
    head = f"{'variant':8} {'type':26} {'rel':>9} {'tol':>8} {'cosine':>9} {'top1':>5} {'own rel':>9} {'own tol':>8}  {'result':6} tensors"
    print(head)
    print("-" * len(head))
    for variant, typ, m, own, tol, otol, tt, problem, good in rows:
        if m is None:
            print(f"{variant:8} {typ:26} {'-':>9}  FAIL  {problem}")
            continue
        o = f"{own['rel']:9.2e} {otol:8.2g}" if own else f"{'':9} {'':8}"
        print(f"{variant:8} {typ:26} {m['rel']:9.2e} {tol:8.2g} {m['cos']:9.6f} {m['top1']:5.2f} {o}  "
              f"{'ok' if good else 'FAIL':6} {tt or ''}{('  ' + problem) if problem else ''}")
    print(f"\ntokenization (llama.cpp on the {types[0]} GGUFs; every type's checked), ids vs transformers':")
    for variant, text, ids, mine in tok_rows:
        print(f"{variant:8} {'same' if mine == ids else 'DIFFERENT':9} {json.dumps(text, ensure_ascii=False):36} {ids}"
              + ("" if mine == ids else f"  llama.cpp: {mine}"))
    print(f"\n{'all checks passed' if ok else 'FAILED'} ({time.time() - t0:.1f} s)")
    return 0 if ok else 1


def run(ftq, work, torch_py, llama_py, types):
    goldens = os.path.join(work, "goldens")
    for variant in VARIANTS:
        subprocess.run([torch_py, os.path.abspath(__file__), "make", os.path.join(goldens, variant), variant],
                       check=True, stdout=subprocess.DEVNULL)
    return subprocess.run([llama_py, os.path.abspath(__file__), "ci", ftq, work, "--goldens", goldens,
                           "--types", ",".join(types)]).returncode


def main(argv):
    opts = dict(zip(argv[3::2], argv[4::2]))
    types = opts.get("--types", ",".join(TYPES)).split(",")
    if len(argv) == 3 and argv[0] == "make" and argv[2] in VARIANTS:
        return make(argv[1], argv[2]) or 0
    if len(argv) == 2 and argv[0] == "logits":
        return logits(argv[1]) or 0
    if len(argv) >= 3 and argv[0] == "ci":
        return ci(os.path.abspath(argv[1]), argv[2], opts.get("--goldens", GOLDENS), types)
    if len(argv) >= 3 and argv[0] == "run":
        return run(os.path.abspath(argv[1]), argv[2], opts["--torch-python"], opts["--llama-python"], types)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
