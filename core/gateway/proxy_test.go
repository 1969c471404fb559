package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

func TestProxyForwardsRequest(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})

	resp, body := h.Do("POST", "/api/v1/orders/42/items?x=1&y=%20", strings.NewReader(`{"n":1}`),
		"Content-Type", "application/json", "Accept-Encoding", "gzip", "User-Agent", "test-agent")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	e := gatewaytest.DecodeEcho(t, body)
	if e.Method != "POST" || e.Path != "/orders/42/items" || e.Query != "x=1&y=%20" || e.Body != `{"n":1}` {
		t.Errorf("upstream saw %s %s?%s body %q", e.Method, e.Path, e.Query, e.Body)
	}
	if e.Host != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("upstream Host = %q, want the target's", e.Host)
	}
	if got := e.Header.Get("Accept-Encoding"); got != "gzip" {
		t.Errorf("Accept-Encoding = %q: encodings must pass through untouched", got)
	}
	if e.Header.Get("User-Agent") != "test-agent" || e.Header.Get("Content-Type") != "application/json" {
		t.Errorf("end-to-end headers lost: %v", e.Header)
	}
	gwHost := strings.TrimPrefix(h.URL(), "http://")
	if e.Header.Get("X-Forwarded-For") != "127.0.0.1" || e.Header.Get("X-Forwarded-Proto") != "http" || e.Header.Get("X-Forwarded-Host") != gwHost {
		t.Errorf("forwarding headers: %v", e.Header)
	}
	id := resp.Header.Get("X-Request-Id")
	if len(id) != 32 || e.Header.Get("X-Request-Id") != id {
		t.Errorf("request id: response %q, upstream %q", id, e.Header.Get("X-Request-Id"))
	}
}

func TestRequestIDs(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})

	resp, body := h.Do("GET", "/api/v1/orders/1", nil, "X-Request-Id", "trace-abc.123:4")
	if resp.Header.Get("X-Request-Id") != "trace-abc.123:4" || gatewaytest.DecodeEcho(t, body).Header.Get("X-Request-Id") != "trace-abc.123:4" {
		t.Errorf("a valid client request id must be kept")
	}
	resp, body = h.Do("GET", "/api/v1/orders/1", nil, "X-Request-Id", "bad id\twith spaces")
	got := gatewaytest.DecodeEcho(t, body).Header.Get("X-Request-Id")
	if got == "bad id\twith spaces" || len(got) != 32 || resp.Header.Get("X-Request-Id") != got {
		t.Errorf("an unsafe client request id must be replaced, got %q", got)
	}
	seen := map[string]bool{}
	for range 50 {
		resp, _ := h.Do("GET", "/api/v1/orders/1", nil)
		id := resp.Header.Get("X-Request-Id")
		if seen[id] {
			t.Fatalf("request id %q repeated", id)
		}
		seen[id] = true
	}
}

