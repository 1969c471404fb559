package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// Regression tests for what black-box probes of gatewayd found: each is
// named after the bug it pins.

// TestJWTBypassWithTwoAuthorizationHeaders: a valid token in the first
// Authorization header and a forged alg=none token with sub=admin in a
// second one admitted the request, and both reached the upstream.
func TestJWTBypassWithTwoAuthorizationHeaders(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartBundled(t, bundledChain, map[string]string{"echo": up.URL, "log": t.TempDir() + "/access.log"})
	valid := gatewaytest.DemoToken(t)
	b64 := base64.RawURLEncoding.EncodeToString
	forged := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"admin","iss":"https://idp.lintel.demo","aud":"lintel-demo","exp":4102444800}`)) + "."
	for name, headers := range map[string]string{
		"two headers":       "Authorization: Bearer " + valid + "\r\nAuthorization: Bearer " + forged + "\r\n",
		"forged first":      "Authorization: Bearer " + forged + "\r\nAuthorization: Bearer " + valid + "\r\n",
		"two in one header": "Authorization: Bearer " + valid + ", Bearer " + forged + "\r\n",
	} {
		resp, body := h.RawResponse("GET /orders/1 HTTP/1.1\r\nHost: x\r\n" + headers + "Connection: close\r\n\r\n")
		if resp.StatusCode != 400 || !strings.Contains(body, "credential") && !strings.Contains(body, "more than one") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	if n := up.Count(); n != 0 {
		t.Errorf("the upstream saw %d requests with two credentials", n)
	}
	// One valid token still passes.
	resp, body := h.Do("GET", "/orders/1", nil, "Authorization", "Bearer "+valid)
	if resp.StatusCode != 200 || gatewaytest.DecodeEcho(t, body).Header.Get("X-User") != "alice" {
		t.Errorf("one valid token: %d %s", resp.StatusCode, body)
	}
}

// TestUnderscoreSpellingOfFilterHeader: a client's X_User reached the
// upstream beside the X-User that jwt-auth set; CGI-style upstreams merge
// the two.
func TestUnderscoreSpellingOfFilterHeader(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartBundled(t, bundledChain, map[string]string{"echo": up.URL, "log": t.TempDir() + "/access.log"})
	resp, body := h.RawResponse("GET /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + gatewaytest.DemoToken(t) +
		"\r\nX_User: admin\r\nx_user: root\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	for name, v := range up.Last().Header {
		if exchange.HeaderName(name) == "X-User" && (name != "X-User" || len(v) != 1 || v[0] != "alice") {
			t.Errorf("upstream got %s: %q", name, v)
		}
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
		up := gatewaytest.NewUpstream(t, handler)
		h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
		resp, body := h.Do("GET", "/echo/a", nil, "X-Case", "prefix-body")
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
	up := gatewaytest.NewUpstream(t, requestURI)
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	for target, want := range map[string]string{
		"/echo/simple%26clean":              "/echo/simple%26clean",
		"/echo/disney?name=chip%26dale":     "/echo/disney?name=chip%26dale",
		"/echo/x/../simple%26clean":         "/echo/simple&clean", // normalised: the normal form
		"/echo//%61dmin":                    "/echo/admin",
		"/echo/%E2%82%AC?q=%E2%82%AC":       "/echo/%E2%82%AC?q=%E2%82%AC",
		"/echo/simple%26clean?a=1&b=%2F%3F": "/echo/simple%26clean?a=1&b=%2F%3F",
	} {
		resp, body := h.RawResponse("GET " + target + " HTTP/1.1\r\nHost: x\r\nX-Case: inspect\r\nConnection: close\r\n\r\n")
		if !strings.Contains(body, "uri="+want+"\n") {
			t.Errorf("get_uri of %s: %d %q, want uri=%s", target, resp.StatusCode, body, want)
		}
		resp, body = h.RawResponse("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if body != want {
			t.Errorf("upstream request-target for %s: %d %q, want %s", target, resp.StatusCode, body, want)
		}
	}
}

// TestSetURIReachesTheUpstreamAsSet: a URI set with set_uri lost its
// escapes on the way to the upstream.
func TestSetURIReachesTheUpstreamAsSet(t *testing.T) {
	up := gatewaytest.NewUpstream(t, requestURI)
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	for uri, want := range map[string]string{
		"/echo/simple%26clean":          "/echo/simple%26clean",
		"/echo/disney?name=chip%26dale": "/echo/disney?name=chip%26dale",
		"/echo/a/../b%26c":              "/echo/b&c", // not the path routed: the normal form
	} {
		_, body := h.Do("GET", "/echo/x", nil, "X-Case", "set-uri", "X-Uri", uri)
		if body != want {
			t.Errorf("set_uri(%s): upstream got %q, want %q", uri, body, want)
		}
	}
}

// TestGuestPanicMessageIsLogged: a request that trapped logged only
// "wasm error: unreachable", not the guest's panic message.
func TestGuestPanicMessageIsLogged(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	resp, _ := h.Do("GET", "/echo/a", nil, "X-Case", "panic")
	if resp.StatusCode != 500 {
		t.Errorf("status %d", resp.StatusCode)
	}
	if !strings.Contains(h.Logs.String(), "panic: conformance: deliberate panic") {
		t.Errorf("the panic message is not in the log:\n%s", h.Logs)
	}
}
