#!/usr/bin/env python3
"""Makes golden files for `ftq merge`: PEFT LoRA adapters and what PEFT's merge_and_unload
saves after merging them, on the CPU (torch.set_num_threads(1)).

    llama-lora/        adapter (r 8, alpha 16, q_proj v_proj down_proj; random A and B)
    llama-rslora/      adapter (use_rslora, r 4, alpha 8, rank_pattern and alpha_pattern)
    llama-save/        adapter (r 4 on q_proj) with modules_to_save ["lm_head"] (a trained copy)
    merged-cat-bf16/   llama-lora and llama-rslora combined by add_weighted_adapter(["a", "b"],
                       [0.7, 0.3], combination_type="cat") and merged into the bf16 Llama
    merged-cat-negative-bf16/  the same with weights [1.5, -0.25]
    merged-<A>-<D>/    model.safetensors: the tiny Llama of testdata/golden/bnb-model/source in
                       dtype D (bfloat16, float16, float32: converted by torch from the bf16
                       source) with adapter A merged by merge_and_unload
    gpt2-base/         a tiny GPT-2 (Conv1D layers, stored [in, out]), float32
    gpt2-lora/         adapter on c_attn and c_proj with fan_in_fan_out
    merged-gpt2/       the merged GPT-2
    qbase-bf16/        a tiny Llama (hidden 64, intermediate 128, one layer), bf16
    qbase-nf4/, qbase-int8/   it, quantized by transformers + bitsandbytes (NF4 + double
                       quant; LLM.int8) and saved
    qbase-lora/        an adapter for it (r 4, alpha 8, q_proj and down_proj)
    merged-qbase-nf4/, merged-qbase-int8/  PEFT's merge_and_unload into the quantized models
    README.md          provenance: versions, command, sha256 of every file

Needs torch, transformers, peft (0.21). usage: make_peft.py [--out-dir DIR]
"""
import argparse
import hashlib
import os
import shutil

import torch

