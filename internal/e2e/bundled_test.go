package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/state"
	"github.com/lintelhq/lintel/core/state/statetest"
	"github.com/lintelhq/lintel/internal/gatewaytest"
)

const bundledChain = `
[listeners.default]
listen = "127.0.0.1:0"
filters = ["log"]
[filters.log]
plugin = "access-log"
output = "{{log}}"
config = { format = "json", redact = ["Authorization"], headers = ["Authorization", "User-Agent"] }
[filters.auth]
plugin = "jwt-auth"
config_files = { jwks = "{{jwks}}" }
config = { algorithms = ["RS256"], issuer = "https://idp.lintel.demo", audience = ["lintel-demo"], claims_to_headers = { sub = "X-User" } }
[filters.headers]
plugin = "header-rewrite"
config.request = { set = { X-Gateway = "lintel", X-Client = "{client_ip}" }, remove = ["Host", "Connection", "X-Debug"] }
config.response = { set = { X-Served-By = "lintel", X-Route = "{route}" }, remove = ["X-Internal"], rename = { X-Up = "X-Upstream-Said" } }
[services.echo]
targets = ["{{echo}}"]
[[routes]]
name = "orders"
path = "/orders/*rest"
service = "echo"
filters = ["auth", "headers"]
[[routes]]
name = "open"
path = "/open/*rest"
service = "echo"
filters = ["headers"]
`

func TestBundledChain(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("X-Up", "yes")
		gatewaytest.Echo(w, r)
	})
	logFile := filepath.Join(t.TempDir(), "access.log")
	h := gatewaytest.StartBundled(t, bundledChain, map[string]string{"echo": up.URL, "log": logFile})
	token := gatewaytest.DemoToken(t)

	// No token: 401 with the RFC 6750 challenge, upstream untouched.
	resp, body := h.Do("GET", "/orders/1", nil)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="lintel"` || up.Count() != 0 {
		t.Errorf("no token: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	// A forged token (the demo token with a changed payload).
	parts := strings.Split(token, ".")
	forged := parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2]
	resp, body = h.Do("GET", "/orders/1", nil, "Authorization", "Bearer "+forged)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) || strings.Contains(body, forged) {
		t.Errorf("forged token: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	// A valid token: claims to headers (the client's X-User is replaced,
	// whatever it lists in Connection), header rewrites both ways.
	resp, body = h.RawResponse("GET /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
		"\r\nX-User: mallory\r\nConnection: close, X-User\r\nX-Debug: 1\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("valid token: %d %s", resp.StatusCode, body)
	}
	e := gatewaytest.DecodeEcho(t, body)
	if e.Header.Get("X-User") != "alice" || e.Header.Get("X-Gateway") != "lintel" || e.Header.Get("X-Client") != "127.0.0.1" || e.Header.Get("X-Debug") != "" {
		t.Errorf("upstream headers: %v", e.Header)
	}
	if resp.Header.Get("X-Served-By") != "lintel" || resp.Header.Get("X-Route") != "orders" || resp.Header.Get("X-Internal") != "" || resp.Header.Get("X-Upstream-Said") != "yes" {
		t.Errorf("response headers: %v", resp.Header)
	}
	// Removing Host and Connection in a filter does not break proxying.
	if e.Host != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("upstream Host %q", e.Host)
	}

	// The access log: one JSON line per request, the user from the auth
	// filter, the Authorization header redacted.
	var lines []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for len(lines) < 3 && time.Now().Before(deadline) {
		lines = readJSONLines(t, logFile)
		time.Sleep(20 * time.Millisecond)
	}
	if len(lines) != 3 {
		t.Fatalf("%d access log lines, want 3", len(lines))
	}
	last := lines[2]
	if last["status"] != 200.0 || last["user"] != "alice" || last["route"] != "orders" || last["path"] != "/orders/1" ||
		last["uri"] != "/orders/1" || last["proto"] != "HTTP/1.1" || last["method"] != "GET" || last["upstream"] != up.URL {
		t.Errorf("log line: %v", last)
	}
	if hs := last["headers"].(map[string]any); hs["authorization"] != "[REDACTED]" {
		t.Errorf("Authorization not redacted: %v", hs)
	}
	if raw, _ := os.ReadFile(logFile); strings.Contains(string(raw), token) {
		t.Error("the token reached the access log")
	}
	if lines[0]["status"] != 401.0 {
		t.Errorf("first line: %v", lines[0])
	}
}

func readJSONLines(t testing.TB, file string) []map[string]any {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	s := bufio.NewScanner(f)
	for s.Scan() {
		var m map[string]any
		if err := json.Unmarshal(s.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q", s.Text())
		}
		out = append(out, m)
	}
	return out
}

// TestBundledAccessLogOnStream: the line is written when a streamed
// response ends, with its real size.
func TestBundledAccessLogOnStream(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})
	logFile := filepath.Join(t.TempDir(), "access.log")
	h := gatewaytest.StartBundled(t, bundledChain, map[string]string{"echo": up.URL, "log": logFile})
	resp, err := gatewaytest.Client.Get(h.URL() + "/open/stream")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); len(lines) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines = readJSONLines(t, logFile)
	}
	if len(lines) != 1 || lines[0]["bytes_out"] != float64(n) || lines[0]["duration_ms"].(float64) < 100 {
		t.Errorf("stream log line %v (client read %d bytes)", lines, n)
	}
	if resp.Header.Get("X-Served-By") != "lintel" {
		t.Error("response rewrite missing on a stream")
	}
}

// TestBundledJWKSURL: jwt-auth fetches its keys through the host's
// allow-listed outbound call, and a filter without the allow-list cannot.
func TestBundledJWKSURL(t *testing.T) {
	jwks, _ := os.ReadFile("../../testdata/keys/demo-jwks.json")
	idp := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write(jwks) })
	up := gatewaytest.NewUpstream(t, nil)
	idpHost := strings.TrimPrefix(idp.URL, "http://")
	src := fmt.Sprintf(`
