#!/usr/bin/env python3
"""Loads bitsandbytes-layout checkpoints with transformers on the CPU and compares their logits
with a full-precision reference: a manual check that ftq's `quantize --nf4/--fp4/--int8` output
loads with AutoModelForCausalLM.from_pretrained and no further options.

usage: bnb_load_check.py REFERENCE_DIR QUANTIZED_DIR...

Needs torch, transformers, accelerate, bitsandbytes. bitsandbytes 0.50's AVX-512-BF16 CPU
inference path requires output features that are a multiple of 32; it is switched off here so
that small test models with odd sizes run (it is a property of the runtime, not of the file).
"""
import sys

import torch

torch.set_num_threads(1)
from transformers import AutoModelForCausalLM  # noqa: E402


def main():
    ids = torch.tensor([[1, 5, 9, 33, 70, 2]])
    ref = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16)
    for d in sys.argv[2:]:
        m = AutoModelForCausalLM.from_pretrained(d, device_map="cpu")
        for mod in m.modules():
            if hasattr(mod, "support_avx512bf16_for_cpu"):
                mod.support_avx512bf16_for_cpu = False
        kinds = sorted({type(mod).__name__ for n, mod in m.named_modules() if n.endswith("proj")})
        with torch.no_grad():
            a = ref(ids).logits.float()
            b = m(ids).logits.float()
        rel = ((a - b).norm() / a.norm()).item()
        print(f"{d}: layers {kinds}, logits relative error {rel:.4f}")


if __name__ == "__main__":
    main()
