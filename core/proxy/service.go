// Package proxy sends requests to upstream services: balancing over a
// service's targets, keep-alive connection pools, timeouts, retries within
// a budget, circuit breakers, concurrency bounds, and passive and active
// health (a target that fails is skipped for a while).
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/tracing"
)

var _ http.RoundTripper = (*Service)(nil)

// Service is one upstream service. It is an http.RoundTripper: a request
// sent through it goes to one of the service's targets, whatever its URL's
// scheme and host and its Host field say (the target's host is sent, so
// name-based virtual hosts route it); the path and query are the caller's.
//
// A Service is a view of its backend with a retry policy: WithRetry makes
// another view, for a route that overrides the policy, sharing the
// targets, connections, breakers and retry budget.
type Service struct {
	*backend
	retry *retryPolicy
	rp    reverseProxy
}

// backend is what every view of a service shares.
type backend struct {
	Name string
	cfg  config.Service
	log  *slog.Logger
	tls  *tls.Config // for https targets; nil: the system's roots and the target's name

	set      atomic.Pointer[targetSet]
	resolver *resolver
	checker  *checker // nil without a health check
	metrics  *Metrics
	budget   budget
	// slots holds a token per request in flight (max_concurrent);
	// nil without a bound. pending counts those waiting for one. The
	// gauges show both in /metrics (nil without metrics).
	slots                       chan struct{}
	pending                     atomic.Int64
	inFlightGauge, pendingGauge prometheus.Gauge

	start sync.Once
	stop  chan struct{}
	wg    sync.WaitGroup
}

// NewService builds a service from its configuration (already
// validated). tlsConfig is for https targets; nil means the system's
// roots and the target's host name. With services.dns, the targets' names
// are resolved once here (within the DNS timeout); Start re-resolves
// them on the interval.
func NewService(cfg *config.Service, tlsConfig *tls.Config, m *Metrics, log *slog.Logger) *Service {
	s := &backend{Name: cfg.Name, cfg: *cfg, log: log.With("service", cfg.Name), tls: tlsConfig, metrics: m, stop: make(chan struct{})}
	if cfg.MaxConcurrent > 0 {
		s.slots = make(chan struct{}, cfg.MaxConcurrent)
		s.inFlightGauge, s.pendingGauge = m.slots(s.Name)
	}
	m.start(s.Name)
	s.resolver = newResolver(s)
	if cfg.DNS != nil {
		s.resolver.refresh()
	} else {
		addrs, _ := s.resolver.resolve(context.Background()) // as written: no lookup
		s.update(addrs)
	}
	if cfg.HealthCheck != nil {
		s.checker = &checker{s: s, cfg: *cfg.HealthCheck}
	}
	return s.view(cfg.Retry)
}

// Start starts the active health check and the re-resolution of target
// names, when the service has them; Close stops them. A gateway calls it
// when it starts serving, so `gatewayd validate` probes nothing.
func (s *backend) Start() {
	s.start.Do(func() {
		if s.checker != nil {
			s.every(s.cfg.HealthCheck.Interval.D(), s.checker.round)
		}
		if s.cfg.DNS != nil {
			s.every(s.cfg.DNS.Interval.D(), s.resolver.refresh)
		}
	})
}

// every runs fn every interval, on its own goroutine, until Close.
func (s *backend) every(interval time.Duration, fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				fn()
			}
		}
	}()
}

// WithRetry returns a view of the service that retries by policy p (a
// route's) instead of the service's own.
func (s *Service) WithRetry(p *config.Retry) *Service { return s.view(p) }

func (s *backend) view(p *config.Retry) *Service {
	v := &Service{backend: s, retry: newRetryPolicy(p)}
	v.rp = newReverseProxy(v)
	return v
}

// Healthy reports whether at least one target is not cooling down after
// a failure.
func (s *backend) Healthy() bool {
	now := time.Now()
	for _, t := range s.set.Load().targets {
		if !t.coolingDown(now) {
			return true
		}
	}
	return false
}

// Close stops the health check and the resolution, and drops idle
// upstream connections.
func (s *backend) Close() {
	s.start.Do(func() {}) // a service never started is not started now
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
	for _, t := range s.set.Load().targets {
		t.transport.CloseIdleConnections()
	}
}

// RoundTrip sends req to a target chosen by the balancer, and again, by
// the retry policy, when that attempt fails. Beyond max_concurrent (and
// max_pending) requests in flight, or when every target's circuit is
// open, it sends nothing and fails at once (errBusy, errCircuitOpen).
func (s *Service) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.slots != nil {
		if err := s.acquire(req.Context()); err != nil {
			return nil, err
		}
		defer s.release()
	}
	return s.retry.roundTrip(s.backend, req)
}