[filters.auth]
plugin = "jwt-auth"
config = { algorithms = ["RS256"], jwks_url = "%[1]s/jwks.json", audience = ["lintel-demo"] }
[filters.auth.outbound]
hosts = ["%[2]s"]
[filters.auth-unlisted]
plugin = "jwt-auth"
config = { algorithms = ["RS256"], jwks_url = "%[1]s/jwks.json" }
[services.echo]
targets = ["{{echo}}"]
[[routes]]
path = "/a/*rest"
service = "echo"
filters = ["auth"]
[[routes]]
path = "/b/*rest"
service = "echo"
filters = ["auth-unlisted"]
`, idp.URL, idpHost)
	h := gatewaytest.StartBundled(t, src, map[string]string{"echo": up.URL})
	token := gatewaytest.DemoToken(t)
	for range 3 {
		if resp, body := h.Do("GET", "/a/x", nil, "Authorization", "Bearer "+token); resp.StatusCode != 200 {
			t.Fatalf("with the JWKS URL allowed: %d %s", resp.StatusCode, body)
		}
	}
	fetched := idp.Count()
	if fetched < 1 || fetched > 2 {
		t.Errorf("%d JWKS fetches for 3 requests", fetched)
	}
	resp, _ := h.Do("GET", "/b/x", nil, "Authorization", "Bearer "+token)
	if resp.StatusCode != 503 || idp.Count() != fetched {
		t.Errorf("without the allow-list: %d (want 503, keys unavailable), fetches %d", resp.StatusCode, idp.Count())
	}
}

// TestBundledRateLimitExact fires concurrent requests at a limit of burst
// 10 and a negligible rate: exactly 10 are admitted, with the in-memory
// and with the Redis state backend.
func TestBundledRateLimitExact(t *testing.T) {
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			up := gatewaytest.NewUpstream(t, nil)
			src := `
