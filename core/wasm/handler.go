package wasm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/lintelhq/lintel/core/config"
)

// setURI applies set_uri: an encoded path with an optional query. The new
// path is normalised again by the gateway before routing.
func setURI(r *http.Request, uri string) error {
	if uri == "" {
		uri = "/"
	}
	if uri[0] != '/' {
		return fmt.Errorf("URI %q must begin with '/'", uri)
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return fmt.Errorf("invalid URI %q", uri)
	}
	r.URL.Path, r.URL.RawPath, r.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
	r.RequestURI = uri
	return nil
}

// hostModules instantiates http_handler and lintel in a runtime.
func hostModules(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(moduleHTTPHandler)
	for _, fn := range httpHandlerFuncs {
		b.NewFunctionBuilder().WithGoModuleFunction(fn.fn, fn.params, fn.results).Export(fn.name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return err
	}
	return instantiateLintel(ctx, rt)
}

type hostFunc struct {
	name            string
	params, results []api.ValueType
	fn              api.GoModuleFunc
}

// httpHandlerFuncs is the http_handler module: every function of the
// http-wasm handler ABI, with its exact signature.
var httpHandlerFuncs = []hostFunc{
	{fnLog, []api.ValueType{i32, i32, i32}, nil, hostLog},
	{fnLogEnabled, []api.ValueType{i32}, []api.ValueType{i32}, hostLogEnabled},
	{fnGetConfig, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostGetConfig},
	{fnEnableFeatures, []api.ValueType{i32}, []api.ValueType{i32}, hostEnableFeatures},
	{fnGetMethod, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostGetMethod},
	{fnSetMethod, []api.ValueType{i32, i32}, nil, hostSetMethod},
	{fnGetURI, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostGetURI},
	{fnSetURI, []api.ValueType{i32, i32}, nil, hostSetURI},
	{fnGetProtocolVersion, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostGetProtocolVersion},
	{fnGetSourceAddr, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostGetSourceAddr},
	{fnGetHeaderNames, []api.ValueType{i32, i32, i32}, []api.ValueType{i64}, hostGetHeaderNames},
	{fnGetHeaderValues, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i64}, hostGetHeaderValues},
	{fnSetHeaderValue, []api.ValueType{i32, i32, i32, i32, i32}, nil, hostSetHeaderValue},
	{fnAddHeaderValue, []api.ValueType{i32, i32, i32, i32, i32}, nil, hostAddHeaderValue},
	{fnRemoveHeader, []api.ValueType{i32, i32, i32}, nil, hostRemoveHeader},
	{fnReadBody, []api.ValueType{i32, i32, i32}, []api.ValueType{i64}, hostReadBody},
	{fnWriteBody, []api.ValueType{i32, i32, i32}, nil, hostWriteBody},
	{fnGetStatusCode, nil, []api.ValueType{i32}, hostGetStatusCode},
	{fnSetStatusCode, []api.ValueType{i32}, nil, hostSetStatusCode},
}

// supportedFeatures are what enable_features reports: trailers are not
// supported (reads see none, writes trap), as the ABI allows.
const supportedFeatures = featureBufferRequest | featureBufferResponse

func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level := int32(stack[0])
	msg := read(mod, uint32(stack[1]), uint32(stack[2]), fnLog)
	s := stateOf(ctx)
	s.rec.spoil() // a line per request is not a line per memoized request
	s.log(level, msg)
}

func hostLogEnabled(ctx context.Context, mod api.Module, stack []uint64) {
	level := int32(stack[0])
	stack[0] = 0
	if level < logLevelNone && stateOf(ctx).f.log.Enabled(ctx, slogLevel(level)) {
		stack[0] = 1
	}
}

func slogLevel(level int32) slog.Level {
	switch {
	case level <= logLevelDebug:
		return slog.LevelDebug
	case level == logLevelInfo:
		return slog.LevelInfo
	case level == logLevelWarn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func hostGetConfig(ctx context.Context, mod api.Module, stack []uint64) {
	cfg := stateOf(ctx).f.config
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), cfg, fnGetConfig))
}

// hostEnableFeatures enables features for the current request, or, when
// called while the instance initialises, for every request of the filter.
func hostEnableFeatures(ctx context.Context, mod api.Module, stack []uint64) {
	want := uint32(stack[0]) & supportedFeatures
	s := stateOf(ctx)
	switch {
	case s.x == nil:
		s.f.initFeatures.Or(want)
	case s.resp == nil:
		if want != 0 {
			s.rec.spoil() // per request: a replay would not enable them
		}
		s.features |= want
		if want&featureBufferResponse != 0 {
			s.x.BufferResponse = true
		}
	}
	stack[0] = supportedFeatures
}

