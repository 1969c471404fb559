#!/usr/bin/env bash
# Builds the WebAssembly test fixtures in testdata/wasm from their sources:
# testdata/wasm/wat/NAME.wat with wat2wasm (Debian's wabt),
# testdata/wasm/go/NAME/ with standard Go (wasip1, c-shared), and the Go
# SDK's examples and test guest (sdk/go/examples/NAME,
# sdk/go/internal/testguest). The built
# .wasm files are committed so tests need no toolchain.
#
#   scripts/build-fixtures.sh           rebuild them
#   scripts/build-fixtures.sh -check    fail if a committed .wasm differs
#                                       from what its source builds to
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
[ "${1:-}" = "-check" ] && check=true

command -v wat2wasm >/dev/null || { echo "build-fixtures: wat2wasm is missing: apt-get install wabt" >&2; exit 1; }
out=testdata/wasm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for src in "$out"/wat/*.wat; do
  name=$(basename "$src" .wat)
  wat2wasm "$src" -o "$tmp/$name.wasm"
done
for dir in "$out"/go/*/; do
  name=$(basename "$dir")
  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o "$tmp/$name.wasm" "./$dir"
done
# Guests written with the Go SDK (its own module): the examples and the
# SDK's test guest.
for dir in sdk/go/examples/*/ sdk/go/internal/testguest/; do
  name=$(basename "$dir")
  (cd sdk/go && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o "$tmp/$name.wasm" "./${dir#sdk/go/}")
done

status=0
for built in "$tmp"/*.wasm; do
  name=$(basename "$built")
  if $check; then
    if ! cmp -s "$built" "$out/$name"; then
      echo "build-fixtures: $out/$name does not match its source (run scripts/build-fixtures.sh)" >&2
      status=1
    fi
  else
    cp "$built" "$out/$name"
  fi
done
$check && [ $status -eq 0 ] && echo "build-fixtures: every committed fixture matches its source"
exit $status
