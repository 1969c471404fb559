package supervisor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lintelhq/lintel/core/state/statetest"
	"github.com/lintelhq/lintel/internal/otlptest"
	"github.com/lintelhq/lintel/internal/testbuild"
	"github.com/lintelhq/lintel/internal/testlog"
	"github.com/lintelhq/lintel/internal/testpki"
)

// pluginsDir returns a fresh plugins directory holding the bundled
// header-rewrite plugin and the Go test guests gostamp and gostateless.
func pluginsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "plugins")
	os.Mkdir(dir, 0o755)
	copyFile(t, filepath.Join(testbuild.Bundled(t), "header-rewrite.wasm"), filepath.Join(dir, "header-rewrite.wasm"))
	for _, name := range []string{"gostamp", "gostateless", "stamp", "trap"} {
		copyFile(t, filepath.Join("../../testdata/wasm", name+".wasm"), filepath.Join(dir, name+".wasm"))
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rig is a supervisor serving a config file in a temporary directory,
// in front of an upstream that echoes the method and body size.
type rig struct {
	t        *testing.T
	s        *Supervisor
	file     string
	plugins  string
	upstream string
	logs     *testlog.Buffer
	reg      *prometheus.Registry
}

func newRig(t *testing.T, config string) *rig {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, n)
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	r := &rig{t: t, file: filepath.Join(dir, "gateway.toml"), plugins: pluginsDir(t), upstream: up.URL, logs: &testlog.Buffer{}, reg: prometheus.NewRegistry()}
	r.write(config)
	s, err := Start(Options{Path: r.file, Log: slog.New(slog.NewTextHandler(r.logs, nil)), Metrics: r.reg})
	if err != nil {
		t.Fatal(err)
	}
	r.s = s
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		if t.Failed() {
			t.Logf("log:\n%s", r.logs)
		}
	})
	return r
}

// write replaces the config file; {{plugins}} and {{upstream}} are
// filled in, and a [plugins] table and a test listener are added.
func (r *rig) write(config string) {
	r.t.Helper()
	config = strings.ReplaceAll(config, "{{upstream}}", r.upstream)
	head := fmt.Sprintf("[plugins]\ndir = %q\ncache_dir = %q\n", r.plugins, filepath.Join(os.TempDir(), "lintel-test-wasm-cache"))
	if !strings.Contains(config, "[admin]") {
		head += "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"t0ken\"\n"
	}
	if !strings.Contains(config, "[listeners.") {
		head += "[listeners.web]\nlisten = \"127.0.0.1:0\"\n"
	}
	if err := os.WriteFile(r.file, []byte(head+config), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) url(path string) string { return "http://" + r.s.Addr("web") + path }

func (r *rig) get(path string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.Get(r.url(path))
	if err != nil {
		r.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// generationConfig is a config whose header-rewrite stamps X-Generation
// with n and which has a route of its own, /v<n>/. Its Go plugins get a
// call timeout a loaded machine under -race cannot reach: the tests are
// about reloads, not deadlines.
func generationConfig(n int) string {
	return fmt.Sprintf(`
[services.echo]
targets = ["{{upstream}}"]
[filters.tag]
plugin = "header-rewrite"
timeout = "10s"
config = { response = { set = { "X-Generation" = "%d" } } }
[filters.stamp]
plugin = "gostamp"
timeout = "10s"
[[routes]]
path = "/echo/*rest"
service = "echo"
filters = ["tag", "stamp"]
[[routes]]
path = "/v%d/*rest"
service = "echo"
filters = ["tag"]
`, n, n)
}

// TestReloadUnderLoadLosesNothing reloads twenty times, changing routes
// and a plugin's config each time, and the listener's idle timeout every
// other time (which takes a new http.Server on the same socket), while
// four clients send GETs and POSTs with bodies on keep-alive
// connections: no request fails, and each reload's answers show up.
func TestReloadUnderLoadLosesNothing(t *testing.T) {
	config := func(n int) string {
		return fmt.Sprintf("[server]\nwatch = false\n[listeners.web]\nlisten = \"127.0.0.1:0\"\nidle_timeout = \"%ds\"\n", 60+n%2) + generationConfig(n)
	}
	r := newRig(t, config(0))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	var total int
	seen := map[string]bool{}
	body := bytes.Repeat([]byte("x"), 4096)
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", r.url("/echo/a"), nil)
				want := "GET /echo/a 0"
				if (c+i)%2 == 1 {
					req, _ = http.NewRequest("POST", r.url("/echo/b"), bytes.NewReader(body))
					want = "POST /echo/b 4096"
				}
				resp, err := client.Do(req)
				var got string
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					got = string(b)
				}
				mu.Lock()
				total++
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case resp.StatusCode != 200 || got != want || resp.Header.Get("X-Stamped") != "1":
					failures = append(failures, fmt.Sprintf("%d %q X-Stamped=%q", resp.StatusCode, got, resp.Header.Get("X-Stamped")))
				default:
					seen[resp.Header.Get("X-Generation")] = true
				}
				mu.Unlock()
			}
		}()
	}
	const reloads = 20
	for n := 1; n <= reloads; n++ {
		time.Sleep(50 * time.Millisecond)
		r.write(config(n))
		if err := r.s.Reload("test"); err != nil {
			t.Fatal(err)
		}
		if resp, _ := r.get(fmt.Sprintf("/v%d/x", n)); resp.StatusCode != 200 || resp.Header.Get("X-Generation") != strconv.Itoa(n) {
			t.Errorf("after reload %d: /v%d/ answers %d with X-Generation %q", n, n, resp.StatusCode, resp.Header.Get("X-Generation"))
		}
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed across %d reloads; first: %s", len(failures), total, reloads, failures[0])
	}
	if !seen[strconv.Itoa(reloads)] {
		t.Errorf("no answer from the last generation; saw %v", seen)
	}
	if resp, _ := r.get("/v1/x"); resp.StatusCode != 404 {
		t.Errorf("route of generation 1 still answers %d", resp.StatusCode)
	}
	r.s.retiring.Wait()
	if got := testutil.ToFloat64(r.s.m.reloads.WithLabelValues("success")); got != reloads {
		t.Errorf("lintel_config_reloads_total{result=success} = %v, want %d", got, reloads)
	}
	t.Logf("%d requests, %d reloads, %d failed; generations seen by clients: %d", total, reloads, len(failures), len(seen))
}

