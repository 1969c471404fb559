// Package lintel is the Go SDK for Lintel plugins: filters written in
// standard Go, compiled to WebAssembly with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o NAME.wasm
//
// and loaded by gatewayd from its plugins directory. A plugin registers
// its handlers in init (main must exist and stays empty):
//
//	func main() {}
//
//	func init() {
//		lintel.HandleRequest(func(req lintel.Request, resp lintel.Response) bool {
//			req.Header().Set("X-Hello", "world")
//			return true // go on to the next filter and the upstream
//		})
//	}
//
// The same code builds natively (without GOOS=wasip1) against a fake host,
// so plugins are unit-tested with plain go test: see FakeHost. This module
// has no dependencies. sdk/ABI.md in the Lintel repository is the contract
// underneath.
package lintel

import (
	"encoding/json"
	"errors"
	"runtime"
	"time"
)

// RequestHandler runs in the request phase. It returns true to pass the
// request on, false when it has answered through resp.
type RequestHandler func(req Request, resp Response) bool

// ResponseHandler runs in the response phase, when the response head is
// about to be sent (after the whole response with BufferResponse).
type ResponseHandler func(req Request, resp Response)

// CompleteHandler runs once the response has been sent; the properties
// status, bytes_out and duration_ms are then final.
type CompleteHandler func(req Request)

var (
	onRequest  RequestHandler = func(Request, Response) bool { return true }
	onResponse ResponseHandler
	onComplete CompleteHandler
)

// HandleRequest registers the request phase.
func HandleRequest(fn RequestHandler) { onRequest = fn }

// HandleResponse registers the response phase.
func HandleResponse(fn ResponseHandler) { onResponse = fn }

// HandleComplete registers a function to run after the response is sent
// (an access log, say). It runs on any instance of the plugin.
func HandleComplete(fn CompleteHandler) {
	onComplete = fn
	declared |= declareComplete
	declare(declared)
}

// declared are the flags declared so far.
var declared uint32

func handleRequest() (next bool) { return onRequest(Request{}, Response{}) }

// housekeep runs between requests, on an idle instance (the host calls
// lintel_housekeep every 2,000 requests): a Go guest that allocates per
// request can otherwise stop collecting garbage and grow without bound
// (sdk/ABI.md, Go guests).
func housekeep() { runtime.GC() }

func handleResponse() {
	if onResponse != nil {
		onResponse(Request{}, Response{})
	}
}

func handleComplete() {
	if onComplete != nil {
		onComplete(Request{})
	}
}

// Phase flags for Declare.
const (
	// Stateless promises that nothing is kept between the request and
	// response phases of a request, so the host need not hold an instance
	// for the whole upstream call.
	Stateless = 1
	// NoResponse promises the plugin has no response phase.
	NoResponse = 2
	// NoRequest promises the plugin's request phase does nothing but pass
	// the request on (an access log, say): the host then never calls it.
	NoRequest = 8
	// Memoizable lets the request phase call Memoize (with NoResponse).
	Memoizable = 16

	declareComplete = 4 // set by HandleComplete
)

// Declare tells the host what the plugin promises (Stateless,
// NoResponse). Call it in init. (Natively, against FakeHost, a later call
// replaces an earlier one, so tests can reconfigure a plugin.)
func Declare(flags uint32) {
	declared = flags | declared&declareComplete
	declare(declared)
}

// Features of EnableFeatures.
const (
	BufferRequest  = 1
	BufferResponse = 2
	Trailers       = 4
)

// EnableFeatures enables features for this request (in the request phase)
// or for every request (in init), and returns what the host supports.
func EnableFeatures(features uint32) uint32 { return enableFeatures(features) }

