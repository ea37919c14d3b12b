#!/usr/bin/env python3
"""Regenerates testdata/llama-tiny/ (the tiny Llama checkpoints and transformers' outputs that
tools/interop/llama_gguf_logits.py `ci` checks llama.cpp against, see its docstring): runs
`llama_gguf_logits.py make` for each variant into a fresh directory, then writes README.md with
the provenance (versions, command) and every file's size and SHA-256.

Needs a Python with torch, transformers and tokenizers (CPU; seeded and single-threaded, so
two runs give the same bytes).

usage: make_llama_goldens.py [OUT_DIR]      (default testdata/llama-tiny)"""
import hashlib
import os
import platform
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_gguf_logits as L  # noqa: E402

DESCRIPTION = {
    "tied": "float16 checkpoint; tied embeddings (no `lm_head`); 1 block; 4 heads x 64 with 4 key-value "
            "heads (multi-head attention); default RoPE (theta 10000); model vocabulary 400 for a "
            "384-token tokenizer (ftq pads with `[PAD384]`..., as convert_hf_to_gguf does); GPT-2's "
            "byte-level pre-tokenizer",
    "llama3": "bfloat16 checkpoint; `lm_head`; 2 blocks; 4 heads x 32 (`head_dim` 32, not hidden/heads) "
              "with 2 key-value heads (grouped-query attention); Llama 3.1 RoPE scaling (theta 500000, "
              "factor 8, original context 64: ftq writes `rope_freqs.weight`); vocabulary 384; "
              "Llama 3's pre-tokenizer regex",
}


def main(argv):
    out = os.path.abspath(argv[0] if argv else os.path.join(HERE, "..", "..", "testdata", "llama-tiny"))
    for variant in L.VARIANTS:
        d = os.path.join(out, variant)
        shutil.rmtree(d, ignore_errors=True)
        subprocess.run([sys.executable, os.path.join(HERE, "llama_gguf_logits.py"), "make", d, variant],
                       check=True, stdout=subprocess.DEVNULL)
    import numpy
    import tokenizers
    import torch
    import transformers

    lines = [
        "# Tiny Llama checkpoints and transformers' outputs",
        "",
        "Two tiny Llama-architecture Hugging Face checkpoints (seeded random weights, a byte-level BPE",
        "tokenizer trained on a few sentences) with what transformers computes from them. The test",
        "command (`tools/test.sh`, through `tools/interop/llama_cpp_ci.sh`) converts each with",
        "`ftq convert DIR -o OUT.gguf --type T` for every type, loads the GGUF with llama.cpp",
        "(llama-cpp-python) and compares its logits and tokenization with these",
        "(`tools/interop/llama_gguf_logits.py ci`). Do not edit by hand; regenerate with the command below.",
        "",
        "Every 2-D weight has rows of 256 values (K-quantized) except `ffn_down` (and llama3's",
        "`attn_output`), whose rows of 128 take llama-quantize's fallback types.",
        "",
        "| variant | |",
        "|---|---|",
    ] + [f"| `{v}` | {DESCRIPTION[v]} |" for v in L.VARIANTS] + [
        "",
        "Per variant: `config.json`, `generation_config.json`, `model.safetensors`, `tokenizer.json`,",
        "`tokenizer_config.json`, `chat_template.jinja` (transformers' `save_pretrained`), and",
        "",
        f"- `logits.npy`: float32 logits, shape ({len(L.TOKENS)}, vocabulary), of `LlamaForCausalLM` in float32 (the",
        "  stored 16-bit weights widened) on the token ids",
        f"  `{L.TOKENS}`;",
        "- `reference.json`: those token ids, transformers' ids of each test string",
        "  (`encode(text, add_special_tokens=False)`), the BOS/EOS ids, the chat template, the versions.",
        "",
        "## Provenance",
        "",
        "    python tools/interop/make_llama_goldens.py",
        "",
        f"with Python {platform.python_version()}, torch {torch.__version__} (CPU, one thread, deterministic",
        f"algorithms), transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, numpy {numpy.__version__};",
        "seeds 0 (tied) and 1 (llama3). Two runs give the same bytes.",
        "",
        "| file | bytes | sha256 |",
        "|---|---|---|",
    ]
    for variant in L.VARIANTS:
        for name in sorted(os.listdir(os.path.join(out, variant))):
            p = os.path.join(out, variant, name)
            data = open(p, "rb").read()
            lines.append(f"| `{variant}/{name}` | {len(data)} | `{hashlib.sha256(data).hexdigest()}` |")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
