// Package filter defines what a filter is and runs ordered chains of them.
//
// A filter sees a request before its target (the request phase, in the
// configured order) and the response after it (the response phase, in
// reverse order), like http-wasm's handle_request and handle_response. A
// filter may answer a request itself; the filters after it and the target
// are then skipped, while the response phase of the filters before it
// still runs.
//
// The response phase runs when the response head is about to be sent, so
// it can change the status and headers of a streamed response (SSE, a
// large download) without holding its body. A filter that needs the body
// sets Exchange.BufferResponse in its request phase; the chain then holds
// the whole response and runs the response phase once it is complete.
//
// This package knows nothing of WebAssembly; core/wasm implements Filter.
package filter

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
	"time"

	"github.com/lintelhq/lintel/core/config"
)

// Filter is one configured filter. Implementations must be safe for
// concurrent use: one Filter serves every request of its chains.
type Filter interface {
	// Name is the filter's name in gateway.toml.
	Name() string
	// Request runs the request phase. It may change x.Request. To answer
	// the request itself it writes the response to w and returns
	// next=false. A non-nil Pending receives the response phase and is
	// always released exactly once. An error is answered with 500 unless
	// a response was already written.
	Request(x *Exchange, w http.ResponseWriter) (next bool, p Pending, err error)
}

// Pending is a filter's hold on one request between its two phases (a
// WASM instance, for example).
type Pending interface {
	// Response runs the response phase: r.Header and r.Status may be
	// changed; r.Body holds the body only when BufferResponse was set.
	Response(x *Exchange, r *Response) error
	// Release ends the hold. It is called once, after Response or instead
	// of it (the filter answered, a later filter failed, the client left).
	Release()
}

// Response is the response as the response phase sees it.
type Response struct {
	Status int
	Header http.Header
	// Body is the whole body when Buffered, else nil.
	Body     []byte
	Buffered bool
	// Error reports that the target failed and the gateway answered
	// for it (502, 504, ...).
	Error bool
}

// Factory builds the Filter a [filters.NAME] table describes.
type Factory interface {
	New(spec *config.Filter) (Filter, error)
}

// Exchange is one client request on its way through the gateway. It is
// used by one goroutine at a time: filters run in sequence.
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
	Listener  string
	// Route is the matched route's name; "" before routing and for 404s.
	Route string
	Start time.Time
	// BaseLog is the listener's logger; use Log, which adds the request id.
	BaseLog *slog.Logger

	// BufferResponse asks the chain to hold the whole response body for
	// the response phase. Set it in the request phase.
	BufferResponse bool
	// UnderscoreHeaders is set when the request arrived with a header
	// name containing '_'; DropSpellings then has work to do.
	UnderscoreHeaders bool
	// TargetFailed is set by the target when it answered with its own
	// error (the upstream refused, timed out, ...).
	TargetFailed bool

	// Filled in as the response is sent; final when Complete runs.
	Duration time.Duration
	Status   int
	BytesIn  int64
	BytesOut int64
	// Upstream is the target URL that answered a proxied request.
	Upstream string
	// FailedParts names the aggregation parts that failed.
	FailedParts []string

	props      map[string]string
	logger     *slog.Logger
	onComplete []func()
}

// OnComplete registers fn to run once the response is complete (the last
// body byte sent, or the connection handed over), when Status, BytesOut
// and the duration are final. Functions run in registration order.
func (x *Exchange) OnComplete(fn func()) { x.onComplete = append(x.onComplete, fn) }

// Complete runs the OnComplete functions; the gateway calls it once.
func (x *Exchange) Complete() {
	for _, fn := range x.onComplete {
		fn()
	}
	x.onComplete = nil
}

// Log returns a logger whose lines carry the request id and route.
func (x *Exchange) Log() *slog.Logger {
	if x.logger == nil {
		x.logger = x.BaseLog.With("request_id", x.RequestID, "route", x.Route)
	}
	return x.logger
}

// SetProperty stores a per-request property for later filters and logs.
func (x *Exchange) SetProperty(key, value string) {
	if x.props == nil {
		x.props = make(map[string]string, 4)
	}
	x.props[key] = value
}

// Property returns a property set by SetProperty.
func (x *Exchange) Property(key string) (string, bool) {
	v, ok := x.props[key]
	return v, ok
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
