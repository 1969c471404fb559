package e2e

import (
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/gateway"
	"github.com/lintelhq/lintel/core/wasm"
	"github.com/lintelhq/lintel/internal/gatewaytest"
	"github.com/lintelhq/lintel/internal/testbuild"
	"github.com/lintelhq/lintel/internal/testlog"
)

func exampleRoute(filter, table string) string {
	return table + "\n[services.echo]\ntargets = [\"{{echo}}\"]\n[[routes]]\npath = \"/*rest\"\nservice = \"echo\"\nfilters = [\"" + filter + "\"]\n"
}

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

func TestExampleTraceContextC(t *testing.T) {
	dir := testbuild.Example(t, "trace-context")
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartPlugins(t, dir, exampleRoute("trace", "[filters.trace]\nplugin = \"trace-context\""), map[string]string{"echo": up.URL})

	// No traceparent: a new trace, sampled.
	resp, _ := h.Do("GET", "/a", nil)
	m := traceparentRE.FindStringSubmatch(up.Last().Header.Get("Traceparent"))
	if m == nil || m[3] != "01" || strings.Trim(m[1], "0") == "" {
		t.Fatalf("upstream traceparent %q", up.Last().Header.Get("Traceparent"))
	}
	if got := resp.Header.Get("X-Trace-Id"); got != m[1] {
		t.Errorf("X-Trace-Id %q, want the trace id %q", got, m[1])
	}
	first := m[1]
	h.Do("GET", "/a", nil)
	if m := traceparentRE.FindStringSubmatch(up.Last().Header.Get("Traceparent")); m == nil || m[1] == first {
		t.Errorf("a second request without traceparent got trace %v, want a new one", m)
	}

	// A valid one: the trace and its flags carry on, under a new span.
	const in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	resp, _ = h.Do("GET", "/b", nil, "Traceparent", in, "Tracestate", "vendor=x")
	m = traceparentRE.FindStringSubmatch(up.Last().Header.Get("Traceparent"))
	if m == nil || m[1] != "4bf92f3577b34da6a3ce929d0e0e4736" || m[2] == "00f067aa0ba902b7" || m[3] != "00" {
		t.Errorf("valid traceparent %s became %q", in, up.Last().Header.Get("Traceparent"))
	}
	if up.Last().Header.Get("Tracestate") != "vendor=x" || resp.Header.Get("X-Trace-Id") != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("tracestate %q, X-Trace-Id %q", up.Last().Header.Get("Tracestate"), resp.Header.Get("X-Trace-Id"))
	}

	// Invalid ones start a new trace and drop the tracestate.
	for _, bad := range []string{
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent id
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"garbage",
	} {
		h.Do("GET", "/c", nil, "Traceparent", bad, "Tracestate", "vendor=x")
		m := traceparentRE.FindStringSubmatch(up.Last().Header.Get("Traceparent"))
		if m == nil || m[1] == "4bf92f3577b34da6a3ce929d0e0e4736" || up.Last().Header.Get("Tracestate") != "" {
			t.Errorf("invalid %q: upstream got traceparent %q, tracestate %q", bad, up.Last().Header.Get("Traceparent"), up.Last().Header.Get("Tracestate"))
		}
	}
}

