package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

func TestRequestMetrics(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})
	h.Do("GET", "/api/v1/orders/1", nil)
	h.Do("GET", "/api/v1/orders/2", nil)
	h.Do("DELETE", "/api/v1/orders/2", nil)
	h.Do("BREW", "/nowhere", nil)
	text := h.Gather()
	for _, want := range []string{
		`lintel_requests_total{listener="default",method="GET",route="orders",status="200"} 2`,
		`lintel_requests_total{listener="default",method="DELETE",route="",status="405"} 1`,
		`lintel_requests_total{listener="default",method="other",route="",status="404"} 1`,
		`lintel_request_duration_seconds_count{listener="default",route="orders"} 2`,
		`lintel_request_duration_seconds_count{listener="default",route=""} 2`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestFailureMetrics: what operators alert on is counted: a refused
// upstream (and the retry to its twin), a failed aggregation part, a
// plugin that traps and one that runs out of time.
func TestFailureMetrics(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	dead := "http://" + gatewaytest.FreeAddr(t)
	h := gatewaytest.StartWASM(t, `
[filters.trap]
on_error = "allow"
[filters.loop]
limits = { fuel = 10000000 }
on_error = "allow"
[services.pair]
targets = ["{{dead}}", "{{up}}"]
[services.gone]
targets = ["{{dead}}"]
[[routes]]
name = "pair"
path = "/pair"
service = "pair"
filters = ["trap", "loop"]
[[routes]]
name = "agg"
path = "/agg"
[routes.aggregate]
parts = [{ key = "a", service = "pair", path = "/a" }, { key = "b", service = "gone", path = "/b", optional = true }]
`, map[string]string{"up": up.URL, "dead": dead})
	for range 2 {
		h.Do("GET", "/pair", nil, "X-Hostile", "1")
	}
	h.Do("GET", "/agg", nil)
	text := h.Gather()
	for _, want := range []string{
		`lintel_upstream_errors_total{kind="connect",service="pair"}`,
		`lintel_upstream_retries_total{on="connect",service="pair"}`,
		// gone's one target refused twice: the request and its retry.
		`lintel_upstream_errors_total{kind="connect",service="gone"} 2`,
		`lintel_aggregate_part_failures_total{part="b",route="agg"} 1`,
		`lintel_plugin_failures_total{filter="trap",kind="trap"} 2`,
		`lintel_plugin_failures_total{filter="loop",kind="fuel"} 2`,
		`lintel_plugin_call_duration_seconds_count{filter="trap"}`,
		// Series users look for: per target latency, sizes, and counters
		// that exist at zero before their first event.
		`lintel_upstream_duration_seconds_count{service="pair",target="` + strings.TrimPrefix(up.URL, "http://") + `"}`,
		`lintel_request_size_bytes_count{listener="default",route="agg"} 1`,
		`lintel_response_size_bytes_count{listener="default",route="pair"} 2`,
		`lintel_upstream_retries_total{on="reset",service="gone"} 0`,
		`lintel_upstream_retries_denied_total{service="gone"} 0`,
		`lintel_upstream_errors_total{kind="timeout",service="pair"} 0`,
		`lintel_aggregate_part_failures_total{part="a",route="agg"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestReadinessFollowsUpstreamHealth: a gateway whose only target for a
// route refused a connection is not ready until the target's cool-down
// ends.
func TestReadinessFollowsUpstreamHealth(t *testing.T) {
	h := gatewaytest.Start(t, "[services.gone]\ntargets = [\"{{dead}}\"]\nfail_cooldown = \"300ms\"\n[[routes]]\npath = \"/x\"\nservice = \"gone\"\n", map[string]string{"dead": "http://" + gatewaytest.FreeAddr(t)})
	if !h.G.Ready() {
		t.Fatal("not ready before any failure")
	}
	if resp, _ := h.Do("GET", "/x", nil); resp.StatusCode != 502 {
		t.Fatalf("dead target: %d", resp.StatusCode)
	}
	if h.G.Ready() {
		t.Error("ready with the only target of a route down")
	}
	time.Sleep(350 * time.Millisecond)
	if !h.G.Ready() {
		t.Error("not ready after the cool-down")
	}
}
