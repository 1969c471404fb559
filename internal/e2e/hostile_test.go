package e2e

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// The hostile guests of testdata/wasm, each through gatewayd: what the
// client gets, and that the gateway's own resources stayed within the
// sandbox's bounds.

// TestLogBombStaysWithinTheLogBudget: log_kv capped its message but not its
// keys and values (one call wrote a 1 MiB line), and the host's own
// warnings about refused calls were not counted (one request wrote 20,000
// lines, 82 MiB).
func TestLogBombStaysWithinTheLogBudget(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"bomb"`, "[filters.bomb]\nplugin = \"logbomb\"\ntimeout = \"10s\"\nmemory_limit = \"2MiB\"\n"), map[string]string{"echo": up.URL})
	for range 2 {
		if resp, _ := h.Do("GET", "/echo/a", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// Two requests: 32 KiB of the guest's lines each, one line saying
	// how many were dropped, and the gateway's own few.
	n := len(h.Logs.String())
	t.Logf("log bomb: two requests, %d KiB of log in all", n>>10)
	if n > 80<<10 {
		t.Errorf("the log holds %d KiB after two requests", n>>10)
	}
}

// TestMetricBombIsCapped: one request created 20,000 label series that
// outlived the request and reloads, all served on /metrics; a label value
// that was not UTF-8 panicked inside the host call.
func TestMetricBombIsCapped(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"bomb"`, "[filters.bomb]\nplugin = \"metricbomb\"\ntimeout = \"10s\"\n"), map[string]string{"echo": up.URL})
	for range 2 {
		if resp, _ := h.Do("GET", "/echo/a", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	text := h.Gather()
	t.Logf("metric bomb: two requests asked for 40,000 series; %d served", strings.Count(text, "lintel_plugin_bomb{"))
	if n := strings.Count(text, "lintel_plugin_bomb{"); n != 1000 {
		t.Errorf("%d series of the plugin's metric, want the cap, 1000", n)
	}
	if !strings.Contains(text, `lintel_plugin_metric_series_refused_total{filter="bomb"} 38002`) {
		t.Errorf("refused updates not counted (2 x 19,000 past the cap, 2 not UTF-8):\n%s", grepLines(text, "refused"))
	}
	if n := strings.Count(h.Logs.String(), "plugin metric series refused"); n != 1 {
		t.Errorf("%d warnings about refused series, want 1", n)
	}
}

func grepLines(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSleeperEndsByItsTimeout: a guest sleeping through WASI poll_oneoff
// for 3 s under a 100 ms timeout ran 3.0 s (wazero sleeps with
// time.Sleep and no context). The sleep ends by the call's deadline and
// fails the call as a timeout.
func TestSleeperEndsByItsTimeout(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"sleep"`, "[filters.sleep]\nplugin = \"sleeper\"\ntimeout = \"100ms\"\n"), map[string]string{"echo": up.URL})
	start := time.Now()
	resp, _ := h.Do("GET", "/echo/a", nil)
	took := time.Since(start)
	t.Logf("sleeper: a 3 s sleep under a 100 ms timeout answered %d after %v", resp.StatusCode, took.Round(time.Millisecond))
	if resp.StatusCode != 500 || took > 2*time.Second {
		t.Errorf("status %d after %v; want 500 near the 100ms timeout, far from the 3s sleep", resp.StatusCode, took)
	}
	if !strings.Contains(h.Gather(), `lintel_plugin_failures_total{filter="sleep",kind="timeout"} 1`) {
		t.Error("not counted as a timeout")
	}
	if up.Count() != 0 {
		t.Error("the request went on")
	}
}

// TestSlowBodyHoldsNoInstance: read_body waited on the client for up to
// read_timeout, so a client that stalled mid-body held the filter's only
// instance, and the next request got 503 "filter is busy". A guest that
// reads bodies (it enables feature_buffer_request when it initialises)
// now gets the body read before it gets an instance.
func TestSlowBodyHoldsNoInstance(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"body"`, "[filters.body]\nplugin = \"bodyreader\"\nmax_instances = 1\npool_timeout = \"300ms\"\n"), map[string]string{"echo": up.URL})
	conn, err := net.Dial("tcp", h.Addr("default"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 10 of 100 bytes, then nothing.
	fmt.Fprint(conn, "POST /echo/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	time.Sleep(200 * time.Millisecond)
	for i := range 3 {
		resp, body := h.Do("POST", "/echo/fast", strings.NewReader("whole body"))
		if resp.StatusCode != 200 || gatewaytest.DecodeEcho(t, body).Body != "whole body" {
			t.Fatalf("request %d beside a stalled upload: %d %s", i, resp.StatusCode, body)
		}
	}
}

// TestCopyBombFailsAtTheFiltersLimits: a plugin limited to 16 MiB of
// memory that called write_body in a loop made gatewayd hold 512 MiB for
// one call; header values, properties and state keys were as unbounded.
// Each now fails the call at the filter's limits ([filters.NAME.limits]),
// counted as kind "limit", and the host's heap stays far from what the
// guest asked for.
func TestCopyBombFailsAtTheFiltersLimits(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"bomb"`, "[filters.bomb]\nplugin = \"copybomb\"\ntimeout = \"10s\"\nmemory_limit = \"2MiB\"\n"), map[string]string{"echo": up.URL})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, attack := range []string{"body", "headers", "properties", "state"} {
		resp, body := h.Do("GET", "/echo/a", nil, "X-Attack", attack)
		if resp.StatusCode != 500 || up.Count() != 0 {
			t.Errorf("%s: %d %s (upstream reached %d times)", attack, resp.StatusCode, body, up.Count())
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The body attack alone asked for 512 MiB; the limits allow 16 MiB.
	grew := int64(after.TotalAlloc-before.TotalAlloc) >> 20
	t.Logf("copy bomb: four attacks, the host allocated %d MiB in all", grew)
	if grew > 200 {
		t.Errorf("the host allocated %d MiB during the attacks", grew)
	}
	if !strings.Contains(h.Gather(), `lintel_plugin_failures_total{filter="bomb",kind="limit"} 4`) {
		t.Errorf("not counted as limits:\n%s", grepLines(h.Gather(), "failures"))
	}
	for _, want := range []string{"limits.body", "limits.headers", "limits.properties", "limits.state_key"} {
		if !strings.Contains(h.Logs.String(), want) {
			t.Errorf("the log does not name %s", want)
		}
	}
}

// TestRecursionBombStopsAtTheCallDepth: a guest with a 1 MiB memory limit
// that recursed without end made wazero grow its stack on the Go heap to
// ~161 MiB over ~1.2 s before "stack overflow". The meter's depth bound
// (limits.call_depth) stops it within a few MiB and milliseconds.
func TestRecursionBombStopsAtTheCallDepth(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"bomb"`, "[filters.bomb]\nplugin = \"recurse\"\nmemory_limit = \"1MiB\"\n"), map[string]string{"echo": up.URL})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for range 3 {
		resp, body := h.Do("GET", "/echo/a", nil, "X-Hostile", "1")
		if resp.StatusCode != 500 || up.Count() != 0 {
			t.Fatalf("%d %s (upstream reached %d times)", resp.StatusCode, body, up.Count())
		}
	}
	took := time.Since(start)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.TotalAlloc-before.TotalAlloc) >> 20
	t.Logf("recursion bomb: three requests answered in %v; the host allocated %d MiB", took.Round(time.Millisecond), grew)
	if grew > 40 {
		t.Errorf("the host allocated %d MiB for three recursion bombs", grew)
	}
	if !strings.Contains(h.Gather(), `lintel_plugin_failures_total{filter="bomb",kind="stack"} 3`) {
		t.Errorf("not counted as kind stack:\n%s", grepLines(h.Gather(), "failures"))
	}
	if !strings.Contains(h.Logs.String(), "limits.call_depth") {
		t.Error("the log does not name limits.call_depth")
	}
	if resp, _ := h.Do("GET", "/echo/a", nil); resp.StatusCode != 200 {
		t.Errorf("an ordinary request after the bombs: %d", resp.StatusCode)
	}
}