// TestBrokenReloadKeepsRunning: a config with an error, and one naming a
// plugin that traps at load, are refused with file, line and key; the
// running configuration keeps serving; the admin API and the metrics
// say so, and the next good config goes live.
func TestBrokenReloadKeepsRunning(t *testing.T) {
	r := newRig(t, generationConfig(1))
	r.write(generationConfig(2) + "\n[[routes]]\nservice = \"echo\"\n")
	err := r.s.Reload("test")
	if err == nil || !strings.Contains(err.Error(), r.file+":") || !strings.Contains(err.Error(), "routes[2].path: required") {
		t.Fatalf("reload of a broken config: %v; want file:line: routes[2].path: required", err)
	}
	if resp, _ := r.get("/echo/x"); resp.StatusCode != 200 || resp.Header.Get("X-Generation") != "1" {
		t.Errorf("after a failed reload: %d, X-Generation %q; want the old config serving", resp.StatusCode, resp.Header.Get("X-Generation"))
	}
	if got := testutil.ToFloat64(r.s.m.ok); got != 0 {
		t.Errorf("lintel_config_last_reload_successful = %v after a failure", got)
	}
	st := adminGet(t, r, "/reload")
	if !strings.Contains(st, `"generation":1`) || !strings.Contains(st, "routes[2].path") {
		t.Errorf("GET /reload after a failure: %s", st)
	}

	r.write(generationConfig(2) + "[filters.bad]\nplugin = \"trap\"\n[[routes]]\npath = \"/bad\"\nservice = \"echo\"\nfilters = [\"bad\"]\n")
	if err := r.s.Reload("test"); err != nil {
		// trap.wasm traps per request, not at load: it loads.
		t.Fatalf("trap.wasm should load: %v", err)
	}
	r.write(generationConfig(3) + "[filters.missing]\nplugin = \"nope\"\n")
	if err := r.s.Reload("test"); err == nil || !strings.Contains(err.Error(), `filters.missing: plugin "nope"`) {
		t.Fatalf("reload naming a missing plugin: %v", err)
	}
	if resp, _ := r.get("/echo/x"); resp.Header.Get("X-Generation") != "2" {
		t.Errorf("X-Generation %q, want 2 still", resp.Header.Get("X-Generation"))
	}
	r.write(generationConfig(4))
	if err := r.s.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := r.get("/echo/x"); resp.Header.Get("X-Generation") != "4" {
		t.Errorf("X-Generation %q after a good reload, want 4", resp.Header.Get("X-Generation"))
	}
	if got := testutil.ToFloat64(r.s.m.ok); got != 1 {
		t.Errorf("lintel_config_last_reload_successful = %v after a success", got)
	}
}

