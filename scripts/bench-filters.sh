#!/usr/bin/env bash
# What the bundled filters cost, against plain Lintel in the same run.
#
#   scripts/bench-filters.sh                   # 5 interleaved rounds x 5 s, each route beside a run of /plain
#   DURATION=1 ROUNDS=1 scripts/bench-filters.sh
#   MODE=burst scripts/bench-filters.sh        # a cold gateway, 2,000 requests over 64 connections
#   MODE=soak REQUESTS=1000000 scripts/bench-filters.sh
#   MODE=ratelimit scripts/bench-filters.sh    # rate-limited route, memory vs Redis
#
# Routes (testdata/bench/filters.toml), all to the same upstream: /plain
# (no filter); each bundled plugin alone with its default settings: /jwt
# (a valid RS256 token, verified-token cache on), /jwt-verify (cache off:
# every request verifies the signature, as distinct tokens would), /limit
# (rate-limit, a limit never reached), /rewrite (header-rewrite), /log
# (access-log to a file); and /chain, all four (access-log, jwt-auth,
# rate-limit, header-rewrite). Every plugin runs sandboxed and metered, as
# gateway.toml runs them.
# For each route, over the rounds: req/s as a ratio to the run of /plain
# beside it (median and spread), p50 and p99 (median, and p99's spread),
# gatewayd's CPU time per request (from /proc), and gatewayd's RSS at the
# end and at its peak. /plain's own line is over all its runs.
# Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-32}
MODE=${MODE:-ratio}
REQUESTS=${REQUESTS:-1000000}
OFFSET=${OFFSET:-22000}
PORT=${PORT:-31081}
command -v wrk >/dev/null || { echo "bench-filters: wrk is missing: apt-get install wrk" >&2; exit 1; }

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

{
  cat <<TOML
[plugins]
dir = "plugins"
[admin]
listen = "127.0.0.1:$((PORT + 2))"
[listeners.bench]
listen = "127.0.0.1:$PORT"
TOML
  sed -e "s|{{upstream}}|http://127.0.0.1:$orders|" -e "s|{{log}}|access.log|" -e "s|{{jwks}}|$jwks|" testdata/bench/filters.toml
} >"$work/gateway.toml"
"$work/gatewayd" -config "$work/gateway.toml" -log-level warn 2>"$work/gatewayd.log" &
gw=$!
pids+=($gw)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || { echo "bench-filters: gatewayd did not start:" >&2; cat "$work/gatewayd.log" >&2; exit 1; }
token=$("$work/demo-token" -key testdata/keys/demo-rsa.pem -ttl 2h)
auth="Authorization: Bearer $token"

if [ "$MODE" = burst ]; then
  # A cold gateway: the configured minimum of instances exists, nothing
  # else. 64 connections send 2,000 requests through the chain at once.
  n=$(( (2000 + 63) / 64 ))
  urls=()
  for _ in $(seq "$n"); do urls+=(-o /dev/null "http://127.0.0.1:$PORT/chain/1"); done
  start=$(date +%s.%N)
  cpids=()
  for c in $(seq 64); do
    curl -s -w '%{http_code}\n' -H "$auth" "${urls[@]}" >"$work/burst.$c" &
    cpids+=($!)
  done
  wait "${cpids[@]}"
  end=$(date +%s.%N)
  cat "$work"/burst.* | sort | uniq -c | awk -v t="$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')" -v rss="$(awk '/VmRSS/ {print $2}' "/proc/$gw/status")" '
    {n += $1; if ($2 >= 500) bad += $1; codes = codes sprintf(" %s x%d", $2, $1)}
    END {printf "cold burst: %d requests over 64 connections in %.2f s; 5xx: %d; answers:%s; RSS after %d MiB\n", n, t, bad, codes, rss/1024}'
  exit 0
fi
curl -fsS -H "$auth" "http://127.0.0.1:$PORT/chain/1" >/dev/null

# run ROUTE SECONDS: one wrk run, printing "rps p50_ms p99_ms cpu_us_per_req".
# Answers other than 2xx are reported, not counted: a benchmark reports,
# it does not gate.
run() {
  local out t0 t1
  t0=$(awk '{print $14 + $15}' "/proc/$gw/stat")
  out=$(wrk -t2 -c"$CONNS" -d"$2" --latency -s "$work/auth.lua" "http://127.0.0.1:$PORT$1")
  t1=$(awk '{print $14 + $15}' "/proc/$gw/stat")
  if grep -q "Non-2xx" <<<"$out"; then echo "bench-filters: $(grep Non-2xx <<<"$out" | xargs) on $1" >&2; fi
  awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    / 50%/ {p50 = ms($2)} / 99%/ {p99 = ms($2)}
    /requests in/ {n = $1}
    /^Requests\/sec/ {rps = $2}
    END {printf "%d %.2f %.2f %.1f\n", rps, p50, p99, (n > 0 ? ticks * 1e6 / hz / n : 0)}' <<<"$out"
}
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$token" >"$work/auth.lua"