// TestEndlessLoopRunsOutOfFuel: the guest's own work is bounded by fuel,
// not by the clock, so a loop is stopped after the same work however busy
// the machine is, and no goroutine watches each call.
func TestEndlessLoopRunsOutOfFuel(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"loop"`, "[filters.loop]\nplugin = \"loop\"\nlimits = { fuel = 5000000 }\n"), map[string]string{"echo": up.URL})
	start := time.Now()
	resp, body := h.Do("GET", "/echo/a", nil, "X-Hostile", "1")
	t.Logf("endless loop: answered %d after %v with limits.fuel = 5,000,000", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	if resp.StatusCode != 500 || up.Count() != 0 {
		t.Fatalf("%d %s (upstream reached %d times)", resp.StatusCode, body, up.Count())
	}
	if !strings.Contains(h.Gather(), `lintel_plugin_failures_total{filter="loop",kind="fuel"} 1`) {
		t.Errorf("not counted as kind fuel:\n%s", grepLines(h.Gather(), "failures"))
	}
	if !strings.Contains(h.Logs.String(), "limits.fuel") {
		t.Error("the log does not name limits.fuel")
	}
}

// TestAttackerChosenRateLimitKeysAreHashed: rate-limit keyed on
// header:NAME stored the raw header value as its key: 5,000 distinct 60
// KiB keys held 313 MiB until the minute's sweep. A key built from what a
// client sends is kept to its SHA-256 when long, so the store holds
// bytes per client, not per byte the client sent.
func TestAttackerChosenRateLimitKeysAreHashed(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartBundled(t, `
[filters.limit]
plugin = "rate-limit"
config = { key = ["header:X-Key"], rate = 1000, period = "1s", burst = 1000 }
[services.echo]
targets = ["{{echo}}"]
[[routes]]
path = "/l/*rest"
service = "echo"
filters = ["limit"]
`, map[string]string{"echo": up.URL})
	const n, size = 100, 40 << 10
	for i := range n {
		key := fmt.Sprintf("%05d", i) + strings.Repeat("k", size)
		if resp, _ := h.Do("GET", "/l/x", nil, "X-Key", key); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	used := h.State.Used("limit")
	t.Logf("%d distinct %d KiB keys: the store holds %d bytes for them (raw keys: %d KiB)", n, size>>10, used, n*size>>10)
	if used == 0 || used > n*256 {
		t.Errorf("the store holds %d bytes for %d clients, want at most %d (a hashed key and its value each)", used, n, n*256)
	}
}
