#!/usr/bin/env bash
# Plain proxying through gatewayd versus nginx (Debian's package, set up
# equivalently: upstream keep-alive, HTTP/1.1 to the upstream), against the
# same upstream in the same run, plus the aggregation route's throughput,
# REST-to-gRPC translation against REST proxying of the same inventory
# lookup (the demo inventory answers both), and tracing's cost: a second
# gatewayd with the same routes and [tracing] recording every request,
# exporting over OTLP/HTTP to a collector that discards what it gets,
# against the untraced one (proxying and aggregation).
#
#   scripts/bench-vs-nginx.sh            # 3 rounds of 10 s per target
#   DURATION=2 ROUNDS=1 scripts/bench-vs-nginx.sh   # the short CI version
#
# Needs nginx and wrk (apt-get install nginx-light wrk). Everything
# listens on loopback and is stopped on exit. Prints requests per second
# for each round and the gatewayd/nginx ratio (median of rounds).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
OFFSET=${OFFSET:-21000}          # demo services on 30101..30111
NGINX_PORT=${NGINX_PORT:-30080}
LINTEL_PORT=${LINTEL_PORT:-30081}
TRACED_PORT=${TRACED_PORT:-30082}

for tool in nginx wrk; do
  command -v "$tool" >/dev/null || command -v "/usr/sbin/$tool" >/dev/null ||
    { echo "bench: $tool is missing: apt-get install nginx-light wrk" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/gatewayd" ./cmd/gatewayd
go build -o "$work/demo-services" ./cmd/demo-services
"$work/demo-services" -port-offset "$OFFSET" -keep-spans -1 2>"$work/demo.log" &
pids+=($!)

orders=$((9104 + OFFSET)); catalog=$((9101 + OFFSET)); catalog2=$((9111 + OFFSET))
inventory=$((9102 + OFFSET)); reviews=$((9103 + OFFSET))

cat >"$work/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream orders { server 127.0.0.1:$orders; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /api/v1/orders/ {
      proxy_pass http://orders/orders/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
NGINX
"$NGINX" -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"

cat >"$work/gateway.toml" <<TOML
[admin]
listen = ""
[listeners.bench]
listen = "127.0.0.1:$LINTEL_PORT"
[services.orders]
targets = ["http://127.0.0.1:$orders"]
[services.catalog]
targets = ["http://127.0.0.1:$catalog", "http://127.0.0.1:$catalog2"]
[services.inventory]
targets = ["http://127.0.0.1:$inventory"]
[services.inventory-grpc]
protocol = "grpc"
targets = ["http://127.0.0.1:$((9105 + OFFSET))"]
protos = ["$PWD/testdata/grpc/inventory.proto"]
[services.reviews]
targets = ["http://127.0.0.1:$reviews"]
[[routes]]
path = "/api/v1/orders/*rest"
methods = ["GET"]
service = "orders"
rewrite = "/orders/{rest}"
[[routes]]
path = "/rest/inventory/:id"
methods = ["GET"]
service = "inventory"
rewrite = "/internal/inventory/{id}"
[[routes]]
path = "/grpc/inventory/:id"
methods = ["GET"]
service = "inventory-grpc"
grpc = { method = "lintel.demo.inventory.v1.Inventory/GetProduct" }
[[routes]]
path = "/products/:id"
methods = ["GET"]
[routes.aggregate]
parts = [
  { key = "product", service = "catalog",   path = "/internal/catalog/{id}" },
  { key = "stock",   service = "inventory", path = "/internal/inventory/{id}", take = "count" },
  { key = "reviews", service = "reviews",   path = "/internal/reviews/{id}", optional = true },
]
TOML
"$work/gatewayd" -config "$work/gateway.toml" -log-level warn 2>"$work/gatewayd.log" &
pids+=($!)
{
  printf '[tracing]\nendpoint = "http://127.0.0.1:%s"\nsample_ratio = 1.0\n' $((9106 + OFFSET))
  sed "s/127.0.0.1:$LINTEL_PORT/127.0.0.1:$TRACED_PORT/" "$work/gateway.toml"
} >"$work/traced.toml"
"$work/gatewayd" -config "$work/traced.toml" -log-level warn 2>"$work/traced.log" &
pids+=($!)

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "bench: port $1 never opened" >&2; exit 1; }
for p in $orders $reviews $NGINX_PORT $LINTEL_PORT $TRACED_PORT; do wait_port "$p"; done

# rps URL: requests per second, after checking every answer was a 2xx.
rps() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$1")
  if grep -q "Non-2xx" <<<"$out"; then echo "bench: non-2xx answers from $1:" >&2; echo "$out" >&2; exit 1; fi
  awk '/^Requests\/sec/ {print int($2)}' <<<"$out"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

curl -fsS "http://127.0.0.1:$LINTEL_PORT/api/v1/orders/1" >/dev/null
curl -fsS "http://127.0.0.1:$LINTEL_PORT/products/1" >/dev/null