func TestExampleIPFilterRust(t *testing.T) {
	dir := testbuild.Example(t, "ip-filter")
	for _, c := range []struct {
		name, listener, config string
		header                 []string
		status                 int
	}{
		{"denied range", "", `deny = ["127.0.0.0/8"]`, nil, 403},
		{"not in allow", "", `allow = ["10.0.0.0/8", "2001:db8::/32"]`, nil, 403},
		{"in allow", "", `allow = ["10.0.0.0/8", "127.0.0.1/32"]`, nil, 200},
		{"deny wins over allow", "", `allow = ["127.0.0.0/8"], deny = ["127.0.0.1"]`, nil, 403},
		{"custom status", "", `deny = ["0.0.0.0/0"], status = 451`, nil, 451},
		{"forwarded client, trusted proxy", `trusted_proxies = ["127.0.0.1"]`, `deny = ["203.0.113.0/24"]`, []string{"X-Forwarded-For", "203.0.113.9"}, 403},
		{"other forwarded client", `trusted_proxies = ["127.0.0.1"]`, `deny = ["203.0.113.0/24"]`, []string{"X-Forwarded-For", "198.51.100.1"}, 200},
		{"forged header, untrusted peer", "", `allow = ["203.0.113.0/24"]`, []string{"X-Forwarded-For", "203.0.113.9"}, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := gatewaytest.NewUpstream(t, nil)
			src := "[listeners.default]\nlisten = \"127.0.0.1:0\"\n" + c.listener + "\n" +
				exampleRoute("ipf", "[filters.ipf]\nplugin = \"ip-filter\"\nconfig = { "+c.config+" }")
			h := gatewaytest.StartPlugins(t, dir, src, map[string]string{"echo": up.URL})
			resp, body := h.Do("GET", "/x", nil, c.header...)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, c.status, body)
			}
			if c.status != 200 {
				if up.Count() != 0 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, "not allowed") {
					t.Errorf("refused request: upstream saw %d, %s %s", up.Count(), resp.Header.Get("Content-Type"), body)
				}
			}
		})
	}

	// A config that does not parse stops the plugin from loading.
	src := fmt.Sprintf("[plugins]\ndir = %q\n[filters.ipf]\nplugin = \"ip-filter\"\nconfig = { allow = [\"10.0.0.0/33\"] }\n", dir)
	cfg, err := config.Parse("test.toml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var logs testlog.Buffer
	e, _ := wasm.NewEngine(cfg, wasm.Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	defer e.Close()
	if _, err := gateway.New(cfg, gateway.Options{Log: slog.New(slog.DiscardHandler), Filters: e}); err == nil || !strings.Contains(err.Error(), "filters.ipf") {
		t.Errorf("bad CIDR: %v, want the filter refused", err)
	}
	if !strings.Contains(logs.String(), "prefix length") {
		t.Errorf("the log does not say why:\n%s", logs.String())
	}
}

func TestExampleCORSAssemblyScript(t *testing.T) {
	dir := testbuild.Example(t, "cors")
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartPlugins(t, dir, exampleRoute("cors", `[filters.cors]
config = { origins = ["https://app.example"], methods = ["GET", "put"], headers = ["Authorization", "content-type"], expose = ["x-request-id"], credentials = true, max_age = 300 }`), map[string]string{"echo": up.URL})
	const app, evil = "https://app.example", "https://evil.example"
	preflight := func(origin, method, headers string) *http.Response {
		hs := []string{"Origin", origin, "Access-Control-Request-Method", method}
		if headers != "" {
			hs = append(hs, "Access-Control-Request-Headers", headers)
		}
		resp, _ := h.Do("OPTIONS", "/api", nil, hs...)
		return resp
	}
	resp := preflight(app, "PUT", "Authorization, Content-Type")
	want := map[string]string{
		"Access-Control-Allow-Origin":      app,
		"Access-Control-Allow-Methods":     "GET, PUT",
		"Access-Control-Allow-Headers":     "Authorization, Content-Type",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Max-Age":           "300",
	}
	if resp.StatusCode != 204 {
		t.Errorf("allowed preflight: %d", resp.StatusCode)
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}
	for _, c := range []struct{ name, origin, method, headers string }{
		{"other origin", evil, "PUT", ""},
		{"method not allowed", app, "DELETE", ""},
		{"header not allowed", app, "GET", "X-Secret"},
	} {
		resp := preflight(c.origin, c.method, c.headers)
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: preflight %d with ACAO %q, want 403 without", c.name, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	if up.Count() != 0 {
		t.Errorf("preflights reached the upstream %d times", up.Count())
	}

	resp, _ = h.Do("GET", "/api", nil, "Origin", app)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != app || resp.Header.Get("Access-Control-Expose-Headers") != "x-request-id" ||
		!strings.Contains(resp.Header.Get("Vary"), "Origin") || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("request from the allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	for _, hs := range [][]string{{"Origin", evil}, nil} {
		resp, _ := h.Do("GET", "/api", nil, hs...)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("request with %v: %d with ACAO %q, want 200 without", hs, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

func TestExampleSecurityHeadersWAT(t *testing.T) {
	dir := testbuild.Example(t, "security-headers")
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
	})
	h := gatewaytest.StartPlugins(t, dir, exampleRoute("sec", "[filters.sec]\nplugin = \"security-headers\""), map[string]string{"echo": up.URL})
	resp, _ := h.Do("GET", "/", nil)
	for k, v := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "SAMEORIGIN", // the upstream's own wins
		"Referrer-Policy":        "strict-origin-when-cross-origin",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := up.Last().Header.Get("X-Gateway"); got != "lintel" {
		t.Errorf("upstream X-Gateway %q", got)
	}
}
