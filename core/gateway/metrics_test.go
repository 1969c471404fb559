package gateway

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

func TestRequestMetrics(t *testing.T) {
	up := newUpstream(t, nil)
	h := start(t, ordersRoute, map[string]string{"orders": up.URL})
	h.do("GET", "/api/v1/orders/1", nil)
	h.do("GET", "/api/v1/orders/2", nil)
	h.do("DELETE", "/api/v1/orders/2", nil)
	h.do("BREW", "/nowhere", nil)
	for labels, want := range map[[4]string]float64{
		{"default", "orders", "GET", "200"}: 2,
		{"default", "", "DELETE", "405"}:    1,
		{"default", "", "other", "404"}:     1,
	} {
		got := testutil.ToFloat64(h.g.metrics.requests.WithLabelValues(labels[:]...))
		if got != want {
			t.Errorf("lintel_requests_total%v = %v, want %v", labels, got, want)
		}
	}
	if n := testutil.CollectAndCount(h.g.metrics.duration); n != 2 {
		t.Errorf("%d duration series, want 2 (orders and no route)", n)
	}
}

// TestFailureMetrics: what operators alert on is counted: a refused
// upstream (and the retry to its twin), a failed aggregation part, a
// plugin that traps and one that runs out of time.
func TestFailureMetrics(t *testing.T) {
	up := newUpstream(t, nil)
	dead := "http://" + freeAddr(t)
	h := startWASM(t, `
[filters.trap]
on_error = "allow"
[filters.loop]
timeout = "50ms"
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
		h.do("GET", "/pair", nil, "X-Hostile", "1")
	}
	h.do("GET", "/agg", nil)
	text := gather(t, h)
	for _, want := range []string{
		`lintel_upstream_errors_total{kind="connect",service="pair"}`,
		`lintel_upstream_retries_total{service="pair"}`,
		`lintel_upstream_errors_total{kind="connect",service="gone"} 1`,
		`lintel_aggregate_part_failures_total{part="b",route="agg"} 1`,
		`lintel_plugin_failures_total{filter="trap",kind="trap"} 2`,
		`lintel_plugin_failures_total{filter="loop",kind="timeout"} 2`,
		`lintel_plugin_call_duration_seconds_count{filter="trap"}`,
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
	h := start(t, "[services.gone]\ntargets = [\"{{dead}}\"]\nfail_cooldown = \"300ms\"\n[[routes]]\npath = \"/x\"\nservice = \"gone\"\n", map[string]string{"dead": "http://" + freeAddr(t)})
	if !h.g.Ready() {
		t.Fatal("not ready before any failure")
	}
	if resp, _ := h.do("GET", "/x", nil); resp.StatusCode != 502 {
		t.Fatalf("dead target: %d", resp.StatusCode)
	}
	if h.g.Ready() {
		t.Error("ready with the only target of a route down")
	}
	time.Sleep(350 * time.Millisecond)
	if !h.g.Ready() {
		t.Error("not ready after the cool-down")
	}
}

func gather(t *testing.T, h *harness) string {
	t.Helper()
	var b strings.Builder
	mfs, err := h.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&b, mf)
	}
	return b.String()
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
