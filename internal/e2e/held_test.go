package e2e

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// TestHeldRequestsThroughGoGuests holds many concurrent requests on a slow
// upstream behind a chain of four Go guests that declared themselves
// stateless, and reports the instances and memory they cost. The guests
// release their instance after handle_request, so instances stay far
// below concurrency x filters.
//
// LINTEL_HELD=1000 runs the full evidence (1,000 requests held 1 s); the
// default is a short run of 100 requests held 200 ms.
func TestHeldRequestsThroughGoGuests(t *testing.T) {
	n, hold := 100, 200*time.Millisecond
	if v, _ := strconv.Atoi(os.Getenv("LINTEL_HELD")); v > 0 {
		n, hold = v, time.Second
	}
	var inFlight, peak atomic.Int64
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		c := inFlight.Add(1)
		for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
		}
		time.Sleep(hold)
		inFlight.Add(-1)
	})
	var tables strings.Builder
	for i := range 4 {
		fmt.Fprintf(&tables, "[filters.g%d]\nplugin = \"gostateless\"\nmax_instances = 64\npool_timeout = \"5s\"\n", i)
	}
	h := gatewaytest.StartWASM(t, wasmRoute(`"g0", "g1", "g2", "g3"`, tables.String()), map[string]string{"echo": up.URL})
	rssBefore := rss()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(h.URL() + "/echo/held")
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
				if err == nil {
					resp.Body.Close()
				}
				return
			}
			resp.Body.Close()
		}()
	}
	// Sample instances and memory while the requests are held.
	var maxLive int
	var rssPeak int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			live := 0
			for _, f := range h.Engine.Filters() {
				l, _ := f.Stats()
				live += l
			}
			maxLive = max(maxLive, live)
			rssPeak = max(rssPeak, rss())
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-sampled
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed", failed.Load(), n)
	}
	t.Logf("%d requests held %v at once (upstream saw %d concurrently) through 4 Go guests: peak %d instances in all (%d if pinned), RSS %+.1f MiB",
		n, hold, peak.Load(), maxLive, 4*n, float64(rssPeak-rssBefore)/(1<<20))
	// Pinned guests would need four instances per request in flight;
	// stateless ones need as many as can run at once: the pool caps them
	// at two per core each, whatever the concurrency.
	if most := 4 * 2 * runtime.GOMAXPROCS(0); maxLive > most {
		t.Errorf("peak %d instances for %d held requests through 4 stateless guests, want at most %d (two per core each)", maxLive, n, most)
	}
}

// rss returns the process's resident set size in bytes (Linux).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
