#!/usr/bin/env bash
# Soak: millions of requests through one instance of a Go SDK guest that
# allocates on every request, with recycling by request count turned off.
# Prints the guest's linear memory every tenth of the run; it must stay
# flat (the SDK collects garbage every 2,000 requests).
#
#   scripts/soak-go-guest.sh            # 2,000,000 requests
#   REQUESTS=200000 scripts/soak-go-guest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LINTEL_SOAK=${REQUESTS:-2000000} go test ./core/wasm -run TestSoakGoGuestMemory -count=1 -v -timeout 60m |
  grep -E 'after|ok|FAIL|PASS'
