#!/usr/bin/env bash
# Release archives, in build/dist: gatewayd for linux and darwin on amd64
# and arm64 (no cgo), each archive holding the binary, the bundled plugins
# (WebAssembly: the same for every platform), the demo gateway.toml with
# the files it names, README.md, LICENSE and the systemd unit; and
# SHA256SUMS over the archives.
#
#   make dist                    # VERSION from git describe
#   VERSION=v0.3.0 scripts/dist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
LDFLAGS=${LDFLAGS:-"-X main.version=$VERSION -X main.commit=$(git rev-parse HEAD 2>/dev/null)"}
out=build/dist
rm -rf "$out"
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

echo "dist: building the bundled plugins"
scripts/build-plugins.sh "$stage/plugins" >/dev/null
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64; do
  os=${target%/*}
  arch=${target#*/}
  name="lintel-$VERSION-$os-$arch"
  dir="$stage/$name"
  echo "dist: $name"
  mkdir -p "$dir/plugins" "$dir/testdata/keys" "$dir/testdata/grpc" "$dir/deploy"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$LDFLAGS" -o "$dir/gatewayd" ./cmd/gatewayd
  cp "$stage"/plugins/*.wasm "$dir/plugins/"
  cp gateway.toml README.md LICENSE "$dir/"
  cp testdata/keys/demo-jwks.json "$dir/testdata/keys/"
  cp testdata/grpc/inventory.proto "$dir/testdata/grpc/"
  cp deploy/gatewayd.service "$dir/deploy/"
  tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
done
(cd "$out" && sha256sum ./*.tar.gz | sed 's| \./| |' >SHA256SUMS)
cat "$out/SHA256SUMS"
