package wasm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/textproto"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
)

// callState is what host functions act on during one guest call: the
// request (and, in the response phase, the response) of one exchange.
type callState struct {
	f        *Filter
	x        *exchange.Exchange
	w        http.ResponseWriter // request phase: where an answer goes
	resp     *filter.Response    // response phase only
	features uint32

	// The guest's own answer when it returns next=0.
	status      int
	answerBody  []byte
	wroteAnswer bool

	reqBody       *bodyBuffer
	reqBodyWrites bool // write_body(request) was called: it replaces the body
	respWrites    bool // write_body(response) was called in this phase
	respRead      int  // read offset into a buffered response body
	logLines      int  // log lines in the current call
	complete      bool // lintel_on_complete: the response is complete

	outResp *http.Response // the last http_call's response
	outBody []byte
}

type stateKey struct{}

// stateOf returns the call's state; every call into a guest carries one.
func stateOf(ctx context.Context) *callState {
	return ctx.Value(stateKey{}).(*callState)
}

// req returns the state of a call made during a request, failing a call
// made while the instance initialises.
func req(ctx context.Context, fn string) *callState {
	s := stateOf(ctx)
	if s.x == nil {
		fail("%s: called outside a request (during initialisation)", fn)
	}
	return s
}

// guestError is a failure of the guest's own making (a bad pointer, a
// forbidden call). Host functions panic with it; wazero turns the panic
// into the error of the export call, and the instance is discarded.
type guestError struct{ msg string }

func (e *guestError) Error() string { return e.msg }

func fail(format string, args ...any) { panic(&guestError{fmt.Sprintf(format, args...)}) }

// read returns guest memory [ptr, ptr+n), or fails the call.
func read(mod api.Module, ptr, n uint32, what string) []byte {
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		fail("%s: pointer %d length %d is out of bounds of guest memory (%d bytes)", what, ptr, n, mod.Memory().Size())
	}
	return b
}

func readString(mod api.Module, ptr, n uint32, what string) string {
	return string(read(mod, ptr, n, what))
}

// writeLimited implements http-wasm's buf_limit convention: v is written
// at buf only when it fits in limit; its length is returned either way.
func writeLimited(mod api.Module, buf, limit uint32, v []byte, what string) uint32 {
	n := uint32(len(v))
	if n <= limit && n > 0 {
		if !mod.Memory().Write(buf, v) {
			fail("%s: buffer %d length %d is out of bounds of guest memory", what, buf, n)
		}
	}
	return n
}

// writeNULTerminated writes values as NUL-terminated strings under the
// buf_limit convention and returns count<<32 | len.
func writeNULTerminated(mod api.Module, buf, limit uint32, values []string, what string) uint64 {
	if len(values) == 0 {
		return 0
	}
	size := 0
	for _, v := range values {
		size += len(v) + 1
	}
	if uint64(size) <= uint64(limit) {
		// Written in place: a view of the guest's buffer, no copy.
		out, ok := mod.Memory().Read(buf, uint32(size))
		if !ok {
			fail("%s: buffer %d length %d is out of bounds of guest memory", what, buf, size)
		}
		n := 0
		for _, v := range values {
			n += copy(out[n:], v)
			out[n] = 0
			n++
		}
	}
	return uint64(len(values))<<32 | uint64(size)
}

