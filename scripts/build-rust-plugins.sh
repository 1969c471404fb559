#!/usr/bin/env bash
# Builds the bundled plugins written in Rust, plugins/NAME/NAME.rs, into
# plugins/NAME/NAME.wasm with Debian's rustc (no cargo, no crates: the SDK
# is sdk/rust), and embeds plugins/NAME/schema.json as each one's config
# schema. Those .wasm files are committed, so that building the bundled
# plugins (scripts/build-plugins.sh, make run) needs only Go; the build is
# reproducible (paths remapped, symbols stripped), so
#
#   scripts/build-rust-plugins.sh -check
#
# rebuilds them elsewhere and fails when a committed file differs from
# what its source builds to (make test runs it; CI must have the
# toolchain: apt-get install rustc libstd-rust-dev-wasm32 lld-14).
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
[ "${1:-}" = -check ] && check=true

if ! { [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/wasm32-unknown-unknown ] && [ -e "$(readlink -f /usr/bin/rust-lld)" ]; }; then
  echo "build-rust-plugins: Debian's rustc for wasm32 is missing: apt-get install rustc libstd-rust-dev-wasm32 lld-14" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/gatewayd" ./cmd/gatewayd
rustc=(/usr/bin/rustc --edition 2021 --target wasm32-unknown-unknown -C opt-level=3 -C panic=abort -C target-feature=+bulk-memory -C lto
  --remap-path-prefix "$PWD=.")
"${rustc[@]}" --crate-type rlib --crate-name lintel -o "$tmp/liblintel.rlib" sdk/rust/src/lib.rs
stale=0
for src in plugins/*/*.rs; do
  name=$(basename "$src" .rs)
  dir=$(dirname "$src")
  [ "$(basename "$dir")" = "$name" ] || continue
  "${rustc[@]}" --crate-type cdylib -C strip=symbols --extern lintel="$tmp/liblintel.rlib" -o "$tmp/$name.wasm" "$src"
  "$tmp/gatewayd" plugin schema "$tmp/$name.wasm" "$dir/schema.json" >/dev/null
  if $check; then
    if ! cmp -s "$tmp/$name.wasm" "$dir/$name.wasm"; then
      echo "build-rust-plugins: $dir/$name.wasm does not match $src: run scripts/build-rust-plugins.sh" >&2
      stale=1
    fi
  else
    cp "$tmp/$name.wasm" "$dir/$name.wasm"
  fi
done
# Their unit tests, natively.
/usr/bin/rustc --edition 2021 --crate-type rlib --crate-name lintel -o "$tmp/liblintel-native.rlib" sdk/rust/src/lib.rs
for src in plugins/*/*.rs; do
  name=$(basename "$src" .rs)
  [ "$(basename "$(dirname "$src")")" = "$name" ] || continue
  /usr/bin/rustc --edition 2021 --test --extern lintel="$tmp/liblintel-native.rlib" -o "$tmp/$name-test" "$src"
  out=$("$tmp/$name-test" -q 2>&1) || { echo "build-rust-plugins: the tests of $src failed:" >&2; echo "$out" >&2; exit 1; }
done
[ $stale = 0 ] && { $check && echo "build-rust-plugins: every committed Rust plugin matches its source" || true; }
exit $stale