func TestClientIdentityAndTrustedProxies(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	src := `
[listeners.default]
listen = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
[listeners.untrusting]
listen = "127.0.0.1:0"
[filters.who]
config = { identity_header = "X-Seen-By-Filter" }
[services.orders]
targets = ["{{orders}}"]
[[routes]]
listener = "default"
path = "/a"
service = "orders"
filters = ["who"]
[[routes]]
name = "b"
listener = "untrusting"
path = "/a"
service = "orders"
filters = ["who"]
`
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	get := func(listener, xff, proto string) gatewaytest.Echoed {
		req, _ := http.NewRequest("GET", h.URL(listener)+"/a", nil)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		_, body := h.Send(req)
		return gatewaytest.DecodeEcho(t, body)
	}
	tests := []struct {
		listener, xff, proto string
		client, fwdFor       string
		fwdProto             string
	}{
		// Peer trusted: the rightmost untrusted address is the client.
		{"default", "203.0.113.9, 10.1.2.3", "https", "203.0.113.9", "203.0.113.9, 10.1.2.3, 127.0.0.1", "https"},
		// Spoofed entries left of the real client are ignored.
		{"default", "6.6.6.6, 198.51.100.7", "", "198.51.100.7", "6.6.6.6, 198.51.100.7, 127.0.0.1", "http"},
		// Garbage stops the walk at the last good hop.
		{"default", "1.1.1.1, garbage, 10.0.0.5", "", "10.0.0.5", "1.1.1.1, garbage, 10.0.0.5, 127.0.0.1", "http"},
		{"default", "", "", "127.0.0.1", "127.0.0.1", "http"},
		// Peer not trusted: its forwarding headers are dropped.
		{"untrusting", "6.6.6.6", "https", "127.0.0.1", "127.0.0.1", "http"},
	}
	for _, tt := range tests {
		e := get(tt.listener, tt.xff, tt.proto)
		client := strings.Fields(e.Header.Get("X-Seen-By-Filter"))[0]
		if client != tt.client || e.Header.Get("X-Forwarded-For") != tt.fwdFor || e.Header.Get("X-Forwarded-Proto") != tt.fwdProto {
			t.Errorf("%s XFF %q: client %q, upstream XFF %q proto %q; want %q, %q, %q", tt.listener, tt.xff,
				client, e.Header.Get("X-Forwarded-For"), e.Header.Get("X-Forwarded-Proto"), tt.client, tt.fwdFor, tt.fwdProto)
		}
	}
	e := get("untrusting", "", "")
	if f := strings.Fields(e.Header.Get("X-Seen-By-Filter")); len(f) != 3 || f[2] != "b" || len(f[1]) != 32 {
		t.Errorf("filters see client, request id and route: %q", e.Header.Get("X-Seen-By-Filter"))
	}
}

// TestConnectionHeaderCannotStripFilterHeaders pins the hazard where a
// client lists a header in Connection so the proxy strips it after a
// filter set it (an auth filter's X-User, say).
func TestConnectionHeaderCannotStripFilterHeaders(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	src := gatewaytest.OrdersRoute + `
[filters.auth]
config = { request_header = "X-User" }
`
	src = strings.Replace(src, `rewrite = "/orders/{rest}"`, `rewrite = "/orders/{rest}"`+"\nfilters = [\"auth\"]", 1)
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	resp, _ := h.RawResponse("GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\n" +
		"Connection: close, X-User, X-Hop, Keep-Alive\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n" +
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nX-User: forged\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := up.Last().Header
	if got.Get("X-User") != "auth" {
		t.Errorf("X-User = %q, want the filter's value", got.Get("X-User"))
	}
	for _, name := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Connection"} {
		if v := got.Get(name); v != "" {
			t.Errorf("hop-by-hop header %s reached the upstream: %q", name, v)
		}
	}
}

func TestResponseHopByHopHeadersRemoved(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("Keep-Alive", "timeout=99")
		w.Header().Set("X-Public", "ok")
	})
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})
	resp, _ := h.Do("GET", "/api/v1/orders/1", nil)
	if resp.Header.Get("X-Internal") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Public") != "ok" {
		t.Errorf("response headers: %v", resp.Header)
	}
}

