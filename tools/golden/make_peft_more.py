#!/usr/bin/env python3
"""Makes golden files for `ftq merge` of modules_to_save with several weighted adapters, and of DoRA
adapters into GPT-2 Conv1D weights (fan_in_fan_out) and into bitsandbytes bases: what PEFT's
add_weighted_adapter and merge_and_unload give on the CPU (torch.set_num_threads(1)).

    merged-cat-save-first-bf16/, merged-cat-save-second-bf16/
                             model.safetensors: testdata/golden/bnb-model/source (bf16) with
                             add_weighted_adapter([A, B], [0.7, 0.3], combination_type="cat"),
                             set_adapter and merge_and_unload, A, B = peft/llama-save (q_proj;
                             modules_to_save ["lm_head"]) and peft/llama-lora, in that order
                             ("first") and in the other ("second")
    cat-save-refused.txt     the message of PEFT's refusal when both adapters save lm_head
    gpt2-dora/               adapter for peft/gpt2-base (use_dora, fan_in_fan_out, r 4, alpha 8,
                             c_attn and c_proj; random A, B, magnitudes the rows' norms times
                             1 + N(0, 0.1))
    merged-gpt2-dora/        model.safetensors: gpt2-base (f32) with gpt2-dora merged
    qbase-dora/              adapter for peft/qbase-bf16 (use_dora, r 4, alpha 8, q_proj and
                             down_proj; random values as above)
    merged-qbase-dora-nf4/, merged-qbase-dora-int8/
                             model.safetensors: PEFT's merge_and_unload of qbase-dora into
                             peft/qbase-nf4 and peft/qbase-int8, the state dict as PEFT leaves it
    norms-t/rows-N.f32, norms-t/norms-N.f32
                             a weight of N x 24 normal float32 values ([in, out], little-endian)
                             and torch.linalg.norm(w.T, dim=1): the norm DoRA takes of a Conv1D
                             weight (the reduced dimension strided), for N in 7, 8, 32, 100
    README.md                provenance: versions, command, sha256 of every file

Needs torch, transformers, peft (0.21), bitsandbytes. usage: make_peft_more.py [--out-dir DIR]
"""
import argparse
import os
import shutil

import torch

torch.set_num_threads(1)
import bitsandbytes  # noqa: E402
import peft  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, GPT2LMHeadModel  # noqa: E402

from provenance import fix_adapter_config, write_readme  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "..", "testdata", "golden")
SOURCE = os.path.join(GOLDEN, "bnb-model", "source")
PEFT_GOLDEN = os.path.join(GOLDEN, "peft")


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_magnitude_vector" in n:
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g, dtype=torch.float32))
            elif "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32) * 0.05)


def save_merged(merged, d, state_dict=False):
    if state_dict:
        os.makedirs(d)
        save_file({k: v.detach().contiguous() for k, v in merged.state_dict().items()}, os.path.join(d, "model.safetensors"),
                  metadata={"format": "pt"})
        return
    merged.save_pretrained(d, safe_serialization=True)
    for extra in ("config.json", "generation_config.json"):
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)