rss() { awk '/VmRSS/ {print $2}' "/proc/$gw/status"; }

if [ "$MODE" = ratelimit ]; then
  command -v redis-server >/dev/null || { echo "bench-filters: redis-server is missing: apt-get install redis-server" >&2; exit 1; }
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
  rate=$(run /chain/1 5s | cut -d" " -f1)
  # Planned at nine tenths of the measured rate, so that the run reaches
  # REQUESTS even when the machine is slower than during the estimate.
  secs=$(( REQUESTS * 10 / 9 / (rate > 0 ? rate : 1) + 1 ))
  slice=$(( secs / 10 > 1 ? secs / 10 : 1 ))
  echo "soak: ~$REQUESTS requests through the chain (log, jwt, limit, rewrite) at ~$rate req/s, RSS of gatewayd every ${slice}s"
  echo "after warm-up: $(rss) KiB"
  total=0
  for i in $(seq 10); do
    r=$(run /chain/1 "${slice}s" | cut -d" " -f1)
    total=$(( total + r * slice ))
    echo "slice $i: $r req/s, $total requests so far, RSS $(rss) KiB"
  done
  exit 0
fi

routes=(/jwt/1 /jwt-verify/1 /limit/1 /rewrite/1 /log/1 /chain/1)
# Warm up: instances are created as concurrency asks for them, and jwt
# verifies the token once per instance before its cache serves it.
for r in /plain/1 "${routes[@]}"; do run "$r" 2s >/dev/null; done
echo "wrk -t2 -c$CONNS -d${DURATION}s --latency, a valid RS256 token on every request, $ROUNDS interleaved round(s), after a warm-up"
echo "(each route's ratio is to a run of /plain right beside it, before it in odd rounds and after it in even ones)"
# Each round starts at another route, so no route always follows the
# same one; each route is paired with its own run of /plain, so a
# machine whose speed drifts (this one is shared) moves both alike.
n=${#routes[@]}
for round in $(seq "$ROUNDS"); do
  for i in $(seq 0 $((n - 1))); do
    r=${routes[$(( (i + round - 1) % n ))]}
    if (( round % 2 )); then
      p=$(run /plain/1 "${DURATION}s"); x=$(run "$r" "${DURATION}s")
    else
      x=$(run "$r" "${DURATION}s"); p=$(run /plain/1 "${DURATION}s")
    fi
    echo "/plain/1 $p ${p%% *}" >>"$work/results"
    echo "$r $x ${p%% *}" >>"$work/results"
  done
done
# Fields: route rps p50 p99 cpu_us paired_plain_rps.
awk -v rss="$(awk '/VmRSS/ {print $2}' "/proc/$gw/status")" -v hwm="$(awk '/VmHWM/ {print $2}' "/proc/$gw/status")" '
  function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
  function median(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  function lo(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
  function hi(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
  { route = $1; if (!(route in runs)) order[++nr] = route
    k = ++runs[route]; rps[route, k] = $2; p50[route, k] = $3; p99[route, k] = $4; cpu[route, k] = $5; ratio[route, k] = $2 / $6 }
  END {
    printf "%-14s %8s %16s %8s %9s %16s %11s\n", "route", "req/s", "x plain (spread)", "p50 ms", "p99 ms", "p99 spread", "CPU us/req"
    for (i = 1; i <= nr; i++) {
      r = order[i]; m = runs[r]
      for (k = 1; k <= m; k++) { q[k] = ratio[r, k]; a[k] = rps[r, k]; b[k] = p50[r, k]; c[k] = p99[r, k]; d[k] = cpu[r, k] }
      spread = sprintf("%.2f-%.2f", lo(q, m), hi(q, m)); pspread = sprintf("%.1f-%.1f", lo(c, m), hi(c, m))
      printf "%-14s %8d %5.2f %10s %8.2f %9.2f %16s %11.1f\n", r, median(a, m), median(q, m), spread, median(b, m), median(c, m), pspread, median(d, m)
    }
    printf "gatewayd RSS: %d MiB now, %d MiB at its peak\n", rss / 1024, hwm / 1024
  }' "$work/results"
heap=$(curl -fsS "http://127.0.0.1:$((PORT + 2))/metrics" | awk '/^go_memstats_heap_inuse_bytes / {printf "%d", $2 / 1048576}')
code=$(awk '/^[0-9a-f]+-[0-9a-f]+ / {x = ($2 ~ /x/)} /^Rss:/ && x {kb += $2} END {printf "%d", kb / 1024}' "/proc/$gw/smaps")
echo "of which: Go heap in use $heap MiB, executable mappings (gatewayd and compiled plugins) $code MiB; the rest is mostly guests' linear memory"
echo "plugin instances alive: $(curl -fsS "http://127.0.0.1:$((PORT + 2))/metrics" | awk -F'[{}"]' '/^lintel_plugin_instances\{/ {n[$3] += $NF} END {for (f in n) printf "%s %d, ", f, n[f]}' | sed 's/, $//')"