// TestPathNormalisation: what the router matched is what the upstream
// gets, whatever spelling the client used.
func TestPathNormalisation(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	src := gatewaytest.OrdersRoute + `
[services.public]
targets = ["{{orders}}"]
[[routes]]
path = "/public/*rest"
service = "public"
`
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	tests := []struct {
		target string
		status int
		path   string // as the upstream saw it
	}{
		{"//api/v1/orders/7", 200, "/orders/7"},
		{"/api/v1/%6Frders/7", 200, "/orders/7"},
		{"/api/v1/x/../orders/./7", 200, "/orders/7"},
		{"/public/../api/v1/orders/7", 200, "/orders/7"},
		{"/public/a%20b", 200, "/public/a%20b"},
		{"/public/%2e%2e/admin", 404, ""},
		{"/public/..%2fadmin", 400, ""},
		{"/public/..;/admin", 400, ""},
		{"/public/a%00", 400, ""},
		{"/public/a\\..\\admin", 400, ""},
	}
	for _, tt := range tests {
		before := up.Count()
		resp, body := h.RawResponse("GET " + tt.target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.target, resp.StatusCode, tt.status, body)
			continue
		}
		if tt.status != 200 {
			gatewaytest.ProblemBody(t, resp, body)
			if up.Count() != before {
				t.Errorf("%s: refused request reached the upstream", tt.target)
			}
			continue
		}
		if got := up.Last().URL.EscapedPath(); got != tt.path {
			t.Errorf("%s: upstream path %q, want %q", tt.target, got, tt.path)
		}
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})
	resp, body := h.Do("GET", "/nope", nil)
	if resp.StatusCode != 404 || gatewaytest.ProblemBody(t, resp, body)["request_id"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("404: %d %s", resp.StatusCode, body)
	}
	resp, body = h.Do("DELETE", "/api/v1/orders/1", nil)
	gatewaytest.ProblemBody(t, resp, body)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("405: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, _ = h.Do("OPTIONS", "/api/v1/orders/1", nil)
	if resp.StatusCode != 405 {
		t.Errorf("OPTIONS on a route without it: %d, want 405 (never answered by the router itself)", resp.StatusCode)
	}
	if up.Count() != 0 {
		t.Errorf("upstream reached %d times", up.Count())
	}
}

func TestUpstreamTimeoutIs504(t *testing.T) {
	release := make(chan struct{})
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	src := strings.Replace(gatewaytest.OrdersRoute, `targets = ["{{orders}}"]`, `targets = ["{{orders}}"]`+"\ntimeout = \"200ms\"", 1)
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	resp, body := h.Do("GET", "/api/v1/orders/1", nil)
	p := gatewaytest.ProblemBody(t, resp, body)
	if resp.StatusCode != 504 || !strings.Contains(p["detail"].(string), `"orders" timed out`) {
		t.Errorf("status %d, body %s", resp.StatusCode, body)
	}
	if strings.Contains(body, "127.0.0.1") {
		t.Errorf("problem body leaks an internal address: %s", body)
	}
}

func TestResponseHeaderTimeoutIs504(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	src := strings.Replace(gatewaytest.OrdersRoute, `targets = ["{{orders}}"]`, `targets = ["{{orders}}"]`+"\nresponse_header_timeout = \"150ms\"", 1)
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	resp, body := h.Do("GET", "/api/v1/orders/1", nil)
	if resp.StatusCode != 504 {
		t.Errorf("status %d: %s", resp.StatusCode, body)
	}
}

func TestRefusedUpstreamIs502(t *testing.T) {
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": gatewaytest.DeadAddr(t)})
	resp, body := h.Do("GET", "/api/v1/orders/1", nil)
	p := gatewaytest.ProblemBody(t, resp, body)
	if resp.StatusCode != 502 || !strings.Contains(p["detail"].(string), `"orders" is unavailable`) || strings.Contains(body, "127.0.0.1") {
		t.Errorf("status %d, body %s", resp.StatusCode, body)
	}
}