def cat(out, adapters, tag):
    base = AutoModelForCausalLM.from_pretrained(SOURCE, dtype=torch.bfloat16)
    m = PeftModel.from_pretrained(base, os.path.join(PEFT_GOLDEN, adapters[0]), adapter_name="a0")
    m.load_adapter(os.path.join(PEFT_GOLDEN, adapters[1]), adapter_name="a1")
    m.add_weighted_adapter(["a0", "a1"], [0.7, 0.3], "combined", combination_type="cat")
    m.set_adapter("combined")
    save_merged(m.merge_and_unload(), os.path.join(out, f"merged-cat-save-{tag}-bf16"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default=os.path.join(GOLDEN, "peft-more"))
    out = os.path.abspath(ap.parse_args().out_dir)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)

    # modules_to_save and add_weighted_adapter: PEFT's combined adapter copies the first
    # adapter's config (its modules_to_save included) and makes fresh copies of the base's
    # modules; the trained copies are not used.
    cat(out, ["llama-save", "llama-lora"], "first")
    cat(out, ["llama-lora", "llama-save"], "second")
    base = AutoModelForCausalLM.from_pretrained(SOURCE, dtype=torch.bfloat16)
    m = PeftModel.from_pretrained(base, os.path.join(PEFT_GOLDEN, "llama-save"), adapter_name="a0")
    m.load_adapter(os.path.join(PEFT_GOLDEN, "llama-save"), adapter_name="a1")
    try:
        m.add_weighted_adapter(["a0", "a1"], [0.7, 0.3], "combined", combination_type="cat")
        raise SystemExit("PEFT combined two adapters that both save lm_head")
    except ValueError as e:
        with open(os.path.join(out, "cat-save-refused.txt"), "w") as fh:
            fh.write(str(e) + "\n")

    # DoRA into GPT-2's Conv1D weights ([in, out], fan_in_fan_out).
    gb = os.path.join(PEFT_GOLDEN, "gpt2-base")
    torch.manual_seed(1100)  # PEFT's initial values come from torch's global generator
    cfg = LoraConfig(r=4, lora_alpha=8, use_dora=True, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True,
                     lora_dropout=0.0, init_lora_weights=False)
    m = get_peft_model(GPT2LMHeadModel.from_pretrained(gb), cfg)
    randomize(m, 1100)
    m.save_pretrained(os.path.join(out, "gpt2-dora"))
    m = PeftModel.from_pretrained(GPT2LMHeadModel.from_pretrained(gb), os.path.join(out, "gpt2-dora"))
    save_merged(m.merge_and_unload(), os.path.join(out, "merged-gpt2-dora"))

    # DoRA into bitsandbytes bases (PEFT's Linear4bit / Linear8bitLt merge with use_dora).
    qb = os.path.join(PEFT_GOLDEN, "qbase-bf16")
    torch.manual_seed(1200)
    cfg = LoraConfig(r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "down_proj"], lora_dropout=0.0,
                     init_lora_weights=False)
    m = get_peft_model(AutoModelForCausalLM.from_pretrained(qb, dtype=torch.float32), cfg)
    randomize(m, 1200)
    m.save_pretrained(os.path.join(out, "qbase-dora"))
    for tag in ("nf4", "int8"):
        base = AutoModelForCausalLM.from_pretrained(os.path.join(PEFT_GOLDEN, f"qbase-{tag}"), device_map="cpu")
        merged = PeftModel.from_pretrained(base, os.path.join(out, "qbase-dora")).merge_and_unload()
        save_merged(merged, os.path.join(out, f"merged-qbase-dora-{tag}"), state_dict=True)

    nd = os.path.join(out, "norms-t")
    os.makedirs(nd)
    g = torch.Generator().manual_seed(1300)
    for n in (7, 8, 32, 100):
        w = torch.randn((n, 24), generator=g, dtype=torch.float32) * 0.05
        w.numpy().astype("<f4").tofile(os.path.join(nd, f"rows-{n}.f32"))
        torch.linalg.norm(w.T, dim=1).numpy().astype("<f4").tofile(os.path.join(nd, f"norms-{n}.f32"))

    fix_adapter_config(os.path.join(out, "gpt2-dora"), "testdata/golden/peft/gpt2-base")
    fix_adapter_config(os.path.join(out, "qbase-dora"), "testdata/golden/peft/qbase-bf16")
    write_readme(out, "PEFT merges: modules_to_save with weighted adapters, DoRA with fan_in_fan_out and into bitsandbytes bases",
                 f"Generated by `tools/golden/make_peft_more.py` with peft {peft.__version__}, transformers "
                 f"{transformers.__version__}, bitsandbytes {bitsandbytes.__version__}, torch {torch.__version__} on the CPU "
                 f"(torch.set_num_threads(1), CPU capability {torch.backends.cpu.get_cpu_capability()}). The script's "
                 "docstring says what each directory holds.")


if __name__ == "__main__":
    main()
