#!/usr/bin/env bash
# Throughput of routes behind the bundled plugins against the same route
# with no filter, in one run, and a soak of the demo chain.
#
#   scripts/bench-plugins.sh                  # ratios: 3 rounds x 10 s
#   DURATION=2 ROUNDS=1 scripts/bench-plugins.sh
#   MODE=soak REQUESTS=1000000 scripts/bench-plugins.sh
#   MODE=ratelimit scripts/bench-plugins.sh   # rate-limited route, memory vs Redis
#
# Routes: /plain (no filter), /auth (jwt-auth with valid RS256 tokens,
# verified-token cache on), /demo (access log + jwt-auth + header-rewrite,
# the demo chain). Every plugin runs sandboxed, as gateway.toml runs them.
# Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
MODE=${MODE:-ratio}
REQUESTS=${REQUESTS:-1000000}
OFFSET=${OFFSET:-22000}
PORT=${PORT:-31081}
command -v wrk >/dev/null || { echo "bench-plugins: wrk is missing: apt-get install wrk" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/" ./cmd/gatewayd ./cmd/demo-services ./cmd/demo-token
scripts/build-plugins.sh "$work/plugins"
"$work/demo-services" -port-offset "$OFFSET" 2>/dev/null &
pids+=($!)
orders=$((9104 + OFFSET))
jwks=$(realpath testdata/keys/demo-jwks.json)

cat >"$work/gateway.toml" <<TOML
[plugins]
dir = "plugins"
[admin]
listen = ""
[listeners.bench]
listen = "127.0.0.1:$PORT"
[filters.log]
plugin = "access-log"
output = "access.log"
[filters.auth]
plugin = "jwt-auth"
config_files = { jwks = "$jwks" }
config = { algorithms = ["RS256"], issuer = "https://idp.lintel.demo", audience = ["lintel-demo"], claims_to_headers = { sub = "X-User" } }
[filters.headers]
plugin = "header-rewrite"
config.request = { set = { X-Gateway = "lintel" } }
config.response = { set = { X-Served-By = "lintel" } }
[services.orders]
targets = ["http://127.0.0.1:$orders"]
[[routes]]
path = "/plain/*rest"
service = "orders"
[[routes]]
path = "/auth/*rest"
service = "orders"
filters = ["auth"]
[[routes]]
path = "/demo/*rest"
service = "orders"
filters = ["log", "auth", "headers"]
[filters.limit]
plugin = "rate-limit"
config = { key = ["client_ip"], rate = 1000000, period = "1s", burst = 1000000 }
[[routes]]
path = "/limit/*rest"
service = "orders"
filters = ["limit"]
TOML
"$work/gatewayd" -config "$work/gateway.toml" -log-level warn 2>"$work/gatewayd.log" &
gw=$!
pids+=($gw)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || { echo "bench-plugins: gatewayd did not start:" >&2; cat "$work/gatewayd.log" >&2; exit 1; }
token=$("$work/demo-token" -key testdata/keys/demo-rsa.pem -ttl 2h)
auth="Authorization: Bearer $token"
curl -fsS -H "$auth" "http://127.0.0.1:$PORT/demo/1" >/dev/null

# rps prints the requests per second wrk measured; answers other than 2xx
# (a sandboxed plugin past its timeout on a loaded machine) are reported,
# not counted: a benchmark reports, it does not gate.
rps() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"$1" -H "$auth" "http://127.0.0.1:$PORT$2")
  if grep -q "Non-2xx" <<<"$out"; then echo "bench-plugins: $(grep Non-2xx <<<"$out" | xargs) on $2" >&2; fi
  awk '/^Requests\/sec/ {print int($2)}' <<<"$out"
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$gw/status"; }

