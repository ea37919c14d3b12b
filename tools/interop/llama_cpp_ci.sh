#!/usr/bin/env bash
# The llama.cpp step of the test command (tools/test.sh): `ftq convert` of the committed tiny
# Llama checkpoints (testdata/llama-tiny/) to GGUF for every --type, loaded by llama.cpp
# (llama-cpp-python, built here from its PyPI source package, CPU only), whose logits and
# tokenization must match transformers' committed ones (tools/interop/llama_gguf_logits.py ci).
#
# usage: tools/interop/llama_cpp_ci.sh start        build llama-cpp-python in the background
#                                                   (niced, log in $FTQ_LLAMA_VENV.build/log)
#        tools/interop/llama_cpp_ci.sh build        build it in the foreground
#        tools/interop/llama_cpp_ci.sh check FTQ    wait for the build (or build), then the check;
#                                                   exits non-zero when the build or any check fails
#        tools/interop/llama_cpp_ci.sh stop         end a background build that is still running
#
# FTQ_LLAMA_VENV  the virtual environment (default .venv-llama at the repository root), reused
#                 when it already has llama-cpp-python $VERSION
# FTQ_LLAMA_JOBS  compiler jobs (default 2)
# FTQ_LLAMA_WAIT  seconds `check` waits for a background build before failing (default 3600)
#
# The build compiles llama.cpp (ggml, llama and llama-cpp-python's forced "common" library;
# no multimodal library, tools, examples, tests or server) for a generic x86-64 CPU
# (GGML_NATIVE=OFF: any CI machine runs it; the tiny model needs no speed).
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=0.3.36
venv=${FTQ_LLAMA_VENV:-$PWD/.venv-llama}
state=$venv.build
jobs=${FTQ_LLAMA_JOBS:-2}

have() {
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" -c "import sys, llama_cpp, gguf, numpy; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null
}

build() {
    # Explicit `|| return 1`s: callers may run it where `set -e` does not apply.
    local t0 t1
    t0=$(date +%s)
    if have; then
        echo "llama-cpp-python $VERSION already in $venv"
    else
        rm -rf "$venv"
        if ! python3 -m venv "$venv"; then
            # Debian's python3 needs python3-venv for ensurepip.
            rm -rf "$venv"
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null &&
                python3 -m venv "$venv"; } || return 1
        fi
        local pip=("$venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check)
        "${pip[@]}" cmake==4.4.5 ninja==1.13.2 scikit-build-core==1.1.2 numpy==2.4.6 gguf==0.19.0 \
            typing-extensions==4.15.0 diskcache==5.6.3 jinja2==3.1.6 || return 1
        CMAKE_BUILD_PARALLEL_LEVEL=$jobs \
        CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
            "${pip[@]}" --no-build-isolation --no-binary llama-cpp-python llama-cpp-python==$VERSION || return 1
        have || { echo "llama-cpp-python $VERSION does not import from $venv" >&2; return 1; }
    fi
    t1=$(date +%s)
    echo "$((t1 - t0))" > "$state/seconds"
}

case "${1:-}" in
start)
    mkdir -p "$state"
    rm -f "$state/rc" "$state/seconds" "$state/log" "$state/pid"
    # Its own process group (setsid), so `stop` ends pip, cmake and the compilers together.
    setsid nice -n 10 bash "$0" _build </dev/null >/dev/null 2>&1 &
    echo $! > "$state/pid"
    echo "llama-cpp-python $VERSION: building in the background (log: $state/log)"
    ;;
_build)
    set +e
    ( set -e; build ) > "$state/log" 2>&1
    rc=$?
    echo "$rc" > "$state/rc.tmp" && mv "$state/rc.tmp" "$state/rc"
    ;;
build)
    mkdir -p "$state"
    build
    echo "llama-cpp-python $VERSION: $(cat "$state/seconds") s"
    ;;
stop)
    if [ -f "$state/pid" ] && [ ! -f "$state/rc" ]; then
        kill -- "-$(cat "$state/pid")" 2>/dev/null || true
    fi
    ;;
check)
    ftq=$(cd "$(dirname "${2:?usage: llama_cpp_ci.sh check FTQ}")" && pwd)/$(basename "$2")
    t0=$(date +%s)
    if [ -f "$state/pid" ]; then
        pid=$(cat "$state/pid")
        while [ ! -f "$state/rc" ]; do
            if ! kill -0 "$pid" 2>/dev/null && [ ! -f "$state/rc" ]; then
                echo "llama-cpp-python build ended without a status" >&2
                tail -40 "$state/log" >&2 || true
                exit 1
            fi
            if [ $(($(date +%s) - t0)) -gt "${FTQ_LLAMA_WAIT:-3600}" ]; then
                echo "llama-cpp-python build still running after ${FTQ_LLAMA_WAIT:-3600} s of waiting" >&2
                kill -- "-$pid" 2>/dev/null || true
                tail -40 "$state/log" >&2 || true
                exit 1
            fi
            sleep 5
        done
        if [ "$(cat "$state/rc")" != 0 ]; then
            echo "llama-cpp-python $VERSION build FAILED (exit $(cat "$state/rc")); last lines of $state/log:" >&2
            tail -40 "$state/log" >&2
            exit 1
        fi
        if grep -q "already in" "$state/log"; then
            echo "llama-cpp-python $VERSION: reused $venv"
        else
            echo "llama-cpp-python $VERSION: built in the background in $(cat "$state/seconds") s; waited $(($(date +%s) - t0)) s for it"
        fi
    else
        mkdir -p "$state"
        if have; then
            echo "llama-cpp-python $VERSION: reused $venv"
        elif ! build > "$state/log" 2>&1; then
            echo "llama-cpp-python $VERSION build FAILED; last lines of $state/log:" >&2
            tail -40 "$state/log" >&2
            exit 1
        else
            echo "llama-cpp-python $VERSION: built in $(cat "$state/seconds") s"
        fi
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$venv/bin/python" tools/interop/llama_gguf_logits.py ci "$ftq" "$work"
    ;;
*)
    sed -n '2,22p' "$0" >&2
    exit 2
    ;;
esac
