// Package exchange is one client request on its way through the gateway,
// and what became of it. The listener makes an Exchange for each request;
// filters, the router's targets (proxy, aggregate) and the plugin engine
// read and change it; metrics and logs read its Outcome once it is
// complete. It imports nothing of Lintel's core.
package exchange

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
	"time"
)

// StatusClientClosed is the status a target writes when the client went
// away before it could answer (nginx's 499): nothing is sent, and the
// outcome records it.
const StatusClientClosed = 499

// Exchange is one client request. It is used by one goroutine at a time:
// filters and the target run in sequence.
type Exchange struct {
	// Request is the request as it will reach the target. Its URL.Path is
	// normalised (see router.Normalize).
	Request *http.Request
	// ClientIP is the socket peer, or the client named by X-Forwarded-For
	// when the peer is a trusted proxy.
	ClientIP netip.Addr
	// ForwardedFor is the X-Forwarded-For value upstreams receive: the
	// trusted chain so far, then the socket peer.
	ForwardedFor string
	// Scheme ("http" or "https") and Host are what the client asked for,
	// as X-Forwarded-Proto and X-Forwarded-Host tell upstreams.
	Scheme    string
	Host      string
	RequestID string
	// TraceID is the request's trace id (hex) when the gateway traces
	// it, else "".
	TraceID  string
	Listener string
	// Route is the matched route's name; "" before routing and for 404s.
	Route string
	Start time.Time
	// BaseLog is the listener's logger; use Log, which adds the request id.
	BaseLog *slog.Logger

	// BufferResponse asks the filter chain to hold the whole response
	// body for the response phase. Set it in the request phase.
	BufferResponse bool
	// UnderscoreHeaders is set when the request arrived with a header
	// name containing '_'; DropSpellings then has work to do.
	UnderscoreHeaders bool

	// Outcome is filled in as the request is served.
	Outcome

	// props and onComplete start in the arrays after them: a request
	// with a few of each allocates nothing for them. More properties than
	// propsArray holds move to propsMap.
	props           []property
	propsArray      [4]property
	propsMap        map[string]string
	logger          *slog.Logger
	onComplete      []func(*Exchange)
	onCompleteArray [2]func(*Exchange)
}

type property struct{ key, value string }

// Outcome is what became of a request: final when the OnComplete
// functions run.
type Outcome struct {
	Status   int
	BytesIn  int64
	BytesOut int64
	Duration time.Duration
	// Upstream is the target URL that answered a proxied request.
	Upstream string
	// Retries is how many times the request was sent again after a
	// failed attempt.
	Retries int
	// FailedParts names the aggregation parts that failed.
	FailedParts []string
	// AnsweredBy says who wrote the response.
	AnsweredBy Answerer
	// ResponseHeader is the response's header as sent.
	ResponseHeader http.Header
	// GRPCStatus is a gRPC call's status code ("0", "5"), from its
	// trailers or its head; "" for other requests.
	GRPCStatus string
}

// Answerer is who wrote a response.
type Answerer string

const (
	// ByTarget: the upstream, or the aggregation of upstreams, answered.
	ByTarget Answerer = "target"
	// ByFilter: a filter answered in its request phase (401, 429, ...).
	ByFilter Answerer = "filter"
	// ByGateway: the gateway refused the request itself (400, 404, 405,
	// 413, 431, 503).
	ByGateway Answerer = "gateway"
	// ForFailedTarget: the gateway answered for a target that failed
	// (502, 504).
	ForFailedTarget Answerer = "gateway_for_target"
)

// TargetFailed reports whether the gateway answered for a failed target.
func (o *Outcome) TargetFailed() bool { return o.AnsweredBy == ForFailedTarget }

// ForwardHeaders sets the headers every upstream request of the exchange
// carries: X-Request-Id, X-Forwarded-For, X-Forwarded-Proto and
// X-Forwarded-Host.
func (x *Exchange) ForwardHeaders(h http.Header) {
	h.Set("X-Request-Id", x.RequestID)
	h.Set("X-Forwarded-For", x.ForwardedFor)
	h.Set("X-Forwarded-Proto", x.Scheme)
	h.Set("X-Forwarded-Host", x.Host)
}

// OnComplete registers fn to be called with x once the response is
// complete (the last body byte sent, or the connection handed over), when
// the Outcome is final. Functions run in registration order.
func (x *Exchange) OnComplete(fn func(*Exchange)) {
	if x.onComplete == nil {
		x.onComplete = x.onCompleteArray[:0]
	}
	x.onComplete = append(x.onComplete, fn)
}

// Complete runs the OnComplete functions; the listener calls it once.
func (x *Exchange) Complete() {
	for _, fn := range x.onComplete {
		fn(x)
	}
	x.onComplete = nil
}

// Log returns a logger whose lines carry the request id, the route and,
// when the request is traced, the trace id.
func (x *Exchange) Log() *slog.Logger {
	if x.logger == nil {
		x.logger = x.BaseLog.With("request_id", x.RequestID, "route", x.Route)
		if x.TraceID != "" {
			x.logger = x.logger.With("trace_id", x.TraceID)
		}
	}
	return x.logger
}

// SetProperty stores a per-request property for later filters and logs.
func (x *Exchange) SetProperty(key, value string) {
	if x.propsMap != nil {
		x.propsMap[key] = value
		return
	}
	for i := range x.props {
		if x.props[i].key == key {
			x.props[i].value = value
			return
		}
	}
	if len(x.props) < len(x.propsArray) {
		x.props = append(x.propsArray[:len(x.props)], property{key, value})
		return
	}
	// Beyond a few, a map: a plugin setting thousands must not make each
	// set a search of the others.
	x.propsMap = make(map[string]string, 2*len(x.props))
	for _, p := range x.props {
		x.propsMap[p.key] = p.value
	}
	x.propsMap[key] = value
	x.props = nil
}

// Property returns a property set by SetProperty.
func (x *Exchange) Property(key string) (string, bool) {
	if x.propsMap != nil {
		v, ok := x.propsMap[key]
		return v, ok
	}
	for _, p := range x.props {
		if p.key == key {
			return p.value, true
		}
	}
	return "", false
}

// HeaderName is the spelling-insensitive form of a header name: its
// canonical form with '_' read as '-'. CGI-style upstreams merge X_User
// into X-User, so the gateway treats the two spellings as one name. A
// name without '_' (nearly all of them) costs no allocation.
func HeaderName(name string) string {
	if strings.IndexByte(name, '_') < 0 {
		return textproto.CanonicalMIMEHeaderKey(name)
	}
	return textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(name, "_", "-"))
}

// DropSpellings removes the request headers that are another spelling of
// name (X_User for X-User), so that a header a filter sets, adds or
// removes is the only one of its name that reaches the upstream.
func (x *Exchange) DropSpellings(name string) {
	if !x.UnderscoreHeaders {
		return
	}
	want := HeaderName(name)
	for k := range x.Request.Header {
		if k != name && strings.IndexByte(k, '_') >= 0 && HeaderName(k) == want {
			delete(x.Request.Header, k)
		}
	}
}

// ClientBodyError is a failure to read the client's request body (a
// malformed chunked encoding, a connection cut mid-body): the gateway
// answers 400 and does not count it against the upstream. The listener
// wraps the body so that every read error is one.
type ClientBodyError struct{ Err error }

func (e *ClientBodyError) Error() string { return "reading the request body: " + e.Err.Error() }
func (e *ClientBodyError) Unwrap() error { return e.Err }