[filters.limit]
plugin = "rate-limit"
config = { key = ["route"], rate = 1, period = "1h", burst = 10 }
[services.echo]
targets = ["{{echo}}"]
[[routes]]
name = "limited"
path = "/l/*rest"
service = "echo"
filters = ["limit"]
`
			var h *gatewaytest.Harness
			if backend == "redis" {
				r, err := state.NewRedis(state.RedisOptions{URL: statetest.RedisServer(t), Prefix: "test:", Timeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				h = gatewaytest.StartBundledWith(t, src, map[string]string{"echo": up.URL}, r)
			} else {
				h = gatewaytest.StartBundled(t, src, map[string]string{"echo": up.URL})
			}
			var wg sync.WaitGroup
			codes := make(chan int, 50)
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, _ := h.Do("GET", "/l/x", nil)
					codes <- resp.StatusCode
					if resp.StatusCode == 429 && (resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Policy") != `"default";q=10;w=36000`) {
						t.Errorf("429 headers: %v", resp.Header)
					}
				}()
			}
			wg.Wait()
			close(codes)
			n := map[int]int{}
			for c := range codes {
				n[c]++
			}
			if n[200] != 10 || n[429] != 40 || up.Count() != 10 {
				t.Errorf("%v (upstream saw %d): want exactly 10 admitted", n, up.Count())
			}
		})
	}
}

// TestHeaderRewriteRules: header-rewrite's four operations in their order
// (remove, rename, set, add) on both phases, with templates of host
// properties and of a property an earlier filter set (jwt-auth's user).
func TestHeaderRewriteRules(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "internal/1.2")
		w.Header().Add("X-Up", "a")
		w.Header().Add("X-Up", "b")
		gatewaytest.Echo(w, r)
	})
	h := gatewaytest.StartBundled(t, `
[filters.auth]
plugin = "jwt-auth"
config_files = { jwks = "{{jwks}}" }
config = { algorithms = ["RS256"] }
[filters.headers]
plugin = "header-rewrite"
config.request = { set = { X-Gateway = "lintel", X-Client = "{client_ip} via {route}", X-Gone = "{nope}", X-Brace = "a{unclosed" }, add = { X-Multi = "two" }, remove = ["X-Debug"], rename = { X-Old = "X-New" } }
config.response = { set = { X-Request-Id = "{request_id}", X-User = "{property:user}" }, remove = ["Server"], rename = { X-Up = "X-Upstream" } }
[services.echo]
targets = ["{{echo}}"]
[[routes]]
name = "orders"
path = "/orders/*rest"
service = "echo"
filters = ["auth", "headers"]
`, map[string]string{"echo": up.URL})
	resp, body := h.Do("GET", "/orders/1", nil, "Authorization", "Bearer "+gatewaytest.DemoToken(t),
		"X-Debug", "1", "X-Old", "value", "X-Multi", "one", "X-Request-Id", "client-chosen-id-1")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	rq := gatewaytest.DecodeEcho(t, body).Header
	if rq.Get("X-Gateway") != "lintel" || rq.Get("X-Client") != "127.0.0.1 via orders" || rq.Get("X-Debug") != "" ||
		rq.Get("X-Old") != "" || rq.Get("X-New") != "value" || len(rq.Values("X-Multi")) != 2 || rq.Get("X-Brace") != "a{unclosed" {
		t.Errorf("request headers: %v", rq)
	}
	if v, ok := rq["X-Gone"]; !ok || v[0] != "" {
		t.Errorf("an unknown property expands to an empty value: %v", rq["X-Gone"])
	}
	rs := resp.Header
	if rs.Get("X-Request-Id") != "client-chosen-id-1" || rs.Get("X-User") != "alice" || rs.Get("Server") != "" ||
		strings.Join(rs.Values("X-Upstream"), ",") != "a,b" || rs.Get("X-Up") != "" {
		t.Errorf("response headers: %v", rs)
	}
}

// TestRateLimitFieldsAndConsumers: the RateLimit and RateLimit-Policy
// fields on every answer as the burst drains, the 429 as problem JSON
// with Retry-After, and per-consumer limits by the first key part.
func TestRateLimitFieldsAndConsumers(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartBundled(t, `
[filters.limit]
plugin = "rate-limit"
config = { rate = 1, period = "1s", burst = 5 }
[filters.consumers]
plugin = "rate-limit"
config = { key = ["header:X-Consumer", "route"], rate = 1, period = "1h", burst = 1, consumers = { alice = { rate = 1, burst = 3 } } }
[services.echo]
targets = ["{{echo}}"]
[[routes]]
name = "limited"
path = "/l/*rest"
service = "echo"
filters = ["limit"]
[[routes]]
name = "per-consumer"
path = "/c/*rest"
service = "echo"
filters = ["consumers"]
`, map[string]string{"echo": up.URL})
	for i := range 5 {
		resp, body := h.Do("GET", "/l/x", nil)
		want := fmt.Sprintf(`"default";r=%d;t=%d`, 4-i, i+1)
		if resp.StatusCode != 200 || resp.Header.Get("RateLimit") != want || resp.Header.Get("RateLimit-Policy") != `"default";q=5;w=5` {
			t.Errorf("request %d: %d RateLimit %q Policy %q, want %s: %s", i+1, resp.StatusCode, resp.Header.Get("RateLimit"), resp.Header.Get("RateLimit-Policy"), want, body)
		}
	}
	resp, body := h.Do("GET", "/l/x", nil)
	var problem map[string]any
	if err := json.Unmarshal([]byte(body), &problem); err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" ||
		resp.Header.Get("Content-Type") != "application/problem+json" || problem["status"] != 429.0 ||
		problem["title"] != "Too Many Requests" || problem["request_id"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("over the limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	count := func(consumer string) int {
		n := 0
		for range 5 {
			if resp, _ := h.Do("GET", "/c/x", nil, "X-Consumer", consumer); resp.StatusCode == 200 {
				n++
			}
		}
		return n
	}
	if bob, alice := count("bob"), count("alice"); bob != 1 || alice != 3 {
		t.Errorf("bob %d admitted (limit 1), alice %d (limit 3)", bob, alice)
	}
}

// TestAccessLogFormats: the Common and Combined formats, and sampling by
// request id (sample = 0 writes nothing and counts the lines dropped).
func TestAccessLogFormats(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "0123456789") })
	dir := t.TempDir()
	h := gatewaytest.StartBundled(t, `
