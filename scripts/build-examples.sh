#!/usr/bin/env bash
# Builds the example plugin of every SDK language from source into the
# directory given (default build/examples): trace-context (C),
# ip-filter (Rust), cors (AssemblyScript), security-headers (WAT) and
# counter (Go). A language whose toolchain is missing is skipped: the
# script writes NAME.skipped holding the command that installs it, and
# the tests through gatewayd report that. Under CI (CI=true) a missing
# toolchain is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build/examples}")
mkdir -p "$out"
rm -f "$out"/*.skipped

skip() { # name, install command
  if [ "${CI:-}" = true ]; then
    echo "build-examples: $1 needs a toolchain CI must have: $2" >&2
    exit 1
  fi
  echo "build-examples: skipping $1 (install: $2)" >&2
  echo "$2" > "$out/$1.skipped"
}

# C: clang for wasm32-wasi with wasi-libc, reactor model.
if command -v clang >/dev/null && command -v wasm-ld >/dev/null && [ -f /usr/lib/wasm32-wasi/libc.a ] \
   && ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1; then
  clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror -Wl,--strip-all -I sdk/c \
    -o "$out/trace-context.wasm" sdk/c/examples/trace-context/trace-context.c
else
  skip trace-context "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32"
fi

# Rust: Debian's rustc (not rustup's, which has no wasm32 std here), its
# wasm32 standard library, and the linker its rust-lld points to; no
# cargo, no crates.
if [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/wasm32-unknown-unknown ] && [ -e "$(readlink -f /usr/bin/rust-lld)" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  rustc=(/usr/bin/rustc --edition 2021 --target wasm32-unknown-unknown -C opt-level=s -C panic=abort)
  "${rustc[@]}" --crate-type rlib --crate-name lintel -o "$tmp/liblintel.rlib" sdk/rust/src/lib.rs
  "${rustc[@]}" --crate-type cdylib -C strip=symbols --extern lintel="$tmp/liblintel.rlib" \
    -o "$out/ip-filter.wasm" sdk/rust/examples/ip-filter/ip-filter.rs
else
  skip ip-filter "apt-get install rustc libstd-rust-dev-wasm32 lld-14"
fi

# AssemblyScript: the compiler from npm, pinned by package-lock.json.
if command -v npm >/dev/null; then
  (cd sdk/assemblyscript
   [ -x node_modules/.bin/asc ] || npm ci --no-audit --no-fund --loglevel=error
   # asc compiles only what a program reaches: compile the whole SDK once
   # so a function no example uses still type-checks.
   node_modules/.bin/asc assembly/lintel.ts --outFile "$out/.sdk-check.wasm" --use abort=assembly/lintel/abort --disableWarning 235
   rm -f "$out/.sdk-check.wasm"
   node_modules/.bin/asc examples/cors/cors.ts --outFile "$out/cors.wasm" --optimize \
     --runtime incremental --exportStart _initialize --use abort=assembly/lintel/abort)
else
  skip cors "apt-get install nodejs npm"
fi

# WAT: wabt's assembler.
if command -v wat2wasm >/dev/null; then
  wat2wasm sdk/wat/examples/security-headers/security-headers.wat -o "$out/security-headers.wasm"
else
  skip security-headers "apt-get install wabt"
fi

# Go: the standard toolchain, always here.
(cd sdk/go && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o "$out/counter.wasm" ./examples/counter)