func TestRoundRobin(t *testing.T) {
	ups := []*gatewaytest.Upstream{gatewaytest.NewUpstream(t, nil), gatewaytest.NewUpstream(t, nil), gatewaytest.NewUpstream(t, nil)}
	src := strings.Replace(gatewaytest.OrdersRoute, `targets = ["{{orders}}"]`, `targets = ["{{a}}", "{{b}}", "{{c}}"]`, 1)
	h := gatewaytest.Start(t, src, map[string]string{"a": ups[0].URL, "b": ups[1].URL, "c": ups[2].URL})
	for range 9 {
		if resp, _ := h.Do("GET", "/api/v1/orders/1", nil); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	for i, u := range ups {
		if u.Count() != 3 {
			t.Errorf("target %d got %d of 9 requests, want 3", i, u.Count())
		}
	}
}

func TestRetryIdempotentOnAnotherTarget(t *testing.T) {
	live := gatewaytest.NewUpstream(t, nil)
	src := strings.Replace(gatewaytest.OrdersRoute, `targets = ["{{orders}}"]`, `targets = ["{{dead}}", "{{live}}"]`+"\nfail_cooldown = \"0s\"", 1)
	h := gatewaytest.Start(t, src, map[string]string{"dead": gatewaytest.DeadAddr(t), "live": live.URL})
	// With no cool-down the dead target stays in rotation: every GET that
	// lands on it is retried on the live one.
	for i := range 4 {
		if resp, body := h.Do("GET", "/api/v1/orders/1", nil); resp.StatusCode != 200 {
			t.Fatalf("GET %d: status %d: %s", i, resp.StatusCode, body)
		}
	}
	if live.Count() != 4 {
		t.Errorf("live target served %d of 4 GETs", live.Count())
	}
	// A POST that found no connection never left: it goes to the live
	// target too, its body whole.
	for range 2 {
		resp, body := h.Do("POST", "/api/v1/orders/1", strings.NewReader("the order"))
		if resp.StatusCode != 200 || !strings.Contains(body, "the order") {
			t.Errorf("POST: %d %s", resp.StatusCode, body)
		}
	}
}

func TestPassiveHealthSkipsFailingTarget(t *testing.T) {
	live := gatewaytest.NewUpstream(t, nil)
	src := strings.Replace(gatewaytest.OrdersRoute, `targets = ["{{orders}}"]`, `targets = ["{{dead}}", "{{live}}"]`+"\nretry = { attempts = 1 }\nfail_cooldown = \"1h\"", 1)
	h := gatewaytest.Start(t, src, map[string]string{"dead": gatewaytest.DeadAddr(t), "live": live.URL})
	resp, _ := h.Do("GET", "/api/v1/orders/1", nil)
	if resp.StatusCode != 502 {
		t.Fatalf("first request (to the dead target, no retry): %d, want 502", resp.StatusCode)
	}
	for i := range 6 {
		if resp, _ := h.Do("GET", "/api/v1/orders/1", nil); resp.StatusCode != 200 {
			t.Fatalf("request %d after the failure: %d, want 200 (dead target skipped)", i, resp.StatusCode)
		}
	}
	if !strings.Contains(h.Logs.String(), "upstream target failing, skipped for cool-down") {
		t.Errorf("no health-change log line")
	}
}

func TestStreamingResponseIsNotBuffered(t *testing.T) {
	next := make(chan struct{})
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select { // the second event waits until the client has the first
		case <-next:
		case <-time.After(5 * time.Second):
		}
		fmt.Fprint(w, "data: two\n\n")
	})
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})
	resp, err := gatewaytest.Client.Get(h.URL() + "/api/v1/orders/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	close(next)
	rest, _ := io.ReadAll(r)
	if string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest of stream: %q", rest)
	}
}

// TestWebSocketUpgradePassesThrough uses a raw upgrade handshake and an
// echoing upstream: bytes flow both ways after 101.
func TestWebSocketUpgradePassesThrough(t *testing.T) {
	up := gatewaytest.NewUpstream(t, gatewaytest.WSEcho)
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})
	h.WSRoundTrip("/api/v1/orders/ws")
}

func TestBodyLimit(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	src := strings.Replace(gatewaytest.OrdersRoute, "[services.orders]", "[listeners.default]\nlisten = \"127.0.0.1:0\"\nmax_body = \"1KiB\"\n[services.orders]", 1)
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})

	resp, body := h.Do("POST", "/api/v1/orders/1", strings.NewReader(strings.Repeat("a", 2000)))
	if resp.StatusCode != 413 {
		t.Errorf("declared oversized body: %d, want 413", resp.StatusCode)
	}
	gatewaytest.ProblemBody(t, resp, body)
	if up.Count() != 0 {
		t.Errorf("oversized body with Content-Length reached the upstream")
	}
	// A chunked body is cut where it crosses the limit.
	resp, _ = h.RawResponse("POST /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
		"7d0\r\n" + strings.Repeat("b", 2000) + "\r\n0\r\n\r\n")
	if resp.StatusCode != 413 {
		t.Errorf("chunked oversized body: %d, want 413", resp.StatusCode)
	}
	resp, body = h.Do("POST", "/api/v1/orders/1", strings.NewReader(strings.Repeat("c", 1024)))
	if resp.StatusCode != 200 || len(gatewaytest.DecodeEcho(t, body).Body) != 1024 {
		t.Errorf("body at the limit: %d", resp.StatusCode)
	}
}

