package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// sdkRoute puts the SDK's test guest in front of an echo upstream as
// filters a and b (prefixes "a" and "b"); extra adds keys to both tables.
func sdkRoute(extraA, extraB string) string {
	return wasmRoute(`"a", "b"`, fmt.Sprintf(`
[filters.a]
plugin = "testguest"
config = { prefix = "a" }
%s
[filters.b]
plugin = "testguest"
config = { prefix = "b" }
%s
`, extraA, extraB))
}

func TestLintelState(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, sdkRoute("", ""), map[string]string{"echo": up.URL})
	resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "state")
	want := "ok,v1/true/ok,false,true,true,5,lintel: value is not an integer,false"
	if got := resp.Header.Get("X-A-Result"); got != want {
		t.Errorf("state operations:\n got %s\nwant %s", got, want)
	}
	// The keys live in the filter's namespace of the gateway's store.
	if v, ok, _ := h.State.Get(t.Context(), "a\x00n"); !ok || string(v) != "5" {
		t.Errorf("store has a\\x00n = %q %v", v, ok)
	}
}

// TestLintelStateNamespaces: each filter has its own namespace unless
// they name the same one.
func TestLintelStateNamespaces(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, sdkRoute("", ""), map[string]string{"echo": up.URL})
	resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "iso")
	if resp.Header.Get("X-A-Result") != "none" || resp.Header.Get("X-B-Result") != "none" {
		t.Errorf("isolated filters: a %q, b %q, want none and none", resp.Header.Get("X-A-Result"), resp.Header.Get("X-B-Result"))
	}
	shared := `state_namespace = "shared"`
	h = gatewaytest.StartWASM(t, sdkRoute(shared, shared), map[string]string{"echo": up.URL})
	resp, _ = h.Do("GET", "/echo/x", nil, "X-Case", "iso")
	if resp.Header.Get("X-A-Result") != "none" || resp.Header.Get("X-B-Result") != "a" {
		t.Errorf("shared namespace: a %q, b %q, want none and a", resp.Header.Get("X-A-Result"), resp.Header.Get("X-B-Result"))
	}
}

