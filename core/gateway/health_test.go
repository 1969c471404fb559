package gateway_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// TestActiveHealthCheck: a target that fails its health check gets no
// requests, though its connections still work (the passive check alone
// would keep it), and gets them again once it passes; the state is in
// /metrics.
func TestActiveHealthCheck(t *testing.T) {
	var sick atomic.Bool
	probes := make(chan string, 100)
	handler := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			select {
			case probes <- r.Header.Get("User-Agent"):
			default:
			}
			if sick.Load() {
				w.WriteHeader(503)
			}
		}
	}
	a := gatewaytest.NewUpstream(t, handler)
	b := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, `
[services.api]
targets = ["{{a}}", "{{b}}"]
health_check = { path = "/healthz", interval = "20ms", timeout = "10ms", healthy = 2, unhealthy = 2 }
[[routes]]
path = "/api/*rest"
service = "api"
`, map[string]string{"a": a.URL, "b": b.URL})
	if ua := <-probes; ua != "lintel-health-check" {
		t.Errorf("probe User-Agent %q", ua)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s\n%s", what, h.Gather())
			}
		}
	}
	metric := func(v string) bool {
		return strings.Contains(h.Gather(), `lintel_upstream_target_healthy{service="api",target="`+strings.TrimPrefix(a.URL, "http://")+`"} `+v)
	}
	sick.Store(true)
	waitFor("a is taken out", func() bool { return metric("0") })
	apiCount := func() int {
		reqs, _ := a.Requests()
		n := 0
		for _, r := range reqs {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				n++
			}
		}
		return n
	}
	before := apiCount()
	for range 10 {
		if resp, _ := h.Do("GET", "/api/x", nil); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if got := apiCount() - before; got != 0 {
		t.Errorf("a got %d requests while failing its health check", got)
	}
	sick.Store(false)
	waitFor("a is back", func() bool { return metric("1") })
	before = apiCount()
	for range 10 {
		h.Do("GET", "/api/x", nil)
	}
	if got := apiCount() - before; got != 5 {
		t.Errorf("a got %d of 10 requests once healthy again, want 5", got)
	}
}
