package supervisor

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// watchedConfig is generationConfig(n) with a fast watcher.
func watchedConfig(n int) string {
	return "[server]\nwatch_interval = \"100ms\"\n" + generationConfig(n)
}

// waitGeneration waits until /v<n>/ answers with X-Generation n.
func (r *rig) waitGeneration(n int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(r.url(fmt.Sprintf("/v%d/x", n)))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && resp.Header.Get("X-Generation") == strconv.Itoa(n) {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (r *rig) reloads() float64 {
	return testutil.ToFloat64(r.s.m.reloads.WithLabelValues("success")) + testutil.ToFloat64(r.s.m.reloads.WithLabelValues("failure"))
}

// TestConfigWrittenDuringReloadIsNotLost: with reloads under load, 3 of
// 20 file changes never took effect, because the watcher fingerprinted the
// files after the reload and so counted a write that landed during it as
// seen. Writes here land at random points of the watcher's reloads; after
// each, the file last written is what serves.
func TestConfigWrittenDuringReloadIsNotLost(t *testing.T) {
	r := newRig(t, watchedConfig(0))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(r.url("/echo/a"))
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	n := 0
	for round := range 10 {
		// Two writes, the second while the watcher reloads the first
		// (a build of this config takes longer than the gap).
		n++
		r.write(watchedConfig(n))
		time.Sleep(time.Duration(200+40*round) * time.Millisecond)
		n++
		r.write(watchedConfig(n))
		if !r.waitGeneration(n, 10*time.Second) {
			t.Fatalf("round %d: the file last written (generation %d) never went live", round, n)
		}
	}
	if f := failed.Load(); f > 0 {
		t.Errorf("%d requests failed during the reloads", f)
	}
}

// TestExplicitReloadIsNotRepeatedByWatcher: a SIGHUP or admin reload left
// the watcher's fingerprint stale, so it reloaded the same file again.
func TestExplicitReloadIsNotRepeatedByWatcher(t *testing.T) {
	r := newRig(t, watchedConfig(1))
	r.write(watchedConfig(2))
	if err := r.s.Reload("SIGHUP"); err != nil {
		t.Fatal(err)
	}
	before := r.reloads()
	time.Sleep(600 * time.Millisecond)
	if after := r.reloads(); after != before {
		t.Errorf("the watcher reloaded %v more times after an explicit reload of the same file", after-before)
	}
}

// TestTruncatedConfigIsNotLoaded: truncating gateway.toml under a running
// gateway removed every route and moved the admin listener.
func TestTruncatedConfigIsNotLoaded(t *testing.T) {
	r := newRig(t, watchedConfig(1))
	admin := r.s.AdminAddr()
	for _, content := range []string{"", "# only a comment\n\n"} {
		if err := os.WriteFile(r.file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if resp, _ := r.get("/v1/x"); resp.StatusCode != 200 {
			t.Errorf("after writing %q: %d", content, resp.StatusCode)
		}
		if r.s.AdminAddr() != admin {
			t.Errorf("the admin listener moved to %s", r.s.AdminAddr())
		}
	}
	if st := adminGet(t, r, "/reload"); !strings.Contains(st, "no settings") {
		t.Errorf("GET /reload does not say why: %s", st)
	}
	// A refused file is not retried until it changes: one failure each.
	if got := testutil.ToFloat64(r.s.m.reloads.WithLabelValues("failure")); got != 2 {
		t.Errorf("%v failed reloads, want 2 (one per refused file)", got)
	}
	r.write(watchedConfig(2))
	if !r.waitGeneration(2, 5*time.Second) {
		t.Error("a good file after a truncated one did not go live")
	}
}

// TestReloadThatEmptiesAListenerIsRefused: a reload that would remove every
// route of a listener, or every listener, needs server.allow_empty_listeners.
func TestReloadThatEmptiesAListenerIsRefused(t *testing.T) {
	r := newRig(t, "[server]\nwatch = false\n"+generationConfig(1))
	r.write("[server]\nwatch = false\n[services.echo]\ntargets = [\"{{upstream}}\"]\n")
	err := r.s.Reload("test")
	if err == nil || !strings.Contains(err.Error(), r.file+":") || !strings.Contains(err.Error(), "listeners.web: the reload would leave this listener without routes") {
		t.Fatalf("reload without routes: %v", err)
	}
	if resp, _ := r.get("/v1/x"); resp.StatusCode != 200 {
		t.Errorf("routes gone after a refused reload: %d", resp.StatusCode)
	}
	r.write("[server]\nwatch = false\n[listeners.other]\nlisten = \"127.0.0.1:0\"\n[services.echo]\ntargets = [\"{{upstream}}\"]\n[[routes]]\npath = \"/x\"\nservice = \"echo\"\n")
	if err := r.s.Reload("test"); err == nil || !strings.Contains(err.Error(), "remove every listener (web)") {
		t.Fatalf("reload replacing every listener: %v", err)
	}
	r.write("[server]\nwatch = false\nallow_empty_listeners = true\n[services.echo]\ntargets = [\"{{upstream}}\"]\n")
	if err := r.s.Reload("test"); err != nil {
		t.Fatalf("reload with allow_empty_listeners: %v", err)
	}
	if resp, _ := r.get("/v1/x"); resp.StatusCode != 404 {
		t.Errorf("after an allowed emptying reload: %d", resp.StatusCode)
	}
}
