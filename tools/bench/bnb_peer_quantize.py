#!/usr/bin/env python3
"""The peer of `ftq quantize --nf4` for one tensor: bitsandbytes on the CPU (torch on both
cores) loads a safetensors file, quantizes each tensor with quantize_4bit (NF4, double
quantization, block size 64) and saves the layout transformers saves. Prints the wall time of
load + quantize + save (imports excluded), the median of RUNS.
usage: bnb_peer_quantize.py IN.safetensors OUT.safetensors [RUNS]"""
import sys
import time

import torch

torch.set_num_threads(2)
import bitsandbytes.functional as F  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    sd = load_file(src)
    out = {}
    for k, v in sd.items():
        packed, state = F.quantize_4bit(v, blocksize=64, compress_statistics=True, quant_type="nf4")
        out[k] = packed
        for kk, vv in state.as_dict(packed=True).items():
            out[k + "." + kk] = vv
    save_file(out, dst, metadata={"format": "pt"})
    times.append(time.perf_counter() - t0)
times.sort()
print(f"bitsandbytes {__import__('bitsandbytes').__version__} load + quantize_4bit + save: {times[len(times) // 2]:.3f} s (median of {runs}, 2 threads)")