// hostModules instantiates http_handler and lintel in a runtime.
func hostModules(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(ModuleHTTPHandler)
	for _, fn := range httpHandlerFuncs {
		b.NewFunctionBuilder().WithGoModuleFunction(fn.fn, fn.params, fn.results).Export(fn.name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return err
	}
	return instantiateLintel(ctx, rt)
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

type hostFunc struct {
	name            string
	params, results []api.ValueType
	fn              api.GoModuleFunc
}

// httpHandlerFuncs is the http_handler module: every function of the
// http-wasm handler ABI, with its exact signature.
var httpHandlerFuncs = []hostFunc{
	{FnLog, []api.ValueType{i32, i32, i32}, nil, hostLog},
	{FnLogEnabled, []api.ValueType{i32}, []api.ValueType{i32}, hostLogEnabled},
	{FnGetConfig, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostGetConfig},
	{FnEnableFeatures, []api.ValueType{i32}, []api.ValueType{i32}, hostEnableFeatures},
	{FnGetMethod, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostGetMethod},
	{FnSetMethod, []api.ValueType{i32, i32}, nil, hostSetMethod},
	{FnGetURI, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostGetURI},
	{FnSetURI, []api.ValueType{i32, i32}, nil, hostSetURI},
	{FnGetProtocolVersion, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostGetProtocolVersion},
	{FnGetSourceAddr, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostGetSourceAddr},
	{FnGetHeaderNames, []api.ValueType{i32, i32, i32}, []api.ValueType{i64}, hostGetHeaderNames},
	{FnGetHeaderValues, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i64}, hostGetHeaderValues},
	{FnSetHeaderValue, []api.ValueType{i32, i32, i32, i32, i32}, nil, hostSetHeaderValue},
	{FnAddHeaderValue, []api.ValueType{i32, i32, i32, i32, i32}, nil, hostAddHeaderValue},
	{FnRemoveHeader, []api.ValueType{i32, i32, i32}, nil, hostRemoveHeader},
	{FnReadBody, []api.ValueType{i32, i32, i32}, []api.ValueType{i64}, hostReadBody},
	{FnWriteBody, []api.ValueType{i32, i32, i32}, nil, hostWriteBody},
	{FnGetStatusCode, nil, []api.ValueType{i32}, hostGetStatusCode},
	{FnSetStatusCode, []api.ValueType{i32}, nil, hostSetStatusCode},
}

// supportedFeatures are what enable_features reports: trailers are not
// supported (reads see none, writes trap), as the ABI allows.
const supportedFeatures = FeatureBufferRequest | FeatureBufferResponse

func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level := int32(stack[0])
	msg := read(mod, uint32(stack[1]), uint32(stack[2]), FnLog)
	stateOf(ctx).log(level, msg)
}

func hostLogEnabled(ctx context.Context, mod api.Module, stack []uint64) {
	level := int32(stack[0])
	stack[0] = 0
	if level < LogLevelNone && stateOf(ctx).f.log.Enabled(ctx, slogLevel(level)) {
		stack[0] = 1
	}
}

func slogLevel(level int32) slog.Level {
	switch {
	case level <= LogLevelDebug:
		return slog.LevelDebug
	case level == LogLevelInfo:
		return slog.LevelInfo
	case level == LogLevelWarn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func hostGetConfig(ctx context.Context, mod api.Module, stack []uint64) {
	cfg := stateOf(ctx).f.config
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), cfg, FnGetConfig))
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
		s.features |= want
		if want&FeatureBufferResponse != 0 {
			s.x.BufferResponse = true
		}
	}
	stack[0] = supportedFeatures
}

func hostGetMethod(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnGetMethod)
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), []byte(s.x.Request.Method), FnGetMethod))
}

func hostSetMethod(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnSetMethod)
	s.requestPhase(FnSetMethod)
	m := readString(mod, uint32(stack[0]), uint32(stack[1]), FnSetMethod)
	if m == "" || strings.ContainsAny(m, " \t\r\n") {
		fail("%s: invalid method %q", FnSetMethod, m)
	}
	s.x.Request.Method = m
}

func hostGetURI(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnGetURI)
	uri := s.x.Request.URL.RequestURI()
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), []byte(uri), FnGetURI))
}

func hostSetURI(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnSetURI)
	s.requestPhase(FnSetURI)
	uri := readString(mod, uint32(stack[0]), uint32(stack[1]), FnSetURI)
	if err := setURI(s.x.Request, uri); err != nil {
		fail("%s: %v", FnSetURI, err)
	}
}

func hostGetProtocolVersion(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnGetProtocolVersion)
	proto := s.x.Request.Proto
	if proto == "HTTP/2" {
		proto = "HTTP/2.0"
	}
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), []byte(proto), FnGetProtocolVersion))
}

func hostGetSourceAddr(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnGetSourceAddr)
	stack[0] = uint64(writeLimited(mod, uint32(stack[0]), uint32(stack[1]), []byte(s.x.Request.RemoteAddr), FnGetSourceAddr))
}

// headers returns the header map a kind names, or nil for trailers.
func (s *callState) headers(kind uint32, fn string) http.Header {
	switch kind {
	case HeaderKindRequest:
		return s.x.Request.Header
	case HeaderKindResponse:
		if s.resp != nil {
			return s.resp.Header
		}
		return s.w.Header()
	case HeaderKindRequestTrailers, HeaderKindResponseTrailers:
		return nil
	}
	fail("%s: invalid header kind %d", fn, kind)
	return nil
}

