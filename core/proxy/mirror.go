package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/metrics"
)

// Mirror copies a share of a route's requests to another service and
// discards its answers. The client never waits for a copy: a copy is
// sent from its own goroutine, at most max_concurrent at once (more are
// dropped), and only for bodies the gateway may hold (max_body).
type Mirror struct {
	svc     *Service
	route   string
	share   float64
	maxBody int64
	slots   chan struct{}
	counted func(result string)
}

// credentials are the headers a copy never carries.
var credentials = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// NewMirror mirrors route's requests to svc as cfg says; reg counts them
// (nil: not counted).
func NewMirror(svc *Service, route string, cfg *config.Mirror, reg *prometheus.Registry) *Mirror {
	// A copy is sent once: retrying answers nobody reads would only add
	// to the mirror service's load.
	m := &Mirror{svc: svc.WithRetry(&config.Retry{Attempts: 1}), route: route, share: cfg.Share, maxBody: int64(cfg.MaxBody), slots: make(chan struct{}, cfg.MaxConcurrent), counted: func(string) {}}
	if reg != nil {
		vec := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lintel_mirror_requests_total",
			Help: "Requests copied to a mirror service, by route and result (sent, failed, busy: max_concurrent copies in flight, body_too_large).",
		}, []string{"route", "result"}))
		for _, r := range []string{"sent", "failed", "busy", "body_too_large"} {
			vec.WithLabelValues(route, r)
		}
		m.counted = func(result string) { vec.WithLabelValues(route, result).Inc() }
	}
	return m
}

// Copy sends a copy of x.Request, with upstream path path, to the mirror
// service, unless the request is not drawn for the share. A body is read
// (up to max_body) and put back for the request's own upstream, which
// receives it whole either way.
func (m *Mirror) Copy(x *exchange.Exchange, path string) {
	if m.share < 1 && rand.Float64() >= m.share {
		return
	}
	r := x.Request
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > m.maxBody {
			m.counted("body_too_large")
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, m.maxBody+1))
		// What was read goes back in front of the rest, for the upstream.
		r.Body = readCloser{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		if err != nil {
			return // the request's own upstream meets the error
		}
		if int64(len(b)) > m.maxBody {
			m.counted("body_too_large")
			return
		}
		body = b
	}
	select {
	case m.slots <- struct{}{}:
	default:
		m.counted("busy")
		return
	}
	// The copy outlives the request (never cancelled by its end), within
	// the mirror service's own timeout.
	ctx := context.WithoutCancel(r.Context())
	var cancel context.CancelFunc = func() {}
	if d := m.svc.Timeout(); d > 0 {
		ctx, cancel = context.WithTimeout(ctx, d)
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, "http://mirror", bytes.NewReader(body))
	if err != nil {
		cancel()
		<-m.slots
		return
	}
	out.URL.Path, out.URL.RawQuery = path, r.URL.RawQuery
	if path == r.URL.Path {
		out.URL.RawPath = r.URL.RawPath
	}
	if body == nil {
		out.Body = http.NoBody
	}
	out.Header = r.Header.Clone()
	for _, h := range credentials {
		out.Header.Del(h)
	}
	out.Header.Set("X-Lintel-Mirror", "1")
	x.ForwardHeaders(out.Header)
	go func() {
		defer func() { <-m.slots }()
		defer cancel()
		resp, err := m.svc.RoundTrip(out)
		if err != nil {
			m.counted("failed")
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		m.counted("sent")
	}()
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }
