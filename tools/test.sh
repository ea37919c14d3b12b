#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, the Python packages the interop
# tests call (tools/requirements-test.txt: safetensors, gguf, numpy, ml_dtypes, sentencepiece,
# tokenizers, transformers without torch), then `swift test`, then every fuzzing
# harness for 20 s (tools/fuzz/smoke.sh: about 4 minutes), then the llama.cpp check: the
# committed tiny Llama checkpoints (testdata/llama-tiny) converted by ftq for every --type and
# run by llama.cpp, whose logits and tokenization must match transformers'
# (tools/interop/llama_cpp_ci.sh). llama.cpp (llama-cpp-python from its PyPI source package,
# into .venv-llama, reused by later runs) is compiled in the background from the start, at low
# priority, while the Swift build, the tests and the fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
python3 -m pip install -q --disable-pip-version-check -r tools/requirements-test.txt
bash tools/interop/llama_cpp_ci.sh start
trap 'bash tools/interop/llama_cpp_ci.sh stop' EXIT
swift build --build-tests 2>&1 | tail -1
swift build --product ftq 2>&1 | tail -1
swift test --skip-build 2>&1
bash tools/fuzz/smoke.sh 20
bash tools/interop/llama_cpp_ci.sh check .build/debug/ftq