func hostGetMethod(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnGetMethod)
	s.rec.spoil() // its effect or input cannot be memoized
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), []byte(s.x.Request.Method), fnGetMethod))
}

func hostSetMethod(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnSetMethod)
	s.rec.spoil() // its effect or input cannot be memoized
	s.requestPhase(fnSetMethod)
	m := readString(mod, uint32(stack[0]), uint32(stack[1]), fnSetMethod)
	if m == "" || strings.ContainsAny(m, " \t\r\n") {
		fail("%s: invalid method %q", fnSetMethod, m)
	}
	s.x.Request.Method = m
}

func hostGetURI(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnGetURI)
	s.rec.spoil() // its effect or input cannot be memoized
	uri := s.x.Request.URL.RequestURI()
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), []byte(uri), fnGetURI))
}

func hostSetURI(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnSetURI)
	s.rec.spoil() // its effect or input cannot be memoized
	s.requestPhase(fnSetURI)
	uri := readString(mod, uint32(stack[0]), uint32(stack[1]), fnSetURI)
	if err := setURI(s.x.Request, uri); err != nil {
		fail("%s: %v", fnSetURI, err)
	}
}

func hostGetProtocolVersion(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnGetProtocolVersion)
	s.rec.spoil() // its effect or input cannot be memoized
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), []byte(protocolVersion(s.x.Request)), fnGetProtocolVersion))
}

// protocolVersion is the request's protocol as http-wasm spells it.
func protocolVersion(r *http.Request) string {
	if r.Proto == "HTTP/2" {
		return "HTTP/2.0"
	}
	return r.Proto
}

func hostGetSourceAddr(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnGetSourceAddr)
	s.rec.spoil() // its effect or input cannot be memoized
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), []byte(s.x.Request.RemoteAddr), fnGetSourceAddr))
}

// headers returns the header map a kind names, or nil for trailers.
func (s *callState) headers(kind uint32, fn string) http.Header {
	switch kind {
	case headerKindRequest:
		return s.x.Request.Header
	case headerKindResponse:
		if s.batched {
			fail("%s: a batched lintel_on_complete cannot read the response's headers (declare flag 32)", fn)
		}
		if s.resp != nil {
			return s.resp.Header
		}
		return s.w.Header()
	case headerKindRequestTrailers, headerKindResponseTrailers:
		return nil
	}
	fail("%s: invalid header kind %d", fn, kind)
	return nil
}

func hostGetHeaderNames(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnGetHeaderNames)
	s.rec.spoil() // its effect or input cannot be memoized
	kind := uint32(stack[0])
	h := s.headers(kind, fnGetHeaderNames)
	names := make([]string, 0, len(h)+1)
	for k := range h {
		names = append(names, strings.ToLower(k))
	}
	if kind == headerKindRequest && s.x.Request.Host != "" {
		names = append(names, "host") // net/http keeps Host out of the map
	}
	sort.Strings(names)
	stack[0] = writeNULTerminated(mod, uint32(stack[1]), uint32(stack[2]), names, fnGetHeaderNames)
}

func hostGetHeaderValues(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnGetHeaderValues)
	kind := uint32(stack[0])
	h := s.headers(kind, fnGetHeaderValues)
	name := s.f.headerKey(read(mod, uint32(stack[1]), uint32(stack[2]), fnGetHeaderValues), fnGetHeaderValues)
	var values []string
	if kind == headerKindRequest {
		values = requestHeader(h, s.x.Request.Host, name)
	} else {
		values = h[name]
	}
	if s.phaseHeaders(kind) {
		s.rec.read(name, values)
	} else {
		s.rec.spoil()
	}
	stack[0] = writeNULTerminated(mod, uint32(stack[3]), uint32(stack[4]), values, fnGetHeaderValues)
}

// writableHeaders returns the header map to change, refusing trailers.
func (s *callState) writableHeaders(kind uint32, fn string) http.Header {
	h := s.headers(kind, fn)
	if h == nil {
		fail("%s: trailers are not supported (feature_trailers is off)", fn)
	}
	if kind == headerKindRequest && s.resp != nil {
		fail("%s: the request cannot change in handle_response", fn)
	}
	s.responseOpen(fn)
	return h
}

