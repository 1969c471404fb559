package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/config"
)

type source struct {
	ready   bool
	reloads int
	fail    bool
}

func (s *source) Config() ([]byte, error) { return []byte("[admin]\ntoken = \"[redacted]\"\n"), nil }
func (s *source) Reload(string) error {
	s.reloads++
	if s.fail {
		return errors.New("broken")
	}
	return nil
}
func (s *source) ReloadStatus() ReloadStatus {
	st := ReloadStatus{Generation: 1 + s.reloads}
	if s.fail {
		st.LastError = "gateway.toml:3: routes[0].path: required"
	}
	return st
}

func (s *source) NotReady() []string {
	if s.ready {
		return nil
	}
	return []string{`service "orders" has no target up`}
}
func (s *source) Upstreams() []Upstream { return nil }

func (s *source) Routes() []Route {
	return []Route{{Listener: "web", Name: "GET /v1/stock/:id", Methods: []string{"GET"}, Path: "/v1/stock/:id", Target: "grpc inventory pkg.Inventory/GetProduct"}}
}

func (s *source) Plugins() []Plugin {
	return []Plugin{{Filter: "auth", Plugin: "jwt-auth", Size: 10, SHA256: "ab", ABI: "http-wasm + lintel v1", Instances: 3, Idle: 2}}
}

func TestAdmin(t *testing.T) {
	src := &source{ready: true}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "lintel_plugin_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Inc()
	srv := httptest.NewServer(Handler(config.Admin{AllowedHosts: []string{"127.0.0.1", "localhost"}}, src, reg))
	defer srv.Close()
	get := func(path, host string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz", ""); code != 200 || body != "ready\n" {
		t.Errorf("readyz %d %q", code, body)
	}
	src.ready = false
	if code, body := get("/readyz", ""); code != 503 || !strings.Contains(body, `service "orders" has no target up`) {
		t.Errorf("readyz when not ready: %d %q (want the reason)", code, body)
	}
	if code, body := get("/metrics", "localhost:9901"); code != 200 || !strings.Contains(body, "lintel_plugin_test_total 1") {
		t.Errorf("metrics %d %q", code, body)
	}
	code, body := get("/plugins", "")
	var ps []Plugin
	if json.Unmarshal([]byte(body), &ps); code != 200 || len(ps) != 1 || ps[0].Instances != 3 || ps[0].ABI != "http-wasm + lintel v1" {
		t.Errorf("plugins %d %s", code, body)
	}
	code, body = get("/routes", "")
	if !strings.Contains(body, `"target":"grpc inventory pkg.Inventory/GetProduct"`) || code != 200 {
		t.Errorf("routes %d %s", code, body)
	}
	if code, _ := get("/healthz", "attacker.example"); code != 403 {
		t.Errorf("foreign Host: %d, want 403", code)
	}
	if code, _ := get("/nope", ""); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
}

func TestAdminReloadNeedsToken(t *testing.T) {
	src := &source{ready: true}
	hosts := []string{"127.0.0.1"}
	post := func(h http.Handler, auth string) (int, string) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		req, _ := http.NewRequest("POST", srv.URL+"/reload", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	off := Handler(config.Admin{AllowedHosts: hosts}, src, prometheus.NewRegistry())
	if code, _ := post(off, "Bearer anything"); code != 403 || src.reloads != 0 {
		t.Errorf("without admin.token: %d, %d reloads; want 403 and none", code, src.reloads)
	}
	on := Handler(config.Admin{AllowedHosts: hosts, Token: "s3cret"}, src, prometheus.NewRegistry())
	for _, auth := range []string{"", "Bearer wrong", "s3cret", "Basic s3cret"} {
		if code, _ := post(on, auth); code != 401 || src.reloads != 0 {
			t.Errorf("Authorization %q: %d, %d reloads; want 401 and none", auth, code, src.reloads)
		}
	}
	if code, body := post(on, "Bearer s3cret"); code != 200 || src.reloads != 1 || !strings.Contains(body, `"generation":2`) {
		t.Errorf("good token: %d %s", code, body)
	}
	src.fail = true
	if code, body := post(on, "Bearer s3cret"); code != 422 || !strings.Contains(body, "routes[0].path") {
		t.Errorf("failing reload: %d %s, want 422 with the error", code, body)
	}
}

// TestAdminPprofIsOptIn: Go's profiles are served only when admin.pprof
// is set.
func TestAdminPprofIsOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		srv := httptest.NewServer(Handler(config.Admin{AllowedHosts: []string{"127.0.0.1"}, Pprof: on}, &source{}, prometheus.NewRegistry()))
		resp, err := http.Get(srv.URL + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 404, true: 200}[on]; resp.StatusCode != want {
			t.Errorf("pprof %v: %d, want %d", on, resp.StatusCode, want)
		}
		srv.Close()
	}
}
