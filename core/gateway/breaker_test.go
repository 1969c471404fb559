package gateway_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// TestBreakerOpensAndRecovers: a target failing with 5xx opens its
// circuit after the configured failures in a row and gets nothing while
// open; after open_for one request probes it, and once it answers well
// the circuit closes and it gets its share again. /upstreams and /metrics
// show the state.
func TestBreakerOpensAndRecovers(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	bad := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(503)
		}
	})
	good := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, `
[services.api]
targets = ["{{bad}}", "{{good}}"]
breaker = { failures = 2, open_for = "100ms" }
[[routes]]
path = "/*rest"
service = "api"
`, map[string]string{"bad": bad.URL, "good": good.URL})
	for range 4 { // round robin: bad gets two, and opens
		h.Do("GET", "/x", nil)
	}
	if bad.Count() != 2 {
		t.Fatalf("bad got %d requests, want 2", bad.Count())
	}
	if st := h.G.Upstreams()["api"].Targets[0]; st.Circuit != "open" {
		t.Fatalf("bad's circuit is %q", st.Circuit)
	}
	if m := h.Gather(); !strings.Contains(m, `lintel_upstream_circuit_open{service="api",target="`+strings.TrimPrefix(bad.URL, "http://")+`"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}
	for range 10 {
		if resp, _ := h.Do("GET", "/x", nil); resp.StatusCode != 200 {
			t.Errorf("status %d while a healthy target is left", resp.StatusCode)
		}
	}
	if bad.Count() != 2 {
		t.Errorf("bad got %d requests while its circuit was open", bad.Count()-2)
	}
	failing.Store(false)
	for deadline := time.Now().Add(5 * time.Second); h.G.Upstreams()["api"].Targets[0].Circuit != "closed"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the circuit never closed")
		}
		h.Do("GET", "/x", nil)
	}
	before := bad.Count()
	for range 10 {
		h.Do("GET", "/x", nil)
	}
	if got := bad.Count() - before; got != 5 {
		t.Errorf("bad got %d of 10 once closed, want 5", got)
	}
}

// TestBreakerFailsFastAndLimits: with every circuit open the gateway
// answers 503 with Retry-After itself, without calling the service; and
// beyond max_concurrent requests in flight it answers 503 at once.
func TestBreakerFailsFastAndLimits(t *testing.T) {
	down := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	release := make(chan struct{})
	slow := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	h := gatewaytest.Start(t, `
[services.down]
targets = ["{{down}}"]
breaker = { failures = 3, open_for = "30s" }
[services.slow]
targets = ["{{slow}}"]
max_concurrent = 1
[[routes]]
path = "/down/*rest"
service = "down"
[[routes]]
path = "/slow/*rest"
service = "slow"
`, map[string]string{"down": down.URL, "slow": slow.URL})
	for range 3 {
		h.Do("GET", "/down/x", nil)
	}
	resp, body := h.Do("GET", "/down/x", nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "30" || !strings.Contains(body, "circuit is open") || down.Count() != 3 {
		t.Errorf("open circuit: %d Retry-After %q %s (upstream called %d times)", resp.StatusCode, resp.Header.Get("Retry-After"), body, down.Count())
	}

	go func() {
		if resp, err := http.Get(h.URL() + "/slow/held"); err == nil {
			resp.Body.Close()
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); slow.Count() == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	resp, body = h.Do("GET", "/slow/x", nil)
	held := h.Gather()
	close(release)
	if want := `lintel_upstream_requests{service="slow",state="in_flight"} 1`; !strings.Contains(held, want) {
		t.Errorf("missing %s while one request is held", want)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "max_concurrent") || slow.Count() != 1 {
		t.Errorf("over max_concurrent: %d Retry-After %q %s (upstream called %d times)", resp.StatusCode, resp.Header.Get("Retry-After"), body, slow.Count())
	}
	m := h.Gather()
	for _, want := range []string{`lintel_upstream_refused_total{reason="circuit_open",service="down"} 1`, `lintel_upstream_refused_total{reason="max_concurrent",service="slow"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("missing %s", want)
		}
	}
}
