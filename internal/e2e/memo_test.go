package e2e

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// callsOf reads a filter's guest calls and memo hits from /metrics.
func callsOf(t *testing.T, h *gatewaytest.Harness, filter string) (calls, hits int) {
	t.Helper()
	m := h.Gather()
	num := func(re string) int {
		if g := regexp.MustCompile(re).FindStringSubmatch(m); g != nil {
			n, _ := strconv.Atoi(g[1])
			return n
		}
		return 0
	}
	return num(`lintel_plugin_call_duration_seconds_count\{filter="` + filter + `"\} (\d+)`),
		num(`lintel_plugin_memo_hits_total\{filter="` + filter + `"\} (\d+)`)
}

// TestJWTMemoizedDecision: jwt-auth memoizes a verified token, so the
// same Authorization is let through by the host without a guest call,
// with the same effects (the client's X-User replaced by the token's
// subject, the user property for the access log, the decision counted).
// Another token, or the same one sent twice, goes to the guest.
func TestJWTMemoizedDecision(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	logFile := filepath.Join(t.TempDir(), "access.log")
	h := gatewaytest.StartBundled(t, bundledChain, map[string]string{"echo": up.URL, "log": logFile})
	alice, bob := gatewaytest.DemoToken(t), gatewaytest.DemoToken(t, "-sub", "bob")

	for i := range 3 {
		resp, body := h.Do("GET", "/orders/1", nil, "Authorization", "Bearer "+alice, "X-User", "mallory")
		if resp.StatusCode != 200 || gatewaytest.DecodeEcho(t, body).Header.Get("X-User") != "alice" {
			t.Fatalf("request %d with alice's token: %d %s", i, resp.StatusCode, body)
		}
	}
	if calls, hits := callsOf(t, h, "auth"); calls != 1 || hits != 2 {
		t.Errorf("alice x3: %d guest calls, %d memo hits; want 1 and 2", calls, hits)
	}
	resp, body := h.Do("GET", "/orders/1", nil, "Authorization", "Bearer "+bob)
	if resp.StatusCode != 200 || gatewaytest.DecodeEcho(t, body).Header.Get("X-User") != "bob" {
		t.Errorf("bob's token: %d %s", resp.StatusCode, body)
	}
	// alice's token twice: a different key, and the guest refuses it.
	req, _ := http.NewRequest("GET", h.URL()+"/orders/1", nil)
	req.Header.Add("Authorization", "Bearer "+alice)
	req.Header.Add("Authorization", "Bearer "+alice)
	if resp, err := gatewaytest.Client.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("two Authorization headers: %v %v, want 400", resp.StatusCode, err)
	}
	if calls, hits := callsOf(t, h, "auth"); calls != 3 || hits != 2 {
		t.Errorf("after bob and a doubled header: %d guest calls, %d memo hits; want 3 and 2", calls, hits)
	}
	m := h.Gather()
	if !strings.Contains(m, `lintel_plugin_jwt_auth_decisions_total{filter="auth",result="allowed"} 4`) {
		t.Errorf("memo hits not counted as decisions:\n%s", m)
	}
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 5 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines = readJSONLines(t, logFile)
	}
	var users []string
	for _, l := range lines {
		if u, _ := l["user"].(string); u != "" {
			users = append(users, u)
		}
	}
	if len(users) < 3 || users[1] != "alice" || users[2] != "alice" {
		t.Errorf("access log users %v: memo hits must set the user property too", users)
	}
}

// TestHeaderRewriteMemoized: a header-rewrite phase whose changes are the
// same for every message is called once and then replayed by the host,
// request and response alike, with the same effect on every request; a
// phase with a template or a rename is called every time, and an error
// response is never answered from the memo.
func TestHeaderRewriteMemoized(t *testing.T) {
	var n atomic.Int32
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "up-"+strconv.Itoa(int(n.Add(1))))
		w.Header().Set("X-Powered-By", "php")
		gatewaytest.Echo(w, r)
	})
	h := gatewaytest.StartBundled(t, `
[filters.fixed]
plugin = "header-rewrite"
config.request = { set = { X-Gateway = "lintel" }, remove = ["X-Debug"] }
config.response = { set = { X-Served-By = "lintel" }, remove = ["X-Powered-By"] }
[filters.templated]
plugin = "header-rewrite"
config.request = { set = { X-Id = "{request_id}" } }
config.response = { rename = { Server = "X-Upstream-Server" } }
[services.echo]
targets = ["{{echo}}"]
[services.down]
targets = ["http://127.0.0.1:1"]
[[routes]]
path = "/fixed/*rest"
service = "echo"
filters = ["fixed"]
[[routes]]
path = "/templated/*rest"
service = "echo"
filters = ["templated"]
[[routes]]
path = "/down/*rest"
service = "down"
filters = ["fixed"]
`, map[string]string{"echo": up.URL})

	for i := range 3 {
		resp, body := h.Do("GET", "/fixed/1", nil, "X-Debug", "1", "X-Gateway", "spoofed")
		rq := gatewaytest.DecodeEcho(t, body).Header
		if resp.StatusCode != 200 || rq.Get("X-Debug") != "" || strings.Join(rq.Values("X-Gateway"), ",") != "lintel" ||
			resp.Header.Get("X-Served-By") != "lintel" || resp.Header.Get("X-Powered-By") != "" {
			t.Fatalf("fixed, request %d: %d, request headers %v, response headers %v", i, resp.StatusCode, rq, resp.Header)
		}
	}
	if calls, hits := callsOf(t, h, "fixed"); calls != 2 || hits != 4 {
		t.Errorf("fixed x3: %d guest calls, %d memo hits; want 2 (a request and a response phase) and 4", calls, hits)
	}

	ids := map[string]bool{}
	for i := range 3 {
		resp, body := h.Do("GET", "/templated/1", nil)
		id := gatewaytest.DecodeEcho(t, body).Header.Get("X-Id")
		if resp.StatusCode != 200 || id == "" || ids[id] || resp.Header.Get("Server") != "" ||
			!strings.HasPrefix(resp.Header.Get("X-Upstream-Server"), "up-") {
			t.Fatalf("templated, request %d: %d, X-Id %q (seen: %v), response headers %v", i, resp.StatusCode, id, ids, resp.Header)
		}
		ids[id] = true
	}
	if calls, hits := callsOf(t, h, "templated"); calls != 6 || hits != 0 {
		t.Errorf("templated x3: %d guest calls, %d memo hits; want 6 and 0", calls, hits)
	}

	// The proxy's own error answer: the request phase is replayed, the
	// response phase is the guest's.
	resp, _ := h.Do("GET", "/down/1", nil)
	if resp.StatusCode != 502 || resp.Header.Get("X-Served-By") != "lintel" {
		t.Errorf("an upstream down: %d, response headers %v", resp.StatusCode, resp.Header)
	}
	if calls, hits := callsOf(t, h, "fixed"); calls != 3 || hits != 5 {
		t.Errorf("after an error response: %d guest calls, %d memo hits; want 3 and 5", calls, hits)
	}
}
