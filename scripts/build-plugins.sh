#!/usr/bin/env bash
# Builds the bundled plugins, plugins/NAME/ -> plugins/NAME.wasm (or into
# the directory given), with standard Go for wasip1, and embeds each
# plugin's plugins/NAME/schema.json as its config schema (standard Go
# cannot write a custom section itself: `gatewayd plugin schema` does).
# The .wasm files are build outputs, not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-plugins}")
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/gatewayd" ./cmd/gatewayd
for dir in plugins/*/; do
  [ -f "$dir/main.go" ] || continue # plugins/internal: the plugins' test helpers
  name=$(basename "$dir")
  (cd plugins && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o "$tmp/$name.wasm" "./$name")
  if [ -f "$dir/schema.json" ]; then
    "$tmp/gatewayd" plugin schema "$tmp/$name.wasm" "$dir/schema.json"
  fi
  mv "$tmp/$name.wasm" "$out/$name.wasm"
done
