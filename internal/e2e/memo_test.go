package e2e

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
