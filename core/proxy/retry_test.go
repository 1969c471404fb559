package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/config"
)

// scripted is an upstream whose answer to each request the test chooses.
type scripted struct {
	*httptest.Server
	hits   atomic.Int64
	bodies chan string // the bodies it received, when the test reads them
}

func newScripted(t *testing.T, name string, answer func(n int64, w http.ResponseWriter, r *http.Request)) *scripted {
	s := &scripted{bodies: make(chan string, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		select {
		case s.bodies <- string(b):
		default:
		}
		if answer != nil {
			answer(n, w, r)
		}
		if w.Header().Get("X-Answered") == "" {
			fmt.Fprintf(w, "%s %s", name, b)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// status503 answers 503 with a body.
func status503(_ int64, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Answered", "1")
	w.WriteHeader(503)
	io.WriteString(w, "unavailable")
}

// reset closes the connection without answering.
func reset(_ int64, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Answered", "1")
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// A 503 burst on one target: a GET goes on to the other target; a POST
// is not repeated (its 503 reaches the caller) unless the route says its
// upstream tolerates it, and then it arrives with its body whole.
func TestRetryOn503GoesToAnotherTargetIdempotentOnly(t *testing.T) {
	bad := newScripted(t, "bad", status503)
	good := newScripted(t, "good", nil)
	s := service(t, `retry = { on = ["503"], backoff = "1ms", max_backoff = "1ms" }`, bad.URL, good.URL)
	for range 4 {
		if code, body := send(t, s, "GET", "/p", ""); code != 200 || !strings.HasPrefix(body, "good") {
			t.Fatalf("GET: %d %q", code, body)
		}
	}
	codes := map[int]int{}
	for range 4 {
		code, _ := send(t, s, "POST", "/p", "order")
		codes[code]++
	}
	if codes[503] != 2 || codes[200] != 2 {
		t.Errorf("POSTs: %v, want two 503 (not repeated) and two 200", codes)
	}
	route := s.WithRetry(&config.Retry{Attempts: 2, On: []string{"503"}, NonIdempotent: true, MaxBody: 1 << 10, Budget: 1})
	for range 4 {
		if code, body := send(t, route, "POST", "/p", "order"); code != 200 || body != "good order" {
			t.Errorf("POST on a route that allows it: %d %q", code, body)
		}
	}
}

// A connection closed before the response head is retried ("reset").
func TestRetryOnReset(t *testing.T) {
	broken := newScripted(t, "broken", reset)
	good := newScripted(t, "good", nil)
	s := service(t, `retry = { backoff = "0s" }`, broken.URL, good.URL)
	for range 4 {
		if code, body := send(t, s, "GET", "/p", ""); code != 200 || !strings.HasPrefix(body, "good") {
			t.Errorf("GET: %d %q", code, body)
		}
	}
	if broken.hits.Load() == 0 {
		t.Error("the broken target was never tried")
	}
}

// A target that hangs is given up after per_try_timeout and the request
// goes on to another target, well within the service's timeout.
func TestPerTryTimeoutRetriesAHungTarget(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hung := newScripted(t, "hung", func(_ int64, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	good := newScripted(t, "good", nil)
	s := service(t, "timeout = \"10s\"\nretry = { on = [\"timeout\"], per_try_timeout = \"100ms\", backoff = \"0s\" }", hung.URL, good.URL)
	for range 2 {
		start := time.Now()
		if code, body := send(t, s, "GET", "/p", ""); code != 200 || !strings.HasPrefix(body, "good") {
			t.Errorf("GET: %d %q", code, body)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v: the per-try timeout did not cut the hung attempt", d)
		}
	}
	if hung.hits.Load() != 1 {
		t.Errorf("the hung target got %d requests, want 1 (then cooled down)", hung.hits.Load())
	}
}

// TestPerTryTimeoutDoesNotCutABodyAfterItsHead: the bound is on the
// response head; a body that streams for longer than it arrives whole.
func TestPerTryTimeoutDoesNotCutABodyAfterItsHead(t *testing.T) {
	up := newScripted(t, "", func(_ int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Answered", "1")
		for i := range 5 {
			fmt.Fprintf(w, "part%d ", i)
			w.(http.Flusher).Flush()
			time.Sleep(60 * time.Millisecond)
		}
	})
	s := service(t, `retry = { on = ["timeout"], per_try_timeout = "50ms" }`, up.URL)
	if code, body := send(t, s, "GET", "/p", ""); code != 200 || body != "part0 part1 part2 part3 part4 " {
		t.Errorf("GET: %d %q", code, body)
	}
}

// A body larger than max_body is sent once, whole, as it streams; a
// small one is kept and sent again after a failed connection.
func TestRetryKeepsOnlyABodySmallEnough(t *testing.T) {
	good := newScripted(t, "good", nil)
	big := strings.Repeat("b", 100)
	s := service(t, `retry = { max_body = 10, backoff = "0s" }`, good.URL)
	if code, body := send(t, s, "PUT", "/p", big); code != 200 || body != "good "+big {
		t.Errorf("large body: %d %q", code, body)
	}
	dead := deadURL(t)
	s = service(t, `retry = { max_body = 10, backoff = "0s" }`+"\nfail_cooldown = \"0s\"", dead, good.URL)
	codes := map[int]int{}
	for range 4 {
		for range 2 { // two in a row: one meets the dead target
			code, _ := send(t, s, "PUT", "/p", big)
			codes[code]++
		}
		if code, body := send(t, s, "PUT", "/p", "small"); code != 200 || body != "good small" {
			t.Errorf("small body after a failed connection: %d %q", code, body)
		}
	}
	if codes[0] == 0 {
		t.Errorf("a body over max_body was sent again: %v", codes)
	}
}

// An outage of every target: retries stop at the budget (20% of requests
// here, no floor), so they add at most a fifth to the upstream's load.
func TestRetryBudgetBoundsTheExtraLoad(t *testing.T) {
	down := newScripted(t, "down", status503)
	s := service(t, `retry = { attempts = 5, on = ["503"], budget = 0.2, min_per_second = 0, backoff = "0s" }`, down.URL)
	const n = 200
	for range n {
		if code, _ := send(t, s, "GET", "/p", ""); code != 503 {
			t.Fatalf("status %d, want the upstream's 503", code)
		}
	}
	extra := down.hits.Load() - n
	t.Logf("outage: %d requests, %d retries (%.1f%% extra load)", n, extra, 100*float64(extra)/n)
	if extra > n/5+1 || extra < n/5-5 {
		t.Errorf("%d retries for %d requests, want about %d (the budget)", extra, n, n/5)
	}
}

// TestRetryBudgetFloorLetsLowTrafficRetry: with little traffic a ratio
// alone would allow no retry; min_per_second does.
func TestRetryBudgetFloorLetsLowTrafficRetry(t *testing.T) {
	flaky := newScripted(t, "flaky", func(n int64, w http.ResponseWriter, r *http.Request) {
		if n%2 == 1 {
			status503(n, w, r)
		}
	})
	s := service(t, `retry = { on = ["503"], backoff = "0s" }`, flaky.URL)
	for range 3 {
		if code, _ := send(t, s, "GET", "/p", ""); code != 200 {
			t.Errorf("status %d: the retry the floor allows was not made", code)
		}
	}
}

// TestRetryNeverRetriesAnOpenCircuit: once the breaker opens the only
// target's circuit, the attempt in hand is the answer; the gateway's own
// refusal is not retried into the outage.
func TestRetryNeverRetriesAnOpenCircuit(t *testing.T) {
	down := newScripted(t, "down", status503)
	s := service(t, "breaker = { failures = 1, open_for = \"1m\" }\nretry = { attempts = 5, on = [\"503\"], backoff = \"0s\" }", down.URL)
	if code, _ := send(t, s, "GET", "/p", ""); code != 503 || down.hits.Load() != 1 {
		t.Errorf("status %d after %d attempts, want the upstream's 503 after 1", code, down.hits.Load())
	}
}

// TestBreakerOpensOnAFailureRatio: a target failing every other request
// never fails five in a row, but its failure ratio opens its circuit.
func TestBreakerOpensOnAFailureRatio(t *testing.T) {
	flaky := newScripted(t, "flaky", func(n int64, w http.ResponseWriter, r *http.Request) {
		if n%2 == 0 {
			status503(n, w, r)
		}
	})
	s := service(t, "retry = { attempts = 1 }\nbreaker = { failure_ratio = 0.4, min_requests = 10, open_for = \"1m\" }", flaky.URL)
	for range 10 {
		send(t, s, "GET", "/p", "")
	}
	if st := s.Targets()[0].Circuit; st != "open" {
		t.Fatalf("circuit %q after 5 failures in 10", st)
	}
	if code, body := send(t, s, "GET", "/p", ""); code != 0 || !strings.Contains(body, "circuit is open") || flaky.hits.Load() != 10 {
		t.Errorf("with the circuit open: %d %q, upstream hit %d times", code, body, flaky.hits.Load())
	}
}

// TestMaxPendingQueuesThenRefuses: beyond max_concurrent, max_pending
// requests wait for a slot and are then served; one more is refused at
// once.
func TestMaxPendingQueuesThenRefuses(t *testing.T) {
	release := make(chan struct{})
	slow := newScripted(t, "slow", func(_ int64, w http.ResponseWriter, r *http.Request) { <-release })
	s := service(t, "max_concurrent = 1\nmax_pending = 1", slow.URL)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = send(t, s, "GET", "/p", "")
		}()
		for deadline := time.Now().Add(5 * time.Second); s.Pending() < int64(i) && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		}
	}
	for deadline := time.Now().Add(5 * time.Second); (slow.hits.Load() < 1 || s.Pending() < 1) && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	if code, body := send(t, s, "GET", "/p", ""); code != 0 || !strings.Contains(body, "max_concurrent") {
		t.Errorf("third request: %d %q, want refused at once", code, body)
	}
	close(release)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("the held and the queued request: %v, want both 200", codes)
	}
}
