#!/usr/bin/env bash
# Release build of ftq for x86-64 CPUs with AVX2, FMA and F16C (Intel Haswell, AMD Zen and
# newer): the kernels' SIMD code gets 256-bit vectors, and FTQ_AVX2 selects the kernel variants
# that suit them (BnB4BitFast.Rule). Outputs are the same bytes as the
# portable build's (every kernel is tested against its scalar reference); only speed differs.
#   bash tools/release-build.sh [SCRATCH (default .build-haswell)]
# Prints the path of the built binaries. The portable build is plain `swift build -c release`.
# The whole test suite runs in this configuration too (every kernel against its reference):
#   swift build -c release --build-tests --scratch-path .build-haswell -Xswiftc -target-cpu \
#     -Xswiftc haswell -Xswiftc -DFTQ_AVX2 -Xcc -march=haswell -Xswiftc -enable-testing
#   swift test -c release --skip-build --scratch-path .build-haswell (same flags)
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${1:-.build-haswell}"
FLAGS=(-c release --scratch-path "$SCRATCH" -Xswiftc -target-cpu -Xswiftc haswell -Xswiftc -DFTQ_AVX2 -Xcc -march=haswell)
swift build "${FLAGS[@]}" --product ftq >&2
swift build "${FLAGS[@]}" --product ftq-bench >&2
swift build "${FLAGS[@]}" --show-bin-path