// TestLintelCASHammer: concurrent requests each increment one counter
// with a CAS loop in the guest; no increment is lost.
func TestLintelCASHammer(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"a"`, "[filters.a]\nplugin = \"testguest\"\nconfig = { prefix = \"a\" }\nmax_instances = 8\n"), map[string]string{"echo": up.URL})
	const n = 200
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "cas-incr"); resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if v, _, _ := h.State.Get(t.Context(), "a\x00cas-counter"); string(v) != strconv.Itoa(n) {
		t.Errorf("counter = %s after %d concurrent CAS increments", v, n)
	}
}

func TestLintelStateTTL(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, sdkRoute("", ""), map[string]string{"echo": up.URL})
	h.Do("GET", "/echo/x", nil, "X-Case", "ttl-set")
	if resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "ttl-get"); resp.Header.Get("X-A-Result") != "true" {
		t.Fatal("key missing right after it was set")
	}
	time.Sleep(1500 * time.Millisecond) // the TTL is 1s
	if resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "ttl-get"); resp.Header.Get("X-A-Result") != "false" {
		t.Error("key outlived its TTL")
	}
}

func TestLintelProperties(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, sdkRoute("", ""), map[string]string{"echo": up.URL})
	_, body := h.Do("GET", "/echo/x", nil, "X-Case", "set-prop")
	e := gatewaytest.DecodeEcho(t, body)
	if e.Header.Get("X-B-Seen-User") != "alice" || e.Header.Get("X-A-Seen-User") != "" {
		t.Errorf("a property set by filter a must reach filter b only after a set it: a %q, b %q",
			e.Header.Get("X-A-Seen-User"), e.Header.Get("X-B-Seen-User"))
	}
	resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "props")
	got := resp.Header.Get("X-A-Result")
	for _, want := range []string{"client_ip=127.0.0.1", "request_id=" + resp.Header.Get("X-Request-Id"), "route=echo", "listener=default", "method=GET", "path=/echo/x", "start_time=20"} {
		if !strings.Contains(got, want) {
			t.Errorf("properties %q lack %q", got, want)
		}
	}
}

func TestLintelCompletionSeesFinalResponse(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(203)
		w.Write([]byte("twelve bytes"))
	})
	h := gatewaytest.StartWASM(t, sdkRoute("", ""), map[string]string{"echo": up.URL})
	resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "complete")
	logs := h.Logs.String()
	want := `msg="request complete" filter=a plugin=testguest request_id=` + resp.Header.Get("X-Request-Id") + ` status=203 bytes_out=12 has_duration=true`
	if !strings.Contains(logs, want) {
		t.Errorf("completion log line missing; want %s in:\n%s", want, logs)
	}
}

func TestLintelOutboundCalls(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	remote := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "jwks")
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-From"))
	})
	remoteHost := strings.TrimPrefix(remote.URL, "http://")
	allowA := fmt.Sprintf("[filters.a.outbound]\nhosts = [%q]\n", remoteHost)
	h := gatewaytest.StartWASM(t, sdkRoute(allowA, ""), map[string]string{"echo": up.URL})
	resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "fetch", "X-Fetch-URL", remote.URL+"/keys")
	if got := resp.Header.Get("X-A-Result"); got != "200,hello guest,jwks" {
		t.Errorf("allowed call: %q", got)
	}
	// b has no allow-list; a may not use POST or another host.
	if got := resp.Header.Get("X-B-Result"); !strings.HasPrefix(got, "error,lintel: call not in the filter's outbound allow-list") {
		t.Errorf("call without an allow-list: %q", got)
	}
	resp, _ = h.Do("GET", "/echo/x", nil, "X-Case", "fetch", "X-Fetch-URL", up.URL+"/other")
	if got := resp.Header.Get("X-A-Result"); !strings.Contains(got, "allow-list") {
		t.Errorf("call to a host not listed: %q", got)
	}
	if remote.Count() != 1 || !strings.Contains(h.Logs.String(), "not in the filter's outbound allow-list") {
		t.Errorf("remote calls %d; refusals must be logged", remote.Count())
	}
}

func TestLintelMetricsAndLogs(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, sdkRoute("", ""), map[string]string{"echo": up.URL})
	for range 3 {
		h.Do("GET", "/echo/x", nil, "X-Case", "metric")
	}
	resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "log")
	families, err := h.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.Metric {
			key := mf.GetName() + labels(m)
			switch {
			case m.Counter != nil:
				got[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				got[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				got[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		`lintel_plugin_testguest_requests_total{case="metric",filter="a"}`: 3,
		`lintel_plugin_testguest_requests_total{case="log",filter="b"}`:    1,
		`lintel_plugin_testguest_level{filter="a"}`:                        42,
		`lintel_plugin_testguest_seconds{filter="b"}`:                      3,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (have %v)", key, got[key], want, got)
		}
	}
	want := `level=INFO msg="structured line" filter=a plugin=testguest request_id=` + resp.Header.Get("X-Request-Id") + ` answer=42`
	if !strings.Contains(h.Logs.String(), want) {
		t.Errorf("structured log line missing; want %s in:\n%s", want, h.Logs.String())
	}
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.Label {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestLintelNowAndAnswer(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, sdkRoute("", ""), map[string]string{"echo": up.URL})
	before := time.Now().UnixMilli()
	resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "now")
	ms, _ := strconv.ParseInt(resp.Header.Get("X-A-Result"), 10, 64)
	if ms < before || ms > time.Now().UnixMilli() {
		t.Errorf("now = %d, outside [%d, now]", ms, before)
	}
	resp, body := h.Do("GET", "/echo/x", nil, "X-Case", "answer")
	if resp.StatusCode != 201 || body != "from the SDK" || resp.Header.Get("X-Answer") != "sdk" {
		t.Errorf("answer: %d %q", resp.StatusCode, body)
	}
}

// TestCounterExample runs the Go SDK's counter example (a per-client
// count in shared state) through gatewayd.
func TestCounterExample(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"counter"`, "[filters.counter]\n"), map[string]string{"echo": up.URL})
	for i := 1; i <= 3; i++ {
		resp, _ := h.Do("GET", "/echo/x", nil)
		if got := resp.Header.Get("X-Request-Count"); got != strconv.Itoa(i) {
			t.Fatalf("request %d: X-Request-Count %q", i, got)
		}
	}
}

// TestLintelRateLimit: the host's GCRA through the SDK: burst 2 admits two
// (remaining 1, then 0), then refuses with a retry time; a burst of 0 is
// a misuse that fails the call (500), not a silent refusal.
func TestLintelRateLimit(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, sdkRoute("", ""), map[string]string{"echo": up.URL})
	for i, want := range []string{"true,1,false,ok", "true,0,false,ok", "false,0,true,ok"} {
		if resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "ratelimit"); resp.Header.Get("X-A-Result") != want {
			t.Errorf("request %d: %q, want %q", i+1, resp.Header.Get("X-A-Result"), want)
		}
	}
	if resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "ratelimit-misuse"); resp.StatusCode != 500 {
		t.Errorf("burst 0: %d, want 500", resp.StatusCode)
	}
	if !strings.Contains(h.Logs.String(), "burst 0 must both be positive") {
		t.Errorf("the misuse is not logged:\n%s", h.Logs.String())
	}
}