// Config decodes the filter's config table from gateway.toml into v.
func Config(v any) error {
	b := getConfig()
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

// Request is the request in flight.
type Request struct{}

func (Request) Method() string     { return getMethod() }
func (Request) SetMethod(m string) { setMethod(m) }
func (Request) URI() string        { return getURI() }
func (Request) SetURI(uri string)  { setURI(uri) }
func (Request) Protocol() string   { return getProtocol() }
func (Request) SourceAddr() string { return getSourceAddr() }
func (Request) Header() Header     { return Header{kindRequest} }
func (Request) Body() []byte       { return readBody(kindRequest) }

// Write appends to the request body the upstream receives; the first
// write of the request phase replaces the body.
func (Request) Write(b []byte) (int, error)         { writeBody(kindRequest, b); return len(b), nil }
func (Request) Property(name string) (string, bool) { return Property(name) }

// Response is the response: the plugin's own answer in the request phase,
// the upstream's in the response phase.
type Response struct{}

func (Response) Status() int        { return getStatus() }
func (Response) SetStatus(code int) { setStatus(code) }
func (Response) Header() Header     { return Header{kindResponse} }

// Body returns the response body: empty unless BufferResponse was enabled.
func (Response) Body() []byte { return readBody(kindResponse) }

// Write appends to the body: the plugin's answer in the request phase, or
// a buffered response in the response phase. The first write of a phase
// replaces the body.
func (Response) Write(b []byte) (int, error) { writeBody(kindResponse, b); return len(b), nil }

const (
	kindRequest  = 0
	kindResponse = 1
)

// Header is a request's or a response's header fields.
type Header struct{ kind uint32 }

// Get returns the first value of name, case-insensitive.
func (h Header) Get(name string) string { return headerValue(h.kind, name) }

func (h Header) Values(name string) []string { return headerValues(h.kind, name) }
func (h Header) Names() []string             { return headerNames(h.kind) }
func (h Header) Set(name, value string)      { setHeader(h.kind, name, value) }
func (h Header) Add(name, value string)      { addHeader(h.kind, name, value) }
func (h Header) Del(name string)             { removeHeader(h.kind, name) }

// Property returns a request property: one the host provides (client_ip,
// request_id, route, listener, start_time, method, path, status,
// bytes_in, bytes_out, duration_ms, upstream, failed_parts) or one an
// earlier filter set.
func Property(name string) (string, bool) { return getProperty(name) }

// SetProperty sets a property for later filters and the gateway's logs.
func SetProperty(name, value string) { setProperty(name, value) }

// Memoize tells the host, in the request phase of a Memoizable plugin
// that lets the request through, that this decision depended only on the
// request headers named (which must include every request header the
// phase read) and holds for ttl: the host then serves a request with the
// same values of those headers by replaying what this call did (request
// headers set, added or removed, properties set, metric updates) without
// calling the plugin. A call that did anything else (answered, read the
// body or the URI, used the shared state, logged, ...) is not memoized.
// See sdk/ABI.md, memoize.
func Memoize(ttl time.Duration, headers ...string) { memoize(ttl, headers) }

// Now is the host's wall clock.
func Now() time.Time { return time.Unix(0, now()) }

// ErrState is returned when the shared state backend is unavailable.
var ErrState = errors.New("lintel: shared state unavailable")

// ErrNotInteger is returned by StateIncr on a value that is not one.
var ErrNotInteger = errors.New("lintel: value is not an integer")

// StateGet reads a key of the filter's shared state.
func StateGet(key string) ([]byte, bool, error) { return stateGet(key) }

// StateSet writes a key; ttl 0 keeps it forever.
func StateSet(key string, value []byte, ttl time.Duration) error { return stateSet(key, value, ttl) }

// StateCAS sets key to new if its value is old (nil old: only if absent),
// atomically, and reports whether it did.
func StateCAS(key string, old, new []byte, ttl time.Duration) (bool, error) {
	return stateCAS(key, old, new, ttl)
}

// StateIncr adds delta to the integer at key (absent is 0), atomically,
// and returns the result; ttl applies when the key is created.
func StateIncr(key string, delta int64, ttl time.Duration) (int64, error) {
	return stateIncr(key, delta, ttl)
}

// StateDelete removes a key.
func StateDelete(key string) error { return stateDelete(key) }

// RateDecision is the outcome of RateLimit.
type RateDecision struct {
	Allowed bool
	// Remaining is how many more requests would be admitted now.
	Remaining int
	// RetryAfter is how long a refused request should wait.
	RetryAfter time.Duration
	// Reset is how long until the limit is full again.
	Reset time.Duration
}

// RateLimit decides one request against a limit kept at key in the
// filter's shared state: one request per interval sustained, burst at
// once from idle (GCRA). The host decides atomically, in one store
// operation, on the store's clock (a Redis server's for a fleet).
func RateLimit(key string, interval time.Duration, burst int) (RateDecision, error) {
	return rateLimit(key, interval, burst)
}

// Counter, Gauge and Histogram are metrics the plugin defines; the host
// exports them as lintel_plugin_<name>{filter="...", labels...}.
type (
	Counter   struct{ id int32 }
	Gauge     struct{ id int32 }
	Histogram struct{ id int32 }
)

// NewCounter defines a counter (in init). Invalid definitions are ignored
// by the host and updates to them do nothing.
func NewCounter(name, help string, labels ...string) Counter {
	return Counter{metricDefine(0, name, help, labels)}
}

func NewGauge(name, help string, labels ...string) Gauge {
	return Gauge{metricDefine(1, name, help, labels)}
}

func NewHistogram(name, help string, labels ...string) Histogram {
	return Histogram{metricDefine(2, name, help, labels)}
}

func (c Counter) Add(v float64, labelValues ...string) { metricUpdate(c.id, v, labelValues) }
func (g Gauge) Set(v float64, labelValues ...string)   { metricUpdate(g.id, v, labelValues) }
func (h Histogram) Observe(v float64, labelValues ...string) {
	metricUpdate(h.id, v, labelValues)
}

// Log levels.
const (
	LevelDebug = -1
	LevelInfo  = 0
	LevelWarn  = 1
	LevelError = 2
)

// Log writes a structured line to the gateway's log, with the filter's
// name and the request id added by the host. kv are key, value pairs.
func Log(level int32, msg string, kv ...string) { logKV(level, msg, kv) }

func Debug(msg string, kv ...string) { logKV(LevelDebug, msg, kv) }
func Info(msg string, kv ...string)  { logKV(LevelInfo, msg, kv) }
func Warn(msg string, kv ...string)  { logKV(LevelWarn, msg, kv) }
func Error(msg string, kv ...string) { logKV(LevelError, msg, kv) }

// ErrNoOutput is returned by Emit when the filter has no output.
var ErrNoOutput = errors.New("lintel: the filter has no output configured")

// Emit writes one raw line (an access log line, say) to the filter's
// output, as configured in gateway.toml: stdout, stderr or a file.
func Emit(line []byte) error {
	if emit(line) != 0 {
		return ErrNoOutput
	}
	return nil
}

// ErrUnsupportedSignature is returned by VerifySignature for an
// algorithm the host does not know, or a key that is not one for it.
var ErrUnsupportedSignature = errors.New("lintel: unsupported signature algorithm or key")

// VerifySignature checks sig over msg with a JWS algorithm (RFC 7518:
// HS256-512, RS256-512, PS256-512, ES256-512, EdDSA), natively in the
// host: many times faster than in a guest. key is the public key as PKIX
// DER (x509.MarshalPKIXPublicKey), or the secret for HS*. What to verify,
// and what follows, stays the plugin's decision.
func VerifySignature(alg string, key, msg, sig []byte) (bool, error) {
	switch verifySignature(alg, key, msg, sig) {
	case 1:
		return true, nil
	case 0:
		return false, nil
	}
	return false, ErrUnsupportedSignature
}

// FetchResponse is the answer to Fetch.
type FetchResponse struct {
	Status int
	Body   []byte
}

// Header returns the values of a response header. Call it before the
// next Fetch and within the same handler: the host keeps only the last
// response.
func (r *FetchResponse) Header(name string) []string { return fetchHeader(name) }

// Errors of Fetch.
var (
	ErrNotAllowed  = errors.New("lintel: call not in the filter's outbound allow-list")
	ErrFetchFailed = errors.New("lintel: call failed")
	ErrTooLarge    = errors.New("lintel: response larger than the filter's max_response")
)

// Fetch makes an HTTP call, blocking, to a host the filter's [outbound]
// allow-list names. headers are "Name: value" lines.
func Fetch(method, url string, headers []string, body []byte) (*FetchResponse, error) {
	status := httpCall(method, url, headers, body)
	switch {
	case status == -1:
		return nil, ErrNotAllowed
	case status == -3:
		return nil, ErrTooLarge
	case status < 100:
		return nil, ErrFetchFailed
	}
	return &FetchResponse{Status: status, Body: fetchBody()}, nil
}
