// Package gatewaytest runs real gateways for tests: built from a TOML
// snippet, served on loopback sockets, in front of real upstream servers,
// with native test filters or the WebAssembly plugin engine (the bundled
// plugins built from source). core/gateway's tests and the end-to-end
// suite (internal/e2e) share it.
package gatewaytest

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
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/filter/filtertest"
	"github.com/lintelhq/lintel/core/gateway"
	"github.com/lintelhq/lintel/core/state"
	"github.com/lintelhq/lintel/core/wasm"
	"github.com/lintelhq/lintel/internal/testbuild"
	"github.com/lintelhq/lintel/internal/testlog"
)

// Root is the repository's directory.
var Root = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "../..")
}()

// Harness is a running gateway built from a TOML snippet, with its log.
type Harness struct {
	T       testing.TB
	G       *gateway.Gateway
	Server  *gateway.Server
	Filters *filtertest.Factory // the native test filters, when no engine
	Engine  *wasm.Engine        // the plugin engine, when plugins are used
	Logs    *testlog.Buffer
	State   *state.Memory
	Metrics *prometheus.Registry
}

// Factory builds the filters of a harness's config.
type Factory func(h *Harness, cfg *config.Config, log *slog.Logger) filter.Factory

// Start builds and serves a gateway from src with the native test
// filters (core/filter/filtertest). In src, each {{name}} is replaced by
// vars[name] (upstream URLs). Listeners should use "127.0.0.1:0"; a file
// without [listeners] gets one such listener, "default".
func Start(t testing.TB, src string, vars map[string]string) *Harness {
	t.Helper()
	return StartWith(t, src, vars, nil)
}

// StartWASM is Start with the plugin engine, loading plugins from
// testdata/wasm.
func StartWASM(t testing.TB, src string, vars map[string]string) *Harness {
	t.Helper()
	return StartPlugins(t, filepath.Join(Root, "testdata/wasm"), src, vars)
}

// StartPlugins is Start with the plugin engine loading plugins from dir.
func StartPlugins(t testing.TB, dir, src string, vars map[string]string) *Harness {
	t.Helper()
	return StartWith(t, pluginsTable(dir)+src, vars, WASM)
}

// StartBundled is Start with the bundled plugins (built from source) and
// {{jwks}} naming the demo keys' JWKS file; src holds [filters.*],
// services and routes.
func StartBundled(t testing.TB, src string, vars map[string]string) *Harness {
	t.Helper()
	return StartBundledWith(t, src, vars, nil)
}

// StartBundledWith is StartBundled with the plugins' shared state in
// store (nil: the harness's in-memory store).
func StartBundledWith(t testing.TB, src string, vars map[string]string, store state.Store) *Harness {
	t.Helper()
	src = strings.ReplaceAll(src, "{{jwks}}", filepath.Join(Root, "testdata/keys/demo-jwks.json"))
	src = pluginsTable(testbuild.Bundled(t)) + src
	if store == nil {
		return StartWith(t, src, vars, WASM)
	}
	return StartWith(t, src, vars, EngineOver(store))
}

func pluginsTable(dir string) string {
	return fmt.Sprintf("[plugins]\ndir = %q\ncache_dir = %q\n", dir, filepath.Join(os.TempDir(), "lintel-test-wasm-cache"))
}

// WASM is the plugin engine over the harness's state and metrics.
func WASM(h *Harness, cfg *config.Config, log *slog.Logger) filter.Factory {
	return EngineOver(h.State)(h, cfg, log)
}

// EngineOver is the plugin engine with the given shared state.
func EngineOver(s state.Store) Factory {
	return func(h *Harness, cfg *config.Config, log *slog.Logger) filter.Factory {
		e, err := wasm.NewEngine(cfg, wasm.Options{Log: log, State: s, Metrics: h.Metrics})
		if err != nil {
			h.T.Fatal(err)
		}
		h.T.Cleanup(func() { e.Close() })
		h.Engine = e
		return e
	}
}

