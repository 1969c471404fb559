package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/lintelhq/lintel/core/config"
)

// retryPolicy is a config.Retry made ready to apply.
type retryPolicy struct {
	attempts      int
	connect       bool
	reset         bool
	timeout       bool
	unavailable   bool
	statuses      [600]bool // the statuses retried
	perTry        time.Duration
	backoff       time.Duration
	maxBackoff    time.Duration
	ratio         float64
	floor         int64 // retries a budget window allows whatever the ratio
	nonIdempotent bool
	maxBody       int64
}

func newRetryPolicy(c *config.Retry) *retryPolicy {
	p := &retryPolicy{
		attempts:      c.Attempts,
		perTry:        c.PerTryTimeout.D(),
		backoff:       c.Backoff.D(),
		maxBackoff:    c.MaxBackoff.D(),
		ratio:         c.Budget,
		floor:         int64(c.MinPerSecond) * budgetSlots,
		nonIdempotent: c.NonIdempotent,
		maxBody:       int64(c.MaxBody),
	}
	for _, on := range c.On {
		switch on {
		case "connect":
			p.connect = true
		case "reset":
			p.reset = true
		case "timeout":
			p.timeout = true
		case "unavailable":
			p.unavailable = true
		case "5xx":
			for i := 500; i < 600; i++ {
				p.statuses[i] = true
			}
		default:
			if n, err := strconv.Atoi(on); err == nil && n >= 400 && n < 600 {
				p.statuses[n] = true
			}
		}
	}
	return p
}

// roundTrip sends req to a target and, while an attempt fails in a way
// the policy retries, to another one (the same when there is no other),
// until the attempts or the budget run out. The last attempt's result is
// returned as it came: a response of a status retried in vain reaches
// the client.
func (p *retryPolicy) roundTrip(s *backend, req *http.Request) (*http.Response, error) {
	t := s.pick(req, nil)
	if t == nil {
		if len(s.set.Load().targets) == 0 {
			s.metrics.rejected(s.Name, "no_address")
			return nil, errNoAddress
		}
		s.metrics.rejected(s.Name, "circuit_open")
		return nil, errCircuitOpen
	}
	s.budget.request(time.Now())
	if p.attempts < 2 {
		return s.send(req, t, p.perTry)
	}
	req, err := p.keepBody(req)
	if err != nil {
		return nil, err
	}
	for n := 1; ; n++ {
		out := req
		if n > 1 && req.GetBody != nil {
			body, _ := req.GetBody() // a buffer's reader: no error
			r := *req
			r.Body = body
			out = &r
		}
		resp, err := s.send(out, t, p.perTry)
		on := p.retryOn(req, resp, err)
		if on == "" || n >= p.attempts || req.Context().Err() != nil {
			return resp, err
		}
		next := s.pick(req, t)
		if next == nil {
			// Every other circuit is open: the outage is known.
			return resp, err
		}
		if !s.budget.spend(time.Now(), p.ratio, p.floor) {
			s.metrics.retryDenied(s.Name)
			return resp, err
		}
		if resp != nil {
			// Read a little of the failed answer so its connection can
			// serve again.
			_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
			resp.Body.Close()
		}
		s.metrics.retried(s.Name, on)
		s.log.Debug("retrying", "on", on, "failed", t.label(), "next", next.label(), "attempt", n+1)
		if f, ok := req.Context().Value(stateKey{}).(*forward); ok {
			f.retries++
		}
		if err := sleep(req.Context(), p.wait(n)); err != nil {
			return nil, err
		}
		t = next
	}
}

// retryOn returns the condition of On an attempt's outcome meets ("connect",
// "reset", "timeout", "unavailable" or its status), or "" when it is not to be retried:
// it succeeded, failed in a way not retried, or the request may not be
// sent again.
func (p *retryPolicy) retryOn(req *http.Request, resp *http.Response, err error) string {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replayable {
		return ""
	}
	if err != nil && connectFailed(err) {
		// The request never left: any method may go elsewhere.
		if p.connect {
			return "connect"
		}
		return ""
	}
	if !p.nonIdempotent && !idempotent(req.Method) {
		return ""
	}
	switch {
	case err == nil:
		if p.statuses[resp.StatusCode] {
			return strconv.Itoa(resp.StatusCode)
		}
		// gRPC answers a call refused before it ran (a server going
		// away) with its status in the head: "trailers-only".
		if p.unavailable && resp.Header.Get("Grpc-Status") == "14" {
			return "unavailable"
		}
	case req.Context().Err() != nil || clientFault(err):
	case isTimeout(err):
		if p.timeout {
			return "timeout"
		}
	case p.reset:
		return "reset"
	}
	return ""
}

