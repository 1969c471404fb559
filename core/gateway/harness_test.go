package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/filter/filtertest"
	"github.com/lintelhq/lintel/core/state"
	"github.com/lintelhq/lintel/core/wasm"
	"github.com/lintelhq/lintel/internal/testlog"
	"github.com/prometheus/client_golang/prometheus"
)

// harness is a running gateway built from a TOML snippet, with its log.
type harness struct {
	t       testing.TB
	g       *Gateway
	filters *filtertest.Factory
	logs    *testlog.Buffer
	state   *state.Memory
	metrics *prometheus.Registry
}

// start builds and starts a gateway from src. In src, each {{name}} is
// replaced by vars[name] (upstream URLs). Listeners should use
// "127.0.0.1:0"; a file without [listeners] gets one such listener.
func start(t testing.TB, src string, vars map[string]string) *harness {
	t.Helper()
	return startWith(t, src, vars, nil)
}

// startWASM is start with the WebAssembly plugin engine, loading plugins
// from testdata/wasm.
func startWASM(t testing.TB, src string, vars map[string]string) *harness {
	t.Helper()
	dir, _ := filepath.Abs("../../testdata/wasm")
	return startPlugins(t, dir, src, vars)
}

// startPlugins is start with the plugin engine loading plugins from dir.
func startPlugins(t testing.TB, dir, src string, vars map[string]string) *harness {
	t.Helper()
	src = fmt.Sprintf("[plugins]\ndir = %q\ncache_dir = %q\n", dir, filepath.Join(os.TempDir(), "lintel-test-wasm-cache")) + src
	return startWith(t, src, vars, wasmFactory)
}

// wasmFactory is the plugin engine over the harness's state and metrics.
func wasmFactory(h *harness, cfg *config.Config, log *slog.Logger) filter.Factory {
	return engineOver(h.state)(h, cfg, log)
}

// engineOver is the plugin engine with the given shared state.
func engineOver(s state.Store) func(*harness, *config.Config, *slog.Logger) filter.Factory {
	return func(h *harness, cfg *config.Config, log *slog.Logger) filter.Factory {
		e, err := wasm.NewEngine(cfg, wasm.Options{Log: log, State: s, Metrics: h.metrics})
		if err != nil {
			h.t.Fatal(err)
		}
		h.t.Cleanup(func() { e.Close() })
		return e
	}
}

func startWith(t testing.TB, src string, vars map[string]string, factory func(*harness, *config.Config, *slog.Logger) filter.Factory) *harness {
	t.Helper()
	if !strings.Contains(src, "[listeners.") {
		src = "[listeners.default]\nlisten = \"127.0.0.1:0\"\n" + src
	}
	for k, v := range vars {
		src = strings.ReplaceAll(src, "{{"+k+"}}", v)
	}
	cfg, err := config.Parse("test.toml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	h := &harness{t: t, filters: &filtertest.Factory{}, logs: &testlog.Buffer{}, state: state.NewMemory(time.Minute), metrics: prometheus.NewRegistry()}
	t.Cleanup(func() { h.state.Close() })
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var filters filter.Factory = h.filters
	if factory != nil {
		filters = factory(h, cfg, log)
	}
	g, err := New(cfg, Options{Log: log, Filters: filters, Metrics: h.metrics})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	h.g = g
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
		if t.Failed() {
			t.Logf("gateway log:\n%s", h.logs.String())
		}
	})
	return h
}

// url returns the base URL of a listener ("default" when omitted).
func (h *harness) url(listener ...string) string {
	name := "default"
	if len(listener) > 0 {
		name = listener[0]
	}
	return "http://" + h.g.Addr(name)
}

// do sends a request through the gateway and returns the response with
// its body read.
func (h *harness) do(method, path string, body io.Reader, header ...string) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url()+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return h.send(req)
}

func (h *harness) send(req *http.Request) (*http.Response, string) {
	h.t.Helper()
	resp, err := testClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

var testClient = &http.Client{Timeout: 10 * time.Second}

// raw sends bytes on a new connection to the listener and returns what the
// gateway answered until it closed the connection or went quiet.
func (h *harness) raw(request string) string {
	h.t.Helper()
	conn, err := net.Dial("tcp", h.g.Addr("default"))
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		h.t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(conn)
	return string(b)
}

// rawResponse sends one request on a new connection and parses the first
// response.
func (h *harness) rawResponse(request string) (*http.Response, string) {
	h.t.Helper()
	out := h.raw(request)
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		h.t.Fatalf("no HTTP response to %q: %v; got %q", request, err, out)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// upstream is a test service that records what reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

// newUpstream starts a service; handler may be nil for one that echoes
// the request as JSON.
func newUpstream(t testing.TB, handler http.HandlerFunc) *upstream {
	u := &upstream{}
	if handler == nil {
		handler = echo
	}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, r)
		u.body = append(u.body, string(b))
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		handler(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *upstream) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return nil
	}
	return u.reqs[len(u.reqs)-1]
}

// echoed is what echo answers.
type echoed struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Host   string      `json:"host"`
	Header http.Header `json:"header"`
	Body   string      `json:"body"`
}

func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(echoed{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header, string(b)})
}

func decodeEcho(t testing.TB, body string) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an echo: %v: %q", err, body)
	}
	return e
}

// problemBody decodes an RFC 9457 body.
func problemBody(t *testing.T, resp *http.Response, body string) map[string]any {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %q", ct, body)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body: %v: %q", err, body)
	}
	if p["status"] != float64(resp.StatusCode) {
		t.Errorf("problem status %v != response status %d", p["status"], resp.StatusCode)
	}
	return p
}

// deadAddr returns a loopback URL where nothing listens.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}
