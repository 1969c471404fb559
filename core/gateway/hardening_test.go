package gateway

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
)

// Regression tests for what black-box probes of gatewayd found: each is
// named after the bug it pins.

// TestJWTBypassWithTwoAuthorizationHeaders: a valid token in the first
// Authorization header and a forged alg=none token with sub=admin in a
// second one admitted the request, and both reached the upstream.
func TestJWTBypassWithTwoAuthorizationHeaders(t *testing.T) {
	up := newUpstream(t, nil)
	h := startBundled(t, bundledChain, map[string]string{"echo": up.URL, "log": t.TempDir() + "/access.log"})
	valid := demoToken(t)
	b64 := base64.RawURLEncoding.EncodeToString
	forged := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"admin","iss":"https://idp.lintel.demo","aud":"lintel-demo","exp":4102444800}`)) + "."
	for name, headers := range map[string]string{
		"two headers":       "Authorization: Bearer " + valid + "\r\nAuthorization: Bearer " + forged + "\r\n",
		"forged first":      "Authorization: Bearer " + forged + "\r\nAuthorization: Bearer " + valid + "\r\n",
		"two in one header": "Authorization: Bearer " + valid + ", Bearer " + forged + "\r\n",
	} {
		resp, body := h.rawResponse("GET /orders/1 HTTP/1.1\r\nHost: x\r\n" + headers + "Connection: close\r\n\r\n")
		if resp.StatusCode != 400 || !strings.Contains(body, "credential") && !strings.Contains(body, "more than one") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	if n := up.count(); n != 0 {
		t.Errorf("the upstream saw %d requests with two credentials", n)
	}
	// One valid token still passes.
	resp, body := h.do("GET", "/orders/1", nil, "Authorization", "Bearer "+valid)
	if resp.StatusCode != 200 || decodeEcho(t, body).Header.Get("X-User") != "alice" {
		t.Errorf("one valid token: %d %s", resp.StatusCode, body)
	}
}

// TestH2CUpgradeIsNotTunnelled: "Upgrade: h2c" on a public route reached
// an upstream that answered 101, and the raw tunnel then carried requests
// past routing and every filter. Only upgrades a route allows pass.
func TestH2CUpgradeIsNotTunnelled(t *testing.T) {
	upgraded := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			echo(w, r)
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
	up := newUpstream(t, upgraded)
	src := ordersRoute + `
[[routes]]
name = "plain"
path = "/plain/*rest"
service = "orders"
upgrades = []
`
	h := start(t, src, map[string]string{"orders": up.URL})
	resp, body := h.rawResponse("GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n" +
		"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("h2c upgrade: %d %s", resp.StatusCode, body)
	}
	for _, name := range []string{"Upgrade", "Http2-Settings", "Connection"} {
		if v := up.last().Header.Get(name); v != "" {
			t.Errorf("upstream got %s: %q", name, v)
		}
	}
	// WebSocket is allowed by default, and only where the route allows it.
	wsRoundTrip(t, start(t, ordersRoute, map[string]string{"orders": newUpstream(t, wsEcho).URL}), "/api/v1/orders/ws")
	resp, body = h.rawResponse("GET /plain/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if resp.StatusCode != 200 || up.last().Header.Get("Upgrade") != "" {
		t.Errorf("websocket on a route with upgrades = []: %d %s", resp.StatusCode, body)
	}
}

// TestClientIdentityHeadersRemoved: X-Real-Ip, X-Original-Url and their
// kind reached upstreams as the client wrote them, in either spelling.
func TestClientIdentityHeadersRemoved(t *testing.T) {
	up := newUpstream(t, nil)
	h := start(t, ordersRoute, map[string]string{"orders": up.URL})
	resp, _ := h.rawResponse("GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nX-Real-Ip: 10.0.0.1\r\nX_Real_IP: 10.0.0.2\r\n" +
		"X-Original-Url: /admin\r\nX-Rewrite-Url: /admin\r\nX-Forwarded-Prefix: /admin\r\nForwarded: for=10.0.0.3\r\n" +
		"X-Http-Method-Override: DELETE\r\nX-Kept: yes\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := up.last().Header
	for name := range got {
		if exchange.HeaderName(name) != "X-Kept" && slices.Contains(config.DefaultRemoveHeaders, exchange.HeaderName(name)) {
			t.Errorf("%s reached the upstream: %q", name, got[name])
		}
	}
	if got.Get("X-Kept") != "yes" {
		t.Errorf("an ordinary header was removed: %v", got)
	}
	// A listener can name its own list.
	h = start(t, "[listeners.default]\nlisten = \"127.0.0.1:0\"\nremove_headers = [\"X-Kept\"]\n"+ordersRoute, map[string]string{"orders": up.URL})
	h.do("GET", "/api/v1/orders/1", nil, "X-Kept", "no", "X-Real-Ip", "10.0.0.1")
	if got := up.last().Header; got.Get("X-Kept") != "" || got.Get("X-Real-Ip") != "10.0.0.1" {
		t.Errorf("remove_headers = [X-Kept]: %v", got)
	}
}

// TestUnderscoreSpellingOfFilterHeader: a client's X_User reached the
// upstream beside the X-User that jwt-auth set; CGI-style upstreams merge
// the two.
func TestUnderscoreSpellingOfFilterHeader(t *testing.T) {
	up := newUpstream(t, nil)
	h := startBundled(t, bundledChain, map[string]string{"echo": up.URL, "log": t.TempDir() + "/access.log"})
	resp, body := h.rawResponse("GET /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + demoToken(t) +
		"\r\nX_User: admin\r\nx_user: root\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	for name, v := range up.last().Header {
		if exchange.HeaderName(name) == "X-User" && (name != "X-User" || len(v) != 1 || v[0] != "alice") {
			t.Errorf("upstream got %s: %q", name, v)
		}
	}
}

// TestAggregatePartsSendTheTargetsHost: every part was sent
// "Host: upstream", a placeholder, so name-based virtual hosts misrouted.
func TestAggregatePartsSendTheTargetsHost(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%q", r.Host)
	})
	h := start(t, `