// idempotent reports whether a method's requests may be repeated
// (RFC 9110 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// keepBody returns req with its body kept in memory to be sent again
// (GetBody set) when it is at most maxBody bytes. A larger body is sent
// once, as it streams: the bytes read to learn its size go first.
func (p *retryPolicy) keepBody(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil || req.ContentLength > p.maxBody {
		return req, nil
	}
	data, err := io.ReadAll(io.LimitReader(req.Body, p.maxBody+1))
	if err != nil {
		return nil, err
	}
	r := *req
	if int64(len(data)) > p.maxBody {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(data), req.Body), req.Body}
		return &r, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return &r, nil
}

// wait is the pause before retry n (from 1): "full jitter", a random
// duration up to backoff doubled n-1 times, at most maxBackoff.
func (p *retryPolicy) wait(n int) time.Duration {
	ceiling := p.maxBackoff
	if n-1 < 32 {
		ceiling = min(p.maxBackoff, p.backoff<<(n-1))
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// budget counts a service's requests and retries over the last
// budgetSlots seconds, one slot a second, so that retries stay within a
// share of the requests (Envoy's and Linkerd's retry budgets). Counts
// are approximate under concurrency: a slot being reused may lose an
// increment.
type budget struct {
	slots [budgetSlots]budgetSlot
}

const budgetSlots = 10

type budgetSlot struct {
	sec, requests, retries atomic.Int64
}

func (b *budget) slot(now time.Time) *budgetSlot {
	sec := now.Unix()
	s := &b.slots[sec%budgetSlots]
	if old := s.sec.Load(); old != sec && s.sec.CompareAndSwap(old, sec) {
		s.requests.Store(0)
		s.retries.Store(0)
	}
	return s
}

func (b *budget) request(now time.Time) { b.slot(now).requests.Add(1) }

// spend takes a retry from the budget, when the retries of the window
// are fewer than ratio of its requests plus floor.
func (b *budget) spend(now time.Time, ratio float64, floor int64) bool {
	sec := now.Unix()
	var requests, retries int64
	for i := range b.slots {
		s := &b.slots[i]
		if sec-s.sec.Load() < budgetSlots {
			requests += s.requests.Load()
			retries += s.retries.Load()
		}
	}
	if float64(retries) >= ratio*float64(requests)+float64(floor) {
		return false
	}
	b.slot(now).retries.Add(1)
	return true
}

// tryTimer bounds one attempt until its response head (per_try_timeout).
type tryTimer struct {
	timer  *time.Timer
	cancel context.CancelFunc
	state  atomic.Int32 // tryRunning, then tryFired or tryStopped
}

const (
	tryRunning = iota
	tryFired
	tryStopped
)

// startTry makes out's context end after d, unless stop comes first.
func startTry(out *http.Request, d time.Duration) *tryTimer {
	ctx, cancel := context.WithCancel(out.Context())
	*out = *out.WithContext(ctx)
	t := &tryTimer{cancel: cancel}
	t.timer = time.AfterFunc(d, func() {
		if t.state.CompareAndSwap(tryRunning, tryFired) {
			cancel()
		}
	})
	return t
}

// stop ends the bound once the transport returned. A response whose head
// came in time keeps its context until its body is closed, however long
// the body takes; an attempt the bound cut becomes errTryTimeout.
func (t *tryTimer) stop(resp *http.Response, err error) (*http.Response, error) {
	if !t.state.CompareAndSwap(tryRunning, tryStopped) {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, errTryTimeout
	}
	t.timer.Stop()
	switch {
	case err != nil:
		t.cancel()
	case resp.StatusCode == http.StatusSwitchingProtocols:
		// The body is the connection, which must stay unwrapped; the
		// request's end cancels its context.
	default:
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: t.cancel}
	}
	return resp, err
}

// errTryTimeout is an attempt cut by per_try_timeout: a timeout (504 when
// it is the last).
var errTryTimeout net.Error = tryTimeout{}

type tryTimeout struct{}

func (tryTimeout) Error() string   { return "no response head within the retry policy's per_try_timeout" }
func (tryTimeout) Timeout() bool   { return true }
func (tryTimeout) Temporary() bool { return true }

// cancelBody ends an attempt's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