// TestRequestSmuggling: a request with both Content-Length and
// Transfer-Encoding, or with two different Content-Lengths, must not let a
// second request hide inside the first: a front proxy that framed by
// Content-Length would otherwise see one request where Lintel sees two.
func TestRequestSmuggling(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	src := gatewaytest.OrdersRoute + `
[[routes]]
path = "/admin"
service = "orders"
`
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	smuggled := "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
	out := h.Raw("POST /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\n" + smuggled)
	if n := strings.Count(out, "HTTP/1.1 "); n != 1 {
		t.Errorf("CL+TE: %d responses on the connection, want 1 then close:\n%s", n, out)
	}
	h.Raw("POST /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd" + smuggled)
	h.Raw("POST /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled)
	reqs, bodies := up.Requests()
	for i, r := range reqs {
		if r.URL.Path == "/admin" {
			t.Errorf("smuggled request reached the upstream (request %d)", i)
		}
		if r.Header.Get("Transfer-Encoding") != "" || len(r.TransferEncoding) > 0 && bodies[i] != "" {
			t.Errorf("request %d: ambiguous framing forwarded: TE %v body %q", i, r.TransferEncoding, bodies[i])
		}
	}
}

func TestConcurrencyCap(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
	})
	src := strings.Replace(gatewaytest.OrdersRoute, "[services.orders]", "[listeners.default]\nlisten = \"127.0.0.1:0\"\nmax_concurrent = 2\n[services.orders]", 1)
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := gatewaytest.Client.Get(h.URL() + "/api/v1/orders/1")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	for len(entered) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := h.Do("GET", "/api/v1/orders/1", nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third request: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	gatewaytest.ProblemBody(t, resp, body)
	close(release)
	wg.Wait()
	if resp, _ := h.Do("GET", "/api/v1/orders/1", nil); resp.StatusCode != 200 {
		t.Errorf("after the burst: %d", resp.StatusCode)
	}
}

func TestHeaderSizeLimit(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	src := strings.Replace(gatewaytest.OrdersRoute, "[services.orders]", "[listeners.default]\nlisten = \"127.0.0.1:0\"\nmax_header_bytes = \"4KiB\"\n[services.orders]", 1)
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	resp, _ := h.Do("GET", "/api/v1/orders/1", nil, "X-Big", strings.Repeat("x", 10000))
	if resp.StatusCode != 431 {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
}

// TestSlowClientHeadersTimeOut: a client that trickles its request head
// is disconnected after read_header_timeout.
func TestSlowClientHeadersTimeOut(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	src := strings.Replace(gatewaytest.OrdersRoute, "[services.orders]", "[listeners.default]\nlisten = \"127.0.0.1:0\"\nread_header_timeout = \"200ms\"\n[services.orders]", 1)
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	conn, err := net.Dial("tcp", h.Addr("default"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /api/v1/orders/1 HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection still open after 5s: read_header_timeout not applied")
	}
	if up.Count() != 0 {
		t.Errorf("incomplete request reached the upstream")
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	started := make(chan struct{})
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "finished")
	})
	h := gatewaytest.Start(t, gatewaytest.OrdersRoute, map[string]string{"orders": up.URL})
	addr := h.Addr("default")
	done := make(chan string)
	go func() {
		resp, err := gatewaytest.Client.Get("http://" + addr + "/api/v1/orders/1")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- fmt.Sprint(resp.StatusCode, " ", string(b))
	}()
	<-started
	if !h.G.Ready() {
		t.Error("not ready while serving")
	}
	shut := make(chan error)
	go func() { shut <- h.Server.Shutdown(t.Context()) }()
	if got := <-done; got != "200 finished" {
		t.Errorf("in-flight request: %q", got)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if h.G.Ready() {
		t.Error("ready after shutdown")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("listener still accepts after shutdown")
	}
}
