#!/usr/bin/env bash
# The project's test command (README: `make test`): formatting, vet, every
# test, the core packages and the end-to-end suite under the race
# detector, a short run of every benchmark, and (when nginx and wrk are installed, and always under CI)
# a short gatewayd-versus-nginx run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

if command -v wat2wasm >/dev/null; then
  echo "== plugin fixtures match their sources"
  scripts/build-fixtures.sh -check
elif [ "${CI:-}" = true ]; then
  echo "wat2wasm is required under CI (apt-get install wabt)" >&2; exit 1
else
  echo "== plugin fixtures: check skipped (apt-get install wabt to run it)"
fi

if command -v npx >/dev/null; then
  echo "== gateway.toml and testdata/config/good against gateway.schema.json, as editors check them (Taplo)"
  npx --yes @taplo/cli@0.7.0 check gateway.toml testdata/config/good/*.toml
elif [ "${CI:-}" = true ]; then
  echo "npx is required under CI (apt-get install npm)" >&2; exit 1
fi

if [ -x /usr/bin/rustc ]; then
  echo "== the committed Rust plugins match their sources (and pass their unit tests)"
  scripts/build-rust-plugins.sh -check
elif [ "${CI:-}" = true ]; then
  echo "Debian's rustc is required under CI (apt-get install rustc libstd-rust-dev-wasm32 lld-14)" >&2; exit 1
fi

echo "== build the bundled plugins"
scripts/build-plugins.sh

echo "== go vet"
go vet ./...

echo "== go test -race (core, and the end-to-end suite)"
go test -race -count=1 ./core/... ./internal/e2e

echo "== go test (the rest)"
go test -count=1 $(go list ./... | grep -v -e '/core/' -e '/internal/e2e')

echo "== Go SDK (its own module): vet natively and for wasip1, tests against the fake host"
(cd sdk/go && go vet ./... && GOOS=wasip1 GOARCH=wasm go vet ./... && go test -count=1 ./...)

if [ -x /usr/bin/rustc ]; then
  echo "== Rust SDK: unit tests, natively"
  tmp=$(mktemp -d)
  /usr/bin/rustc --edition 2021 --test -o "$tmp/lintel-test" sdk/rust/src/lib.rs
  "$tmp/lintel-test" -q
  rm -rf "$tmp"
elif [ "${CI:-}" = true ]; then
  echo "Debian's rustc is required under CI (apt-get install rustc libstd-rust-dev-wasm32 lld-14)" >&2; exit 1
fi

echo "== bundled plugins (their own module): vet for both targets, tests against the fake host"
(cd plugins && go vet ./... && GOOS=wasip1 GOARCH=wasm go vet ./... && go test -count=1 ./...)

if command -v systemd-analyze >/dev/null; then
  echo "== deploy/gatewayd.service (systemd-analyze verify)"
  unit=$(mktemp -d)
  go build -o "$unit/gatewayd" ./cmd/gatewayd
  sed "s|/usr/local/bin/gatewayd|$unit/gatewayd|g" deploy/gatewayd.service >"$unit/gatewayd.service"
  out=$(systemd-analyze verify "$unit/gatewayd.service" 2>&1) || { echo "$out" >&2; exit 1; }
  [ -z "$out" ] || { echo "$out" >&2; exit 1; }
  rm -rf "$unit"
fi

echo "== benchmarks (short)"
go test -run '^$' -bench . -benchtime 100x ./... >/dev/null

if command -v wrk >/dev/null && { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; }; then
  echo "== gatewayd vs nginx (short)"
  DURATION=2 ROUNDS=1 scripts/bench-vs-nginx.sh
  echo "== the bundled filters vs plain Lintel (short)"
  DURATION=1 ROUNDS=1 scripts/bench-filters.sh
  echo "== a cold gateway under a burst"
  MODE=burst scripts/bench-filters.sh
elif [ "${CI:-}" = true ]; then
  echo "nginx and wrk are required under CI (apt-get install nginx-light wrk)" >&2; exit 1
else
  echo "== gatewayd vs nginx: skipped (apt-get install nginx-light wrk to run it)"
fi
echo "== all checks passed"
