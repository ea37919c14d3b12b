#!/usr/bin/env python3
"""GGUF bases for `ftq merge`, written with gguf-py the way llama.cpp's convert_hf_to_gguf
names and orders a Llama checkpoint (blk.N.attn_q.weight, ...; q and k rows permuted per head),
and a check that ftq's merge into such a GGUF equals PEFT's merge of the same adapter into the
Hugging Face checkpoint, converted the same way.

usage: gguf_lora_peer.py make HF_DIR OUT.gguf
       gguf_lora_peer.py check PEFT_MERGED.safetensors HF_CONFIG.json FTQ_OUTPUT.gguf
       gguf_lora_peer.py requant-check FULL.gguf QUANTIZED.gguf
           every tensor of QUANTIZED.gguf whose type gguf-py quantizes (Q8_0, Q4_0, Q4_1, Q5_0,
           Q5_1) equals gguf-py's quantization of the same tensor of FULL.gguf (float32)
Prints a JSON report; check exits 1 on any difference."""
import json
import sys

import ml_dtypes  # noqa: F401  (bf16 arrays)
import numpy as np
import safetensors.numpy
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader, GGUFWriter

NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    p = hf.split(".")
    return f"blk.{p[2]}.{NAMES['.'.join(p[3:-1])]}.weight"


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def converted(tensors, cfg):
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    out = {}
    for k, v in tensors.items():
        name = gguf_name(k)
        if name.endswith("attn_q.weight"):
            v = permute(v, heads)
        elif name.endswith("attn_k.weight"):
            v = permute(v, kv)
        out[name] = v
    return out


def make(hf_dir, out):
    cfg = json.load(open(f"{hf_dir}/config.json"))
    t = converted(safetensors.numpy.load_file(f"{hf_dir}/model.safetensors"), cfg)
    w = GGUFWriter(out, "llama")
    w.add_uint32("llama.attention.head_count", cfg["num_attention_heads"])
    w.add_uint32("llama.attention.head_count_kv", cfg.get("num_key_value_heads", cfg["num_attention_heads"]))
    w.add_uint32("llama.block_count", cfg["num_hidden_layers"])
    for name in sorted(t):
        v = t[name]
        if v.dtype == ml_dtypes.bfloat16:
            w.add_tensor(name, v.view(np.uint8).reshape(*v.shape[:-1], v.shape[-1] * 2), raw_dtype=QT.BF16)
        else:
            w.add_tensor(name, np.ascontiguousarray(v))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(json.dumps({"tensors": len(t)}))


def check(merged, config, ftq_out):
    cfg = json.load(open(config))
    want = converted(safetensors.numpy.load_file(merged), cfg)
    got = {t.name: bytes(t.data.tobytes()) for t in GGUFReader(ftq_out).tensors}
    problems = []
    for name, v in want.items():
        if name not in got:
            problems.append(f"{name}: missing")
        elif got[name] != np.ascontiguousarray(v).tobytes():
            problems.append(f"{name}: differs")
    print(json.dumps({"ok": not problems, "problems": problems[:20], "checked": len(want)}))
    sys.exit(1 if problems else 0)


def requant_check(full, quantized):
    from gguf.quants import quantize
    f = {t.name: t for t in GGUFReader(full).tensors}
    problems, checked = [], 0
    for t in GGUFReader(quantized).tensors:
        if t.tensor_type not in (QT.Q8_0, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1):
            continue
        src = f[t.name]
        shape = [int(x) for x in reversed(src.shape.tolist())]
        values = np.asarray(src.data, dtype=np.float32).reshape(shape)
        if quantize(values, t.tensor_type).tobytes() != bytes(t.data.tobytes()):
            problems.append(f"{t.name}: differs from gguf-py's {t.tensor_type.name}")
        checked += 1
    print(json.dumps({"ok": not problems and checked > 0, "problems": problems[:20], "checked": checked}))
    sys.exit(1 if problems or checked == 0 else 0)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "requant-check":
        requant_check(*sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)
