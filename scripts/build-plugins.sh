#!/usr/bin/env bash
# Builds the bundled plugins, plugins/NAME/ -> plugins/NAME.wasm (or into
# the directory given), with standard Go for wasip1. The .wasm files are
# build outputs, not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-plugins}")
mkdir -p "$out"
for dir in plugins/*/; do
  name=$(basename "$dir")
  (cd plugins && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o "$out/$name.wasm" "./$name")
done