[services.a]
targets = ["{{a}}"]
[[routes]]
path = "/p"
[routes.aggregate]
parts = [{ key = "host", service = "a", path = "/x" }]
`, map[string]string{"a": up.URL})
	_, body := h.do("GET", "/p", nil)
	if want := fmt.Sprintf(`{"host":%q}`, strings.TrimPrefix(up.URL, "http://")); body != want {
		t.Errorf("body %s, want %s", body, want)
	}
}

// TestTooManyRequestHeaders: 1,000 header fields were accepted (net/http
// bounds only their bytes).
func TestTooManyRequestHeaders(t *testing.T) {
	up := newUpstream(t, nil)
	h := start(t, ordersRoute, map[string]string{"orders": up.URL})
	var b strings.Builder
	for i := range 101 {
		fmt.Fprintf(&b, "X-H%d: v\r\n", i)
	}
	resp, body := h.rawResponse("GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\n" + b.String() + "Connection: close\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || up.count() != 0 {
		t.Errorf("101 headers: %d %s", resp.StatusCode, body)
	}
	resp, _ = h.rawResponse("GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("few headers: %d", resp.StatusCode)
	}
}

// TestMalformedChunkedBodyIs400: a broken chunked body was answered 502,
// logged and counted as an upstream failure.
func TestMalformedChunkedBodyIs400(t *testing.T) {
	up := newUpstream(t, nil)
	h := start(t, ordersRoute, map[string]string{"orders": up.URL})
	resp, body := h.rawResponse("POST /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\nzz\r\nbroken\r\n0\r\n\r\n")
	if resp.StatusCode != 400 {
		t.Errorf("status %d %s", resp.StatusCode, body)
	}
	if strings.Contains(h.logs.String(), "upstream failed") {
		t.Errorf("logged as an upstream failure:\n%s", h.logs)
	}
	if text := gather(t, h); strings.Contains(text, "lintel_upstream_errors_total") {
		t.Errorf("counted as an upstream error:\n%s", text)
	}
}

// requestURI is an upstream that answers with the request-target it got.
func requestURI(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.RequestURI) }

// TestGuestBodyBeforeNextIsKept: a guest that wrote a response body in
// handle_request and then called next lost it (http-wasm's TCK, strict
// mode: the reference host keeps it), and the backend's Content-Length
// must not cut it short.
func TestGuestBodyBeforeNextIsKept(t *testing.T) {
	for name, handler := range map[string]http.HandlerFunc{
		"empty backend": func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Backend", "1") },
		"backend body":  func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "from the backend") },
	} {
		up := newUpstream(t, handler)
		h := startWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
		resp, body := h.do("GET", "/echo/a", nil, "X-Case", "prefix-body")
		want := "proto=HTTP/1.1\n"
		if name == "backend body" {
			want += "from the backend"
		}
		if resp.StatusCode != 200 || body != want || resp.ContentLength != int64(len(want)) {
			t.Errorf("%s: %d %q (Content-Length %d), want %q", name, resp.StatusCode, body, resp.ContentLength, want)
		}
	}
}

// TestGetURIKeepsTheClientsEscaping: get_uri returned "/simple&clean" for
// "/simple%26clean", and the upstream got the re-encoded form.
func TestGetURIKeepsTheClientsEscaping(t *testing.T) {
	up := newUpstream(t, requestURI)
	h := startWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	for target, want := range map[string]string{
		"/echo/simple%26clean":              "/echo/simple%26clean",
		"/echo/disney?name=chip%26dale":     "/echo/disney?name=chip%26dale",
		"/echo/x/../simple%26clean":         "/echo/simple&clean", // normalised: the normal form
		"/echo//%61dmin":                    "/echo/admin",
		"/echo/%E2%82%AC?q=%E2%82%AC":       "/echo/%E2%82%AC?q=%E2%82%AC",
		"/echo/simple%26clean?a=1&b=%2F%3F": "/echo/simple%26clean?a=1&b=%2F%3F",
	} {
		resp, body := h.rawResponse("GET " + target + " HTTP/1.1\r\nHost: x\r\nX-Case: inspect\r\nConnection: close\r\n\r\n")
		if !strings.Contains(body, "uri="+want+"\n") {
			t.Errorf("get_uri of %s: %d %q, want uri=%s", target, resp.StatusCode, body, want)
		}
		resp, body = h.rawResponse("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if body != want {
			t.Errorf("upstream request-target for %s: %d %q, want %s", target, resp.StatusCode, body, want)
		}
	}
}

// TestSetURIReachesTheUpstreamAsSet: a URI set with set_uri lost its
// escapes on the way to the upstream.
func TestSetURIReachesTheUpstreamAsSet(t *testing.T) {
	up := newUpstream(t, requestURI)
	h := startWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	for uri, want := range map[string]string{
		"/echo/simple%26clean":          "/echo/simple%26clean",
		"/echo/disney?name=chip%26dale": "/echo/disney?name=chip%26dale",
		"/echo/a/../b%26c":              "/echo/b&c", // not the path routed: the normal form
	} {
		_, body := h.do("GET", "/echo/x", nil, "X-Case", "set-uri", "X-Uri", uri)
		if body != want {
			t.Errorf("set_uri(%s): upstream got %q, want %q", uri, body, want)
		}
	}
}

// TestGuestPanicMessageIsLogged: a request that trapped logged only
// "wasm error: unreachable", not the guest's panic message.
func TestGuestPanicMessageIsLogged(t *testing.T) {
	up := newUpstream(t, nil)
	h := startWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	resp, _ := h.do("GET", "/echo/a", nil, "X-Case", "panic")
	if resp.StatusCode != 500 {
		t.Errorf("status %d", resp.StatusCode)
	}
	if !strings.Contains(h.logs.String(), "panic: conformance: deliberate panic") {
		t.Errorf("the panic message is not in the log:\n%s", h.logs)
	}
}

// TestReadinessSaysWhyAndCanIgnoreUpstreams: /readyz answered a bare 503,
// and one dead service took every replica out of the load balancer.
func TestReadinessSaysWhyAndCanIgnoreUpstreams(t *testing.T) {
	src := "[services.gone]\ntargets = [\"{{dead}}\"]\n[[routes]]\npath = \"/x\"\nservice = \"gone\"\n"
	dead := map[string]string{"dead": deadAddr(t)}
	h := start(t, src, dead)
	h.do("GET", "/x", nil)
	if got := h.g.NotReady(); len(got) != 1 || got[0] != `service "gone" has no target up (each failed and is cooling down)` {
		t.Errorf("NotReady = %q", got)
	}
	h = start(t, "[admin]\nready_requires_upstreams = false\n"+src, dead)
	h.do("GET", "/x", nil)
	if got := h.g.NotReady(); len(got) != 0 {
		t.Errorf("with ready_requires_upstreams = false: NotReady = %q", got)
	}
}