// InFlight is how many requests are in flight to the service; counted
// with max_concurrent only (0 otherwise).
func (s *backend) InFlight() int { return len(s.slots) }

// Pending is how many requests wait for a slot of max_concurrent.
func (s *backend) Pending() int64 { return s.pending.Load() }

// acquire takes a slot of max_concurrent, waiting (at most as long as
// ctx) when fewer than max_pending requests already wait.
func (s *backend) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		s.held(s.inFlightGauge, 1)
		return nil
	default:
	}
	if s.pending.Add(1) > int64(s.cfg.MaxPending) {
		s.pending.Add(-1)
		s.metrics.rejected(s.Name, "max_concurrent")
		return errBusy
	}
	s.held(s.pendingGauge, 1)
	defer func() {
		s.pending.Add(-1)
		s.held(s.pendingGauge, -1)
	}()
	select {
	case s.slots <- struct{}{}:
		s.held(s.inFlightGauge, 1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *backend) release() {
	<-s.slots
	s.held(s.inFlightGauge, -1)
}

func (s *backend) held(g prometheus.Gauge, d float64) {
	if g != nil {
		g.Add(d)
	}
}

// Do sends a request of the gateway's own making (a gRPC call, say) as
// RoundTrip does, and records the target that got it in x.Upstream.
func (s *Service) Do(x *exchange.Exchange, req *http.Request) (*http.Response, error) {
	f := &forward{x: x}
	resp, err := s.RoundTrip(req.WithContext(context.WithValue(req.Context(), stateKey{}, f)))
	x.Upstream, x.Retries = f.target, f.retries
	return resp, err
}

// Timeout is the service's timeout for a whole exchange; 0 for none.
func (s *backend) Timeout() time.Duration { return s.cfg.Timeout.D() }

// send makes one attempt against t, bounded by perTry until its response
// head (0: no bound), and updates t's health. When the request is
// traced, the attempt is a client span (to the response head) and the
// upstream receives its trace context.
func (s *backend) send(req *http.Request, t *target, perTry time.Duration) (*http.Response, error) {
	out := *req
	u := *req.URL
	u.Scheme, u.Host = t.url.Scheme, t.url.Host
	out.URL, out.Host = &u, t.host
	setTarget(req.Context(), t.url.String())
	var span trace.Span
	if trace.SpanContextFromContext(out.Context()).IsValid() { // traced: one lookup otherwise
		var ctx context.Context
		if ctx, span = s.startSpan(&out); span != nil {
			out = *out.WithContext(ctx)
		}
		tracing.Inject(ctx, out.Header)
	}
	var try *tryTimer
	if perTry > 0 {
		try = startTry(&out, perTry)
	}
	start := time.Now()
	counted := s.cfg.Balance == "least_requests"
	if counted {
		t.inflight.Add(1)
	}
	resp, err := t.transport.RoundTrip(&out)
	t.latency(time.Since(start))
	if try != nil {
		resp, err = try.stop(resp, err)
	}
	if counted {
		// In flight until its body is closed; a protocol switch (101)
		// keeps its body as the connection, which must stay unwrapped.
		if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
			t.inflight.Add(-1)
		} else {
			resp.Body = &countedBody{ReadCloser: resp.Body, t: t}
		}
	}
	if span != nil {
		endSpan(span, resp, err)
	}
	s.record(req, t, resp, err)
	return resp, err
}

// record updates t's passive health and circuit with an attempt's
// outcome. A failure of the client's making (it left, its body broke) is
// not the target's.
func (s *backend) record(req *http.Request, t *target, resp *http.Response, err error) {
	switch {
	case err == nil:
		if t.down.Load() && t.down.CompareAndSwap(true, false) {
			s.log.Info("upstream target healthy again", "target", t.label())
		}
	case connectFailed(err) || isTimeout(err) && req.Context().Err() == nil:
		kind := "connect"
		if !connectFailed(err) {
			kind = "timeout"
		}
		s.metrics.failed(s.Name, kind)
		t.downUntil.Store(time.Now().Add(s.cfg.FailCooldown.D()).UnixNano())
		if t.down.CompareAndSwap(false, true) {
			s.log.Warn("upstream target failing, skipped for cool-down", "target", t.label(), "cooldown", s.cfg.FailCooldown, "error", err)
		}
	case req.Context().Err() == nil && !clientFault(err):
		s.metrics.failed(s.Name, "other")
	}
	if b := s.cfg.Breaker; b != nil && req.Context().Err() == nil && !clientFault(err) {
		failed := err != nil || resp.StatusCode >= 500
		if state, changed := t.circuit.record(failed, b, time.Now()); changed {
			s.metrics.circuit(s.Name, t.url.Host, state)
			if state == circuitOpen {
				s.log.Warn("upstream target's circuit open", "target", t.label(), "open_for", b.OpenFor)
			} else {
				s.log.Info("upstream target's circuit "+state, "target", t.label())
			}
		}
	}
}

