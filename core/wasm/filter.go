package wasm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/problem"
)

// maxLogLines bounds the log lines one guest call may write; more are
// counted and dropped, so a plugin cannot flood the gateway's log.
const (
	maxLogLines   = 64
	maxLogMessage = 4 << 10
)

// stateContext carries a call's state to host functions. An instance of
// a trusted filter keeps one, so its calls allocate no context. A call
// with a deadline gets a fresh one: wazero watches that context from a
// goroutine of its own, which may still read it after the call returned.
type stateContext struct {
	context.Context
	s *callState
}

func (c *stateContext) Value(key any) any {
	if key == (stateKey{}) {
		return c.s
	}
	return c.Context.Value(key)
}

// callContext is the context of one call into the guest: it carries the
// call's state and, unless the filter is trusted, the per-call deadline.
func (f *Filter) callContext(sc *stateContext, s *callState) (context.Context, context.CancelFunc) {
	if f.spec.Trusted {
		sc.Context, sc.s = context.Background(), s
		return sc, func() {}
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.spec.Timeout.D())
	return &stateContext{Context: ctx, s: s}, cancel
}

// call runs one export with params (at most two); any failure marks the
// instance broken.
func (f *Filter) call(inst *instance, s *callState, fn api.Function, params ...uint64) (uint64, error) {
	ctx, cancel := f.callContext(&inst.ctx, s)
	defer cancel()
	s.logLines = 0
	inst.stderr.reset()
	stack := inst.stack[:]
	copy(stack, params)
	var start time.Time
	if f.callTimer != nil {
		start = time.Now()
	}
	err := fn.CallWithStack(ctx, stack)
	if f.callTimer != nil {
		f.callTimer.Observe(time.Since(start).Seconds())
	}
	inst.ctx.s = nil
	if s.logLines > maxLogLines {
		f.log.Warn("plugin log lines dropped", "dropped", s.logLines-maxLogLines, "request_id", s.requestID())
	}
	if err != nil {
		inst.broken = true
		err, kind := callError(err)
		f.metrics.failed(f.name, kind)
		return 0, inst.stderr.explain(err)
	}
	return stack[0], nil
}

// callError makes wazero's errors say what happened in the terms of a
// plugin author, and names its kind for the failures metric.
func callError(err error) (error, string) {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return errors.New("exceeded its time limit (timeout) and was stopped"), "timeout"
		case sys.ExitCodeContextCanceled:
			return errors.New("was stopped: the request was cancelled"), "cancelled"
		}
		return fmt.Errorf("exited with code %d", exit.ExitCode()), "trap"
	}
	var ge *guestError
	if errors.As(err, &ge) {
		return ge, "trap"
	}
	msg := err.Error()
	if i := strings.Index(msg, "\nwasm stack trace:"); i >= 0 {
		msg = msg[:i]
	}
	return errors.New(msg), "trap"
}

// Request runs handle_request. See filter.Filter.
func (f *Filter) Request(x *exchange.Exchange, w http.ResponseWriter) (bool, filter.Pending, error) {
	inst, err := f.pool.get(x.Request.Context())
	if err != nil {
		if errors.Is(err, errPoolTimeout) {
			f.metrics.failed(f.name, "busy")
			x.Log().Warn("plugin busy: no free instance", "filter", f.name, "wait", f.spec.PoolTimeout)
			if f.spec.OnError == "allow" {
				return true, nil, nil
			}
			w.Header().Set("Retry-After", "1")
			problem.Error(w, http.StatusServiceUnavailable, fmt.Sprintf("filter %q is busy", f.name))
			return false, nil, nil
		}
		return f.failed(x, err)
	}
	// The call's state lives in the pending response phase: one
	// allocation for both.
	p := &pending{f: f, s: callState{f: f, x: x, w: w}}
	s := &p.s
	if f.onComplete && f.declared.Load()&DeclareOnComplete != 0 {
		x.OnComplete(func() { f.complete(x) })
	}
	if f.initFeatures.Load()&FeatureBufferResponse != 0 {
		x.BufferResponse = true
	}
	ctxNext, err := f.call(inst, s, inst.handleRequest)
	if s.reqBody != nil {
		s.applyRequestBody()
	}
	if err != nil {
		f.pool.put(inst)
		return f.failed(x, err)
	}
	if uint32(ctxNext)&1 == 0 { // the guest answered
		f.pool.put(inst)
		status := s.status
		if status == 0 {
			status = http.StatusOK
		}
		if len(s.answerBody) > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(s.answerBody)))
		}
		w.WriteHeader(status)
		_, _ = w.Write(s.answerBody)
		return false, nil, nil
	}
	p.reqCtx = uint32(ctxNext >> 32)
	if len(s.answerBody) > 0 {
		// A body written before calling next begins the response, as in
		// http-wasm's reference host: the response is held whole so it
		// can be put in front and the length counted again.
		p.prefix = s.answerBody
		x.BufferResponse = true
	}
	switch d := f.declared.Load(); {
	case d&DeclareNoResponse != 0:
		f.pool.put(inst)
		if p.prefix != nil {
			p.skipGuest = true
			return true, p, nil
		}
		return true, nil, nil
	case d&DeclareStateless != 0:
		f.pool.put(inst) // handle_response may run on any instance
	default:
		p.inst = inst
	}
	return true, p, nil
}

