package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/config"
)

type source struct{ ready bool }

func (s *source) Ready() bool { return s.ready }
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
	if code, _ := get("/readyz", ""); code != 503 {
		t.Errorf("readyz while draining: %d", code)
	}
	if code, body := get("/metrics", "localhost:9901"); code != 200 || !strings.Contains(body, "lintel_plugin_test_total 1") {
		t.Errorf("metrics %d %q", code, body)
	}
	code, body := get("/plugins", "")
	var ps []Plugin
	if json.Unmarshal([]byte(body), &ps); code != 200 || len(ps) != 1 || ps[0].Instances != 3 || ps[0].ABI != "http-wasm + lintel v1" {
		t.Errorf("plugins %d %s", code, body)
	}
	if code, _ := get("/healthz", "attacker.example"); code != 403 {
		t.Errorf("foreign Host: %d, want 403", code)
	}
	if code, _ := get("/nope", ""); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
}
