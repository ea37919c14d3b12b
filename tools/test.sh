#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, the Python packages the interop
# tests call (safetensors, gguf, numpy, ml_dtypes), then `swift test`, then every fuzzing
# harness for 20 s (tools/fuzz/smoke.sh: about 4 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
python3 -m pip install -q --disable-pip-version-check -r tools/requirements-test.txt
swift build --build-tests 2>&1 | tail -1
swift build --product ftq 2>&1 | tail -1
swift test --skip-build 2>&1
bash tools/fuzz/smoke.sh 20