// connectFailed reports whether err happened before the request reached an
// upstream (refused, unreachable, connect timeout): then it is safe to try
// another target.
func connectFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// clientFault reports whether err is the client's: its request body could
// not be read, or was too large. The target is not to blame.
func clientFault(err error) bool {
	var bad *exchange.ClientBodyError
	var tooBig *http.MaxBytesError
	return errors.As(err, &bad) || errors.As(err, &tooBig)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

type stateKey struct{}

// forward is one proxied request's state, carried in its context from
// Forward to the Rewrite, RoundTrip and ErrorHandler callbacks.
type forward struct {
	x       *exchange.Exchange
	path    string
	target  string
	retries int
}

func setTarget(ctx context.Context, u string) {
	if f, ok := ctx.Value(stateKey{}).(*forward); ok {
		f.target = u
	}
}

// startSpan starts the client span of one attempt of a traced request,
// or returns a nil span when the request is not recorded. A gRPC call is named as gRPC names its
// spans ("package.Service/Method"), any other request "METHOD service".
func (s *backend) startSpan(out *http.Request) (context.Context, trace.Span) {
	ctx := out.Context()
	if !tracing.Recording(ctx) {
		return ctx, nil
	}
	var span trace.Span
	method := strings.TrimPrefix(out.URL.Path, "/")
	grpcCall := strings.HasPrefix(out.Header.Get("Content-Type"), "application/grpc")
	if grpcCall {
		ctx, span = tracing.Child(ctx, trace.SpanKindClient, method)
	} else {
		ctx, span = tracing.Child(ctx, trace.SpanKindClient, out.Method, s.Name)
	}
	port, _ := strconv.Atoi(out.URL.Port())
	span.SetAttributes(
		attribute.String("lintel.service", s.Name),
		attribute.String("server.address", out.URL.Hostname()),
		attribute.Int("server.port", port),
		attribute.String("http.request.method", out.Method),
		attribute.String("url.full", out.URL.String()),
	)
	if grpcCall {
		svc, m, _ := strings.Cut(method, "/")
		span.SetAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", svc), attribute.String("rpc.method", m))
	}
	return ctx, span
}

// endSpan records an attempt's result and ends its span: failed on a
// transport error or a status of 400 and above (the HTTP conventions for
// client spans), or a gRPC status other than OK in the response head.
func endSpan(span trace.Span, resp *http.Response, err error) {
	if err != nil {
		tracing.Fail(span, err)
		span.End()
		return
	}
	if st := resp.Header.Get("Grpc-Status"); st != "" {
		span.SetAttributes(attribute.String("rpc.grpc.status_code", st))
		if st != "0" {
			span.SetStatus(codes.Error, resp.Header.Get("Grpc-Message"))
		}
	}
	tracing.EndHTTP(span, resp.StatusCode, http.StatusBadRequest)
}

// TargetState is one target as the balancer sees it.
type TargetState struct {
	URL         string
	Host        string // the name it was resolved from, as sent in Host; "" for URL's
	Weight      int
	CoolingDown bool   // its connection failed recently
	HealthCheck string // "passing", "failing", or "" without a check
	Circuit     string // "closed", "open", "half_open", or "" without a breaker
	InFlight    int64  // counted with balance = "least_requests" only
}

// ServiceState is a service as the gateway sees it.
type ServiceState struct {
	// InFlight and Pending count requests holding and awaiting a slot
	// of max_concurrent (0 without it).
	InFlight int
	Pending  int64
	Targets  []TargetState
}

// State reports the service's state.
func (s *backend) State() ServiceState {
	return ServiceState{InFlight: s.InFlight(), Pending: s.Pending(), Targets: s.Targets()}
}

// Targets reports the state of each target, in configuration order.
func (s *backend) Targets() []TargetState {
	now := time.Now().UnixNano()
	set := s.set.Load()
	out := make([]TargetState, len(set.targets))
	for i, t := range set.targets {
		st := TargetState{URL: t.url.String(), Host: t.host, Weight: set.balance.weights[i], CoolingDown: t.downUntil.Load() > now, InFlight: t.inflight.Load()}
		if s.checker != nil {
			st.HealthCheck = "passing"
			if t.checkedDown.Load() {
				st.HealthCheck = "failing"
			}
		}
		if s.cfg.Breaker != nil {
			st.Circuit = t.circuit.State()
		}
		out[i] = st
	}
	return out
}
