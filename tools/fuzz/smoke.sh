#!/usr/bin/env bash
# The fuzzing smoke run for CI: builds every harness, then runs each for SECONDS seconds
# (default 20) with the limits of run.sh. Exits non-zero when the build fails or any harness
# finds a crash, leak, timeout or out-of-memory input (saved under .build-fuzz/artifacts/HARNESS/).
# Measured on 2 cores: about 1 minute to build from scratch, then 21 s per harness.
#
#   tools/fuzz/smoke.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
start=$(date +%s)
OUT=${FTQ_FUZZ_BUILD:-$PWD/.build-fuzz}
mkdir -p "$OUT/logs"
if ! tools/fuzz/build.sh > "$OUT/logs/build.log" 2>&1; then
    grep -E "error:" "$OUT/logs/build.log" | head -20
    echo "fuzz build failed (log: $OUT/logs/build.log)" >&2
    exit 1
fi
built=$(date +%s)
status=0
for bin in "$OUT"/bin/*; do
    h=$(basename "$bin")
    log=$OUT/logs/smoke-$h.log
    if tools/fuzz/run.sh "$h" "$seconds" > "$log" 2>&1; then
        echo "$h: $(grep -h 'stat::number_of_executed_units' "$log" | awk '{print $2}') executions, no finding"
    else
        echo "$h: FINDING (see $log)"
        grep -E "ERROR|Test unit written|Fatal error" "$log" | head -5
        status=1
    fi
done
end=$(date +%s)
echo "fuzz smoke: build $((built - start)) s, runs $((end - built)) s, total $((end - start)) s"
exit $status
