#!/usr/bin/env bash
# Runs one libFuzzer harness for SECONDS seconds with a 2 GB memory limit and a 1 s
# per-input timeout, seeded from testdata/ (valid and malformed files).
#
#   tools/fuzz/run.sh HARNESS SECONDS [extra libFuzzer flags...]
#
# Seeds are copied into a fresh directory under .build-fuzz/seeds/HARNESS (testdata/ is never
# written); inputs the fuzzer finds interesting go to .build-fuzz/corpus/HARNESS, which is kept
# between runs. A crash, leak, timeout or out-of-memory input is saved under
# .build-fuzz/artifacts/HARNESS/ and the script exits non-zero. Build first: tools/fuzz/build.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ $# -lt 2 ]]; then
    echo "usage: tools/fuzz/run.sh HARNESS SECONDS [libFuzzer flags...]" >&2
    exit 2
fi
name=$1 seconds=$2
shift 2
OUT=${FTQ_FUZZ_BUILD:-$PWD/.build-fuzz}
bin=$OUT/bin/$name
[[ -x $bin ]] || { echo "no harness $bin: run tools/fuzz/build.sh first" >&2; exit 2; }

seeds=$OUT/seeds/$name
corpus=$OUT/corpus/$name
artifacts=$OUT/artifacts/$name
rm -rf "$seeds"
mkdir -p "$seeds" "$corpus" "$artifacts"

# Copies the regular files matching the find(1) expression under testdata/ into the seeds.
add_seeds() {
    find testdata "$@" -type f -size -1024k -print0 | while IFS= read -r -d '' f; do
        cp "$f" "$seeds/$(echo "${f#testdata/}" | tr '/' '_')"
    done
}

max_len=65536
dict=tools/fuzz/dict/safetensors.dict
case $name in
    safetensors) add_seeds -name '*.safetensors' ;;
    gguf) add_seeds -name '*.gguf' ; dict=tools/fuzz/dict/gguf.dict ;;
    index) add_seeds \( -name '*.index.json' -o -path '*/malformed/sharded_*' \) ; max_len=16384 ;;
    adapter-config) add_seeds \( -name 'adapter_config.json' -o -name 'config.json' \) ; max_len=16384 ;;
    manifest) add_seeds -name '*.json' -path '*/malformed/*' ; max_len=16384 ;;
    sha256sums) add_seeds -path '*/malformed/*' -name '*.json' ; max_len=16384 ; dict= ;;
    pack) ;;
    plan-config) add_seeds -name 'config.json' ; max_len=16384 ;;
    tokenizer) max_len=65536 ;;
    gguf-to-hf) add_seeds -name 'tiny-llama-*.gguf' ; max_len=600000 ; dict=tools/fuzz/dict/gguf.dict ;;
    sentencepiece) add_seeds -name 'tokenizer.model' ; max_len=65536 ; dict= ;;
    *) echo "no seed rule for harness $name" >&2; exit 2 ;;
esac
# Harnesses for formats with no files in testdata/ (manifest, SHA256SUMS, pack, tokenizer) write generated
# seeds here at start-up.
export FTQ_FUZZ_SEED_DIR=$seeds

# libFuzzer reports crashes itself (with the Swift runtime failure, e.g. "arithmetic overflow");
# Swift's own backtracer would race with it and can be left behind waiting.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
# The harness writes its inputs here; it removes the directory when it exits normally, this
# script after a crash.
export FTQ_FUZZ_SCRATCH=/dev/shm/ftq-fuzz-run-$$
[[ -d /dev/shm ]] || FTQ_FUZZ_SCRATCH=${TMPDIR:-/tmp}/ftq-fuzz-run-$$
status=0
"$bin" -rss_limit_mb=2048 -timeout=1 -max_total_time="$seconds" -max_len=$max_len ${dict:+-dict=$dict} \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" "$corpus" "$seeds" || status=$?
rm -rf "$FTQ_FUZZ_SCRATCH"
exit $status