func hostGetHeaderNames(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnGetHeaderNames)
	kind := uint32(stack[0])
	h := s.headers(kind, FnGetHeaderNames)
	names := make([]string, 0, len(h)+1)
	for k := range h {
		names = append(names, strings.ToLower(k))
	}
	if kind == HeaderKindRequest && s.x.Request.Host != "" {
		names = append(names, "host") // net/http keeps Host out of the map
	}
	sort.Strings(names)
	stack[0] = writeNULTerminated(mod, uint32(stack[1]), uint32(stack[2]), names, FnGetHeaderNames)
}

func hostGetHeaderValues(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnGetHeaderValues)
	h := s.headers(uint32(stack[0]), FnGetHeaderValues)
	name := s.f.headerKey(read(mod, uint32(stack[1]), uint32(stack[2]), FnGetHeaderValues), FnGetHeaderValues)
	values := h.Values(name)
	if isHost(uint32(stack[0]), name) && s.x.Request.Host != "" {
		values = []string{s.x.Request.Host}
	}
	stack[0] = writeNULTerminated(mod, uint32(stack[3]), uint32(stack[4]), values, FnGetHeaderValues)
}

// writableHeaders returns the header map to change, refusing trailers.
func (s *callState) writableHeaders(kind uint32, fn string) http.Header {
	h := s.headers(kind, fn)
	if h == nil {
		fail("%s: trailers are not supported (feature_trailers is off)", fn)
	}
	if kind == HeaderKindRequest && s.resp != nil {
		fail("%s: the request cannot change in handle_response", fn)
	}
	return h
}

func (s *callState) headerField(mod api.Module, stack []uint64, fn string) (name, value string) {
	name = s.f.headerKey(read(mod, uint32(stack[1]), uint32(stack[2]), fn), fn)
	if len(stack) > 3 {
		value = readString(mod, uint32(stack[3]), uint32(stack[4]), fn)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		fail("%s: header %s: value contains CR, LF or NUL", fn, name)
	}
	return name, value
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

// isHost reports whether a request header name is Host, which net/http
// keeps in Request.Host rather than in the header map.
func isHost(kind uint32, name string) bool {
	return kind == HeaderKindRequest && strings.EqualFold(name, "host")
}

// dropSpellings makes a request header a guest changed the only one of
// its name: a client's X_User cannot ride beside the X-User a filter set.
func (s *callState) dropSpellings(kind uint32, name string) {
	if kind == HeaderKindRequest {
		s.x.DropSpellings(name)
	}
}

func hostSetHeaderValue(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnSetHeaderValue)
	h := s.writableHeaders(uint32(stack[0]), FnSetHeaderValue)
	name, value := s.headerField(mod, stack, FnSetHeaderValue)
	if isHost(uint32(stack[0]), name) {
		s.x.Request.Host = value
		return
	}
	h[name] = []string{value}
	s.dropSpellings(uint32(stack[0]), name)
}

func hostAddHeaderValue(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnAddHeaderValue)
	h := s.writableHeaders(uint32(stack[0]), FnAddHeaderValue)
	name, value := s.headerField(mod, stack, FnAddHeaderValue)
	if isHost(uint32(stack[0]), name) {
		s.x.Request.Host = value // a request has one Host
		return
	}
	h.Add(name, value)
	s.dropSpellings(uint32(stack[0]), name)
}

func hostRemoveHeader(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnRemoveHeader)
	h := s.writableHeaders(uint32(stack[0]), FnRemoveHeader)
	name, _ := s.headerField(mod, stack[:3], FnRemoveHeader)
	if isHost(uint32(stack[0]), name) {
		s.x.Request.Host = ""
		return
	}
	h.Del(name)
	s.dropSpellings(uint32(stack[0]), name)
}

