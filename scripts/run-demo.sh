#!/usr/bin/env bash
# Runs the demo: the upstream services of gateway.toml, then gatewayd in
# the foreground. Ctrl-C (or SIGTERM) stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "building gatewayd, the demo services and demo-token (bin/)..."
go build -ldflags "-X main.version=$(git describe --tags --always --dirty 2>/dev/null || echo devel) -X main.commit=$(git rev-parse HEAD 2>/dev/null)" \
  -o bin/ ./cmd/gatewayd ./cmd/demo-services ./cmd/demo-token
echo "building the bundled plugins (plugins/*.wasm)..."
scripts/build-plugins.sh

echo "starting the demo services on 127.0.0.1:9101-9111..."
bin/demo-services &
demo=$!
trap 'kill $demo 2>/dev/null || true; wait $demo 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/9104) 2>/dev/null && break
  kill -0 $demo 2>/dev/null || { echo "run-demo: the demo services did not start (ports 9101-9111 busy?)" >&2; exit 1; }
  sleep 0.1
done

cat <<'MSG'

  Lintel is starting. Try, in another terminal:
    curl -s localhost:8080/products/123        # catalog + inventory (gRPC) + reviews, merged
    curl -s localhost:8080/api/v1/inventory/123  # the gRPC inventory as REST and JSON
    curl -s localhost:8081/products/123        # the mobile gateway's smaller answer
    curl -si localhost:8080/api/v1/orders/42   # 401: the orders API wants a token
    curl -s -H "Authorization: Bearer $(bin/demo-token)" localhost:8080/api/v1/orders/42
    curl -s localhost:9106/traces               # the latest traces, as span trees
  Access log lines appear below, one JSON line per request.

MSG
bin/gatewayd -config gateway.toml "$@" &
gw=$!
trap 'kill $gw $demo 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
wait $gw
