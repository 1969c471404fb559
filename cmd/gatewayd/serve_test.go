package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeDrainsOnSIGTERM runs gatewayd in-process: it serves, and on
// SIGTERM lets an in-flight request finish before exiting 0.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	started := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			time.Sleep(300 * time.Millisecond)
		}
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	adminLn, _ := net.Listen("tcp", "127.0.0.1:0")
	adminAddr := adminLn.Addr().String()
	adminLn.Close()
	cfg := filepath.Join(t.TempDir(), "gateway.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[admin]
listen = %q
[listeners.web]
listen = %q
[services.up]
targets = [%q]
[[routes]]
path = "/*rest"
service = "up"
`, adminAddr, addr, up.URL)), 0o644)

	var stderr bytes.Buffer
	code := make(chan int)
	go func() { code <- run([]string{"-config", cfg, "-log-format", "json"}, io.Discard, &stderr) }()

	var resp *http.Response
	for i := 0; ; i++ {
		if resp, err = http.Get("http://" + addr + "/hello"); err == nil {
			break
		}
		if i > 100 {
			t.Fatalf("gatewayd never answered: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok /hello" {
		t.Fatalf("body %q", body)
	}

	// The admin listener: health, readiness, metrics; foreign Host refused.
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "go_goroutines", "/plugins": "null"} {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("admin %s: %d %.80q", path, resp.StatusCode, b)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+adminAddr+"/healthz", nil)
	req.Host = "evil.example"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("admin with a foreign Host: %v %v", resp, err)
	}

	slow := make(chan string)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-started
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if got := <-slow; got != "ok /slow" {
		t.Errorf("in-flight request during SIGTERM: %q", got)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d\n%s", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gatewayd did not exit after SIGTERM")
	}
	if !strings.Contains(stderr.String(), `"msg":"shutting down: draining in-flight requests"`) {
		t.Errorf("no drain log line:\n%s", stderr.String())
	}
}
