#!/usr/bin/env bash
# Builds the bundled plugins, plugins/NAME/ -> plugins/NAME.wasm (or into
# the directory given): those in Go with standard Go for wasip1, embedding
# each plugin's plugins/NAME/schema.json as its config schema (standard Go
# cannot write a custom section itself: `gatewayd plugin schema` does);
# those in Rust are copied from their committed build, plugins/NAME/NAME.wasm
# (scripts/build-rust-plugins.sh), so this needs only Go. The outputs are
# not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-plugins}")
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/gatewayd" ./cmd/gatewayd
for dir in plugins/*/; do
  name=$(basename "$dir")
  if [ -f "$dir/$name.rs" ]; then
    # Rust: the committed build, which scripts/build-rust-plugins.sh makes
    # (schema embedded) and make test checks against its source.
    cp "$dir/$name.wasm" "$out/$name.wasm"
    continue
  fi
  [ -f "$dir/main.go" ] || continue # plugins/internal: the plugins' test helpers
  (cd plugins && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o "$tmp/$name.wasm" "./$name")
  if [ -f "$dir/schema.json" ]; then
    "$tmp/gatewayd" plugin schema "$tmp/$name.wasm" "$dir/schema.json"
  fi
  mv "$tmp/$name.wasm" "$out/$name.wasm"
done