// complete calls lintel_on_complete once the response is complete.
func (f *Filter) complete(x *exchange.Exchange) {
	inst, err := f.pool.get(x.Request.Context())
	if err != nil {
		f.log.Warn("plugin completion skipped", "error", err, "request_id", x.RequestID)
		return
	}
	defer f.pool.put(inst)
	s := &callState{f: f, x: x, complete: true}
	if _, err := f.call(inst, s, inst.onComplete); err != nil {
		f.log.Error("filter failed", "phase", "complete", "error", err, "request_id", x.RequestID)
	}
}

// failed applies on_error to a plugin failure.
func (f *Filter) failed(x *exchange.Exchange, err error) (bool, filter.Pending, error) {
	if f.spec.OnError == "allow" {
		x.Log().Warn("plugin failed; skipped (on_error = allow)", "filter", f.name, "error", err)
		return true, nil, nil
	}
	return false, nil, err
}

// applyRequestBody hands the next handler the body as the guest left it:
// every byte it read, then the rest, or what it wrote instead.
func (s *callState) applyRequestBody() {
	r := s.x.Request
	body, n := s.reqBody.body()
	r.Body = body
	if n >= 0 {
		r.ContentLength = n
		r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		r.TransferEncoding = nil
	}
}

type pending struct {
	f      *Filter
	s      callState
	inst   *instance // nil when the guest declared itself stateless
	reqCtx uint32
	// prefix is a response body the guest wrote before calling next.
	prefix []byte
	// skipGuest: the guest has no response phase (DeclareNoResponse);
	// only the prefix is applied.
	skipGuest bool
}

// Response runs handle_response. See filter.Pending.
func (p *pending) Response(x *exchange.Exchange, r *filter.Response) error {
	if p.prefix != nil && r.Buffered {
		r.Body = append(p.prefix, r.Body...)
	}
	if p.skipGuest {
		return nil
	}
	f := p.f
	inst := p.inst
	if inst == nil {
		var err error
		if inst, err = f.pool.get(x.Request.Context()); err != nil {
			_, _, err = f.failed(x, err)
			return err
		}
		defer f.pool.put(inst)
	}
	p.s.resp, p.s.w = r, nil
	isError := uint64(0)
	if r.Error {
		isError = 1
	}
	if _, err := f.call(inst, &p.s, inst.handleResponse, uint64(p.reqCtx), isError); err != nil {
		_, _, err = f.failed(x, err)
		return err
	}
	return nil
}

// Release returns a pinned instance to the pool.
func (p *pending) Release() {
	if p.inst != nil {
		p.f.pool.put(p.inst)
		p.inst = nil
	}
}

// log writes a guest's log line to the gateway's log, with the filter and
// request id, within the per-call budget.
func (s *callState) log(level int32, msg []byte, attrs ...any) {
	if level >= LogLevelNone {
		return
	}
	s.logLines++
	if s.logLines > maxLogLines || !s.f.log.Enabled(context.Background(), slogLevel(level)) {
		return
	}
	if len(msg) > maxLogMessage {
		msg = append(msg[:maxLogMessage:maxLogMessage], "..."...)
	}
	l := s.f.log
	if s.x != nil {
		l = l.With("request_id", s.x.RequestID)
	}
	l.Log(context.Background(), slogLevel(level), string(msg), attrs...)
}

func (s *callState) requestID() string {
	if s.x == nil {
		return ""
	}
	return s.x.RequestID
}

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