func hostReadBody(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnReadBody)
	kind, buf, limit := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if limit == 0 {
		fail("%s: buf_limit is zero", FnReadBody)
	}
	dst, ok := mod.Memory().Read(buf, limit)
	if !ok {
		fail("%s: buffer %d length %d is out of bounds of guest memory", FnReadBody, buf, limit)
	}
	var n int
	var eof bool
	switch kind {
	case BodyKindRequest:
		if s.resp != nil {
			fail("%s: the request body cannot be read in handle_response", FnReadBody)
		}
		if s.reqBody == nil {
			s.reqBody = newBodyBuffer(s.x.Request.Body, s.f.maxBody)
		}
		var err error
		n, err = s.reqBody.Read(dst)
		if err != nil && err != io.EOF {
			fail("%s: reading the request body: %v", FnReadBody, err)
		}
		eof = err == io.EOF
	case BodyKindResponse:
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
		fail("%s: invalid body kind %d", FnReadBody, kind)
	}
	r := uint64(n)
	if eof {
		r |= 1 << 32
	}
	stack[0] = r
}

func hostWriteBody(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnWriteBody)
	kind := uint32(stack[0])
	b := read(mod, uint32(stack[1]), uint32(stack[2]), FnWriteBody)
	switch kind {
	case BodyKindRequest:
		if s.resp != nil {
			fail("%s: the request body cannot change in handle_response", FnWriteBody)
		}
		if !s.reqBodyWrites {
			s.reqBodyWrites = true
			if s.reqBody == nil {
				s.reqBody = newBodyBuffer(s.x.Request.Body, s.f.maxBody)
			}
			s.reqBody.replace()
		}
		s.reqBody.buf = append(s.reqBody.buf, b...)
	case BodyKindResponse:
		if s.resp == nil {
			s.wroteAnswer = true
			s.answerBody = append(s.answerBody, b...)
			return
		}
		if !s.resp.Buffered {
			fail("%s: the response body is streamed; enable feature_buffer_response in handle_request to change it", FnWriteBody)
		}
		if !s.respWrites {
			s.respWrites = true
			s.resp.Body = s.resp.Body[:0]
		}
		s.resp.Body = append(s.resp.Body, b...)
	default:
		fail("%s: invalid body kind %d", FnWriteBody, kind)
	}
}

func hostGetStatusCode(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnGetStatusCode)
	switch {
	case s.resp != nil:
		stack[0] = uint64(s.resp.Status)
	case s.status != 0:
		stack[0] = uint64(s.status)
	default:
		stack[0] = http.StatusOK
	}
}

func hostSetStatusCode(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, FnSetStatusCode)
	code := int(int32(stack[0]))
	if code < 100 || code > 999 {
		fail("%s: invalid status code %d", FnSetStatusCode, code)
	}
	if s.resp != nil {
		s.resp.Status = code
		return
	}
	s.status = code
}

func (s *callState) requestPhase(fn string) {
	if s.resp != nil {
		fail("%s: the request cannot change in handle_response", fn)
	}
}

// bodyBuffer reads a request body for the guest while keeping every byte,
// so the upstream still receives the whole body afterwards.
type bodyBuffer struct {
	src      io.ReadCloser
	buf      []byte
	off      int
	max      int64
	replaced bool // write_body replaced the body: src is discarded
}

func newBodyBuffer(src io.ReadCloser, max int64) *bodyBuffer {
	if src == nil {
		src = http.NoBody
	}
	return &bodyBuffer{src: src, max: max}
}

// Read serves what was buffered, then reads more from src and keeps it.
func (b *bodyBuffer) Read(p []byte) (int, error) {
	if b.off < len(b.buf) {
		n := copy(p, b.buf[b.off:])
		b.off += n
		return n, nil
	}
	if b.replaced {
		return 0, io.EOF
	}
	if int64(len(b.buf)) >= b.max {
		return 0, fmt.Errorf("request body exceeds the %d bytes a filter may buffer", b.max)
	}
	n, err := b.src.Read(p[:min(int64(len(p)), b.max-int64(len(b.buf)))])
	b.buf = append(b.buf, p[:n]...)
	b.off += n
	return n, err
}

// replace discards the body: what write_body writes replaces it.
func (b *bodyBuffer) replace() {
	b.replaced, b.buf, b.off = true, b.buf[:0], 0
}

// body returns the request body the next handler receives and its length
// (-1 when unknown).
func (b *bodyBuffer) body() (io.ReadCloser, int64) {
	if b.replaced {
		return io.NopCloser(bytes.NewReader(b.buf)), int64(len(b.buf))
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b.buf), b.src), b.src}, -1
}
