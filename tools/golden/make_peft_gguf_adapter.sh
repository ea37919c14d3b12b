#!/usr/bin/env bash
# testdata/golden/peft/llama-lora.gguf: the PEFT adapter testdata/golden/peft/llama-lora
# converted by llama.cpp's own convert_lora_to_gguf.py (float32 tensors), for `ftq merge` with
# GGUF adapters. Needs a llama.cpp source tree (LLAMA_CPP, e.g. the one vendored in the
# llama-cpp-python 0.3.36 sdist) and a Python with torch, transformers, numpy, sentencepiece.
#   LLAMA_CPP=/path/to/llama.cpp PYTHON=/path/to/python bash tools/golden/make_peft_gguf_adapter.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLAMA_CPP:?set LLAMA_CPP to a llama.cpp source tree}"
PY="${PYTHON:-python3}"
ROOT="$(pwd)"
(cd "$LLAMA_CPP" && PYTHONPATH=gguf-py "$PY" convert_lora_to_gguf.py --base "$ROOT/testdata/golden/bnb-model/source" \
  --outtype f32 --outfile "$ROOT/testdata/golden/peft/llama-lora.gguf" "$ROOT/testdata/golden/peft/llama-lora")
sha256sum testdata/golden/peft/llama-lora.gguf
