package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/problem"
	"github.com/lintelhq/lintel/core/router"
	"github.com/lintelhq/lintel/core/tracing"
)

var _ http.Handler = (*listener)(nil)

// listener is one [listeners.NAME]: a server, its filters and its routes.
type listener struct {
	g        *Gateway
	cfg      *config.Listener
	log      *slog.Logger
	trusted  trustSet
	chain    filter.Chain
	router   *router.Router[*route]
	routes   int
	inflight atomic.Int64
	tls      *tls.Config // nil without TLS
	// remove are the headers removed on arrival, by spelling-insensitive
	// name (exchange.HeaderName).
	remove map[string]bool
}

// route is one compiled [[routes]] entry.
type route struct {
	name     string
	chain    filter.Chain
	target   func(x *exchange.Exchange, w http.ResponseWriter, ps router.Params)
	upgrades []string // Upgrade tokens the route tunnels
	path     string   // its path pattern, as the server span's http.route
	// grpcMethod is the gRPC method the route calls, if it calls one.
	grpcMethod string
}

func newListener(g *Gateway, cfg *config.Listener) *listener {
	l := &listener{g: g, cfg: cfg, log: g.log.With("listener", cfg.Name), router: router.New[*route](), remove: map[string]bool{}}
	for _, h := range cfg.RemoveHeaders {
		l.remove[exchange.HeaderName(h)] = true
	}
	l.trusted = cfg.TrustedPrefixes
	return l
}

// ServeHTTP is the gateway's entry for every request of this listener:
// admission, identity, hop-by-hop headers, body limit, path
// normalisation, then the listener's filters around routing.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if max := int64(l.cfg.MaxConcurrent); max > 0 {
		if l.inflight.Add(1) > max {
			l.inflight.Add(-1)
			w.Header().Set("Retry-After", "1")
			problem.Error(w, http.StatusServiceUnavailable, "too many requests in flight")
			return
		}
		defer l.inflight.Add(-1)
	}

	x := &exchange.Exchange{Request: r, Listener: l.cfg.Name, Start: time.Now(), BaseLog: l.log}
	var span trace.Span // the server span, when tracing
	if t := l.g.tracer; t != nil {
		var ctx context.Context
		ctx, span = t.Start(r, x.Start)
		r = r.WithContext(ctx)
		x.Request, x.TraceID = r, tracing.TraceID(ctx)
	}
	rec := &recorder{w: w}
	defer l.finish(x, rec, span)
	var out http.ResponseWriter = rec
	if rec.grpc = isGRPC(r); rec.grpc {
		g := &grpcAnswer{rec: rec}
		defer g.finish() // before finish: the answer is complete when it is logged
		out = g
	}

	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// net/http has already dropped any Content-Length sent beside
		// Transfer-Encoding, so a request that framed itself two ways
		// cannot be told apart: close the connection after every chunked
		// request, and bytes a front proxy saw as a second request are
		// never read as one (RFC 9112 6.1).
		out.Header().Set("Connection", "close")
	}
	stripHopByHop(r.Header)
	if !l.screenHeaders(out, x) {
		return
	}
	x.ClientIP, x.ForwardedFor, x.Scheme, x.Host = l.trusted.identity(r)
	x.RequestID = r.Header.Get("X-Request-Id")
	if !validRequestID(x.RequestID) {
		x.RequestID = l.g.ids.next()
		r.Header.Set("X-Request-Id", x.RequestID)
	}
	out.Header().Set("X-Request-Id", x.RequestID)

	if max := int64(l.cfg.MaxBody); max > 0 {
		if r.ContentLength > max {
			problem.Error(out, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", max))
			return
		}
		r.Body = http.MaxBytesReader(out, r.Body, max)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = countingBody{r.Body, &x.BytesIn}
	}
	if !l.normalize(out, r) {
		return
	}
	l.chain.Serve(x, out, l.route)
}

// screenHeaders answers 431 to a request with more header fields than
// the listener allows (net/http bounds only their bytes), removes the
// headers the listener strips on arrival in any spelling, and notes
// whether names with '_' remain (filters then treat them as the '-'
// spelling, see exchange.Exchange.UnderscoreHeaders).
func (l *listener) screenHeaders(w http.ResponseWriter, x *exchange.Exchange) bool {
	h := x.Request.Header
	n := 0
	for name, v := range h {
		n += len(v)
		if l.remove[exchange.HeaderName(name)] {
			delete(h, name)
			continue
		}
		if strings.IndexByte(name, '_') >= 0 {
			x.UnderscoreHeaders = true
		}
	}
	if n > l.cfg.MaxHeaders {
		problem.Error(w, http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("more than %d header fields", l.cfg.MaxHeaders))
		return false
	}
	return true
}

// normalize rewrites r's path to its one normal form (router.Normalize),
// or answers 400. The client's own escaping (RawPath, "/a%26b" rather
// than "/a&b") is kept when it spells exactly the normal form, so filters
// (get_uri) and the upstream see the request-target as it was sent.
func (l *listener) normalize(w http.ResponseWriter, r *http.Request) bool {
	p, err := router.Normalize(r.URL)
	if err != nil {
		problem.Error(w, http.StatusBadRequest, err.Error())
		return false
	}
	if p != r.URL.Path {
		r.URL.RawPath = "" // it spelled another path: the normal form is sent
	}
	r.URL.Path = p
	return true
}