if [ "$MODE" = ratelimit ]; then
  command -v redis-server >/dev/null || { echo "bench-plugins: redis-server is missing: apt-get install redis-server" >&2; exit 1; }
  rport=$((PORT + 100)); gport=$((PORT + 1))
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
  pids+=($!)
  sed -e "s/127.0.0.1:$PORT/127.0.0.1:$gport/" "$work/gateway.toml" >"$work/redis.toml"
  printf '[state]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:%s/0"\n' "$rport" >>"$work/redis.toml"
  "$work/gatewayd" -config "$work/redis.toml" -log-level warn 2>>"$work/gatewayd.log" &
  pids+=($!)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$gport") 2>/dev/null && break; sleep 0.1; done
  rpsat() { local out; out=$(wrk -t2 -c"$CONNS" -d"$2" "http://127.0.0.1:$1$3"); grep -q "Non-2xx" <<<"$out" && { echo "$out" >&2; exit 1; }; awk '/^Requests\/sec/ {print int($2)}' <<<"$out"; }
  for p in /plain/1 /limit/1; do rpsat "$PORT" 3s "$p" >/dev/null; rpsat "$gport" 3s "$p" >/dev/null; done
  echo "wrk -t2 -c$CONNS -d${DURATION}s, $ROUNDS round(s): a rate-limited route (never over the limit) vs none"
  printf '%-6s %10s %14s %14s\n' round plain limit-memory limit-redis
  : >"$work/p"; : >"$work/m"; : >"$work/r"
  for r in $(seq "$ROUNDS"); do
    p=$(rpsat "$PORT" "${DURATION}s" /plain/1); m=$(rpsat "$PORT" "${DURATION}s" /limit/1); rd=$(rpsat "$gport" "${DURATION}s" /limit/1)
    echo "$p" >>"$work/p"; echo "$m" >>"$work/m"; echo "$rd" >>"$work/r"
    printf '%-6s %10s %14s %14s\n' "$r" "$p" "$m" "$rd"
  done
  median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  p=$(median <"$work/p"); m=$(median <"$work/m"); rd=$(median <"$work/r")
  awk -v p="$p" -v m="$m" -v r="$rd" 'BEGIN {printf "median: limit-memory/plain = %.2f, limit-redis/plain = %.2f\n", m/p, r/p}'
  exit 0
fi

if [ "$MODE" = soak ]; then
  rate=$(rps 5s /demo/1)
  secs=$(( REQUESTS / (rate > 0 ? rate : 1) + 1 ))
  slice=$(( secs / 10 > 1 ? secs / 10 : 1 ))
  echo "soak: ~$REQUESTS requests through the demo chain (log, auth, headers) at ~$rate req/s, RSS of gatewayd every ${slice}s"
  echo "after warm-up: $(rss) KiB"
  total=0
  for i in $(seq 10); do
    r=$(rps "${slice}s" /demo/1)
    total=$(( total + r * slice ))
    echo "slice $i: $r req/s, $total requests so far, RSS $(rss) KiB"
  done
  exit 0
fi

# Warm up: plugin instances are created as concurrency asks for them, and
# each verifies the token once before its cache serves it.
for path in /plain/1 /auth/1 /demo/1; do rps 3s "$path" >/dev/null; done

echo "wrk -t2 -c$CONNS -d${DURATION}s, valid RS256 token on every request, $ROUNDS round(s), after a warm-up"
printf '%-6s %10s %10s %10s\n' round plain auth demo
: >"$work/p"; : >"$work/a"; : >"$work/d"
for r in $(seq "$ROUNDS"); do
  p=$(rps "${DURATION}s" /plain/1); a=$(rps "${DURATION}s" /auth/1); d=$(rps "${DURATION}s" /demo/1)
  echo "$p" >>"$work/p"; echo "$a" >>"$work/a"; echo "$d" >>"$work/d"
  printf '%-6s %10s %10s %10s\n' "$r" "$p" "$a" "$d"
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median <"$work/p"); a=$(median <"$work/a"); d=$(median <"$work/d")
awk -v p="$p" -v a="$a" -v d="$d" 'BEGIN {printf "median: auth/plain = %.2f, demo chain/plain = %.2f\n", a/p, d/p}'
