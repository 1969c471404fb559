package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

const retryConfig = `
[listeners.default]
listen = "127.0.0.1:0"
filters = ["log"]
[filters.log]
plugin = "access-log"
output = "{{log}}"
config = { format = "json" }
[services.api]
targets = ["{{flaky}}", "{{a}}", "{{b}}"]
retry = { attempts = 2, on = ["connect", "reset", "503"], backoff = "1ms", max_backoff = "5ms" }
[[routes]]
name = "without"
path = "/without/*rest"
service = "api"
retry = { attempts = 1 }
[[routes]]
name = "with"
path = "/with/*rest"
service = "api"
[[routes]]
name = "orders"
path = "/orders"
methods = ["POST"]
service = "api"
retry = { non_idempotent = true }
`

// TestRetryPolicyWithOneTargetFailingHalf: of three targets, one answers
// 503 to every other request. Without retries the client sees its
// failures; with the policy it sees none, the extra load on the targets
// stays under the budget, and each retried request says so in the access
// log and the metrics. A POST is retried only on the route that allows
// it, with its body whole.
func TestRetryPolicyWithOneTargetFailingHalf(t *testing.T) {
	var flakyHits atomic.Int64
	flaky := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if flakyHits.Add(1)%2 == 0 {
			w.WriteHeader(503)
			return
		}
		gatewaytest.Echo(w, r)
	})
	a, b := gatewaytest.NewUpstream(t, nil), gatewaytest.NewUpstream(t, nil)
	logFile := filepath.Join(t.TempDir(), "access.log")
	h := gatewaytest.StartBundled(t, retryConfig, map[string]string{"flaky": flaky.URL, "a": a.URL, "b": b.URL, "log": logFile})
	hits := func() int { return flaky.Count() + a.Count() + b.Count() }

	const n = 600
	rates := map[string][2]float64{} // error rate, extra upstream load
	for _, route := range []string{"without", "with"} {
		before, failed := hits(), 0
		for i := range n {
			resp, _ := h.Do("GET", fmt.Sprintf("/%s/%d", route, i), nil)
			if resp.StatusCode != 200 {
				failed++
			}
		}
		rates[route] = [2]float64{float64(failed) / n, float64(hits()-before-n) / n}
		t.Logf("%-7s retries: client error rate %.1f%%, extra upstream load %.1f%%", route, 100*rates[route][0], 100*rates[route][1])
	}
	// A third of the requests reach the flaky target, which fails half.
	if r := rates["without"]; r[0] < 0.12 || r[0] > 0.22 || r[1] != 0 {
		t.Errorf("without retries: error rate %.3f, extra load %.3f; want about 1/6 and 0", r[0], r[1])
	}
	// Retries take turns of the round robin too, so the flaky target
	// gets a third of n+R attempts and fails half: R = n/5, within the
	// budget (20% of requests, plus 10 a second).
	if r := rates["with"]; r[0] != 0 || r[1] > 0.21 || r[1] < 0.15 {
		t.Errorf("with retries: error rate %.3f, extra load %.3f; want 0 and about 1/5 (within the 20%% budget)", r[0], r[1])
	}

	// POSTs: each meets the flaky target's 503 in turn, and is sent
	// again, body and all.
	for i := range 6 {
		resp, body := h.Do("POST", "/orders", strings.NewReader(fmt.Sprintf(`{"order":%d}`, i)))
		if resp.StatusCode != 200 || gatewaytest.DecodeEcho(t, body).Body != fmt.Sprintf(`{"order":%d}`, i) {
			t.Errorf("POST %d: %d %s", i, resp.StatusCode, body)
		}
	}

	if m := h.Gather(); !strings.Contains(m, `lintel_upstream_retries_total{on="503",service="api"}`) {
		t.Errorf("no retry counted:\n%s", m)
	}
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 2*n+6 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines = readJSONLines(t, logFile)
	}
	retried := 0
	for _, l := range lines {
		if l["retries"] != nil {
			retried++
			if l["retries"] != float64(1) || l["status"] != float64(200) || l["route"] == "without" {
				t.Errorf("log line of a retried request: %v", l)
			}
		}
	}
	if want := int(rates["with"][1]*n + 0.5); retried < want {
		t.Errorf("%d log lines say retried, want at least %d", retried, want)
	}
}
