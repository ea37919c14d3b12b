#!/usr/bin/env python3
"""Writes a ~100 MB GGUF with a 49,152-token vocabulary (tokens, scores, token types, merges),
to time header parsing. Uses gguf-py. usage: make_vocab_gguf.py OUT.gguf"""
import sys
import numpy as np
import gguf

out = sys.argv[1]
rng = np.random.default_rng(0)
w = gguf.GGUFWriter(out, "llama")
n = 49152
tokens = [f"tok_{i}_" + "x" * (i % 13) for i in range(n)]
w.add_block_count(24)
w.add_context_length(4096)
w.add_embedding_length(1024)
w.add_tokenizer_model("gpt2")
w.add_token_list(tokens)
w.add_token_scores([float(-i) for i in range(n)])
w.add_token_types([1] * n)
w.add_token_merges([f"t{i} o{i}" for i in range(n - 256)])
w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
# ~100 MB of tensors: a 49,152 x 256 F32 embedding (50 MB) and 24 blocks x 4 tensors of 512 x 256 F32 (50 MB).
w.add_tensor("token_embd.weight", rng.standard_normal((n, 256), dtype=np.float32))
for b in range(24):
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        w.add_tensor(f"blk.{b}.{name}.weight", rng.standard_normal((512, 256), dtype=np.float32))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