// headerField reads the name (canonical) and, when the call has one, the
// value of a header change; the value comes as a header holds it, shared
// with the headers the instance set the same value in before (see
// headerValues).
func (s *callState) headerField(mod api.Module, stack []uint64, fn string) (name string, values []string) {
	name = s.f.headerKey(read(mod, uint32(stack[1]), uint32(stack[2]), fn), fn)
	if len(stack) > 3 {
		b := read(mod, uint32(stack[3]), uint32(stack[4]), fn)
		if hasLineBreakOrNUL(b) {
			fail("%s: header %s: value contains CR, LF or NUL", fn, name)
		}
		values = s.values.get(name, b)
		s.spend(fn, "headers", &s.spent.headers, len(name)+len(b), int(s.f.spec.Limits.Headers))
		s.spend(fn, "header_values", &s.spent.headerValues, 1, s.f.spec.Limits.HeaderValues)
	}
	return name, values
}

// headerValues is an instance's last value set in each header it set, as
// a header holds it ([]string{value}): a guest that sets the same value
// on every request (a constant header, RateLimit-Policy) shares one slice
// rather than copying the value each time. Sharing is safe because
// nothing changes a header's values in place: a set replaces them, an add
// appends (and appending to a full slice copies it).
type headerValues map[string][]string

// An instance's headerValues holds at most maxHeaderValueNames names and
// values of at most maxHeaderValueSize bytes: what it keeps is small
// whatever the guest sets.
const (
	maxHeaderValueNames = 64
	maxHeaderValueSize  = 256
)

// get returns the values slice of value b in header name.
func (c *headerValues) get(name string, b []byte) []string {
	last, ok := (*c)[name]
	if ok && last[0] == string(b) { // compared without a copy
		return last
	}
	values := []string{string(b)}
	if *c == nil {
		*c = headerValues{}
	}
	switch {
	case len(b) > maxHeaderValueSize:
		if ok {
			delete(*c, name)
		}
	case ok || len(*c) < maxHeaderValueNames:
		(*c)[name] = values
	}
	return values
}

// hasLineBreakOrNUL reports whether v holds CR, LF or NUL.
func hasLineBreakOrNUL(v []byte) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return true
		}
	}
	return false
}

// maxHeaderKeys bounds a filter's cache of canonical header names: a
// plugin uses a handful; one that invents names per request stops being
// cached rather than growing the cache.
const maxHeaderKeys = 256

// headerKey returns the canonical form of a header name the guest passed
// (validated: an invalid one fails the call), from a per-filter cache so
// the names a plugin uses on every request cost no allocation.
func (f *Filter) headerKey(b []byte, fn string) string {
	if m := f.headerKeys.Load(); m != nil {
		if k, ok := (*m)[string(b)]; ok {
			return k
		}
	}
	name := string(b)
	if !config.ValidToken(name) {
		fail("%s: invalid header name %q", fn, name)
	}
	k := textproto.CanonicalMIMEHeaderKey(name)
	f.headerKeysMu.Lock()
	defer f.headerKeysMu.Unlock()
	m := map[string]string{}
	if old := f.headerKeys.Load(); old != nil {
		if len(*old) >= maxHeaderKeys {
			return k
		}
		m = maps.Clone(*old)
	}
	m[name] = k
	f.headerKeys.Store(&m) // copy on write: readers take no lock
	return k
}

// requestHeader returns the values of request header name (canonical):
// Host is the request's host, which net/http keeps out of the map.
func requestHeader(h http.Header, host, name string) []string {
	if name == "Host" && host != "" {
		return []string{host}
	}
	return h[name]
}

func hostSetHeaderValue(ctx context.Context, mod api.Module, stack []uint64) {
	changeHeader(ctx, mod, stack, fnSetHeaderValue, opSetHeader)
}

func hostAddHeaderValue(ctx context.Context, mod api.Module, stack []uint64) {
	changeHeader(ctx, mod, stack, fnAddHeaderValue, opAddHeader)
}

func hostRemoveHeader(ctx context.Context, mod api.Module, stack []uint64) {
	changeHeader(ctx, mod, stack[:3], fnRemoveHeader, opRemoveHeader)
}

