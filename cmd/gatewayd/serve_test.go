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
	cfg := filepath.Join(t.TempDir(), "gateway.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[listeners.web]
listen = %q
[services.up]
targets = [%q]
[[routes]]
path = "/*rest"
service = "up"
`, addr, up.URL)), 0o644)

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
