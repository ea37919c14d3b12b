#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tools/fuzz/Harnesses into .build-fuzz/bin.
#
# libFuzzer provides `main`, so a harness cannot be a SwiftPM executable target. Instead the
# library modules are compiled here with swiftc into static libraries (instrumented for
# coverage and AddressSanitizer, optimized, with -enable-testing so that harnesses can reach
# internal entry points), and each harness is linked against them.
#
#   tools/fuzz/build.sh            build every harness
#   tools/fuzz/build.sh gguf ...   build only the named harnesses (modules are rebuilt if stale)
#
# FTQ_FUZZ_BUILD names another build directory (default .build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${FTQ_FUZZ_BUILD:-$ROOT/.build-fuzz}
MOD=$OUT/modules
BIN=$OUT/bin
mkdir -p "$MOD" "$BIN"

FLAGS=(-O -enable-testing -sanitize=fuzzer,address -parse-as-library -g
       -I "$MOD" -I "$ROOT/Sources/COpenSSL" -I "$ROOT/Sources/CZstd" -I "$MOD/CSHA256")

# The C target (SHA-256 with the SHA extensions): a static library, instrumented like the rest,
# and a module map so that swiftc can import it as SwiftPM does.
CSHA=$MOD/libCSHA256.a
if [[ ! -f $CSHA ]] || [[ -n $(find Sources/CSHA256 -newer "$CSHA" | head -1) ]]; then
    echo "module CSHA256 (C)"
    mkdir -p "$MOD/CSHA256"
    printf 'module CSHA256 {\n    header "%s"\n    export *\n}\n' "$ROOT/Sources/CSHA256/include/ftq_sha256.h" > "$MOD/CSHA256/module.modulemap"
    clang -O2 -g -fsanitize=fuzzer-no-link,address -I Sources/CSHA256/include -c Sources/CSHA256/sha256.c -o "$MOD/CSHA256/sha256.o"
    rm -f "$CSHA"
    ar rcs "$CSHA" "$MOD/CSHA256/sha256.o"
    # Swift modules that import it are rebuilt.
    rm -f "$MOD"/libFTQArtifacts.a
fi

# Each module after the modules it imports.
MODULES=(FTQCore FTQKernels FTQFormats FTQArtifacts)
[[ -d Sources/FTQPlan ]] && MODULES+=(FTQPlan)

build_module() {
    local m=$1 lib=$MOD/lib$1.a
    local sources
    mapfile -t sources < <(find "Sources/$m" -name '*.swift' | sort)
    # Rebuild when any source of this module or of a module it depends on is newer.
    if [[ -f $lib ]] && [[ -z $(find "Sources/$m" "${@:2}" -name '*.swift' -newer "$lib" 2>/dev/null | head -1) ]]; then
        return
    fi
    echo "module $m (${#sources[@]} files)"
    swiftc "${FLAGS[@]}" -module-name "$m" -wmo -num-threads 2 \
        -emit-module -emit-module-path "$MOD/$m.swiftmodule" \
        -emit-library -static -o "$lib" "${sources[@]}"
}

deps=()
for m in "${MODULES[@]}"; do
    build_module "$m" "${deps[@]}"
    deps+=("Sources/$m")
done

if [[ $# -gt 0 ]]; then
    HARNESSES=("$@")
else
    HARNESSES=()
    for f in tools/fuzz/Harnesses/*.swift; do
        n=$(basename "$f" .swift)
        [[ $n == Support ]] && continue
        [[ $n == plan-config && ! -d Sources/FTQPlan ]] && continue
        HARNESSES+=("$n")
    done
fi

LIBS=()
for ((k = ${#MODULES[@]} - 1; k >= 0; k--)); do LIBS+=("$MOD/lib${MODULES[k]}.a"); done
for h in "${HARNESSES[@]}"; do
    src=tools/fuzz/Harnesses/$h.swift
    [[ -f $src ]] || { echo "no harness $src" >&2; exit 2; }
    echo "harness $h"
    swiftc "${FLAGS[@]}" -module-name "Fuzz_${h//-/_}" "$ROOT/$src" "$ROOT/tools/fuzz/Harnesses/Support.swift" -use-ld=lld \
        "${LIBS[@]}" "$CSHA" -lcrypto -lzstd -o "$BIN/$h"
done