// changeHeader is set_header_value, add_header_value and remove_header.
func changeHeader(ctx context.Context, mod api.Module, stack []uint64, fn string, op memoKind) {
	s := req(ctx, fn)
	kind := uint32(stack[0])
	h := s.writableHeaders(kind, fn)
	name, values := s.headerField(mod, stack, fn)
	if kind == headerKindRequest {
		changeRequestHeader(s.x, op, name, values)
	} else {
		changeHeaderIn(h, op, name, values)
	}
	if s.phaseHeaders(kind) {
		s.rec.add(memoOp{kind: op, name: name, values: values})
	} else {
		s.rec.spoil()
	}
}

// phaseHeaders reports whether kind names the headers of the phase the
// call is in: the request's in handle_request, the response's in
// handle_response. A memoized outcome reads and changes only those.
func (s *callState) phaseHeaders(kind uint32) bool {
	if s.resp == nil {
		return kind == headerKindRequest
	}
	return kind == headerKindResponse
}

func hostReadBody(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnReadBody)
	s.rec.spoil() // its effect or input cannot be memoized
	kind, buf, limit := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if limit == 0 {
		fail("%s: buf_limit is zero", fnReadBody)
	}
	dst, ok := mod.Memory().Read(buf, limit)
	if !ok {
		fail("%s: buffer %d length %d is out of bounds of guest memory", fnReadBody, buf, limit)
	}
	var n int
	var eof bool
	switch kind {
	case bodyKindRequest:
		if s.resp != nil {
			fail("%s: the request body cannot be read in handle_response", fnReadBody)
		}
		if s.reqBody == nil {
			s.reqBody = newBodyBuffer(s.x.Request.Body, s.f.maxBody)
		}
		var err error
		n, err = s.reqBody.Read(dst)
		if err != nil && err != io.EOF {
			fail("%s: reading the request body: %v", fnReadBody, err)
		}
		eof = err == io.EOF
	case bodyKindResponse:
		if s.resp == nil || !s.resp.Buffered {
			// Nothing to read: the response is not buffered (or does
			// not exist yet), as the ABI allows.
			eof = true
			break
		}
		n = copy(dst, s.resp.Body[s.respRead:])
		s.respRead += n
		eof = s.respRead >= len(s.resp.Body)
	default:
		fail("%s: invalid body kind %d", fnReadBody, kind)
	}
	r := uint64(n)
	if eof {
		r |= 1 << 32
	}
	stack[0] = r
}

func hostWriteBody(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnWriteBody)
	s.rec.spoil() // its effect or input cannot be memoized
	kind := uint32(stack[0])
	b := read(mod, uint32(stack[1]), uint32(stack[2]), fnWriteBody)
	s.spend(fnWriteBody, "body", &s.spent.body, len(b), int(s.f.spec.Limits.Body))
	switch kind {
	case bodyKindRequest:
		if s.resp != nil {
			fail("%s: the request body cannot change in handle_response", fnWriteBody)
		}
		if !s.reqBodyWrites {
			s.reqBodyWrites = true
			if s.reqBody == nil {
				s.reqBody = newBodyBuffer(s.x.Request.Body, s.f.maxBody)
			}
			s.reqBody.replace()
		}
		s.reqBody.buf = append(s.reqBody.buf, b...)
	case bodyKindResponse:
		if s.resp == nil {
			s.wroteAnswer = true
			s.answerBody = append(s.answerBody, b...)
			return
		}
		if !s.resp.Buffered {
			fail("%s: the response body is streamed; enable feature_buffer_response in handle_request to change it", fnWriteBody)
		}
		if !s.respWrites {
			s.respWrites = true
			s.resp.Body = s.resp.Body[:0]
		}
		s.resp.Body = append(s.resp.Body, b...)
	default:
		fail("%s: invalid body kind %d", fnWriteBody, kind)
	}
}

func hostGetStatusCode(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnGetStatusCode)
	switch {
	case s.resp != nil:
		s.rec.spoil() // the status is not part of a memo's key
		stack[0] = uint64(s.resp.Status)
	case s.status != 0:
		stack[0] = uint64(s.status)
	default:
		stack[0] = http.StatusOK
	}
}

func hostSetStatusCode(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnSetStatusCode)
	s.rec.spoil() // its effect or input cannot be memoized
	code := int(int32(stack[0]))
	if code < 100 || code > 999 {
		fail("%s: invalid status code %d", fnSetStatusCode, code)
	}
	s.responseOpen(fnSetStatusCode)
	if s.resp != nil {
		s.resp.Status = code
		return
	}
	s.status = code
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)
