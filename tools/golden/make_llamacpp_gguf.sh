#!/usr/bin/env bash
# Regenerates testdata/llamacpp/ (see its README.md): builds llama.cpp from the
# llama-cpp-python 0.3.36 source package on PyPI (CPU only, about 10 minutes on 2 cores) in a
# virtual environment, then runs make_llamacpp_gguf.py with it.
#
# usage: tools/golden/make_llamacpp_gguf.sh [--out-dir DIR]
#   LLAMACPP_VENV  where the virtual environment goes (default /tmp/ftq-llamacpp-venv; reused
#                  when it already has llama-cpp-python)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
venv=${LLAMACPP_VENV:-/tmp/ftq-llamacpp-venv}

if ! command -v gcc >/dev/null || ! command -v g++ >/dev/null; then
    apt-get update && apt-get install -y build-essential
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet \
        cmake==4.4.5 ninja==1.13.2 scikit-build-core==1.1.2 \
        numpy==2.4.6 gguf==0.19.0 \
        typing-extensions==4.15.0 diskcache==5.6.3 jinja2==3.1.6
    # Only the llama and ggml libraries: no multimodal library, tools, examples or tests, and
    # no CPU-specific code paths (GGML_NATIVE=OFF).
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
        "$venv/bin/pip" install --no-build-isolation --no-binary llama-cpp-python llama-cpp-python==0.3.36
fi

exec "$venv/bin/python" "$here/make_llamacpp_gguf.py" "$@"
