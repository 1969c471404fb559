// Package proxy sends requests to upstream services: round-robin over a
// service's targets, keep-alive connection pools, timeouts, one retry of an
// idempotent request on a failed connection, and passive health (a target
// whose connection failed is skipped for a cool-down).
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

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
type Service struct {
	Name string
	cfg  config.Service
	log  *slog.Logger

	targets   []*target
	balance   *balancer
	checker   *checker // nil without a health check
	inflight  atomic.Int64
	transport *http.Transport
	rp        reverseProxy
	metrics   *Metrics
}

type target struct {
	url       *url.URL
	latency   func(time.Duration) // its upstream_duration_seconds series
	down      atomic.Bool
	downUntil atomic.Int64 // unix nanos
	inflight  atomic.Int64 // requests sent and not yet answered in full
	// checkedDown: the active health check took it out.
	checkedDown atomic.Bool
	circuit     circuit // used when the service has a breaker
}

// coolingDown reports whether t is skipped at now: it failed recently,
// or fails its health check.
func (t *target) coolingDown(now time.Time) bool {
	return t.checkedDown.Load() || t.downUntil.Load() > now.UnixNano()
}

// NewService builds a service from its configuration (already
// validated). tlsConfig is for https targets; nil means the system's
// roots and the target's host name.
func NewService(cfg *config.Service, tlsConfig *tls.Config, m *Metrics, log *slog.Logger) *Service {
	s := &Service{Name: cfg.Name, cfg: *cfg, log: log.With("service", cfg.Name), metrics: m}
	weights := cfg.Weights
	if weights == nil {
		weights = make([]int, len(cfg.TargetURLs))
		for i := range weights {
			weights[i] = 1
		}
	}
	var keys []string
	for _, u := range cfg.TargetURLs {
		s.targets = append(s.targets, &target{url: u, latency: m.latency(cfg.Name, u.Host)})
		keys = append(keys, u.String())
	}
	s.balance = newBalancer(cfg.Balance, cfg.HashOn, weights, keys)
	for _, t := range s.targets {
		t.circuit.state = circuitClosed
		if cfg.Breaker != nil {
			m.circuit(s.Name, t.url.Host, circuitClosed)
		}
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout.D(), KeepAlive: 30 * time.Second}
	s.transport = &http.Transport{
		DialContext:            dialer.DialContext,
		MaxIdleConns:           cfg.MaxIdleConns * len(s.targets),
		MaxIdleConnsPerHost:    cfg.MaxIdleConns,
		IdleConnTimeout:        cfg.IdleConnTimeout.D(),
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout.D(),
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		// Encodings pass through untouched: the client negotiates them
		// with the upstream.
		DisableCompression:  true,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: cfg.ConnectTimeout.D(),
		Protocols:           new(http.Protocols),
	}
	if cfg.Protocol == "http2" || cfg.Protocol == "grpc" {
		// Only HTTP/2: over TLS by ALPN, over plain TCP with prior
		// knowledge (h2c).
		s.transport.Protocols.SetHTTP2(true)
		s.transport.Protocols.SetUnencryptedHTTP2(true)
	} else {
		s.transport.Protocols.SetHTTP1(true)
	}
	s.rp = newReverseProxy(s)
	m.start(s.Name)
	if cfg.HealthCheck != nil {
		s.checker = &checker{s: s, cfg: *cfg.HealthCheck, stop: make(chan struct{})}
		for _, t := range s.targets {
			m.healthy(s.Name, t.url.Host, true)
		}
	}
	return s
}

// Healthy reports whether at least one target is not cooling down after
// a failure.
func (s *Service) Healthy() bool {
	now := time.Now()
	for _, t := range s.targets {
		if !t.coolingDown(now) {
			return true
		}
	}
	return false
}

// Close stops the health check and drops idle upstream connections.
func (s *Service) Close() {
	if s.checker != nil {
		s.checker.close()
	}
	s.transport.CloseIdleConnections()
}

// RoundTrip sends req to the next healthy target. When the connection to
// it fails and the request may be repeated (idempotent method, no body),
// it is sent once more to another target.
func (s *Service) RoundTrip(req *http.Request) (*http.Response, error) {
	if max := int64(s.cfg.MaxConcurrent); max > 0 {
		if s.inflight.Add(1) > max {
			s.inflight.Add(-1)
			s.metrics.rejected(s.Name, "max_concurrent")
			return nil, errBusy
		}
		defer s.inflight.Add(-1)
	}
	t := s.pick(req, nil)
	if t == nil {
		s.metrics.rejected(s.Name, "circuit_open")
		return nil, errCircuitOpen
	}
	resp, err := s.send(req, t)
	if err == nil || !connectFailed(err) || !s.cfg.Retry || !replayable(req) || len(s.targets) < 2 {
		return resp, err
	}
	other := s.pick(req, t)
	if other == nil || other == t {
		return resp, err
	}
	s.log.Debug("retrying on another target", "failed", t.url.Host, "error", err)
	s.metrics.retried(s.Name)
	return s.send(req, other)
}

