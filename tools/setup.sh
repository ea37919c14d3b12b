#!/usr/bin/env bash
# Installs the system packages ftq builds against (Debian): libzstd-dev, libssl-dev, pkg-config,
# the zstd command, which the pack tests and benchmark compare against, rsvg-convert
# (librsvg2-bin), which the tests render ftq's SVG charts with, and strace, with which a test
# proves that a shard named outside a model directory is never opened.
set -euo pipefail
need=()
for p in libzstd-dev libssl-dev pkg-config zstd librsvg2-bin strace; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