func adminGet(t *testing.T, r *rig, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + r.s.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestReloadMovesListener: a listener's new address is opened before
// the old one closes.
func TestReloadMovesListener(t *testing.T) {
	cfg := func(listen string) string {
		return fmt.Sprintf("[server]\nwatch = false\n[listeners.web]\nlisten = %q\n", listen) + generationConfig(1)
	}
	first, second := freeAddr(t), freeAddr(t)
	r := newRig(t, cfg(first))
	if resp, _ := r.get("/echo/x"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	r.write(cfg(second))
	if err := r.s.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if r.s.Addr("web") != second {
		t.Fatalf("listener on %s, want %s", r.s.Addr("web"), second)
	}
	if resp, _ := r.get("/echo/x"); resp.StatusCode != 200 {
		t.Errorf("new address: %s", resp.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := (&http.Client{Timeout: time.Second}).Get("http://" + first + "/echo/x")
		if err != nil {
			break
		}
		c.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("old address still served after the move")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNewPluginGoesLiveByWatching: with the watcher on, dropping a new
// .wasm into the plugins directory and naming it in the config goes
// live without a signal.
func TestNewPluginGoesLiveByWatching(t *testing.T) {
	base := "[server]\nwatch_interval = \"100ms\"\n[services.echo]\ntargets = [\"{{upstream}}\"]\n"
	r := newRig(t, base+"[[routes]]\npath = \"/echo/*rest\"\nservice = \"echo\"\n")
	if resp, _ := r.get("/echo/x"); resp.Header.Get("X-Stamped") != "" {
		t.Fatal("stamped before the plugin exists")
	}
	copyFile(t, filepath.Join("../../testdata/wasm", "stamp.wasm"), filepath.Join(r.plugins, "dropped.wasm"))
	r.write(base + "[filters.dropped]\n[[routes]]\npath = \"/echo/*rest\"\nservice = \"echo\"\nfilters = [\"dropped\"]\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, _ := r.get("/echo/x"); resp.Header.Get("X-Stamped") == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new plugin did not go live")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(r.logs.String(), `msg=reloaded reason="files changed"`) {
		t.Errorf("no reload line in the log")
	}
}

// TestPinnedPluginRefusesReplacedFile: a filter pinning its plugin's
// sha256 refuses a file written over it; the running plugin stays.
func TestPinnedPluginRefusesReplacedFile(t *testing.T) {
	stamp, _ := os.ReadFile("../../testdata/wasm/stamp.wasm")
	cfg := fmt.Sprintf("[services.echo]\ntargets = [\"{{upstream}}\"]\n[filters.stamp]\nsha256 = \"%x\"\n[[routes]]\npath = \"/echo/*rest\"\nservice = \"echo\"\nfilters = [\"stamp\"]\n", sha(stamp))
	r := newRig(t, cfg)
	copyFile(t, "../../testdata/wasm/trap.wasm", filepath.Join(r.plugins, "stamp.wasm"))
	err := r.s.Reload("test")
	if err == nil || !strings.Contains(err.Error(), "filters.stamp") || !strings.Contains(err.Error(), "pins") {
		t.Fatalf("reload with a replaced pinned plugin: %v", err)
	}
	if resp, _ := r.get("/echo/x"); resp.StatusCode != 200 || resp.Header.Get("X-Stamped") != "1" {
		t.Errorf("after the refused file: %d X-Stamped=%q; want the pinned plugin serving", resp.StatusCode, resp.Header.Get("X-Stamped"))
	}
}

// TestAdminReloadAndConfig: POST /reload with the token reloads; /config
// shows the effective config with the token redacted.
func TestAdminReloadAndConfig(t *testing.T) {
	r := newRig(t, generationConfig(1))
	r.write(generationConfig(2))
	req, _ := http.NewRequest("POST", "http://"+r.s.AdminAddr()+"/reload", nil)
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /reload: %s", resp.Status)
	}
	if resp, _ := r.get("/echo/x"); resp.Header.Get("X-Generation") != "2" {
		t.Errorf("X-Generation %q after POST /reload", resp.Header.Get("X-Generation"))
	}
	cfg := adminGet(t, r, "/config")
	// header-rewrite's schema shows the headers it sets, not their values.
	if strings.Contains(cfg, "t0ken") || !strings.Contains(cfg, `token = "[redacted]"`) || !strings.Contains(cfg, `X-Generation = "[redacted]"`) || !strings.Contains(cfg, `timeout = "10s"`) {
		t.Errorf("/config:\n%s", cfg)
	}
	if m := adminGet(t, r, "/metrics"); !strings.Contains(m, `lintel_plugin_instances{filter="tag",state="idle"}`) || !strings.Contains(m, `lintel_config_reloads_total{result="success"} 1`) {
		t.Errorf("/metrics lacks pool or reload metrics:\n%s", m)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

// TestReloadsDoNotLeak reloads a config with four Go plugins many times
// and compares the process's memory with its level after the first
// reload: retired generations must give back their runtimes, compiled
// code and instances (the leak Traefik users report on reload must not
// exist here). LINTEL_RELOADS=50 runs the full evidence; the default is
// 10.
func TestReloadsDoNotLeak(t *testing.T) {
	n := 10
	if v, _ := strconv.Atoi(os.Getenv("LINTEL_RELOADS")); v > 0 {
		n = v
	}
	config := func(i int) string {
		return fmt.Sprintf(`
[server]
watch = false
[services.echo]
targets = ["{{upstream}}"]
[filters.tag]
plugin = "header-rewrite"
timeout = "10s"
config = { response = { set = { "X-Generation" = "%d" } } }
[filters.tag2]
plugin = "header-rewrite"
timeout = "10s"
config = { request = { set = { "X-Seen" = "%d" } } }
[filters.stamp]
plugin = "gostamp"
timeout = "10s"
[filters.stateless]
plugin = "gostateless"
timeout = "10s"
[[routes]]
path = "/echo/*rest"
service = "echo"
filters = ["tag", "tag2", "stamp", "stateless"]
`, i, i)
	}
	r := newRig(t, config(0))
	// The level is taken after a few reloads: the first ones grow the
	// allocator's and the runtime's pools to their working size.
	const warm = 5
	var base uint64
	for i := 1; i <= n; i++ {
		r.write(config(i))
		if err := r.s.Reload("test"); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if resp, _ := r.get("/echo/x"); resp.Header.Get("X-Generation") != strconv.Itoa(i) {
				t.Fatalf("reload %d: X-Generation %q", i, resp.Header.Get("X-Generation"))
			}
		}
		r.s.retiring.Wait()
		if i != warm && i%10 != 0 {
			continue
		}
		rss, heap := settledMemory()
		if i == warm {
			base = rss
		}
		t.Logf("after reload %d: RSS %.1f MiB (%+.1f%% of reload %d), Go heap %.1f MiB", i, mib(rss), 100*(float64(rss)/float64(base)-1), warm, mib(heap))
		// A generation of these four Go plugins holds about 64 MiB
		// (compiled code and warm instances): one kept would show.
		if rss > base+base/10+8<<20 && !raceEnabled {
			t.Errorf("RSS grew from %.1f MiB to %.1f MiB between reload %d and %d", mib(base), mib(rss), warm, i)
		}
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// settledMemory returns RSS and the Go heap in use after a full
// collection that returns freed memory to the system.
func settledMemory() (rss, heap uint64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/statm")
	var size, resident uint64
	fmt.Sscan(string(b), &size, &resident)
	return resident * uint64(os.Getpagesize()), ms.HeapInuse
}

// TestCertificateRotationByWatching: certificate files written over are
// picked up by the watcher and served on the same socket, without a
// signal and without closing the listener.
func TestCertificateRotationByWatching(t *testing.T) {
	ca := testpki.New(t)
	cert, key := ca.Issue(t, "site", "site.test")
	cfg := fmt.Sprintf("[server]\nwatch_interval = \"100ms\"\n[listeners.web]\nlisten = \"127.0.0.1:0\"\n[listeners.web.tls]\ncertificates = [{ cert = %q, key = %q }]\n", cert, key) + generationConfig(1)
	r := newRig(t, cfg)
	addr := r.s.Addr("web")
	serial := func() string {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "site.test", RootCAs: ca.Pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	time.Sleep(20 * time.Millisecond) // a new modification time
	ca.Issue(t, "site", "site.test")  // writes over the same files
	deadline := time.Now().Add(10 * time.Second)
	for serial() == before {
		if time.Now().After(deadline) {
			t.Fatal("the rewritten certificate was not picked up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.s.Addr("web") != addr {
		t.Errorf("listener moved from %s to %s", addr, r.s.Addr("web"))
	}
}

// TestLogLevelFollowsConfig: log.level applies at start and on reload.
func TestLogLevelFollowsConfig(t *testing.T) {
	up := httptest.NewServer(http.NotFoundHandler())
	defer up.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.toml")
	cfg := func(level string) string {
		return fmt.Sprintf("[log]\nlevel = %q\n[admin]\nlisten = \"\"\n[server]\nwatch = false\n[listeners.web]\nlisten = \"127.0.0.1:0\"\n", level)
	}
	os.WriteFile(file, []byte(cfg("warn")), 0o644)
	lv := new(slog.LevelVar)
	s, err := Start(Options{Path: file, Log: slog.New(slog.DiscardHandler), Level: lv})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if lv.Level() != slog.LevelWarn {
		t.Errorf("level %v at start, want WARN", lv.Level())
	}
	os.WriteFile(file, []byte(cfg("debug")), 0o644)
	if err := s.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if lv.Level() != slog.LevelDebug {
		t.Errorf("level %v after reload, want DEBUG", lv.Level())
	}
}

// TestInFlightRequestFinishesOnOldChain: a request held by a slow
// upstream across a reload finishes on the chain it started on (its
// response phase stamps the old generation), and once it is done the old
// generation's plugin pools close.
func TestInFlightRequestFinishesOnOldChain(t *testing.T) {
	r := newRig(t, generationConfig(1))
	release := make(chan struct{})
	arrived := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "slow")
	}))
	defer slow.Close()
	r.upstream = slow.URL
	r.write(generationConfig(1))
	if err := r.s.Reload("test"); err != nil {
		t.Fatal(err)
	}
	old := r.s.cur.Load()
	done := make(chan *http.Response)
	go func() {
		resp, err := http.Get(r.url("/echo/held"))
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	<-arrived
	r.write(generationConfig(2))
	if err := r.s.Reload("test"); err != nil {
		t.Fatal(err)
	}
	close(release)
	resp := <-done
	if resp == nil {
		t.FailNow()
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Generation") != "1" {
		t.Errorf("held request: %d, X-Generation %q; want 200 from generation 1's chain", resp.StatusCode, resp.Header.Get("X-Generation"))
	}
	r.s.retiring.Wait()
	for _, f := range old.engine.Filters() {
		if live, _ := f.Stats(); live != 0 {
			t.Errorf("retired filter %s still has %d instances", f.Name(), live)
		}
	}
}

// TestReloadOntoBusyAddressKeepsState pins a bug: a reload whose new
// listener address could not be opened released the new generation with
// the shared state store it had taken over from the running one, closing
// the running gateway's Redis connections under it.
func TestReloadOntoBusyAddressKeepsState(t *testing.T) {
	redis := statetest.RedisServer(t)
	cfg := func(listen string) string {
		return fmt.Sprintf("[state]\nbackend = \"redis\"\nredis_url = %q\n[listeners.web]\nlisten = %q\n", redis, listen) + generationConfig(1)
	}
	r := newRig(t, cfg("127.0.0.1:0"))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	r.write(cfg(busy.Addr().String()))
	if err := r.s.Reload("test"); err == nil || !strings.Contains(err.Error(), `listener "web"`) {
		t.Fatalf("reload onto a busy address: %v", err)
	}
	if resp, _ := r.get("/echo/x"); resp.StatusCode != 200 {
		t.Errorf("after the failed reload: %d", resp.StatusCode)
	}
	if _, _, err := r.s.cur.Load().store.Get(context.Background(), "probe"); err != nil {
		t.Errorf("the running generation's state store was closed: %v", err)
	}
}

// TestTracingFollowsReload: a reload moves tracing to another receiver
// with another service name; the retiring configuration exports what it
// recorded to its own receiver before it goes.
func TestTracingFollowsReload(t *testing.T) {
	first, second := otlptest.NewHTTP(t), otlptest.NewHTTP(t)
	cfg := func(endpoint, name string) string {
		return fmt.Sprintf(`
[server]
watch = false
[tracing]
endpoint = %q
service_name = %q
[services.echo]
targets = ["{{upstream}}"]
[[routes]]
path = "/a"
service = "echo"
`, endpoint, name)
	}
	r := newRig(t, cfg(first.URL, "one"))
	r.get("/a")
	r.write(cfg(second.URL, "two"))
	if err := r.s.Reload("test"); err != nil {
		t.Fatal(err)
	}
	r.get("/a")
	r.s.Shutdown(context.Background())
	for i, c := range []struct {
		rcv  *otlptest.Receiver
		name string
	}{{first, "one"}, {second, "two"}} {
		spans := c.rcv.Wait(2, 5*time.Second)
		if len(spans) != 2 || spans[0].Resource["service.name"] != c.name {
			t.Errorf("receiver %d: %d spans %v, want 2 of service %q", i+1, len(spans), spans, c.name)
		}
	}
}