// Do sends a request of the gateway's own making (a gRPC call, say) as
// RoundTrip does, and records the target that got it in x.Upstream.
func (s *Service) Do(x *exchange.Exchange, req *http.Request) (*http.Response, error) {
	f := &forward{x: x}
	resp, err := s.RoundTrip(req.WithContext(context.WithValue(req.Context(), stateKey{}, f)))
	x.Upstream = f.target
	return resp, err
}

// Timeout is the service's timeout for a whole exchange; 0 for none.
func (s *Service) Timeout() time.Duration { return s.cfg.Timeout.D() }

// send makes one attempt against t and updates t's health. When the
// request is traced, the attempt is a client span (to the response head)
// and the upstream receives its trace context.
func (s *Service) send(req *http.Request, t *target) (*http.Response, error) {
	out := *req
	u := *req.URL
	u.Scheme, u.Host = t.url.Scheme, t.url.Host
	out.URL, out.Host = &u, ""
	setTarget(req.Context(), t.url.String())
	var span trace.Span
	if trace.SpanContextFromContext(out.Context()).IsValid() { // traced: one lookup otherwise
		var ctx context.Context
		if ctx, span = s.startSpan(&out); span != nil {
			out = *out.WithContext(ctx)
		}
		tracing.Inject(ctx, out.Header)
	}
	start := time.Now()
	counted := s.balance.policy == "least_requests"
	if counted {
		t.inflight.Add(1)
	}
	resp, err := s.transport.RoundTrip(&out)
	t.latency(time.Since(start))
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
	switch {
	case err == nil:
		if t.down.Load() && t.down.CompareAndSwap(true, false) {
			s.log.Info("upstream target healthy again", "target", t.url.Host)
		}
	case connectFailed(err) || isTimeout(err) && req.Context().Err() == nil:
		kind := "connect"
		if !connectFailed(err) {
			kind = "timeout"
		}
		s.metrics.failed(s.Name, kind)
		t.downUntil.Store(time.Now().Add(s.cfg.FailCooldown.D()).UnixNano())
		if t.down.CompareAndSwap(false, true) {
			s.log.Warn("upstream target failing, skipped for cool-down", "target", t.url.Host, "cooldown", s.cfg.FailCooldown, "error", err)
		}
	case req.Context().Err() == nil && !clientFault(err):
		s.metrics.failed(s.Name, "other")
	}
	if b := s.cfg.Breaker; b != nil && req.Context().Err() == nil && !clientFault(err) {
		failed := err != nil || resp.StatusCode >= 500
		if state, changed := t.circuit.record(failed, b.Failures, b.OpenFor.D(), time.Now()); changed {
			s.metrics.circuit(s.Name, t.url.Host, state)
			if state == circuitOpen {
				s.log.Warn("upstream target's circuit open", "target", t.url.Host, "open_for", b.OpenFor)
			} else {
				s.log.Info("upstream target's circuit "+state, "target", t.url.Host)
			}
		}
	}
	return resp, err
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

// replayable reports whether a request may be sent twice.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
	default:
		return false
	}
	return req.Body == nil || req.Body == http.NoBody
}

type stateKey struct{}

// forward is one proxied request's state, carried in its context from
// Forward to the Rewrite, RoundTrip and ErrorHandler callbacks.
type forward struct {
	x      *exchange.Exchange
	path   string
	target string
}

func setTarget(ctx context.Context, u string) {
	if f, ok := ctx.Value(stateKey{}).(*forward); ok {
		f.target = u
	}
}

// startSpan starts the client span of one attempt of a traced request,
// or returns a nil span when the request is not recorded. A gRPC call is named as gRPC names its
// spans ("package.Service/Method"), any other request "METHOD service".
func (s *Service) startSpan(out *http.Request) (context.Context, trace.Span) {
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
	Weight      int
	CoolingDown bool   // its connection failed recently
	HealthCheck string // "passing", "failing", or "" without a check
	Circuit     string // "closed", "open", "half_open", or "" without a breaker
	InFlight    int64  // counted with balance = "least_requests" only
}

// Targets reports the state of each target, in configuration order.
func (s *Service) Targets() []TargetState {
	now := time.Now().UnixNano()
	out := make([]TargetState, len(s.targets))
	for i, t := range s.targets {
		st := TargetState{URL: t.url.String(), Weight: s.balance.weights[i], CoolingDown: t.downUntil.Load() > now, InFlight: t.inflight.Load()}
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