[filters.common]
plugin = "access-log"
output = "{{dir}}/common.log"
config = { format = "common" }
[filters.combined]
plugin = "access-log"
output = "{{dir}}/combined.log"
config = { format = "combined" }
[filters.none]
plugin = "access-log"
output = "{{dir}}/none.log"
config = { sample = 0.0 }
[services.echo]
targets = ["{{echo}}"]
[[routes]]
path = "/*rest"
service = "echo"
filters = ["common", "combined", "none"]
`, map[string]string{"echo": up.URL, "dir": dir})
	h.Do("GET", "/a?b=1", nil, "Referer", "https://shop.example/", "User-Agent", "curl/8")
	line := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z][a-z]/20\d\d:\d\d:\d\d:\d\d \+0000\] "GET /a\?b=1 HTTP/1\.1" 200 10`)
	for _, c := range []struct{ file, suffix string }{{"common.log", ""}, {"combined.log", ` "https://shop.example/" "curl/8"`}} {
		var got string
		for deadline := time.Now().Add(5 * time.Second); got == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			b, _ := os.ReadFile(filepath.Join(dir, c.file))
			got = strings.TrimSpace(string(b))
		}
		if !line.MatchString(got) || !strings.HasSuffix(got, `200 10`+c.suffix) {
			t.Errorf("%s: %q", c.file, got)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "none.log")); len(b) > 0 {
		t.Errorf("sample = 0 wrote %q", b)
	}
	if m := h.Gather(); !strings.Contains(m, `lintel_plugin_access_log_lines_total{filter="none",result="sampled_out"} 1`) {
		t.Errorf("the line sampled out is not counted:\n%s", m)
	}
}

// BenchmarkBundledFilters is a proxied request over loopback through each
// bundled plugin alone and through the four (testdata/bench/filters.toml,
// the routes of scripts/bench-filters.sh), with client and upstream in
// this process: a route's time and allocations less plain's are what its
// filters cost.
func BenchmarkBundledFilters(b *testing.B) {
	// Not a gatewaytest.Upstream: it keeps every request, and a heap
	// growing by each one would make the garbage collector's work grow
	// through the run, more for the routes whose requests carry more.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"id":1}`) }))
	defer up.Close()
	routes, err := os.ReadFile(filepath.Join(gatewaytest.Root, "testdata/bench/filters.toml"))
	if err != nil {
		b.Fatal(err)
	}
	h := gatewaytest.StartBundled(b, string(routes), map[string]string{"upstream": up.URL, "log": filepath.Join(b.TempDir(), "access.log")})
	auth := "Bearer " + gatewaytest.DemoToken(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, route := range []string{"plain", "jwt", "limit", "rewrite", "log", "chain"} {
		b.Run(route, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16) // enough requests at once to keep every core busy
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest("GET", h.URL()+"/"+route+"/1", nil)
				req.Header.Set("Authorization", auth)
				for pb.Next() {
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		})
	}
}