// StartWith is Start with the filters factory builds (nil: the native
// test filters).
func StartWith(t testing.TB, src string, vars map[string]string, factory Factory) *Harness {
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
	h := &Harness{T: t, Filters: &filtertest.Factory{}, Logs: &testlog.Buffer{}, State: state.NewMemory(time.Minute), Metrics: prometheus.NewRegistry()}
	t.Cleanup(func() { h.State.Close() })
	log := slog.New(slog.NewTextHandler(h.Logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var filters filter.Factory = h.Filters
	if factory != nil {
		filters = factory(h, cfg, log)
	}
	g, err := gateway.New(cfg, gateway.Options{Log: log, Filters: filters, Metrics: h.Metrics})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	h.G, h.Server = g, gateway.NewServer(log)
	if _, err := h.Server.Serve(g); err != nil {
		g.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Server.Shutdown(ctx)
		if t.Failed() {
			t.Logf("gateway log:\n%s", h.Logs.String())
		}
	})
	return h
}

// Addr returns the address a listener is bound to.
func (h *Harness) Addr(listener string) string { return h.Server.Addr(listener) }

// URL returns the base URL of a listener ("default" when omitted).
func (h *Harness) URL(listener ...string) string {
	name := "default"
	if len(listener) > 0 {
		name = listener[0]
	}
	return "http://" + h.Addr(name)
}

// Do sends a request through the gateway and returns the response with
// its body read; header holds name, value pairs.
func (h *Harness) Do(method, path string, body io.Reader, header ...string) (*http.Response, string) {
	h.T.Helper()
	req, err := http.NewRequest(method, h.URL()+path, body)
	if err != nil {
		h.T.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return h.Send(req)
}

// Send sends req and returns the response with its body read.
func (h *Harness) Send(req *http.Request) (*http.Response, string) {
	h.T.Helper()
	resp, err := Client.Do(req)
	if err != nil {
		h.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.T.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// Client is the HTTP client of the harness's requests.
var Client = &http.Client{Timeout: 10 * time.Second}

// Raw sends bytes on a new connection to the default listener and returns
// what the gateway answered until it closed the connection or went quiet.
func (h *Harness) Raw(request string) string {
	h.T.Helper()
	conn, err := net.Dial("tcp", h.Addr("default"))
	if err != nil {
		h.T.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		h.T.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(conn)
	return string(b)
}

// RawResponse sends one request on a new connection and parses the first
// response.
func (h *Harness) RawResponse(request string) (*http.Response, string) {
	h.T.Helper()
	out := h.Raw(request)
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		h.T.Fatalf("no HTTP response to %q: %v; got %q", request, err, out)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Gather returns the harness's metrics in Prometheus text format.
func (h *Harness) Gather() string {
	h.T.Helper()
	var b strings.Builder
	mfs, err := h.Metrics.Gather()
	if err != nil {
		h.T.Fatal(err)
	}
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&b, mf)
	}
	return b.String()
}

// Upstream is a test service that records what reached it.
type Upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

// NewUpstream starts a service; handler may be nil for one that echoes
// the request as JSON (Echo).
func NewUpstream(t testing.TB, handler http.HandlerFunc) *Upstream {
	u := &Upstream{}
	if handler == nil {
		handler = Echo
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

// Count is the number of requests that reached it.
func (u *Upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// Requests returns every request that reached it, with its body.
func (u *Upstream) Requests() ([]*http.Request, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs), slices.Clone(u.body)
}

// Last is the latest request that reached it, nil before any.
func (u *Upstream) Last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return nil
	}
	return u.reqs[len(u.reqs)-1]
}

// Echoed is what Echo answers.
type Echoed struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Host   string      `json:"host"`
	Header http.Header `json:"header"`
	Body   string      `json:"body"`
}

// Echo answers with the request it got, as JSON (Echoed).
func Echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Echoed{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header, string(b)})
}

// DecodeEcho decodes what Echo answered.
func DecodeEcho(t testing.TB, body string) Echoed {
	t.Helper()
	var e Echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an echo: %v: %q", err, body)
	}
	return e
}

// ProblemBody decodes an RFC 9457 body, checking its content type and
// status.
func ProblemBody(t testing.TB, resp *http.Response, body string) map[string]any {
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

// FreeAddr returns a loopback address nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// DeadAddr returns a loopback URL where nothing listens.
func DeadAddr(t testing.TB) string { return "http://" + FreeAddr(t) }

// DemoToken mints a token with cmd/demo-token (RS256, the demo key).
func DemoToken(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"run", "./cmd/demo-token"}, args...)...)
	cmd.Dir = Root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("demo-token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// OrdersRoute proxies /api/v1/orders/* to {{orders}} as /orders/*.
const OrdersRoute = `
[services.orders]
targets = ["{{orders}}"]

[[routes]]
name = "orders"
path = "/api/v1/orders/*rest"
methods = ["GET", "POST"]
service = "orders"
rewrite = "/orders/{rest}"
`

// WSEcho is an upstream that accepts a WebSocket handshake and echoes the
// first five bytes it receives, prefixed with "echo:".
func WSEcho(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Connection") != "Upgrade" {
		http.Error(w, "not an upgrade", 400)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
	brw.Flush()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(brw, buf); err == nil {
		conn.Write([]byte("echo:" + string(buf)))
	}
}

// WSRoundTrip does a raw WebSocket upgrade through the gateway to an
// upstream running WSEcho, checks the echo, and returns the 101 response.
func (h *Harness) WSRoundTrip(path string) *http.Response {
	h.T.Helper()
	conn, err := net.Dial("tcp", h.Addr("default"))
	if err != nil {
		h.T.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") == "" {
		h.T.Fatalf("handshake: %v %v", resp, err)
	}
	conn.Write([]byte("hello"))
	got := make([]byte, 10)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "echo:hello" {
		h.T.Errorf("echo: %q, %v", got, err)
	}
	return resp
}