// route matches the request, after the listener's filters (which may have
// changed its path), and runs the route's filters around its target.
func (l *listener) route(x *exchange.Exchange, w http.ResponseWriter) {
	r := x.Request
	if !l.normalize(w, r) {
		return
	}
	rt, ps, res, allow := l.router.Match(r.Method, r.Host, r.URL.Path)
	switch res {
	case router.NotFound:
		problem.Error(w, http.StatusNotFound, "no route for this path")
		return
	case router.MethodNotAllowed:
		w.Header().Set("Allow", strings.Join(allow, ", "))
		problem.Error(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed here", r.Method))
		return
	}
	x.Route = rt.name
	if x.TraceID != "" { // traced: the server span is named by its route
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.SetName(r.Method + " " + rt.path)
			span.SetAttributes(attribute.String("http.route", rt.path), attribute.String("lintel.route", rt.name))
		}
	}
	if up := r.Header["Upgrade"]; len(up) > 0 && !rt.allowsUpgrade(up) {
		// Not a protocol this route tunnels (h2c never is): the request
		// goes on as a plain one, and ReverseProxy refuses a 101 that
		// nobody asked for.
		r.Header.Del("Upgrade")
		r.Header.Del("Connection")
	}
	rt.chain.Serve(x, w, func(x *exchange.Exchange, w http.ResponseWriter) { rt.target(x, w, ps) })
}

// allowsUpgrade reports whether every protocol an Upgrade header names is
// one the route tunnels.
func (rt *route) allowsUpgrade(values []string) bool {
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			p, _, _ = strings.Cut(strings.TrimSpace(p), "/") // "websocket", not its version
			if !slices.ContainsFunc(rt.upgrades, func(u string) bool { return strings.EqualFold(u, p) }) {
				return false
			}
		}
	}
	return true
}

// finish turns a panic into a 500 (when nothing was sent yet), logs the
// request at debug level and ends its server span.
func (l *listener) finish(x *exchange.Exchange, rec *recorder, span trace.Span) {
	if p := recover(); p != nil {
		if p == http.ErrAbortHandler {
			panic(p)
		}
		x.Log().Error("panic serving request", "panic", p)
		x.AnsweredBy = exchange.ByGateway
		if !rec.written() {
			problem.Error(rec, http.StatusInternalServerError, "internal error")
		}
	}
	x.Status, x.BytesOut, x.Duration, x.ResponseHeader = rec.status, rec.bytes, time.Since(x.Start), rec.Header()
	if rec.grpc {
		// The call's outcome is in its trailers (or its head, when it had
		// no message), not in HTTP's 200.
		h := rec.Header()
		x.GRPCStatus = h.Get("Grpc-Status")
		if x.GRPCStatus == "" {
			x.GRPCStatus = h.Get(http.TrailerPrefix + "Grpc-Status")
		}
	}
	if x.AnsweredBy == "" {
		x.AnsweredBy = exchange.ByTarget
		if x.Route == "" { // refused before any route matched (404, 400, 431, ...)
			x.AnsweredBy = exchange.ByGateway
		}
	}
	x.Complete()
	if span != nil {
		endServerSpan(span, x)
	}
	l.g.metrics.observe(x)
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		x.Log().Debug("request", "method", x.Request.Method, "path", x.Request.URL.Path, "status", x.Status,
			"bytes_in", x.BytesIn, "bytes_out", x.BytesOut, "duration", x.Duration, "client", x.ClientIP, "upstream", x.Upstream,
			"answered_by", x.AnsweredBy)
	}
}

// endServerSpan records what became of the request on its server span
// (HTTP semantic conventions, plus lintel.*) and ends it.
func endServerSpan(span trace.Span, x *exchange.Exchange) {
	if !span.IsRecording() {
		span.End()
		return
	}
	r := x.Request
	proto := "1.1"
	switch {
	case r.ProtoMajor == 2:
		proto = "2"
	case r.ProtoMinor == 0:
		proto = "1.0"
	}
	attrs := make([]attribute.KeyValue, 0, 16)
	attrs = append(attrs,
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("url.scheme", x.Scheme),
		attribute.String("server.address", x.Host),
		attribute.String("network.protocol.version", proto),
		attribute.String("user_agent.original", r.UserAgent()),
		attribute.Int64("http.request.body.size", x.BytesIn),
		attribute.Int64("http.response.body.size", x.BytesOut),
		attribute.String("lintel.listener", x.Listener),
		attribute.String("lintel.request_id", x.RequestID),
		attribute.String("lintel.answered_by", string(x.AnsweredBy)),
	)
	if x.ClientIP.IsValid() {
		attrs = append(attrs, attribute.String("client.address", x.ClientIP.String()))
	}
	if x.Upstream != "" {
		attrs = append(attrs, attribute.String("lintel.upstream", x.Upstream))
	}
	if len(x.FailedParts) > 0 {
		attrs = append(attrs, attribute.StringSlice("lintel.failed_parts", x.FailedParts))
	}
	if x.GRPCStatus != "" {
		attrs = append(attrs, attribute.String("rpc.grpc.status_code", x.GRPCStatus))
	}
	span.SetAttributes(attrs...)
	tracing.EndHTTP(span, x.Status, http.StatusInternalServerError)
}
