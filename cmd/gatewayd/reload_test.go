package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSIGHUPReloads runs gatewayd, rewrites its config and sends SIGHUP:
// the new routes answer, the old are gone, the process and its socket
// stay. The watcher is off, so only the signal can have done it.
func TestSIGHUPReloads(t *testing.T) {
	bin, plugins := buildFleet(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }))
	defer up.Close()
	addr := freeAddr(t)
	config := func(path string) string {
		return fmt.Sprintf("[server]\nwatch = false\n[plugins]\ndir = %q\n[admin]\nlisten = \"\"\n[listeners.web]\nlisten = %q\n[services.up]\ntargets = [%q]\n[[routes]]\npath = %q\nservice = \"up\"\n", plugins, addr, up.URL, path)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.toml")
	os.WriteFile(file, []byte(config("/before")), 0o644)
	cmd, logs := runGatewayd(t, bin, file, addr)
	status := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status("/before") != 200 || status("/after") != 404 {
		t.Fatal("first config not served")
	}
	os.WriteFile(file, []byte(config("/after")), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	if !logs.WaitFor("reason=SIGHUP generation=2") {
		t.Fatalf("no reload logged:\n%s", logs)
	}
	if status("/after") != 200 || status("/before") != 404 {
		t.Errorf("after SIGHUP: /after %d, /before %d", status("/after"), status("/before"))
	}

	os.WriteFile(file, []byte(config("/after")+"[[routes]]\nservice = \"up\"\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	if !logs.WaitFor("reload failed", "routes[1].path: required") {
		t.Fatalf("broken config: no error logged:\n%s", logs)
	}
	if status("/after") != 200 {
		t.Error("broken config: the running one stopped serving")
	}
}
