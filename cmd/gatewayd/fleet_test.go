package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/state/statetest"
	"github.com/lintelhq/lintel/internal/testbuild"
	"github.com/lintelhq/lintel/internal/testlog"
)

// buildFleet builds gatewayd once per test binary; the bundled plugins
// come from testbuild.
var (
	fleetOnce sync.Once
	fleetBin  string
	fleetErr  error
)

func buildFleet(t *testing.T) (bin, plugins string) {
	t.Helper()
	fleetOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lintel-fleet")
		if err != nil {
			fleetErr = err
			return
		}
		fleetBin = filepath.Join(dir, "gatewayd")
		if out, err := exec.Command("go", "build", "-o", fleetBin, ".").CombinedOutput(); err != nil {
			fleetErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if fleetErr != nil {
		t.Fatal(fleetErr)
	}
	return fleetBin, testbuild.Bundled(t)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGatewayd runs one gatewayd process on a config and waits for it.
func startGatewayd(t *testing.T, bin, config, addr string) *testlog.Buffer {
	t.Helper()
	file := filepath.Join(t.TempDir(), "gateway.toml")
	os.WriteFile(file, []byte(config), 0o644)
	_, logs := runGatewayd(t, bin, file, addr)
	return logs
}

// runGatewayd runs gatewayd on a config file until addr accepts
// connections; the test's cleanup stops it.
func runGatewayd(t *testing.T, bin, file, addr string) (*exec.Cmd, *testlog.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, "-config", file)
	logs := &testlog.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return cmd, logs
		}
		if i > 300 {
			t.Fatalf("gatewayd did not start:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func limitConfig(plugins, addr, redisURL, upstream, onError string) string {
	return fmt.Sprintf(`
[plugins]
dir = %q
[admin]
listen = ""
[state]
backend = "redis"
redis_url = %q
key_prefix = "fleet:"
timeout = "2s" # generous: a loaded CI machine must not turn slow answers into 503s
[listeners.web]
listen = %q
[filters.limit]
plugin = "rate-limit"
trusted = true
config = { key = ["route"], rate = 1, period = "1h", burst = 25, on_state_error = %q }
[services.up]
targets = [%q]
[[routes]]
name = "limited"
path = "/*rest"
service = "up"
filters = ["limit"]
`, plugins, redisURL, addr, onError, upstream)
}

// TestFleetRateLimitIsExact: two gatewayd processes share a Redis; 100
// concurrent requests split between them are admitted exactly burst (25)
// times in all.
func TestFleetRateLimitIsExact(t *testing.T) {
	bin, plugins := buildFleet(t)
	redisURL := statetest.RedisServer(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	a, b := freeAddr(t), freeAddr(t)
	startGatewayd(t, bin, limitConfig(plugins, a, redisURL, up.URL, "deny"), a)
	startGatewayd(t, bin, limitConfig(plugins, b, redisURL, up.URL, "deny"), b)

	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for i := range 100 {
		addr := a
		if i%2 == 1 {
			addr = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + addr + "/x")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[200] != 25 || n[429] != 75 {
		t.Errorf("two gatewayds sharing Redis: %v, want exactly 25 admitted", n)
	}
}

// TestRedisOutageFailureModes stops Redis under two gatewayds, one failing
// open and one failing closed, and starts it again: each behaves as its
// policy says, logs why, and recovers by itself. It also pins a bug: the
// Go SDK read state_get's -1 (backend failure) as a 4 GiB length and the
// guest trapped, so both gateways answered 500.
func TestRedisOutageFailureModes(t *testing.T) {
	bin, plugins := buildFleet(t)
	redis := statetest.StartRedis(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	open, closed := freeAddr(t), freeAddr(t)
	big := func(c string) string { return strings.Replace(c, "burst = 25", "burst = 100000", 1) }
	openLogs := startGatewayd(t, bin, big(limitConfig(plugins, open, redis.URL, up.URL, "allow")), open)
	closedLogs := startGatewayd(t, bin, big(limitConfig(plugins, closed, redis.URL, up.URL, "deny")), closed)
	status := func(addr string) int {
		resp, err := http.Get("http://" + addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status(open) != 200 || status(closed) != 200 {
		t.Fatal("not serving with Redis up")
	}

	redis.Stop()
	if got := status(open); got != 200 {
		t.Errorf("fail-open gateway with Redis down: %d, want 200", got)
	}
	if got := status(closed); got != 503 {
		t.Errorf("fail-closed gateway with Redis down: %d, want 503", got)
	}
	for name, logs := range map[string]*testlog.Buffer{"open": openLogs, "closed": closedLogs} {
		if !logs.WaitFor("rate limit state unavailable", "shared state unavailable") {
			t.Errorf("%s: no log line says why:\n%s", name, logs)
		}
	}

	redis.Start()
	deadline := time.Now().Add(10 * time.Second)
	for status(closed) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("fail-closed gateway did not recover after Redis came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status(open) != 200 {
		t.Error("fail-open gateway after recovery")
	}
}
