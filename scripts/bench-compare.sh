#!/usr/bin/env bash
# Before and after, in one run: gatewayd and its bundled plugins built
# from an earlier commit and from the working tree, side by side on the
# same upstream, each measured on a plain route and on the four-filter
# chain (access-log, jwt-auth, rate-limit, header-rewrite).
#
#   scripts/bench-compare.sh REV                # 5 interleaved rounds x 5 s
#   DURATION=1 ROUNDS=1 scripts/bench-compare.sh HEAD~3
#
# For each build: req/s on /plain and /chain (medians), the chain's ratio
# to its own plain (median and spread), p99 of each, and gatewayd's peak
# RSS. Only one gatewayd is under load at a time. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:?usage: scripts/bench-compare.sh REV}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-32}
OFFSET=${OFFSET:-23000}
command -v wrk >/dev/null || { echo "bench-compare: wrk is missing: apt-get install wrk" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  git worktree remove --force "$work/base-src" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

git worktree add -q --detach "$work/base-src" "$BASE"
for b in base new; do
  src=.
  [ $b = base ] && src="$work/base-src"
  mkdir -p "$work/$b"
  (cd "$src" && go build -o "$work/$b/" ./cmd/gatewayd && scripts/build-plugins.sh "$work/$b/plugins" >/dev/null)
done
go build -o "$work/" ./cmd/demo-services ./cmd/demo-token
"$work/demo-services" -port-offset "$OFFSET" 2>/dev/null &
pids+=($!)
token=$("$work/demo-token" -key testdata/keys/demo-rsa.pem -ttl 2h)
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$token" >"$work/auth.lua"

declare -A port gw
port[base]=$((OFFSET + 10081))
port[new]=$((OFFSET + 10091))
for b in base new; do
  {
    cat <<TOML
[plugins]
dir = "plugins"
[admin]
listen = ""
[listeners.bench]
listen = "127.0.0.1:${port[$b]}"
TOML
    sed -e "s|{{upstream}}|http://127.0.0.1:$((9104 + OFFSET))|" -e "s|{{log}}|access.log|" \
      -e "s|{{jwks}}|$(realpath testdata/keys/demo-jwks.json)|" testdata/bench/filters.toml
  } >"$work/$b/gateway.toml"
  (cd "$work/$b" && exec ./gatewayd -config gateway.toml -log-level warn 2>gatewayd.log) &
  gw[$b]=$!
  pids+=($!)
done
for b in base new; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/${port[$b]}") 2>/dev/null && break; sleep 0.1; done
  (exec 3<>"/dev/tcp/127.0.0.1/${port[$b]}") 2>/dev/null || { echo "bench-compare: the $b gatewayd did not start:" >&2; cat "$work/$b/gatewayd.log" >&2; exit 1; }
done

# run BUILD ROUTE SECONDS: one wrk run, printing "rps p99_ms".
run() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"$3" --latency -s "$work/auth.lua" "http://127.0.0.1:${port[$1]}$2")
  if grep -q "Non-2xx" <<<"$out"; then echo "bench-compare: $(grep Non-2xx <<<"$out" | xargs) on $1 $2" >&2; fi
  awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    / 99%/ {p99 = ms($2)} /^Requests\/sec/ {rps = $2}
    END {printf "%d %.2f\n", rps, p99}' <<<"$out"
}

runs=("base /plain/1" "base /chain/1" "new /plain/1" "new /chain/1")
for r in "${runs[@]}"; do run $r 2s >/dev/null; done # warm-up
echo "$BASE ($(git rev-parse --short "$BASE")) against the working tree: wrk -t2 -c$CONNS -d${DURATION}s --latency, $ROUNDS interleaved round(s)"
# Each build's chain runs right beside its own plain, and the order
# reverses every other round (base plain, base chain, new plain, new
# chain; then new chain, new plain, base chain, base plain), so a machine
# whose speed drifts moves a ratio's two runs alike.
for round in $(seq "$ROUNDS"); do
  for i in 0 1 2 3; do
    r=${runs[$(( round % 2 ? i : 3 - i ))]}
    echo "$round $r $(run $r "${DURATION}s")" >>"$work/results"
  done
done
for b in base new; do echo "rss $b $(awk '/VmHWM/ {print $2}' "/proc/${gw[$b]}/status")" >>"$work/results"; done
awk '
  function median(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } return a[int((n + 1) / 2)] }
  function lo(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
  function hi(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
  $1 == "rss" { rss[$2] = $3; next }
  { rps[$2, $3, $1] = $4; p99[$2, $3, $1] = $5; rounds = $1 }
  END {
    printf "%-5s %12s %12s %22s %14s %14s %10s\n", "build", "plain req/s", "chain req/s", "chain x plain (spread)", "plain p99 ms", "chain p99 ms", "peak RSS"
    split("base new", bs, " ")
    for (i = 1; i <= 2; i++) {
      b = bs[i]
      for (k = 1; k <= rounds; k++) {
        pr[k] = rps[b, "/plain/1", k]; cr[k] = rps[b, "/chain/1", k]; ratio[k] = cr[k] / pr[k]
        pp[k] = p99[b, "/plain/1", k]; cp[k] = p99[b, "/chain/1", k]
      }
      printf "%-5s %12d %12d %9.2f %12s %14.2f %14.2f %6d MiB\n", b, median(pr, rounds), median(cr, rounds), median(ratio, rounds),
        sprintf("(%.2f-%.2f)", lo(ratio, rounds), hi(ratio, rounds)), median(pp, rounds), median(cp, rounds), rss[b] / 1024
    }
  }' "$work/results"
