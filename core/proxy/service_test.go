package proxy_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/proxy"
)

// service builds a proxy.Service over targets with the config defaults
// (round robin, the default retry policy, 10s cool-down) and src's
// changes.
func service(t *testing.T, src string, targets ...string) *proxy.Service {
	t.Helper()
	return serviceTLS(t, src, nil, targets...)
}

// serviceTLS is service with https targets verified by tc.
func serviceTLS(t *testing.T, src string, tc *tls.Config, targets ...string) *proxy.Service {
	t.Helper()
	quoted := make([]string, len(targets))
	for i, u := range targets {
		quoted[i] = fmt.Sprintf("%q", u)
	}
	cfg, err := config.Parse("t.toml", []byte("[services.s]\ntargets = ["+strings.Join(quoted, ", ")+"]\n"+src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	s := proxy.NewService(cfg.Services["s"], tc, nil, slog.New(slog.DiscardHandler))
	t.Cleanup(s.Close)
	return s
}

func deadURL(t *testing.T) string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// hostEcho answers with the Host it was sent.
func hostEcho(name string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", name, r.Host, r.URL.Path)
	}))
}

// send makes a request through s (a body as a server's: no GetBody) and
// returns its status and body, or 0 and the error.
func send(t *testing.T, s http.RoundTripper, method, path, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = struct{ io.Reader }{strings.NewReader(body)}
	}
	req, _ := http.NewRequest(method, "http://placeholder"+path, r)
	resp, err := s.RoundTrip(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRoundTripGoesToTheTargetsInTurnWithTheirHost(t *testing.T) {
	a, b := hostEcho("a"), hostEcho("b")
	defer a.Close()
	defer b.Close()
	s := service(t, "", a.URL, b.URL)
	seen := map[string]bool{}
	for range 4 {
		code, got := send(t, s, "GET", "/p", "")
		if code != 200 {
			t.Fatal(code, got)
		}
		name, rest, _ := strings.Cut(got, " ")
		seen[name] = true
		if want := strings.TrimPrefix(map[string]string{"a": a.URL, "b": b.URL}[name], "http://") + " /p"; rest != want {
			t.Errorf("target %s got %q, want Host and path %q", name, rest, want)
		}
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("round robin reached %v", seen)
	}
}

func TestConnectFailureRetriesAnotherTargetAndCoolsTheFirstDown(t *testing.T) {
	up := hostEcho("up")
	defer up.Close()
	s := service(t, "", deadURL(t), up.URL)
	for range 4 {
		if code, got := send(t, s, "GET", "/p", ""); code != 200 || !strings.HasPrefix(got, "up ") {
			t.Fatalf("GET: %d %q", code, got)
		}
	}
	if !s.Healthy() {
		t.Error("a service with one target up reports unhealthy")
	}
}

func TestEveryTargetDownIsUnhealthyUntilTheCoolDownEnds(t *testing.T) {
	s := service(t, "fail_cooldown = \"200ms\"", deadURL(t))
	if code, _ := send(t, s, "GET", "/p", ""); code != 0 {
		t.Fatal("a dead target answered")
	}
	if s.Healthy() {
		t.Error("healthy with its only target down")
	}
	time.Sleep(250 * time.Millisecond)
	if !s.Healthy() {
		t.Error("still unhealthy after the cool-down")
	}
}

func TestForwardAnswersForAFailedUpstream(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) }))
	defer slow.Close()
	for name, c := range map[string]struct {
		svc    *proxy.Service
		status int
	}{
		"refused":   {service(t, "", deadURL(t)), 502},
		"timed out": {service(t, "timeout = \"50ms\"", slow.URL), 504},
	} {
		x := &exchange.Exchange{Request: httptest.NewRequest("GET", "/p", nil), BaseLog: slog.New(slog.DiscardHandler)}
		w := httptest.NewRecorder()
		c.svc.Forward(x, w, "/p")
		if w.Code != c.status || !x.TargetFailed() || strings.Contains(w.Body.String(), "127.0.0.1") {
			t.Errorf("%s: %d %q, TargetFailed %v", name, w.Code, w.Body, x.TargetFailed())
		}
	}
}
