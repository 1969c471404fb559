package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// Regression tests for what black-box probes of gatewayd found: each is
// named after the bug it pins.

// TestH2CUpgradeIsNotTunnelled: "Upgrade: h2c" on a public route reached
// an upstream that answered 101, and the raw tunnel then carried requests
// past routing and every filter. Only upgrades a route allows pass.
func TestH2CUpgradeIsNotTunnelled(t *testing.T) {
	upgraded := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			gatewaytest.Echo(w, r)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", r.Header.Get("Upgrade"))
		brw.Flush()
	}
	up := gatewaytest.NewUpstream(t, upgraded)
	src := gatewaytest.OrdersRoute + `
[[routes]]
name = "plain"
path = "/plain/*rest"
service = "orders"
upgrades = []
`
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	resp, body := h.RawResponse("GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n" +
		"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("h2c upgrade: %d %s", resp.StatusCode, body)
	}
	for _, name := range []string{"Upgrade", "Http2-Settings", "Connection"} {
		if v := up.Last().Header.Get(name); v != "" {
			t.Errorf("upstream got %s: %q", name, v)
		}
	}
	// WebSocket is allowed by default, and only where the route allows it.
	gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": gatewaytest.NewUpstream(t, gatewaytest.WSEcho).URL}).WSRoundTrip("/api/v1/orders/ws")
	resp, body = h.RawResponse("GET /plain/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if resp.StatusCode != 200 || up.Last().Header.Get("Upgrade") != "" {
		t.Errorf("websocket on a route with upgrades = []: %d %s", resp.StatusCode, body)
	}
}

// TestClientIdentityHeadersRemoved: X-Real-Ip, X-Original-Url and their
// kind reached upstreams as the client wrote them, in either spelling.
func TestClientIdentityHeadersRemoved(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})
	resp, _ := h.RawResponse("GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nX-Real-Ip: 10.0.0.1\r\nX_Real_IP: 10.0.0.2\r\n" +
		"X-Original-Url: /admin\r\nX-Rewrite-Url: /admin\r\nX-Forwarded-Prefix: /admin\r\nForwarded: for=10.0.0.3\r\n" +
		"X-Http-Method-Override: DELETE\r\nX-Kept: yes\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := up.Last().Header
	for name := range got {
		if exchange.HeaderName(name) != "X-Kept" && slices.Contains(config.DefaultRemoveHeaders, exchange.HeaderName(name)) {
			t.Errorf("%s reached the upstream: %q", name, got[name])
		}
	}
	if got.Get("X-Kept") != "yes" {
		t.Errorf("an ordinary header was removed: %v", got)
	}
	// A listener can name its own list.
	h = gatewaytest.Start(t, "[listeners.default]\nlisten = \"127.0.0.1:0\"\nremove_headers = [\"X-Kept\"]\n"+gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})
	h.Do("GET", "/api/v1/orders/1", nil, "X-Kept", "no", "X-Real-Ip", "10.0.0.1")
	if got := up.Last().Header; got.Get("X-Kept") != "" || got.Get("X-Real-Ip") != "10.0.0.1" {
		t.Errorf("remove_headers = [X-Kept]: %v", got)
	}
}

// TestAggregatePartsSendTheTargetsHost: every part was sent
// "Host: upstream", a placeholder, so name-based virtual hosts misrouted.
func TestAggregatePartsSendTheTargetsHost(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%q", r.Host)
	})
	h := gatewaytest.Start(t, `
[services.a]
targets = ["{{a}}"]
[[routes]]
path = "/p"
[routes.aggregate]
parts = [{ key = "host", service = "a", path = "/x" }]
`, map[string]string{"a": up.URL})
	_, body := h.Do("GET", "/p", nil)
	if want := fmt.Sprintf(`{"host":%q}`, strings.TrimPrefix(up.URL, "http://")); body != want {
		t.Errorf("body %s, want %s", body, want)
	}
}

// TestTooManyRequestHeaders: 1,000 header fields were accepted (net/http
// bounds only their bytes).
func TestTooManyRequestHeaders(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})
	var b strings.Builder
	for i := range 101 {
		fmt.Fprintf(&b, "X-H%d: v\r\n", i)
	}
	resp, body := h.RawResponse("GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\n" + b.String() + "Connection: close\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || up.Count() != 0 {
		t.Errorf("101 headers: %d %s", resp.StatusCode, body)
	}
	resp, _ = h.RawResponse("GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("few headers: %d", resp.StatusCode)
	}
}

// TestMalformedChunkedBodyIs400: a broken chunked body was answered 502,
// logged and counted as an upstream failure.
func TestMalformedChunkedBodyIs400(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})
	resp, body := h.RawResponse("POST /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\nzz\r\nbroken\r\n0\r\n\r\n")
	if resp.StatusCode != 400 {
		t.Errorf("status %d %s", resp.StatusCode, body)
	}
	if strings.Contains(h.Logs.String(), "upstream failed") {
		t.Errorf("logged as an upstream failure:\n%s", h.Logs)
	}
	for _, line := range strings.Split(h.Gather(), "\n") {
		if strings.HasPrefix(line, "lintel_upstream_errors_total{") && !strings.HasSuffix(line, " 0") {
			t.Errorf("counted as an upstream error: %s", line)
		}
	}
}

// TestReadinessSaysWhyAndCanIgnoreUpstreams: /readyz answered a bare 503,
// and one dead service took every replica out of the load balancer.
func TestReadinessSaysWhyAndCanIgnoreUpstreams(t *testing.T) {
	src := "[services.gone]\ntargets = [\"{{dead}}\"]\n[[routes]]\npath = \"/x\"\nservice = \"gone\"\n"
	dead := map[string]string{"dead": gatewaytest.DeadAddr(t)}
	h := gatewaytest.Start(t, src, dead)
	h.Do("GET", "/x", nil)
	if got := h.G.NotReady(); len(got) != 1 || got[0] != `service "gone" has no target up (each failed and is cooling down)` {
		t.Errorf("NotReady = %q", got)
	}
	h = gatewaytest.Start(t, "[admin]\nready_requires_upstreams = false\n"+src, dead)
	h.Do("GET", "/x", nil)
	if got := h.G.NotReady(); len(got) != 0 {
		t.Errorf("with ready_requires_upstreams = false: NotReady = %q", got)
	}
}