echo "wrk -t2 -c$CONNS -d${DURATION}s, $ROUNDS round(s), $(nproc) cores, everything on this machine"
printf '%-8s %12s %12s %12s %14s\n' round direct nginx gatewayd aggregate
: >"$work/n"; : >"$work/l"; : >"$work/a"; : >"$work/d"
for r in $(seq "$ROUNDS"); do
  d=$(rps "http://127.0.0.1:$orders/orders/1")
  n=$(rps "http://127.0.0.1:$NGINX_PORT/api/v1/orders/1")
  l=$(rps "http://127.0.0.1:$LINTEL_PORT/api/v1/orders/1")
  a=$(rps "http://127.0.0.1:$LINTEL_PORT/products/1")
  echo "$d" >>"$work/d"; echo "$n" >>"$work/n"; echo "$l" >>"$work/l"; echo "$a" >>"$work/a"
  printf '%-8s %12s %12s %12s %14s\n' "$r" "$d" "$n" "$l" "$a"
done
n=$(median <"$work/n"); l=$(median <"$work/l"); a=$(median <"$work/a")
printf 'median   nginx %s req/s, gatewayd %s req/s: gatewayd/nginx = %s\n' "$n" "$l" "$(awk -v l="$l" -v n="$n" 'BEGIN {printf "%.2f", l/n}')"
printf 'aggregate (3 parts per request): %s req/s = %s upstream calls/s\n' "$a" "$((a * 3))"

# REST to gRPC against REST proxying, interleaved: req/s and p99 (ms).
rps_p99() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$1")
  if grep -q "Non-2xx" <<<"$out"; then echo "bench: non-2xx answers from $1:" >&2; echo "$out" >&2; exit 1; fi
  awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    / 99%/ {p99 = ms($2)} /^Requests\/sec/ {rps = $2} END {printf "%d %.2f\n", rps, p99}' <<<"$out"
}
curl -fsS "http://127.0.0.1:$LINTEL_PORT/grpc/inventory/1" >/dev/null
: >"$work/rest"; : >"$work/grpc"
for r in $(seq "$ROUNDS"); do
  rps_p99 "http://127.0.0.1:$LINTEL_PORT/rest/inventory/1" >>"$work/rest"
  rps_p99 "http://127.0.0.1:$LINTEL_PORT/grpc/inventory/1" >>"$work/grpc"
done
paste "$work/rest" "$work/grpc" | awk '
  {rest[NR] = $1; rp[NR] = $2; grpc[NR] = $3; gp[NR] = $4; ratio[NR] = $3 / $1}
  function median(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } return a[int((n + 1) / 2)] }
  END {
    printf "REST to gRPC vs REST proxying (the inventory lookup), median of %d: %d vs %d req/s = %.2fx; p99 %.2f vs %.2f ms\n", NR, median(grpc, NR), median(rest, NR), median(ratio, NR), median(gp, NR), median(rp, NR)
  }'

# Tracing every request against none, interleaved: proxying and the
# aggregation (3 parts: 8 spans a request).
curl -fsS "http://127.0.0.1:$TRACED_PORT/products/1" >/dev/null
: >"$work/off"; : >"$work/on"; : >"$work/aoff"; : >"$work/aon"
for r in $(seq "$ROUNDS"); do
  rps_p99 "http://127.0.0.1:$LINTEL_PORT/api/v1/orders/1" >>"$work/off"
  rps_p99 "http://127.0.0.1:$TRACED_PORT/api/v1/orders/1" >>"$work/on"
  rps_p99 "http://127.0.0.1:$LINTEL_PORT/products/1" >>"$work/aoff"
  rps_p99 "http://127.0.0.1:$TRACED_PORT/products/1" >>"$work/aon"
done
for pair in "proxying:off:on" "aggregation:aoff:aon"; do
  IFS=: read -r what off on <<<"$pair"
  paste "$work/$off" "$work/$on" | awk -v what="$what" '
    {off[NR] = $1; op[NR] = $2; on[NR] = $3; onp[NR] = $4; ratio[NR] = $3 / $1}
    function median(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } return a[int((n + 1) / 2)] }
    END {
      lo = hi = ratio[1]; for (i = 2; i <= NR; i++) { if (ratio[i] < lo) lo = ratio[i]; if (ratio[i] > hi) hi = ratio[i] }
      printf "tracing every request vs none (%s), median of %d: %d vs %d req/s = %.2fx (rounds %.2f-%.2f); p99 %.2f vs %.2f ms\n", what, NR, median(on, NR), median(off, NR), median(ratio, NR), lo, hi, median(onp, NR), median(op, NR)
    }'
done
grep -i "trace export failed" "$work/traced.log" >&2 && { echo "bench: trace exports failed" >&2; exit 1; } || true