torch.set_num_threads(1)
import peft  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "..", "testdata", "golden", "bnb-model", "source")


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n or "modules_to_save" in n:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32) * 0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default=os.path.join(HERE, "..", "..", "testdata", "golden", "peft"))
    out = os.path.abspath(ap.parse_args().out_dir)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)

    adapters = {
        "llama-lora": LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                                 lora_dropout=0.0, init_lora_weights=False),
        "llama-rslora": LoraConfig(r=4, lora_alpha=8, use_rslora=True, target_modules=["k_proj", "o_proj", "up_proj", "gate_proj"],
                                   rank_pattern={"layers.1.mlp.up_proj": 6}, alpha_pattern={"o_proj": 3},
                                   lora_dropout=0.0, init_lora_weights=False),
    }
    adapters["llama-save"] = LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj"], modules_to_save=["lm_head"],
                                        lora_dropout=0.0, init_lora_weights=False)
    for i, (name, cfg) in enumerate(adapters.items()):
        base = AutoModelForCausalLM.from_pretrained(SOURCE, dtype=torch.float32)
        m = get_peft_model(base, cfg)
        randomize(m, 100 + i)
        m.save_pretrained(os.path.join(out, name))
    for name in adapters:
        for dtype, tag in [(torch.bfloat16, "bf16"), (torch.float16, "f16"), (torch.float32, "f32")]:
            base = AutoModelForCausalLM.from_pretrained(SOURCE, dtype=torch.bfloat16).to(dtype)
            m = PeftModel.from_pretrained(base, os.path.join(out, name))
            merged = m.merge_and_unload()
            d = os.path.join(out, f"merged-{name}-{tag}")
            merged.save_pretrained(d, safe_serialization=True)
            for extra in ("config.json", "generation_config.json"):
                p = os.path.join(d, extra)
                if os.path.exists(p):
                    os.remove(p)

    # Two adapters combined with weights, as add_weighted_adapter(combination_type="cat") makes
    # them, then merged (the modules differ: some are in one adapter only).
    for tag, weights in [("cat", [0.7, 0.3]), ("cat-negative", [1.5, -0.25])]:
        base = AutoModelForCausalLM.from_pretrained(SOURCE, dtype=torch.bfloat16)
        m = PeftModel.from_pretrained(base, os.path.join(out, "llama-lora"), adapter_name="a")
        m.load_adapter(os.path.join(out, "llama-rslora"), adapter_name="b")
        m.add_weighted_adapter(["a", "b"], weights, "comb", combination_type="cat")
        m.set_adapter("comb")
        d = os.path.join(out, f"merged-{tag}-bf16")
        m.merge_and_unload().save_pretrained(d, safe_serialization=True)
        for extra in ("config.json", "generation_config.json"):
            p = os.path.join(d, extra)
            if os.path.exists(p):
                os.remove(p)

    # GPT-2: Conv1D weights are [in, out]; PEFT needs fan_in_fan_out.
    torch.manual_seed(7)
    g = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2))
    gb = os.path.join(out, "gpt2-base")
    g.save_pretrained(gb, safe_serialization=True)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True,
                     lora_dropout=0.0, init_lora_weights=False)
    m = get_peft_model(GPT2LMHeadModel.from_pretrained(gb), cfg)
    randomize(m, 300)
    m.save_pretrained(os.path.join(out, "gpt2-lora"))
    m = PeftModel.from_pretrained(GPT2LMHeadModel.from_pretrained(gb), os.path.join(out, "gpt2-lora"))
    d = os.path.join(out, "merged-gpt2")
    m.merge_and_unload().save_pretrained(d, safe_serialization=True)
    for extra in ("config.json", "generation_config.json"):
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)

    # A quantized base: a tiny Llama whose input features are multiples of 64 (bitsandbytes'
    # AVX-512 dequantizer is wrong on other shapes), quantized on load by transformers (NF4 with
    # double quantization), an adapter for it, and PEFT's merge into the quantized model
    # (it dequantizes, adds the float32 delta and quantizes again).
    from transformers import BitsAndBytesConfig, LlamaConfig
    torch.manual_seed(11)
    q = AutoModelForCausalLM.from_config(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                                     tie_word_embeddings=False))
    with torch.no_grad():
        for p_ in q.parameters():
            p_.normal_(0, 0.05)
    qb = os.path.join(out, "qbase-bf16")
    q.to(torch.bfloat16).save_pretrained(qb, safe_serialization=True)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "down_proj"], lora_dropout=0.0, init_lora_weights=False)
    m = get_peft_model(AutoModelForCausalLM.from_pretrained(qb, dtype=torch.float32), cfg)
    randomize(m, 500)
    m.save_pretrained(os.path.join(out, "qbase-lora"))
    for tag, qc in [("nf4", BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                              bnb_4bit_compute_dtype=torch.bfloat16)),
                    ("int8", BitsAndBytesConfig(load_in_8bit=True))]:
        base = AutoModelForCausalLM.from_pretrained(qb, quantization_config=qc, device_map="cpu", dtype=torch.bfloat16)
        base.save_pretrained(os.path.join(out, f"qbase-{tag}"), safe_serialization=True)
        base = AutoModelForCausalLM.from_pretrained(os.path.join(out, f"qbase-{tag}"), device_map="cpu")
        m = PeftModel.from_pretrained(base, os.path.join(out, "qbase-lora"))
        merged = m.merge_and_unload()
        # transformers 5.24's save_pretrained cannot revert the weight conversions of a model
        # loaded from a quantized checkpoint: the state dict it would save is saved directly.
        from safetensors.torch import save_file
        d = os.path.join(out, f"merged-qbase-{tag}")
        os.makedirs(d, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in merged.state_dict().items()}, os.path.join(d, "model.safetensors"),
                  metadata={"format": "pt"})

    # Adapter configs name their base relative to the repository (PEFT writes the path it was
    # given); PEFT's model-card READMEs are not kept.
    import json
    for name, base in [("llama-lora", "testdata/golden/bnb-model/source"), ("llama-rslora", "testdata/golden/bnb-model/source"),
                       ("llama-save", "testdata/golden/bnb-model/source"),
                       ("gpt2-lora", "testdata/golden/peft/gpt2-base"), ("qbase-lora", "testdata/golden/peft/qbase-bf16")]:
        p = os.path.join(out, name, "adapter_config.json")
        with open(p) as fh:
            d = json.load(fh)
        d["base_model_name_or_path"] = base
        if isinstance(d.get("target_modules"), list):
            d["target_modules"] = sorted(d["target_modules"])  # a set in PEFT: hash order otherwise
        with open(p, "w") as fh:
            fh.write(json.dumps(d, indent=2, sort_keys=True) + "\n")
        card = os.path.join(out, name, "README.md")
        if os.path.exists(card):
            os.remove(card)

    files = []
    for root, _, names in os.walk(out):
        for n in names:
            if n.endswith(".md") and root == out:
                continue
            files.append(os.path.relpath(os.path.join(root, n), out))
    files.sort()
    lines = ["# PEFT merge golden files", "",
             f"Generated by `tools/golden/make_peft.py` with peft {peft.__version__}, transformers {transformers.__version__}, "
             f"torch {torch.__version__} on the CPU (torch.set_num_threads(1)); the base is "
             "`testdata/golden/bnb-model/source`. The script's docstring says what each directory holds.", "",
             "## SHA-256", ""]
    for f in files:
        with open(os.path.join(out, f), "rb") as fh:
            lines.append(f"- `{f}` {hashlib.sha256(fh.read()).hexdigest()}")
    with open(os.path.join(out, "README.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
